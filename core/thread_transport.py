"""An httpx async transport that sends each request with the standard library's
`http.client`, in a daemon thread.

Why: httpx's own transports run on httpcore (with h11, and anyio for the async one), and
importing and starting those costs a short CLI command more than its GitHub requests do
(measured on 2 cores: three requests took about 66 ms on httpx's async transport, about
47 ms on its sync transport in threads; importing httpcore alone is about 17 ms of a
`toast deploy`). `http.client` is already loaded by httpx itself. The GitHub client makes
only small, bounded request/response exchanges, so nothing is lost by reading each whole
answer in a thread, as boto3's calls are made. httpx still builds the requests and reads
the answers (headers, gzip, Link pagination, errors). Daemon threads, not an executor: a
console that quits mid-request must not wait out the request's timeout at exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import socket
import ssl
import threading
from typing import Any

import httpx

_TLS: list[ssl.SSLContext] = []

#: Connections kept open per origin for the next request (GitHub allows keep-alive).
_IDLE_PER_ORIGIN = 8

#: Hop-by-hop: http.client has already undone the chunking these describe.
_CONSUMED_HEADERS = frozenset({b"transfer-encoding"})

Origin = tuple[str, str, int]


def verifying_tls_context() -> ssl.SSLContext:
    """One verifying TLS context per process: loading the CA bundle takes ~30 ms a time."""
    if not _TLS:
        _TLS.append(httpx.create_ssl_context())
    return _TLS[0]


class ThreadTransport(httpx.AsyncBaseTransport):
    def __init__(self, *, tls: ssl.SSLContext | None) -> None:
        """`tls` verifies https origins; None allows plain http only."""
        self._tls = tls
        self._idle: dict[Origin, list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()
        self._closed = False

    @classmethod
    def for_url(cls, url: str) -> ThreadTransport:
        """Verifying for https; plain http (stand-ins on loopback) has no TLS, so the CA
        bundle is not loaded for it."""
        return cls(tls=verifying_tls_context() if url.startswith("https://") else None)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()  # the body as bytes, which http.client can send
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[tuple[int, list[tuple[bytes, bytes]], bytes, dict[str, Any]]]
        answer = loop.create_future()

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
                outcome, failed = self._exchange(request), False
            except BaseException as exc:  # handed to the awaiting task, which raises it
                outcome, failed = exc, True
            # The event loop may have closed while the request was in flight.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(deliver, outcome, failed)

        threading.Thread(target=send, name="toast-http", daemon=True).start()
        status, headers, body, extensions = await answer
        return httpx.Response(
            status, headers=headers, stream=httpx.ByteStream(body), extensions=extensions
        )

    def _exchange(
        self, request: httpx.Request
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes, dict[str, Any]]:
        url = request.url
        origin = (url.scheme, url.host, url.port or (443 if url.scheme == "https" else 80))
        timeouts = request.extensions.get("timeout", {})
        timeout = max((t for t in timeouts.values() if t is not None), default=None)
        # A kept-alive connection the server has since closed fails before any answer:
        # that one is retried on a new connection, as httpcore does.
        conn, reused = self._connection(origin, timeout)
        try:
            try:
                response = self._send(conn, request)
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                conn.close()
                if not reused:
                    raise
                conn, reused = self._connection(origin, timeout, fresh=True)
                response = self._send(conn, request)
            body = response.read()  # raw: httpx decodes gzip per the headers it is given
        except BaseException as exc:
            conn.close()
            mapped = _as_httpx_error(exc, request)
            if mapped is exc:
                raise
            raise mapped from exc
        if response.will_close:
            conn.close()
        else:
            self._keep(origin, conn)
        headers = [
            (k.encode("latin-1"), v.encode("latin-1"))
            for k, v in response.getheaders()
            if k.lower().encode("latin-1") not in _CONSUMED_HEADERS
        ]
        extensions = {
            "http_version": b"HTTP/1.1" if response.version == 11 else b"HTTP/1.0",
            "reason_phrase": response.reason.encode("latin-1"),
        }
        return response.status, headers, body, extensions

    @staticmethod
    def _send(conn: http.client.HTTPConnection, request: httpx.Request) -> Any:
        target = request.url.raw_path.decode("ascii")
        # httpx has set Host and Accept-Encoding already: http.client must not add its own.
        conn.putrequest(request.method, target, skip_host=True, skip_accept_encoding=True)
        for name, value in request.headers.raw:
            conn.putheader(name, value)
        body = request.content
        conn.endheaders(body if body else None)
        return conn.getresponse()

    def _connection(
        self, origin: Origin, timeout: float | None, *, fresh: bool = False
    ) -> tuple[http.client.HTTPConnection, bool]:
        if not fresh:
            with self._lock:
                idle = self._idle.get(origin)
                if idle:
                    conn = idle.pop()
                    conn.timeout = timeout
                    if conn.sock is not None:
                        conn.sock.settimeout(timeout)
                    return conn, True
        scheme, host, port = origin
        if scheme == "https":
            if self._tls is None:
                raise httpx.UnsupportedProtocol(f"no TLS context for https://{host}:{port}")
            tls = http.client.HTTPSConnection(host, port, timeout=timeout, context=self._tls)
            return tls, False
        if scheme != "http":
            raise httpx.UnsupportedProtocol(f"unsupported URL scheme {scheme!r}")
        return http.client.HTTPConnection(host, port, timeout=timeout), False

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


def _as_httpx_error(exc: BaseException, request: httpx.Request) -> BaseException:
    """httpx's exception for a failure of the exchange (the GitHub client catches
    httpx.HTTPError); anything else unchanged."""
    if isinstance(exc, httpx.HTTPError):
        return exc
    message = str(exc) or type(exc).__name__
    if isinstance(exc, socket.timeout | TimeoutError):
        return httpx.TimeoutException(f"timed out: {message}", request=request)
    if isinstance(exc, http.client.HTTPException):
        return httpx.RemoteProtocolError(message, request=request)
    if isinstance(exc, OSError):
        return httpx.ConnectError(message, request=request)
    return exc
