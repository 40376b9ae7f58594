"""Checks made before anything is spent: nothing is launched for a repository or branch
that does not exist, for a DNS name someone else owns, or where no subnet can take it."""

from __future__ import annotations

from core.cloud.network import NetworkError, choose_subnet
from core.repo.heads import RepoCheckError, branch_head
from core.runs.context import RunContext
from core.runs.failures import StepFailed
from core.steps.dns import check_name
from core.steps.outputs import CheckOutput


async def check(ctx: RunContext) -> CheckOutput:
    d = ctx.deployment
    try:
        head = await branch_head(
            d.repo, d.branch, github_api=ctx.target.github_api, github_token=ctx.target.github_token
        )
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
