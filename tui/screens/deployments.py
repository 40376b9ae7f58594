"""The Deployments screen: every deployment SQLite holds, with its state and URL."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Header, Input, Static

from core.views.read_models import LIST_COLUMNS, is_moving, list_cells
from storage import Queries
from tui.actions import Scope, bindings
from tui.messages import DeploymentsFailed, DeploymentsLoaded, RunQueued
from tui.screens.actions import DeploymentActions
from tui.widgets.banner import ProfileBanner
from tui.widgets.footer import Footer
from tui.widgets.row_table import RowTable

if TYPE_CHECKING:
    from storage.records import DeploymentSummary

#: How often SQLite is asked whether anything changed (a one-row pragma when nothing did).
POLL_S = 1.0
#: Ages ("5m ago") are redrawn this often; a changed row is redrawn at once.
AGES_S = 60.0
#: Rows changed this close before the last read are read again (another process's
#: transaction may commit a moment after the time it wrote).
SLACK_S = 5.0

#: Rows read before the rest at start-up (more than any terminal shows).
FIRST_SCREEN = 200
#: How long the rest waits for the first screenful to be drawn.
FIRST_PAINT_WAIT_S = 1.0

#: A run ended: what the notification says.
FINISHED = {
    ("deploying", "live"): ("deploy", "succeeded"),
    ("deploying", "failed"): ("run", "failed"),
    ("destroying", "destroyed"): ("destroy", "succeeded"),
    ("destroying", "failed"): ("destroy", "failed"),
}


class DeploymentsScreen(DeploymentActions, Screen[None]):
    BINDINGS = [
        *bindings(Scope.DEPLOYMENT),
        Binding("slash", "filter", "Filter", priority=True),
        Binding("j", "cursor('down')", "Down", show=False),
        Binding("k", "cursor('up')", "Up", show=False),
        Binding("escape", "clear_filter", "Clear filter", show=False),
        Binding("a", "toggle_destroyed", "All", show=False),
        Binding("r", "refresh", "Refresh"),
    ]

    def __init__(self) -> None:
        super().__init__()
        #: Every deployment read, destroyed ones too, by name.
        self.summaries: dict[str, DeploymentSummary] = {}
        self.filter_text = ""
        self.show_destroyed = False
        self.seen_version: int | None = None
        #: How many times SQLite was asked whether anything changed (an idle list asks, and
        #: draws nothing).
        self.checks = 0
        self.changed_at = 0.0
        self.loaded = False

    def compose(self) -> ComposeResult:
        yield Header()
        yield ProfileBanner(id="banner")
        yield RowTable(LIST_COLUMNS, state_column=1, id="deployments")
        yield Static("Loading deployments...", id="empty")
        yield Footer()

    def on_mount(self) -> None:
        self.table.focus()
        # After the first frame: opening SQLite would only delay it.
        self.call_after_refresh(self.load_deployments, full=True)
        # The engine works in another process: watch SQLite for its progress.
        self.set_interval(POLL_S, self._poll)
        self.set_interval(AGES_S, self._redraw_ages)

    @property
    def table(self) -> RowTable:
        return self.query_one(RowTable)

    def _poll(self) -> None:
        if self.app.screen is not self:  # covered by another screen: nothing to show
            return
        self.load_deployments()
        moving = [s for s in self.summaries.values() if is_moving(s)]
        if moving:  # elapsed times tick; only those rows are redrawn
            self._show(moving)

    def on_screen_resume(self) -> None:
        if self.loaded:
            self.load_deployments()

    def _redraw_all(self) -> None:
        """Every row again: the filter or the destroyed toggle changed."""
        if self.app.screen is self:
            self.table.replace_all(self._visible_cells(self.summaries.values()))

    def _redraw_ages(self) -> None:
        """On the minute: only the rows whose age text changed are redrawn."""
        if self.app.screen is self:
            self.table.upsert(self._visible_cells(self.summaries.values()))

    def selected(self) -> DeploymentSummary | None:
        key = self.table.cursor_key
        return self.summaries.get(key) if key is not None else None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "filter" and isinstance(self.focused, Input):
            return False  # typing in the box: "/" is a character there
        return DeploymentActions.check_action(self, action, parameters)

    @on(RowTable.Highlighted)
    def highlighted(self) -> None:
        self.refresh_bindings()  # which keys apply depends on the row

    @on(RowTable.Selected)
    def row_chosen(self) -> None:
        self.action_perform("open")

    def action_refresh(self) -> None:
        self.load_deployments(full=True)

    def action_toggle_destroyed(self) -> None:
        self.show_destroyed = not self.show_destroyed
        self.notify("destroyed deployments " + ("shown" if self.show_destroyed else "hidden"))
        self._redraw_all()
        self._update_empty()

    def action_cursor(self, direction: str) -> None:
        self.table.action_move(1 if direction == "down" else -1)

    async def action_filter(self) -> None:
        boxes = self.query("#filter").results(Input)
        box = next(boxes, None)
        if box is None:  # made on first use: the first frame need not build it
            box = Input(placeholder="filter by name, repository or state", id="filter")
            await self.mount(box, after=self.table)  # awaited: the next key goes to it
        box.display = True
        self.set_focus(box)  # now: focus() would move it only after the keys already read

    def action_clear_filter(self) -> None:
        box = next(self.query("#filter").results(Input), None)
        if box is not None:
            box.value = ""
            box.display = False
        self.table.focus()

    @on(Input.Changed, "#filter")
    def filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value.strip().lower()
        self._redraw_all()
        self._update_empty()

    @on(Input.Submitted, "#filter")
    def filter_done(self) -> None:
        self.table.focus()  # keep the filter, back to the list

    @on(RunQueued)
    def run_queued(self) -> None:
        # Written on this process's own connection, which SQLite's data_version ignores.
        self.load_deployments(force=True)

    @work(
        exclusive=True,
        group="deployments",
        exit_on_error=False,
        description="Loading deployments from the state database",
    )
    async def load_deployments(self, *, full: bool = False, force: bool = False) -> None:
        """Read only what changed since the last read, and nothing when SQLite says no
        other process committed anything."""
        try:
            queries = Queries(await self.toast.database())
            version = await queries.data_version()
            self.checks += 1
            if not (full or force) and version == self.seen_version:
                return
            if full and not self.loaded:
                # The first screenful first: rows show while the rest are read.
                first = await queries.deployment_summaries(limit=FIRST_SCREEN)
                shown = asyncio.Event()
                self.post_message(DeploymentsLoaded(first, True, shown))
                # Let them be drawn before reading the rest holds the interpreter.
                with contextlib.suppress(TimeoutError):  # drawn or not, read the rest
                    await asyncio.wait_for(shown.wait(), FIRST_PAINT_WAIT_S)
            since = None if full else self.changed_at - SLACK_S
            rows = await queries.deployment_summaries(changed_since=since)
        except Exception as exc:
            self.post_message(DeploymentsFailed(str(exc)))
            return
        self.seen_version = version
        self.post_message(DeploymentsLoaded(rows, full))

    @on(DeploymentsLoaded)
    def show_deployments(self, message: DeploymentsLoaded) -> None:
        """Update changed rows in place, keyed by name, so the cursor stays on its row."""
        if message.full:
            self.summaries = {s.name: s for s in message.deployments}
            self.table.replace_all(self._visible_cells(message.deployments))
        else:
            for s in message.deployments:
                old = self.summaries.get(s.name)
                if old is not None:
                    self._announce(old, s)
            self.summaries.update((s.name, s) for s in message.deployments)
            self._show(message.deployments)
        if message.deployments:
            self.changed_at = max(self.changed_at, max(s.changed_at for s in message.deployments))
        self.loaded = True
        if message.shown is not None:
            self.call_after_refresh(message.shown.set)
        self.toast.profile_of.update((s.name, s.profile) for s in message.deployments)
        self.refresh_bindings()
        self._update_empty()

    def _show(self, changed: list[DeploymentSummary]) -> None:
        visible = self._visible_cells(changed)
        self.table.upsert(visible)
        self.table.remove_rows(s.name for s in changed if s.name not in visible)

    def _visible_cells(self, rows: Iterable[DeploymentSummary]) -> dict[str, tuple[str, ...]]:
        now = self.toast.clock()
        sandbox = self.toast.profile.is_sandbox
        wanted = self.filter_text
        shown = {}
        for s in rows:
            if s.state == "destroyed" and not self.show_destroyed:
                continue
            if wanted and not any(wanted in v.lower() for v in (s.name, s.repo, s.state)):
                continue
            shown[s.name] = list_cells(s, now, sandbox=sandbox)
        return shown

    def _announce(self, old: DeploymentSummary, new: DeploymentSummary) -> None:
        ended = FINISHED.get((old.state, new.state))
        if ended is None:
            return
        kind, outcome = ended
        why = f" at {new.step}" if outcome == "failed" and new.step_state == "failed" else ""
        self.notify(
            f"{kind} of {new.name} {outcome}{why}"
            + (f": https://{new.fqdn}/" if new.state == "live" else ""),
            severity="information" if outcome == "succeeded" else "error",
            timeout=8,
        )

    def _update_empty(self) -> None:
        empty = self.query_one("#empty", Static)
        shown = self.table.row_count > 0
        empty.display = not shown
        if not self.summaries or all(
            s.state == "destroyed" and not self.show_destroyed for s in self.summaries.values()
        ):
            gone = sum(1 for s in self.summaries.values() if s.state == "destroyed")
            empty.update(
                "No deployments yet. Press 2 to pick one of your repositories, or n to "
                "deploy any repository or git URL."
                + (f" ({gone} destroyed: a shows them.)" if gone else "")
            )
        else:
            empty.update(f"Nothing matches {self.filter_text!r} (esc clears the filter).")

    @on(DeploymentsFailed)
    def show_failure(self, message: DeploymentsFailed) -> None:
        empty = self.query_one("#empty", Static)
        empty.display = True
        empty.update(f"Could not read deployments: {message.error}")
