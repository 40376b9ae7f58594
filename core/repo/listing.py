"""The repositories a user can deploy: theirs on GitHub (the sandbox's git host stands in
for it), read a page at a time, kept per process so a second look is instant and on disk
so a new session shows the last list while it reads the current one."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import os
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.profile import paths
from core.profile.targets import Target
from core.repo.github import GitHub, GitHubError, Repo

#: owner/name as GitHub allows it.
FULL_NAME = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")
GIT_URL = re.compile(r"(https?://|ssh://|git@|file://)[^\s\x00-\x1f\x7f]+")


class ReposUnavailable(Exception):
    """The list cannot be read; says why and what to do (a typed repo still works)."""


@dataclass(frozen=True)
class SavedRepos:
    """A list read in an earlier session: shown at once, then checked against GitHub."""

    repos: list[Repo]
    saved_at: float


class RepoCache:
    """Repos already read, per GitHub API and token: in memory for this process, and on disk
    (the data directory, owner-only) so a new session shows the list before GitHub answers.
    The token itself is never written: lists are keyed by a digest of it."""

    def __init__(self, path: Path | None = None) -> None:
        self.lists: dict[str, list[Repo]] = {}
        self._path = path

    @property
    def path(self) -> Path:
        return self._path or paths.data_dir() / "repos-cache.json"

    def get(self, target: Target) -> list[Repo] | None:
        return self.lists.get(_key(target))

    def saved(self, target: Target) -> SavedRepos | None:
        entry = self._read().get(_key(target))
        if not isinstance(entry, dict):
            return None
        try:
            repos = [Repo(*fields) for fields in entry["repos"]]
            return SavedRepos(repos, float(entry["saved_at"]))
        except (TypeError, KeyError, ValueError):
            return None  # a file from another version: read afresh

    def put(self, target: Target, repos: list[Repo], *, now: float | None = None) -> None:
        self.lists[_key(target)] = repos
        lists = self._read()
        lists[_key(target)] = {
            "saved_at": time.time() if now is None else now,
            "repos": [list(dataclasses.astuple(r)) for r in repos],
        }
        try:
            paths.private_dir(self.path.parent)
            tmp = self.path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                json.dump({"version": 1, "lists": lists}, out)
            os.replace(tmp, self.path)
        except OSError:
            pass  # a cache that cannot be written only costs the next session a wait

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        lists = data.get("lists") if isinstance(data, dict) and data.get("version") == 1 else None
        return lists if isinstance(lists, dict) else {}


def _key(target: Target) -> str:
    token = target.github_token
    digest = hashlib.sha256(token.encode()).hexdigest()[:16] if token else "-"
    return f"{target.github_api} {digest}"


CACHE = RepoCache()


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
    await asyncio.to_thread(CACHE.put, target, found)  # a file write: off the event loop


def looks_like_repo(text: str) -> bool:
    """owner/name or a git URL: something the wizard can read a plan from."""
    return bool(FULL_NAME.fullmatch(text) or GIT_URL.fullmatch(text))
