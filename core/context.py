"""What a step sees while it runs: the run, its deployment, the target, and reporting."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core.aws import Aws
from core.hosts import HostProfile
from core.redact import Redactor
from core.remote import AppPaths
from core.ssh import Remote
from core.targets import Target
from storage import Queries
from storage.records import Deployment, Resource, Run


class StepFailed(Exception):
    """A step could not finish. `hint` says what the user can do about it."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.hint = hint
        super().__init__(message)


class EventSink:
    """Batches a run's progress lines into SQLite: a chatty build costs few transactions."""

    def __init__(self, queries: Queries, run_id: int, redact: Redactor) -> None:
        self.queries = queries
        self.run_id = run_id
        self.redact = redact
        self.pending: list[tuple[float, str | None, str, str]] = []
        self._flush_task: asyncio.Task[None] | None = None

    def add(self, message: str, *, step: str | None, level: str = "info") -> None:
        self.pending.append((time.time(), step, level, self.redact(message)))
        if len(self.pending) >= 200:
            self._schedule(0)
        elif self._flush_task is None:
            self._schedule(0.2)

    def _schedule(self, delay: float) -> None:
        if self._flush_task is not None and not self._flush_task.done() and delay > 0:
            return
        self._flush_task = asyncio.get_running_loop().create_task(self._flush_later(delay))

    async def _flush_later(self, delay: float) -> None:
        if delay:
            await asyncio.sleep(delay)
        await self.flush()

    async def flush(self) -> None:
        batch, self.pending = self.pending, []
        self._flush_task = None
        if not batch:
            return
        async with self.queries.db.transaction() as conn:
            await conn.executemany(
                "INSERT INTO events (run_id, at, step, level, message) VALUES (?, ?, ?, ?, ?)",
                [(self.run_id, at, step, level, msg) for at, step, level, msg in batch],
            )


@dataclass
class RunContext:
    queries: Queries
    run: Run
    deployment: Deployment
    target: Target
    aws: Aws
    redact: Redactor
    events: EventSink
    #: Outputs of steps that have succeeded in this run (including before a resume).
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Secret env values for this run only (never stored); None when not supplied.
    secret_env: dict[str, str] | None = None
    _remote: Remote | None = None
    _remote_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def host(self) -> HostProfile:
        return self.target.host

    @property
    def app(self) -> AppPaths:
        return AppPaths(self.target.host, self.deployment.name)

    @property
    def profile_name(self) -> str:
        return self.target.profile.name

    @property
    def region(self) -> str:
        return self.target.profile.region

    def say(self, message: str, *, step: str | None = None, level: str = "info") -> None:
        self.events.add(message, step=step, level=level)

    def progress(self, step: str, what: str, *, every: float = 5.0) -> Callable[[float], None]:
        """A callback for poll(): says what the step still waits for, every few seconds."""
        last = [0.0]

        def report(waited: float) -> None:
            if waited - last[0] >= every:
                last[0] = waited
                self.say(f"still waiting for {what} ({waited:.0f} s)", step=step)

        return report

    async def record(
        self,
        kind: str,
        resource_id: str,
        *,
        region: str | None = None,
        shared: bool = False,
        attributes: dict[str, Any] | None = None,
    ) -> None:
        """Enter a cloud resource into the ledger the moment it exists."""
        await self.queries.record_resource(
            profile=self.profile_name,
            kind=kind,
            resource_id=resource_id,
            region=region or self.region,
            deployment_id=None if shared else self.deployment.id,
            run_id=self.run.id,
            attributes=attributes,
        )

    async def ledger(self, kind: str) -> list[Resource]:
        return [r for r in await self.queries.open_resources(self.deployment.id) if r.kind == kind]

    async def instance(self) -> Resource:
        found = await self.ledger("instance")
        if not found:
            raise StepFailed(
                f"{self.deployment.name} has no instance in the ledger",
                hint=f"deploy it again: toast deploy ... --subdomain {self.deployment.name}",
            )
        return found[-1]

    async def remote(self) -> Remote:
        """One SSH connection per run, opened on first use."""
        async with self._remote_lock:
            if self._remote is None:
                from core.steps.host import connect_to_instance

                self._remote = await connect_to_instance(self)
            return self._remote

    async def close(self) -> None:
        await self.events.flush()
        if self._remote is not None:
            await self._remote.close()
            self._remote = None
