"""The engine: claims queued runs from SQLite and executes them, one per deployment at a time.

Runs are jobs with a lease. A live engine renews its leases; when an engine dies, another
takes the run over once the lease lapses (at once if the dead owner was on this machine)
and resumes it from its last finished step.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from core.cloud.aws import Aws, AwsError
from core.cloud.faults import Faults
from core.cloud.gc import ORDER
from core.profile import paths
from core.profile.config import ConfigError, choose_profile, load_config
from core.profile.targets import TargetError, resolve_target
from core.runs import graphs
from core.runs.context import EventSink, RunContext
from core.runs.failures import StepFailed
from core.runs.graph import RunFailed, describe_error, execute
from core.runs.graphs import GRAPHS
from core.runs.launcher import HOSTNAME, owner_dead
from core.runs.queue import drop_secrets, take_secrets
from core.runs.redact import Redactor
from core.runs.settings import RunSettings
from core.runs.states import (
    STATE_AFTER_FAILURE,
    STATE_AFTER_SUCCESS,
    DeploymentState,
    RunKind,
    RunState,
)
from core.serve.notify import Notifier, resolve_urls
from storage import Queries, StorageError, open_database
from storage.records import Deployment, Job, Run

LEASE_S = float(os.environ.get("TOAST_LEASE_S", "30"))
#: Attempts a job may make without a step succeeding before its run is failed.
MAX_ATTEMPTS = int(os.environ.get("TOAST_MAX_ATTEMPTS", "3"))
#: How long an exiting engine gives messages still being sent.
NOTIFY_DRAIN_S = 10.0
#: Threads for blocking calls (boto3's). More is worse past a point: every thread that wakes
#: with a reply competes with the event loop for the GIL (48 doubled the loop's lag p99).
IO_THREADS = 16
#: How long a thread may hold the GIL while another waits for it. The event loop gives the
#: GIL up at every socket write and read (each SSH packet) and then waits for it behind
#: threads parsing boto3 replies: at Python's 5 ms default, a loop iteration with a few
#: writes waited tens of ms (the convoy effect).
GIL_SWITCH_S = 0.001


def owner_id() -> str:
    return f"{HOSTNAME}:{os.getpid()}"


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
        self.stopping = asyncio.Event()
        #: Each run's end is announced to its profile's notification URLs (Apprise), in
        #: the background: a slow or failing notifier never holds a run.
        self.notifier = Notifier(self.say)
        #: Faults of the engine's own environment (an engine started by hand, in tests).
        self.faults = Faults.from_env()

    def stop(self, why: str = "asked to stop") -> None:
        if not self.stopping.is_set():
            self.say(f"stopping ({why}); handing unfinished runs back")
            self.stopping.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        # AWS calls wait in threads (boto3 blocks): asyncio's default pool (6 threads on two
        # cores) queued twenty runs' polls behind each other.
        loop.set_default_executor(
            ThreadPoolExecutor(max_workers=IO_THREADS, thread_name_prefix="toast-io")
        )
        sys.setswitchinterval(GIL_SWITCH_S)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.stop, signal.Signals(sig).name)
        db = await open_database(self.db_path)
        queries = Queries(db)
        lag_log = os.environ.get("TOAST_LOOP_LAG_LOG")
        probe = asyncio.create_task(_sample_loop_lag(Path(lag_log))) if lag_log else None
        idle_since = time.monotonic()
        delay = 0.05
        try:
            while not self.stopping.is_set():
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
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), timeout=delay)
                # A queued run waits at most a quarter second (a read of SQLite each time).
                delay = min(delay * 1.5, 0.25)
        finally:
            if probe is not None:
                probe.cancel()
            for task in self.tasks.values():
                task.cancel()
            await asyncio.gather(*self.tasks.values(), return_exceptions=True)
            await self.notifier.drain(timeout=NOTIFY_DRAIN_S)
            await db.close()
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(sig)

    async def _expire_dead_owners(self, queries: Queries) -> None:
        for run_id, owner in await queries.live_claims():
            if owner != self.owner and owner_dead(owner):
                await queries.expire_lease(
                    run_id, owner, note=f"the engine running it ({owner}) died"
                )

    async def _execute(self, queries: Queries, job: Job) -> None:
        work = asyncio.current_task()
        assert work is not None
        lost = asyncio.Event()
        heartbeat = asyncio.create_task(self._heartbeat(queries, job.run_id, work, lost))
        give_up = None
        if job.attempts > MAX_ATTEMPTS:
            give_up = (
                f"gave up after {job.attempts - 1} attempts: "
                f"{job.last_error or 'each attempt stopped before finishing a step'}"
            )
        try:
            await run_job(
                queries,
                job.run_id,
                say=self.say,
                owner=self.owner,
                engine_faults=self.faults,
                give_up=give_up,
                lost=lost,
            )
        except asyncio.CancelledError:
            if lost.is_set():
                self.say(f"lost the lease on run {job.run_id}; stopped its work")
            elif await queries.release_job(
                job.run_id, self.owner, note="the engine stopped while running it"
            ):
                await queries.run_interrupted(job.run_id)
                self.say(f"run {job.run_id} handed back; the next engine resumes it")
            raise
        except Exception as exc:  # a bug in the engine itself: the run must still end
            message = f"the engine failed while running it: {type(exc).__name__}: {exc}"
            self.say(f"run {job.run_id} failed: {message}")
            await queries.run_ended(job.run_id, "failed", error=message)
            failed = await queries.get_run(job.run_id)
            drop_secrets(failed.secrets_spool if failed else None)
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
        await queries.finish_job(job.run_id, self.owner)
        try:
            await self._announce(queries, job.run_id)
        except Exception as exc:  # a message is never worth a run
            self.say(f"notify: run {job.run_id} not announced: {type(exc).__name__}: {exc}")

    async def _announce(self, queries: Queries, run_id: int) -> None:
        run = await queries.get_run(run_id)
        if run is None or run.state not in (RunState.SUCCEEDED, RunState.FAILED):
            return
        deployment = await queries.get_deployment_by_id(run.deployment_id)
        if deployment is None:
            return
        try:
            profile = load_config(paths.config_path()).profile(deployment.profile)
        except ConfigError:
            return
        urls = resolve_urls(profile, self.say)
        if urls:
            late = [s for s in await queries.steps_for(run.id) if s.state == "failed"]
            title, body = run_message(run, deployment, late=[f"{s.name}: {s.error}" for s in late])
            self.notifier.announce(urls, title, body)

    async def _heartbeat(
        self, queries: Queries, run_id: int, work: asyncio.Task[None], lost: asyncio.Event
    ) -> None:
        """Renew the lease; once it cannot be renewed, another engine may own the run, so the
        work stops at once (two engines must never work on one run)."""
        renewed = time.monotonic()
        while True:
            await asyncio.sleep(LEASE_S / 3)
            try:
                held = await queries.heartbeat(run_id, self.owner, lease_s=LEASE_S)
            except StorageError as exc:
                self.say(f"could not renew the lease on run {run_id}: {exc}")
                held = time.monotonic() - renewed < LEASE_S * 0.8
            else:
                renewed = time.monotonic()
            if not held:
                lost.set()
                work.cancel()
                return


async def _sample_loop_lag(path: Path, every: float = 0.05) -> None:
    """The benchmarks' probe (TOAST_LOOP_LAG_LOG): how late the event loop wakes a task that
    asked to sleep `every` seconds, one sample a line. A periodic sampler, not a wait."""
    loop = asyncio.get_running_loop()
    with path.open("a") as out:
        while True:
            before = loop.time()
            await asyncio.sleep(every)
            out.write(f"{max(0.0, loop.time() - before - every):.4f}\n")
            out.flush()


def run_message(run: Run, deployment: Deployment, *, late: Sequence[str] = ()) -> tuple[str, str]:
    """A run's end in words for a chat message: what, where, which commit, how long; a
    failure's first line; checks that failed after the site went live (`late`)."""
    took = ""
    if run.started_at and run.ended_at:
        took = f" in {run.ended_at - run.started_at:.0f} s"
    commit = f" {run.commit_sha[:12]}" if run.commit_sha else ""
    subject = f" ({run.commit_message.splitlines()[0][:80]})" if run.commit_message else ""
    if run.state == RunState.SUCCEEDED:
        title = f"{deployment.name}: {run.kind} succeeded"
        if run.kind == RunKind.DESTROY:
            return title, f"{deployment.name} is destroyed; nothing of it is left{took}."
        body = f"https://{deployment.fqdn}/ serves{commit}{subject}{took}."
        if late:
            title += ", with a warning"
            body += " A check after it went live failed: " + "; ".join(late) + "."
        return title, body
    first = (run.error or "no error recorded").splitlines()[0]
    return f"{deployment.name}: {run.kind} failed", f"{first}{took}."


