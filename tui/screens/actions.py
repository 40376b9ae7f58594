"""The actions every deployment view offers (redeploy, rollback, destroy, open, copy),
each on a key, each queuing a run for the engine from a worker: the UI never waits."""

from __future__ import annotations

import asyncio
from typing import Any

from textual import work

from core.runs.access import ReadOnlyError
from core.runs.launcher import ensure_engine
from core.runs.queue import OperationError, head_is_live, queue_run
from core.views.site_address import reach
from storage import Queries
from tui.messages import RunQueued
from tui.screens.confirm_destroy import ConfirmDestroy

#: Actions that change something: refused (and hidden) on a read-only console.
MUTATING = {"redeploy", "rollback", "destroy"}


class DeploymentActions:
    """Mixed into a Screen that knows which deployment is selected."""

    app: Any

    def selected(self) -> Any | None:  # the Deployment record, or None
        raise NotImplementedError

    def rollback_target(self) -> str | None:
        """A release sha to roll back to (None: the one before the live one)."""
        return None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in MUTATING and self.app.read_only:
            return False  # hidden from the footer; pressing it says why (on_key)
        if action not in ("redeploy", "rollback", "destroy", "open_url", "copy_url", "logs"):
            return True
        d = self.selected()
        if d is None or d.state == "destroyed":
            return None  # shown greyed: nothing to act on
        if action in ("redeploy", "rollback") and not d.has_release:
            return None
        if action in ("redeploy", "rollback", "destroy") and d.state in (
            "deploying",
            "destroying",
        ):
            return None  # a run is already working on it
        return True

    def on_key(self, event: Any) -> None:
        # A binding whose check_action says False is skipped, so its key arrives here.
        if self.explain_read_only(event.key):
            event.stop()

    def explain_read_only(self, key: str) -> bool:
        """A mutating key pressed on a read-only console: say why nothing happens."""
        for binding in self._bindings.key_to_bindings.get(key, []):  # type: ignore[attr-defined]
            if binding.action.removeprefix("app.") in MUTATING | {"new_deploy"} and (
                self.app.read_only
            ):
                self.app.notify(
                    f"{binding.description or binding.action}: this console is read-only "
                    "(opened with --read-only)",
                    severity="warning",
                )
                return True
        return False

    def action_redeploy(self) -> None:
        d = self.selected()
        if d is not None:
            self.queue_action("redeploy", d.name)

    def action_rollback(self) -> None:
        d = self.selected()
        if d is not None:
            self.queue_action("rollback", d.name, sha=self.rollback_target())

    def action_destroy(self) -> None:
        d = self.selected()
        if d is None:
            return

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.queue_action("destroy", d.name)

        self.app.push_screen(ConfirmDestroy(d.name, d.fqdn), confirmed)

    def action_open_url(self) -> None:
        d = self.selected()
        if d is not None:
            self.open_site(d.fqdn)

    @work(group="open", exit_on_error=False, description="Opening the site")
    async def open_site(self, fqdn: str) -> None:
        url, command = await asyncio.to_thread(reach, self.app.profile, fqdn)
        if command is None:
            self.app.open_url(url)  # the browser here, or the user's over textual-serve
            self.app.notify(f"opening {url} (c copies it)")
            return
        # Sandbox names are in no public DNS: a browser cannot reach them, curl can.
        self.app.copy_to_clipboard(command)
        self.app.notify(
            f"{url} is in the sandbox; reach it with (copied): {command}",
            title="open",
            timeout=20,
        )

    def action_copy_url(self) -> None:
        d = self.selected()
        if d is not None:
            self.app.copy_to_clipboard(f"https://{d.fqdn}/")  # OSC 52: works over SSH
            self.app.notify(f"copied https://{d.fqdn}/")

    @work(group="actions", exit_on_error=False, description="Queuing a run")
    async def queue_action(self, kind: str, name: str, sha: str | None = None) -> None:
        queries = Queries(await self.app.database())
        if kind == "redeploy":
            d = await queries.get_deployment(name)
            live = await head_is_live(queries, d) if d is not None else None
            if live is not None:
                self.app.notify(
                    f"{name} already serves {live[:12]}, the head of its branch; nothing to do",
                    title="redeploy",
                )
                return
        try:
            _, run = await queue_run(queries, name, kind, actor=self.app.actor, sha=sha)
        except (OperationError, ReadOnlyError) as exc:
            self.app.notify(str(exc), title=kind, severity="error")
            return
        await asyncio.to_thread(ensure_engine)
        self.app.post_message(RunQueued(name, kind, run.id))
