"""Toast's tail side by side with the tools users run instead, on one moto server and one log
group: `awslogs get --watch` and `sam logs --tail`, each behind a counting proxy of its own
(API calls by operation, events each FilterLogEvents answer carried).

The writer puts 10,000 events in 10 bursts over 2 streams, one burst a second, and after each
burst two late events stamped 30-60 s in the past (20 in all). Each tool follows the group
from before the first event; a line counts once it is printed (or, for Toast, handed to the
pane). Re-read events are those an answer carried beyond the first time the tool saw them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web

from core.cloud.aws import Aws
from core.profile.config import sandbox_profile
from core.profile.targets import resolve_target
from core.runs.waiting import WaitTimeout, poll
from core.views.tail import LogTail

GROUP = "/toast/bench/race"
STREAMS = ("i-0aaa", "i-0bbb")
BURSTS = 10
PER_BURST = 1000  # split over the streams
LATE_PER_BURST = 2
ID = re.compile(r"\b(ev|late)(\d+)\b")


@dataclass
class Tally:
    """What one tool's proxy saw and what the tool printed."""

    name: str
    calls: dict[str, int] = field(default_factory=dict)
    events_returned: int = 0
    printed: dict[str, list[float]] = field(default_factory=dict)  # id -> print times

    @property
    def filter_calls(self) -> int:
        return self.calls.get("FilterLogEvents", 0)

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    def saw(self, key: str, at: float) -> None:
        self.printed.setdefault(key, []).append(at)


@dataclass
class ToolFigures:
    name: str
    delivered: int
    late_missed: int
    duplicates: int
    filter_calls: int
    total_calls: int
    reread: int
    delay_p50_ms: float
    delay_p99_ms: float

    def per_10000(self, value: int) -> float:
        return value * 10_000 / max(self.delivered, 1)


class CountingProxy:
    """An HTTP proxy in front of moto that counts a tool's API calls (X-Amz-Target) and the
    events FilterLogEvents answers carry."""

    def __init__(self, upstream: str, tally: Tally) -> None:
        self.upstream = upstream.rstrip("/")
        self.tally = tally
        self.client = httpx.AsyncClient(timeout=30)
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        operation = request.headers.get("X-Amz-Target", "").rpartition(".")[2] or "other"
        self.tally.calls[operation] = self.tally.calls.get(operation, 0) + 1
        headers = {
            k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")
        }
        answer = await self.client.request(
            request.method, self.upstream + request.path_qs, content=body, headers=headers
        )
        if operation == "FilterLogEvents" and answer.status_code == 200:
            self.tally.events_returned += len(answer.json().get("events", []))
        keep = {
            k: v
            for k, v in answer.headers.items()
            if k.lower() not in ("content-length", "content-encoding", "transfer-encoding")
        }
        return web.Response(body=answer.content, status=answer.status_code, headers=keep)

    async def __aenter__(self) -> CountingProxy:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *_: object) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
        await self.client.aclose()


def tool_env(endpoint: str) -> dict[str, str]:
    return {
        **os.environ,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "SAM_CLI_TELEMETRY": "0",
        "PYTHONUNBUFFERED": "1",
    }


async def follow_process(argv: list[str], env: dict[str, str], tally: Tally) -> Any:
    """Start a tool and read its output lines as they come, stamping each id's arrival."""
    process = await asyncio.create_subprocess_exec(
        *argv,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )

    async def read() -> None:
        assert process.stdout is not None
        async for raw in process.stdout:
            now = time.monotonic()
            for kind, number in ID.findall(raw.decode(errors="replace")):
                tally.saw(f"{kind}{number}", now)

    return process, asyncio.create_task(read())


