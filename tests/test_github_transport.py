"""The GitHub client (httpx) against a real HTTP server on loopback: answers compressed and
chunked as api.github.com sends them, pages while Link says rel="next", a renamed repository's
301, paths with awkward names, errors (GitHub's and a proxy's), kept-alive connections (and
ones the server dropped), a forward proxy from the environment, a rate limit waited out until
the reset it names, timeouts, TLS verification, and a console that quits while a request
hangs. And a deploy of a renamed repository through the sandbox's GitHub stand-in."""

from __future__ import annotations

import asyncio
import base64
import datetime
import gzip
import json
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from core.repo.github import GitHub, GitHubError
from core.sandbox.controller import Sandbox, SandboxInfo

from .conftest import PROJECT_ROOT
from .deploy_helpers import https_get, toast


class _GitHubLike(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked bodies, as GitHub answers

    def log_message(self, *_: object) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        self.server.connections += 1  # type: ignore[attr-defined]

    def _send(self, status: int, payload: object, *, link: str | None = None) -> None:
        body = gzip.compress(json.dumps(payload).encode())
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Transfer-Encoding", "chunked")
        if link:
            self.send_header("Link", link)
        self.end_headers()
        for start in range(0, len(body), 7):  # many small chunks
            part = body[start : start + 7]
            self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
        self.wfile.write(b"0\r\n\r\n")

    def do_GET(self) -> None:
        base = f"http://127.0.0.1:{self.server.server_address[1]}"
        assert self.headers["Authorization"] == "Bearer t0ken"
        if self.path == "/repos/acme/shop":
            self._send(
                200,
                {
                    "full_name": "acme/shop",
                    "clone_url": "https://github.com/acme/shop.git",
                    "default_branch": "trunk",
                    "private": True,
                },
            )
        elif self.path.startswith("/user/repos"):
            page = 2 if "page=2" in self.path else 1
            names = [f"acme/r{page}-{i}" for i in range(3)]
            self._send(
                200,
                [{"full_name": n, "clone_url": f"https://x/{n}.git"} for n in names],
                link=f'<{base}/user/repos?page=2>; rel="next"' if page == 1 else None,
            )
        elif self.path == "/repos/acme/shop/contents/docs/a%20%231.md?ref=feat%2Fx":
            text = base64.b64encode(b"# One").decode()
            self._send(200, {"name": "a #1.md", "encoding": "base64", "content": text})
        elif self.path.startswith("/repos/acme/old-shop"):
            # GitHub's answer for a renamed repository: 301 to where it lives now.
            self.send_response(301)
            self.send_header(
                "Location", f"{base}/repos/acme/shop" + self.path[len("/repos/acme/old-shop") :]
            )
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/repos/acme/limited":
            now = time.time()
            self.server.asked.append(now)  # type: ignore[attr-defined]
            reset = self.server.reset  # type: ignore[attr-defined]
            if now < reset:
                body = json.dumps({"message": "API rate limit exceeded"}).encode()
                self.send_response(403)
                self.send_header("x-ratelimit-remaining", "0")
                self.send_header("x-ratelimit-reset", str(int(reset)))
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            else:
                self._send(200, {"full_name": "acme/limited", "clone_url": "x"})
        elif self.path == "/repos/acme/proxied":
            body = b"<html>502 Bad Gateway</html>"
            self.send_response(502)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif self.path == "/repos/acme/dropped":
            # Answers as if the connection stays open, then drops it (as a server or proxy
            # does with an idle keep-alive connection).
            self._send(200, {"full_name": "acme/dropped", "clone_url": "x"})
            self.close_connection = True
        else:
            self._send(404, {"message": "Not Found"})


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _GitHubLike)
    server.connections = 0  # type: ignore[attr-defined]
    server.asked = []  # type: ignore[attr-defined]
    server.reset = 0.0  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def api(server: ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


async def test_compressed_chunked_answers_pages_and_errors(api: str) -> None:
    async with GitHub(api, "t0ken") as github:
        repo, repos = await asyncio.gather(github.repo("acme/shop"), github.my_repos())
        assert (repo.default_branch, repo.private) == ("trunk", True)
        assert [r.full_name for r in repos] == [
            *(f"acme/r1-{i}" for i in range(3)),
            *(f"acme/r2-{i}" for i in range(3)),
        ]
        with pytest.raises(GitHubError, match=r"repo acme/gone failed \(HTTP 404\): Not Found"):
            await github.repo("acme/gone")
        # Not JSON (a proxy's page): the error quotes what came back.
        with pytest.raises(GitHubError, match=r"\(HTTP 502\): <html>502 Bad Gateway</html>"):
            await github.repo("acme/proxied")


async def test_a_file_name_with_a_space_and_a_hash_stays_in_the_path(api: str) -> None:
    async with GitHub(api, "t0ken") as github:
        assert await github.file_text("acme/shop", "docs/a #1.md", "feat/x") == "# One"


async def test_one_kept_alive_connection_and_a_dropped_one_is_replaced(
    server: ThreadingHTTPServer, api: str
) -> None:
    async with GitHub(api, "t0ken") as github:
        for _ in range(3):
            assert (await github.repo("acme/shop")).default_branch == "trunk"
        assert server.connections == 1  # type: ignore[attr-defined]
        # The server drops each connection after answering: the next request finds it
        # closed and is sent again on a new one, without an error.
        assert (await github.repo("acme/dropped")).full_name == "acme/dropped"
        assert (await github.repo("acme/dropped")).full_name == "acme/dropped"
        assert (await github.repo("acme/shop")).private
        assert server.connections == 3  # type: ignore[attr-defined]


async def test_a_server_that_never_answers_times_out_with_a_clear_error() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        async with GitHub(url, None, timeout=0.5) as github:
            with pytest.raises(GitHubError, match=r"repo a/b failed: ReadTimeout"):
                await github.repo("a/b")


async def test_nothing_listening_is_a_connection_error() -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{free.getsockname()[1]}"
    async with GitHub(url, None) as github:
        with pytest.raises(GitHubError, match=r"repo a/b failed: ConnectError: .*refused"):
            await github.repo("a/b")


def test_quitting_while_a_request_hangs_does_not_wait_for_it() -> None:
    """A server that accepts and never answers: the process ends as soon as its loop does,
    not after the request's 60 s timeout."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        script = (
            "import asyncio\n"
            "from core.repo.github import GitHub\n"
            "async def main():\n"
            f"    gh = GitHub('http://127.0.0.1:{port}', None, timeout=60)\n"
            "    task = asyncio.create_task(gh.repo('a/b'))\n"
            "    done, _ = await asyncio.wait([task], timeout=0.5)\n"
            "    assert not done, 'the silent server answered'\n"
            "    task.cancel()\n"
            "    print('cancelled', flush=True)\n"
            "asyncio.run(main())\n"
        )
        finished = subprocess.run(
            [sys.executable, "-c", script],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.strip() == "cancelled"


def _self_signed(tmp_path: Path) -> ssl.SSLContext:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    return context


async def test_https_verifies_the_server_certificate(tmp_path: Path) -> None:
    """An https origin whose certificate no public CA signed is refused, not trusted."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _GitHubLike)
    server.connections = 0  # type: ignore[attr-defined]
    server.socket = _self_signed(tmp_path).wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"https://127.0.0.1:{server.server_address[1]}"
        async with GitHub(url, "t0ken", timeout=5) as github:
            with pytest.raises(GitHubError, match=r"ConnectError: .*CERTIFICATE_VERIFY_FAILED"):
                await github.repo("acme/shop")
    finally:
        server.shutdown()
        server.server_close()


async def test_a_renamed_repository_is_followed_to_where_it_lives(api: str) -> None:
    async with GitHub(api, "t0ken") as github:
        repo = await github.repo("acme/old-shop")
        assert repo.full_name == "acme/shop" and repo.default_branch == "trunk"
        assert await github.file_text("acme/old-shop", "docs/a #1.md", "feat/x") == "# One"


class _ForwardProxy(BaseHTTPRequestHandler):
    """A plain HTTP forward proxy, as a corporate one is for http:// origins: it receives the
    absolute URL, fetches it and relays the answer; it counts what passed through."""

    def log_message(self, *_: object) -> None:
        pass

    def do_GET(self) -> None:
        self.server.seen.append(self.path)  # type: ignore[attr-defined]
        upstream = urllib.request.Request(self.path, headers=dict(self.headers.items()))
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(upstream, timeout=10) as answer:
            body = answer.read()
            self.send_response(answer.status)
            for key, value in answer.headers.items():
                if key.lower() not in ("transfer-encoding", "content-length", "connection"):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)


