"""gc: what the ledger holds against what is really there, and deleting a ledger entry's
resource (destroy and gc both delete through here, NotFound meaning already gone)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from core.cloud.aws import Aws, AwsError, is_not_found
from core.cloud.dns_owner import hosted_zone_id, marked_names, records_at
from core.cloud.iam import delete_instance_profile, delete_role
from core.profile.config import Profile
from core.profile.installation import MANAGED_BY, TAG, installation_id
from core.runs.failures import StepFailed
from core.runs.waiting import WaitTimeout, poll
from storage import Queries
from storage.records import Resource

if TYPE_CHECKING:
    from mypy_boto3_ec2.type_defs import FilterTypeDef
    from mypy_boto3_route53.type_defs import ChangeTypeDef

#: Deletion order: what depends on a resource goes before it.
ORDER = {
    "webhook": 0,
    "dns_record": 1,
    "instance": 2,
    "log_group": 3,
    "instance_profile": 4,
    "iam_role": 5,
}


async def delete_resource(aws: Aws, resource: Resource, *, say: Callable[[str], None]) -> None:
    kind, rid = resource.kind, resource.resource_id
    aws = await aws.in_region(resource.region)
    try:
        if kind == "dns_record":
            await _delete_record(aws, resource, say)
        elif kind == "instance":
            await aws.run((await aws.ec2()).terminate_instances, InstanceIds=[rid])
            say(f"terminating {rid}...")

            async def terminated() -> bool | None:
                found = await aws.run((await aws.ec2()).describe_instances, InstanceIds=[rid])
                state = found["Reservations"][0]["Instances"][0]["State"]["Name"]
                return True if state == "terminated" else None

            try:
                await poll(
                    terminated, what=f"{rid} to terminate", timeout=600, initial=1, maximum=5
                )
            except WaitTimeout as exc:
                raise StepFailed(str(exc)) from exc
        elif kind == "log_group":
            await aws.run((await aws.logs()).delete_log_group, logGroupName=rid)
        elif kind == "security_group":
            await aws.run((await aws.ec2()).delete_security_group, GroupId=rid)
        elif kind == "instance_profile":
            await delete_instance_profile(aws, rid)
        elif kind == "iam_role":
            await delete_role(aws, rid)
        else:
            raise StepFailed(f"do not know how to delete a {kind}")
    except AwsError as exc:
        if not is_not_found(exc):
            raise
    say(f"deleted {kind} {rid}")


async def _delete_record(aws: Aws, resource: Resource, say: Callable[[str], None]) -> None:
    """Delete the A record and its ownership marker, with exactly the values Toast wrote.
    A record someone changed since is no longer Toast's: it is left alone, and said so."""
    zone = resource.attributes["zone_id"]
    found = await records_at(aws, zone, resource.resource_id)
    recorded = resource.attributes.get("value")
    changes: list[ChangeTypeDef] = []
    for record in found.pointing:
        values = [v["Value"] for v in record.get("ResourceRecords", [])]
        if record["Type"] == "A" and values == [recorded]:
            changes.append({"Action": "DELETE", "ResourceRecordSet": record})
        else:
            say(
                f"left {record['Type']} {resource.resource_id} -> {', '.join(values)}: it was "
                f"changed after Toast pointed it at {recorded}, so it is no longer Toast's"
            )
    marker = resource.attributes.get("marker")
    if found.marker is not None and found.owned_by(installation_id()):
        values = [v["Value"] for v in found.marker.get("ResourceRecords", [])]
        if marker is None or values == [marker]:
            changes.append({"Action": "DELETE", "ResourceRecordSet": found.marker})
    if changes:
        await aws.run(
            (await aws.route53()).change_resource_record_sets,
            HostedZoneId=zone,
            ChangeBatch={"Comment": f"toast: delete {resource.resource_id}", "Changes": changes},
        )


@dataclass(frozen=True)
class Finding:
    kind: str
    resource_id: str
    region: str
    #: "orphan" (this installation's, not in the ledger), "stale" (in the ledger, gone) or
    #: "in-use" (not in the ledger, but a deployment that is not destroyed uses it: kept).
    problem: str
    attributes: dict[str, Any] = field(default_factory=dict, compare=False)

    def to_json(self) -> dict[str, str]:
        return {
            "kind": self.kind,
            "id": self.resource_id,
            "region": self.region,
            "problem": self.problem,
        }