async def run_job(
    queries: Queries,
    run_id: int,
    *,
    say: Callable[[str], None],
    owner: str | None = None,
    engine_faults: Faults | None = None,
    give_up: str | None = None,
    lost: asyncio.Event | None = None,
) -> None:
    """Execute one run to its end (succeeded or failed). Cancellation (the engine stopping,
    a lost lease) leaves the run as it is, to be resumed."""
    run = await queries.get_run(run_id)
    assert run is not None
    deployment = await queries.get_deployment_by_id(run.deployment_id)
    assert deployment is not None
    settings = RunSettings.from_run(run.settings, engine_faults)
    secrets = take_secrets(run.secrets_spool) if run.secrets_spool else None
    redact = Redactor(list(secrets.values()) if secrets else [])
    events = EventSink(queries, run.id, redact)
    await queries.run_started(run.id)
    if run.kind == RunKind.DEPLOY:
        await queries.update_deployment(deployment.id, state=DeploymentState.DEPLOYING)
    elif run.kind == RunKind.DESTROY:
        await queries.update_deployment(deployment.id, state=DeploymentState.DESTROYING)
    ctx: RunContext | None = None
    late: list[tuple[str, str]] = []
    try:
        try:
            if run.secrets_spool and secrets is None and not await _built(queries, run.id):
                raise RunFailed(
                    "setup",
                    StepFailed(
                        "the secret values for this run are gone (the spool file was removed)",
                        hint=f"deploy {deployment.name} again with its --secret values",
                    ),
                )
            try:
                profile = choose_profile(
                    load_config(paths.config_path()), requested=deployment.profile, sandbox=False
                )
                target = resolve_target(profile)
                if target.github_token:
                    redact.add(target.github_token)
                aws = await Aws.connect(
                    target, max_attempts=settings.aws_max_attempts, faults=settings.faults
                )
            except (ConfigError, TargetError, AwsError) as exc:
                raise RunFailed("setup", StepFailed(str(exc))) from exc
            ctx = RunContext(
                queries,
                run,
                deployment,
                target,
                aws,
                redact,
                events,
                secret_env=secrets,
                settings=settings,
                owner=owner,
                lease_lost=lost or asyncio.Event(),
            )
            aws.on_call = ctx.record_call
            if give_up:
                # Failed like any other run, rolled back included, at the step that kept dying.
                steps = await queries.steps_for(run.id)
                dying = next((st.name for st in steps if st.state == "running"), "engine")
                raise RunFailed(dying, StepFailed(give_up))
            live_ctx = ctx

            async def on_live() -> None:
                # The site serves the new release: say so now, not after the checks that
                # need not hold it back (`--wait` returns on this). The secrets are on the
                # host by now: their spool goes at once.
                drop_secrets(run.secrets_spool)
                await queries.update_deployment(
                    deployment.id, state=STATE_AFTER_SUCCESS[RunKind(run.kind)]
                )
                events.add(live_ctx.outcome.get("summary") or f"{run.kind} succeeded", step=None)
                await events.flush()

            await execute(GRAPHS[run.kind], ctx, on_live=on_live)
            late = list(ctx.late_failures)
        except RunFailed as failure:
            await _fail(queries, run, deployment.name, deployment.id, failure, ctx, events, say)
            return
        except Exception as exc:
            unexpected = RunFailed("engine", exc)
            await _fail(queries, run, deployment.name, deployment.id, unexpected, ctx, events, say)
            return
        finally:
            if ctx is not None:
                await ctx.close()
    except asyncio.CancelledError:
        if lost is None or not lost.is_set():
            await events.flush()
        raise
    drop_secrets(run.secrets_spool)
    for title, error in late:
        events.add(
            f"The site is live, but a check after it failed: {title}: {error} "
            f"(`toast show {deployment.name}` has the step and what to do)",
            step=None,
            level="warning",
        )
    await queries.run_ended(run.id, RunState.SUCCEEDED)
    await events.flush()
    say(f"run {run.id} ({run.kind} {deployment.name}) succeeded")


