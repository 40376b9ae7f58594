"""Log shipping, the git host's push webhooks and the GitHub API stand-in."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import queue
import shutil
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.runs.waiting import poll_sync
from core.sandbox.controller import Sandbox, SandboxInfo, githost
from core.sandbox.layout import Layout
from core.sandbox.push_hook import sign

from .sandbox_helpers import Clients


def test_signature_matches_githubs_published_vector() -> None:
    assert sign("It's a Secret to Everybody", b"Hello, World!") == (
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    )


def test_a_line_appended_to_a_shipped_file_is_in_cloudwatch_within_2_s(
    aws: Clients, session_sandbox: Sandbox
) -> None:
    host = session_sandbox.host_profile()
    instance_id = f"i-{uuid.uuid4().hex[:17]}"
    build_log = Path(host.log_dir) / f"{instance_id}-build.log"
    build_log.write_text("")
    agent_config = {
        "logs": {
            "logs_collected": {
                "files": {
                    "collect_list": [
                        {
                            "file_path": str(build_log),
                            "log_group_name": "toast/shipper-test/build",
                            "log_stream_name": "{instance_id}",
                        }
                    ]
                }
            }
        }
    }
    (Path(host.agent_config_dir) / f"{instance_id}.json").write_text(json.dumps(agent_config))
    logs = aws("logs")
    marker = f"npm run build finished {uuid.uuid4()}"
    with open(build_log, "a") as handle:
        handle.write(marker + "\n")

    def shipped() -> list[dict[str, Any]] | None:
        try:
            events = logs.filter_log_events(
                logGroupName="toast/shipper-test/build", logStreamNames=[instance_id]
            )["events"]
        except logs.exceptions.ResourceNotFoundException:
            return None
        return events or None

    # Shipped within the shipper's own poll (the delay itself is measured in tests/bench).
    events = poll_sync(shipped, what="the line in CloudWatch", timeout=10.0)
    assert [e["message"] for e in events] == [marker]
    with open(build_log, "a") as handle:
        handle.write("partial line without newline")
    with open(build_log, "a") as handle:
        handle.write(" ...now complete\nnext\n")
    events = poll_sync(
        lambda: ((e := shipped()) and len(e) == 3 and e) or None, what="three lines", timeout=2.0
    )
    assert [e["message"] for e in events][1:] == [
        "partial line without newline ...now complete",
        "next",
    ]


class Receiver(ThreadingHTTPServer):
    def __init__(self) -> None:
        self.deliveries: queue.Queue[tuple[dict[str, str], bytes]] = queue.Queue()
        super().__init__(("127.0.0.1", 0), _ReceiverHandler)


class _ReceiverHandler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.deliveries.put(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def github(sandbox: SandboxInfo) -> httpx.Client:
    token = Path(sandbox.github_token_file).read_text().strip()
    return httpx.Client(
        base_url=sandbox.github_api, headers={"Authorization": f"Bearer {token}"}, timeout=10
    )


def test_a_push_delivers_a_signed_push_webhook(
    sandbox: SandboxInfo, session_sandbox: Sandbox, receiver: Receiver
) -> None:
    secret = "whsec-" + uuid.uuid4().hex
    repo = "toast-samples/static-site"
    url = f"http://127.0.0.1:{receiver.server_address[1]}/hooks/github"
    with github(sandbox) as gh:
        created = gh.post(
            f"/repos/{repo}/hooks",
            json={
                "name": "web",
                "events": ["push"],
                "config": {"url": url, "content_type": "json", "secret": secret},
            },
        )
        assert created.status_code == 201
        hook = created.json()
        assert hook["config"]["secret"] == "********"  # never echoed back, as on GitHub
    try:
        sha = githost.commit_files(
            session_sandbox.layout,
            repo,
            {"message.txt": "pushed in a test\n"},
            "Change the message",
        )
        headers, body = receiver.deliveries.get(timeout=15)
    finally:
        with github(sandbox) as gh:
            assert gh.delete(f"/repos/{repo}/hooks/{hook['id']}").status_code == 204
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["x-hub-signature-256"], expected)
    assert headers["x-github-event"] == "push"
    assert headers["x-github-delivery"]
    payload = json.loads(body)
    assert payload["after"] == sha and payload["ref"] == "refs/heads/main"
    assert payload["head_commit"]["message"] == "Change the message"
    assert payload["repository"]["full_name"] == repo
    assert payload["repository"]["clone_url"].startswith("file://")


def test_github_stand_in_answers_like_github(sandbox: SandboxInfo) -> None:
    with github(sandbox) as gh:
        assert gh.get("/user").json()["login"] == "toast-samples"
        branches = gh.get("/repos/toast-samples/node-server/branches").json()
        assert [b["name"] for b in branches] == ["main"]
        head = gh.get("/repos/toast-samples/node-server/commits/main")
        assert head.status_code == 200 and head.json()["sha"] == branches[0]["commit"]["sha"]
        assert gh.get("/repos/toast-samples/nope").status_code == 404
        limited = gh.get("/user")
        assert int(limited.headers["X-RateLimit-Remaining"]) < 5000
    anonymous = httpx.get(f"{sandbox.github_api}/user/repos", timeout=10)
    assert anonymous.status_code == 401
    wrong = httpx.get(
        f"{sandbox.github_api}/user", headers={"Authorization": "Bearer nope"}, timeout=10
    )
    assert wrong.status_code == 401 and wrong.json()["message"] == "Bad credentials"


def test_github_stand_in_serves_contents_as_detection_reads_them(
    sandbox: SandboxInfo, session_sandbox: Sandbox
) -> None:
    """Directories, files, missing paths and a monorepo app read by owner/name, as a
    deploy reads them from GitHub."""
    from core.repo.detect import detect
    from core.repo.files import read_repo_files

    files = {
        "package.json": json.dumps({"private": True, "workspaces": ["apps/*"]}),
        "package-lock.json": "{}",
        "apps/site/package.json": json.dumps({"scripts": {"build": "vite build"}}),
        "apps/site/.nvmrc": "22\n",
    }
    githost.create_repo(session_sandbox.layout, "toast-samples/mono", files)
    with github(sandbox) as gh:
        root = gh.get("/repos/toast-samples/mono/contents/", params={"ref": "main"}).json()
        assert sorted((e["name"], e["type"]) for e in root) == [
            ("apps", "dir"),
            ("package-lock.json", "file"),
            ("package.json", "file"),
        ]
        nvmrc = gh.get(
            "/repos/toast-samples/mono/contents/apps/site/.nvmrc", params={"ref": "main"}
        )
        assert nvmrc.json()["type"] == "file"
        assert nvmrc.json()["encoding"] == "base64"
        for missing in ("apps/nope", "apps/site/.nvmrc/x"):
            answer = gh.get(f"/repos/toast-samples/mono/contents/{missing}", params={"ref": "main"})
            assert answer.status_code == 404
    token = Path(sandbox.github_token_file).read_text().strip()
    read = asyncio.run(
        read_repo_files(
            "toast-samples/mono",
            "main",
            "apps/site",
            github_api=sandbox.github_api,
            github_token=token,
        )
    )
    plan = detect(read, "apps/site")
    assert plan.node_version.value == "22"  # type: ignore[union-attr]
    assert (plan.root_dir, plan.install_dir) == ("apps/site", "")
    assert plan.install_cmd.source == "package-lock.json"  # type: ignore[union-attr]


def test_github_stand_in_paginates_250_repos_with_link_headers(
    sandbox: SandboxInfo, session_sandbox: Sandbox
) -> None:
    layout = session_sandbox.layout
    existing = githost.list_repos(layout)
    for n in range(250 - len(existing)):
        githost.create_repo(layout, f"paginate/repo-{n:03d}")
    try:
        _check_pagination(sandbox, layout)
    finally:
        shutil.rmtree(layout.git_root / "paginate")


def _check_pagination(sandbox: SandboxInfo, layout: Layout) -> None:
    assert len(githost.list_repos(layout)) == 250
    seen: list[str] = []
    pages = 0
    with github(sandbox) as gh:
        url: str | None = "/user/repos?per_page=100"
        while url:
            response = gh.get(url)
            assert response.status_code == 200
            seen += [r["full_name"] for r in response.json()]
            pages += 1
            url = response.links.get("next", {}).get("url")
    assert pages == 3
    assert len(seen) == 250 and len(set(seen)) == 250
    assert set(seen) == set(githost.list_repos(layout))
