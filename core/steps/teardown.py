"""Destroy follows the ledger in reverse; gc compares the ledger with what is really there."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.cloud.aws import Aws, AwsError, is_not_found
from core.cloud.dns_owner import marked_names, records_at
from core.commands import render
from core.commands.certbot import certbot_delete
from core.commands.node import stop_app
from core.host.ssh import RemoteError, SshError
from core.profile.config import Profile
from core.profile.installation import TAG, installation_id
from core.runs.context import RunContext, StepFailed
from core.runs.waiting import WaitTimeout, poll
from core.steps.dns import hosted_zone_id
from core.steps.instance_role import delete_instance_profile, delete_role
from core.steps.provision import MANAGED_BY
from core.steps.web import reload
from storage import Queries
from storage.records import Resource

#: Deletion order: what depends on a resource goes before it.
ORDER = {
    "webhook": 0,
    "dns_record": 1,
    "instance": 2,
    "log_group": 3,
    "instance_profile": 4,
    "iam_role": 5,
}


async def host_cleanup(ctx: RunContext) -> dict[str, Any]:
    """Best effort on the host before it goes: stop the app, drop the site and certificate.
    (On EC2 the instance is terminated anyway; on a shared host this is what frees it.)
    Nothing here may stop the cloud resources from being deleted: what cannot be done is
    reported as left on the host."""
    if not await ctx.ledger("instance"):
        return {"_detail": "no instance"}
    try:
        # A host that does not answer soon will not answer: do not hold the teardown.
        remote = await ctx.remote(timeout=min(ctx.settings.ssh_timeout, 20))
    except (StepFailed, AwsError) as exc:
        # An instance already gone (terminated, or no longer known to EC2) cannot say its
        # host keys: there is no host to clean, and the cloud resources still go.
        ctx.say(f"skipping host cleanup: {exc}", step="host-cleanup", level="warning")
        rest = "the app, its nginx site, certificate, files and logs"
        return {"left_on_host": [rest], "_detail": f"host unreachable; left on the host: {rest}"}
    app = ctx.app
    instance = await ctx.instance()
    ports = {
        int(r.attributes["port"])
        for r in await ctx.queries.releases_for(ctx.deployment.id)
        if "port" in r.attributes
    }
    actions: list[tuple[str, str]] = [
        (f"the app on port {port}", stop_app(ctx.host, app, port)) for port in sorted(ports)
    ]
    actions += [
        ("the nginx site", render((*ctx.host.sudo, "rm", "-f", app.site_conf))),
        ("the certificate", certbot_delete(ctx.host, ctx.deployment.fqdn)),
        (
            "the app directory and its logs",
            render(
                (
                    *ctx.host.sudo,
                    "rm",
                    "-rf",
                    "--",
                    app.app_dir,
                    app.log_dir,
                    f"{ctx.host.agent_config_dir}/{instance.resource_id}.json",
                )
            ),
        ),
    ]
    left: list[str] = []
    for what, command in actions:
        try:
            await remote.run(command, what=f"remove {what}", timeout=120)
        except (RemoteError, SshError) as exc:
            left.append(f"{what} ({exc})")
            continue
        if what == "the nginx site":
            try:
                await reload(ctx, remote)
            except (RemoteError, SshError, WaitTimeout) as exc:
                left.append(f"an nginx reload ({exc})")
    if left:
        ctx.say("left on the host: " + "; ".join(left), step="host-cleanup", level="warning")
        return {"left_on_host": left, "_detail": "left on the host: " + "; ".join(left)}
    return {"_detail": "app stopped; site, certificate, files and logs removed"}


async def release_resources(ctx: RunContext) -> dict[str, Any]:
    """Delete the deployment's resources in reverse dependency order; NotFound = gone."""
    resources = sorted(
        await ctx.queries.open_resources(ctx.deployment.id),
        key=lambda r: (ORDER.get(r.kind, 9), -r.id),
    )
    deleted, failed = [], []
    for resource in resources:
        try:
            await delete_resource(ctx.aws, resource, say=lambda m: ctx.say(m, step="teardown"))
        except (AwsError, StepFailed) as exc:
            failed.append(f"{resource.kind} {resource.resource_id}: {exc}")
            continue
        await ctx.queries.mark_resource_deleted(
            resource.kind, resource.resource_id, resource.region
        )
        deleted.append(f"{resource.kind} {resource.resource_id}")
    left = await delete_unused_shared(ctx)
    if failed:
        raise StepFailed(
            "could not delete: " + "; ".join(failed),
            hint=f"run `toast destroy {ctx.deployment.name} --yes` again",
        )
    detail = f"deleted {len(deleted)} resources"
    on_host = ctx.outputs.get("host-cleanup", {}).get("left_on_host")
    if on_host:
        ctx.outcome["summary"] = (
            f"destroy of {ctx.deployment.name} succeeded: every cloud resource is deleted; "
            f"left on the host (it was unreachable or refused): {'; '.join(on_host)}"
        )
    return {"deleted": deleted, "kept_shared": left, "_detail": detail}


