"""Orchestration: a sandbox deploy under a realistic latency profile injected at the AWS and
host edges (core/cloud/faults.py `latency:`): instance pending -> running 20 s, Route53
PENDING -> INSYNC 40 s, sshd up 5 s after running, host preparation done 30 s after running,
certbot 7 s; all scaled by one factor so a run takes seconds (the engine's poll intervals
are scaled with them, so the run is a miniature of a real one).

Figures: queued -> live against the critical path of the run's own steps (the longest chain
through the step graph, by each step's measured time), against the original service's
schedule (the same steps in sequence, with its fixed 120 s wait before certbot and 60 s
before logs, scaled the same way), and `toast deploy --wait`'s return against the critical
path (it returns when the site is live; the renewal rehearsal reports afterwards)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from core.runs.graphs import DEPLOY
from core.sandbox.controller import SandboxInfo
from storage import Queries, open_database
from storage.records import Run, Step

from ..deploy_helpers import settled, toast
from .latency import ORIGINAL_WAITS_S, SCALE, latency_faults
from .report import Report, quick


def critical_path(steps: dict[str, Step]) -> float:
    """The longest chain of the deciding steps, each taking the time it took."""
    finish: dict[str, float] = {}
    for step in DEPLOY:  # in graph order: every step after the ones it needs
        if step.after_live:
            continue
        record = steps[step.name]
        assert record.started_at is not None and record.ended_at is not None, record
        before = max((finish[need] for need in step.needs), default=0.0)
        finish[step.name] = before + record.ended_at - record.started_at
    return max(finish.values())


async def _read(db_path: Path, name: str) -> tuple[Run, dict[str, Step]]:
    db = await open_database(db_path)
    try:
        queries = Queries(db)
        deployment = await queries.get_deployment(name)
        assert deployment is not None
        run = next(r for r in await queries.runs_for(deployment.id) if r.kind == "deploy")
        return run, {s.name: s for s in await queries.steps_for(run.id)}
    finally:
        await db.close()


def test_deploy_under_a_realistic_latency_profile(
    sandbox: SandboxInfo, isolated_toast: Path, bench: Report
) -> None:
    ratios: list[tuple[float, float, float, float, float, float]] = []
    for attempt in range(quick(3, 1)):
        name = f"orch{attempt}"
        started = time.time()
        deployed = toast(
            "--sandbox",
            "deploy",
            "toast-samples/static-site",
            "--subdomain",
            name,
            "--wait",
            env={"TOAST_FAULTS": latency_faults()},
        )
        returned_at = time.time()
        assert deployed.returncode == 0, deployed.stderr
        settled(name)
        run, steps = asyncio.run(_read(isolated_toast / "toast.db", name))
        live_at = steps["health"].ended_at
        assert live_at is not None and run.ended_at is not None
        live = live_at - run.created_at
        path = critical_path(steps)
        sequence = sum(
            (s.ended_at or 0) - (s.started_at or 0) for s in steps.values() if s.name != "renewal"
        )
        original = sequence + ORIGINAL_WAITS_S * SCALE
        returned = returned_at - run.created_at  # from the moment the run was queued
        reading = run.created_at - started  # start-up, the repository read, the plan
        ratios.append((live / path, live / original, returned / path, live, path, reading))
        print(
            f"\n{name}: queued -> live {live:.2f} s, run end {run.ended_at - run.created_at:.2f} s,"
            f" critical path {path:.2f} s, steps in sequence {sequence:.2f} s, original "
            f"schedule {original:.2f} s, deploy --wait returned {returned:.2f} s after queuing "
            f"(and read the repository for {reading:.2f} s before)"
        )
    live_ratio, original_ratio, wait_ratio, live, path, reading = sorted(ratios)[len(ratios) // 2]
    section = f"orchestration (latency profile x {SCALE})"
    bench.add(section, "queued -> live", live, "s", baseline=f"critical path {path:.1f} s")
    bench.add(
        section,
        "queued -> live / critical path",
        live_ratio,
        "x",
        goal="<= 1.10 x",
        ok=live_ratio <= 1.10,
    )
    bench.add(
        section,
        "queued -> live / original schedule",
        original_ratio,
        "x",
        baseline="steps in sequence + 120 s and 60 s fixed waits",
        goal="<= 0.5 x",
        ok=original_ratio <= 0.5,
    )
    bench.add(
        section,
        "`toast deploy --wait` returns (from queued) / critical path",
        wait_ratio,
        "x",
        goal="<= 1.10 x",
        ok=wait_ratio <= 1.10,
    )
    bench.add(
        section,
        "`toast deploy` before queuing (start-up, repository, plan)",
        reading,
        "s",
        baseline="not scaled: the same at any latency",
    )
