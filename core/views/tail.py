"""Following CloudWatch Logs without missing late events.

Popular tail tools move their cursor to the newest timestamp seen and so never show an
event ingested late with an older timestamp. Toast polls FilterLogEvents from
`newest seen - lookback`, follows nextToken to the end (an empty or partial page is not
the end), and drops what it has shown before by eventId, remembered in a bounded set.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.cloud.aws import Aws, AwsError
from core.cloud.log_groups import LOG_SOURCES, log_group
from core.runs.redact import Redactor

if TYPE_CHECKING:
    from mypy_boto3_logs.type_defs import FilterLogEventsRequestTypeDef

THROTTLED = {"ThrottlingException", "Throttling", "RequestLimitExceeded", "TooManyRequests"}


class TailState(enum.Enum):
    CONNECTING = "connecting"
    STREAMING = "streaming"
    IDLE = "idle"
    RECONNECTING = "reconnecting"
    SAMPLED = "sampled"
    ENDED = "ended"


@dataclass(frozen=True)
class LogLine:
    timestamp: int  # ms since the epoch, as the event says
    source: str
    message: str
    event_id: str
    stream: str

    def to_json(self) -> dict[str, object]:
        return {
            "timestamp": self.timestamp,
            "source": self.source,
            "message": self.message,
            "stream": self.stream,
        }


class SeenIds:
    """The eventIds shown lately; the oldest are forgotten past `capacity`."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()

    def add(self, event_id: str) -> bool:
        """True if the id is new."""
        if event_id in self._ids:
            return False
        self._ids[event_id] = None
        if len(self._ids) > self.capacity:
            self._ids.popitem(last=False)
        return True

    def __len__(self) -> int:
        return len(self._ids)


@dataclass
class TailStats:
    api_calls: int = 0
    events: int = 0
    duplicates_dropped: int = 0
    throttled: int = 0


class LogTail:
    """One log group of one deployment, followed by polling."""

    def __init__(
        self,
        aws: Aws,
        group: str,
        source: str,
        *,
        start_ms: int,
        lookback_ms: int = 5 * 60_000,
        redact: Redactor | None = None,
        dedupe_capacity: int = 100_000,
        fast_interval: float = 0.5,
        slow_interval: float = 5.0,
        idle_after: float = 10.0,
        on_state: Callable[[TailState], None] | None = None,
        page_limit: int | None = None,
        backoff_initial: float = 1.0,
    ) -> None:
        self.aws = aws
        self.group = group
        self.source = source
        self.start_ms = start_ms
        self.lookback_ms = lookback_ms
        self.redact = redact or Redactor()
        self.seen = SeenIds(dedupe_capacity)
        self.newest_ms: int | None = None
        self.fast_interval = fast_interval
        self.slow_interval = slow_interval
        self.idle_after = idle_after
        self.on_state = on_state
        self.page_limit = page_limit
        self.backoff_initial = backoff_initial
        self.state = TailState.CONNECTING
        self.stats = TailStats()
        #: The log group did not exist at the last poll (not made yet, or deleted).
        self.group_missing = False
        self._last_event_at = time.monotonic()

    def _set_state(self, state: TailState) -> None:
        if state != self.state:
            self.state = state
            if self.on_state is not None:
                self.on_state(state)

    def window_start(self) -> int:
        if self.newest_ms is None:
            return self.start_ms
        return max(self.start_ms, self.newest_ms - self.lookback_ms)

    async def poll_once(self) -> list[LogLine]:
        """One pass over the window, to the last page; returns only events not shown before,
        in timestamp order."""
        fresh: list[LogLine] = []
        token: str | None = None
        logs = await self.aws.logs()
        params: FilterLogEventsRequestTypeDef = {
            "logGroupName": self.group,
            "startTime": self.window_start(),
        }
        if self.page_limit:
            params["limit"] = self.page_limit
        while True:
            if token:
                params["nextToken"] = token
            self.stats.api_calls += 1
            try:
                page = await self.aws.run(logs.filter_log_events, **params)
            except AwsError as exc:
                if exc.code == "ResourceNotFoundException":
                    self.group_missing = True
                    return fresh  # the group does not exist yet: nothing shipped so far
                raise
            self.group_missing = False
            for event in page.get("events", []):
                if not self.seen.add(event["eventId"]):
                    self.stats.duplicates_dropped += 1
                    continue
                fresh.append(
                    LogLine(
                        int(event["timestamp"]),
                        self.source,
                        self.redact(event["message"].rstrip("\n")),
                        event["eventId"],
                        event.get("logStreamName", ""),
                    )
                )
            token = page.get("nextToken")
            if not token:
                break
        if fresh:
            self.stats.events += len(fresh)
            newest = max(line.timestamp for line in fresh)
            self.newest_ms = newest if self.newest_ms is None else max(self.newest_ms, newest)
            fresh.sort(key=lambda line: (line.timestamp, line.event_id))
        return fresh

    async def follow(self, *, stop: asyncio.Event | None = None) -> AsyncIterator[list[LogLine]]:
        """Yield batches of new lines until `stop` is set; adapts its pace and rides out
        throttling with backoff."""
        interval = self.fast_interval
        backoff = self.backoff_initial
        while stop is None or not stop.is_set():
            try:
                batch = await self.poll_once()
            except AwsError as exc:
                if exc.code not in THROTTLED:
                    self._set_state(TailState.ENDED)
                    raise
                self.stats.throttled += 1
                self._set_state(TailState.RECONNECTING)
                await _wait(stop, backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            backoff = self.backoff_initial
            now = time.monotonic()
            if batch:
                self._last_event_at = now
                interval = self.fast_interval
                self._set_state(TailState.STREAMING)
                yield batch
            else:
                interval = min(interval * 1.5, self.slow_interval)
                if now - self._last_event_at > self.idle_after:
                    self._set_state(TailState.IDLE)
                elif self.state != TailState.IDLE:
                    self._set_state(TailState.STREAMING)
            await _wait(stop, interval)
        self._set_state(TailState.ENDED)


async def _wait(stop: asyncio.Event | None, seconds: float) -> None:
    if stop is None:
        await asyncio.sleep(seconds)
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


def tails_for(
    aws: Aws,
    name: str,
    sources: list[str] | None,
    *,
    start_ms: int,
    redact: Redactor | None = None,
    **options: object,
) -> list[LogTail]:
    """One tail per source of a deployment (build, access, error, app)."""
    chosen = sources or list(LOG_SOURCES)
    return [
        LogTail(aws, log_group(name, source), source, start_ms=start_ms, redact=redact, **options)  # type: ignore[arg-type]  # options are LogTail's keywords
        for source in chosen
    ]


def parse_since(text: str) -> int:
    """'10m', '2h', '30s', '1d' -> milliseconds."""
    units = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
    if len(text) < 2 or text[-1] not in units or not text[:-1].isdigit():
        raise ValueError(f"{text!r} is not a duration like 30s, 10m, 2h or 1d")
    return int(text[:-1]) * units[text[-1]]
