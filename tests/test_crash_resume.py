"""Crash-resume in the middle of the long steps, on the host's side of them: the engine killed
(SIGKILL, no chance to hand anything back) while the build runs on the host and while the
certificate command is in flight there, and `toast serve` killed mid-build. Each time the next
engine finishes the deploy: live, one instance, HTTPS serving what was built.

SIGKILL at every step boundary is tests/test_deploy.py's; SIGTERM mid-step is
tests/test_engine_stops.py's and tests/test_serve.py's."""

from __future__ import annotations

import asyncio
import fcntl
import shutil
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.sandbox.controller import SandboxInfo
from storage import Queries, open_database

from .deploy_helpers import https_get, show, start_engine, toast
from .helpers.serve import serving, slow_build_repo, write_config
from .helpers.waiting import wait_for
from .sandbox_helpers import deployment_instances

Clients = Callable[[str], Any]


def _said(db_path: Path, name: str, text: str) -> bool | None:
    """Whether the deployment's last run has an event containing `text` (its host output)."""

    async def read() -> bool:
        db = await open_database(db_path)
        try:
            queries = Queries(db)
            deployment = await queries.get_deployment(name)
            if deployment is None:
                return False
            runs = await queries.runs_for(deployment.id, limit=1)
            return bool(runs) and any(
                text in e.message for e in await queries.events_for(runs[0].id)
            )
        finally:
            await db.close()

    return True if asyncio.run(read()) else None


def _live(name: str) -> dict[str, Any] | None:
    details = show(name)
    run = details.get("last_run") or {}
    if run.get("state") == "failed":
        raise AssertionError(f"the resumed run failed: {run.get('error')}")
    return details if details["state"] == "live" else None


def _queue(repo: str, name: str, *extra: str) -> None:
    queued = toast(
        "--sandbox",
        "deploy",
        repo,
        "--subdomain",
        name,
        *extra,
        env={"TOAST_ENGINE_AUTOSTART": "0"},
    )
    assert queued.returncode == 0, queued.stderr


def _finish_with_a_fresh_engine(name: str) -> dict[str, Any]:
    engine = start_engine()
    try:
        return wait_for(lambda: _live(name), f"the resumed deploy of {name} to go live", 240)
    finally:
        engine.terminate()
        engine.communicate(timeout=60)


def test_engine_killed_while_the_host_builds_resumes_to_one_live_instance(
    sandbox: SandboxInfo, session_sandbox: Any, aws: Clients, isolated_toast: Path
) -> None:
    flags, flag = slow_build_repo(session_sandbox.layout, "someone/crash-build")
    try:
        _queue("someone/crash-build", "crashbuild", "--env", f"GO_FLAG={flag}")
        engine = start_engine()
        wait_for(
            lambda: _said(isolated_toast / "toast.db", "crashbuild", "waiting for the go-ahead"),
            "the build to be running on the host",
            180,
        )
        engine.kill()
        engine.communicate(timeout=60)
        assert engine.returncode == -signal.SIGKILL
        flag.write_text("go")
        details = _finish_with_a_fresh_engine("crashbuild")
        assert details["last_run"]["kind"] == "deploy"
        assert len(deployment_instances(aws, "crashbuild")) == 1
        assert "built after a restart" in https_get(sandbox, "crashbuild.sandbox.test").text
    finally:
        shutil.rmtree(flags, ignore_errors=True)


def test_engine_killed_while_the_certificate_command_runs_resumes_to_one_live_instance(
    sandbox: SandboxInfo, session_sandbox: Any, aws: Clients, isolated_toast: Path
) -> None:
    fqdn = "crashcert.sandbox.test"
    # The host's certbot command waits at its per-site lock while this test holds it: the
    # engine is killed with the command in flight on the host, as a crash mid-exchange is.
    lock_path = session_sandbox.layout.certbot_dir / f"toast-certbot-{fqdn}.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            _queue("toast-samples/static-site", "crashcert")
            engine = start_engine()

            def waiting_at_the_lock() -> bool | None:
                found = subprocess.run(
                    ["pgrep", "-f", f"flock {lock_path} certbot certonly"],
                    capture_output=True,
                    check=False,
                )
                return True if found.returncode == 0 else None

            wait_for(waiting_at_the_lock, "the certificate command on the host", 180)
            engine.kill()
            engine.communicate(timeout=60)
            assert engine.returncode == -signal.SIGKILL
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    details = _finish_with_a_fresh_engine("crashcert")
    assert details["last_run"]["kind"] == "deploy"
    assert len(deployment_instances(aws, "crashcert")) == 1
    assert "Hello from the Toast static sample" in https_get(sandbox, fqdn).text


def test_serve_killed_mid_build_resumes_under_the_next_serve(
    sandbox: SandboxInfo, session_sandbox: Any, aws: Clients, isolated_toast: Path, tmp_path: Path
) -> None:
    flags, flag = slow_build_repo(session_sandbox.layout, "someone/crash-serve")
    write_config("")
    try:
        with serving(tmp_path, "--no-webhooks", "--no-poll") as first:
            _queue("someone/crash-serve", "crashserve", "--env", f"GO_FLAG={flag}")
            wait_for(
                lambda: _said(
                    isolated_toast / "toast.db", "crashserve", "waiting for the go-ahead"
                ),
                "the build to be running on the host",
                180,
            )
            first.proc.kill()
            assert first.proc.wait(timeout=60) == -signal.SIGKILL
        flag.write_text("go")
        with serving(tmp_path, "--no-webhooks", "--no-poll", name="serve-again"):
            details = wait_for(lambda: _live("crashserve"), "the resumed deploy to go live", 240)
        assert details["last_run"]["kind"] == "deploy"
        assert len(deployment_instances(aws, "crashserve")) == 1
        assert "built after a restart" in https_get(sandbox, "crashserve.sandbox.test").text
    finally:
        shutil.rmtree(flags, ignore_errors=True)
