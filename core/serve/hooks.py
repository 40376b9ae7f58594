"""Repository webhooks for live deployments whose profile has a `webhook_url`.

`toast serve` makes them (at start and once a deploy is live), records each in the ledger
as it is created, and destroy deletes them with the deployment's other resources. A token
that may not create hooks (403, 404) is a warning with the fix: polling covers that
deployment instead."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from core.cloud.gc import Finding
from core.profile.config import Config, ConfigError, Profile
from core.profile.targets import Target, TargetError, resolve_target
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


async def find_hook_garbage(queries: Queries, profile: Profile, target: Target) -> list[Finding]:
    """Webhooks against the ledger: a ledger entry whose hook is gone (stale), and a hook
    pointing at this profile's receiver (`<webhook_url>/github/...`, a URL only Toast
    makes) that no ledger entry holds (orphan). Other hooks are never reported."""
    entries = [
        r
        for r in await queries.all_resources(profile=profile.name)
        if r.deleted_at is None and r.kind == KIND
    ]
    held = {(str(r.attributes["repo"]), int(r.attributes["hook_id"])) for r in entries}
    repos = {str(r.attributes["repo"]) for r in entries}
    repos |= {
        d.repo
        for d in await queries.list_deployments(include_destroyed=True)
        if d.profile == profile.name and not is_git_url(d.repo)
    }
    prefix = hook_url(profile.webhook_url, "") if profile.webhook_url else None
    findings: list[Finding] = []
    async with GitHub(target.github_api, target.github_token) as github:
        for repo in sorted(repos):
            try:
                present = await github.hooks(repo)
            except GitHubError:
                continue  # not ours to judge: the repository cannot be read
            ids = {hook_id for hook_id, _ in present}
            for hook_id, url in present:
                if prefix and url.startswith(prefix) and (repo, hook_id) not in held:
                    findings.append(
                        Finding(
                            KIND,
                            f"{repo}#{hook_id}",
                            "global",
                            "orphan",
                            {"repo": repo, "hook_id": hook_id},
                        )
                    )
            for entry in entries:
                if entry.attributes["repo"] == repo and int(entry.attributes["hook_id"]) not in ids:
                    findings.append(Finding(KIND, entry.resource_id, "global", "stale"))
    return findings


async def collect_hook_garbage(
    queries: Queries, target: Target, findings: list[Finding]
) -> list[str]:
    done = []
    async with GitHub(target.github_api, target.github_token) as github:
        for finding in findings:
            if finding.kind != KIND:
                continue
            if finding.problem == "orphan":
                await github.delete_hook(
                    str(finding.attributes["repo"]), int(finding.attributes["hook_id"])
                )
                done.append(f"deleted orphan {KIND} {finding.resource_id}")
            elif finding.problem == "stale":
                await queries.mark_resource_deleted(KIND, finding.resource_id, "global")
                done.append(f"closed stale ledger entry {KIND} {finding.resource_id}")
    return done