async def _built(queries: Queries, run_id: int) -> bool:
    """Whether the run's build step already succeeded (its secrets are on the host)."""
    return any(
        s.name == "build" and s.state == "succeeded" for s in await queries.steps_for(run_id)
    )


async def _fail(
    queries: Queries,
    run: Run,
    name: str,
    deployment_id: int,
    failure: RunFailed,
    ctx: RunContext | None,
    events: EventSink,
    say: Callable[[str], None],
) -> None:
    """End a failed run, whatever else goes wrong: roll back a first deploy, say what was
    rolled back and what was left, and free the secrets spool."""
    rollback_note = ""
    try:
        if run.kind == "deploy" and ctx is not None:
            rollback_note = await _roll_back_deploy(ctx)
    except Exception as exc:
        rollback_note = f" Rollback failed: {exc}; see `toast show {name}` for what is left."
    try:
        message = await _failure_message(
            queries, run.id, run.kind, name, failure, events.redact, rollback_note
        )
    except Exception as exc:
        message = f"{run.kind} of {name} failed at step {failure.step}: {exc}"
    events.add(message, step=failure.step, level="error")
    await events.flush()
    await queries.run_ended(run.id, "failed", error=message)
    await queries.update_deployment(deployment_id, state=STATE_AFTER_FAILURE[RunKind(run.kind)])
    drop_secrets(run.secrets_spool)
    say(f"run {run.id} failed: {message}")


