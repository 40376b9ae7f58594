"""The Activity screen: the audit trail (who did what, when, from where) and, for the
selected entry's run, every AWS call and host command it made, in order, as lazygit shows
the git commands it runs."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Header, Input, Static

from core.views.read_models import activity, connected_now, run_calls
from storage import Queries
from tui.base import ToastNode
from tui.screens.deployment import DeploymentScreen
from tui.widgets.banner import ProfileBanner
from tui.widgets.footer import Footer
from tui.widgets.row_table import RowTable

AUDIT_COLUMNS = (
    ("When", 16),
    ("Who", 10),
    ("From", 8),
    ("Action", 18),
    ("Deployment", 16),
    ("Run", 6),
)
CALL_COLUMNS = (("When", 8), ("Step", 12), ("Times", 5), ("Call or command", 120))
POLL_S = 2.0


@dataclass
class ActivityLoaded(Message):
    entries: list[dict[str, Any]]
    #: Who is in the console over SSH right now.
    connected: list[dict[str, Any]]


@dataclass
class CallsLoaded(Message):
    run_id: int
    calls: list[dict[str, Any]]


class ActivityScreen(ToastNode, Screen[None]):
    BINDINGS = [
        Binding("enter", "open_deployment", "Deployment"),
        Binding("tab", "app.focus_next", "Calls/trail", show=False),
        Binding("slash", "filter", "Filter", priority=True),
        Binding("escape", "clear_filter", "Clear filter", show=False),
        Binding("j", "move(1)", "Down", show=False),
        Binding("k", "move(-1)", "Up", show=False),
        Binding("r", "refresh", "Refresh"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[str, dict[str, Any]] = {}
        self.filter_text = ""
        self.shown_run: int | None = None
        self.seen_version: int | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield ProfileBanner(id="banner")
        yield Static("", id="connected")
        yield RowTable(AUDIT_COLUMNS, sort=False, id="audit")
        box = Input(placeholder="filter by who, action or deployment", id="activity-filter")
        box.display = False
        yield box
        yield Static("Select an entry that queued a run to see its calls.", id="calls-title")
        yield RowTable(CALL_COLUMNS, sort=False, id="calls")
        yield Footer()

    def on_mount(self) -> None:
        self.title = "Activity"
        self.audit.focus()
        self.load(force=True)
        self.set_interval(POLL_S, self._poll)

    @property
    def audit(self) -> RowTable:
        return self.query_one("#audit", RowTable)

    def _poll(self) -> None:
        if self.app.screen is self:
            self.load(force=False)

    def action_refresh(self) -> None:
        self.load(force=True)

    @work(exclusive=True, group="activity", exit_on_error=False, description="Reading activity")
    async def load(self, *, force: bool) -> None:
        queries = Queries(await self.toast.database())
        version = await queries.data_version()
        if not force and version == self.seen_version:
            return
        self.seen_version = version
        self.post_message(
            ActivityLoaded(await activity(queries, limit=500), await connected_now(queries))
        )

    @on(ActivityLoaded)
    def loaded(self, message: ActivityLoaded) -> None:
        here = message.connected
        self.query_one("#connected", Static).update(
            "Connected now over ssh: "
            + (", ".join(f"{p['name']} ({p['role']}, {p['kind']})" for p in here) or "nobody")
        )
        self.entries = {str(e["id"]): e for e in message.entries}
        self._show()
        self._load_calls()

    def _show(self) -> None:
        wanted = self.filter_text
        self.audit.replace_all(
            {
                key: _audit_cells(e)
                for key, e in self.entries.items()
                if not wanted
                or any(wanted in str(e[f]).lower() for f in ("actor", "action", "target"))
            }
        )

    @on(RowTable.Highlighted, "#audit")
    def highlighted(self) -> None:
        self._load_calls()

    def _load_calls(self) -> None:
        key = self.audit.cursor_key
        entry = self.entries.get(key) if key else None
        run_id = entry["run_id"] if entry else None
        title = self.query_one("#calls-title", Static)
        if run_id is None:
            self.shown_run = None
            self.query_one("#calls", RowTable).replace_all({})
            title.update("This entry queued no run.")
            return
        self.read_calls(run_id)

    @work(exclusive=True, group="calls", exit_on_error=False, description="Reading a run's calls")
    async def read_calls(self, run_id: int) -> None:
        queries = Queries(await self.toast.database())
        self.post_message(CallsLoaded(run_id, await run_calls(queries, run_id)))

    @on(CallsLoaded)
    def calls_loaded(self, message: CallsLoaded) -> None:
        self.shown_run = message.run_id
        aws = sum(c["times"] for c in message.calls if c["kind"] == "aws")
        commands = sum(c["times"] for c in message.calls if c["kind"] == "command")
        self.query_one("#calls-title", Static).update(
            f"Run {message.run_id}: {_count(aws, 'AWS call')}, "
            f"{_count(commands, 'host command')}, in order"
        )
        self.query_one("#calls", RowTable).replace_all(
            {
                str(i): (
                    time.strftime("%H:%M:%S", time.localtime(c["at"])),
                    c["step"] or "-",
                    f"x{c['times']}" if c["times"] > 1 else "",
                    c["what"],
                )
                for i, c in enumerate(message.calls)
            }
        )

    def action_open_deployment(self) -> None:
        key = self.audit.cursor_key
        entry = self.entries.get(key) if key else None
        if entry is None:
            return

        self.app.push_screen(DeploymentScreen(str(entry["target"])))

    def action_move(self, delta: int) -> None:
        focused = self.focused
        table = focused if isinstance(focused, RowTable) else self.audit
        table.action_move(delta)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # "/" is a priority key (handled as it is read, so the letters typed after it reach
        # the box); typing in the box, it is a character
        return not (action == "filter" and isinstance(self.focused, Input))

    def action_filter(self) -> None:
        box = self.query_one("#activity-filter", Input)
        box.display = True
        self.set_focus(box)

    def action_clear_filter(self) -> None:
        box = self.query_one("#activity-filter", Input)
        box.value = ""
        box.display = False
        self.audit.focus()

    @on(Input.Changed, "#activity-filter")
    def filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value.strip().lower()
        self._show()

    @on(Input.Submitted, "#activity-filter")
    def filter_done(self) -> None:
        self.audit.focus()


def _audit_cells(e: dict[str, Any]) -> tuple[str, ...]:
    return (
        time.strftime("%Y-%m-%d %H:%M", time.localtime(e["at"])),
        str(e["actor"]).rsplit("@", 1)[0],
        e["via"],
        e["action"],
        str(e["target"]),
        str(e["run_id"] or ""),
    )


def _count(n: int, what: str) -> str:
    return f"{n} {what}" + ("" if n == 1 else "s")
