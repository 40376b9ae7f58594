"""Log pane benchmarks: ingest rate against Textual's Log and RichLog in the same run,
memory with a full 100k-line buffer, and the time to re-render after a toggle.

Run with scripts/bench. Goals (from the logs issue): >= 3x Log's batched ingest rate,
< 150 MB RSS with 100k lines, < 50 ms per toggle.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

from textual.app import App, ComposeResult
from textual.widgets import Log, RichLog

from core.views.tail import LogLine
from tui.widgets.log_pane import LogPane

from ..conftest import PROJECT_ROOT
from .report import Report

BATCH = 500


def make_lines(n: int) -> list[LogLine]:
    now = int(time.time() * 1000)
    return [
        LogLine(
            now + i,
            "app",
            f'127.0.0.1 - - "GET /api/items/{i} HTTP/1.1" 200 {i % 977} '
            f'"-" "bench/1.0" rt=0.{i % 1000:03d}',
            f"e{i}",
            "i-1",
        )
        for i in range(n)
    ]


class One(App[None]):
    def __init__(self, widget: object) -> None:
        super().__init__()
        self.widget = widget

    def compose(self) -> ComposeResult:
        yield self.widget  # type: ignore[misc]


async def rate_pane(lines: list[LogLine]) -> float:
    pane = LogPane("app", capacity=100_000)
    app = One(pane)
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause()
        start = time.perf_counter()
        for i in range(0, len(lines), BATCH):
            pane.write_lines(lines[i : i + BATCH])
            pane.view.flush()  # as many flushes as batches: the worst case for the pane
        await pilot.pause()
        elapsed = time.perf_counter() - start
        assert len(pane.view.lines) == len(lines)
    return len(lines) / elapsed


async def rate_log(lines: list[LogLine]) -> float:
    log = Log(max_lines=100_000)
    app = One(log)
    texts = [line.message for line in lines]
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause()
        start = time.perf_counter()
        for i in range(0, len(texts), BATCH):
            log.write_lines(texts[i : i + BATCH])
        await pilot.pause()
        elapsed = time.perf_counter() - start
        assert log.line_count >= len(texts)
    return len(texts) / elapsed


async def rate_richlog(lines: list[LogLine]) -> float:
    log = RichLog(max_lines=100_000)
    app = One(log)
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause()
        start = time.perf_counter()
        for line in lines:
            log.write(line.message)
        await pilot.pause()
        elapsed = time.perf_counter() - start
    return len(lines) / elapsed


async def test_ingest_rate_against_log_and_richlog(bench: Report) -> None:
    lines = make_lines(100_000)
    pane = await rate_pane(lines)
    log = await rate_log(lines)
    rich = await rate_richlog(lines[:10_000])
    print(
        f"\ningest lines/s: LogPane {pane:,.0f} | Log (batched {BATCH}) {log:,.0f} | "
        f"RichLog {rich:,.0f} | pane/Log = {pane / log:.1f}x"
    )
    bench.add(
        "log pane",
        "ingest rate",
        pane / log,
        "x Textual Log",
        baseline=f"Log {log:,.0f} lines/s, RichLog {rich:,.0f}",
        goal=">= 3 x",
        ok=pane >= 3 * log,
    )


async def test_toggle_rerender_with_100k_lines(bench: Report) -> None:
    pane = LogPane("app", capacity=100_000)
    app = One(pane)
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause()
        pane.write_lines(make_lines(100_000))
        pane.view.flush()
        await pilot.pause()
        view = pane.view
        timings = {}
        for name, toggle in (
            ("wrap on", "wrap"),
            ("wrap off", "wrap"),
            ("timestamps off", "show_timestamps"),
            ("timestamps on", "show_timestamps"),
        ):
            start = time.perf_counter()
            setattr(view, toggle, not getattr(view, toggle))
            for y in range(view.size.height):  # the frame the user sees
                view.render_line(y)
            timings[name] = (time.perf_counter() - start) * 1000
            await pilot.pause()
    print(
        "\ntoggle re-render ms (100k lines): "
        + ", ".join(f"{k} {v:.1f}" for k, v in timings.items())
    )
    worst = max(timings.values())
    bench.add(
        "log pane", "wrap/timestamps toggle, 100k lines", worst, "ms", goal="< 50 ms", ok=worst < 50
    )


RSS_SCRIPT = """
import asyncio, json, sys, time
from tests.bench.test_bench_log_pane import One, make_lines
from tui.widgets.log_pane import LogPane

def rss_mb():
    for row in open('/proc/self/status'):
        if row.startswith('VmRSS:'):
            return int(row.split()[1]) / 1024

async def main():
    pane = LogPane('app', capacity=100_000)
    app = One(pane)
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause()
        empty = rss_mb()
        for start in range(0, 100_000, 10_000):
            pane.write_lines(make_lines(10_000))
            pane.view.flush()
            await pilot.pause()
        full = rss_mb()
        print(json.dumps({'empty': empty, 'full': full, 'lines': len(pane.view.lines)}))

asyncio.run(main())
"""


def test_rss_with_a_full_100k_line_buffer(bench: Report) -> None:
    out = subprocess.run(
        [sys.executable, "-c", RSS_SCRIPT],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    print(
        f"\nRSS: empty console {result['empty']:.0f} MB, with {result['lines']:,} lines "
        f"{result['full']:.0f} MB"
    )
    assert result["lines"] == 100_000
    bench.add(
        "log pane",
        "RSS with 100k lines",
        result["full"],
        "MB",
        baseline=f"empty {result['empty']:.0f} MB",
        goal="< 150 MB",
        ok=result["full"] < 150,
    )
