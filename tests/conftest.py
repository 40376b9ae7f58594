"""Shared fixtures: one real sandbox per test session, state reset between tests."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from core.runs.waiting import WaitTimeout, poll_sync
from core.sandbox import processes
from core.sandbox.controller import Sandbox, SandboxInfo
from core.sandbox.daemon import FAKE_CREDENTIALS, aws_client

PROJECT_ROOT = Path(__file__).resolve().parents[1]

# Benchmarks run only through scripts/bench (they measure; they are not tests).
collect_ignore_glob = [] if os.environ.get("TOAST_BENCH") else ["bench/*"]

# The shell's Toast settings are not the tests': TOAST_ENGINE_AUTOSTART=0 left exported
# would leave every `deploy --wait` waiting for an engine nobody starts.
#: How the suite itself runs (benchmarks, fuzzing depth, the bench's tools and report).
SUITE_SETTINGS = ("TOAST_BENCH", "TOAST_FUZZ", "TOAST_BENCH_TOOLS", "TOAST_BENCH_JSON")
for _name in [n for n in os.environ if n.startswith("TOAST_") and n not in SUITE_SETTINGS]:
    del os.environ[_name]

# Tests never touch real AWS: fake credentials, no instance metadata lookups.
os.environ.update(FAKE_CREDENTIALS)
# Times on screen are local: one zone keeps snapshots the same on every machine.
os.environ["TZ"] = "UTC"
time.tzset()


@pytest.fixture(autouse=True)
def isolated_toast(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Each test gets its own data dir, database and config path. An engine or `toast
    serve` the test left running (it failed before they went idle) is stopped: it would
    otherwise go on working against the sandbox the next test resets."""
    data = tmp_path / "toast-data"
    monkeypatch.setenv("TOAST_DATA_DIR", str(data))
    monkeypatch.setenv("TOAST_DB", str(data / "toast.db"))
    monkeypatch.setenv("TOAST_CONFIG", str(tmp_path / "config" / "config.toml"))
    monkeypatch.delenv("TOAST_PROFILE", raising=False)
    yield data
    stop_processes_of(data)


#: What a Toast engine or `toast serve` runs as (`python -m cli engine ...`).
TOAST_DAEMONS = (" -m cli engine ", " -m cli serve ")


def stop_processes_of(data: Path) -> None:
    """SIGTERM, then SIGKILL, every engine and `toast serve` started with
    TOAST_DATA_DIR=`data`. Only those: a sandbox a test restarted carries the test's
    environment too, and the next tests use it."""
    marker = f"TOAST_DATA_DIR={data}".encode()
    left = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        pid = int(entry.name)
        if not any(daemon in (processes.cmdline(pid) or "") for daemon in TOAST_DAEMONS):
            continue
        try:
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                os.kill(pid, signal.SIGTERM)
                left.append(pid)
        except (OSError, ProcessLookupError):
            continue  # gone already, or not ours to read

    def all_gone() -> bool | None:
        return True if not any(processes.alive(pid, " -m cli ") for pid in left) else None

    try:
        poll_sync(all_gone, what="the test's engine to stop", timeout=10)
    except WaitTimeout:
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="session")
def sandbox_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sandbox")


@pytest.fixture(scope="session")
def session_sandbox(sandbox_dir: Path) -> Iterator[Sandbox]:
    box = Sandbox(sandbox_dir)
    box.up()
    try:
        yield box
    finally:
        # Apps the last test left running would hold their ports for the next session; the
        # host files outside the session's temp dir (when root) go with it.
        box.reset_host()
        box.reset()


@pytest.fixture
def sandbox(session_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> SandboxInfo:
    """The running session sandbox with AWS wiped (the hosted zone recreated) for this test."""
    session_sandbox.reset_aws()
    session_sandbox.reset_host()
    session_sandbox.reset_git()
    monkeypatch.setenv("TOAST_SANDBOX_DIR", str(session_sandbox.layout.root))
    info = session_sandbox.status()
    assert info is not None and info.running, "the session sandbox stopped"
    return info


@pytest.fixture
def aws(sandbox: SandboxInfo) -> Callable[[str], Any]:
    """boto3 clients for the sandbox: aws("ec2"), aws("route53"), ..."""
    return lambda service: aws_client(service, sandbox.aws_endpoint)


def run_toast(
    *args: str, env: dict[str, str] | None = None, input: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run the real `toast` command in a subprocess, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=PROJECT_ROOT,
        input=input,
        timeout=timeout,
        check=False,
    )
