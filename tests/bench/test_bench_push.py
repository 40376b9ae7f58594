"""Push: how soon a push is on its way and live, and what polling costs while nothing changes.

- Webhook received -> redeploy queued: signed GitHub `push` deliveries POSTed to `toast serve`
  as GitHub sends them, each naming a new commit as the deployed branch's head (the commits
  are real, on a side branch; a redeploy builds the branch's head as the git host has it).
  The receiver answers after the run is queued (core/serve/receiver.py), so the answer's
  time is received -> queued. Goal: the slowest within 1 s (GitHub waits 10 s for an answer
  before it marks a delivery failed).
- Push -> live: a commit pushed to the static sample's main, delivered by the sandbox git
  host's post-receive hook, until HTTPS serves its text.
- Polling: 100 live deployments with nothing changing, `toast serve --no-webhooks`: the
  GitHub requests of each pass over them (seen as the stand-in's count of head reads between
  two quiet moments), as requests per hour at the default 60 s interval, and how many of them
  count against GitHub's rate limit (a 200; a conditional read answered 304 is free).
  Goal: none while nothing changes."""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from core.sandbox import githost, push_hook
from core.sandbox.controller import SandboxInfo
from core.sandbox.layout import Layout
from storage import Queries, open_database

from ..deploy_helpers import deploy, serves, toast
from ..helpers.builders import new_deployment
from ..helpers.serve import free_port, serving, write_config
from ..helpers.state import runs_ended
from ..helpers.waiting import wait_for
from .report import Report, quick

SAMPLE = "toast-samples/static-site"
SECTION = "push"


def _side_commits(layout: Layout, count: int) -> list[str]:
    """`count` commits on top of main, pushed to a side branch (its hook delivery is ignored:
    not the deployed branch); each is a real commit a redeploy can build."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        githost.git("clone", "--quiet", "--branch", "main", str(layout.bare_repo(SAMPLE)), tmp)
        shas = []
        for i in range(count):
            (work / "message.txt").write_text(f"Hello from delivery {i}\n")
            githost.git("commit", "--quiet", "--all", "-m", f"Bench delivery {i}", cwd=work)
            shas.append(githost.git("rev-parse", "HEAD", cwd=work).strip())
        githost.git("push", "--quiet", "--force", "origin", "HEAD:refs/heads/bench-side", cwd=work)
        return shas


def test_webhook_to_queued_and_push_to_live(
    sandbox: SandboxInfo, session_sandbox: Any, isolated_toast: Path, tmp_path: Path, bench: Report
) -> None:
    layout: Layout = session_sandbox.layout
    port = free_port()
    write_config(f'[sandbox]\nwebhook_url = "http://127.0.0.1:{port}"\n')
    with serving(tmp_path, "--webhook-listen", f"127.0.0.1:{port}", "--no-poll") as serve:
        assert deploy("static-site", "pushbench")["state"] == "live"
        # The hook is made once the run has ended (--wait returns at live).
        serve.wait_for_line("/github/pushbench for pushbench")
        fqdn = "pushbench.sandbox.test"

        # Push -> live, through the git host's hook.
        took = []
        for i in range(quick(3, 1)):
            text = f"Hello, push {i} {uuid.uuid4().hex[:8]}"
            started = time.monotonic()
            githost.commit_files(layout, SAMPLE, {"message.txt": f"{text}\n"}, f"Push {i}")
            wait_for(lambda t=text: serves(sandbox, fqdn, t), "the pushed commit served", 180)
            took.append(time.monotonic() - started)
        bench.add(
            SECTION,
            "push -> live (static sample, webhook)",
            statistics.median(took),
            "s",
            baseline=f"{len(took)} pushes; slowest {max(took):.1f} s",
        )

        # Webhook received -> queued, as GitHub delivers.
        secret = (Path(os.environ["TOAST_DATA_DIR"]) / "webhooks" / "pushbench.secret").read_text()
        live = githost.git("rev-parse", "main", cwd=layout.bare_repo(SAMPLE)).strip()
        answers: list[float] = []
        outcomes: list[str] = []
        with httpx.Client(timeout=10) as client:
            before = live
            for sha in _side_commits(layout, quick(20, 3)):
                payload = push_hook.push_payload(
                    layout, SAMPLE, before, sha, "refs/heads/main", push_hook.clone_url_base(layout)
                )
                body = json.dumps(payload).encode()
                headers = {
                    "Content-Type": "application/json",
                    "X-GitHub-Event": "push",
                    "X-GitHub-Delivery": str(uuid.uuid4()),
                    "X-Hub-Signature-256": push_hook.sign(secret, body),
                }
                started = time.perf_counter()
                answer = client.post(
                    f"http://127.0.0.1:{port}/github/pushbench", content=body, headers=headers
                )
                answers.append(time.perf_counter() - started)
                assert answer.status_code == 202, answer.text
                outcomes.append(answer.json()["outcome"])
                before = sha
        # Every delivery was taken up (queued, or joined the redeploy waiting); each redeploy
        # builds the branch's head as GitHub has it then.
        wait_for(lambda: runs_ended(isolated_toast / "toast.db"), "the redeploys to end", 240)
        slowest = max(answers) * 1000
        bench.add(
            SECTION,
            "webhook received -> redeploy queued",
            slowest,
            "ms",
            baseline=(
                f"slowest of {len(answers)}; median {statistics.median(answers) * 1000:.0f} ms; "
                + ", ".join(f"{o} {outcomes.count(o)}" for o in sorted(set(outcomes)))
            ),
            goal="<= 1000 ms",
            ok=slowest <= 1000,
        )
        destroyed = toast("destroy", "pushbench", "--yes", "--wait")
        assert destroyed.returncode == 0, destroyed.stderr


async def _seed_live(db_path: Path, count: int, sha: str) -> None:
    """`count` live deployments of the sample's main at `sha`, its head already seen."""
    db = await open_database(db_path)
    try:
        queries = Queries(db)
        for i in range(count):
            d = await queries.create_deployment(new_deployment(f"polled-{i:03d}"), actor="bench")
            release = await queries.add_release(d.id, sha, f"/r/{sha[:12]}", run_id=None)
            await queries.update_deployment(d.id, state="live", current_release_id=release.id)
            await queries.set_branch_head(d.id, sha=sha, etag=None)
    finally:
        await db.close()


