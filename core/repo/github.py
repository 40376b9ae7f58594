"""The GitHub REST API over httpx: repos (a page at a time), branch heads, directory
listings and small files. Redirects are followed (GitHub answers 301 for a renamed
repository), the proxy settings in the environment are honoured (HTTPS_PROXY, NO_PROXY), and
a rate limit is waited out until the reset GitHub names, saying so."""

from __future__ import annotations

import base64
import functools
import logging
import re
import ssl
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import httpx

from core.cloud.faults import Faults
from core.runs.waiting import WaitTimeout, poll

log = logging.getLogger(__name__)

#: A rate limit whose reset is further away than this fails at once, naming the time.
MAX_RATE_LIMIT_WAIT_S = 15 * 60


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context for every GitHub client in this process (httpx's own default, which
    honours SSL_CERT_FILE): a client made with its own loads the CA bundle on the event loop,
    tens of ms of CPU each time, and every step that asks GitHub makes a client."""
    return httpx.create_ssl_context()


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
    def __init__(
        self,
        base_url: str,
        token: str | None,
        *,
        timeout: float = 15.0,
        on_wait: Callable[[str], None] | None = None,
        faults: Faults | None = None,
    ) -> None:
        headers = {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
            "User-Agent": "toast-console",
        }
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers=headers,
            timeout=timeout,
            follow_redirects=True,
            verify=_tls(),
            transport=github_transport(_tls(), faults),  # None unless a run's faults say
        )
        #: Told what a rate-limit wait is for and until when (the engine's progress line).
        self.on_wait = on_wait or (lambda message: log.warning("%s", message))

    async def __aenter__(self) -> GitHub:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.client.aclose()

    async def _get(self, what: str, url: str, **params: str | int) -> httpx.Response:
        resend = True
        while True:
            try:
                response = await self.client.get(url, params=params)
            except httpx.RemoteProtocolError as exc:
                # A kept-alive connection the server closed just as it was reused (GitHub
                # and proxies close idle ones): a GET is safe to send again, once, and the
                # pool opens a new connection for it.
                if resend:
                    resend = False
                    continue
                raise GitHubError(what, None, _describe(exc)) from exc
            except httpx.HTTPError as exc:
                raise GitHubError(what, None, _describe(exc)) from exc
            wait = rate_limit_wait(response, time.time())
            if wait is None:
                break
            await self._wait_out(what, wait)
        if response.status_code >= 400:
            raise GitHubError(what, response.status_code, _error_message(response))
        return response

    async def _wait_out(self, what: str, seconds: float) -> None:
        """Wait until the rate limit GitHub named is over (a deadline poll, never a blind
        sleep), saying when; a reset too far away fails at once with the time."""
        until = time.time() + seconds
        clock = time.strftime("%H:%M:%S", time.localtime(until))
        if seconds > MAX_RATE_LIMIT_WAIT_S:
            raise GitHubError(
                what,
                403,
                f"rate limit exceeded until {clock}; try again then, or use a token "
                "with a higher limit",
            )
        self.on_wait(f"GitHub rate limit on {what}: waiting until {clock} ({seconds:.0f} s)")

        async def over() -> bool | None:
            return True if time.time() >= until else None

        try:
            await poll(
                over,
                what=f"GitHub's rate limit on {what} to reset",
                timeout=seconds + 5,
                initial=min(1.0, seconds),
                maximum=5.0,
            )
        except WaitTimeout as exc:  # pragma: no cover - the clock went backwards
            raise GitHubError(what, 403, str(exc)) from exc

    async def _send(
        self, what: str, method: str, url: str, body: dict[str, object] | None = None
    ) -> httpx.Response:
        """A write (create or delete a hook): sent once, never resent on a dropped
        connection (it may have been done), and a rate limit fails it with the time."""
        try:
            response = await self.client.request(method, url, json=body)
        except httpx.HTTPError as exc:
            raise GitHubError(what, None, _describe(exc)) from exc
        if response.status_code >= 400:
            raise GitHubError(what, response.status_code, _error_message(response))
        return response

    async def create_hook(self, full_name: str, url: str, secret: str) -> int:
        """A repository webhook for pushes and pull requests, JSON, signed with `secret`."""
        body: dict[str, object] = {
            "name": "web",
            "active": True,
            "events": ["push", "pull_request"],
            "config": {"url": url, "content_type": "json", "secret": secret, "insecure_ssl": "0"},
        }
        response = await self._send(
            f"create a webhook on {full_name}", "POST", f"/repos/{full_name}/hooks", body
        )
        return int(response.json()["id"])

    async def hooks(self, full_name: str) -> list[tuple[int, str]]:
        """(id, url) of every webhook of the repository (needs the hook permission)."""
        response = await self._get(f"webhooks of {full_name}", f"/repos/{full_name}/hooks")
        data = response.json()
        return [
            (int(h["id"]), str((h.get("config") or {}).get("url", "")))
            for h in data
            if isinstance(h, dict) and "id" in h
        ]

    async def delete_hook(self, full_name: str, hook_id: int) -> None:
        """Delete a webhook Toast made; one already gone is not an error."""
        try:
            await self._send(
                f"delete webhook {hook_id} of {full_name}",
                "DELETE",
                f"/repos/{full_name}/hooks/{hook_id}",
            )
        except GitHubError as exc:
            if exc.status != 404:
                raise

    async def head_sha(
        self, full_name: str, branch: str, etag: str | None
    ) -> tuple[str | None, str | None]:
        """The branch head's sha by a conditional request (`application/vnd.github.sha`, with
        If-None-Match): (None, etag) when nothing changed, a 304 that costs no rate limit."""
        headers = {"Accept": "application/vnd.github.sha"}
        if etag:
            headers["If-None-Match"] = etag
        what = f"head of {full_name}@{branch}"
        try:
            response = await self.client.get(
                f"/repos/{full_name}/commits/{quote(branch, safe='')}", headers=headers
            )
        except httpx.HTTPError as exc:
            raise GitHubError(what, None, _describe(exc)) from exc
        if response.status_code == 304:
            return None, etag
        wait = rate_limit_wait(response, time.time())
        if wait is not None:
            raise GitHubError(what, response.status_code, f"rate limited for {wait:.0f} s")
        if response.status_code >= 400:
            raise GitHubError(what, response.status_code, _error_message(response))
        return response.text.strip(), response.headers.get("etag")

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

    async def _contents(self, what: str, full_name: str, path: str, ref: str) -> object:
        """The contents API's answer for `path` at `ref`; None when there is nothing there."""
        try:
            response = await self._get(
                what, f"/repos/{full_name}/contents/{quote(path, safe='/')}", ref=ref
            )
        except GitHubError as exc:
            if exc.status == 404:
                return None
            raise
        return response.json()

    async def list_dir(self, full_name: str, path: str, ref: str) -> list[str]:
        """Names in a directory at `ref`; [] when the directory does not exist."""
        data = await self._contents(f"contents of {full_name}/{path}", full_name, path, ref)
        return [item["name"] for item in data] if isinstance(data, list) else []

    async def file_text(self, full_name: str, path: str, ref: str) -> str | None:
        """A small file's text at `ref` (the contents API: base64, up to 1 MB)."""
        data = await self._contents(f"file {full_name}/{path}", full_name, path, ref)
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
            if "next" not in response.links:
                return
            page += 1

    async def branches(self, full_name: str) -> list[str]:
        """Branch names of a repo (the first 100: enough to pick from)."""
        response = await self._get(
            f"branches of {full_name}", f"/repos/{full_name}/branches", per_page=100
        )
        return [b["name"] for b in response.json()]


