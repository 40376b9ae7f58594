"""Runs a run's steps as a graph: each starts as soon as the steps it needs have succeeded.

Each step's start, end, result, output and error go to SQLite. Steps already succeeded
(by an engine that died) are not run again: their saved outputs are reused.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from core.cloud.aws import AwsError
from core.host.ssh import SSH_ATTEMPTS, RemoteError, SshError
from core.runs.context import RunContext
from core.runs.failures import StepFailed
from core.runs.outputs import StepOutput
from core.runs.step_scope import CURRENT_STEP

StepFn = Callable[[RunContext], Awaitable[StepOutput]]
T = TypeVar("T")


@dataclass(frozen=True)
class StepDef:
    name: str
    needs: tuple[str, ...]
    run: StepFn
    title: str
    #: The kind of output the step returns: how its saved output is read back on resume.
    output: type[StepOutput] = StepOutput
    #: A check that need not hold the site back: the run is decided (the site is live) once
    #: every other step has succeeded; this one finishes afterwards and its failure is a
    #: warning with its own result, never a rollback of a site already serving.
    after_live: bool = False
    #: What puts back what the step may have half done, when it fails for good (a switch
    #: that linked the new release and then lost the host); says what it did.
    undo: Callable[[RunContext], Awaitable[str]] | None = None


#: How long an undo may take before the run gives up on it and says so.
UNDO_TIMEOUT_S = 300.0


class RunFailed(Exception):
    def __init__(self, step: str, error: BaseException) -> None:
        self.step = step
        self.error = error
        super().__init__(f"step {step} failed: {error}")


def describe_error(exc: BaseException) -> str:
    """An error as the user reads it. Toast's own errors say what failed; anything else is
    unexpected, so its type is named too."""
    text = str(exc)
    if isinstance(exc, StepFailed | AwsError | RemoteError | SshError):
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def live_steps(steps: list[StepDef]) -> list[str]:
    """The steps that decide a run (all but the after-live checks)."""
    return [step.name for step in steps if not step.after_live]


async def execute(
    steps: list[StepDef],
    ctx: RunContext,
    *,
    on_live: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Run the graph. `on_live` is awaited once, as soon as every step that decides the run
    has succeeded (after-live checks may still be running)."""
    by_name = {step.name: step for step in steps}
    deciding = live_steps(steps)
    live_said = False
    for saved in await ctx.queries.steps_for(ctx.run.id):
        if saved.state in ("succeeded", "skipped"):
            # A skipped step said only why: its output is the plain kind.
            kind = StepOutput if saved.state == "skipped" else by_name[saved.name].output
            ctx.outputs[saved.name] = kind.from_json(saved.output or {})
    pending = {s.name: s for s in steps if s.name not in ctx.outputs}
    running: dict[asyncio.Task[StepOutput], StepDef] = {}
    try:
        while pending or running:
            if not live_said and all(name in ctx.outputs for name in deciding):
                live_said = True
                if on_live is not None:
                    await on_live()
            for name, ready in list(pending.items()):
                if all(need in ctx.outputs for need in ready.needs):
                    del pending[name]
                    running[asyncio.create_task(_run_step(ready, ctx), name=name)] = ready
            if not running:
                missing = {
                    n: [d for d in s.needs if d not in ctx.outputs] for n, s in pending.items()
                }
                raise RuntimeError(f"steps can never start: {missing}")
            done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                finished = running.pop(task)
                error = task.exception()
                if error is not None and finished.after_live:
                    ctx.late_failures.append((finished.title, ctx.redact(describe_error(error))))
                    continue
                if error is not None:
                    ctx.cancel_note = f"cancelled: step {finished.name} failed"
                    raise RunFailed(finished.name, error)
                ctx.outputs[finished.name] = task.result()
                if ctx.owner is not None:
                    await ctx.queries.job_progressed(ctx.run.id, ctx.owner)
                ctx.settings.faults.kill_after(finished.name)
        if not live_said and on_live is not None:
            await on_live()  # every step was done before (a resumed run)
    finally:
        for task in running:
            task.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)


async def _attempts(step: StepDef, ctx: RunContext, work: Callable[[], Awaitable[T]]) -> T:
    """`work` (a step, or its undo), run again on a new connection when its SSH connection
    was lost."""
    attempt = 1
    while True:
        try:
            return await work()
        except SshError as exc:  # the next ctx.remote() connects afresh
            if attempt == SSH_ATTEMPTS:
                raise SshError(f"{exc} ({attempt} attempts, each on a new connection)") from exc
            attempt += 1
            ctx.say(
                f"{exc}; connecting again to run the step again (attempt {attempt} of "
                f"{SSH_ATTEMPTS})",
                step=step.name,
                level="warning",
            )


async def _undo(step: StepDef, ctx: RunContext) -> str | None:
    """Run the failed step's undo, if it has one; what it did, or why it could not."""
    undo = step.undo
    if undo is None:
        return None
    ctx.say(f"undoing what {step.title.lower()} may have done", step=step.name, level="warning")
    try:
        async with asyncio.timeout(UNDO_TIMEOUT_S):
            return await _attempts(step, ctx, lambda: undo(ctx))
    except TimeoutError:
        return f"could not undo it within {UNDO_TIMEOUT_S:.0f} s"
    except Exception as exc:
        return f"could not undo it: {describe_error(exc)}"


async def _run_step(step: StepDef, ctx: RunContext) -> StepOutput:
    CURRENT_STEP.set(step.name)  # this task's own context: calls it makes name the step
    await ctx.queries.step_started(ctx.run.id, step.name)
    ctx.say(f"{step.title}...", step=step.name)
    started = time.monotonic()
    try:
        await ctx.settings.faults.at_step_start(step.name)
        output = await _attempts(step, ctx, lambda: step.run(ctx))
    except asyncio.CancelledError:
        if ctx.lease_lost.is_set():
            raise  # the run is another engine's now: leave its record alone
        if ctx.cancel_note:
            await ctx.queries.step_ended(ctx.run.id, step.name, "failed", error=ctx.cancel_note)
        else:  # the engine stopped: the step runs again when the run resumes
            await ctx.queries.step_ended(
                ctx.run.id, step.name, "pending", error="interrupted: the engine stopped"
            )
        raise
    except BaseException as exc:
        message = ctx.redact(describe_error(exc))
        hint = exc.hint if isinstance(exc, StepFailed) else None
        undone = await _undo(step, ctx) if isinstance(exc, Exception) else None
        if undone is not None:
            message = f"{message}; {ctx.redact(undone)}"
        await ctx.queries.step_ended(ctx.run.id, step.name, "failed", error=message, detail=hint)
        ctx.say(f"✗ {step.title} failed: {message}", step=step.name, level="error")
        if undone is not None:
            raise StepFailed(message, hint=hint) from exc
        raise
    elapsed = time.monotonic() - started
    detail = output.detail
    state = "skipped" if output.skipped else "succeeded"
    await ctx.queries.step_ended(
        ctx.run.id, step.name, state, output=output.to_json(), detail=detail or f"{elapsed:.1f} s"
    )
    if state == "skipped":
        ctx.say(f"- {step.title}: skipped ({detail})", step=step.name)
        return output
    summary = f"{detail}, {elapsed:.1f} s" if detail else f"{elapsed:.1f} s"
    ctx.say(f"✓ {step.title} ({summary})", step=step.name)
    return output
