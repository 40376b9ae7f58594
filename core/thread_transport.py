"""An httpx async transport that sends each request on httpx's own synchronous transport,
in a daemon thread.

Why: httpx's native async transport runs on anyio, and loading anyio's asyncio backend
costs a short CLI command more than its GitHub requests do (measured on 2 cores: 3 requests
took about 66 ms on the native transport against about 47 ms here). The GitHub client
only makes small, bounded request/response exchanges, so nothing is lost by reading each
whole answer in a thread, as boto3's calls are made. Daemon threads, not an executor: a
console that quits mid-request must not wait out the request's timeout at exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from typing import Any

import httpx

# Extensions that describe the answer, not the connection it came on (the sync
# transport's network stream is not usable from the event loop).
_KEPT_EXTENSIONS = ("http_version", "reason_phrase")


_TLS: list[ssl.SSLContext] = []


def verifying_tls_context() -> ssl.SSLContext:
    """One verifying TLS context per process: loading the CA bundle takes ~30 ms a time."""
    if not _TLS:
        _TLS.append(httpx.create_ssl_context())
    return _TLS[0]


class ThreadTransport(httpx.AsyncBaseTransport):
    def __init__(self, *, verify: ssl.SSLContext | bool = True) -> None:
        self._sync = httpx.HTTPTransport(verify=verify)

    @classmethod
    def for_url(cls, url: str) -> ThreadTransport:
        """Verifying for https; plain http (stand-ins on loopback) has no TLS, so the CA
        bundle is not loaded for it."""
        return cls(verify=verifying_tls_context() if url.startswith("https://") else False)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()  # the body as bytes, which the sync transport can send
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[tuple[int, httpx.Headers, bytes, dict[str, Any]]]
        answer = loop.create_future()

        def deliver(outcome: Any, failed: bool) -> None:
            if answer.done():  # the awaiting task was cancelled: drop the outcome
                return
            if failed:
                answer.set_exception(outcome)
            else:
                answer.set_result(outcome)

        def send() -> None:
            try:
                response = self._sync.handle_request(request)
                try:
                    # Raw bytes: the client decodes them (gzip) per the headers it is given.
                    body = b"".join(response.iter_raw())
                finally:
                    response.close()
                outcome: Any = (
                    response.status_code,
                    response.headers,
                    body,
                    {k: v for k, v in response.extensions.items() if k in _KEPT_EXTENSIONS},
                )
                failed = False
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

    async def aclose(self) -> None:
        self._sync.close()
