"""A log pane that keeps up: a Line-API scroll view over a bounded ring buffer.

Writes are queued and flushed at most 10 times a second; only the visible lines are
rendered, each from a small cache of strips. Keys follow k9s: s follow, w wrap,
t timestamps, f fullscreen, / filter (! inverts; / again recalls), n/N matches,
0-6 time windows, ctrl+s save, c copy, m mark, Enter detail, End/G resume.
"""

from __future__ import annotations

import bisect
import itertools
import os
import re
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from rich.segment import Segment
from rich.style import Style
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.cache import LRUCache
from textual.containers import Vertical
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.timer import Timer
from textual.widgets import Input

from core.views.tail import LogLine
from tui.screens.line_detail import LineDetail

#: (label, seconds back; None = everything)
WINDOWS = {
    "0": ("tail", None),
    "1": ("head", None),
    "2": ("1m", 60),
    "3": ("5m", 300),
    "4": ("15m", 900),
    "5": ("30m", 1800),
    "6": ("1h", 3600),
}
ABBREVIATE_AT = 1000
#: Lines written are taken in together this long after the first of them: at most 10 a
#: second here, at most twice a second for a console served over SSH (TOAST_REMOTE=1),
#: where every repaint crosses the network.
FLUSH_S = 0.5 if os.environ.get("TOAST_REMOTE") == "1" else 0.1

TS_STYLE = Style(color="bright_black")
MATCH_STYLE = Style(bgcolor="yellow", color="black", bold=True)
CURSOR_STYLE = Style(bgcolor="grey23")
MARK_STYLE = Style(color="magenta", bold=True)


@dataclass(frozen=True)
class Filter:
    pattern: re.Pattern[str]
    inverted: bool
    text: str

    @classmethod
    def parse(cls, text: str) -> Filter:
        inverted = text.startswith("!")
        return cls(re.compile(text[1:] if inverted else text, re.IGNORECASE), inverted, text)

    def keeps(self, message: str) -> bool:
        return (self.pattern.search(message) is None) == self.inverted


def _display_length_of(length: int) -> int:
    """How long a message of `length` characters is once abbreviated."""
    if length > ABBREVIATE_AT:
        return ABBREVIATE_AT + len(f"… (+{length - ABBREVIATE_AT} chars, Enter shows all)")
    return length


