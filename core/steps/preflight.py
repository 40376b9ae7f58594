"""Checks made before anything is spent: nothing is launched for a repository or branch
that does not exist, for a DNS name someone else owns, or where no subnet can take it."""

from __future__ import annotations

from core.cloud.network import NetworkError, choose_subnet
from core.repo.heads import RepoCheckError, branch_head, is_local_repo, local_repo_refusal
from core.runs.context import RunContext
from core.runs.failures import StepFailed
from core.steps.dns import check_name
from core.steps.outputs import CheckOutput


async def check(ctx: RunContext) -> CheckOutput:
    d = ctx.deployment
    reader = ctx.host.local_reader
    try:
        refusal = local_repo_refusal(d.repo, reader)
        if refusal is not None:
            raise refusal
        head = await branch_head(
            d.repo,
            d.branch,
            github_api=ctx.target.github_api,
            github_token=ctx.target.github_token,
            faults=ctx.settings.faults,
        )
        if is_local_repo(d.repo) and reader:
            # The host clones it as its login user, who may not see what this user sees.
            await _readable_by_host(d.repo, d.branch, reader, ctx.host.ssh_user)
    except RepoCheckError as exc:
        raise StepFailed(str(exc), hint=exc.hint) from exc
    zone, _ = await check_name(ctx)
    try:
        placement = await choose_subnet(ctx.aws, ctx.target.profile)
    except NetworkError as exc:
        raise StepFailed(str(exc)) from exc
    return CheckOutput(
        sha=head.sha,
        zone_id=zone,
        subnet_id=placement.subnet_id,
        vpc_id=placement.vpc_id,
        public_ips=placement.public_ips,
        detail=f"{d.repo}@{d.branch} is at {head.sha[:12]}; {d.fqdn} is free; "
        f"subnet {placement.subnet_id} ({placement.source})",
    )


async def _readable_by_host(repo: str, branch: str, reader: tuple[str, ...], user: str) -> None:
    try:
        await branch_head(repo, branch, github_api="", github_token=None, as_user=reader)
    except RepoCheckError as exc:
        raise RepoCheckError(
            f"the host's login user {user} cannot read {repo}: {exc}",
            hint=f"let {user} read the folder (every directory on its path needs o+x, the "
            "repository o+r), or push it to a git host and deploy that URL",
        ) from exc
