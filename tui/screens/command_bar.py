"""The `:` command bar (as in k9s): type a section or an action and press enter."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widgets import Input, Static

#: command -> what it does (the help line shown under the bar).
COMMANDS = {
    "deploys": "the Deployments list (1)",
    "repos": "your repositories (2)",
    "activity": "the audit trail and each run's calls (3)",
    "profiles": "which account new deploys use (4)",
    "logs NAME": "live logs of a deployment",
    "open NAME": "a deployment's detail",
    "deploy": "the deploy wizard (n)",
    "theme NAME": "dark, light or high-contrast",
    "help": "the keys of this view (?)",
    "quit": "leave the console (deploys go on in the engine)",
}

#: Commands that change something: never offered by a read-only console.
MUTATING = frozenset({"deploy"})


class CommandBar(ModalScreen[str | None]):
    """Returns the command typed, or None when left with esc."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]
    DEFAULT_CSS = """
    CommandBar { align: left bottom; background: $background 30%; }
    CommandBar #command-help { height: auto; padding: 0 1; background: $surface;
        color: $text-muted; width: 100%; }
    CommandBar Input { width: 100%; }
    """

    def __init__(self, names: list[str], *, read_only: bool = False) -> None:
        super().__init__()
        #: A read-only console offers only what looks.
        self.commands = {c: w for c, w in COMMANDS.items() if not (read_only and c in MUTATING)}
        words = [c.split(" ")[0] for c in self.commands]
        completions = words + [f"{w} {n}" for w in ("logs", "open") for n in names]
        completions += [f"theme {t}" for t in ("dark", "light", "high-contrast")]
        self.suggester = SuggestFromList(completions, case_sensitive=False)

    def compose(self) -> ComposeResult:
        yield Static(
            "  ".join(f":{c} {what}" for c, what in self.commands.items()), id="command-help"
        )
        yield Input(placeholder=":", suggester=self.suggester, id="command")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted)
    def submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip().lstrip(":").strip() or None)
