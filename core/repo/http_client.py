"""A small async HTTP client for the GitHub API and the checkip service: the standard
library's `http.client`, each request in a daemon thread, connections kept alive per origin.

Why not httpx here: these are small, bounded GET exchanges made by short CLI commands
(`toast deploy` asks GitHub for a repo, a branch head and a few files before it queues), and
importing httpx costs such a command about 45 ms on 2 cores, more than its requests take,
while `http.client` is loaded anyway (boto3 and the sandbox need it). Daemon threads, not an
executor: a console that quits mid-request must not wait out the request's timeout at exit.
Proxies: like httpx with a custom transport (which Toast used before), no *_PROXY variables
are read. httpx stays for the engine's own health checks, where a run has time to spare.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import http.client
import json
import socket
import ssl
import threading
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_TLS: list[ssl.SSLContext] = []

#: Connections kept open per origin for the next request (GitHub allows keep-alive).
_IDLE_PER_ORIGIN = 8

#: Characters left as they are in a request path; every other one is percent-encoded, so a
#: branch or file name with `?`, `#` or a space stays part of the path it was put in.
_PATH_SAFE = "/:@!$&'()*+,;=-._~%"

Origin = tuple[str, str, int]


class HttpError(Exception):
    """The exchange failed: nothing listening, a dropped connection, a broken answer."""


class HttpTimeout(HttpError):
    """No answer within the client's timeout."""


@dataclass(frozen=True)
class Response:
    status: int
    reason: str
    headers: http.client.HTTPMessage  # case-insensitive .get()
    body: bytes  # decoded when the server compressed it

    @property
    def text(self) -> str:
        charset = self.headers.get_content_charset() or "utf-8"
        return self.body.decode(charset, errors="replace")

    def json(self) -> Any:
        return json.loads(self.body)


def verifying_tls_context() -> ssl.SSLContext:
    """One verifying TLS context per process (certifi's bundle, as httpx and botocore use):
    loading the bundle takes ~30 ms a time."""
    if not _TLS:
        import certifi  # only an https origin needs it

        _TLS.append(ssl.create_default_context(cafile=certifi.where()))
    return _TLS[0]


class HttpClient:
    def __init__(
        self, base_url: str = "", *, headers: Mapping[str, str] | None = None, timeout: float
    ) -> None:
        """`base_url` is joined to paths given to `get`; absolute URLs are used as given."""
        self._base = urllib.parse.urlsplit(base_url) if base_url else None
        self._headers = {"Accept-Encoding": "gzip", **(headers or {})}
        self._timeout = timeout
        self._idle: dict[Origin, list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()
        self._closed = False

    async def __aenter__(self) -> HttpClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def get(self, url: str, params: Mapping[str, str | int] | None = None) -> Response:
        """GET `url` (a path under the base URL, or absolute); raises HttpError when no
        answer arrives, and returns any answer, whatever its status."""
        origin, target = self._target(url, params)
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[Response] = loop.create_future()

        def deliver(outcome: Any, failed: bool) -> None:
            if answer.done():  # the awaiting task was cancelled: drop the outcome
                return
            if failed:
                answer.set_exception(outcome)
            else:
                answer.set_result(outcome)

        def send() -> None:
            outcome: Any
            try:
                outcome, failed = self._exchange(origin, target), False
            except BaseException as exc:  # handed to the awaiting task, which raises it
                outcome, failed = exc, True
            # The event loop may have closed while the request was in flight.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(deliver, outcome, failed)

        threading.Thread(target=send, name="toast-http", daemon=True).start()
        return await answer

    def _target(self, url: str, params: Mapping[str, str | int] | None) -> tuple[Origin, str]:
        if url.startswith("/"):
            if self._base is None:
                raise ValueError(f"{url!r} is a path and this client has no base URL")
            scheme, netloc = self._base.scheme, self._base.netloc
            path, query = self._base.path.rstrip("/") + url, ""
        else:
            parts = urllib.parse.urlsplit(url)
            scheme, netloc, path, query = parts.scheme, parts.netloc, parts.path, parts.query
        if scheme not in ("http", "https"):
            raise HttpError(f"unsupported URL scheme {scheme!r} in {url!r}")
        split = urllib.parse.urlsplit(f"{scheme}://{netloc}")
        host = split.hostname or ""
        port = split.port or (443 if scheme == "https" else 80)
        target = urllib.parse.quote(path or "/", safe=_PATH_SAFE)
        if params:
            query = "&".join(q for q in (query, urllib.parse.urlencode(params)) if q)
        return (scheme, host, port), target + (f"?{query}" if query else "")

    def _exchange(self, origin: Origin, target: str) -> Response:
        # A kept-alive connection the server has since closed fails before any answer:
        # that one is retried once on a new connection (a GET is safe to repeat).
        conn, reused = self._connection(origin)
        try:
            try:
                response = self._send(conn, origin, target)
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                conn.close()
                if not reused:
                    raise
                conn, reused = self._connection(origin, fresh=True)
                response = self._send(conn, origin, target)
            body = response.read()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise _as_http_error(exc, origin) from exc
        except BaseException:
            conn.close()
            raise
        if response.will_close:
            conn.close()
        else:
            self._keep(origin, conn)
        if (response.getheader("Content-Encoding") or "").lower() == "gzip":
            try:
                body = gzip.decompress(body)
            except (OSError, EOFError) as exc:
                raise HttpError(f"{_name(origin)} sent a broken gzip body: {exc}") from exc
        return Response(response.status, response.reason, response.headers, body)

    def _send(
        self, conn: http.client.HTTPConnection, origin: Origin, target: str
    ) -> http.client.HTTPResponse:
        scheme, host, port = origin
        conn.putrequest("GET", target, skip_host=True, skip_accept_encoding=True)
        default_port = 443 if scheme == "https" else 80
        conn.putheader("Host", host if port == default_port else f"{host}:{port}")
        for name, value in self._headers.items():
            conn.putheader(name, value)
        conn.endheaders()
        return conn.getresponse()

    def _connection(
        self, origin: Origin, *, fresh: bool = False
    ) -> tuple[http.client.HTTPConnection, bool]:
        if not fresh:
            with self._lock:
                idle = self._idle.get(origin)
                if idle:
                    return idle.pop(), True
        scheme, host, port = origin
        if scheme == "https":
            conn = http.client.HTTPSConnection(
                host, port, timeout=self._timeout, context=verifying_tls_context()
            )
            return conn, False
        return http.client.HTTPConnection(host, port, timeout=self._timeout), False

    def _keep(self, origin: Origin, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            idle = self._idle.setdefault(origin, [])
            if self._closed or len(idle) >= _IDLE_PER_ORIGIN:
                conn.close()
            else:
                idle.append(conn)

    async def aclose(self) -> None:
        with self._lock:
            self._closed = True
            idle = [c for conns in self._idle.values() for c in conns]
            self._idle.clear()
        for conn in idle:
            conn.close()


def _name(origin: Origin) -> str:
    scheme, host, port = origin
    return f"{scheme}://{host}:{port}"


def _as_http_error(exc: OSError | http.client.HTTPException, origin: Origin) -> HttpError:
    message = str(exc) or type(exc).__name__
    if isinstance(exc, socket.timeout | TimeoutError):
        return HttpTimeout(f"timed out waiting for {_name(origin)}: {message}")
    if isinstance(exc, ssl.SSLError):
        return HttpError(f"TLS with {_name(origin)} failed: {message}")
    return HttpError(f"{_name(origin)}: {message}")