def test_poll_requests_for_a_hundred_deployments_with_nothing_changing(
    sandbox: SandboxInfo, session_sandbox: Any, isolated_toast: Path, tmp_path: Path, bench: Report
) -> None:
    count = quick(100, 10)
    layout: Layout = session_sandbox.layout
    head = githost.git("rev-parse", "main", cwd=layout.bare_repo(SAMPLE)).strip()
    asyncio.run(_seed_live(isolated_toast / "toast.db", count, head))
    write_config("")

    def reads() -> dict[str, int]:
        answer = httpx.get(f"{sandbox.github_api}/_toast/head-reads", timeout=10)
        return {k: int(v) for k, v in answer.json().items()}

    def total(counts: dict[str, int]) -> int:
        return sum(counts.values())

    with serving(tmp_path, "--no-webhooks", "--poll-interval", "2"):
        # The catch-up at start reads every head once; then each pass, every 2 s.
        passes: list[int] = []
        last = total(reads())
        quiet_since = time.monotonic()
        pass_start = last
        start_counts: dict[str, int] | None = None

        def sample() -> bool | None:
            nonlocal last, quiet_since, pass_start, start_counts
            now = total(reads())
            if now != last:
                last, quiet_since = now, time.monotonic()
            elif time.monotonic() - quiet_since > 0.5 and now != pass_start:
                # Quiet for half a second after reads: one pass has ended.
                if start_counts is None:
                    start_counts = reads()  # after the catch-up
                else:
                    passes.append(now - pass_start)
                pass_start = now
            return True if len(passes) >= 3 else None

        wait_for(sample, "three polling passes", 120)
        assert start_counts is not None
        counted = reads().get("200", 0) - start_counts.get("200", 0)
    per_pass = statistics.median(passes)
    bench.add(
        SECTION,
        f"poll requests per hour, {count} deployments",
        per_pass * 3600 / 60,
        "requests",
        baseline=f"{per_pass:.0f} a pass every 60 s; passes seen: {passes}",
    )
    bench.add(
        SECTION,
        "of them counted against the rate limit",
        counted,
        "requests",
        baseline="conditional reads answered 304 are free",
        goal="0",
        ok=counted == 0,
    )
