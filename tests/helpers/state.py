"""Reads of a test's state database from the test's own process (no `toast` CLI started a
second while a benchmark measures the engine beside it)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from storage import Queries, open_database


async def _states(db_path: Path) -> tuple[dict[str, str], bool]:
    db = await open_database(db_path)
    try:
        queries = Queries(db)
        states: dict[str, str] = {}
        ended = True
        for deployment in await queries.list_deployments():
            states[deployment.name] = str(deployment.state)
            runs = await queries.runs_for(deployment.id, limit=5)
            ended = ended and not any(r.state in ("queued", "running") for r in runs)
        return states, ended
    finally:
        await db.close()


def deployment_states(db_path: Path) -> dict[str, str]:
    """Each deployment's state, by name."""
    return asyncio.run(_states(db_path))[0]


def runs_ended(db_path: Path) -> bool | None:
    """True once no run is queued or running (a wait_for condition)."""
    return True if asyncio.run(_states(db_path))[1] else None


async def _open(db_path: Path, name: str) -> list[str]:
    db = await open_database(db_path)
    try:
        queries = Queries(db)
        deployment = await queries.get_deployment(name)
        if deployment is None:
            return []
        return [f"{r.kind} {r.resource_id}" for r in await queries.open_resources(deployment.id)]
    finally:
        await db.close()


def open_resources(db_path: Path, name: str) -> list[str]:
    """The ledger's resources of a deployment not yet deleted, as "kind id"."""
    return asyncio.run(_open(db_path, name))


async def _last_run(db_path: Path, name: str) -> dict[str, Any]:
    db = await open_database(db_path)
    try:
        queries = Queries(db)
        deployment = await queries.get_deployment(name)
        assert deployment is not None, name
        run = (await queries.runs_for(deployment.id, limit=1))[0]
        steps = [
            {"name": s.name, "state": str(s.state), "error": s.error, "detail": s.detail}
            for s in await queries.steps_for(run.id)
        ]
        struck = [
            str(e.step)
            for e in await queries.events_for(run.id)
            if e.message.startswith("toast fault: injected")
        ]
        return {
            "deployment": str(deployment.state),
            "kind": str(run.kind),
            "state": str(run.state),
            "error": run.error,
            "steps": steps,
            "struck": struck,
        }
    finally:
        await db.close()


def last_run(db_path: Path, name: str) -> dict[str, Any]:
    """The deployment's last run as `toast show` has it (its state, error and steps, and the
    deployment's state), plus the steps where an injected fault struck, in order."""
    return asyncio.run(_last_run(db_path, name))
