"""What a screen that shows deployments does with the action table's deployment keys:
they act on the selected deployment, through ToastApp.perform (as the palette and the `:`
bar do), and keys that do not apply to it are greyed."""

from __future__ import annotations

from typing import Any

from textual import events

from tui.actions import ACTIONS, BY_NAME, MUTATING, Scope
from tui.base import ToastNode


def applies(name: str, d: Any | None) -> bool | None:
    """Whether deployment action `name` applies to `d` (None: shown greyed, does nothing)."""
    if d is None or d.state == "destroyed":
        return None
    if name in ("redeploy", "rollback") and not d.has_release:
        return None
    if name in MUTATING and d.state in ("deploying", "destroying"):
        return None  # a run is already working on it
    return True


class DeploymentActions(ToastNode):
    """Mixed into a Screen that knows which deployment is selected."""

    def selected(self) -> Any | None:  # the Deployment or its summary, or None
        raise NotImplementedError

    def rollback_target(self) -> str | None:
        """A release sha to roll back to (None: the one before the live one)."""
        return None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action != "perform" or not parameters:
            return True
        name = str(parameters[0])
        if name in MUTATING and not self.toast.may_action(BY_NAME[name]):
            return False  # hidden from the footer; pressing it says why (on_key)
        if BY_NAME[name].scope is not Scope.DEPLOYMENT:
            return True
        return applies(name, self.selected())

    def on_key(self, event: events.Key) -> None:
        # A binding whose check_action says False is skipped, so its key arrives here.
        if self.toast.explain_read_only(event.key):
            event.stop()

    def action_perform(self, name: str) -> None:
        d = self.selected()
        if d is None:
            self.toast.notify("no deployment selected", severity="warning")
            return
        self.toast.perform(name, d.name, sha=self.rollback_target() if name == "rollback" else None)


__all__ = ["ACTIONS", "DeploymentActions", "applies"]
