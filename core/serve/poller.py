"""Polling for pushes, where no webhook reaches `toast serve` (a laptop, a box behind NAT,
a token that may not make hooks).

Each live deployment's branch head is read with a conditional request (GitHub answers 304,
free of the rate limit, while nothing changed; `git ls-remote` for a plain git URL). A head
that moved since it was last seen, and is not what is live, is queued as a push would be,
so pushes coalesce the same way. Each head is acted on once: a commit whose build failed
is not retried every interval. At start every deployment is caught up once, hooked or
not (GitHub does not redeliver what arrived while `toast serve` was down)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass

from core.profile.config import Config, ConfigError
from core.profile.targets import TargetError, resolve_target
from core.repo.github import GitHub, GitHubError
from core.repo.heads import RepoCheckError, branch_head, is_git_url
from core.runs.access import Actor, ReadOnlyError
from core.runs.queue import OperationError, PushOutcome, queue_push
from core.runs.states import DeploymentState, Trigger
from core.serve.hooks import HookKeeper
from storage import Queries
from storage.records import Deployment

POLLER = Actor("toast serve (poll)", via=Trigger.POLL)


@dataclass
class Poller:
    queries: Queries
    config: Config
    hooks: HookKeeper
    say: Callable[[str], None]
    interval: float = 60.0

    async def run(self, stop: asyncio.Event, *, poll: bool = True) -> None:
        await self.catch_up()
        while poll and not stop.is_set():
            # Jittered, so many deployments' reads (and many serves) do not line up.
            wait = self.interval * random.uniform(0.9, 1.1)
            try:
                await asyncio.wait_for(stop.wait(), timeout=wait)
            except TimeoutError:
                await self.pass_over(include_hooked=False)

    async def catch_up(self) -> None:
        await self.pass_over(include_hooked=True)

    async def pass_over(self, *, include_hooked: bool) -> None:
        for deployment in await self.queries.list_deployments():
            if deployment.state != DeploymentState.LIVE:
                continue
            if not include_hooked and await self.hooks.hooked(deployment):
                continue  # its pushes arrive as webhooks
            try:
                await self.check(deployment)
            except (GitHubError, RepoCheckError, TargetError, ConfigError) as exc:
                self.say(f"poll {deployment.name}: {exc}")

    async def check(self, deployment: Deployment) -> PushOutcome | None:
        """Read the head; queue it when it moved and is not live. Returns what was done."""
        profile = self.config.profile(deployment.profile)
        target = resolve_target(profile)
        seen = await self.queries.branch_head(deployment.id)
        sha: str | None
        etag: str | None
        if is_git_url(deployment.repo):
            head = await branch_head(
                deployment.repo, deployment.branch, github_api=target.github_api, github_token=None
            )
            sha, etag = head.sha, None
        else:
            async with GitHub(target.github_api, target.github_token) as github:
                sha, etag = await github.head_sha(
                    deployment.repo, deployment.branch, seen.etag if seen else None
                )
        if sha is None:  # 304: nothing changed
            await self.queries.set_branch_head(
                deployment.id, sha=seen.sha if seen else None, etag=etag
            )
            return None
        await self.queries.set_branch_head(deployment.id, sha=sha, etag=etag)
        if seen is not None and seen.sha == sha:
            return None
        try:
            run, outcome = await queue_push(self.queries, deployment.name, sha, actor=POLLER)
        except (OperationError, ReadOnlyError) as exc:
            self.say(f"poll {deployment.name}: {sha[:12]} not queued: {exc}")
            return None
        if outcome != PushOutcome.LIVE:
            what = f"run {run.id}" if run else "nothing"
            self.say(
                f"poll {deployment.name}: {deployment.branch} is at {sha[:12]}: {outcome} ({what})"
            )
        return outcome
