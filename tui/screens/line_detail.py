"""The whole of one log line, however long."""

from __future__ import annotations

import time

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from core.views.tail import LogLine


class LineDetail(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,enter", "dismiss", "Close")]
    DEFAULT_CSS = """
    LineDetail { align: center middle; }
    LineDetail > VerticalScroll { width: 90%; height: 80%; border: round $accent;
                                  background: $surface; padding: 0 1; }
    """

    def __init__(self, line: LogLine) -> None:
        super().__init__()
        self.line = line

    def compose(self) -> ComposeResult:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.line.timestamp / 1000))
        with VerticalScroll() as scroll:
            scroll.border_title = f"{self.line.source} · {stamp} · {len(self.line.message)} chars"
            yield Static(self.line.message, markup=False, id="full-line")
