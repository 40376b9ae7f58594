"""The fault matrix's GitHub column: each GitHub API call a deploy's and a redeploy's run make
(the repository and its branch head, which a deploy's check step reads before anything is
spent; the clone URL a redeploy's build asks for), answered with a rate limit, a server
error and no answer at all, in the runs only (`github:` faults, core/cloud/faults.py,
carried by each run; the CLI's own reads are left alone), each batch at once under one
engine. A rate limit is waited out to its reset and the run goes
live; a server error or a timeout fails the run at its step, naming GitHub and what was
asked, with nothing made (a first deploy) or the live release still serving (a redeploy),
and `toast gc` finding nothing orphaned. The matrix is printed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.sandbox.controller import SandboxInfo

from .deploy_helpers import gc_findings, https_get, run_at_once
from .helpers.state import last_run, open_resources

SAMPLE = "toast-samples/static-site"
SITES = {"branch head": r"/commits/", "repository": r"^/repos/[^/]+/[^/]+$"}
ANSWERS = {"rate limit": "RateLimit:1", "server error": "500", "timeout": "Timeout"}
SERVED = "Hello from the Toast static sample"


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

    # Deploys: the check step reads the repository and the branch head. Beside them, three
    # plain deploys for the redeploys below.
    deploys: dict[str, tuple[tuple[str, ...], str]] = {}
    for site, pattern in SITES.items():
        for answer_name, answer in ANSWERS.items():
            name = f"gh-{site.split()[0]}-{answer_name.split()[0]}"
            args = ("--sandbox", "deploy", SAMPLE, "--subdomain", name)
            deploys[name] = (args, f"github:{pattern}:{answer}")
    for answer_name in ANSWERS:
        name = f"ghm-{answer_name.split()[0]}"
        deploys[name] = (("--sandbox", "deploy", SAMPLE, "--subdomain", name), "")
    run_at_once(db_path, deploys)
    for site in SITES:
        for answer_name, answer in ANSWERS.items():
            name = f"gh-{site.split()[0]}-{answer_name.split()[0]}"
            run = last_run(db_path, name)
            if answer_name == "rate limit":
                assert run["deployment"] == "live", run
                assert SERVED in https_get(sandbox, f"{name}.sandbox.test").text
                matrix.append((f"deploy: {site}", answer_name, "waited to the reset; live"))
            else:
                step = _expect_failure(run, answer)
                left = open_resources(db_path, name)
                outcome = f"failed at {step}; " + (
                    f"{len(left)} left in the ledger for destroy" if left else "nothing made"
                )
                matrix.append((f"deploy: {site}", answer_name, outcome))

    # A redeploy builds again, asking for the clone URL; the live release stays on failure.
    redeploys = {
        f"ghm-{answer_name.split()[0]}": (
            ("redeploy", f"ghm-{answer_name.split()[0]}", "--force"),
            f"github:{SITES['repository']}:{answer}",
        )
        for answer_name, answer in ANSWERS.items()
    }
    run_at_once(db_path, redeploys)
    for answer_name, answer in ANSWERS.items():
        name = f"ghm-{answer_name.split()[0]}"
        run = last_run(db_path, name)
        assert run["deployment"] == "live", (answer_name, run)
        assert SERVED in https_get(sandbox, f"{name}.sandbox.test").text
        if answer_name == "rate limit":
            assert run["state"] == "succeeded", run
            matrix.append(("redeploy: repository", answer_name, "waited to the reset; live"))
        else:
            step = _expect_failure(run, answer)
            matrix.append(("redeploy: repository", answer_name, f"failed at {step}; old serves"))
    assert gc_findings() == []
    left = [name for name in deploys if open_resources(db_path, name)]
    run_at_once(db_path, {name: (("destroy", name, "--yes"), "") for name in left})
    assert all(open_resources(db_path, name) == [] for name in deploys)

    width = max(len(site) for site, _, _ in matrix)
    print(
        "\n"
        + "\n".join(f"{site:<{width}}  {fault:<12}  {outcome}" for site, fault, outcome in matrix)
    )
