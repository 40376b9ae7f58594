"""The `:` command bar (as in k9s): a word of the action table, with a deployment's name or the
action's argument, and enter."""

from __future__ import annotations

from collections.abc import Callable

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widgets import Input, Static

from tui.actions import ACTIONS, Action, Scope, bar_help


class CommandBar(ModalScreen[str | None]):
    """Returns the command typed, or None when left with esc."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]
    DEFAULT_CSS = """
    CommandBar { align: left bottom; background: $background 30%; }
    CommandBar #command-help { height: auto; padding: 0 1; background: $surface;
        color: $text-muted; width: 100%; }
    CommandBar Input { width: 100%; }
    """

    def __init__(
        self, names: list[str], *, allowed: Callable[[Action], bool] = lambda _a: True
    ) -> None:
        super().__init__()
        #: The action table's words: only what the actor may do (a viewer: what looks).
        offered = [a for a in ACTIONS if a.word and allowed(a)]
        self.help_text = bar_help(allowed=allowed)
        completions: list[str] = []
        for a in offered:
            if a.scope is Scope.DEPLOYMENT:
                completions += [f"{a.word} {n}" for n in names]
            elif a.argument:
                completions += [f"{a.word} {arg}" for arg in a.argument.split("|")]
            else:
                completions.append(str(a.word))
        self.suggester = SuggestFromList(completions, case_sensitive=False)

    def compose(self) -> ComposeResult:
        yield Static(self.help_text, id="command-help")
        yield Input(placeholder=":", suggester=self.suggester, id="command")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted)
    def submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip().lstrip(":").strip() or None)
