"""The deployment's name in Route53: claimed only if nobody else owns it, pointed at the
instance with Toast's ownership marker beside it, then awaited until INSYNC."""

from __future__ import annotations

from typing import Any

from core.aws import Aws
from core.config import Profile
from core.context import RunContext, StepFailed
from core.dns_owner import NameRecords, marker_name, marker_value, records_at
from core.installation import installation_id

TTL = 60


async def hosted_zone_id(aws: Aws, profile: Profile) -> str:
    if profile.hosted_zone_id:
        return profile.hosted_zone_id
    zones = await aws.call(
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


def refuse_foreign(found: NameRecords, installation: str) -> None:
    """Toast never takes over a name someone else points somewhere."""
    if not found.pointing or found.owned_by(installation):
        return
    owner = found.owner
    if owner:
        raise StepFailed(
            f"{found.describe()} and was made by another Toast installation "
            f"({owner['toast-owner']}, deployment {owner.get('deployment', '?')})",
            hint="destroy it from that installation, or choose another --subdomain",
        )
    raise StepFailed(
        f"{found.describe()} and was not made by Toast; Toast will not overwrite it",
        hint="choose another --subdomain, or delete that record yourself if it is unused",
    )


async def check_name(ctx: RunContext) -> str:
    """Refuse a name someone else owns; returns the hosted zone id."""
    zone = await hosted_zone_id(ctx.aws, ctx.target.profile)
    found = await records_at(ctx.aws, zone, ctx.deployment.fqdn)
    refuse_foreign(found, installation_id())
    return zone


async def dns(ctx: RunContext) -> dict[str, Any]:
    ip = ctx.outputs["address"]["public_ip"]
    fqdn = ctx.deployment.fqdn
    # Checked again right before the change: the name may have been taken since the check.
    zone = await check_name(ctx)
    marker = marker_value(installation_id(), ctx.deployment.name)
    record = {"Name": fqdn + ".", "Type": "A", "TTL": TTL, "ResourceRecords": [{"Value": ip}]}
    txt = {
        "Name": marker_name(fqdn),
        "Type": "TXT",
        "TTL": TTL,
        "ResourceRecords": [{"Value": marker}],
    }
    change = await ctx.aws.call(
        "route53",
        "change_resource_record_sets",
        HostedZoneId=zone,
        ChangeBatch={
            "Comment": f"toast {ctx.deployment.name}",
            # One batch: the name never points at the instance without its owner marker.
            "Changes": [
                {"Action": "UPSERT", "ResourceRecordSet": txt},
                {"Action": "UPSERT", "ResourceRecordSet": record},
            ],
        },
    )
    await ctx.record(
        "dns_record",
        fqdn,
        region="global",
        attributes={"zone_id": zone, "type": "A", "value": ip, "ttl": TTL, "marker": marker},
    )
    change_id = change["ChangeInfo"]["Id"]

    async def insync() -> bool | None:
        status = await ctx.aws.call("route53", "get_change", Id=change_id)
        return True if status["ChangeInfo"]["Status"] == "INSYNC" else None

    # Route53 propagates within ~60 s; the boto3 waiter would poll only every 30 s.
    await ctx.wait(
        insync,
        step="dns",
        what=f"Route53 change {change_id} to be INSYNC",
        report="Route53 to report INSYNC",
        timeout=300,
        initial=2,
        maximum=5,
        factor=1.3,
        hint="Route53 is slow; rerun the deploy to resume",
    )
    return {"fqdn": fqdn, "zone_id": zone, "ip": ip, "_detail": f"{fqdn} -> {ip} (INSYNC)"}