async def test_the_proxy_set_in_the_environment_carries_the_requests(
    api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), _ForwardProxy)
    proxy.seen = []  # type: ignore[attr-defined]
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        for name in ("NO_PROXY", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.server_address[1]}")
        async with GitHub(api, "t0ken") as github:
            assert (await github.repo("acme/shop")).private
        assert proxy.seen == [f"{api}/repos/acme/shop"]  # type: ignore[attr-defined]
    finally:
        proxy.shutdown()
        proxy.server_close()


async def test_a_rate_limit_is_waited_out_until_the_reset_it_names(
    server: ThreadingHTTPServer, api: str
) -> None:
    # GitHub names its reset in whole seconds, and answers from that second on.
    server.reset = float(int(time.time()) + 2)  # type: ignore[attr-defined]
    said: list[str] = []
    async with GitHub(api, "t0ken", on_wait=said.append) as github:
        assert (await github.repo("acme/limited")).full_name == "acme/limited"
    _, *later = server.asked  # type: ignore[attr-defined]
    reset = int(server.reset)  # type: ignore[attr-defined]
    # Asked once, told to wait, and asked again only once the named reset had come.
    assert len(later) == 1 and later[0] >= reset
    assert len(said) == 1 and "GitHub rate limit on repo acme/limited: waiting until" in said[0]


async def test_a_rate_limit_far_away_fails_at_once_naming_when(
    server: ThreadingHTTPServer, api: str
) -> None:
    server.reset = time.time() + 3600  # type: ignore[attr-defined]
    async with GitHub(api, "t0ken") as github:
        with pytest.raises(GitHubError, match=r"rate limit exceeded until \d\d:\d\d:\d\d"):
            await github.repo("acme/limited")
    assert len(server.asked) == 1  # type: ignore[attr-defined]


def test_a_renamed_repository_still_deploys_by_its_old_name(
    sandbox: SandboxInfo, session_sandbox: Sandbox
) -> None:
    """GitHub answers 301 for a repository renamed since: the old name a user remembers
    (or a deployment recorded) reads its plan, clones and serves."""
    layout = session_sandbox.layout
    old, new = "toast-samples/static-site", "toast-samples/renamed-site"
    layout.bare_repo(old).rename(layout.bare_repo(new))
    layout.renames_file.write_text(json.dumps({old: new}))
    deployed = toast("--sandbox", "deploy", old, "--subdomain", "moved", "--wait", "--json")
    assert deployed.returncode == 0, deployed.stderr
    assert "Hello from the Toast static sample" in https_get(sandbox, "moved.sandbox.test").text
