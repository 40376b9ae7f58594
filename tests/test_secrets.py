"""A secret echoed by a build never leaves the host's 0600 env file: not in the build log,
CloudWatch, SQLite or `toast logs`, on the first deploy and on every redeploy."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.runs.waiting import poll_sync
from core.sandbox.controller import Sandbox, SandboxInfo

from .deploy_helpers import toast

Clients = Callable[[str], Any]
CANARY = "zz-canary-8842"


def shipped_build_log(aws: Clients, name: str, count: int) -> str:
    """The build log as CloudWatch has it, once `count` redacted lines have been shipped."""

    def shipped() -> str | None:
        events = aws("logs").filter_log_events(logGroupName=f"/toast/{name}/build")["events"]
        text = "\n".join(e["message"] for e in events)
        return text if text.count("CANARY2=[REDACTED]") >= count else None

    return poll_sync(shipped, what="the build log to reach CloudWatch", timeout=30, maximum=1)


def assert_nowhere(
    aws: Clients, session_sandbox: Sandbox, isolated_toast: Path, name: str, count: int
) -> None:
    build_log = session_sandbox.layout.host_logs / name / "build.log"
    text = build_log.read_text()
    assert text.count("CANARY2=[REDACTED]") == count  # the build did print it, redacted
    assert CANARY not in text
    assert build_log.stat().st_mode & 0o007 == 0  # not world-readable
    assert CANARY not in shipped_build_log(aws, name, count)
    for path in isolated_toast.glob("toast.db*"):
        assert CANARY.encode() not in path.read_bytes(), path
    logs = toast("logs", name, "--source", "build", "--since", "1h")
    assert logs.returncode == 0, logs.stderr
    assert "CANARY2=[REDACTED]" in logs.stdout and CANARY not in logs.stdout


def test_a_secret_echoed_by_the_build_is_redacted_everywhere(
    sandbox: SandboxInfo,
    session_sandbox: Sandbox,
    aws: Clients,
    isolated_toast: Path,
) -> None:
    deployed = toast(
        "--sandbox",
        "deploy",
        "toast-samples/static-site",
        "--subdomain",
        "hush",
        "--secret",
        f"CANARY2={CANARY}",
        "--install",
        "npm run env",
        "--wait",
    )
    assert deployed.returncode == 0, deployed.stderr
    assert CANARY not in deployed.stdout + deployed.stderr
    assert_nowhere(aws, session_sandbox, isolated_toast, "hush", 1)
    # A redeploy reads the value back from the host, in memory only, and still hides it.
    again = toast("redeploy", "hush", "--force", "--wait")
    assert again.returncode == 0, again.stderr
    assert "CANARY2=[REDACTED]" in again.stdout and CANARY not in again.stdout + again.stderr
    assert_nowhere(aws, session_sandbox, isolated_toast, "hush", 2)
    assert not list((isolated_toast / "spool").glob("*.json"))  # the spool went with the run
