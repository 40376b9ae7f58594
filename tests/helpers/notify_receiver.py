"""A notification receiver on loopback: what Apprise's json:// target posts, kept in order.
It can hang (to show a slow receiver holds nothing up)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SECRET = "n0t1fy-S3CRET-pass"


class Receiver(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.hang = threading.Event()  # set: requests wait until `release` is set
        self.release = threading.Event()
        self.arrived = threading.Event()
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def url(self) -> str:
        return f"json://toast:{SECRET}@127.0.0.1:{self.server_address[1]}/hook"


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.messages.append(json.loads(body))
        self.server.arrived.set()
        if self.server.hang.is_set():
            self.server.release.wait(timeout=120)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


@contextmanager
def receiving() -> Iterator[Receiver]:
    """A json:// receiver on loopback for as long as the block runs."""
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.release.set()
        server.shutdown()
