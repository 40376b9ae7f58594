"""Who owns a DNS name: Toast's ownership records, as external-dns keeps them.

Next to each A record it creates, Toast writes a TXT record at `_toast.<name>` saying which
installation and deployment made it. The prefix keeps Toast's marker off the app's own
name, where users keep their own TXT records (SPF, site verification). Toast only ever
changes or deletes a name whose marker carries its installation id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.cloud.aws import Aws, AwsError
from core.profile.config import Profile
from core.runs.failures import StepFailed

if TYPE_CHECKING:
    from mypy_boto3_route53.type_defs import (
        ChangeTypeDef,
        ResourceRecordSetOutputTypeDef,
        ResourceRecordSetTypeDef,
    )

PREFIX = "_toast."
#: Record types that make a name point somewhere: one of these without Toast's marker
#: means someone else uses the name.
POINTING = ("A", "AAAA", "CNAME")


def marker_name(fqdn: str) -> str:
    return PREFIX + fqdn.rstrip(".") + "."


def marker_value(installation: str, deployment: str) -> str:
    """The TXT value, quoted as Route53 stores it."""
    return f'"toast-owner={installation},deployment={deployment}"'


def parse_marker(value: str) -> dict[str, str]:
    """{"toast-owner": ..., "deployment": ...} from a TXT value; {} if it is not Toast's."""
    fields: dict[str, str] = {}
    for part in value.strip().strip('"').split(","):
        key, sep, val = part.partition("=")
        if sep:
            fields[key.strip()] = val.strip()
    return fields if "toast-owner" in fields else {}


@dataclass(frozen=True)
class NameRecords:
    """What the zone holds at a name: its pointing records and Toast's marker, if any."""

    fqdn: str
    pointing: list[ResourceRecordSetOutputTypeDef]
    marker: ResourceRecordSetOutputTypeDef | None

    @property
    def owner(self) -> dict[str, str]:
        if self.marker is None:
            return {}
        for value in self.marker.get("ResourceRecords", []):
            fields = parse_marker(value["Value"])
            if fields:
                return fields
        return {}

    def owned_by(self, installation: str) -> bool:
        return self.owner.get("toast-owner") == installation

    def describe(self) -> str:
        """'www.example.com already points at 203.0.113.9' in the user's words."""
        record = self.pointing[0]
        values = [v["Value"] for v in record.get("ResourceRecords", [])]
        target = ", ".join(values) or record.get("AliasTarget", {}).get("DNSName", "?")
        return f"{self.fqdn} already points at {target} ({record['Type']} record)"


async def records_at(aws: Aws, zone_id: str, fqdn: str) -> NameRecords:
    name = fqdn.rstrip(".") + "."
    return NameRecords(
        fqdn.rstrip("."),
        [r for r in await _sets_named(aws, zone_id, name) if r["Type"] in POINTING],
        next(
            (r for r in await _sets_named(aws, zone_id, marker_name(fqdn)) if r["Type"] == "TXT"),
            None,
        ),
    )


async def _sets_named(aws: Aws, zone_id: str, name: str) -> list[ResourceRecordSetOutputTypeDef]:
    listed = await aws.run(
        (await aws.route53()).list_resource_record_sets,
        HostedZoneId=zone_id,
        StartRecordName=name,
        MaxItems="20",
    )
    return [r for r in listed["ResourceRecordSets"] if _same(r["Name"], name)]


def _same(a: str, b: str) -> bool:
    # Route53 escapes some characters (\052 for *); names Toast makes never need it.
    return a.rstrip(".").lower() == b.rstrip(".").lower()


async def marked_names(aws: Aws, zone_id: str, installation: str) -> dict[str, str]:
    """fqdn -> deployment for every ownership marker of this installation in the zone."""
    route53 = await aws.route53()
    pages = await aws.pages(route53.list_resource_record_sets, HostedZoneId=zone_id)
    found: dict[str, str] = {}
    for record in (r for page in pages for r in page["ResourceRecordSets"]):
        name = record["Name"].rstrip(".")
        if record["Type"] != "TXT" or not name.startswith(PREFIX):
            continue
        for value in record.get("ResourceRecords", []):
            fields = parse_marker(value["Value"])
            if fields.get("toast-owner") == installation:
                found[name.removeprefix(PREFIX)] = fields.get("deployment", "")
    return found


TTL = 60


async def hosted_zone_id(aws: Aws, profile: Profile) -> str:
    if profile.hosted_zone_id:
        return profile.hosted_zone_id
    zones = await aws.run(
        (await aws.route53()).list_hosted_zones_by_name, DNSName=profile.base_domain + "."
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


def claim_changes(
    found: NameRecords, a_record: ResourceRecordSetTypeDef, txt: ResourceRecordSetTypeDef
) -> list[ChangeTypeDef]:
    """The change batch that points the name at the instance, given what the check saw.
    Records Toast expects absent are CREATEd and records it owns are DELETEd with the exact
    values seen: Route53 applies the batch atomically and refuses it whole if anything
    changed since, so a record that appeared after the check is never touched."""
    changes: list[ChangeTypeDef] = []
    if found.marker is not None:
        changes.append({"Action": "DELETE", "ResourceRecordSet": found.marker})
    changes += [{"Action": "DELETE", "ResourceRecordSet": r} for r in found.pointing]
    changes += [
        {"Action": "CREATE", "ResourceRecordSet": txt},
        {"Action": "CREATE", "ResourceRecordSet": a_record},
    ]
    return changes


async def claim_name(
    aws: Aws, zone: str, found: NameRecords, ip: str, marker: str, comment: str
) -> str:
    """Point `found.fqdn` at `ip` with Toast's marker beside it; returns the change id."""
    name = found.fqdn.rstrip(".") + "."
    a_record: ResourceRecordSetTypeDef = {
        "Name": name,
        "Type": "A",
        "TTL": TTL,
        "ResourceRecords": [{"Value": ip}],
    }
    txt: ResourceRecordSetTypeDef = {
        "Name": marker_name(found.fqdn),
        "Type": "TXT",
        "TTL": TTL,
        "ResourceRecords": [{"Value": marker}],
    }
    try:
        change = await aws.run(
            (await aws.route53()).change_resource_record_sets,
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
