"""Tail benchmarks against moto: Toast's tail side by side with awslogs and `sam logs
--tail` (tests/bench/tail_race.py), and the delay from PutLogEvents to the line in a pane."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.app import App, ComposeResult

from core.cloud.aws import Aws
from core.profile.config import sandbox_profile
from core.profile.targets import resolve_target
from core.sandbox.controller import SandboxInfo
from core.views.tail import LogTail
from tui.widgets.log_pane import LogPane

from ..conftest import PROJECT_ROOT
from ..helpers.waiting import until
from .report import Report, quick
from .tail_race import BURSTS, LATE_PER_BURST, STREAMS, ToolFigures, race

GROUP = "/toast/bench/app"


def setup_group(aws: Callable[[str], Any]) -> Any:
    logs = aws("logs")
    logs.create_log_group(logGroupName=GROUP)
    logs.create_log_stream(logGroupName=GROUP, logStreamName="i-1")
    return logs


async def test_tail_against_awslogs_and_sam(
    sandbox: SandboxInfo, aws: Callable[[str], Any], bench: Report
) -> None:
    """Late events missed, re-reading and calls per 10,000 delivered, and delivery delay,
    for Toast's tail, `awslogs get --watch` and `sam logs --tail` on one group (2 runs; each
    tool's figures are its worse run's, by events re-read)."""
    tools = Path(os.environ.get("TOAST_BENCH_TOOLS") or PROJECT_ROOT / ".bench-tools")
    assert (tools / "bin/awslogs").exists() and (tools / "bin/sam").exists(), (
        f"awslogs and sam are not in {tools}: run scripts/bench, which installs them"
    )
    logs = aws("logs")
    runs: list[dict[str, ToolFigures]] = []
    for run in range(quick(2, 1)):
        group = f"{GROUP}-{run}"
        logs.create_log_group(logGroupName=group)
        for stream in STREAMS:
            logs.create_log_stream(logGroupName=group, logStreamName=stream)

        def put(stream: str, events: list[dict[str, Any]], group: str = group) -> None:
            logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)

        figures = await race(sandbox.aws_endpoint, tools, put, group=group, bursts=quick(BURSTS, 3))
        runs.append({f.name: f for f in figures})
    worse = {}
    for name in ("toast", "awslogs", "sam"):
        ordered = sorted((r[name] for r in runs), key=lambda f: f.reread)
        print(f"\n{name}, each run: " + "; ".join(str(f) for f in ordered))
        worse[name] = ordered[-1]
    toast, awslogs = worse["toast"], worse["awslogs"]
    late = quick(BURSTS, 3) * LATE_PER_BURST
    for tool in worse.values():
        ours = tool is toast
        section = f"tail: {tool.name}"
        reread, calls = tool.per_10000(tool.reread), tool.per_10000(tool.filter_calls)
        their_reread = awslogs.per_10000(awslogs.reread)
        their_calls = awslogs.per_10000(awslogs.filter_calls)
        bench.add(section, "events delivered", tool.delivered, "events")
        bench.add(
            section,
            "late events missed",
            tool.late_missed,
            f"of {late}",
            goal="0" if ours else "",
            ok=tool.late_missed == 0 if ours else None,
        )
        bench.add(
            section,
            "duplicates shown",
            tool.duplicates,
            "lines",
            goal="0" if ours else "",
            ok=tool.duplicates == 0 if ours else None,
        )
        bench.add(
            section,
            "events re-read per 10,000 delivered",
            reread,
            "events",
            goal=f"< awslogs ({their_reread:,.0f})" if ours else "",
            ok=reread < their_reread if ours else None,
        )
        bench.add(
            section,
            "FilterLogEvents calls per 10,000 delivered",
            calls,
            "calls",
            goal=f"< awslogs ({their_calls:.0f})" if ours else "",
            ok=calls < their_calls if ours else None,
        )
        bench.add(section, "all API calls per 10,000", tool.per_10000(tool.total_calls), "calls")
        bench.add(section, "delivery delay p50", tool.delay_p50_ms, "ms")
        bench.add(section, "delivery delay p99", tool.delay_p99_ms, "ms")
    assert all(tool.delivered > 0 for tool in worse.values()), worse


class PaneApp(App[None]):
    def compose(self) -> ComposeResult:
        yield LogPane("app")


async def test_delay_from_put_to_screen(
    sandbox: SandboxInfo, aws: Callable[[str], Any], bench: Report
) -> None:
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
    bench.add("tail", "PutLogEvents -> pane, median of 10", delays[len(delays) // 2] * 1000, "ms")
    bench.add(
        "tail",
        "PutLogEvents -> pane, worst of 10",
        delays[-1] * 1000,
        "ms",
        goal="<= 2,000 ms (the fast poll is 1 s)",
        ok=delays[-1] <= 2.0,
    )
