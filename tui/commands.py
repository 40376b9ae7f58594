"""The command palette (ctrl+p), made from the action table: every app action, and every
deployment action for each deployment it applies to (open and logs for any, redeploy and
roll back for a live one with releases, ...). Each runs through ToastApp.perform, so it
works from whichever screen the palette was opened on."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from textual.command import DiscoveryHit, Hit, Hits, Provider

from storage import Queries
from storage.records import Deployment
from tui.actions import ACTIONS, Scope
from tui.base import toast_app
from tui.screens.actions import applies

if TYPE_CHECKING:
    from collections.abc import Callable

    from tui.app import ToastApp

#: App actions the palette does not offer (it is itself the way to them, or they need an
#: argument the palette does not take).
NOT_OFFERED = frozenset({"command_bar", "theme"})


class ActionCommands(Provider):
    @property
    def toast(self) -> ToastApp:
        return toast_app(self.screen)

    async def startup(self) -> None:
        self.deployments: list[Deployment] = await Queries(
            await self.toast.database()
        ).list_deployments()

    def commands(self) -> list[tuple[str, Callable[[], None], str]]:
        may = self.toast.may_action
        found: list[tuple[str, Callable[[], None], str]] = []
        for action in ACTIONS:
            offered = action.name not in NOT_OFFERED and may(action)
            if action.scope is Scope.APP and offered:
                found.append((action.title, partial(self.toast.perform, action.name), action.help))
        for d in self.deployments:
            for action in ACTIONS:
                if action.scope is not Scope.DEPLOYMENT or not may(action):
                    continue
                if applies(action.name, d) is True:
                    found.append(
                        (
                            f"{action.title} {d.name}",
                            partial(self.toast.perform, action.name, d.name),
                            action.help,
                        )
                    )
        return found

    async def discover(self) -> Hits:
        for text, callback, help_text in self.commands():
            yield DiscoveryHit(text, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for text, callback, help_text in self.commands():
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, matcher.highlight(text), callback, help=help_text)