async def find_garbage(aws: Aws, queries: Queries, profile: Profile) -> list[Finding]:
    """Resources of this installation that the ledger does not hold (orphans), and ledger
    entries whose resource is gone (stale), each checked in its own region. Resources of
    another installation, or made by hand, are never reported: gc does not touch them."""
    installation = installation_id()
    region = profile.region
    entries = [r for r in await queries.all_resources(profile=profile.name) if r.deleted_at is None]
    ledger = {(r.kind, r.resource_id) for r in entries}
    findings: list[Finding] = []
    tag_filters: list[FilterTypeDef] = [
        {"Name": f"tag:{MANAGED_BY[0]}", "Values": [MANAGED_BY[1]]},
        {"Name": "tag:toast:profile", "Values": [profile.name]},
        {"Name": f"tag:{TAG}", "Values": [installation]},
    ]
    ec2 = await aws.ec2()
    pages = await aws.pages(
        ec2.describe_instances,
        Filters=[
            *tag_filters,
            {
                "Name": "instance-state-name",
                "Values": ["pending", "running", "stopping", "stopped"],
            },
        ],
    )
    reservations = [r for page in pages for r in page["Reservations"]]
    for instance_id in sorted({i["InstanceId"] for r in reservations for i in r["Instances"]}):
        if ("instance", instance_id) not in ledger:
            findings.append(Finding("instance", instance_id, region, "orphan"))
    group_pages = await aws.pages(ec2.describe_security_groups, Filters=tag_filters)
    for group in (g for page in group_pages for g in page["SecurityGroups"]):
        if ("security_group", group["GroupId"]) not in ledger:
            findings.append(Finding("security_group", group["GroupId"], region, "orphan"))
    try:
        zone = await hosted_zone_id(aws, profile)
    except StepFailed:
        zone = None
    if zone is not None:
        in_use = {
            d.fqdn: d.name for d in await queries.list_deployments() if d.state != "destroyed"
        }
        for fqdn, deployment in sorted((await marked_names(aws, zone, installation)).items()):
            if ("dns_record", fqdn) not in ledger:
                # A name a deployment still uses is never collected, ledger entry or not:
                # the site would go dark. It is reported, and destroy removes it.
                problem = "in-use" if in_use.get(fqdn) == deployment else "orphan"
                findings.append(
                    Finding(
                        "dns_record",
                        fqdn,
                        "global",
                        problem,
                        {"zone_id": zone, "deployment": deployment},
                    )
                )
    for entry in entries:
        if await exists(await aws.in_region(entry.region), entry) is False:
            findings.append(Finding(entry.kind, entry.resource_id, entry.region, "stale"))
    return findings


async def exists(aws: Aws, resource: Resource) -> bool | None:
    """Whether a ledger entry's resource is still there (None: Toast cannot tell)."""
    kind, rid = resource.kind, resource.resource_id
    try:
        if kind == "instance":
            found = await aws.run((await aws.ec2()).describe_instances, InstanceIds=[rid])
            states = [i["State"]["Name"] for r in found["Reservations"] for i in r["Instances"]]
            return bool(states) and states[0] not in ("terminated", "shutting-down")
        if kind == "security_group":
            await aws.run((await aws.ec2()).describe_security_groups, GroupIds=[rid])
            return True
        if kind == "key_pair":
            await aws.run((await aws.ec2()).describe_key_pairs, KeyNames=[rid])
            return True
        if kind == "log_group":
            groups = await aws.run((await aws.logs()).describe_log_groups, logGroupNamePrefix=rid)
            return any(g["logGroupName"] == rid for g in groups["logGroups"])
        if kind == "instance_profile":
            await aws.run((await aws.iam()).get_instance_profile, InstanceProfileName=rid)
            return True
        if kind == "iam_role":
            await aws.run((await aws.iam()).get_role, RoleName=rid)
            return True
        if kind == "dns_record" and "zone_id" in resource.attributes:
            found_records = await records_at(aws, resource.attributes["zone_id"], rid)
            return bool(found_records.pointing)
    except AwsError as exc:
        if is_not_found(exc):
            return False
        raise
    return None


async def collect_garbage(
    aws: Aws, queries: Queries, profile: Profile, findings: list[Finding]
) -> list[str]:
    done = []
    for finding in findings:
        if finding.problem == "in-use":
            done.append(
                f"kept {finding.kind} {finding.resource_id}: deployment "
                f"{finding.attributes.get('deployment')} still uses it (`toast destroy` "
                "removes it)"
            )
        elif finding.problem == "orphan":
            attributes = dict(finding.attributes)
            if finding.kind == "dns_record":
                # Not in the ledger, but its marker proves it is this installation's: delete
                # it with the values the zone holds now.
                found = await records_at(aws, attributes["zone_id"], finding.resource_id)
                a_records = [r for r in found.pointing if r["Type"] == "A"]
                if a_records:
                    values = [v["Value"] for v in a_records[0].get("ResourceRecords", [])]
                    attributes["value"] = values[0] if len(values) == 1 else None
            resource = Resource(
                0,
                None,
                None,
                profile.name,
                finding.kind,
                finding.resource_id,
                finding.region,
                0.0,
                None,
                attributes,
            )
            await delete_resource(aws, resource, say=lambda _m: None)
            done.append(f"deleted orphan {finding.kind} {finding.resource_id}")
        else:
            await queries.mark_resource_deleted(finding.kind, finding.resource_id, finding.region)
            done.append(f"closed stale ledger entry {finding.kind} {finding.resource_id}")
    return done
