"""Runs, their steps and events: queued, started, ended, read back. No business rules live here."""

from __future__ import annotations

import json
import time
from typing import Any

from storage.queries.base import QueriesBase
from storage.queries.shared import _audit
from storage.records import (
    Event,
    Run,
    Step,
)


class RunQueries(QueriesBase):
    async def queue_run(
        self,
        deployment_id: int,
        kind: str,
        *,
        trigger: str,
        actor: str,
        steps: list[str],
        commit_sha: str | None = None,
        commit_message: str | None = None,
        settings: dict[str, str] | None = None,
        force: bool = False,
        now: float | None = None,
    ) -> Run:
        """Create a run, its pending steps and its job in one transaction."""
        now = time.time() if now is None else now
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "INSERT INTO runs (deployment_id, kind, trigger, commit_sha, commit_message, "
                "created_at, settings_json, force) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    deployment_id,
                    kind,
                    trigger,
                    commit_sha,
                    commit_message,
                    now,
                    json.dumps(settings or {}),
                    int(force),
                ),
            )
            run_id = cur.lastrowid
            assert run_id is not None
            await conn.executemany(
                "INSERT INTO steps (run_id, name) VALUES (?, ?)", [(run_id, s) for s in steps]
            )
            await conn.execute(
                "INSERT INTO jobs (run_id, deployment_id, created_at) VALUES (?, ?, ?)",
                (run_id, deployment_id, now),
            )
            async with conn.execute(
                "SELECT name FROM deployments WHERE id = ?", (deployment_id,)
            ) as cur:
                found = await cur.fetchone()
            target = found[0] if found else str(deployment_id)
            await _audit(conn, now, actor, f"run.{kind}", target, f"run {run_id}")
        run = await self.get_run(run_id)
        assert run is not None
        return run

    async def get_run(self, run_id: int) -> Run | None:
        row = await self.db.fetchone("SELECT * FROM runs WHERE id = ?", (run_id,))
        return Run.from_row(row) if row else None

    async def runs_for(self, deployment_id: int, *, limit: int = 20) -> list[Run]:
        rows = await self.db.fetchall(
            "SELECT * FROM runs WHERE deployment_id = ? ORDER BY id DESC LIMIT ?",
            (deployment_id, limit),
        )
        return [Run.from_row(row) for row in rows]

    async def steps_for(self, run_id: int) -> list[Step]:
        rows = await self.db.fetchall("SELECT * FROM steps WHERE run_id = ? ORDER BY id", (run_id,))
        return [Step.from_row(row) for row in rows]

    async def add_event(
        self,
        run_id: int,
        message: str,
        *,
        step: str | None = None,
        level: str = "info",
        now: float | None = None,
    ) -> None:
        now = time.time() if now is None else now
        await self.add_events(run_id, [(now, step, level, message)])

    async def add_events(
        self, run_id: int, batch: list[tuple[float, str | None, str, str]]
    ) -> None:
        """Many (at, step, level, message) lines of one run in one transaction."""
        async with self.db.transaction() as conn:
            await conn.executemany(
                "INSERT INTO events (run_id, at, step, level, message) VALUES (?, ?, ?, ?, ?)",
                [(run_id, at, step, level, message) for at, step, level, message in batch],
            )

    async def run_started(self, run_id: int, *, now: float | None = None) -> None:
        now = time.time() if now is None else now
        async with self.db.transaction() as conn:
            await conn.execute(
                "UPDATE runs SET state = 'running', started_at = COALESCE(started_at, ?) "
                "WHERE id = ?",
                (now, run_id),
            )

    async def run_ended(
        self, run_id: int, state: str, *, error: str | None = None, now: float | None = None
    ) -> None:
        now = time.time() if now is None else now
        async with self.db.transaction() as conn:
            await conn.execute(
                "UPDATE runs SET state = ?, ended_at = ?, error = ? WHERE id = ?",
                (state, now, error, run_id),
            )

    async def run_interrupted(self, run_id: int) -> None:
        """The engine stopped mid-run: the run waits, queued, for the next engine to resume."""
        async with self.db.transaction() as conn:
            await conn.execute(
                "UPDATE runs SET state = 'queued' WHERE id = ? AND state = 'running'", (run_id,)
            )

    async def set_run_commit(self, run_id: int, sha: str, message: str | None) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                "UPDATE runs SET commit_sha = ?, commit_message = ? WHERE id = ?",
                (sha, message, run_id),
            )

    async def step_started(self, run_id: int, name: str, *, now: float | None = None) -> None:
        now = time.time() if now is None else now
        async with self.db.transaction() as conn:
            await conn.execute(
                "UPDATE steps SET state = 'running', started_at = ?, ended_at = NULL, "
                "error = NULL WHERE run_id = ? AND name = ?",
                (now, run_id, name),
            )

    async def step_ended(
        self,
        run_id: int,
        name: str,
        state: str,
        *,
        output: dict[str, Any] | None = None,
        detail: str | None = None,
        error: str | None = None,
        now: float | None = None,
    ) -> None:
        now = time.time() if now is None else now
        async with self.db.transaction() as conn:
            await conn.execute(
                "UPDATE steps SET state = ?, ended_at = ?, output_json = ?, detail = ?, "
                "error = ? WHERE run_id = ? AND name = ?",
                (
                    state,
                    now,
                    json.dumps(output) if output is not None else None,
                    detail,
                    error,
                    run_id,
                    name,
                ),
            )

    async def events_for(self, run_id: int, *, after_id: int = 0) -> list[Event]:
        rows = await self.db.fetchall(
            "SELECT * FROM events WHERE run_id = ? AND id > ? ORDER BY id", (run_id, after_id)
        )
        return [Event.from_row(row) for row in rows]

    async def latest_run(self, deployment_id: int) -> Run | None:
        row = await self.db.fetchone(
            "SELECT * FROM runs WHERE deployment_id = ? ORDER BY id DESC LIMIT 1", (deployment_id,)
        )
        return Run.from_row(row) if row else None

    async def active_run(self, deployment_id: int) -> Run | None:
        row = await self.db.fetchone(
            "SELECT * FROM runs WHERE deployment_id = ? AND state IN ('queued', 'running') "
            "ORDER BY id LIMIT 1",
            (deployment_id,),
        )
        return Run.from_row(row) if row else None

    async def calls_for(self, run_id: int) -> list[Event]:
        """The AWS calls and host commands a run made, in order."""
        rows = await self.db.fetchall(
            "SELECT * FROM events WHERE run_id = ? AND level IN ('aws', 'command') ORDER BY id",
            (run_id,),
        )
        return [Event.from_row(row) for row in rows]
