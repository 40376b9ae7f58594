"""The CloudWatch tail against moto: late events, pagination, throttling, new streams."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from core.cloud.aws import Aws
from core.profile.config import sandbox_profile
from core.profile.targets import resolve_target
from core.runs.redact import Redactor
from core.sandbox.controller import SandboxInfo
from core.views.tail import LogLine, LogTail, TailState, parse_since

from .deploy_helpers import toast

Clients = Callable[[str], Any]
GROUP = "/toast/tailtest/build"


def put(aws: Clients, stream: str, events: list[tuple[int, str]]) -> None:
    logs = aws("logs")
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_group(logGroupName=GROUP)
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_stream(logGroupName=GROUP, logStreamName=stream)
    for start in range(0, len(events), 10_000):
        batch = events[start : start + 10_000]
        logs.put_log_events(
            logGroupName=GROUP,
            logStreamName=stream,
            logEvents=[{"timestamp": t, "message": m} for t, m in batch],
        )


async def connect() -> Aws:
    return await Aws.connect(resolve_target(sandbox_profile()))


def now_ms() -> int:
    return int(time.time() * 1000)


async def test_a_late_event_with_an_older_timestamp_is_shown_exactly_once(
    sandbox: SandboxInfo, aws: Clients
) -> None:
    base = now_ms() - 120_000
    put(aws, "i-1", [(base + 40_000 + i * 1000, f"event {i}") for i in range(10)])
    # Searches for late events on every poll (by default, every few seconds).
    tail = LogTail(await connect(), GROUP, "build", start_ms=base, late_search_s=0)
    first = await tail.poll_once()
    assert [line.message for line in first] == [f"event {i}" for i in range(10)]
    # Arrives late: ingested now, stamped 30 s before the newest event already shown.
    put(aws, "i-2", [(base + 49_000 - 30_000, "late event")])
    second = await tail.poll_once()
    assert [line.message for line in second] == ["late event"]
    assert await tail.poll_once() == []
    assert tail.stats.duplicates_dropped >= 10


async def test_25000_events_across_pages_with_no_gap_and_no_duplicate(
    sandbox: SandboxInfo, aws: Clients
) -> None:
    base = now_ms() - 600_000
    put(aws, "i-big", [(base + i, f"event {i:05d}") for i in range(25_000)])
    tail = LogTail(await connect(), GROUP, "build", start_ms=base, page_limit=1000)
    lines = await tail.poll_once()
    assert len(lines) == 25_000
    assert [line.message for line in lines] == [f"event {i:05d}" for i in range(25_000)]
    assert tail.stats.api_calls >= 25  # it really followed nextToken page by page
    assert await tail.poll_once() == []


async def test_throttling_is_ridden_out_without_losing_or_repeating_events(
    sandbox: SandboxInfo, aws: Clients, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOAST_FAULTS", "aws:logs.FilterLogEvents:ThrottlingException:3")
    monkeypatch.setenv("TOAST_AWS_MAX_ATTEMPTS", "1")
    base = now_ms() - 10_000
    put(aws, "i-t", [(base + i, f"event {i}") for i in range(50)])
    states: list[TailState] = []
    tail = LogTail(
        await connect(),
        GROUP,
        "build",
        start_ms=base,
        on_state=states.append,
        fast_interval=0.05,
        backoff_initial=0.05,
    )
    stop = asyncio.Event()
    seen: list[LogLine] = []

    async def consume() -> None:
        async for batch in tail.follow(stop=stop):
            seen.extend(batch)
            if len(seen) >= 50:
                stop.set()

    await asyncio.wait_for(consume(), timeout=30)
    assert [line.message for line in seen] == [f"event {i}" for i in range(50)]
    assert tail.stats.throttled == 3
    assert TailState.RECONNECTING in states and states[-1] == TailState.ENDED
    assert states.index(TailState.RECONNECTING) < states.index(TailState.STREAMING)


async def test_streams_created_while_following_are_picked_up(
    sandbox: SandboxInfo, aws: Clients
) -> None:
    base = now_ms() - 5_000
    put(aws, "i-a", [(base, "from a")])
    tail = LogTail(
        await connect(),
        GROUP,
        "build",
        start_ms=base - 1,
        fast_interval=0.05,
        redact=Redactor(["hunter2-secret"]),
    )
    stop = asyncio.Event()
    seen: list[str] = []

    async def consume() -> None:
        async for batch in tail.follow(stop=stop):
            seen.extend(line.message for line in batch)
            if len(seen) == 1:
                put(aws, "i-b", [(now_ms(), "from b with hunter2-secret")])
            if len(seen) >= 2:
                stop.set()

    await asyncio.wait_for(consume(), timeout=30)
    assert seen == ["from a", "from b with [REDACTED]"]


def test_parse_since() -> None:
    assert parse_since("10m") == 600_000 and parse_since("2h") == 7_200_000
    with pytest.raises(ValueError, match="duration"):
        parse_since("ten minutes")


def test_toast_logs_prints_json_lines_per_source(
    sandbox: SandboxInfo, aws: Clients, isolated_toast: Path
) -> None:
    import asyncio as aio

    from storage import Queries, open_database

    from .helpers.builders import new_deployment

    async def seed() -> None:
        db = await open_database(isolated_toast / "toast.db")
        await Queries(db).create_deployment(new_deployment("logged"), actor="test")
        await db.close()

    aio.run(seed())
    logs = aws("logs")
    stamp = now_ms() - 1000
    for source, message in (("build", "npm run build ok"), ("access", "GET / 200")):
        group = f"/toast/logged/{source}"
        logs.create_log_group(logGroupName=group)
        logs.create_log_stream(logGroupName=group, logStreamName="i-x")
        logs.put_log_events(
            logGroupName=group,
            logStreamName="i-x",
            logEvents=[{"timestamp": stamp, "message": message}],
        )
    result = toast("logs", "logged", "--json", "--since", "5m")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert {(ln["source"], ln["message"]) for ln in lines} == {
        ("build", "npm run build ok"),
        ("access", "GET / 200"),
    }
    only_build = toast("logs", "logged", "--source", "build", "--json")
    assert [json.loads(x)["source"] for x in only_build.stdout.splitlines()] == ["build"]
    bad = toast("logs", "logged", "--since", "soon")
    assert bad.returncode == 2 and "--since" in bad.stderr


async def test_an_idle_tail_rereads_the_newest_moment_not_the_look_back(
    sandbox: SandboxInfo, aws: Clients
) -> None:
    """Polls read from the newest ingestion less the observed lag; the whole look-back is
    searched (for late events) apart, every few seconds at most."""
    base = now_ms() - 60_000
    put(aws, "i-idle", [(base + i * 60, f"event {i}") for i in range(1000)])
    tail = LogTail(await connect(), GROUP, "build", start_ms=base - 1000, late_search_s=3600)
    assert len(await tail.poll_once()) == 1000
    for _ in range(5):
        assert await tail.poll_once() == []
    # Each idle poll re-reads only the events of the newest half second (8 of them, one
    # every 60 ms), not the minute of them a look-back would.
    assert tail.stats.duplicates_dropped <= 5 * 9, tail.stats
    # A late one, stamped 40 s before its ingestion, is found by the next search.
    put(aws, "i-idle", [(now_ms() - 40_000, "late and found")])
    tail._next_full = 0.0  # the search is due now (it would be within 5 s)
    assert [line.message for line in await tail.poll_once()] == ["late and found"]
    assert tail.stats.late == 1
