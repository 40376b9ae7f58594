"""Waiting without fixed sleeps: poll with backoff, a deadline and progress reports."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

T = TypeVar("T")


class WaitTimeout(Exception):
    """A condition did not become true in time. Says what was awaited and for how long."""

    def __init__(self, what: str, waited_s: float, last: str | None = None) -> None:
        self.what = what
        self.waited_s = waited_s
        detail = f" (last: {last})" if last else ""
        super().__init__(f"timed out after {waited_s:.1f} s waiting for {what}{detail}")


def backoff_delays(*, initial: float, maximum: float, factor: float = 2.0) -> Iterator[float]:
    """Delays that grow by `factor` up to `maximum` (retries, and the polls below)."""
    delay = initial
    while True:
        yield delay
        delay = min(delay * factor, maximum)


def poll_sync(
    check: Callable[[], T | None],
    *,
    what: str,
    timeout: float,
    initial: float = 0.02,
    maximum: float = 0.5,
    factor: float = 1.5,
) -> T:
    """Call `check` until it returns something other than None; blocking variant."""
    start = time.monotonic()
    for delay in backoff_delays(initial=initial, maximum=maximum, factor=factor):
        result = check()
        if result is not None:
            return result
        elapsed = time.monotonic() - start
        if elapsed >= timeout:
            raise WaitTimeout(what, elapsed)
        time.sleep(min(delay, max(0.0, timeout - elapsed)))
    raise AssertionError("unreachable")


async def poll(
    check: Callable[[], Awaitable[T | None]],
    *,
    what: str,
    timeout: float,
    initial: float = 0.05,
    maximum: float = 2.0,
    factor: float = 1.5,
    progress: Callable[[float], None] | None = None,
) -> T:
    """Await `check` until it returns something other than None, backing off between tries.

    `progress` is called with the seconds waited so far after every unsuccessful try.
    """
    start = time.monotonic()
    for delay in backoff_delays(initial=initial, maximum=maximum, factor=factor):
        result = await check()
        if result is not None:
            return result
        elapsed = time.monotonic() - start
        if progress is not None:
            progress(elapsed)
        if elapsed >= timeout:
            raise WaitTimeout(what, elapsed)
        await asyncio.sleep(min(delay, max(0.0, timeout - elapsed)))
    raise AssertionError("unreachable")
