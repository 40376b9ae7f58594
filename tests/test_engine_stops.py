"""Every way the engine can stop leaves a run that is either finished or resumable: SIGTERM,
an unexpected exception, a lost lease, a job that keeps dying, and a dead engine's run
picked up by the next Toast command."""

from __future__ import annotations

import re
import signal
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.runs.waiting import poll_sync
from core.sandbox.controller import SandboxInfo

from .deploy_helpers import https_get, show, start_engine, toast
from .sandbox_helpers import live_instances, record_sets

Clients = Callable[[str], Any]


def queue(name: str) -> None:
    result = toast(
        "--sandbox",
        "deploy",
        "toast-samples/static-site",
        "--subdomain",
        name,
        env={"TOAST_ENGINE_AUTOSTART": "0"},
    )
    assert result.returncode == 0, result.stderr


def db_row(data_dir: Path, sql: str, *params: Any) -> tuple[Any, ...]:
    with sqlite3.connect(data_dir / "toast.db") as db:
        row = db.execute(sql, params).fetchone()
    assert row is not None, sql
    return tuple(row)


def step_state(data_dir: Path, name: str) -> str:
    return str(db_row(data_dir, "SELECT state FROM steps WHERE name = ? ORDER BY id DESC", name)[0])


def wait_step_running(data_dir: Path, name: str) -> None:
    poll_sync(
        lambda: True if step_state(data_dir, name) == "running" else None,
        what=f"step {name} to run",
        timeout=120,
        maximum=0.3,
    )


def wait_live(name: str, timeout: float = 240) -> dict[str, Any]:
    return poll_sync(
        lambda: d if (d := show(name))["state"] in ("live", "failed") else None,
        what=f"{name} to finish deploying",
        timeout=timeout,
        initial=0.5,
        maximum=2,
    )


def test_sigterm_mid_step_hands_the_run_back_and_the_next_command_resumes_it(
    sandbox: SandboxInfo, aws: Clients, isolated_toast: Path
) -> None:
    queue("calm")
    engine = start_engine({"TOAST_FAULTS": "stall:build"})
    wait_step_running(isolated_toast, "build")
    engine.send_signal(signal.SIGTERM)
    output, _ = engine.communicate(timeout=60)
    assert engine.returncode == 0, output
    assert "handed back; the next engine resumes it" in output
    run_state, job_state, owner = db_row(
        isolated_toast,
        "SELECT r.state, j.state, j.owner FROM runs r JOIN jobs j ON j.run_id = r.id",
    )
    assert (run_state, job_state, owner) == ("queued", "queued", None)
    assert step_state(isolated_toast, "build") == "pending"
    assert step_state(isolated_toast, "launch") == "succeeded"
    # Any Toast command starts an engine for the run left behind; nothing else is needed.
    assert toast("ls").returncode == 0
    details = wait_live("calm")
    assert details["state"] == "live", details["last_run"]
    assert len(live_instances(aws)) == 1
    assert "Hello from the Toast static sample" in https_get(sandbox, "calm.sandbox.test").text


def test_a_killed_engines_run_is_resumed_by_the_next_command(
    sandbox: SandboxInfo, aws: Clients, isolated_toast: Path
) -> None:
    queue("phoenix")
    engine = start_engine({"TOAST_FAULTS": "kill-after:ssh"})
    engine.communicate(timeout=120)
    assert engine.returncode == -signal.SIGKILL
    assert db_row(isolated_toast, "SELECT state FROM runs")[0] == "running"
    assert toast("show", "phoenix").returncode == 0  # starts an engine for it
    assert wait_live("phoenix")["state"] == "live"
    assert len(live_instances(aws)) == 1


def test_an_unexpected_exception_fails_the_run_cleanly_with_nothing_orphaned(
    sandbox: SandboxInfo, aws: Clients, isolated_toast: Path
) -> None:
    result = toast(
        "--sandbox",
        "deploy",
        "toast-samples/static-site",
        "--subdomain",
        "oops",
        "--wait",
        env={"TOAST_FAULTS": "raise-in:build"},
    )
    assert result.returncode == 1
    assert (
        "deploy of oops failed at step build: RuntimeError: injected unexpected error in step "
        "build" in result.stderr
    )
    assert re.search(r"Rolled back: .*\binstance i-\w+", result.stderr)
    run_state, job_state = db_row(
        isolated_toast, "SELECT r.state, j.state FROM runs r JOIN jobs j ON j.run_id = r.id"
    )
    assert (run_state, job_state) == ("failed", "done")
    assert show("oops")["state"] == "failed"
    assert live_instances(aws) == []
    assert ("oops.sandbox.test.", "A") not in record_sets(aws, sandbox)


def test_a_lost_lease_stops_the_work_at_once(sandbox: SandboxInfo, isolated_toast: Path) -> None:
    queue("stolen")
    engine = start_engine({"TOAST_FAULTS": "stall:build", "TOAST_LEASE_S": "3"})
    try:
        wait_step_running(isolated_toast, "build")
        # Another engine (elsewhere) takes the job over, as after a network partition.
        with sqlite3.connect(isolated_toast / "toast.db") as db:
            db.execute(
                "UPDATE jobs SET owner = 'elsewhere:1', lease_expires_at = ?", (time.time() + 600,)
            )
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(engine.stdout or []), daemon=True)
        reader.start()
        poll_sync(
            lambda: True if any("lost the lease on run" in ln for ln in lines) else None,
            what="the engine to notice the lost lease",
            timeout=30,
        )
        assert any("stopped its work" in ln for ln in lines)
        # The run is the other engine's now: this one neither finished nor released it.
        run_state, job_state, owner = db_row(
            isolated_toast,
            "SELECT r.state, j.state, j.owner FROM runs r JOIN jobs j ON j.run_id = r.id",
        )
        assert (run_state, job_state, owner) == ("running", "claimed", "elsewhere:1")
        assert step_state(isolated_toast, "build") == "running"
        assert step_state(isolated_toast, "switch") == "pending"
    finally:
        engine.terminate()
        engine.wait(timeout=30)


def test_a_job_that_keeps_dying_is_given_up_after_three_attempts(
    sandbox: SandboxInfo, aws: Clients, isolated_toast: Path
) -> None:
    queue("doomed")
    for _ in range(3):
        engine = start_engine({"TOAST_FAULTS": "kill-during:build"})
        engine.communicate(timeout=120)
        assert engine.returncode == -signal.SIGKILL
    final = start_engine()
    output, _ = final.communicate(timeout=180)
    assert final.returncode == 0, output
    details = show("doomed")
    assert details["state"] == "failed"
    error = details["last_run"]["error"]
    assert "failed at step build: gave up after 3 attempts: the engine running it" in error
    assert "died" in error
    assert re.search(r"Rolled back: .*\binstance i-\w+", error)
    assert live_instances(aws) == []
    assert ("doomed.sandbox.test.", "A") not in record_sets(aws, sandbox)