def rate_limit_wait(response: httpx.Response, now: float) -> float | None:
    """Seconds to wait before asking again, when GitHub answered with a rate limit
    (primary: 403/429 with x-ratelimit-remaining 0 and a reset time; secondary: retry-after),
    else None."""
    if response.status_code not in (403, 429):
        return None
    retry_after = response.headers.get("retry-after")
    if retry_after is not None:
        try:
            return max(0.0, float(retry_after))
        except ValueError:
            return 60.0
    if response.headers.get("x-ratelimit-remaining") == "0":
        try:
            # At least a second: a reset already past (clocks differ) must not become a
            # tight loop of refused requests.
            return max(1.0, float(response.headers["x-ratelimit-reset"]) - now)
        except (KeyError, ValueError):
            return 60.0
    return None


def _describe(exc: httpx.HTTPError) -> str:
    """A transport failure in words: httpx's reason, the OS's underneath it (a refused
    connection, a TLS failure) and the request it was."""
    reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    deepest: BaseException = exc
    while (underneath := deepest.__cause__ or deepest.__context__) is not None:
        deepest = underneath
    if isinstance(deepest, ConnectionRefusedError):
        reason += " (connection refused: nothing listens there)"
    elif deepest is not exc and str(deepest) not in reason:
        reason += f" ({deepest})"
    try:
        request = exc.request
    except RuntimeError:  # raised before a request existed
        return reason
    return f"{reason} ({request.method} {request.url})"