class LogView(ScrollView, can_focus=True):
    """The scrolling part of a pane."""

    BINDINGS = [
        Binding("s", "toggle_follow", "Follow"),
        Binding("w", "toggle_wrap", "Wrap"),
        Binding("t", "toggle_timestamps", "Timestamps"),
        Binding("f", "fullscreen", "Fullscreen"),
        Binding("slash", "open_filter", "Filter"),
        Binding("n", "next_match", "Next", show=False),
        Binding("N", "previous_match", "Previous", show=False),
        Binding("ctrl+s", "save", "Save"),
        Binding("c", "copy_line", "Copy", show=False),
        Binding("m", "mark", "Mark", show=False),
        Binding("enter", "detail", "Detail", show=False),
        Binding("end,G", "resume", "Resume", show=False),
        Binding("up", "cursor(-1)", show=False),
        Binding("down", "cursor(1)", show=False),
        Binding("pageup", "cursor_page(-1)", show=False),
        Binding("pagedown", "cursor_page(1)", show=False),
        *[
            Binding(key, f"window('{key}')", f"{label}", show=False)
            for key, (label, _) in WINDOWS.items()
        ],
    ]

    follow: reactive[bool] = reactive(True)
    wrap: reactive[bool] = reactive(False)
    show_timestamps: reactive[bool] = reactive(True)

    class Changed(Message):
        """Something the pane's border shows has changed."""

    def __init__(self, *, capacity: int = 10_000, id: str | None = None) -> None:
        super().__init__(id=id)
        self.lines: deque[LogLine] = deque(maxlen=capacity)
        self.first_seq = 0  # sequence number of self.lines[0]
        self.pending: list[LogLine] = []
        self.filter: Filter | None = None
        self.last_filter = ""
        self.window = "0"
        self.view: list[int] | None = None  # seqs shown when filtered or windowed
        self.cursor: int | None = None  # seq of the selected line; None = the last one
        self.marks: set[int] = set()
        self.new_while_paused = 0
        self._scroll_pending = False
        self.flushes = 0  # how many times queued lines were taken in (for tests and benches)
        self._flush_timer: Timer | None = None
        self._rows: list[int] | None = None  # cumulative wrapped rows (wrap mode)
        self._cache: LRUCache[tuple[object, ...], Strip] = LRUCache(2048)

    # -- writing -------------------------------------------------------------------------

    def on_mount(self) -> None:
        if self.pending:
            self._flush_timer = self.set_timer(FLUSH_S, self.flush)

    def write_lines(self, lines: list[LogLine]) -> None:
        """Queue lines; they appear at the next flush (FLUSH_S after the first)."""
        if not lines:
            return
        # A timer only while lines wait: an idle pane has nothing to wake up for (four
        # panes at 10 Hz cost an idle Logs screen about 0.3 CPU s a minute, measured).
        if not self.pending and self._flush_timer is None and self.is_mounted:
            self._flush_timer = self.set_timer(FLUSH_S, self.flush)
        self.pending.extend(lines)

    def flush(self) -> None:
        self._flush_timer = None
        if not self.pending:
            return
        batch, self.pending = self.pending, []
        self.flushes += 1
        end_seq = self.first_seq + len(self.lines)
        overflow = max(0, len(self.lines) + len(batch) - (self.lines.maxlen or 0))
        self.lines.extend(batch)
        self.first_seq += overflow
        if self.view is not None:
            del self.view[: bisect.bisect_left(self.view, self.first_seq)]
            self.view.extend(
                seq
                for seq, line in zip(itertools.count(end_seq), batch, strict=False)
                if seq >= self.first_seq and self._keeps(line)
            )
        if self.marks and overflow:
            self.marks = {m for m in self.marks if m >= self.first_seq}
        self._layout_changed(keep_cache=True)  # cached strips are keyed by line: still valid
        if not self.follow:
            self.new_while_paused += len(batch)
            self.post_message(self.Changed())  # the border counts new lines while paused

    # -- the view: which lines, in which rows -------------------------------------------

    def _keeps(self, line: LogLine) -> bool:
        if self.filter is not None and not self.filter.keeps(line.message):
            return False
        seconds = WINDOWS[self.window][1]
        return seconds is None or line.timestamp >= (time.time() - seconds) * 1000

    def clear(self) -> None:
        """Forget every line (the pane starts over, e.g. on another run's output)."""
        self.lines.clear()
        self.pending.clear()
        self.first_seq = 0
        self.marks.clear()
        self.cursor = None
        self.new_while_paused = 0
        self._rebuild_view()

    def _rebuild_view(self) -> None:
        if self.filter is None and WINDOWS[self.window][1] is None:
            self.view = None
        else:
            self.view = [
                seq
                for seq, line in zip(itertools.count(self.first_seq), self.lines, strict=False)
                if self._keeps(line)
            ]
        self._layout_changed()

    def visible_seqs(self) -> list[int] | range:
        if self.view is not None:
            return self.view
        return range(self.first_seq, self.first_seq + len(self.lines))

    def line(self, seq: int) -> LogLine:
        return self.lines[seq - self.first_seq]

    def _text(self, line: LogLine) -> str:
        message = line.message
        if len(message) > ABBREVIATE_AT:
            message = (
                f"{message[:ABBREVIATE_AT]}… (+{len(message) - ABBREVIATE_AT} chars, "
                "Enter shows all)"
            )
        if self.show_timestamps:
            stamp = time.strftime("%H:%M:%S", time.localtime(line.timestamp / 1000))
            return f"{stamp} {message}"
        return message

    def visible_lines(self) -> list[LogLine]:
        """The visible lines in order, fetched in one pass (a deque is slow to index)."""
        every = list(self.lines)
        if self.view is None:
            return every
        return [every[seq - self.first_seq] for seq in self.view]

    def _visible_lengths(self) -> list[int]:
        """Displayed length of each visible message, measured without formatting any."""
        lengths = list(map(len, (line.message for line in self.visible_lines())))
        return [n if n <= ABBREVIATE_AT else _display_length_of(n) for n in lengths]

    def _width(self) -> int:
        return max(1, self.scrollable_content_region.width - 2)

    def _layout_changed(self, *, keep_cache: bool = False) -> None:
        self._rows = None
        if not keep_cache:
            self._cache.clear()
        seqs = self.visible_seqs()
        if self.wrap:
            width = self._width()
            extra = 9 if self.show_timestamps else 0
            self._rows = list(
                itertools.accumulate(
                    max(1, -(-(length + extra) // width)) for length in self._visible_lengths()
                )
            )
            height = self._rows[-1] if self._rows else 0
        else:
            height = len(seqs)
        self.virtual_size = Size(self._width() + 2, height)
        if self.follow and not self._scroll_pending:
            # One scroll to the end per refresh, however many flushes came before it.
            self._scroll_pending = True
            self.call_after_refresh(self._scroll_to_end)
        self.refresh()

    def _scroll_to_end(self) -> None:
        self._scroll_pending = False
        if self.follow:
            self.scroll_end(animate=False, immediate=True, x_axis=False)

    def on_resize(self) -> None:
        if self.wrap:
            self._layout_changed()

    def _row_to_line(self, row: int) -> tuple[int, int] | None:
        """(index into the visible seqs, wrapped part) for a virtual row."""
        seqs = self.visible_seqs()
        if self._rows is None:
            return (row, 0) if 0 <= row < len(seqs) else None
        index = bisect.bisect_right(self._rows, row)
        if index >= len(seqs):
            return None
        start = self._rows[index - 1] if index else 0
        return index, row - start

    def _line_to_row(self, index: int) -> int:
        if self._rows is None:
            return index
        return self._rows[index - 1] if index else 0

    # -- rendering ---------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        row = self.scroll_offset.y + y
        found = self._row_to_line(row)
        width = self.scrollable_content_region.width
        if found is None:
            return Strip.blank(width)
        index, part = found
        seq = self.visible_seqs()[index]
        cursor = self._cursor_seq()
        key = (
            seq,
            part,
            width,
            self.wrap,
            self.show_timestamps,
            seq == cursor,
            seq in self.marks,
            self.filter.text if self.filter else "",
        )
        strip = self._cache.get(key)
        if strip is None:
            strip = self._render_part(seq, part, width, seq == cursor)
            self._cache[key] = strip
        return strip

    def _render_part(self, seq: int, part: int, width: int, selected: bool) -> Strip:
        line = self.line(seq)
        text = self._text(line)
        body_width = max(1, width - 2)
        chunk_start = part * body_width if self.wrap else 0
        chunk = text[chunk_start : chunk_start + body_width]
        gutter = Segment("▌ " if seq in self.marks else "  ", MARK_STYLE)
        segments = [gutter]
        stamp_len = 9 if self.show_timestamps else 0
        highlights = self._highlights(text) if self.filter and not self.filter.inverted else []
        position = chunk_start
        for start, end in [*highlights, (len(text) + 1, len(text) + 1)]:
            start, end = max(start, position), min(end, chunk_start + len(chunk))
            if start > position:
                plain = text[position : min(start, chunk_start + len(chunk))]
                ts_part = max(0, min(len(plain), stamp_len - position))
                if ts_part:
                    segments.append(Segment(plain[:ts_part], TS_STYLE))
                if plain[ts_part:]:
                    segments.append(Segment(plain[ts_part:]))
            if end > start:
                segments.append(Segment(text[start:end], MATCH_STYLE))
            position = max(position, end)
            if position >= chunk_start + len(chunk):
                break
        strip = Strip(segments).crop_extend(0, width, None)
        if selected and self.has_focus:
            strip = strip.apply_style(CURSOR_STYLE)
        return strip

    def _highlights(self, text: str) -> list[tuple[int, int]]:
        assert self.filter is not None
        return [m.span() for m in self.filter.pattern.finditer(text) if m.end() > m.start()]

    # -- cursor and follow ---------------------------------------------------------------

    def _cursor_seq(self) -> int | None:
        seqs = self.visible_seqs()
        if not seqs:
            return None
        if self.cursor is None or self.follow:
            return seqs[-1]
        return self.cursor

    def selected_line(self) -> LogLine | None:
        seq = self._cursor_seq()
        if seq is None or seq < self.first_seq:
            return None
        return self.line(seq)

    def _move_cursor_to_index(self, index: int) -> None:
        seqs = self.visible_seqs()
        if not seqs:
            return
        index = max(0, min(index, len(seqs) - 1))
        self.cursor = seqs[index]
        if index < len(seqs) - 1:
            self.follow = False
        row = self._line_to_row(index)
        if not (self.scroll_offset.y <= row < self.scroll_offset.y + self.size.height):
            self.scroll_to(y=max(0, row - self.size.height // 2), animate=False, immediate=True)
        self._cache.clear()
        self.refresh()

    def _cursor_index(self) -> int:
        seqs = self.visible_seqs()
        seq = self._cursor_seq()
        if seq is None:
            return 0
        position = bisect.bisect_left(seqs, seq)
        return min(position, len(seqs) - 1)

    def action_cursor(self, delta: int) -> None:
        self._move_cursor_to_index(self._cursor_index() + delta)

    def action_cursor_page(self, delta: int) -> None:
        self._move_cursor_to_index(self._cursor_index() + delta * max(1, self.size.height - 1))

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        if new < old and new < self.max_scroll_y:
            self.follow = False  # scrolling up pauses: the user is reading

    def watch_follow(self, following: bool) -> None:
        if following:
            self.new_while_paused = 0
            self.cursor = None
            self.scroll_end(animate=False, x_axis=False)
        elif self.cursor is None:
            self.cursor = self._cursor_seq()
        self._cache.clear()
        self.refresh()
        self.post_message(self.Changed())

    def action_toggle_follow(self) -> None:
        self.follow = not self.follow

    def action_resume(self) -> None:
        self.window = "0" if self.window == "1" else self.window
        self.follow = True

    # -- toggles ------------------------------------------------------------------------

    def watch_wrap(self) -> None:
        self._layout_changed()
        self.post_message(self.Changed())

    def watch_show_timestamps(self) -> None:
        self._layout_changed()
        self.post_message(self.Changed())

    def action_toggle_wrap(self) -> None:
        self.wrap = not self.wrap

    def action_toggle_timestamps(self) -> None:
        self.show_timestamps = not self.show_timestamps

    def action_window(self, key: str) -> None:
        self.window = key
        self._rebuild_view()
        if key == "1":  # head: the oldest lines, follow paused
            self.follow = False
            self.cursor = self.visible_seqs()[0] if self.visible_seqs() else None
            self.scroll_home(animate=False, immediate=True)
        else:
            self.follow = True
        self.post_message(self.Changed())

    def action_fullscreen(self) -> None:
        pane = self.parent
        if self.screen.maximized is not None:
            self.screen.minimize()
        elif isinstance(pane, LogPane):
            self.screen.maximize(pane, container=False)

    # -- filter ---------------------------------------------------------------------------

    def set_filter(self, text: str) -> str | None:
        """Apply a filter (regex; a leading ! inverts); '' clears. Returns an error or None."""
        if not text:
            self.filter = None
        else:
            try:
                self.filter = Filter.parse(text)
            except re.error as exc:
                return f"not a valid regular expression: {exc}"
            self.last_filter = text
        self._rebuild_view()
        self.post_message(self.Changed())
        return None

    def action_open_filter(self) -> None:
        pane = self.parent
        if isinstance(pane, LogPane):
            pane.open_filter(self.last_filter)

    def _match_indices(self) -> list[int]:
        if self.filter is None:
            return []
        pattern = self.filter.pattern
        return [i for i, line in enumerate(self.visible_lines()) if pattern.search(line.message)]

    def action_next_match(self) -> None:
        self._jump(1)

    def action_previous_match(self) -> None:
        self._jump(-1)

    def _jump(self, direction: int) -> None:
        matches = self._match_indices()
        if not matches:
            self.notify("no matches", severity="warning")
            return
        here = self._cursor_index()
        if direction > 0:
            after = [i for i in matches if i > here]
            target = after[0] if after else matches[0]
        else:
            before = [i for i in matches if i < here]
            target = before[-1] if before else matches[-1]
        self.follow = False
        self._move_cursor_to_index(target)

    # -- actions on lines -----------------------------------------------------------------

    def action_copy_line(self) -> None:
        line = self.selected_line()
        if line is not None:
            self.app.copy_to_clipboard(line.message)  # OSC 52: works over SSH too
            self.notify("copied the line")

    def action_mark(self) -> None:
        seq = self._cursor_seq()
        if seq is not None:
            self.marks ^= {seq}
            self._cache.clear()
            self.refresh()

    def action_detail(self) -> None:
        line = self.selected_line()
        if line is not None:
            self.app.push_screen(LineDetail(line))

    def action_save(self) -> None:
        pane = self.parent
        name = pane.source if isinstance(pane, LogPane) else "log"
        path = Path.cwd() / f"toast-{name}-{time.strftime('%Y%m%d-%H%M%S')}.log"
        with open(path, "w", encoding="utf-8") as handle:
            for line in self.visible_lines():
                stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(line.timestamp / 1000))
                handle.write(f"{stamp} {line.message}\n")
        self.notify(f"saved {len(self.visible_seqs())} lines to {path}")


class LogPane(Vertical):
    """A titled border around a LogView, with the tail's state and the view's flags."""

    DEFAULT_CSS = """
    LogPane { border: round $primary 60%; height: 1fr; }
    LogPane:focus-within { border: round $accent; }
    LogPane > Input { display: none; height: 3; }
    LogPane.filtering > Input { display: block; }
    LogPane > LogView { height: 1fr; scrollbar-gutter: stable; }
    """

    state: reactive[str] = reactive("connecting")
    ALLOW_MAXIMIZE = True

    def __init__(self, source: str, *, capacity: int = 10_000, id: str | None = None) -> None:
        super().__init__(id=id)
        self.source = source
        self.view = LogView(capacity=capacity)
        self.filter_input = Input(placeholder="regex (! inverts, empty clears)")

    def compose(self) -> ComposeResult:
        yield self.view
        yield self.filter_input

    def on_mount(self) -> None:
        self._update_border()

    def write_lines(self, lines: list[LogLine]) -> None:
        self.view.write_lines(lines)

    def watch_state(self) -> None:
        self._update_border()

    @on(LogView.Changed)
    def _view_changed(self) -> None:
        self._update_border()

    def _update_border(self) -> None:
        view = self.view
        self.border_title = f"{self.source} · {self.state}"
        flags = ["follow" if view.follow else "paused"]
        if not view.follow and view.new_while_paused:
            flags.append(f"+{view.new_while_paused} new lines (End resumes)")
        if view.wrap:
            flags.append("wrap")
        if view.filter is not None:
            flags.append(f"/{view.filter.text}")
        if view.window != "0":
            flags.append(WINDOWS[view.window][0])
        self.border_subtitle = " · ".join(flags)

    def open_filter(self, recall: str) -> None:
        self.add_class("filtering")
        self.filter_input.value = recall
        self.screen.set_focus(self.filter_input)  # at once: keys typed next go to it

    @on(Input.Submitted)
    def _apply_filter(self, event: Input.Submitted) -> None:
        event.stop()
        error = self.view.set_filter(event.value.strip())
        if error:
            self.notify(error, severity="error")
            return
        self.remove_class("filtering")
        self.view.focus()

    def key_escape(self) -> None:
        if self.has_class("filtering"):
            self.remove_class("filtering")
            self.view.focus()
