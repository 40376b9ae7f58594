"""The deployment's name in Route53: UPSERT as soon as the IP is known, then wait INSYNC."""

from __future__ import annotations

from typing import Any

from core.context import RunContext, StepFailed
from core.waiting import WaitTimeout, poll


async def hosted_zone_id(ctx: RunContext) -> str:
    profile = ctx.target.profile
    if profile.hosted_zone_id:
        return profile.hosted_zone_id
    zones = await ctx.aws.call(
        "route53", "list_hosted_zones_by_name", DNSName=profile.base_domain + "."
    )
    for zone in zones["HostedZones"]:
        if zone["Name"].rstrip(".") == profile.base_domain and not zone.get("Config", {}).get(
            "PrivateZone"
        ):
            return str(zone["Id"]).removeprefix("/hostedzone/")
    raise StepFailed(
        f"no public Route53 hosted zone for {profile.base_domain}",
        hint="create the zone, or set hosted_zone_id in the profile",
    )


async def dns(ctx: RunContext) -> dict[str, Any]:
    ip = ctx.outputs["address"]["public_ip"]
    fqdn = ctx.deployment.fqdn
    zone = await hosted_zone_id(ctx)
    change = await ctx.aws.call(
        "route53",
        "change_resource_record_sets",
        HostedZoneId=zone,
        ChangeBatch={
            "Comment": f"toast {ctx.deployment.name}",
            "Changes": [
                {
                    "Action": "UPSERT",
                    "ResourceRecordSet": {
                        "Name": fqdn,
                        "Type": "A",
                        "TTL": 60,
                        "ResourceRecords": [{"Value": ip}],
                    },
                }
            ],
        },
    )
    await ctx.record(
        "dns_record", fqdn, region="global", attributes={"zone_id": zone, "type": "A", "value": ip}
    )
    change_id = change["ChangeInfo"]["Id"]

    async def insync() -> bool | None:
        status = await ctx.aws.call("route53", "get_change", Id=change_id)
        return True if status["ChangeInfo"]["Status"] == "INSYNC" else None

    try:
        # Route53 propagates within ~60 s; the boto3 waiter would poll only every 30 s.
        await poll(
            insync,
            what=f"Route53 change {change_id} to be INSYNC",
            timeout=300,
            initial=2,
            maximum=5,
            factor=1.3,
            progress=ctx.progress("dns", "Route53 to report INSYNC"),
        )
    except WaitTimeout as exc:
        raise StepFailed(str(exc), hint="Route53 is slow; rerun the deploy to resume") from exc
    return {"fqdn": fqdn, "zone_id": zone, "ip": ip, "_detail": f"{fqdn} -> {ip} (INSYNC)"}
