"""Helpers for end-to-end tests that deploy through the real CLI and engine."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from core.sandbox.controller import SandboxInfo

from .conftest import PROJECT_ROOT, run_toast
from .helpers.waiting import wait_for

ENGINE_ENV = {
    "TOAST_ENGINE_IDLE_EXIT": "3",
    "TOAST_HEALTH_TIMEOUT": "30",
    "TOAST_SSH_TIMEOUT": "20",
}


def toast(
    *args: str, env: dict[str, str] | None = None, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    return run_toast(*args, env={**ENGINE_ENV, **(env or {})}, timeout=timeout)


def deploy(
    sample: str, name: str, *extra: str, env: dict[str, str] | None = None
) -> dict[str, Any]:
    args = [
        "--sandbox",
        "deploy",
        f"toast-samples/{sample}",
        "--subdomain",
        name,
        "--wait",
        "--json",
    ]
    result = toast(*args, *extra, env=env)
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def show(name: str) -> dict[str, Any]:
    result = toast("show", name, "--json")
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def settled(name: str, timeout: float = 120) -> dict[str, Any]:
    """`toast show` once the last run has ended, after-live checks included (`--wait`
    returns as soon as the site is live)."""

    def ended() -> dict[str, Any] | None:
        details = show(name)
        run = details.get("last_run") or {}
        return details if run.get("state") not in ("queued", "running") else None

    return wait_for(ended, f"the last run of {name} to end", timeout=timeout)


def https_get(
    sandbox: SandboxInfo, fqdn: str, path: str = "/", *, trust: ssl.SSLContext | bool | None = None
) -> httpx.Response:
    verify = trust if trust is not None else ssl.create_default_context(cafile=sandbox.ca_bundle)
    # One connection per request: a pooled connection could hide a handshake or a reload.
    with httpx.Client(
        verify=verify, timeout=10, limits=httpx.Limits(max_keepalive_connections=0)
    ) as client:
        return client.get(
            f"https://127.0.0.1:{sandbox.https_port}{path}",
            headers={"Host": fqdn},
            extensions={"sni_hostname": fqdn},
        )


def gc_findings() -> list[Any]:
    """What `toast gc` finds orphaned in the sandbox account (nothing, after a clean case)."""
    return list(json.loads(toast("--sandbox", "gc", "--json").stdout)["findings"])


def serves(sandbox: SandboxInfo, fqdn: str, text: str) -> bool | None:
    """True when HTTPS on `fqdn` serves a page containing `text` (a wait_for condition)."""
    try:
        return True if text in https_get(sandbox, fqdn).text else None
    except httpx.HTTPError:
        return None


@dataclass
class Hammer:
    """GETs a URL in a loop from a thread and records every failure (bounded in count)."""

    sandbox: SandboxInfo
    fqdn: str
    limit: int = 5000
    bodies: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Hammer:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(timeout=30)

    def _run(self) -> None:
        while not self.stop.is_set() and len(self.bodies) + len(self.failures) < self.limit:
            try:
                response = https_get(self.sandbox, self.fqdn)
            except httpx.HTTPError as exc:
                self.failures.append(f"{type(exc).__name__}: {exc}")
                continue
            if response.status_code != 200:
                self.failures.append(f"HTTP {response.status_code}")
            else:
                self.bodies.append(response.text)


def start_engine(env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "cli", "engine", "--idle-exit", "2"],
        cwd=PROJECT_ROOT,
        env={**os.environ, **ENGINE_ENV, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_engine_exit() -> None:
    """Let the auto-started engine (which carries its environment, faults included) go idle
    and exit, so the next command starts a fresh one."""
    from core.runs.launcher import engine_running
    from core.runs.waiting import poll_sync

    poll_sync(lambda: True if not engine_running() else None, what="the engine to exit", timeout=30)


def engine_log(data_dir: Path) -> str:
    path = data_dir / "engine.log"
    return path.read_text() if path.exists() else ""


def run_at_once(
    db_path: Path,
    cases: Mapping[str, tuple[tuple[str, ...], str]],
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 300,
) -> None:
    """Queue each case (the CLI's arguments, the run's TOAST_FAULTS) without an engine, then
    run them all at once under one, to their ends. Each run carries its own faults (and the
    overrides in `env`); the queuing commands' own calls are left alone."""
    from .helpers.state import runs_ended

    def queue(args: tuple[str, ...], faults: str) -> None:
        extra = {"TOAST_ENGINE_AUTOSTART": "0", **(env or {})}
        done = toast(*args, env={**extra, "TOAST_FAULTS": faults} if faults else extra)
        assert done.returncode == 0, (args, done.stdout, done.stderr)

    with ThreadPoolExecutor(4) as pool:
        for future in [pool.submit(queue, args, faults) for args, faults in cases.values()]:
            future.result()
    engine = start_engine()
    try:
        wait_for(lambda: runs_ended(db_path), f"{len(cases)} runs to end", timeout)
    finally:
        engine.terminate()
        engine.communicate(timeout=60)
