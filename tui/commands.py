"""Command palette (ctrl+p) entries for deployments, offering only what fits each one's
state: open and logs for any, redeploy and roll back only for a live one with releases."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from textual.command import DiscoveryHit, Hit, Hits, Provider

from storage import Queries
from tui.screens.deployment import DeploymentScreen
from tui.screens.logs import LogsScreen


class DeploymentCommands(Provider):
    async def startup(self) -> None:
        db = await self.app.database()  # type: ignore[attr-defined]
        self.deployments = await Queries(db).list_deployments()

    def commands(self) -> list[tuple[str, Callable[[], Any], str]]:
        found: list[tuple[str, Callable[[], Any], str]] = []
        if not self.app.read_only:  # type: ignore[attr-defined]
            found.append(("New deploy", self.app.action_new_deploy, "the deploy wizard (n)"))  # type: ignore[attr-defined]
        for d in self.deployments:
            found.append((f"Open {d.name}", partial(self._open, d.name), f"https://{d.fqdn}/"))
            found.append((f"Logs of {d.name}", partial(self._logs, d.name, d.profile), d.state))
            if d.state == "live" and d.has_release and not self.app.read_only:  # type: ignore[attr-defined]
                found.append(
                    (f"Redeploy {d.name}", partial(self._queue, "redeploy", d.name), d.repo)
                )
                found.append(
                    (
                        f"Roll back {d.name}",
                        partial(self._queue, "rollback", d.name),
                        "to the release before the live one",
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

    def _open(self, name: str) -> None:
        self.app.push_screen(DeploymentScreen(name))

    def _logs(self, name: str, profile: str) -> None:
        self.app.push_screen(LogsScreen(name, profile))

    def _queue(self, kind: str, name: str) -> None:
        screen = self.app.screen
        if hasattr(screen, "queue_action"):
            screen.queue_action(kind, name)