async def race(
    endpoint: str,
    tools_dir: Path,
    put: Callable[[str, list[dict[str, Any]]], None],
    *,
    group: str = GROUP,
    bursts: int = BURSTS,
    settle_s: float = 15.0,
) -> list[ToolFigures]:
    """Run the three tools on one group while the writer puts; figures per tool."""
    start_ms = int(time.time() * 1000) - 120_000
    tallies = {name: Tally(name) for name in ("toast", "awslogs", "sam")}
    put_at: dict[str, float] = {}
    late_ids: list[str] = []
    normal_ids: list[str] = []
    async with contextlib.AsyncExitStack() as stack:
        proxies = {
            name: await stack.enter_async_context(CountingProxy(endpoint, tally))
            for name, tally in tallies.items()
        }
        processes = [
            await follow_process(
                [str(tools_dir / "bin/awslogs"), "get", group, "ALL", "--watch", "-s", "5m"],
                tool_env(proxies["awslogs"].url),
                tallies["awslogs"],
            ),
            await follow_process(
                [
                    str(tools_dir / "bin/sam"),
                    "logs",
                    "--cw-log-group",
                    group,
                    "--tail",
                    "--start-time",
                    "5mins ago",
                    "--region",
                    "us-east-1",
                ],
                tool_env(proxies["sam"].url),
                tallies["sam"],
            ),
        ]
        profile = dataclasses.replace(sandbox_profile(), endpoint_url=proxies["toast"].url)
        target = dataclasses.replace(resolve_target(profile), profile=profile)
        tail = LogTail(await Aws.connect(target), group, "app", start_ms=start_ms)
        stop = asyncio.Event()

        async def toast_follow() -> None:
            async for batch in tail.follow(stop=stop):
                now = time.monotonic()
                for line in batch:
                    for kind, number in ID.findall(line.message):
                        tallies["toast"].saw(f"{kind}{number}", now)

        toast_task = asyncio.create_task(toast_follow())

        async def polled_since(counts: dict[str, int]) -> bool | None:
            """Every tool has read the group since `counts` were taken."""
            return all(t.filter_calls > counts[t.name] for t in tallies.values()) or None

        # Every tool has made its first call before the first event is written.
        await poll(lambda: polled_since(dict.fromkeys(tallies, 0)), what="tools", timeout=60)
        rng = random.Random(7)
        number = 0
        for burst in range(bursts):
            now_ms = int(time.time() * 1000)
            per_stream = PER_BURST // len(STREAMS)
            for s_index, stream in enumerate(STREAMS):
                events = []
                for i in range(per_stream):
                    key = f"ev{number}"
                    number += 1
                    normal_ids.append(key)
                    events.append({"timestamp": now_ms + i // 10, "message": f"GET /a {key} 200"})
                stamp = time.monotonic()
                await asyncio.to_thread(put, stream, events)
                for event in events:
                    put_at[ID.search(event["message"]).group(0)] = stamp  # type: ignore[union-attr]
                late_key = f"late{burst * LATE_PER_BURST + s_index}"
                late_ids.append(late_key)
                late_stamp = now_ms - rng.randint(30_000, 60_000)
                stamp = time.monotonic()
                await asyncio.to_thread(
                    put, stream, [{"timestamp": late_stamp, "message": f"late {late_key}"}]
                )
                put_at[late_key] = stamp
            # The next burst once every tool has read the group again: each gets the same
            # chances, whatever its pace.
            counts = {t.name: t.filter_calls for t in tallies.values()}
            await poll(lambda c=counts: polled_since(c), what="every tool's next read", timeout=60)
        everything = set(normal_ids) | set(late_ids)

        async def all_delivered() -> bool | None:
            return all(everything <= set(t.printed) for t in tallies.values()) or None

        # A tool that misses late events never delivers them: the wait ends at the deadline.
        with contextlib.suppress(WaitTimeout):
            await poll(all_delivered, what="every event printed", timeout=settle_s, maximum=0.2)
        stop.set()
        await toast_task
        for process, reader in processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, 15)
            await process.wait()
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
    figures = []
    for name, tally in tallies.items():
        delays = sorted(
            (times[0] - put_at[key]) * 1000 for key, times in tally.printed.items() if key in put_at
        )
        delivered = len([k for k in tally.printed if k in put_at])
        unique_seen = delivered
        figures.append(
            ToolFigures(
                name=name,
                delivered=delivered,
                late_missed=len([k for k in late_ids if k not in tally.printed]),
                duplicates=sum(len(times) - 1 for times in tally.printed.values()),
                filter_calls=tally.filter_calls,
                total_calls=tally.total_calls,
                reread=max(0, tally.events_returned - unique_seen),
                delay_p50_ms=delays[len(delays) // 2] if delays else float("nan"),
                delay_p99_ms=delays[min(len(delays) - 1, len(delays) * 99 // 100)]
                if delays
                else float("nan"),
            )
        )
    return figures


def as_json(figures: list[ToolFigures]) -> str:
    return json.dumps([dataclasses.asdict(f) for f in figures], indent=2)
