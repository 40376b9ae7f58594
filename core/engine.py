"""The engine: claims queued runs from SQLite and executes them, one per deployment at a time.

Runs are jobs with a lease. A live engine renews its leases; when an engine dies, another
takes the run over once the lease lapses (at once if the dead owner was on this machine)
and resumes it from its last finished step.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from core import paths
from core.aws import Aws
from core.config import ConfigError, choose_profile, load_config
from core.context import EventSink, RunContext, StepFailed
from core.graph import RunFailed, execute
from core.operations import GRAPHS, drop_secrets, take_secrets
from core.redact import Redactor
from core.targets import TargetError, resolve_target
from storage import Queries, open_database
from storage.records import Job

LEASE_S = float(os.environ.get("TOAST_LEASE_S", "30"))
HOSTNAME = socket.gethostname()


def owner_id() -> str:
    return f"{HOSTNAME}:{os.getpid()}"


def owner_dead(owner: str | None) -> bool:
    """True when a lease holder ran on this machine and its process is gone."""
    if not owner:
        return False
    host, _, pid = owner.rpartition(":")
    if host != HOSTNAME or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


class Engine:
    def __init__(
        self,
        db_path: Path,
        *,
        idle_exit_s: float | None = 60.0,
        say: Callable[[str], None] | None = None,
    ) -> None:
        self.db_path = db_path
        self.idle_exit_s = idle_exit_s
        self.owner = owner_id()
        self.say = say or (lambda _m: None)
        self.tasks: dict[int, asyncio.Task[None]] = {}

    async def run(self) -> None:
        db = await open_database(self.db_path)
        queries = Queries(db)
        idle_since = time.monotonic()
        delay = 0.05
        try:
            while True:
                await self._expire_dead_owners(queries)
                job = await queries.claim_job(self.owner, lease_s=LEASE_S)
                if job is not None:
                    self.say(f"claimed run {job.run_id} (attempt {job.attempts})")
                    self.tasks[job.run_id] = asyncio.create_task(self._execute(queries, job))
                    delay = 0.05
                    continue
                for run_id, task in list(self.tasks.items()):
                    if task.done():
                        del self.tasks[run_id]
                if self.tasks:
                    idle_since = time.monotonic()
                elif (
                    self.idle_exit_s is not None
                    and time.monotonic() - idle_since > self.idle_exit_s
                ):
                    self.say("nothing to do; exiting")
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 1.5, 1.0)
        finally:
            for task in self.tasks.values():
                task.cancel()
            await asyncio.gather(*self.tasks.values(), return_exceptions=True)
            await db.close()

    async def _expire_dead_owners(self, queries: Queries) -> None:
        rows = await queries.db.fetchall(
            "SELECT run_id, owner FROM jobs WHERE state = 'claimed' AND lease_expires_at > ?",
            (time.time(),),
        )
        for row in rows:
            if row["owner"] != self.owner and owner_dead(row["owner"]):
                async with queries.db.transaction() as conn:
                    await conn.execute(
                        "UPDATE jobs SET lease_expires_at = 0 WHERE run_id = ? AND owner = ?",
                        (row["run_id"], row["owner"]),
                    )

    async def _execute(self, queries: Queries, job: Job) -> None:
        heartbeat = asyncio.create_task(self._heartbeat(queries, job.run_id))
        try:
            await run_job(queries, job.run_id, say=self.say)
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
            await queries.finish_job(job.run_id, self.owner)

    async def _heartbeat(self, queries: Queries, run_id: int) -> None:
        while True:
            await asyncio.sleep(LEASE_S / 3)
            if not await queries.heartbeat(run_id, self.owner, lease_s=LEASE_S):
                self.say(f"lost the lease on run {run_id}")
                return


async def run_job(queries: Queries, run_id: int, *, say: Callable[[str], None]) -> None:
    run = await queries.get_run(run_id)
    assert run is not None
    deployment = await queries.get_deployment_by_id(run.deployment_id)
    assert deployment is not None
    secrets = take_secrets(run.id)
    redact = Redactor(list(secrets.values()) if secrets else [])
    events = EventSink(queries, run.id, redact)
    await queries.run_started(run.id)
    if run.kind == "deploy":
        await queries.update_deployment(deployment.id, state="deploying")
    elif run.kind == "destroy":
        await queries.update_deployment(deployment.id, state="destroying")
    ctx: RunContext | None = None
    try:
        try:
            profile = choose_profile(
                load_config(paths.config_path()), requested=deployment.profile, sandbox=False
            )
            target = resolve_target(profile)
            if target.github_token:
                redact.add(target.github_token)
            aws = await Aws.connect(target)
        except (ConfigError, TargetError) as exc:
            raise RunFailed("setup", StepFailed(str(exc))) from exc
        ctx = RunContext(queries, run, deployment, target, aws, redact, events, secret_env=secrets)
        await execute(GRAPHS[run.kind], ctx)
    except RunFailed as failure:
        rollback_note = ""
        if run.kind == "deploy" and ctx is not None:
            rollback_note = await _roll_back_deploy(ctx)
        message = await _failure_message(
            queries, run.id, run.kind, deployment.name, failure, redact, rollback_note
        )
        events.add(message, step=failure.step, level="error")
        await events.flush()
        await queries.run_ended(run.id, "failed", error=message)
        await queries.update_deployment(deployment.id, state=_state_after_failure(run.kind))
        say(f"run {run.id} failed: {message}")
        if run.kind == "deploy" and secrets is not None:
            drop_secrets(run.id)
        return
    finally:
        if ctx is not None:
            await ctx.close()
    drop_secrets(run.id)
    final = {"deploy": "live", "redeploy": "live", "rollback": "live", "destroy": "destroyed"}
    await queries.update_deployment(deployment.id, state=final[run.kind])
    await queries.run_ended(run.id, "succeeded")
    events.add(f"{run.kind} succeeded", step=None)
    await events.flush()
    say(f"run {run.id} ({run.kind} {deployment.name}) succeeded")


async def _roll_back_deploy(ctx: RunContext) -> str:
    """A first deploy that failed takes its own resources with it (shared ones stay)."""
    from core.steps import teardown

    name = ctx.deployment.name
    before = await ctx.queries.open_resources(ctx.deployment.id)
    note = ""
    if before:
        if "ssh" in ctx.outputs:
            try:
                await teardown.host_cleanup(ctx)
            except Exception as exc:  # the host may be the thing that failed
                ctx.say(f"host cleanup during rollback failed: {exc}", level="warning")
        try:
            await teardown.release_resources(ctx)
        except Exception as exc:
            ctx.say(f"rollback incomplete: {exc}", level="error")
        after = await ctx.queries.open_resources(ctx.deployment.id)
        left = {(a.kind, a.resource_id) for a in after}
        gone = [f"{r.kind} {r.resource_id}" for r in before if (r.kind, r.resource_id) not in left]
        note = f" Rolled back: {', '.join(gone) or 'nothing'}."
        if after:
            note += (
                f" Left: {', '.join(f'{r.kind} {r.resource_id}' for r in after)}; remove "
                f"them with `toast destroy {name} --yes`."
            )
    else:
        note = " Nothing of this deployment's own was created, so nothing needed rolling back."
    shared = [
        r
        for r in await ctx.queries.open_resources(None)
        if r.deployment_id is None and r.profile == ctx.profile_name
    ]
    if shared:
        note += (
            " Kept for the next deploy (shared): "
            f"{', '.join(f'{r.kind} {r.resource_id}' for r in shared)}."
        )
    return note


def _state_after_failure(kind: str) -> str:
    if kind == "deploy":
        return "failed"
    if kind == "destroy":
        return "destroy-failed"
    return "live"


async def _failure_message(
    queries: Queries,
    run_id: int,
    kind: str,
    name: str,
    failure: RunFailed,
    redact: Redactor,
    rollback_note: str = "",
) -> str:
    error = failure.error
    hint = getattr(error, "hint", None)
    message = f"{kind} of {name} failed at step {failure.step}: {redact(str(error)).rstrip('.')}."
    if hint:
        message += f" What to do: {hint}."
    message += rollback_note
    if kind == "deploy" and failure.step in ("build", "health"):
        events = await queries.events_for(run_id)
        lines = [e.message for e in events if e.step == "build" and e.level == "output"][-50:]
        if lines:
            message += "\nLast build output:\n" + "\n".join(lines)
    return message


# -- starting an engine on demand ---------------------------------------------------------


def lock_path() -> Path:
    return paths.data_dir() / "engine.lock"


def hold_engine_lock() -> int | None:
    """Take the engine lock for this process; None if another engine holds it."""
    path = lock_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def engine_running() -> bool:
    fd = hold_engine_lock()
    if fd is None:
        return True
    os.close(fd)
    return False


def ensure_engine() -> int | None:
    """Start a detached `toast engine` unless one is running; returns the new PID.

    TOAST_ENGINE_AUTOSTART=0 leaves starting engines to someone else (`toast serve`, tests);
    TOAST_ENGINE_IDLE_EXIT sets how long a started engine waits for work before exiting."""
    if os.environ.get("TOAST_ENGINE_AUTOSTART", "1") == "0" or engine_running():
        return None
    idle = os.environ.get("TOAST_ENGINE_IDLE_EXIT", "60")
    log = paths.data_dir() / "engine.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli", "engine", "--idle-exit", idle],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            cwd=str(Path(__file__).resolve().parents[1]),
        )
    return proc.pid
