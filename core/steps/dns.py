"""The deployment's name in Route53: claimed only if nobody else owns it, pointed at the
instance with Toast's ownership marker beside it, then awaited until INSYNC."""

from __future__ import annotations

from typing import Any

from core.cloud.aws import Aws, AwsError
from core.cloud.dns_owner import NameRecords, marker_name, marker_value, records_at
from core.profile.config import Profile
from core.profile.installation import installation_id
from core.runs.context import RunContext, StepFailed

TTL = 60
#: A Route53 ResourceRecordSet as boto3 takes it.
Record = dict[str, Any]


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
    """Toast never takes over a name someone else points somewhere, nor an ownership
    marker someone else wrote (a TXT at `_toast.<name>` that is not this installation's)."""
    if found.owned_by(installation):
        return
    owner = found.owner
    if owner:
        raise StepFailed(
            f"{found.fqdn} is owned by another Toast installation "
            f"({owner['toast-owner']}, deployment {owner.get('deployment', '?')})",
            hint="destroy it from that installation, or choose another --subdomain",
        )
    if found.pointing:
        raise StepFailed(
            f"{found.describe()} and was not made by Toast; Toast will not overwrite it",
            hint="choose another --subdomain, or delete that record yourself if it is unused",
        )
    if found.marker is not None:
        values = ", ".join(v["Value"] for v in found.marker.get("ResourceRecords", []))
        raise StepFailed(
            f"{marker_name(found.fqdn).rstrip('.')} already has a TXT record ({values}) that "
            "Toast did not write; Toast keeps its ownership marker there and will not "
            "overwrite it",
            hint="choose another --subdomain, or delete that TXT record yourself if it is unused",
        )


async def check_name(ctx: RunContext) -> tuple[str, NameRecords]:
    """Refuse a name someone else owns; returns the hosted zone id and what it holds."""
    zone = await hosted_zone_id(ctx.aws, ctx.target.profile)
    found = await records_at(ctx.aws, zone, ctx.deployment.fqdn)
    refuse_foreign(found, installation_id())
    return zone, found


def claim_changes(found: NameRecords, a_record: Record, txt: Record) -> list[dict[str, Any]]:
    """The change batch that points the name at the instance, given what the check saw.
    Records Toast expects absent are CREATEd and records it owns are DELETEd with the exact
    values seen: Route53 applies the batch atomically and refuses it whole if anything
    changed since, so a record that appeared after the check is never touched."""
    changes: list[dict[str, Any]] = []
    if found.marker is not None:
        changes.append({"Action": "DELETE", "ResourceRecordSet": found.marker})
    changes += [{"Action": "DELETE", "ResourceRecordSet": r} for r in found.pointing]
    changes += [
        {"Action": "CREATE", "ResourceRecordSet": dict(txt)},
        {"Action": "CREATE", "ResourceRecordSet": dict(a_record)},
    ]
    return changes


async def claim_name(
    aws: Aws, zone: str, found: NameRecords, ip: str, marker: str, comment: str
) -> str:
    """Point `found.fqdn` at `ip` with Toast's marker beside it; returns the change id."""
    name = found.fqdn.rstrip(".") + "."
    a_record: Record = {"Name": name, "Type": "A", "TTL": TTL, "ResourceRecords": [{"Value": ip}]}
    txt: Record = {
        "Name": marker_name(found.fqdn),
        "Type": "TXT",
        "TTL": TTL,
        "ResourceRecords": [{"Value": marker}],
    }
    try:
        change = await aws.call(
            "route53",
            "change_resource_record_sets",
            HostedZoneId=zone,
            ChangeBatch={"Comment": comment, "Changes": claim_changes(found, a_record, txt)},
        )
    except AwsError as exc:
        if exc.code != "InvalidChangeBatch":
            raise
        raise StepFailed(
            f"the DNS records at {found.fqdn} changed between Toast's ownership check and "
            f"its write ({exc.aws_message}); Toast changed nothing there",
            hint="look at who else manages this name, then choose another --subdomain or "
            "rerun the deploy",
        ) from exc
    return str(change["ChangeInfo"]["Id"])


async def dns(ctx: RunContext) -> dict[str, Any]:
    ip = ctx.outputs["address"]["public_ip"]
    fqdn = ctx.deployment.fqdn
    # Checked again right before the change: the name may have been taken since the check.
    zone, found = await check_name(ctx)
    marker = marker_value(installation_id(), ctx.deployment.name)
    change_id = await claim_name(ctx.aws, zone, found, ip, marker, f"toast {ctx.deployment.name}")
    # A crash between the change and this entry leaves a marked name gc finds.
    await ctx.record(
        "dns_record",
        fqdn,
        region="global",
        attributes={"zone_id": zone, "type": "A", "value": ip, "ttl": TTL, "marker": marker},
    )

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
