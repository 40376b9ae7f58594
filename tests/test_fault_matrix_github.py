"""The fault matrix's GitHub column: each GitHub API call a deploy's and a redeploy's run make
(the repository and its branch head, which a deploy's check step reads before anything is
spent; the clone URL a redeploy's build asks for), answered with a rate limit, a server
error and no answer at all, in the engine only (`github:` faults, core/cloud/faults.py; the
CLI's own reads are left alone). A rate limit is waited out to its reset and the run goes
live; a server error or a timeout fails the run at its step, naming GitHub and what was
asked, with nothing made (a first deploy) or the live release still serving (a redeploy),
and `toast gc` finding nothing orphaned. The matrix is printed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.sandbox.controller import SandboxInfo

from .deploy_helpers import (
    gc_findings,
    https_get,
    settled,
    show,
    start_engine,
    toast,
    wait_engine_exit,
)
from .helpers.state import open_resources, runs_ended
from .helpers.waiting import wait_for

SAMPLE = "toast-samples/static-site"
SITES = {"branch head": r"/commits/", "repository": r"^/repos/[^/]+/[^/]+$"}
ANSWERS = {"rate limit": "RateLimit:1", "server error": "500", "timeout": "Timeout"}
SERVED = "Hello from the Toast static sample"


def _under_faults(db_path: Path, rule: str) -> None:
    """Run what is queued with an engine whose GitHub calls meet `rule`, to its end."""
    engine = start_engine({"TOAST_FAULTS": rule})
    try:
        wait_for(lambda: runs_ended(db_path), f"the run under {rule} to end", 180)
    finally:
        engine.terminate()
        output, _ = engine.communicate(timeout=60)
    assert "toast fault: injected" in output, f"{rule} was never reached:\n{output[-2000:]}"


def _expect_failure(run: dict[str, Any], answer: str) -> str:
    assert run["state"] == "failed", run
    error = run["error"]
    assert "GitHub" in error and ("HTTP 500" if answer == "500" else "Timeout") in error, error
    return str(next(s["name"] for s in run["steps"] if s["state"] == "failed"))


def test_every_github_call_site_under_rate_limits_errors_and_timeouts(
    sandbox: SandboxInfo, isolated_toast: Path
) -> None:
    db_path = isolated_toast / "toast.db"
    matrix: list[tuple[str, str, str]] = []
    held = {"TOAST_ENGINE_AUTOSTART": "0"}

    # A deploy: the check step reads the branch head, the build asks for the clone URL.
    for site, pattern in SITES.items():
        for answer_name, answer in ANSWERS.items():
            name = f"gh-{site.split()[0]}-{answer_name.split()[0]}"
            queued = toast("--sandbox", "deploy", SAMPLE, "--subdomain", name, env=held)
            assert queued.returncode == 0, queued.stderr
            _under_faults(db_path, f"github:{pattern}:{answer}")
            details = show(name)
            if answer_name == "rate limit":
                assert details["state"] == "live", details["last_run"]
                assert SERVED in https_get(sandbox, f"{name}.sandbox.test").text
                matrix.append((f"deploy: {site}", answer_name, "waited to the reset; live"))
            else:
                step = _expect_failure(details["last_run"], answer)
                left = open_resources(db_path, name)
                outcome = f"failed at {step}; " + (
                    f"{len(left)} left in the ledger for destroy" if left else "nothing made"
                )
                matrix.append((f"deploy: {site}", answer_name, outcome))
            if details["state"] == "live" or open_resources(db_path, name):
                gone = toast("destroy", name, "--yes", "--wait")
                assert gone.returncode == 0, gone.stderr
                wait_engine_exit()
            assert open_resources(db_path, name) == []

    # A redeploy builds again, asking for the clone URL; the live release stays on failure.
    deployed = toast("--sandbox", "deploy", SAMPLE, "--subdomain", "ghm", "--wait")
    assert deployed.returncode == 0, deployed.stderr
    settled("ghm")
    wait_engine_exit()
    for answer_name, answer in ANSWERS.items():
        queued = toast("redeploy", "ghm", "--force", env=held)
        assert queued.returncode == 0, queued.stderr
        _under_faults(db_path, f"github:{SITES['repository']}:{answer}")
        details = show("ghm")
        assert details["state"] == "live", (answer_name, details)
        assert SERVED in https_get(sandbox, "ghm.sandbox.test").text
        if answer_name == "rate limit":
            assert details["last_run"]["state"] == "succeeded", details["last_run"]
            matrix.append(("redeploy: repository", answer_name, "waited to the reset; live"))
        else:
            step = _expect_failure(details["last_run"], answer)
            matrix.append(("redeploy: repository", answer_name, f"failed at {step}; old serves"))
    assert gc_findings() == []
    gone = toast("destroy", "ghm", "--yes", "--wait")
    assert gone.returncode == 0, gone.stderr

    width = max(len(site) for site, _, _ in matrix)
    print(
        "\n"
        + "\n".join(f"{site:<{width}}  {fault:<12}  {outcome}" for site, fault, outcome in matrix)
    )
