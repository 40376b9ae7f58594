"""SQLite under load: five processes on one database for a minute. `toast serve` (its engine
claiming and ending runs, its receiver taking signed pushes as fast as its rate limit
allows),
the console (headless, refreshing its views), and two CLIs one after another: one queuing
redeploys, one listing and reading the activity. Afterwards every write that was answered
is there, no process said "database is locked", and `PRAGMA integrity_check` is ok.

The runs end at their first step (the profile they name is not configured here): the load is
the engine's writes, not builds."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import re
import secrets
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from core.sandbox.controller import SandboxInfo
from core.serve import hook_secrets
from storage import Queries, open_database

from .conftest import PROJECT_ROOT
from .deploy_helpers import toast
from .helpers.builders import live_deployment
from .helpers.serve import free_port, serving, write_config

LOAD_S = 60.0
NAMES = [f"app{i}" for i in range(6)]


def _push(name: str, sha: str) -> bytes:
    return json.dumps(
        {
            "ref": "refs/heads/main",
            "after": sha,
            "head_commit": {"id": sha, "message": f"load {name}"},
            "pusher": {"name": "load"},
        }
    ).encode()


def test_five_processes_for_a_minute_lose_no_write(
    tmp_path: Path, isolated_toast: Path, sandbox: SandboxInfo
) -> None:
    # `sandbox`: `toast serve` uses the session's sandbox, not one of its own left running.
    write_config("")
    db_path = isolated_toast / "toast.db"
    for name in NAMES:
        asyncio.run(live_deployment(db_path, name))
    keys = {name: hook_secrets.create(name) for name in NAMES}
    deadline = time.monotonic() + LOAD_S
    answered: list[str] = []  # delivery ids the receiver took (2xx)
    queued_runs: list[int] = []  # runs `toast redeploy` said it queued
    complaints: list[str] = []
    port = free_port()

    def send_pushes() -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            n = 0
            while time.monotonic() < deadline:
                name = NAMES[n % len(NAMES)]
                body = _push(name, secrets.token_hex(20))
                delivery = f"load-{n}"
                signature = hmac.new(keys[name].encode(), body, hashlib.sha256).hexdigest()
                answer = client.post(
                    f"/github/{name}",
                    content=body,
                    headers={
                        "X-GitHub-Event": "push",
                        "X-GitHub-Delivery": delivery,
                        "X-Hub-Signature-256": f"sha256={signature}",
                    },
                )
                if answer.status_code in (200, 202):
                    answered.append(delivery)
                elif answer.status_code != 429:  # the rate limit may answer; nothing else
                    complaints.append(f"webhook {delivery}: {answer.status_code} {answer.text}")
                n += 1
                # The load generator's own rate: the receiver takes 2 a second per address
                # after a burst of 60 (its flood limit), so faster sending only earns 429s.
                threading.Event().wait(0.4)

    def redeploys() -> None:
        n = 0
        while time.monotonic() < deadline:
            done = toast("redeploy", NAMES[n % len(NAMES)], env={"TOAST_ENGINE_AUTOSTART": "0"})
            found = re.search(r"as run (\d+)", done.stdout)
            if done.returncode == 0 and found:
                queued_runs.append(int(found.group(1)))
            elif "already" not in done.stdout + done.stderr:
                complaints.append(f"redeploy: {done.returncode} {done.stdout} {done.stderr}")
            n += 1

    def readers() -> None:
        while time.monotonic() < deadline:
            for args in (("ls", "--json"), ("activity", "--json")):
                done = toast(*args)
                if done.returncode != 0:
                    complaints.append(f"{args[0]}: {done.returncode} {done.stderr}")

    with serving(tmp_path, "--webhook-listen", f"127.0.0.1:{port}", "--no-poll") as serve:
        console = subprocess.Popen(
            [
                sys.executable,
                str(PROJECT_ROOT / "tests/bench/console_probe.py"),
                "deployments",
                str(db_path),
            ],
            cwd=PROJECT_ROOT,
            env={**os.environ, "PROBE_T0": repr(time.time()), "PROBE_IDLE_S": str(LOAD_S)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        workers = [threading.Thread(target=work) for work in (send_pushes, redeploys, readers)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=LOAD_S + 120)
        console_output, _ = console.communicate(timeout=LOAD_S + 120)
        serve_log = serve.text()
    assert complaints == [], complaints[:5]
    assert console.returncode == 0 and "idle" in console_output, console_output[-2000:]
    for output in (serve_log, console_output):
        assert "database is locked" not in output
    assert len(answered) > LOAD_S and len(queued_runs) > 5, (len(answered), queued_runs)

    async def check() -> tuple[set[str], set[int]]:
        db = await open_database(db_path)
        try:
            queries = Queries(db)
            kept = {d.delivery_id for d in await queries.deliveries(limit=100_000)}
            runs = set()
            for name in NAMES:
                deployment = await queries.get_deployment(name)
                assert deployment is not None
                runs |= {r.id for r in await queries.runs_for(deployment.id, limit=100_000)}
            return kept, runs
        finally:
            await db.close()

    kept, runs = asyncio.run(check())
    assert set(answered) <= kept, sorted(set(answered) - kept)[:5]
    assert set(queued_runs) <= runs, sorted(set(queued_runs) - runs)[:5]
    with sqlite3.connect(db_path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    print(
        f"\n{LOAD_S:.0f} s, 5 processes: {len(answered)} webhook deliveries taken, "
        f"{len(queued_runs)} redeploys queued by the CLI, all kept; integrity ok"
    )
