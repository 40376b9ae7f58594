"""A keyed table drawn with Textual's Line API: only the rows on screen are rendered, so
10,000 rows cost what 30 do. Rows are replaced in place by key, kept in key order, and the
cursor stays on the row it was on (DataTable measures every cell of every row up front,
which takes seconds at this size)."""

from __future__ import annotations

import bisect
from collections.abc import Iterable

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

#: The state column's look, by its first word: a component class each, coloured in CSS by
#: the theme's own variables (so the light and high-contrast themes show them too).
STATE_CLASSES = {
    "live": "row-table--live",
    "failed": "row-table--failed",
    "deploying": "row-table--busy",
    "destroying": "row-table--busy",
    "redeploy": "row-table--busy",
    "rollback": "row-table--busy",
    "deploy": "row-table--busy",
    "destroy": "row-table--busy",
    "destroyed": "row-table--gone",
}


class RowTable(ScrollView, can_focus=True):
    BINDINGS = [
        Binding("up", "move(-1)", "Up a row", show=False),
        Binding("down", "move(1)", "Down a row", show=False),
        Binding("pageup", "page(-1)", "Up a page", show=False),
        Binding("pagedown", "page(1)", "Down a page", show=False),
        Binding("home", "jump(0)", "First row", show=False),
        Binding("end", "jump(-1)", "Last row", show=False),
    ]
    COMPONENT_CLASSES = {
        "row-table--header",
        "row-table--cursor",
        "row-table--even",
        *STATE_CLASSES.values(),
    }
    DEFAULT_CSS = """
    RowTable { height: 1fr; }
    RowTable > .row-table--header { text-style: bold; background: $panel; color: $foreground; }
    RowTable > .row-table--cursor { background: $accent 40%; }
    RowTable:focus > .row-table--cursor { background: $accent 70%; }
    RowTable > .row-table--even { background: $surface; }
    RowTable > .row-table--live { color: $success; }
    RowTable > .row-table--failed { color: $error; text-style: bold; }
    RowTable > .row-table--busy { color: $warning; }
    RowTable > .row-table--gone { color: $text-disabled; }
    """

    class RowMessage(Message):
        """About one row of a table (`@on(..., "#id")` matches the table)."""

        def __init__(self, table: RowTable, key: str | None) -> None:
            super().__init__()
            self.table = table
            self.key = key

        @property
        def control(self) -> RowTable:
            return self.table

    class Highlighted(RowMessage):
        """The cursor moved to the row `key` (None: the table is empty)."""

    class Selected(RowMessage):
        """The row `key` was chosen (double click)."""

    def __init__(
        self,
        columns: Iterable[tuple[str, int]],
        *,
        state_column: int | None = None,
        sort: bool = True,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.columns = list(columns)
        #: Rows in key order (a list by name), or in the order given (newest first).
        self.sort = sort
        self.state_column = state_column
        self.keys: list[str] = []
        self.cells: dict[str, tuple[str, ...]] = {}
        self.cursor_row = 0
        self.repaints = 0  # how many lines were drawn (tests and benchmarks read it)
        width = sum(w for _, w in self.columns) + len(self.columns)
        self._width = width
        #: How many columns are drawn: those that fit the width, in the order given (the
        #: first ones matter most), so a narrow terminal loses columns, not the row's start.
        self._shown = len(self.columns)

    # -- data ---------------------------------------------------------------------------

    @property
    def row_count(self) -> int:
        return len(self.keys)

    def get_row_at(self, index: int) -> tuple[str, ...]:
        return self.cells[self.keys[index]]

    def get_row(self, key: str) -> tuple[str, ...]:
        return self.cells[key]

    @property
    def cursor_key(self) -> str | None:
        return self.keys[self.cursor_row] if 0 <= self.cursor_row < len(self.keys) else None

    def replace_all(self, rows: dict[str, tuple[str, ...]]) -> None:
        """Show exactly these rows; the cursor stays on its key if that row is still there."""
        keep = self.cursor_key
        self.keys = sorted(rows) if self.sort else list(rows)
        self.cells = dict(rows)
        self._place_cursor(keep)
        self._resized()
        self.refresh()

    def upsert(self, rows: dict[str, tuple[str, ...]]) -> None:
        """Add or change these rows; only the lines of changed rows are redrawn."""
        keep = self.cursor_key
        inserted = False
        for key, cells in rows.items():
            if self.cells.get(key) == cells:
                continue
            if key not in self.cells:
                if self.sort:
                    bisect.insort(self.keys, key)
                else:
                    self.keys.append(key)
                inserted = True
            self.cells[key] = cells
            if not inserted:
                self._refresh_key(key)
        if inserted:
            self._place_cursor(keep)
            self._resized()
            self.refresh()

    def remove_rows(self, keys: Iterable[str]) -> None:
        keep = self.cursor_key
        gone = set(keys) & set(self.cells)
        if not gone:
            return
        self.keys = [k for k in self.keys if k not in gone]
        for key in gone:
            del self.cells[key]
        self._place_cursor(keep)
        self._resized()
        self.refresh()

    def _place_cursor(self, key: str | None) -> None:
        """Put the cursor back on `key` (the row it was on) or, that row gone, nearby."""
        before = key
        if key is not None and key in self.cells:
            self.cursor_row = self._index(key)
        else:
            self.cursor_row = min(self.cursor_row, max(0, len(self.keys) - 1))
        if self.cursor_key != before:
            self.post_message(self.Highlighted(self, self.cursor_key))

    def _resized(self) -> None:
        self.virtual_size = Size(self._fitted_width(), len(self.keys) + 1)

    def _fitted_width(self) -> int:
        room = self.size.width or self._width
        used, shown = 0, 0
        for _, width in self.columns:
            if shown and used + width + 1 > room:
                break
            used += width + 1
            shown += 1
        self._shown = shown
        return used

    def on_resize(self) -> None:
        self._resized()
        self.refresh()

    def _index(self, key: str) -> int:
        return bisect.bisect_left(self.keys, key) if self.sort else self.keys.index(key)

    def _refresh_key(self, key: str) -> None:
        index = self._index(key)
        y = index + 1 - int(self.scroll_y)
        if 1 <= y < self.size.height:
            self.refresh_line(y)

    # -- movement -----------------------------------------------------------------------

    def move_to(self, row: int) -> None:
        if not self.keys:
            return
        row = max(0, min(row, len(self.keys) - 1))
        if row == self.cursor_row:
            return
        old = self.cursor_row
        self.cursor_row = row
        top = int(self.scroll_y)
        visible = max(1, self.size.height - 1)
        if row < top:
            self.scroll_to(y=row, animate=False)
        elif row >= top + visible:
            self.scroll_to(y=row - visible + 1, animate=False)
        else:
            for index in (old, row):
                self.refresh_line(index + 1 - top)
        self.post_message(self.Highlighted(self, self.cursor_key))

    def action_move(self, delta: int) -> None:
        self.move_to(self.cursor_row + delta)

    def action_page(self, direction: int) -> None:
        self.move_to(self.cursor_row + direction * max(1, self.size.height - 2))

    def action_jump(self, row: int) -> None:
        self.move_to(len(self.keys) - 1 if row < 0 else row)

    def action_select(self) -> None:
        if self.cursor_key is not None:
            self.post_message(self.Selected(self, self.cursor_key))

    def on_click(self, event: events.Click) -> None:
        row = event.y - 1 + int(self.scroll_y)
        if event.y >= 1 and 0 <= row < len(self.keys):
            if row == self.cursor_row and event.chain > 1:
                self.action_select()
            self.move_to(row)

    # -- drawing ------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        self.repaints += 1
        width = self.size.width
        scroll_x = int(self.scroll_x)
        if y == 0:
            style = self.get_component_rich_style("row-table--header")
            titles = tuple(title for title, _ in self.columns)
            segments = self._segments(titles, style, None)
        else:
            index = y - 1 + int(self.scroll_y)
            if index >= len(self.keys):
                return Strip.blank(width, self.rich_style)
            key = self.keys[index]
            base = self.rich_style
            if index == self.cursor_row:
                base = base + self.get_component_rich_style("row-table--cursor")
            elif index % 2:
                base = base + self.get_component_rich_style("row-table--even")
            segments = self._segments(self.cells[key], base, self.state_column)
        strip = Strip(segments).crop(scroll_x, scroll_x + width)
        return strip.extend_cell_length(width, self.rich_style if y else segments[0].style)

    def _segments(
        self, cells: tuple[str, ...], style: Style, state_column: int | None
    ) -> list[Segment]:
        segments = []
        columns = self.columns[: self._shown]
        for index, ((_, width), text) in enumerate(zip(columns, cells, strict=False)):
            shown = text if len(text) <= width else text[: width - 1] + "…"
            cell_style = style
            if index == state_column:
                word = text.split(" ", 1)[0]
                if word in STATE_CLASSES:
                    cell_style = style + self.get_component_rich_style(
                        STATE_CLASSES[word], partial=True
                    )
            segments.append(Segment(f" {shown:<{width}}", cell_style))
        return segments
