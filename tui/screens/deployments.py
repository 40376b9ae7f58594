"""The Deployments screen: every deployment SQLite holds, with its state and URL."""

from __future__ import annotations

import time

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Input, Static

from storage import Queries, open_database
from storage.records import Deployment
from tui.messages import DeploymentsFailed, DeploymentsLoaded
from tui.screens.actions import DeploymentActions
from tui.widgets.banner import ProfileBanner

REFRESH_S = 2.0
COLUMNS = (
    ("Name", 16),
    ("State", 10),
    ("URL", 34),
    ("Repository", 30),
    ("Branch", 12),
    ("Updated", 16),
)


#: A run ended: what the notification says.
FINISHED = {
    ("deploying", "live"): ("deploy", "succeeded"),
    ("deploying", "failed"): ("run", "failed"),
    ("destroying", "destroyed"): ("destroy", "succeeded"),
    ("destroying", "failed"): ("destroy", "failed"),
}


class DeploymentsScreen(DeploymentActions, Screen[None]):
    BINDINGS = [
        Binding("enter", "open_detail", "Detail"),
        Binding("n", "app.new_deploy", "New deploy"),
        Binding("l", "logs", "Logs"),
        Binding("R", "redeploy", "Redeploy"),
        Binding("b", "rollback", "Roll back"),
        Binding("D", "destroy", "Destroy"),
        Binding("o", "open_url", "Open"),
        Binding("c", "copy_url", "Copy URL"),
        Binding("slash", "filter", "Filter"),
        Binding("j", "cursor('down')", "Down", show=False),
        Binding("k", "cursor('up')", "Up", show=False),
        Binding("escape", "clear_filter", "Clear filter", show=False),
        Binding("r", "refresh", "Refresh"),
        Binding("q", "app.quit", "Quit"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.deployments: dict[str, Deployment] = {}
        #: Every deployment read; `deployments` is what the filter lets through.
        self.all_deployments: list[Deployment] = []
        self.filter_text = ""

    def compose(self) -> ComposeResult:
        yield Header()
        yield ProfileBanner(id="banner")
        table: DataTable[str] = DataTable(id="deployments", cursor_type="row", zebra_stripes=True)
        yield table
        filter_box = Input(placeholder="filter by name, repository or state", id="filter")
        filter_box.display = False
        yield filter_box
        yield Static("Loading deployments...", id="empty")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for label, width in COLUMNS:
            table.add_column(label, width=width, key=label.lower())
        table.focus()
        self.action_refresh()
        # The engine works in another process: watch SQLite for its progress.
        self.set_interval(REFRESH_S, self._poll)

    def _poll(self) -> None:
        if self.is_current:  # skip work while another screen covers this one
            self.load_deployments()

    def selected(self) -> Deployment | None:
        table = self.query_one(DataTable)
        if table.row_count == 0:
            return None
        name = str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)
        return self.deployments.get(name)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "open_detail":
            return True if self.selected() is not None else None
        return DeploymentActions.check_action(self, action, parameters)

    @on(DataTable.RowHighlighted)
    def highlighted(self) -> None:
        self.refresh_bindings()  # which keys apply depends on the row

    @on(DataTable.RowSelected)
    def row_chosen(self) -> None:
        self.action_open_detail()

    def action_open_detail(self) -> None:
        deployment = self.selected()
        if deployment is not None:
            from tui.screens.deployment import DeploymentScreen

            self.app.push_screen(DeploymentScreen(deployment.name))

    def action_logs(self) -> None:
        deployment = self.selected()
        if deployment is None:
            self.notify("no deployment selected", severity="warning")
            return
        from tui.screens.logs import LogsScreen

        self.app.push_screen(LogsScreen(deployment.name, deployment.profile))

    def action_refresh(self) -> None:
        self.load_deployments()

    def action_cursor(self, direction: str) -> None:
        table = self.query_one(DataTable)
        if direction == "down":
            table.action_cursor_down()
        else:
            table.action_cursor_up()

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.display = True
        box.focus()

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.value = ""
        box.display = False
        self.query_one(DataTable).focus()

    @on(Input.Changed, "#filter")
    def filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value.strip().lower()
        self.post_message(DeploymentsLoaded(self.all_deployments))

    @on(Input.Submitted, "#filter")
    def filter_done(self) -> None:
        self.query_one(DataTable).focus()  # keep the filter, back to the list

    @work(
        exclusive=True,
        group="deployments",
        exit_on_error=False,
        description="Loading deployments from the state database",
    )
    async def load_deployments(self) -> None:
        try:
            db = await open_database(self.app.db_path)
            try:
                rows = await Queries(db).list_deployments()
            finally:
                await db.close()
        except Exception as exc:
            self.post_message(DeploymentsFailed(str(exc)))
            return
        self.post_message(DeploymentsLoaded(rows))

    @on(DeploymentsLoaded)
    def show_deployments(self, message: DeploymentsLoaded) -> None:
        """Update rows in place, keyed by name, so the cursor stays where the user put it."""
        table = self.query_one(DataTable)
        self.all_deployments = list(message.deployments)
        wanted = self.filter_text
        shown = [
            d
            for d in message.deployments
            if not wanted or any(wanted in v.lower() for v in (d.name, d.repo, d.state))
        ]
        fresh = {d.name: d for d in shown}
        for name in [n for n in self.deployments if n not in fresh]:
            table.remove_row(name)
        for d in shown:
            old = self.deployments.get(d.name)
            ended = FINISHED.get((old.state, d.state)) if old is not None else None
            if ended is not None:
                kind, outcome = ended
                self.notify(
                    f"{kind} of {d.name} {outcome}"
                    + (f": https://{d.fqdn}/" if d.state == "live" else ""),
                    severity="information" if outcome == "succeeded" else "error",
                    timeout=8,
                )
            cells = _cells(d)
            if d.name not in self.deployments:
                table.add_row(*cells, key=d.name)
            elif _cells(self.deployments[d.name]) != cells:
                for (label, _), value in zip(COLUMNS, cells, strict=True):
                    table.update_cell(d.name, label.lower(), value)
        self.deployments = fresh
        self.refresh_bindings()
        empty = self.query_one("#empty", Static)
        empty.display = not shown
        empty.update(
            "No deployments yet. Press n to deploy one."
            if not message.deployments
            else f"Nothing matches {self.filter_text!r} (esc clears the filter)."
        )

    @on(DeploymentsFailed)
    def show_failure(self, message: DeploymentsFailed) -> None:
        empty = self.query_one("#empty", Static)
        empty.display = True
        empty.update(f"Could not read deployments: {message.error}")


def _cells(d: Deployment) -> tuple[str, ...]:
    updated = time.strftime("%Y-%m-%d %H:%M", time.localtime(d.updated_at))
    return (d.name, d.state, f"https://{d.fqdn}/", d.repo, d.branch, updated)
