"""The repositories a user can deploy: theirs on GitHub (the sandbox's git host stands in
for it), read a page at a time and kept per process so a second look is instant."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

from core.github import GitHub, GitHubError, Repo
from core.targets import Target

#: owner/name as GitHub allows it.
FULL_NAME = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
GIT_URL = re.compile(r"^(https?://|ssh://|git@|file://)\S+$")


class ReposUnavailable(Exception):
    """The list cannot be read; says why and what to do (a typed repo still works)."""


@dataclass
class RepoCache:
    """Repos already read, per GitHub API and token, for this process."""

    lists: dict[tuple[str, str | None], list[Repo]]

    def get(self, target: Target) -> list[Repo] | None:
        return self.lists.get((target.github_api, target.github_token))

    def put(self, target: Target, repos: list[Repo]) -> None:
        self.lists[(target.github_api, target.github_token)] = repos


CACHE = RepoCache({})


async def repo_pages(target: Target) -> AsyncIterator[list[Repo]]:
    """The user's repos, a page at a time; the whole list is cached once read."""
    if not target.github_token and not target.profile.is_sandbox:
        raise ReposUnavailable(
            "no GitHub token, so your repositories cannot be listed: set GITHUB_TOKEN, or "
            "type owner/name or a git URL"
        )
    found: list[Repo] = []
    try:
        async with GitHub(target.github_api, target.github_token) as api:
            async for page in api.my_repo_pages():
                found += page
                yield page
    except GitHubError as exc:
        hint = " (is GITHUB_TOKEN still valid?)" if exc.status in (401, 403) else ""
        raise ReposUnavailable(f"{exc}{hint}; a typed owner/name or git URL still works") from exc
    CACHE.put(target, found)


def looks_like_repo(text: str) -> bool:
    """owner/name or a git URL: something the wizard can read a plan from."""
    return bool(FULL_NAME.match(text) or GIT_URL.match(text))
