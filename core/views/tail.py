"""Following CloudWatch Logs without missing late events, and without re-reading the log.

Popular tail tools move their cursor to the newest timestamp seen and so never show an
event ingested late with an older timestamp; those that do catch it re-read a wide window on
every poll. Each poll of Toast's tail reads FilterLogEvents (to the last page) from the
later of the newest ingestion time seen and the server's clock at the last read, less the
lag in-order events arrive with (the 99th percentile observed, not assumed): an idle poll
re-reads almost nothing. Late events (stamped well before their ingestion) are searched for
apart: every few seconds where earlier late events were found (their lags), and over the
whole look-back (5 minutes) from every 5 s, doubling to every minute while none turns up
that the first kind would have missed. Each search starts from the ingestion horizon of the
one before, less the lags it covers, so every event ingested since and stamped within the
look-back before its ingestion is found. What was shown before is dropped by eventId,
remembered in a bounded set.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import enum
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.cloud.aws import Aws, AwsError
from core.cloud.log_groups import LOG_SOURCES, log_group
from core.runs.redact import Redactor

if TYPE_CHECKING:
    from mypy_boto3_logs.type_defs import (
        FilterLogEventsRequestTypeDef,
        FilterLogEventsResponseTypeDef,
    )

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
    duplicates_dropped: int = 0  # events read again and dropped (the cost of look-backs)
    late: int = 0  # events found by a search for late events
    throttled: int = 0


#: Margin over the observed arrival lag: ingestion is visible to reads a moment after it.
LAG_SLACK_MS = 500
#: Lags remembered to size the read window (its 99th percentile is used).
LAG_SAMPLES = 1_000
#: How often late events are searched for where earlier ones were found (doubling while
#: none turns up), and over the whole look-back (from FULL_SEARCH_S, doubling while none
#: turns up that the first would have missed, up to its maximum). An event that arrives
#: half a minute late is no worse for showing two seconds later; each search is a call
#: (3 s made more calls than awslogs in some runs).
BAND_SEARCH_S = 5.0
#: The least margin around the lags late events were found with.
BAND_PAD_MS = 5_000
FULL_SEARCH_S = (5.0, 60.0)


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
        fast_interval: float = 1.0,
        slow_interval: float = 5.0,
        idle_after: float = 10.0,
        on_state: Callable[[TailState], None] | None = None,
        page_limit: int | None = None,
        backoff_initial: float = 1.0,
        late_search_s: float = FULL_SEARCH_S[0],
    ) -> None:
        self.aws = aws
        self.group = group
        self.source = source
        self.start_ms = start_ms
        #: How long before its ingestion a late event may be stamped and still be found.
        self.lookback_ms = lookback_ms
        self.redact = redact or Redactor()
        self.seen = SeenIds(dedupe_capacity)
        self.newest_ms: int | None = None
        #: The newest ingestion time seen (CloudWatch's clock, not this machine's).
        self.horizon_ms: int | None = None
        #: The server's clock at the last read that reached the end (its Date header).
        self._server_ms: int | None = None
        self._lags: deque[int] = deque(maxlen=LAG_SAMPLES)
        #: The lags late events were found with: where to look first.
        self._late_band: tuple[int, int] | None = None
        #: Ingestion horizons at the last searches: each search starts from there.
        self._band_from: int | None = None
        self._full_from: int | None = None
        self._next_band = 0.0
        self._next_full = 0.0
        #: The first full search's delay, and the full searches' pace once one finds any.
        self.late_search_s = late_search_s
        self._full_every = late_search_s
        self._band_every = min(BAND_SEARCH_S, late_search_s)
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

    def lag_allowance(self) -> int:
        """How long before its ingestion an in-order event is stamped (p99 of the lags seen),
        plus the moment an ingested event takes to be visible to reads."""
        if not self._lags:
            return LAG_SLACK_MS
        ordered = sorted(self._lags)
        return max(0, ordered[min(len(ordered) - 1, len(ordered) * 99 // 100)]) + LAG_SLACK_MS

    def window_start(self) -> int:
        """An event not read yet is ingested after the newest ingestion seen, and after the
        server's clock at the last read (its Date, to the second): so it is stamped after
        the later of the two, less the lag in-order events arrive with. Anything the window
        misses (a larger lag, a slow-to-show event) is a late event: the searches find it."""
        if self.horizon_ms is None:
            return self.start_ms
        anchor = max(self.horizon_ms, self._server_ms or 0)
        return max(self.start_ms, anchor - self.lag_allowance())

    async def poll_once(self) -> list[LogLine]:
        """One poll: the recent window, and the searches for late events that are due.
        Returns only events not shown before, in timestamp order."""
        fresh: list[LogLine] = []
        clock = time.monotonic()
        try:
            first = self.horizon_ms is None
            window = self.window_start()
            # The first read is a backlog: its lags say when it was read, not how events arrive.
            await self._read(fresh, window, None, late=False, learn=not first)
            if self.horizon_ms is None:
                pass  # nothing ingested yet
            elif first:
                self._band_from = self._full_from = self.horizon_ms - LAG_SLACK_MS
                self._next_band = clock + min(BAND_SEARCH_S, self.late_search_s)
                self._next_full = clock + self._full_every
            else:
                await self._search_late(fresh, window, self.horizon_ms - LAG_SLACK_MS, clock)
        except AwsError as exc:
            if exc.code == "ResourceNotFoundException":
                self.group_missing = True
                return fresh  # the group does not exist yet: nothing shipped so far
            raise
        self.group_missing = False
        if fresh:
            self.stats.events += len(fresh)
            newest = max(line.timestamp for line in fresh)
            self.newest_ms = newest if self.newest_ms is None else max(self.newest_ms, newest)
            fresh.sort(key=lambda line: (line.timestamp, line.event_id))
        return fresh

    async def _search_late(
        self, fresh: list[LogLine], window: int, horizon: int, clock: float
    ) -> None:
        """An event ingested after a search's horizon, `lag` before its ingestion, is stamped
        after horizon - lag: each search reads from its last horizon less the lags it covers,
        up to the recent window (which the poll has read)."""
        if clock >= self._next_full and self._full_from is not None:
            band = self._padded_band()
            lags: list[int] = []
            await self._read(
                fresh,
                max(self.start_ms, self._full_from - self.lookback_ms),
                window - 1,
                late=True,
                lags=lags,
            )
            self._full_from = self._band_from = horizon
            self._next_band = clock + min(BAND_SEARCH_S, self.late_search_s)
            # Soon again only when it found what the band searches would not have (a lag
            # outside the band): those cover the lags already known.
            surprised = any(band is None or not band[0] <= lag <= band[1] for lag in lags)
            self._full_every = (
                self.late_search_s if surprised else min(self._full_every * 2, FULL_SEARCH_S[1])
            )
            self._next_full = clock + self._full_every
        elif clock >= self._next_band and self._late_band and self._band_from is not None:
            low, high = self._padded_band() or (0, 0)
            start = max(self.start_ms, self._band_from - high)
            end = min(window, horizon - low)
            found = await self._read(fresh, start, end - 1, late=True) if start < end else 0
            self._band_from = horizon
            self._band_every = (
                min(BAND_SEARCH_S, self.late_search_s)
                if found
                else min(self._band_every * 2, FULL_SEARCH_S[1])
            )
            self._next_band = clock + self._band_every

    def _padded_band(self) -> tuple[int, int] | None:
        """The lags late events were found with, and a margin: the next ones come with lags
        like those, not the very same."""
        if self._late_band is None:
            return None
        low, high = self._late_band
        pad = max(BAND_PAD_MS, (high - low) // 2) + LAG_SLACK_MS
        return low - pad, high + pad

    async def _read(
        self,
        fresh: list[LogLine],
        start: int,
        end: int | None,
        *,
        late: bool,
        lags: list[int] | None = None,
        learn: bool = True,
    ) -> int:
        """FilterLogEvents over [start, end] to the last page (an empty or partial page is
        not the end); new events go to `fresh`. Returns how many were new."""
        logs = await self.aws.logs()
        params: FilterLogEventsRequestTypeDef = {"logGroupName": self.group, "startTime": start}
        if end is not None:
            params["endTime"] = end
        if self.page_limit:
            params["limit"] = self.page_limit
        token: str | None = None
        found = 0
        while True:
            if token:
                params["nextToken"] = token
            self.stats.api_calls += 1
            page = await self.aws.run(logs.filter_log_events, **params)
            for event in page.get("events", []):
                stamped = int(event["timestamp"])
                ingested = int(event.get("ingestionTime", stamped))
                if self.horizon_ms is None or ingested > self.horizon_ms:
                    self.horizon_ms = ingested
                if not self.seen.add(event["eventId"]):
                    self.stats.duplicates_dropped += 1
                    continue
                found += 1
                lag = ingested - stamped
                if lags is not None:
                    lags.append(lag)
                if late:
                    self.stats.late += 1
                    low, high = self._late_band or (lag, lag)
                    self._late_band = (min(low, lag), max(high, lag))
                elif learn:
                    self._lags.append(lag)
                fresh.append(
                    LogLine(
                        stamped,
                        self.source,
                        self.redact(event["message"].rstrip("\n")),
                        event["eventId"],
                        event.get("logStreamName", ""),
                    )
                )
            token = page.get("nextToken")
            if not token:
                if end is None:
                    self._server_ms = _server_clock(page) or self._server_ms
                return found

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


def _server_clock(page: FilterLogEventsResponseTypeDef) -> int | None:
    """When the server answered (whole seconds, rounded down: never ahead of it)."""
    date = page.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    if not date:
        return None
    try:
        return int(email.utils.parsedate_to_datetime(date).timestamp() * 1000)
    except (TypeError, ValueError):
        return None


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
