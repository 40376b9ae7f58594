"""The GitHub REST API: repos (a page at a time), branch heads, directory listings and small
files, over the standard-library client in `core.repo.http_client`."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass

from core.repo.http_client import HttpClient, HttpError, Response
from core.runs.waiting import poll


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
        self.client = HttpClient(base_url, headers=headers, timeout=timeout)

    async def __aenter__(self) -> GitHub:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.client.aclose()

    async def _get(self, what: str, url: str, **params: str | int) -> Response:
        async def attempt() -> Response | None:
            try:
                response = await self.client.get(url, params)
            except HttpError as exc:
                raise GitHubError(what, None, str(exc)) from exc
            limited = response.status in (403, 429) and (
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
        if response.status >= 400:
            raise GitHubError(what, response.status, _error_message(response))
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
        page = 1
        while True:
            response = await self._get(
                "list repos", "/user/repos", per_page=per_page, sort="pushed", page=page
            )
            yield [
                Repo(
                    r["full_name"],
                    r["clone_url"],
                    r.get("default_branch", "main"),
                    bool(r.get("private")),
                )
                for r in response.json()
            ]
            # GitHub sends rel="next" in the Link header while more pages follow.
            if 'rel="next"' not in (response.headers.get("Link") or ""):
                return
            page += 1

    async def branches(self, full_name: str) -> list[str]:
        """Branch names of a repo (the first 100: enough to pick from)."""
        response = await self._get(
            f"branches of {full_name}", f"/repos/{full_name}/branches", per_page=100
        )
        return [b["name"] for b in response.json()]


def _error_message(response: Response) -> str:
    """GitHub's own message for a failed request when it sent one (its errors are JSON
    objects with a "message"), else the start of whatever it sent."""
    try:
        data = response.json()
    except ValueError:
        return response.text.strip()[:200] or response.reason
    message = data.get("message") if isinstance(data, dict) else None
    if isinstance(message, str):
        return message
    return response.text.strip()[:200]


def token_for(url: str, github_api: str, token: str | None) -> str | None:
    """The GitHub token only for GitHub's own git host over HTTPS (github.com for the public
    API, the API's own host for GitHub Enterprise); never for any other host."""
    from urllib.parse import urlsplit

    if not token:
        return None
    target = urlsplit(url)
    api_host = (urlsplit(github_api).hostname or "").lower()
    git_host = "github.com" if api_host == "api.github.com" else api_host
    if target.scheme == "https" and (target.hostname or "").lower() == git_host:
        return token
    return None
