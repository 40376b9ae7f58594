"""Destroy follows the ledger in reverse; gc compares the ledger with what is really there."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.aws import Aws, AwsError, is_not_found
from core.context import RunContext, StepFailed
from core.remote import certbot_delete, render, stop_node_app
from core.steps.provision import MANAGED_BY
from core.steps.web import reload
from core.waiting import WaitTimeout, poll
from storage import Queries
from storage.records import Resource

#: Deletion order: what depends on a resource goes before it.
ORDER = {"webhook": 0, "dns_record": 1, "instance": 2, "log_group": 3}


async def host_cleanup(ctx: RunContext) -> dict[str, Any]:
    """Best effort on the host before it goes: stop the app, drop the site and certificate.
    (On EC2 the instance is terminated anyway; on a shared host this is what frees it.)"""
    if not await ctx.ledger("instance"):
        return {"_detail": "no instance"}
    try:
        remote = await ctx.remote()
    except StepFailed as exc:
        ctx.say(f"skipping host cleanup: {exc}", step="host-cleanup", level="warning")
        return {"_detail": "host unreachable; skipped"}
    app = ctx.app
    ports = {
        int(r.attributes["port"])
        for r in await ctx.queries.releases_for(ctx.deployment.id)
        if "port" in r.attributes
    }
    for port in sorted(ports):
        await remote.run(stop_node_app(app, port), what=f"stop the app on port {port}")
    await remote.run(
        render((*ctx.host.sudo, "rm", "-f", app.site_conf)), what="remove the site config"
    )
    await reload(ctx, remote)
    await remote.run(certbot_delete(ctx.host, ctx.deployment.fqdn), what="delete the certificate")
    instance = await ctx.instance()
    await remote.run(
        render(
            (
                *ctx.host.sudo,
                "rm",
                "-rf",
                app.app_dir,
                f"{ctx.host.agent_config_dir}/{instance.resource_id}.json",
            )
        ),
        what="remove the app directory",
    )
    return {"_detail": "app stopped, site, certificate and files removed"}


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
    return {"deleted": deleted, "kept_shared": left, "_detail": f"deleted {len(deleted)} resources"}


async def delete_resource(aws: Aws, resource: Resource, *, say: Any) -> None:
    kind, rid = resource.kind, resource.resource_id
    try:
        if kind == "dns_record":
            await _delete_record(aws, resource)
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
        else:
            raise StepFailed(f"do not know how to delete a {kind}")
    except AwsError as exc:
        if not is_not_found(exc):
            raise
    say(f"deleted {kind} {rid}")


async def _delete_record(aws: Aws, resource: Resource) -> None:
    zone = resource.attributes["zone_id"]
    name = resource.resource_id.rstrip(".") + "."
    listed = await aws.call(
        "route53",
        "list_resource_record_sets",
        HostedZoneId=zone,
        StartRecordName=name,
        StartRecordType="A",
        MaxItems="1",
    )
    records = [r for r in listed["ResourceRecordSets"] if r["Name"] == name and r["Type"] == "A"]
    if not records:
        return  # already gone
    await aws.call(
        "route53",
        "change_resource_record_sets",
        HostedZoneId=zone,
        ChangeBatch={"Changes": [{"Action": "DELETE", "ResourceRecordSet": records[0]}]},
    )


async def delete_unused_shared(ctx: RunContext) -> list[str]:
    """The security group goes when no other live deployment of the profile needs it.
    The key pair and instance profile stay: they are free and the next deploy reuses them."""
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
    problem: str  # "orphan" (tagged, not in the ledger) or "stale" (in the ledger, gone)

    def to_json(self) -> dict[str, str]:
        return {
            "kind": self.kind,
            "id": self.resource_id,
            "region": self.region,
            "problem": self.problem,
        }


async def find_garbage(aws: Aws, queries: Queries, profile: str, region: str) -> list[Finding]:
    ledger = {
        (r.kind, r.resource_id)
        for r in await queries.all_resources(profile=profile)
        if r.deleted_at is None
    }
    findings: list[Finding] = []
    tag_filters = [
        {"Name": f"tag:{MANAGED_BY[0]}", "Values": [MANAGED_BY[1]]},
        {"Name": "tag:toast:profile", "Values": [profile]},
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
    live_instances = {i["InstanceId"] for r in reservations for i in r["Instances"]}
    for instance_id in sorted(live_instances):
        if ("instance", instance_id) not in ledger:
            findings.append(Finding("instance", instance_id, region, "orphan"))
    groups = await aws.paginate(
        "ec2", "describe_security_groups", "SecurityGroups", Filters=tag_filters
    )
    for group in groups:
        if ("security_group", group["GroupId"]) not in ledger:
            findings.append(Finding("security_group", group["GroupId"], region, "orphan"))
    for kind, rid in sorted(ledger):
        if kind == "instance" and rid not in live_instances:
            findings.append(Finding(kind, rid, region, "stale"))
    return findings


async def collect_garbage(
    aws: Aws, queries: Queries, profile: str, region: str, findings: list[Finding]
) -> list[str]:
    done = []
    for finding in findings:
        if finding.problem == "orphan":
            resource = Resource(
                0, None, None, profile, finding.kind, finding.resource_id, finding.region, 0.0, None
            )
            await delete_resource(aws, resource, say=lambda _m: None)
            done.append(f"deleted orphan {finding.kind} {finding.resource_id}")
        else:
            await queries.mark_resource_deleted(finding.kind, finding.resource_id, finding.region)
            done.append(f"closed stale ledger entry {finding.kind} {finding.resource_id}")
    return done