async def delete_resource(aws: Aws, resource: Resource, *, say: Any) -> None:
    kind, rid = resource.kind, resource.resource_id
    aws = await aws.in_region(resource.region)
    try:
        if kind == "dns_record":
            await _delete_record(aws, resource, say)
        elif kind == "instance":
            await aws.call("ec2", "terminate_instances", InstanceIds=[rid])
            say(f"terminating {rid}...")

            async def terminated() -> bool | None:
                found = await aws.call("ec2", "describe_instances", InstanceIds=[rid])
                state = found["Reservations"][0]["Instances"][0]["State"]["Name"]
                return True if state == "terminated" else None

            try:
                await poll(
                    terminated, what=f"{rid} to terminate", timeout=600, initial=1, maximum=5
                )
            except WaitTimeout as exc:
                raise StepFailed(str(exc)) from exc
        elif kind == "log_group":
            await aws.call("logs", "delete_log_group", logGroupName=rid)
        elif kind == "security_group":
            await aws.call("ec2", "delete_security_group", GroupId=rid)
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


async def _delete_record(aws: Aws, resource: Resource, say: Any) -> None:
    """Delete the A record and its ownership marker, with exactly the values Toast wrote.
    A record someone changed since is no longer Toast's: it is left alone, and said so."""
    zone = resource.attributes["zone_id"]
    found = await records_at(aws, zone, resource.resource_id)
    recorded = resource.attributes.get("value")
    changes = []
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
        await aws.call(
            "route53",
            "change_resource_record_sets",
            HostedZoneId=zone,
            ChangeBatch={"Comment": f"toast: delete {resource.resource_id}", "Changes": changes},
        )


async def delete_unused_shared(ctx: RunContext) -> list[str]:
    """The security group goes when no other live deployment of the profile needs it.
    The key pair stays: it is free and the next deploy reuses it."""
    others = [
        d
        for d in await ctx.queries.list_deployments()
        if d.profile == ctx.profile_name and d.id != ctx.deployment.id and d.state != "destroyed"
    ]
    kept = []
    for resource in await ctx.queries.open_resources(None):
        if resource.deployment_id is not None or resource.profile != ctx.profile_name:
            continue
        if resource.kind == "security_group" and not others:

            async def gone(r: Resource = resource) -> bool | None:
                try:
                    await delete_resource(ctx.aws, r, say=lambda m: ctx.say(m, step="teardown"))
                except AwsError as exc:
                    if exc.code == "DependencyViolation":  # the instance's ENI is still going
                        return None
                    raise
                return True

            await poll(
                gone,
                what=f"security group {resource.resource_id} to be free",
                timeout=300,
                initial=1,
                maximum=10,
            )
            await ctx.queries.mark_resource_deleted(
                resource.kind, resource.resource_id, resource.region
            )
        else:
            kept.append(f"{resource.kind} {resource.resource_id}")
    return kept


# -- gc -----------------------------------------------------------------------------


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
    tag_filters = [
        {"Name": f"tag:{MANAGED_BY[0]}", "Values": [MANAGED_BY[1]]},
        {"Name": "tag:toast:profile", "Values": [profile.name]},
        {"Name": f"tag:{TAG}", "Values": [installation]},
    ]
    reservations = await aws.paginate(
        "ec2",
        "describe_instances",
        "Reservations",
        Filters=[
            *tag_filters,
            {
                "Name": "instance-state-name",
                "Values": ["pending", "running", "stopping", "stopped"],
            },
        ],
    )
    for instance_id in sorted({i["InstanceId"] for r in reservations for i in r["Instances"]}):
        if ("instance", instance_id) not in ledger:
            findings.append(Finding("instance", instance_id, region, "orphan"))
    groups = await aws.paginate(
        "ec2", "describe_security_groups", "SecurityGroups", Filters=tag_filters
    )
    for group in groups:
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
            found = await aws.call("ec2", "describe_instances", InstanceIds=[rid])
            states = [i["State"]["Name"] for r in found["Reservations"] for i in r["Instances"]]
            return bool(states) and states[0] not in ("terminated", "shutting-down")
        if kind == "security_group":
            await aws.call("ec2", "describe_security_groups", GroupIds=[rid])
            return True
        if kind == "key_pair":
            await aws.call("ec2", "describe_key_pairs", KeyNames=[rid])
            return True
        if kind == "log_group":
            groups = await aws.call("logs", "describe_log_groups", logGroupNamePrefix=rid)
            return any(g["logGroupName"] == rid for g in groups["logGroups"])
        if kind == "instance_profile":
            await aws.call("iam", "get_instance_profile", InstanceProfileName=rid)
            return True
        if kind == "iam_role":
            await aws.call("iam", "get_role", RoleName=rid)
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
