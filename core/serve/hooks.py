"""Repository webhooks for live deployments whose profile has a `webhook_url`.

`toast serve` makes them (at start and once a deploy is live), records each in the ledger
as it is created, and destroy deletes them with the deployment's other resources. A token
that may not create hooks (403, 404) is a warning with the fix: polling covers that
deployment instead."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from core.profile.config import Config, ConfigError
from core.profile.targets import TargetError, resolve_target
from core.repo.github import GitHub, GitHubError
from core.repo.heads import is_git_url
from core.serve import hook_secrets
from storage import Queries
from storage.records import Deployment

KIND = "github_webhook"


def hook_url(base: str, name: str) -> str:
    return f"{base.rstrip('/')}/github/{name}"


@dataclass
class HookKeeper:
    queries: Queries
    config: Config
    say: Callable[[str], None]
    #: Deployments whose hook could not be made (no permission): polled instead, not
    #: asked again until `toast serve` restarts.
    refused: set[int] = field(default_factory=set)

    async def hooked(self, deployment: Deployment) -> bool:
        """The deployment has a live hook Toast made (and its secret)."""
        return (
            bool(await self._hooks(deployment)) and hook_secrets.read(deployment.name) is not None
        )

    async def _hooks(self, deployment: Deployment) -> list[int]:
        return [
            int(r.attributes["hook_id"])
            for r in await self.queries.open_resources(deployment.id)
            if r.kind == KIND
        ]

    async def ensure(self, deployment: Deployment) -> None:
        if deployment.id in self.refused or is_git_url(deployment.repo):
            return
        try:
            profile = self.config.profile(deployment.profile)
        except ConfigError:
            return
        if not profile.webhook_url or await self.hooked(deployment):
            return
        try:
            target = resolve_target(profile)
        except TargetError as exc:
            self.say(f"webhook for {deployment.name}: {exc}")
            return
        url = hook_url(profile.webhook_url, deployment.name)
        async with GitHub(target.github_api, target.github_token) as github:
            for old in await self._hooks(deployment):  # its secret is gone: replace it
                await github.delete_hook(deployment.repo, old)
                await self.queries.mark_resource_deleted(KIND, f"{deployment.repo}#{old}", "global")
            secret = hook_secrets.create(deployment.name)
            try:
                hook_id = await github.create_hook(deployment.repo, url, secret)
            except GitHubError as exc:
                hook_secrets.drop(deployment.name)
                if exc.status in (401, 403, 404):
                    self.refused.add(deployment.id)
                    self.say(
                        f"warning: no webhook for {deployment.name} ({exc}); its pushes are "
                        "found by polling. To use webhooks, give the token admin:repo_hook "
                        "(classic) or the Webhooks write permission (fine-grained)"
                    )
                    return
                raise
        await self.queries.record_resource(
            profile=deployment.profile,
            kind=KIND,
            resource_id=f"{deployment.repo}#{hook_id}",
            region="global",
            deployment_id=deployment.id,
            attributes={"repo": deployment.repo, "hook_id": hook_id, "url": url},
        )
        self.say(f"webhook {hook_id} on {deployment.repo} -> {url} for {deployment.name}")
