"""Tail benchmarks against moto: API calls per 10,000 events, and the delay from
PutLogEvents to the line in a pane."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from textual.app import App, ComposeResult

from core.cloud.aws import Aws
from core.profile.config import sandbox_profile
from core.profile.targets import resolve_target
from core.sandbox.controller import SandboxInfo
from core.views.tail import LogTail
from tests.helpers.waiting import until
from tui.widgets.log_pane import LogPane

GROUP = "/toast/bench/app"


def setup_group(aws: Callable[[str], Any]) -> Any:
    logs = aws("logs")
    logs.create_log_group(logGroupName=GROUP)
    logs.create_log_stream(logGroupName=GROUP, logStreamName="i-1")
    return logs


async def test_api_calls_per_10000_events(sandbox: SandboxInfo, aws: Callable[[str], Any]) -> None:
    logs = setup_group(aws)
    start = int(time.time() * 1000) - 60_000
    tail = LogTail(
        await Aws.connect(resolve_target(sandbox_profile())), GROUP, "app", start_ms=start
    )
    for chunk in range(10):
        logs.put_log_events(
            logGroupName=GROUP,
            logStreamName="i-1",
            logEvents=[
                {"timestamp": start + chunk * 1000 + i, "message": f"event {chunk} {i}"}
                for i in range(1000)
            ],
        )
        await tail.poll_once()
    print(
        f"\ntail: {tail.stats.api_calls} FilterLogEvents calls for {tail.stats.events:,} events "
        f"delivered in 10 bursts ({tail.stats.duplicates_dropped:,} re-read and dropped)"
    )
    assert tail.stats.events == 10_000


class PaneApp(App[None]):
    def compose(self) -> ComposeResult:
        yield LogPane("app")


async def test_delay_from_put_to_screen(sandbox: SandboxInfo, aws: Callable[[str], Any]) -> None:
    logs = setup_group(aws)
    app = PaneApp()
    delays = []
    async with app.run_test(size=(120, 30)) as pilot:
        pane = app.query_one(LogPane)
        tail = LogTail(
            await Aws.connect(resolve_target(sandbox_profile())),
            GROUP,
            "app",
            start_ms=int(time.time() * 1000) - 1000,
        )
        stop = asyncio.Event()

        async def pump() -> None:
            async for batch in tail.follow(stop=stop):
                pane.write_lines(batch)

        task = asyncio.create_task(pump())
        for n in range(10):
            put_at = time.perf_counter()
            logs.put_log_events(
                logGroupName=GROUP,
                logStreamName="i-1",
                logEvents=[{"timestamp": int(time.time() * 1000), "message": f"probe {n}"}],
            )
            await until(
                pilot,
                lambda n=n: any(line.message == f"probe {n}" for line in pane.view.lines),
                f"probe {n} on screen",
                timeout=30,
            )
            delays.append(time.perf_counter() - put_at)
        stop.set()
        await task
    delays.sort()
    print(
        f"\nput -> screen delay: median {delays[len(delays) // 2] * 1000:.0f} ms, "
        f"max {delays[-1] * 1000:.0f} ms"
    )
