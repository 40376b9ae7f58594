"""Destroy: best-effort cleanup on the host, then the ledger's resources in reverse
dependency order (deleted through core.cloud.gc, as gc deletes)."""

from __future__ import annotations

from core.cloud.aws import AwsError
from core.cloud.gc import ORDER, delete_resource
from core.commands import render
from core.commands.certbot import certbot_delete
from core.commands.node import stop_app
from core.host.ssh import SSH_ATTEMPTS, Remote, RemoteError, SshError
from core.repo.github import GitHub, GitHubError
from core.runs.context import RunContext
from core.runs.failures import StepFailed
from core.runs.waiting import WaitTimeout, poll
from core.serve import hook_secrets
from core.steps.outputs import HostCleanupOutput, TeardownOutput
from core.steps.web import reload
from storage.records import Resource


async def host_cleanup(ctx: RunContext) -> HostCleanupOutput:
    """Best effort on the host before it goes: stop the app, drop the site and certificate.
    (On EC2 the instance is terminated anyway; on a shared host this is what frees it.)
    Nothing here may stop the cloud resources from being deleted: what cannot be done is
    reported as left on the host."""
    if not await ctx.ledger("instance"):
        return HostCleanupOutput(detail="no instance")
    try:
        # A host that does not answer soon will not answer: do not hold the teardown.
        remote = await ctx.remote(timeout=min(ctx.settings.ssh_timeout, 20))
    except (StepFailed, AwsError) as exc:
        # An instance already gone (terminated, or no longer known to EC2) cannot say its
        # host keys: there is no host to clean, and the cloud resources still go.
        ctx.say(f"skipping host cleanup: {exc}", step="host-cleanup", level="warning")
        rest = "the app, its nginx site, certificate, files and logs"
        return HostCleanupOutput(
            left_on_host=[rest], detail=f"host unreachable; left on the host: {rest}"
        )
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
    for index, (what, command) in enumerate(actions):
        for attempt in range(1, SSH_ATTEMPTS + 1):
            try:
                await remote.run(command, what=f"remove {what}", timeout=120)
                if what == "the nginx site":
                    await reload(ctx, remote)
                break
            except RemoteError as exc:
                left.append(f"{what} ({exc})")
                break
            except WaitTimeout as exc:
                left.append(f"an nginx reload ({exc})")
                break
            except SshError as exc:
                # Each action is safe to repeat: connect again and repeat it.
                again = await _reconnect(ctx) if attempt < SSH_ATTEMPTS else None
                if again is None:
                    left += [f"{undone} ({exc})" for undone, _ in actions[index:]]
                    ctx.say(f"{exc}; giving up on the host", step="host-cleanup", level="warning")
                    return _left_on_host(ctx, left)
                remote = again
                ctx.say(
                    f"{exc}; connected again (attempt {attempt + 1} of {SSH_ATTEMPTS})",
                    step="host-cleanup",
                    level="warning",
                )
    if left:
        return _left_on_host(ctx, left)
    return HostCleanupOutput(detail="app stopped; site, certificate, files and logs removed")


def _left_on_host(ctx: RunContext, left: list[str]) -> HostCleanupOutput:
    ctx.say("left on the host: " + "; ".join(left), step="host-cleanup", level="warning")
    return HostCleanupOutput(left_on_host=left, detail="left on the host: " + "; ".join(left))


async def _reconnect(ctx: RunContext) -> Remote | None:
    try:
        return await ctx.remote(timeout=min(ctx.settings.ssh_timeout, 20))
    except (StepFailed, AwsError):
        return None


async def release_resources(ctx: RunContext) -> TeardownOutput:
    """Delete the deployment's resources in reverse dependency order; NotFound = gone."""
    resources = sorted(
        await ctx.queries.open_resources(ctx.deployment.id),
        key=lambda r: (ORDER.get(r.kind, 9), -r.id),
    )
    deleted, failed = [], []
    for resource in resources:
        try:
            if resource.kind == "github_webhook":
                await _delete_webhook(ctx, resource)
            else:
                await delete_resource(ctx.aws, resource, say=lambda m: ctx.say(m, step="teardown"))
        except (AwsError, StepFailed, GitHubError) as exc:
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
    cleaned = ctx.output_if("host-cleanup", HostCleanupOutput)
    on_host = cleaned.left_on_host if cleaned is not None else []
    if on_host:
        ctx.outcome["summary"] = (
            f"destroy of {ctx.deployment.name} succeeded: every cloud resource is deleted; "
            f"left on the host (it was unreachable or refused): {'; '.join(on_host)}"
        )
    return TeardownOutput(deleted=deleted, kept_shared=left, detail=detail)


async def _delete_webhook(ctx: RunContext, resource: Resource) -> None:
    """The repository webhook `toast serve` made for this deployment, and its secret."""
    async with GitHub(
        ctx.target.github_api, ctx.target.github_token, faults=ctx.settings.faults
    ) as github:
        await github.delete_hook(
            str(resource.attributes["repo"]), int(resource.attributes["hook_id"])
        )
    hook_secrets.drop(ctx.deployment.name)
    ctx.say(f"deleted webhook {resource.resource_id}", step="teardown")


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
