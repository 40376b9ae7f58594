"""The deployment's name in Route53: claimed only if nobody else owns it, pointed at the
instance with Toast's ownership marker beside it, then awaited until INSYNC."""

from __future__ import annotations

from core.cloud.dns_owner import (
    TTL,
    NameRecords,
    claim_name,
    hosted_zone_id,
    marker_value,
    records_at,
    refuse_foreign,
)
from core.profile.installation import installation_id
from core.runs.context import RunContext
from core.steps.outputs import AddressOutput, DnsOutput


async def check_name(ctx: RunContext) -> tuple[str, NameRecords]:
    """Refuse a name someone else owns; returns the hosted zone id and what it holds."""
    zone = await hosted_zone_id(ctx.aws, ctx.target.profile)
    found = await records_at(ctx.aws, zone, ctx.deployment.fqdn)
    refuse_foreign(found, installation_id())
    return zone, found


async def dns(ctx: RunContext) -> DnsOutput:
    ip = ctx.output("address", AddressOutput).public_ip
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
        status = await ctx.aws.run((await ctx.aws.route53()).get_change, Id=change_id)
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
    return DnsOutput(fqdn=fqdn, zone_id=zone, ip=ip, detail=f"{fqdn} -> {ip} (INSYNC)")
