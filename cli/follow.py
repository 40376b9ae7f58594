"""`--wait`: follow a run's steps and events from SQLite until it ends."""

from __future__ import annotations

import asyncio
import time

import click

from core.runs.launcher import ensure_engine
from core.runs.step_names import DECIDING_STEPS
from storage import Queries

#: Recorded for `toast activity` and the console's Activity view, not printed while following.
RECORD_ONLY = ("aws", "command")


#: What `follow` returns once every step that decides the run has succeeded while checks
#: that need not hold the site back (the renewal rehearsal) still run.
LIVE = "live"


async def decided(queries: Queries, run_id: int, kind: str) -> bool:
    """Whether every step that decides the run has succeeded (or was skipped)."""
    states = {step.name: step.state for step in await queries.steps_for(run_id)}
    return all(states.get(name) in ("succeeded", "skipped") for name in DECIDING_STEPS[kind])


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
    while True:
        events = await queries.events_for(run_id, after_id=last_event)
        for event in events:
            last_event = event.id
            if event.level in RECORD_ONLY:
                continue
            if not as_json:
                prefix = f"[{event.step}] " if event.step else ""
                click.echo(f"{prefix}{event.message}", err=event.level == "error")
        run = await queries.get_run(run_id)
        assert run is not None
        if run.state in ("succeeded", "failed", "cancelled"):
            return run.state
        if run.state == "running" and await decided(queries, run_id, run.kind):
            return LIVE
        if time.monotonic() > deadline:
            return run.state
        if time.monotonic() > next_engine_check:
            await asyncio.to_thread(ensure_engine)
            next_engine_check = time.monotonic() + 2
        delay = 0.05 if events else min(delay * 1.5, 0.2)
        await asyncio.sleep(delay)
