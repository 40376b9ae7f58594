"""The GitHub REST API, through httpx: repos (with Link pagination), branch heads, hooks."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx

from core.thread_transport import ThreadTransport
from core.waiting import poll


class GitHubError(Exception):
    def __init__(self, what: str, status: int | None, message: str) -> None:
        self.status = status
        super().__init__(
            f"GitHub {what} failed" + (f" (HTTP {status})" if status else "") + f": {message}"
        )


@dataclass(frozen=True)
class Repo:
    full_name: str
    clone_url: str
    default_branch: str
    private: bool


class GitHub:
    def __init__(self, base_url: str, token: str | None, *, timeout: float = 15.0) -> None:
        headers = {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
            "User-Agent": "toast-console",
        }
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.client = httpx.AsyncClient(
            base_url=base_url,
            headers=headers,
            timeout=timeout,
            transport=ThreadTransport.for_url(base_url),
        )

    async def __aenter__(self) -> GitHub:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.client.aclose()

    async def _get(self, what: str, url: str, **params: Any) -> httpx.Response:
        async def attempt() -> httpx.Response | None:
            try:
                response = await self.client.get(url, params=params or None)
            except httpx.HTTPError as exc:
                raise GitHubError(what, None, str(exc) or type(exc).__name__) from exc
            limited = response.status_code in (403, 429) and (
                response.headers.get("retry-after")
                or response.headers.get("x-ratelimit-remaining") == "0"
            )
            if limited:
                return None  # secondary or primary rate limit: back off and try again
            return response

        response = await poll(
            attempt,
            what=f"GitHub rate limit on {what}",
            timeout=120,
            initial=1,
            maximum=30,
            factor=2,
        )
        if response.status_code >= 400:
            message = response.json().get("message", response.text) if response.content else ""
            raise GitHubError(what, response.status_code, message)
        return response

    async def repo(self, full_name: str) -> Repo:
        data = (await self._get(f"repo {full_name}", f"/repos/{full_name}")).json()
        return Repo(
            data["full_name"],
            data["clone_url"],
            data.get("default_branch", "main"),
            bool(data.get("private")),
        )

    async def head(self, full_name: str, branch: str) -> tuple[str, str]:
        data = (
            await self._get(f"head of {full_name}@{branch}", f"/repos/{full_name}/commits/{branch}")
        ).json()
        return data["sha"], data["commit"]["message"].splitlines()[0]

    async def list_dir(self, full_name: str, path: str, ref: str) -> list[str]:
        """Names in a directory at `ref`; [] when the directory does not exist."""
        try:
            response = await self._get(
                f"contents of {full_name}/{path}", f"/repos/{full_name}/contents/{path}", ref=ref
            )
        except GitHubError as exc:
            if exc.status == 404:
                return []
            raise
        data = response.json()
        return [item["name"] for item in data] if isinstance(data, list) else []

    async def file_text(self, full_name: str, path: str, ref: str) -> str | None:
        """A small file's text at `ref` (the contents API: base64, up to 1 MB)."""
        try:
            response = await self._get(
                f"file {full_name}/{path}", f"/repos/{full_name}/contents/{path}", ref=ref
            )
        except GitHubError as exc:
            if exc.status == 404:
                return None
            raise
        data = response.json()
        if not isinstance(data, dict) or data.get("encoding") != "base64":
            return None
        return base64.b64decode(data.get("content", "")).decode("utf-8", errors="replace")

    async def my_repos(self) -> list[Repo]:
        """Every repo of the authenticated user, following Link rel="next"."""
        repos: list[Repo] = []
        async for page in self.my_repo_pages():
            repos += page
        return repos

    async def my_repo_pages(self, *, per_page: int = 100) -> AsyncIterator[list[Repo]]:
        """The authenticated user's repos a page at a time (a list can show the first page
        while the rest arrive), most recently pushed first."""
        url: str | None = "/user/repos"
        params: dict[str, Any] = {"per_page": per_page, "sort": "pushed"}
        while url:
            response = await self._get("list repos", url, **params)
            yield [
                Repo(
                    r["full_name"],
                    r["clone_url"],
                    r.get("default_branch", "main"),
                    bool(r.get("private")),
                )
                for r in response.json()
            ]
            url = response.links.get("next", {}).get("url")
            params = {}

    async def branches(self, full_name: str) -> list[str]:
        """Branch names of a repo (the first 100: enough to pick from)."""
        response = await self._get(
            f"branches of {full_name}", f"/repos/{full_name}/branches", per_page=100
        )
        return [b["name"] for b in response.json()]