async def _roll_back_deploy(ctx: RunContext) -> str:
    """A first deploy that failed takes its own resources with it (shared ones stay)."""
    name = ctx.deployment.name
    before = await ctx.queries.open_resources(ctx.deployment.id)
    note = ""
    if before:
        if "ssh" in ctx.outputs:
            try:
                await graphs.clean_host(ctx)
            except Exception as exc:  # the host may be the thing that failed
                ctx.say(f"host cleanup during rollback failed: {exc}", level="warning")
        try:
            await graphs.release_resources(ctx)
        except Exception as exc:
            ctx.say(f"rollback incomplete: {exc}", level="error")
        after = await ctx.queries.open_resources(ctx.deployment.id)
        left = {(a.kind, a.resource_id) for a in after}
        # Said in the order they were deleted: what depends on a resource before it.
        in_order = sorted(before, key=lambda r: (ORDER.get(r.kind, 9), -r.id))
        gone = [
            f"{r.kind} {r.resource_id}" for r in in_order if (r.kind, r.resource_id) not in left
        ]
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
    message = (
        f"{kind} of {name} failed at step {failure.step}: "
        f"{redact(describe_error(error)).rstrip('.')}."
    )
    if hint:
        message += f" What to do: {hint}."
    message += rollback_note
    if kind == "deploy" and failure.step in ("build", "health"):
        events = await queries.events_for(run_id)
        lines = [e.message for e in events if e.step == "build" and e.level == "output"][-50:]
        if lines:
            message += "\nLast build output:\n" + "\n".join(lines)
    return message
