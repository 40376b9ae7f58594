"""Destroy asks to type the deployment's name: one keystroke must never delete a site."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label


class ConfirmDestroy(ModalScreen[bool]):
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, name: str, fqdn: str) -> None:
        super().__init__()
        self.target_name = name
        self.fqdn = fqdn

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm"):
            yield Label(
                f"Destroy {self.target_name}? Its instance, DNS record for {self.fqdn}, "
                "logs and role are deleted. This cannot be undone.",
                id="confirm-what",
            )
            yield Label(f"Type {self.target_name} to confirm, Esc to cancel:")
            yield Input(placeholder=self.target_name, id="confirm-input")
            yield Label("", id="confirm-error")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted)
    def submitted(self, event: Input.Submitted) -> None:
        if event.value.strip() == self.target_name:
            self.dismiss(True)
        else:
            self.query_one("#confirm-error", Label).update(
                f"that is not {self.target_name}; type it exactly, or Esc"
            )

    def action_cancel(self) -> None:
        self.dismiss(False)
