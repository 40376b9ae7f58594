"""`--wait`: follow a run's steps and events from SQLite until it ends."""

from __future__ import annotations

import asyncio
import time

import click

from core.runs.launcher import ensure_engine
from core.runs.states import STATE_AFTER_SUCCESS, RunKind
from core.runs.step_names import DECIDING_STEPS
from storage import Queries

#: Recorded for `toast activity` and the console's Activity view, not printed while following.
RECORD_ONLY = ("aws", "command")


#: What `follow` returns once every step that decides the run has succeeded while checks
#: that need not hold the site back (the renewal rehearsal) still run.
LIVE = "live"


async def decided(queries: Queries, run_id: int, kind: str, deployment_id: int) -> bool:
    """Whether the site is live: every step that decides the run has succeeded (or was
    skipped) and the engine has recorded the deployment's new state (it does so just after
    the last of those steps, so a reader between the two must not call it live yet)."""
    states = {step.name: step.state for step in await queries.steps_for(run_id)}
    if not all(states.get(name) in ("succeeded", "skipped") for name in DECIDING_STEPS[kind]):
        return False
    deployment = await queries.get_deployment_by_id(deployment_id)
    return deployment is not None and deployment.state == STATE_AFTER_SUCCESS[RunKind(kind)]


async def follow(queries: Queries, run_id: int, *, as_json: bool, timeout: float = 3600) -> str:
    """Print the run's events (step starts, output, results) as they land in SQLite; returns
    the run's final state, or LIVE as soon as the site is live and only after-live checks
    are left (they report their own result).

    While the run is unfinished, an engine is kept running: one that went idle and exited
    just as the run was queued is replaced."""
    next_engine_check = time.monotonic() + 2
    last_event = 0
    delay = 0.05
    deadline = time.monotonic() + timeout

    async def print_new() -> bool:
        nonlocal last_event
        events = await queries.events_for(run_id, after_id=last_event)
        for event in events:
            last_event = event.id
            if event.level in RECORD_ONLY:
                continue
            if not as_json:
                prefix = f"[{event.step}] " if event.step else ""
                click.echo(f"{prefix}{event.message}", err=event.level == "error")
        return bool(events)

    while True:
        printed = await print_new()
        run = await queries.get_run(run_id)
        assert run is not None
        outcome: str | None = None
        if run.state in ("succeeded", "failed", "cancelled"):
            outcome = run.state
        elif run.state == "running" and await decided(queries, run_id, run.kind, run.deployment_id):
            outcome = LIVE
        elif time.monotonic() > deadline:
            outcome = run.state
        if outcome is not None:
            # What the engine said as the run ended (its summary) landed after the read above.
            await print_new()
            return outcome
        if time.monotonic() > next_engine_check:
            await asyncio.to_thread(ensure_engine)
            next_engine_check = time.monotonic() + 2
        delay = 0.05 if printed else min(delay * 1.5, 0.2)
        await asyncio.sleep(delay)
