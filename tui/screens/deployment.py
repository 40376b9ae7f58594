"""One deployment: its URL and certificate, the last run's step timeline updating live
while the engine works, the run's build output, its releases (roll back to any of them
with `b`) and its ledger (every cloud resource its runs created, and deleted)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Header, Static, TabbedContent, TabPane

from core.views.read_models import NotFound, describe, ledger
from core.views.tail import LogLine
from storage import Queries
from tui.actions import Scope, bindings
from tui.screens.actions import DeploymentActions
from tui.widgets.footer import Footer
from tui.widgets.log_pane import LogPane

REFRESH_S = 0.5
BAR = 20


class DetailLoaded(Message):
    def __init__(
        self,
        info: dict[str, Any] | None,
        record: Any,
        error: str | None,
        ledger: list[dict[str, Any]] | None = None,
        output: list[Any] | None = None,
    ) -> None:
        super().__init__()
        self.info = info
        self.record = record
        self.error = error
        self.ledger = ledger or []
        #: Build output lines of the last run not shown yet.
        self.output = output or []


def bar(seconds: float, longest: float) -> str:
    """A duration drawn to scale against the run's longest step."""
    if longest <= 0:
        return ""
    filled = max(1, round(BAR * seconds / longest)) if seconds > 0 else 0
    return "█" * filled + "·" * (BAR - filled)


