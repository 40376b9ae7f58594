"""An HTTP stand-in for the GitHub REST endpoints Toast uses, backed by the local git host.

Shapes, status codes, Link pagination and rate-limit headers follow GitHub's.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from core.sandbox import githost
from core.sandbox.layout import SAMPLES_OWNER, Layout
from core.sandbox.push_hook import clone_url_base

RATE_LIMIT = 5000


class GitHubStandIn(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, layout: Layout, token: str) -> None:
        self.layout = layout
        self.token = token
        self.remaining = RATE_LIMIT
        self.lock = threading.Lock()
        #: Branch-head reads by answer ("200", "304"): tests see what a poller costs.
        self.head_reads: dict[str, int] = {"200": 0, "304": 0}
        super().__init__(("127.0.0.1", port), _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: GitHubStandIn
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, a kept-alive connection waits
    # for the client's delayed ACK (~40 ms) before the body, a delay GitHub itself has not.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the daemon log stays small
        pass

    # -- plumbing -----------------------------------------------------------------------

    def _send(
        self,
        status: int,
        body: Any = None,
        headers: dict[str, str] | None = None,
        *,
        raw: bytes | None = None,
    ) -> None:
        data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        self.send_response(status)
        if raw is None:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        else:
            self.send_header("Content-Type", "application/vnd.github.sha; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        with self.server.lock:
            remaining = self.server.remaining
        self.send_header("X-RateLimit-Limit", str(RATE_LIMIT))
        self.send_header("X-RateLimit-Remaining", str(remaining))
        self.send_header("X-RateLimit-Reset", str(int(time.time()) + 3600))
        self.send_header("X-RateLimit-Resource", "core")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if data and self.command != "HEAD":
            self.wfile.write(data)

    def _error(self, status: int, message: str) -> None:
        self._send(
            status, {"message": message, "documentation_url": "https://docs.github.com/rest"}
        )

    def _authorized(self) -> bool:
        auth = self.headers.get("Authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() in ("bearer", "token") and token == self.server.token:
            with self.server.lock:
                if self.server.remaining > 0:
                    self.server.remaining -= 1
                    return True
            self._error(403, "API rate limit exceeded")
            return False
        self._error(401, "Bad credentials" if auth else "Requires authentication")
        return False

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw or b"{}")
        except ValueError:
            return None

    def _route(self, method: str) -> None:
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if url.path == "/_toast/head-reads" and method == "GET":
            with self.server.lock:  # the sandbox's own: what a poller has cost so far
                counts = dict(self.server.head_reads)
            self._send(200, counts)
            return
        if not self._authorized():
            return
        moved = self._renamed(url.path)
        if moved is not None:
            # As GitHub does for a renamed repository: a permanent redirect, every method.
            location = moved + (f"?{url.query}" if url.query else "")
            self._send(
                301, {"message": "Moved Permanently", "url": location}, {"Location": location}
            )
            return
        for pattern, handler_method, handler in _ROUTES:
            match = re.fullmatch(pattern, url.path)
            if match and handler_method == method:
                handler(self, query, *match.groups())
                return
        self._error(404, "Not Found")

    def _renamed(self, path: str) -> str | None:
        match = re.fullmatch(r"/repos/([^/]+)/([^/]+)(/.*)?", path)
        if match is None:
            return None
        try:
            renames = json.loads(self.server.layout.renames_file.read_text())
        except (OSError, ValueError):
            return None
        new = renames.get(f"{match.group(1)}/{match.group(2)}")
        return f"/repos/{new}{match.group(3) or ''}" if isinstance(new, str) else None

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def do_DELETE(self) -> None:
        self._route("DELETE")

    # -- endpoints --------------------------------------------------------------------

    def user(self, query: dict[str, str]) -> None:
        self._send(200, {"login": SAMPLES_OWNER, "id": 1, "type": "User"})

    def user_repos(self, query: dict[str, str]) -> None:
        try:
            per_page = min(max(int(query.get("per_page", "30")), 1), 100)
            page = max(int(query.get("page", "1")), 1)
        except ValueError:
            self._error(422, "per_page and page must be integers")
            return
        names = githost.list_repos(self.server.layout)
        chunk = names[(page - 1) * per_page : page * per_page]
        last = max(1, -(-len(names) // per_page))
        links = []
        base = f"http://{self.headers.get('Host', '127.0.0.1')}/user/repos"

        def link(p: int, rel: str) -> str:
            return f'<{base}?{urlencode({"per_page": per_page, "page": p})}>; rel="{rel}"'

        if page < last:
            links += [link(page + 1, "next"), link(last, "last")]
        if page > 1:
            links += [link(1, "first"), link(page - 1, "prev")]
        headers = {"Link": ", ".join(links)} if links else {}
        self._send(200, [self._repo_json(n) for n in chunk], headers)

    def repo(self, query: dict[str, str], owner: str, name: str) -> None:
        full = f"{owner}/{name}"
        if full not in githost.list_repos(self.server.layout):
            self._error(404, "Not Found")
            return
        self._send(200, self._repo_json(full))

    def branches(self, query: dict[str, str], owner: str, name: str) -> None:
        full = f"{owner}/{name}"
        if full not in githost.list_repos(self.server.layout):
            self._error(404, "Not Found")
            return
        heads = githost.branches(self.server.layout, full)
        self._send(
            200,
            [
                {"name": b, "commit": {"sha": sha, "url": ""}, "protected": False}
                for b, sha in sorted(heads.items())
            ],
        )

    def commit(self, query: dict[str, str], owner: str, name: str, ref: str) -> None:
        full = f"{owner}/{name}"
        if full not in githost.list_repos(self.server.layout):
            self._error(404, "Not Found")
            return
        head = githost.head_commit(self.server.layout, full, ref)
        if head is None:
            self._error(422, f"No commit found for SHA: {ref}")
            return
        if "application/vnd.github.sha" in self.headers.get("Accept", ""):
            # As GitHub: the sha alone, an ETag, and 304 for If-None-Match (free of the
            # rate limit, so the request _authorized counted is given back).
            etag = f'"{head.sha}"'
            if self.headers.get("If-None-Match") == etag:
                with self.server.lock:
                    self.server.remaining += 1
                    self.server.head_reads["304"] += 1
                self._send(304, headers={"ETag": etag}, raw=b"")
                return
            with self.server.lock:
                self.server.head_reads["200"] += 1
            self._send(200, headers={"ETag": etag}, raw=head.sha.encode())
            return
        person = {"name": head.author_name, "email": head.author_email, "date": head.timestamp}
        self._send(
            200,
            {
                "sha": head.sha,
                "commit": {"message": head.message, "author": person, "committer": person},
            },
        )

    def contents(self, query: dict[str, str], owner: str, name: str, path: str = "") -> None:
        full = f"{owner}/{name}"
        if full not in githost.list_repos(self.server.layout):
            self._error(404, "Not Found")
            return
        path = path.strip("/")
        found = githost.tree_entry(self.server.layout, full, query.get("ref", "HEAD"), path)
        if found is None:
            self._error(404, "Not Found")
        elif isinstance(found, list):
            self._send(
                200,
                [{"name": n, "path": f"{path}/{n}" if path else n, "type": t} for n, t in found],
            )
        else:
            self._send(
                200,
                {
                    "type": "file",
                    "name": path.rsplit("/", 1)[-1],
                    "path": path,
                    "size": len(found),
                    "encoding": "base64",
                    "content": base64.encodebytes(found).decode(),
                },
            )

    def list_hooks(self, query: dict[str, str], owner: str, name: str) -> None:
        full = f"{owner}/{name}"
        if full not in githost.list_repos(self.server.layout):
            self._error(404, "Not Found")
            return
        with githost.hooks_locked(self.server.layout) as store:
            hooks = store["hooks"].get(full, [])
            self._send(200, [_public_hook(h) for h in hooks])

    def create_hook(self, query: dict[str, str], owner: str, name: str) -> None:
        full = f"{owner}/{name}"
        if full not in githost.list_repos(self.server.layout):
            self._error(404, "Not Found")
            return
        body = self._body()
        config = body.get("config") if isinstance(body, dict) else None
        if not isinstance(config, dict) or not str(config.get("url", "")).startswith(
            ("http://", "https://")
        ):
            self._send(
                422,
                {
                    "message": "Validation Failed",
                    "errors": [
                        {
                            "resource": "Hook",
                            "code": "custom",
                            "field": "config.url",
                            "message": "url is missing or not http(s)",
                        }
                    ],
                },
            )
            return
        with githost.hooks_locked(self.server.layout) as store:
            hook = {
                "id": store["next_id"],
                "type": "Repository",
                "name": body.get("name", "web"),
                "active": bool(body.get("active", True)),
                "events": list(body.get("events", ["push"])),
                "config": {
                    "url": config["url"],
                    "content_type": config.get("content_type", "form"),
                    "insecure_ssl": str(config.get("insecure_ssl", "0")),
                    "secret": config.get("secret"),
                },
                "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            store["next_id"] += 1
            store["hooks"].setdefault(full, []).append(hook)
        self._send(201, _public_hook(hook))

    def delete_hook(self, query: dict[str, str], owner: str, name: str, hook_id: str) -> None:
        full = f"{owner}/{name}"
        with githost.hooks_locked(self.server.layout) as store:
            hooks = store["hooks"].get(full, [])
            kept = [h for h in hooks if str(h["id"]) != hook_id]
            if len(kept) == len(hooks):
                self._error(404, "Not Found")
                return
            store["hooks"][full] = kept
        self._send(204)

    def _repo_json(self, full_name: str) -> dict[str, Any]:
        owner, name = full_name.split("/", 1)
        return {
            "id": abs(hash(full_name)) % 10**9,
            "name": name,
            "full_name": full_name,
            "owner": {"login": owner, "type": "User"},
            "private": False,
            "default_branch": "main",
            "clone_url": f"{clone_url_base(self.server.layout)}/{full_name}.git",
            "html_url": f"https://github.invalid/{full_name}",
        }


def _public_hook(hook: dict[str, Any]) -> dict[str, Any]:
    """A hook as GitHub shows it: the secret is never echoed back."""
    shown = {k: v for k, v in hook.items() if k != "config"}
    config = {k: v for k, v in hook["config"].items() if k != "secret"}
    if hook["config"].get("secret"):
        config["secret"] = "********"
    shown["config"] = config
    return shown


_SEG = r"([A-Za-z0-9_.-]+)"
_ROUTES: list[tuple[str, str, Callable[..., None]]] = [
    (r"/user", "GET", _Handler.user),
    (r"/user/repos", "GET", _Handler.user_repos),
    (rf"/repos/{_SEG}/{_SEG}", "GET", _Handler.repo),
    (rf"/repos/{_SEG}/{_SEG}/branches", "GET", _Handler.branches),
    (rf"/repos/{_SEG}/{_SEG}/commits/(.+)", "GET", _Handler.commit),
    (rf"/repos/{_SEG}/{_SEG}/contents/?", "GET", _Handler.contents),
    (rf"/repos/{_SEG}/{_SEG}/contents/(.+)", "GET", _Handler.contents),
    (rf"/repos/{_SEG}/{_SEG}/hooks", "GET", _Handler.list_hooks),
    (rf"/repos/{_SEG}/{_SEG}/hooks", "POST", _Handler.create_hook),
    (rf"/repos/{_SEG}/{_SEG}/hooks/(\d+)", "DELETE", _Handler.delete_hook),
]
