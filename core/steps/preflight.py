"""Checks made before anything is spent: nothing is launched for a repository or branch
that does not exist, or for a DNS name someone else owns."""

from __future__ import annotations

from typing import Any

from core.context import RunContext, StepFailed
from core.repo_check import RepoCheckError, branch_head
from core.steps.dns import check_name


async def check(ctx: RunContext) -> dict[str, Any]:
    d = ctx.deployment
    try:
        head = await branch_head(
            d.repo, d.branch, github_api=ctx.target.github_api, github_token=ctx.target.github_token
        )
    except RepoCheckError as exc:
        raise StepFailed(str(exc), hint=exc.hint) from exc
    zone = await check_name(ctx)
    return {
        "sha": head.sha,
        "zone_id": zone,
        "_detail": f"{d.repo}@{d.branch} is at {head.sha[:12]}; {d.fqdn} is free",
    }