def _error_message(response: httpx.Response) -> str:
    """GitHub's own message for a failed request when it sent one (its errors are JSON
    objects with a "message"), else the start of whatever it sent."""
    try:
        data = response.json()
    except ValueError:
        return response.text.strip()[:200] or response.reason_phrase
    message = data.get("message") if isinstance(data, dict) else None
    if isinstance(message, str):
        return message
    return response.text.strip()[:200]


def token_for(url: str, github_api: str, token: str | None) -> str | None:
    """The GitHub token only for GitHub's own git host over HTTPS (github.com for the public
    API, the API's own host for GitHub Enterprise); never for any other host."""
    if not token:
        return None
    target = urlsplit(url)
    api_host = (urlsplit(github_api).hostname or "").lower()
    git_host = "github.com" if api_host == "api.github.com" else api_host
    if target.scheme == "https" and (target.hostname or "").lower() == git_host:
        return token
    return None


# Fault injection (core.cloud.faults `github:` rules): a transport around the real one, so
# the client meets GitHub's answers (a status, a rate limit with its reset, no answer).


def github_transport(
    verify: ssl.SSLContext, faults: Faults | None
) -> httpx.AsyncBaseTransport | None:
    """The GitHub client's transport under a run's `github:` rules, else None (the client's
    own). Only runs carry faults: the CLI's and the console's own reads are left alone."""
    rules = list(faults.rules("github")) if faults is not None else []
    return _GitHubFaults(rules, verify) if rules else None


@dataclass
class _GitHubRule:
    path: re.Pattern[str]
    answer: str
    left: int


class _GitHubFaults(httpx.AsyncBaseTransport):
    def __init__(self, rules: list[list[str]], verify: ssl.SSLContext) -> None:
        self.inner = httpx.AsyncHTTPTransport(verify=verify)
        self.rules = [
            _GitHubRule(re.compile(r[0]), r[1], int(r[2]) if len(r) > 2 else 10**9)
            for r in rules
            if len(r) > 1
        ]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        for rule in self.rules:
            if rule.left <= 0 or not rule.path.search(request.url.path):
                continue
            rule.left -= 1
            print(
                f"toast fault: injected {rule.answer} into GitHub {request.method} "
                f"{request.url.path}",
                file=sys.stderr,
                flush=True,
            )
            if rule.answer == "Timeout":
                raise httpx.ReadTimeout("injected fault: no answer in time", request=request)
            if rule.answer == "RateLimit":
                reset = str(int(time.time()) + 2)
                headers = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": reset}
                return httpx.Response(
                    403, headers=headers, json={"message": "API rate limit exceeded (injected)"}
                )
            return httpx.Response(int(rule.answer), json={"message": "injected fault"})
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()
