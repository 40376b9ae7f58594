"""A session's program for the SSH benchmark: a log view following 200 lines a second.

python tests/bench/ssh_app.py pane|log
  pane: Toast's log pane (as the console's Logs screen shows it), frugal over SSH
  log:  a plain Textual Log, for comparison
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from textual.app import App, ComposeResult
from textual.widgets import Footer, Header, Log

from core.views.tail import LogLine
from tui.widgets.log_pane import LogPane

PER_TICK = 10
TICK_S = 0.05  # 200 lines a second


class Follow(App[None]):
    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.count = 0
        self.pane = LogPane("app", capacity=100_000) if kind == "pane" else None
        self.log_widget = Log(max_lines=100_000) if kind == "log" else None

    def compose(self) -> ComposeResult:
        yield Header()
        yield self.pane or self.log_widget  # type: ignore[misc]  # one of the two
        yield Footer()

    def on_mount(self) -> None:
        self.set_interval(TICK_S, self.tick)

    def tick(self) -> None:
        now = int(time.time() * 1000)
        lines = []
        for _ in range(PER_TICK):
            self.count += 1
            lines.append(
                LogLine(
                    now,
                    "app",
                    f'127.0.0.1 - - "GET /api/items/{self.count} HTTP/1.1" 200 '
                    f'{self.count % 977} "-" "bench/1.0"',
                    f"e{self.count}",
                    "i-1",
                )
            )
        if self.pane is not None:
            self.pane.write_lines(lines)
        elif self.log_widget is not None:
            self.log_widget.write_lines([line.message for line in lines])


if __name__ == "__main__":
    Follow(sys.argv[1]).run()
