"""Notifications through Apprise (Slack, Discord, Teams, ntfy, email, a JSON webhook, ...).

Off the run's critical path: a run ends first, then its message is sent from a task of
its own, retried with backoff; a notifier that fails or hangs never fails or delays a
deploy. The URLs carry secrets: only Apprise's privacy form of them is ever said."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import apprise

from core.profile.config import Profile
from core.runs.waiting import backoff_delays


def resolve_urls(profile: Profile, say: Callable[[str], None]) -> list[str]:
    """The profile's notification URLs, env:NAME read from the environment."""
    urls = []
    for entry in profile.notify:
        if entry.startswith("env:"):
            value = os.environ.get(entry[4:], "").strip()
            if not value:
                say(f"notify: {entry} is not set in toast's environment; skipped")
                continue
            urls.append(value)
        else:
            urls.append(entry)
    return urls


def masked(urls: Sequence[str]) -> str:
    """The targets as they may be shown: Apprise's privacy form, no secrets."""
    box = apprise.Apprise()
    for url in urls:
        box.add(url)
    return ", ".join(box.urls(privacy=True)) or "no valid target"


class Notifier:
    def __init__(
        self, say: Callable[[str], None], *, timeout: float = 10.0, attempts: int = 3
    ) -> None:
        self.say = say
        self.timeout = timeout
        self.attempts = attempts
        self.pending: set[asyncio.Task[bool]] = set()
        #: Its own threads: a hung receiver can hold these, never the ones AWS calls use.
        self.executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="toast-notify")

    def announce(self, urls: Sequence[str], title: str, body: str) -> asyncio.Task[bool] | None:
        """Send in the background; returns the task (tests and shutdown may wait on it)."""
        if not urls:
            return None
        task = asyncio.get_running_loop().create_task(self._send(list(urls), title, body))
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)
        return task

    async def _send(self, urls: list[str], title: str, body: str) -> bool:
        delays = backoff_delays(initial=1.0, maximum=30.0)
        for attempt in range(1, self.attempts + 1):
            try:
                loop = asyncio.get_running_loop()
                sent = await asyncio.wait_for(
                    loop.run_in_executor(self.executor, _notify, urls, title, body),
                    timeout=self.timeout,
                )
            except TimeoutError:
                sent = False
            if sent:
                return True
            if attempt < self.attempts:
                await asyncio.sleep(next(delays))
        self.say(
            f"notify: {title!r} not delivered to {masked(urls)} after {self.attempts} attempts"
        )
        return False

    async def drain(self, timeout: float) -> None:
        """Give messages still in flight up to `timeout` seconds (a process about to exit)."""
        if self.pending:
            await asyncio.wait(list(self.pending), timeout=timeout)


def _notify(urls: list[str], title: str, body: str) -> bool:
    box = apprise.Apprise()
    for url in urls:
        box.add(url)
    return bool(box.notify(title=title, body=body))
