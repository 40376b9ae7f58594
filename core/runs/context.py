"""What a step sees while it runs: the run, its deployment, the target, and reporting."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from core.cloud.aws import Aws
from core.cloud.instance_keys import printed_host_keys
from core.host.connect import ConnectError, InstanceAddress, connect_instance
from core.host.layout import AppPaths
from core.host.profiles import HostProfile
from core.host.ssh import Remote
from core.profile.targets import Target
from core.runs.failures import StepFailed
from core.runs.outputs import StepOutput
from core.runs.redact import Redactor
from core.runs.settings import RunSettings
from core.runs.step_scope import CURRENT_STEP
from core.runs.waiting import WaitTimeout, poll
from storage import Queries
from storage.records import Deployment, Resource, Run

T = TypeVar("T")
Out = TypeVar("Out", bound=StepOutput)

#: A recorded command longer than this is cut (a build script can be long).
MAX_RECORDED = 2000


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
        await self.queries.add_events(self.run_id, batch)


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
    outputs: dict[str, StepOutput] = field(default_factory=dict)
    #: Secret env values for this run only (never stored); None when not supplied.
    secret_env: dict[str, str] | None = None
    settings: RunSettings = field(default_factory=RunSettings)
    #: The engine holding this run's lease (a finished step resets its attempt count).
    owner: str | None = None
    #: What the run wants said when it succeeds (e.g. "already live; nothing to do").
    outcome: dict[str, Any] = field(default_factory=dict)
    #: After-live checks that failed: (step title, error); the run still succeeds, warned.
    late_failures: list[tuple[str, str]] = field(default_factory=list)
    #: Why the steps still running are being cancelled (None: the engine is stopping).
    cancel_note: str | None = None
    #: Set when the lease was lost: another engine owns the run, so this one writes nothing.
    lease_lost: asyncio.Event = field(default_factory=asyncio.Event)
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

    async def wait(
        self,
        check: Callable[[], Awaitable[T | None]],
        *,
        step: str,
        what: str,
        timeout: float,
        hint: str | None = None,
        initial: float = 0.5,
        maximum: float = 5.0,
        factor: float = 1.5,
        report: str | None = None,
    ) -> T:
        """Poll `check` with backoff, saying every few seconds what the step waits for; on
        timeout the step fails with what was awaited and `hint`."""
        scale = self.settings.faults.time_scale  # 1 but in a rehearsed latency profile
        try:
            return await poll(
                check,
                what=what,
                timeout=timeout,
                initial=initial * scale,
                maximum=maximum * scale,
                factor=factor,
                progress=self.progress(step, report or what),
            )
        except WaitTimeout as exc:
            raise StepFailed(str(exc), hint=hint) from exc

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

    async def host_keys(self, instance_id: str, *, step: str) -> list[str]:
        """The SSH host keys the instance printed to its console at boot."""
        return await self.wait(
            lambda: printed_host_keys(self.aws, instance_id),
            step=step,
            what=f"{instance_id} to print its SSH host keys",
            report="the instance to print its host keys",
            timeout=600,
            initial=1,
            hint="the instance may still be booting; rerun to resume",
        )

    def output(self, step: str, kind: type[Out]) -> Out:
        """The output of `step`, which this step needs (its graph says so)."""
        found = self.outputs[step]
        if not isinstance(found, kind):
            raise TypeError(f"step {step} gave {type(found).__name__}, not {kind.__name__}")
        return found

    def output_if(self, step: str, kind: type[Out]) -> Out | None:
        """The output of `step` when it ran in this run (it is not in every kind's graph)."""
        found = self.outputs.get(step)
        return found if isinstance(found, kind) else None

    def shared_ssh_from(self) -> str | None:
        found = self.outputs.get("shared")
        return getattr(found, "ssh_from", None)

    async def remote(self, *, timeout: float | None = None) -> Remote:
        """One SSH connection per run, opened on first use, and again once it was lost.
        Steps running side by side share it: only a lost one is replaced, never a new one
        another step has just made."""
        async with self._remote_lock:
            if self._remote is not None and not self._remote.alive:
                await self._close_lost()  # lost under another step: connect afresh
            if self._remote is None:
                instance = await self.instance()
                ip = instance.attributes.get("public_ip")
                if not ip:
                    raise StepFailed(f"instance {instance.resource_id} has no known public IP")
                keys = instance.attributes.get("host_keys") or await self.host_keys(
                    instance.resource_id, step="ssh"
                )
                host, port = self.host.ssh_address(ip)
                if self.settings.faults.active("ssh", "refuse"):
                    port = 1  # nothing listens there: the connection is refused
                where = InstanceAddress(
                    instance.resource_id,
                    host,
                    port,
                    self.host.ssh_user,
                    tuple(keys),
                    self.target.key_file,
                )
                try:
                    self._remote = await connect_instance(
                        where,
                        timeout=self.settings.ssh_timeout if timeout is None else timeout,
                        operator_cidr=self.shared_ssh_from() or self.target.profile.operator_cidr,
                        refused_for=self.settings.faults.sshd_wait(instance.resource_id),
                        keepalive=self.settings.ssh_keepalive,
                    )
                except ConnectError as exc:
                    raise StepFailed(str(exc), hint=exc.hint) from exc
                self._remote.on_command = self.record_command
                if any(self.settings.faults.rules("ssh")):
                    self._remote.fault = self._ssh_fault
            return self._remote

    def _ssh_fault(self, what: str) -> str | None:
        step = CURRENT_STEP.get() or "?"
        fault = self.settings.faults.ssh_fault(step, what)
        said = {
            "drop": "the SSH connection is cut",
            "down": "the SSH connection is cut before the command is sent",
            "hang": "the SSH connection is frozen (the host stops answering)",
            "fail": "the command reports failure",
        }
        if fault is not None:
            self.say(f"toast fault: injected: {said[fault]}", step=step)
        return fault

    async def _close_lost(self) -> None:
        assert self._remote is not None
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._remote.close(), timeout=5)
        self._remote = None

    def record_command(self, command: str) -> None:
        """A command about to run on the host, for the Activity view (redacted, capped)."""
        text = self.redact(command)
        if len(text) > MAX_RECORDED:
            text = text[:MAX_RECORDED] + f"… (+{len(text) - MAX_RECORDED} chars)"
        self.say(f"$ {text}", step=CURRENT_STEP.get(), level="command")

    def record_call(self, call: str) -> None:
        self.say(call, step=CURRENT_STEP.get(), level="aws")

    async def close(self) -> None:
        if not self.lease_lost.is_set():
            await self.events.flush()
        if self._remote is not None:
            await self._remote.close()
            self._remote = None
