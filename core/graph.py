"""Runs a run's steps as a graph: each starts as soon as the steps it needs have succeeded.

Each step's start, end, result, output and error go to SQLite. Steps already succeeded
(by an engine that died) are not run again: their saved outputs are reused.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from core import faults
from core.context import RunContext, StepFailed

StepFn = Callable[[RunContext], Awaitable[dict[str, Any] | None]]


@dataclass(frozen=True)
class StepDef:
    name: str
    needs: tuple[str, ...]
    run: StepFn
    title: str


class RunFailed(Exception):
    def __init__(self, step: str, error: BaseException) -> None:
        self.step = step
        self.error = error
        super().__init__(f"step {step} failed: {error}")


async def execute(steps: list[StepDef], ctx: RunContext) -> None:
    for saved in await ctx.queries.steps_for(ctx.run.id):
        if saved.state == "succeeded":
            ctx.outputs[saved.name] = saved.output or {}
    pending = {s.name: s for s in steps if s.name not in ctx.outputs}
    running: dict[asyncio.Task[dict[str, Any] | None], StepDef] = {}
    try:
        while pending or running:
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
                if error is not None:
                    raise RunFailed(finished.name, error)
                ctx.outputs[finished.name] = task.result() or {}
                faults.kill_after(finished.name)
    finally:
        for task in running:
            task.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)


async def _run_step(step: StepDef, ctx: RunContext) -> dict[str, Any] | None:
    await ctx.queries.step_started(ctx.run.id, step.name)
    ctx.say(f"{step.title}...", step=step.name)
    started = time.monotonic()
    try:
        output = await step.run(ctx)
    except asyncio.CancelledError:
        await ctx.queries.step_ended(
            ctx.run.id, step.name, "failed", error="cancelled: another step failed"
        )
        raise
    except BaseException as exc:
        message = ctx.redact(str(exc) or type(exc).__name__)
        hint = exc.hint if isinstance(exc, StepFailed) else None
        await ctx.queries.step_ended(ctx.run.id, step.name, "failed", error=message, detail=hint)
        ctx.say(f"✗ {step.title} failed: {message}", step=step.name, level="error")
        raise
    elapsed = time.monotonic() - started
    detail = (output or {}).get("_detail")
    await ctx.queries.step_ended(
        ctx.run.id, step.name, "succeeded", output=output or {}, detail=detail or f"{elapsed:.1f} s"
    )
    summary = f"{detail}, {elapsed:.1f} s" if detail else f"{elapsed:.1f} s"
    ctx.say(f"✓ {step.title} ({summary})", step=step.name)
    return output
