"""The profile picker: which AWS account and region (or the sandbox) new deploys go to."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Header, Static

from core.profile import paths
from core.profile.config import ConfigError, Profile, load_config, sandbox_profile
from tui.base import ToastNode
from tui.widgets.banner import ProfileBanner
from tui.widgets.footer import Footer
from tui.widgets.row_table import RowTable

COLUMNS = (
    ("", 1),
    ("Profile", 16),
    ("Where", 30),
    ("Region", 12),
    ("Domain", 28),
    ("Instance", 10),
)


class ProfilesScreen(ToastNode, Screen[None]):
    BINDINGS = [
        Binding("enter", "use", "Use this profile"),
        Binding("j", "move(1)", "Down", show=False),
        Binding("k", "move(-1)", "Up", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.profiles: dict[str, Profile] = {}

    def compose(self) -> ComposeResult:
        yield Header()
        yield ProfileBanner(id="banner")
        yield RowTable(COLUMNS, sort=False, id="profiles")
        yield Static("", id="profiles-status")
        yield Footer()

    @property
    def table(self) -> RowTable:
        return self.query_one("#profiles", RowTable)

    def on_mount(self) -> None:
        self.title = "Profiles"
        self.table.focus()
        self.show()

    def show(self) -> None:
        status = self.query_one("#profiles-status", Static)
        try:
            config = load_config(paths.config_path())
        except ConfigError as exc:
            status.update(str(exc))
            config = None
        found = dict(config.profiles) if config else {}
        found.setdefault("sandbox", sandbox_profile())
        current = self.toast.profile
        found[current.name] = current
        self.profiles = found
        self.table.replace_all({name: self._cells(p, current) for name, p in found.items()})
        if config is not None:
            status.update(
                f"From {config.path}. enter makes the selected profile the one new deploys use "
                "(deployments of every profile are listed)."
            )

    @staticmethod
    def _cells(p: Profile, current: Profile) -> tuple[str, ...]:
        where = "the local sandbox" if p.is_sandbox else f"AWS profile {p.aws_profile or 'default'}"
        return (
            "*" if p.name == current.name else "",
            p.name,
            where,
            p.region,
            f"*.{p.base_domain}" if p.base_domain else "-",
            p.instance_type,
        )

    @on(RowTable.Selected, "#profiles")
    def chosen(self) -> None:
        self.action_use()

    def action_use(self) -> None:
        key = self.table.cursor_key
        if key is None:
            return
        self.toast.use_profile(self.profiles[key])
        self.show()

    def action_move(self, delta: int) -> None:
        self.table.action_move(delta)
