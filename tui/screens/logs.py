"""One deployment's logs: a pane per source, each tailing CloudWatch in a worker."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Header

from core.cloud.aws import Aws
from core.cloud.log_groups import LOG_SOURCES, log_group
from core.profile.config import choose_profile, load_config
from core.profile.paths import config_path
from core.profile.targets import resolve_target
from core.runs.redact import Redactor
from core.views.tail import LogLine, LogTail, TailState
from tui.base import ToastNode
from tui.widgets.footer import Footer
from tui.widgets.log_pane import LogPane


@dataclass
class LogBatch(Message):
    source: str
    lines: list[LogLine]


@dataclass
class TailChanged(Message):
    source: str
    state: str


class LogsScreen(ToastNode, Screen[None]):
    BINDINGS = [Binding("escape,q", "app.pop_screen", "Back")]
    DEFAULT_CSS = """
    LogsScreen Grid { grid-size: 2 2; height: 1fr; }
    """

    def __init__(self, name: str, profile_name: str, *, since_s: int = 3600) -> None:
        super().__init__()
        self.deployment_name = name
        self.profile_name = profile_name
        self.since_s = since_s

    def compose(self) -> ComposeResult:
        yield Header()
        with Grid():
            for source in LOG_SOURCES:
                yield LogPane(source, id=f"pane-{source}")
        yield Footer()

    def on_mount(self) -> None:
        self.title = f"Logs · {self.deployment_name}"
        self.query_one("#pane-build", LogPane).view.focus()
        for source in LOG_SOURCES:
            self.tail(source)

    def pane(self, source: str) -> LogPane:
        return self.query_one(f"#pane-{source}", LogPane)

    @work(group="tails", exit_on_error=False, description="Tailing CloudWatch Logs")
    async def tail(self, source: str) -> None:
        def state_changed(state: TailState) -> None:
            self.post_message(TailChanged(source, state.value))

        try:
            profile = choose_profile(
                load_config(config_path()), requested=self.profile_name, sandbox=False
            )
            target = await asyncio.to_thread(resolve_target, profile)
            aws = await Aws.shared(target)
        except Exception as exc:
            self.post_message(TailChanged(source, f"failed: {exc}"))
            return

        tail = LogTail(
            aws,
            log_group(self.deployment_name, source),
            source,
            start_ms=int((time.time() - self.since_s) * 1000),
            redact=Redactor([target.github_token] if target.github_token else []),
            on_state=state_changed,
        )
        try:
            async for batch in tail.follow():
                self.post_message(LogBatch(source, batch))
        except Exception as exc:
            self.post_message(TailChanged(source, f"ended: {exc}"))

    @on(LogBatch)
    def _batch(self, message: LogBatch) -> None:
        self.pane(message.source).write_lines(message.lines)

    @on(TailChanged)
    def _state(self, message: TailChanged) -> None:
        self.pane(message.source).state = message.state
