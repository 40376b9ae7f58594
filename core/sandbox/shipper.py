"""Plays the CloudWatch agent: follows the files named in agent configs and ships new lines.

Agent configs use the real agent's JSON shape
(logs.logs_collected.files.collect_list[{file_path, log_group_name, log_stream_name}]),
one file per instance named <instance-id>.json; `{instance_id}` in a name is filled in.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_BATCH_EVENTS = 10_000
MAX_BATCH_BYTES = 1_000_000
EVENT_OVERHEAD = 26  # bytes CloudWatch adds per event when counting a batch


@dataclass(frozen=True)
class Source:
    path: Path
    group: str
    stream: str


def read_sources(config_dir: Path) -> list[Source]:
    sources = []
    for config in sorted(config_dir.glob("*.json")):
        instance_id = config.stem
        try:
            data = json.loads(config.read_text())
            entries = data["logs"]["logs_collected"]["files"]["collect_list"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        for entry in entries:
            try:
                sources.append(
                    Source(
                        Path(entry["file_path"]),
                        entry["log_group_name"].replace("{instance_id}", instance_id),
                        entry.get("log_stream_name", "{instance_id}").replace(
                            "{instance_id}", instance_id
                        ),
                    )
                )
            except (KeyError, AttributeError):
                continue
    return sources


class LogShipper:
    def __init__(self, logs_client: Any, config_dir: Path, state_file: Path, interval: float = 0.2):
        self.logs = logs_client
        self.config_dir = config_dir
        self.state_file = state_file
        self.interval = interval
        self.offsets: dict[str, int] = self._load_offsets()
        self.known_streams: set[tuple[str, str]] = set()
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="log-shipper", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(timeout=5)

    def _load_offsets(self) -> dict[str, int]:
        try:
            return {k: int(v) for k, v in json.loads(self.state_file.read_text()).items()}
        except (OSError, ValueError, AttributeError):
            return {}

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                if self.ship_once():
                    self.state_file.write_text(json.dumps(self.offsets))
            except Exception as exc:  # keep shipping; the next pass retries
                self.known_streams.clear()  # AWS may have been reset under us
                print(f"log shipper: {exc}", flush=True)

    def ship_once(self) -> int:
        shipped = 0
        for source in read_sources(self.config_dir):
            shipped += self._ship(source)
        return shipped

    def _ship(self, source: Source) -> int:
        key = f"{source.path}|{source.group}|{source.stream}"
        try:
            size = source.path.stat().st_size
        except OSError:
            return 0
        offset = self.offsets.get(key, 0)
        if size < offset:  # truncated or replaced: start over, as the agent does
            offset = 0
        if size == offset:
            return 0
        with open(source.path, "rb") as handle:
            handle.seek(offset)
            chunk = handle.read(size - offset)
        end = chunk.rfind(b"\n")
        if end < 0:
            return 0  # only a partial line so far
        lines = chunk[: end + 1].decode("utf-8", "replace").splitlines()
        self._ensure_stream(source.group, source.stream)
        now = int(time.time() * 1000)
        events = [{"timestamp": now, "message": line} for line in lines if line]
        for batch in _batches(events):
            self.logs.put_log_events(
                logGroupName=source.group, logStreamName=source.stream, logEvents=batch
            )
        self.offsets[key] = offset + end + 1
        return len(events)

    def _ensure_stream(self, group: str, stream: str) -> None:
        if (group, stream) in self.known_streams:
            return
        for call, kwargs in (
            (self.logs.create_log_group, {"logGroupName": group}),
            (self.logs.create_log_stream, {"logGroupName": group, "logStreamName": stream}),
        ):
            with contextlib.suppress(self.logs.exceptions.ResourceAlreadyExistsException):
                call(**kwargs)
        self.known_streams.add((group, stream))


def _batches(events: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    batches: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    size = 0
    for event in events:
        cost = len(event["message"].encode()) + EVENT_OVERHEAD
        if current and (len(current) >= MAX_BATCH_EVENTS or size + cost > MAX_BATCH_BYTES):
            batches.append(current)
            current, size = [], 0
        current.append(event)
        size += cost
    if current:
        batches.append(current)
    return batches
