"""The fault matrix: every AWS operation a deploy and a destroy call (read from a clean run's
own record of its calls, so a new call site joins the matrix by itself), each answered with
throttling, a timeout and a hard error. Throttling and timeouts end in success after retry;
a hard error ends in a failed run that names the operation, with the database consistent
and nothing orphaned (gc finds nothing; the ledger holds what is left); a destroy that failed
finishes when run again. The matrix is printed; a hang fails the test at its timeout.

GitHub's column is tests/test_fault_matrix_github.py; SSH and git faults have tests of their
own (test_deploy, test_engine_stops, test_github_transport)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.sandbox.controller import SandboxInfo
from storage import Queries, open_database

from .deploy_helpers import gc_findings, run_at_once, settled, toast, wait_engine_exit
from .helpers.state import last_run, open_resources
from .sandbox_helpers import deployment_instances

Clients = Callable[[str], Any]
SAMPLE = "toast-samples/static-site"
#: Each service's words for throttling and for a refusal.
THROTTLE = {"ec2": "RequestLimitExceeded", "route53": "Throttling", "iam": "Throttling"}
DENIED = {"ec2": "UnauthorizedOperation", "logs": "AccessDeniedException"}


async def _operations(db_path: Path, name: str, kind: str) -> list[str]:
    """service.Operation of every AWS call the last `kind` run of `name` made, in order."""
    db = await open_database(db_path)
    try:
        queries = Queries(db)
        deployment = await queries.get_deployment(name)
        assert deployment is not None
        run = next(r for r in await queries.runs_for(deployment.id) if r.kind == kind)
        seen: Counter[str] = Counter()
        for event in await queries.events_for(run.id):
            if event.level == "aws":  # "aws <service> <operation> (<region>...)"
                _, service, operation, *_ = event.message.split()
                seen[f"{service}.{operation}"] += 1
        return list(seen)
    finally:
        await db.close()


def _fault(aws: Clients, call: str, code: str, times: int | None = None) -> str:
    """The TOAST_FAULTS rule for a call (boto3's method name -> the API's operation name)."""
    service, method = call.split(".")
    operation = aws(service).meta.method_to_api_mapping[method]
    rule = f"aws:{service}.{operation}:{code}"
    return rule if times is None else f"{rule}:{times}"


def test_every_aws_call_site_under_throttling_timeouts_and_hard_errors(
    sandbox: SandboxInfo, aws: Clients, isolated_toast: Path
) -> None:
    db_path = isolated_toast / "toast.db"
    matrix: list[tuple[str, str, str]] = []
    clean = toast("--sandbox", "deploy", SAMPLE, "--subdomain", "clean", "--wait")
    assert clean.returncode == 0, clean.stderr
    settled("clean")
    deploy_calls = asyncio.run(_operations(db_path, "clean", "deploy"))
    assert len(deploy_calls) >= 10, deploy_calls
    done = toast("destroy", "clean", "--yes", "--wait")
    assert done.returncode == 0, done.stderr
    destroy_calls = asyncio.run(_operations(db_path, "clean", "destroy"))
    assert destroy_calls, "a destroy calls AWS"
    wait_engine_exit()

    # All at once under one engine (each run carries its own faults): throttling on every
    # call at once, once each, and a timeout on each the same way (both retried through);
    # and a hard error at each deploy call, one deployment each.
    cases: dict[str, tuple[str, str, str]] = {}  # name -> (call, fault, rule)
    for fault, code_of in (("throttling", THROTTLE), ("timeout", None)):
        rules = ",".join(
            _fault(aws, call, code_of.get(call.split(".")[0], "ThrottlingException"), 1)
            if code_of
            else _fault(aws, call, "Timeout", 1)
            for call in deploy_calls
        )
        cases[f"ok-{fault}"] = ("every call", fault, rules)
    for index, call in enumerate(deploy_calls):
        rule = _fault(aws, call, DENIED.get(call.split(".")[0], "AccessDenied"))
        cases[f"hard{index}"] = (call, "hard error", rule)
    run_at_once(
        db_path,
        {
            name: (("--sandbox", "deploy", SAMPLE, "--subdomain", name), rule)
            for name, (_, _, rule) in cases.items()
        },
    )

    for fault in ("throttling", "timeout"):
        name = f"ok-{fault}"
        run = last_run(db_path, name)
        assert run["state"] == "succeeded", (fault, run["error"])
        assert len(deployment_instances(aws, name)) == 1  # a retried launch made one instance
        matrix += [(f"deploy {call}", fault, "succeeded after retry") for call in deploy_calls]
        gone = toast("destroy", name, "--yes", "--wait")
        assert gone.returncode == 0, gone.stderr
    for name, (call, _, _) in cases.items():
        if not name.startswith("hard"):
            continue
        run = last_run(db_path, name)
        if run["state"] == "succeeded":
            # Creating a shared resource that exists already: the call is not made.
            assert call.split(".")[1].startswith(("create_", "import_", "authorize_")), call
            assert toast("destroy", name, "--yes", "--wait").returncode == 0
            matrix.append((f"deploy {call}", "hard error", "not reached: the shared one exists"))
            continue
        error = run["error"]
        assert run["state"] == "failed", (call, run)
        assert "failed at step" in error and "injected fault" in error, (call, error)
        left = open_resources(db_path, name)
        outcome = "failed clearly; rolled back"
        if left:
            # The rollback needed the refused call too: what it could not delete is named,
            # and stays in the ledger (not an orphan) until a destroy without the fault.
            for resource in left:  # "kind id", as the failure names it
                assert resource in error, (call, resource, error)
            assert "Left:" in error, call
            cleaned = toast("destroy", name, "--yes", "--wait")
            assert cleaned.returncode == 0, (call, cleaned.stderr)
            assert open_resources(db_path, name) == [], call
            outcome = f"failed clearly; {len(left)} named as left; destroy removed them"
        matrix.append((f"deploy {call}", "hard error", outcome))
    wait_engine_exit()
    assert gc_findings() == []  # no case left an orphan behind

    # A hard error at each destroy call: the destroy fails naming it, the ledger keeps what
    # is left, and a destroy run again finishes the job.
    deployed = toast("--sandbox", "deploy", SAMPLE, "--subdomain", "tough", "--wait")
    assert deployed.returncode == 0, deployed.stderr
    settled("tough")
    for call in destroy_calls:
        service = call.split(".")[0]
        failed = toast(
            "destroy",
            "tough",
            "--yes",
            "--wait",
            env={"TOAST_FAULTS": _fault(aws, call, DENIED.get(service, "AccessDenied"))},
        )
        if failed.returncode == 0:  # that call had nothing left to do (deleted before)
            matrix.append((f"destroy {call}", "hard error", "not reached: nothing left for it"))
            break
        assert "injected fault" in failed.stderr or "failed" in failed.stderr, call
        matrix.append((f"destroy {call}", "hard error", "failed clearly; ledger kept the rest"))
    again = toast("destroy", "tough", "--yes", "--wait")
    assert again.returncode == 0 or "tough was destroyed" in again.stderr, again.stderr
    assert open_resources(db_path, "tough") == [] and gc_findings() == []

    width = max(len(site) for site, _, _ in matrix)
    print(
        "\n"
        + "\n".join(f"{site:<{width}}  {fault:<11}  {outcome}" for site, fault, outcome in matrix)
    )
