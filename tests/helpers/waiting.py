"""The tests' one way to wait: for a condition, with a deadline, never for a fixed time.

`until` drives a Textual Pilot: before each check it lets the app process what is pending
(`pilot.pause()` with no delay), and between checks it backs off as the engine's own poll
does (1 ms up to 50 ms), so a test waits about as long as the console needs."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from core.runs.waiting import WaitTimeout, poll, poll_sync

T = TypeVar("T")


async def until(pilot: Any, check: Callable[[], object], what: str, timeout: float = 60) -> None:
    """Wait until `check()` is truthy; AssertionError naming `what` after `timeout` s."""

    async def probe() -> bool | None:
        await pilot.pause()  # let the app handle what is pending before looking again
        return True if check() else None

    await _deadline(probe, what, timeout)


async def until_value(
    pilot: Any, probe: Callable[[], Awaitable[T | None]], what: str, timeout: float = 60
) -> T:
    """Like until, for an async probe that returns the value once it is there."""

    async def look() -> T | None:
        await pilot.pause()
        return await probe()

    return await _deadline(look, what, timeout)


async def _deadline(probe: Callable[[], Awaitable[T | None]], what: str, timeout: float) -> T:
    """The engine's own poll (back-off from 1 ms to 50 ms), as a test failure on timeout."""
    try:
        return await poll(probe, what=what, timeout=timeout, initial=0.001, maximum=0.05)
    except WaitTimeout:
        raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}") from None


def wait_for(check: Callable[[], T | None], what: str, timeout: float = 60) -> T:
    """Outside an app: poll `check` (with back-off) until it returns something."""
    return poll_sync(check, what=what, timeout=timeout, initial=0.01, maximum=0.2)


async def palette_options(pilot: Any, query: str) -> list[str]:
    """What the open command palette offers for `query`, once its search has run (the
    palette searches in a worker: the options are read after every worker is done)."""
    from textual.command import CommandList

    app = pilot.app
    box = app.screen.query_one("CommandInput")
    if box.value != query:
        box.value = query
    await pilot.pause()
    await settled(app)
    await pilot.pause()
    options = app.screen.query_one(CommandList)
    # Each prompt is the command's title, then its help on the next line.
    prompts = (options.get_option_at_index(i).prompt for i in range(options.option_count))
    return [str(prompt).split("\n", 1)[0] for prompt in prompts]


class Story:
    """The messages a console run posted, as its `run_test(message_hook=...)`: what it told
    the user (notifications) and the order things happened in."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    def hook(self, message: Any) -> None:
        self.messages.append(message)

    @property
    def notices(self) -> list[str]:
        from textual.notifications import Notify

        return [m.notification.message for m in self.messages if isinstance(m, Notify)]

    def names(self) -> list[str]:
        """The class names of the messages, in order (for a story a test asserts)."""
        return [type(m).__name__ for m in self.messages]


async def settled(app: Any, timeout: float = 60) -> None:
    """Every worker the console started has ended. A worker cancelled by a newer one of its
    group (an exclusive reload) counts as ended, not as a failure."""
    from textual.worker import WorkerCancelled

    deadline = time.monotonic() + timeout
    while True:
        try:
            await app.workers.wait_for_complete()
            return
        except WorkerCancelled:
            if time.monotonic() > deadline:
                raise
