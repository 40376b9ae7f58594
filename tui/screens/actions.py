"""The actions every deployment view offers (redeploy, rollback, destroy, open, copy),
each on a key, each queuing a run for the engine from a worker: the UI never waits."""

from __future__ import annotations

from typing import Any

from textual import work

from tui.messages import RunQueued

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
        if action not in ("redeploy", "rollback", "destroy", "open_url", "copy_url", "logs"):
            return True
        d = self.selected()
        if d is None or d.state == "destroyed":
            return None  # shown greyed: nothing to act on
        if action in ("redeploy", "rollback") and d.current_release_id is None:
            return None
        if action in ("redeploy", "rollback", "destroy") and d.state in (
            "deploying",
            "destroying",
        ):
            return None  # a run is already working on it
        return True

    def action_redeploy(self) -> None:
        d = self.selected()
        if d is not None:
            self.queue_action("redeploy", d.name)

    def action_rollback(self) -> None:
        d = self.selected()
        if d is not None:
            self.queue_action("rollback", d.name, sha=self.rollback_target())

    def action_destroy(self) -> None:
        from tui.screens.confirm_destroy import ConfirmDestroy

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
            self.app.open_url(f"https://{d.fqdn}/")

    def action_copy_url(self) -> None:
        d = self.selected()
        if d is not None:
            self.app.copy_to_clipboard(f"https://{d.fqdn}/")  # OSC 52: works over SSH
            self.app.notify(f"copied https://{d.fqdn}/")

    @work(group="actions", exit_on_error=False, description="Queuing a run")
    async def queue_action(self, kind: str, name: str, sha: str | None = None) -> None:
        import asyncio

        from core.engine import ensure_engine
        from core.operations import OperationError, actor_name, head_is_live, queue_run
        from storage import Queries, open_database

        db = await open_database(self.app.db_path)
        try:
            queries = Queries(db)
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
                _, run = await queue_run(queries, name, kind, actor=actor_name("console"), sha=sha)
            except OperationError as exc:
                self.app.notify(str(exc), title=kind, severity="error")
                return
        finally:
            await db.close()
        await asyncio.to_thread(ensure_engine)
        self.app.post_message(RunQueued(name, kind, run.id))
