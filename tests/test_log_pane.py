"""The log pane, driven with Pilot: every key, sticky follow, filter recall, bounds."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from textual.app import App, ComposeResult
from textual.pilot import Pilot

from core.views.tail import LogLine
from tui.screens.line_detail import LineDetail
from tui.widgets.log_pane import MATCH_STYLE, LogPane, LogView

from .helpers.waiting import until


class PaneApp(App[None]):
    def __init__(self, capacity: int = 10_000) -> None:
        super().__init__()
        self.capacity = capacity

    def compose(self) -> ComposeResult:
        yield LogPane("build", capacity=self.capacity, id="one")
        yield LogPane("app", id="two")

    @property
    def pane(self) -> LogPane:
        return self.query_one("#one", LogPane)

    @property
    def view(self) -> LogView:
        return self.pane.view


def lines(n: int, *, start: int = 0, ts: float | None = None, text: str = "line") -> list[LogLine]:
    at = int((ts if ts is not None else time.time()) * 1000)
    return [
        LogLine(at + i, "build", f"{text} {start + i}", f"e{start + i}", "i-1") for i in range(n)
    ]


async def feed(pilot: Pilot[None], view: LogView, batch: list[LogLine]) -> None:
    view.write_lines(batch)
    view.flush()
    await pilot.pause()
    await pilot.pause()  # the scroll to the end happens after the refresh


def screen_text(view: LogView) -> list[str]:
    return [view.render_line(y).text.rstrip() for y in range(view.scrollable_content_region.height)]


async def start(app: PaneApp, pilot: Pilot[None]) -> LogView:
    app.view.focus()
    await pilot.pause()
    return app.view


async def test_follow_keeps_the_newest_line_on_screen() -> None:
    app = PaneApp()
    async with app.run_test(size=(100, 40)) as pilot:
        view = await start(app, pilot)
        await feed(pilot, view, lines(300))
        assert view.scroll_offset.y == view.max_scroll_y > 0
        assert screen_text(view)[-1].endswith("line 299")
        assert app.pane.border_subtitle.startswith("follow")


async def test_scrolling_up_pauses_and_counts_new_lines_until_end_or_g() -> None:
    app = PaneApp()
    async with app.run_test(size=(100, 40)) as pilot:
        view = await start(app, pilot)
        await feed(pilot, view, lines(300))
        await pilot.press("pageup")
        assert not view.follow
        held = view.scroll_offset.y
        await feed(pilot, view, lines(5, start=300))
        assert view.scroll_offset.y == held  # the page the user reads does not move
        assert "+5 new lines" in app.pane.border_subtitle
        await pilot.press("end")
        assert view.follow and view.scroll_offset.y == view.max_scroll_y
        assert "new lines" not in app.pane.border_subtitle
        await pilot.press("up", "up")
        assert not view.follow
        await pilot.press("G")
        assert view.follow
        await pilot.press("s")
        assert not view.follow
        await pilot.press("s")
        assert view.follow


async def test_wrap_and_timestamps_toggle_and_the_filter_survives_them() -> None:
    app = PaneApp()
    async with app.run_test(size=(60, 30)) as pilot:
        view = await start(app, pilot)
        long = LogLine(int(time.time() * 1000), "build", "x" * 200 + " error here", "long", "i")
        await feed(pilot, view, [*lines(10, text="error"), long, *lines(10, start=50)])
        rows = view.virtual_size.height
        await pilot.press("w")
        assert view.wrap and view.virtual_size.height > rows
        await pilot.press("w")
        assert view.virtual_size.height == rows
        stamped = re.compile(r"\s*\d\d:\d\d:\d\d ")
        assert all(stamped.match(row) for row in screen_text(view) if row)
        await pilot.press("t")
        assert not view.show_timestamps
        assert not any(stamped.match(row) for row in screen_text(view) if row)
        assert "  error 9" in screen_text(view)
        await pilot.press("slash")
        await pilot.press(*"error", "enter")
        assert len(view.visible_seqs()) == 11
        await pilot.press("w", "t", "w")
        assert len(view.visible_seqs()) == 11 and view.filter is not None


async def test_filter_inverts_recalls_and_highlights_matches() -> None:
    app = PaneApp()
    async with app.run_test(size=(100, 30)) as pilot:
        view = await start(app, pilot)
        await feed(pilot, view, [*lines(5, text="GET /ok"), *lines(3, start=5, text="500 boom")])
        await pilot.press("slash", *"500", "enter")
        assert [view.line(s).message for s in view.visible_seqs()] == [
            "500 boom 5",
            "500 boom 6",
            "500 boom 7",
        ]
        strip = view.render_line(0)
        assert any(seg.style == MATCH_STYLE and seg.text == "500" for seg in strip)
        await pilot.press("slash")
        assert app.pane.filter_input.value == "500"  # / again recalls the last filter
        app.pane.filter_input.value = "!500"
        await pilot.press("enter")
        assert len(view.visible_seqs()) == 5
        await pilot.press("slash")
        app.pane.filter_input.value = ""
        await pilot.press("enter")
        assert view.filter is None and len(view.visible_seqs()) == 8
        await pilot.press("slash")
        app.pane.filter_input.value = "(["
        await pilot.press("enter")
        assert view.filter is None  # a bad regex is refused, the view unchanged


async def test_n_and_shift_n_move_between_matches() -> None:
    app = PaneApp()
    async with app.run_test(size=(100, 30)) as pilot:
        view = await start(app, pilot)
        batch = [
            LogLine(i, "build", "hit" if i % 3 == 0 else "miss", f"e{i}", "i") for i in range(10)
        ]
        await feed(pilot, view, batch)
        view.set_filter("hit")
        await pilot.pause()
        await pilot.press("N")
        first = view.selected_line()
        await pilot.press("N")
        second = view.selected_line()
        assert first is not None and second is not None
        assert second.timestamp < first.timestamp and second.message == "hit"
        await pilot.press("n")
        assert view.selected_line() == first


async def test_time_windows_and_head() -> None:
    app = PaneApp()
    async with app.run_test(size=(100, 30)) as pilot:
        view = await start(app, pilot)
        await feed(pilot, view, lines(5, ts=time.time() - 7200, text="old"))
        await feed(pilot, view, lines(5, start=5, text="new"))
        await pilot.press("2")  # last minute
        assert {view.line(s).message.split()[0] for s in view.visible_seqs()} == {"new"}
        assert "1m" in app.pane.border_subtitle
        await pilot.press("0")
        assert len(view.visible_seqs()) == 10
        await pilot.press("1")  # head: from the oldest, paused
        assert not view.follow and view.scroll_offset.y == 0
        assert view.selected_line() is not None and view.selected_line().message == "old 0"


async def test_save_copy_mark_and_detail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    app = PaneApp()
    async with app.run_test(size=(100, 30)) as pilot:
        view = await start(app, pilot)
        long_text = "y" * 3000
        await feed(pilot, view, [*lines(3), LogLine(99, "build", long_text, "L", "i")])
        await pilot.press("w")  # wrapped, the abbreviated end of the long line is visible
        await pilot.pause()
        assert "(+2000 chars, Enter shows all)" in "".join(r[2:] for r in screen_text(view))
        await pilot.press("w")
        await pilot.press("ctrl+s")
        saved = list(tmp_path.glob("toast-build-*.log"))  # noqa: ASYNC240
        assert len(saved) == 1 and saved[0].read_text().count("\n") == 4
        await pilot.press("up", "c")
        assert app.clipboard == "line 2"
        await pilot.press("m")
        assert screen_text(view)[2].startswith("▌")
        await pilot.press("m")
        assert not screen_text(view)[2].startswith("▌")
        await pilot.press("down", "enter")
        await pilot.pause()
        assert isinstance(app.screen, LineDetail)
        assert str(app.screen.query_one("#full-line").render()) == long_text
        await pilot.press("escape")
        assert not isinstance(app.screen, LineDetail)


async def test_fullscreen_toggles_one_pane() -> None:
    app = PaneApp()
    async with app.run_test(size=(100, 30)) as pilot:
        await start(app, pilot)
        await pilot.press("f")
        assert app.screen.maximized is app.pane
        await pilot.press("f")
        assert app.screen.maximized is None


async def test_the_buffer_is_bounded_and_the_state_is_in_the_border() -> None:
    app = PaneApp(capacity=100)
    async with app.run_test(size=(100, 30)) as pilot:
        view = await start(app, pilot)
        await feed(pilot, view, lines(250))
        assert len(view.lines) == 100 and view.line(view.first_seq).message == "line 150"
        assert screen_text(view)[-1].endswith("line 249")
        app.pane.state = "streaming"
        await pilot.pause()
        assert app.pane.border_title == "build · streaming"


async def test_writes_are_batched_not_rendered_one_by_one() -> None:
    """200 writes arrive as a handful of flushes (how often per second is a benchmark's
    business: tests/bench/test_bench_log_pane.py)."""
    app = PaneApp()
    async with app.run_test(size=(100, 30)) as pilot:
        view = await start(app, pilot)
        for i in range(200):
            view.write_lines(lines(10, start=i * 10))
        assert len(view.lines) == 0 and view.flushes == 0  # nothing is rendered per write
        await until(pilot, lambda: len(view.lines) == 2000, "every line to be shown")
        assert 1 <= view.flushes < 200