class DeploymentScreen(DeploymentActions, Screen[None]):
    BINDINGS = [
        *bindings(Scope.DEPLOYMENT, without=frozenset({"open"})),
        Binding("escape", "app.pop_screen", "Back"),
        Binding("t", "show_tab('output')", "Output", show=False),
        Binding("v", "show_tab('releases')", "Releases", show=False),
        Binding("g", "show_tab('ledger')", "Ledger", show=False),
    ]

    def __init__(self, name: str) -> None:
        super().__init__()
        self.deployment_name = name
        self.record: Any = None
        self.info: dict[str, Any] | None = None
        self.seen_version: int | None = None
        #: The run whose output the pane shows, and the last event shown.
        self.output_run: int | None = None
        self.last_event = 0

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(f"{self.deployment_name}: loading...", id="detail-summary")
        steps: DataTable[str] = DataTable(id="steps", cursor_type="row")
        steps.border_title = "Last run"
        yield steps
        with TabbedContent(initial="output", id="detail-tabs"):
            with TabPane("Build output (t)", id="output"):
                yield LogPane("build", id="build-output")
            with TabPane("Releases (v)", id="releases-tab"):
                releases: DataTable[str] = DataTable(id="releases", cursor_type="row")
                releases.border_title = "b rolls back to the selected release"
                yield releases
            with TabPane("Ledger (g)", id="ledger-tab"):
                yield DataTable(id="ledger", cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        steps = self.query_one("#steps", DataTable)
        for label, width in (("Step", 13), ("State", 10), ("Time", 7), ("", BAR), ("Detail", 60)):
            steps.add_column(label, width=width, key=label.lower() or "bar")
        releases = self.query_one("#releases", DataTable)
        for label, width in (("Commit", 14), ("Built", 18), ("", 6)):
            releases.add_column(label, width=width, key=label.lower() or "live")
        ledger = self.query_one("#ledger", DataTable)
        for label, width in (
            ("Kind", 16),
            ("Resource", 34),
            ("Region", 10),
            ("Created", 17),
            ("Deleted", 17),
            ("Run", 5),
        ):
            ledger.add_column(label, width=width, key=label.lower())
        self.load(force=True)
        self.set_interval(REFRESH_S, self._poll)

    def _poll(self) -> None:
        if self.app.screen is self:
            self.load(force=False)

    def action_show_tab(self, tab: str) -> None:
        tabs = {"output": "output", "releases": "releases-tab", "ledger": "ledger-tab"}
        self.query_one(TabbedContent).active = tabs[tab]

    def selected(self) -> Any | None:
        return self.record

    def rollback_target(self) -> str | None:
        releases = self.query_one("#releases", DataTable)
        if releases.row_count == 0 or not releases.has_focus:
            return None
        key = releases.coordinate_to_cell_key(releases.cursor_coordinate).row_key.value
        return str(key) if key else None

    @work(exclusive=True, group="detail", exit_on_error=False, description="Reading the deployment")
    async def load(self, *, force: bool = False) -> None:
        try:
            queries = Queries(await self.toast.database())
            version = await queries.data_version()
            if not force and version == self.seen_version:
                return  # nothing committed since the last read
            info = await describe(queries, self.deployment_name)
            record = await queries.get_deployment(self.deployment_name)
            resources = await ledger(queries, self.deployment_name)
            output: list[Any] = []
            last = info["last_run"]
            if last is not None:
                after = self.last_event if last["id"] == self.output_run else 0
                output = [
                    e
                    for e in await queries.events_for(last["id"], after_id=after)
                    if e.level not in ("aws", "command")
                ]
        except (NotFound, Exception) as exc:
            self.post_message(DetailLoaded(None, None, str(exc)))
            return
        # Only once read: a poll that cancels this worker midway must read again.
        self.seen_version = version
        self.post_message(DetailLoaded(info, record, None, resources, output))

    @on(DetailLoaded)
    def show(self, message: DetailLoaded) -> None:
        summary = self.query_one("#detail-summary", Static)
        if message.info is None:
            summary.update(f"{self.deployment_name}: {message.error}")
            return
        info, self.record, self.info = message.info, message.record, message.info
        cert = ""
        if info["certificate_expires_at"]:
            days = (info["certificate_expires_at"] - self.toast.clock()) / 86400
            until = time.strftime("%Y-%m-%d", time.gmtime(info["certificate_expires_at"]))
            cert = f" · certificate valid until {until}"
            if days < 14:
                cert += f" (expires in {max(days, 0):.0f} days)"
        last = info["last_run"]
        run = f" · last run {last['id']} {last['kind']} {last['state']}" if last else ""
        summary.update(
            f"{info['name']}  {info['state']}  {info['url']}\n"
            f"{info['repo']}@{info['branch']} ({info['build_type']}) · instance "
            f"{info['instance'] or '-'}{cert}{run}"
        )
        self._show_steps(last)
        self._show_releases(info["releases"])
        self._show_ledger(message.ledger)
        self._show_output(last["id"] if last else None, message.output)
        self.refresh_bindings()

    def _show_output(self, run_id: int | None, events: list[Any]) -> None:
        pane = self.query_one("#build-output", LogPane)
        if run_id != self.output_run:
            pane.view.clear()
            self.output_run, self.last_event = run_id, 0
        fresh = [e for e in events if e.id > self.last_event]
        if not fresh:
            return
        self.last_event = fresh[-1].id
        pane.state = f"run {run_id}"
        pane.write_lines(
            [
                LogLine(
                    int(e.at * 1000),
                    "build",
                    f"[{e.step}] {e.message}" if e.step else e.message,
                    str(e.id),
                    "",
                )
                for e in fresh
            ]
        )

    def _show_ledger(self, resources: list[dict[str, Any]]) -> None:
        def when(at: float | None) -> str:
            return time.strftime("%Y-%m-%d %H:%M", time.localtime(at)) if at else ""

        _sync(
            self.query_one("#ledger", DataTable),
            [
                (
                    f"{r['kind']}:{r['id']}:{r['region']}",
                    (
                        r["kind"],
                        r["id"],
                        r["region"],
                        when(r["created_at"]),
                        when(r["deleted_at"]) or "-",
                        str(r["run_id"] or ""),
                    ),
                )
                for r in resources
            ],
        )

    def _show_steps(self, last: dict[str, Any] | None) -> None:
        table = self.query_one("#steps", DataTable)
        steps = (last or {}).get("steps", [])
        durations = {s["name"]: s.get("seconds") or 0.0 for s in steps}
        longest = max(durations.values(), default=0.0)
        rows = [
            (
                s["name"],
                s["state"],
                f"{durations[s['name']]:.1f}s" if durations[s["name"]] else "",
                bar(durations[s["name"]], longest),
                (s["error"] or s["detail"] or "")[:200],
            )
            for s in steps
        ]
        _sync(table, [(s["name"], row) for s, row in zip(steps, rows, strict=True)])

    def _show_releases(self, releases: list[dict[str, Any]]) -> None:
        table = self.query_one("#releases", DataTable)
        rows = [
            (
                r["sha"],
                (
                    r["sha"][:12],
                    time.strftime("%Y-%m-%d %H:%M", time.localtime(r["built_at"])),
                    "live" if r["live"] else "",
                ),
            )
            for r in releases
        ]
        _sync(table, rows)


def _sync(table: DataTable[str], rows: Sequence[tuple[str, tuple[str, ...]]]) -> None:
    """Rows updated in place by key (the cursor stays), added and removed as needed."""
    wanted = dict(rows)
    for stale in [k for k in list(table.rows) if k.value not in wanted]:
        table.remove_row(stale)
    existing = {k.value for k in table.rows}
    columns = list(table.columns)
    for name, cells in rows:
        if name not in existing:
            table.add_row(*cells, key=name)
            continue
        current = table.get_row(name)
        for column, old, new in zip(columns, current, cells, strict=True):
            if old != new:
                table.update_cell(name, column, new)


def _event_text(event: Any) -> str:
    return f"[{event.step}] {event.message}" if event.step else event.message
