"""The Toast console application."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import App
from textual.reactive import reactive

from core.config import Profile
from tui.commands import DeploymentCommands
from tui.messages import RunQueued, SandboxState, WizardDone
from tui.screens.deployments import DeploymentsScreen

if TYPE_CHECKING:
    from storage import Database


class ToastApp(App[None]):
    TITLE = "Toast"
    CSS_PATH = "toast.tcss"
    COMMANDS = App.COMMANDS | {DeploymentCommands}

    #: What the sandbox is doing, shown in the banner ("" when not in the sandbox).
    sandbox_detail: reactive[str] = reactive("")

    def __init__(
        self,
        profile: Profile,
        db_path: Path,
        *,
        start_sandbox: bool = True,
        read_only: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        from core.access import actor

        #: Look, never change: mutating keys are hidden, and the engine refuses them too.
        self.read_only = read_only
        self.actor = actor("console", read_only=read_only)
        self.profile = profile
        self.db_path = db_path
        self.start_sandbox = start_sandbox
        #: Where "now" comes from (snapshot tests fix it).
        self.clock = clock
        self._db: Database | None = None
        self._db_lock = asyncio.Lock()
        self.sub_title = f"profile {profile.name} · {profile.region}" + (
            " · READ-ONLY" if read_only else ""
        )
        #: Runs queued from this console, followed until they end: run id -> (name, kind).
        self.watching: dict[int, tuple[str, str]] = {}

    def on_mount(self) -> None:
        self.push_screen(DeploymentsScreen())
        self.set_interval(1.0, self._watch_runs)
        # Warm slow imports only once the first frame is on screen.
        self.call_after_refresh(self.warm_imports)
        if self.profile.is_sandbox and self.start_sandbox:
            self.call_after_refresh(self.bring_up_sandbox)

    async def database(self) -> Database:
        """The console's one connection to the state database, opened on first use and
        kept (every screen and worker shares it)."""
        async with self._db_lock:
            if self._db is None:
                from storage import open_database

                self._db = await open_database(self.db_path)
            return self._db

    async def on_unmount(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None

    @work(thread=True, group="warm", exit_on_error=False, description="Importing the AWS SDK")
    def warm_imports(self) -> None:
        import boto3  # noqa: F401

    @work(
        thread=True,
        group="sandbox",
        exclusive=True,
        exit_on_error=False,
        description="Starting the sandbox",
    )
    def bring_up_sandbox(self) -> None:
        from core import paths
        from core.sandbox import Sandbox, SandboxError

        self.post_message(SandboxState("starting", "starting the local cloud..."))
        try:
            info = Sandbox(paths.sandbox_dir()).up()
        except SandboxError as exc:
            self.post_message(SandboxState("failed", f"sandbox failed to start: {exc}"))
            return
        self.post_message(SandboxState("running", f"AWS at {info.aws_endpoint}"))

    @on(SandboxState)
    def sandbox_changed(self, message: SandboxState) -> None:
        self.sandbox_detail = message.detail

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return not (action == "new_deploy" and self.read_only)

    def action_new_deploy(self) -> None:
        """The wizard, where it was left (a deploy started from it clears it)."""
        from tui.screens.wizard import DeployWizard

        # Installed, so leaving it (pop) keeps its widgets and what was typed.
        if not self.is_screen_installed("wizard"):
            self.install_screen(DeployWizard(), "wizard")
        self.push_screen("wizard")

    @on(WizardDone)
    def wizard_done(self, message: WizardDone) -> None:
        from tui.screens.deployment import DeploymentScreen

        self.pop_screen()
        self.uninstall_screen("wizard")
        self.push_screen(DeploymentScreen(message.name))

    @on(RunQueued)
    def run_queued(self, message: RunQueued) -> None:
        self.notify(f"queued {message.kind} of {message.name} (run {message.run_id})")
        self.watching[message.run_id] = (message.name, message.kind)

    def _watch_runs(self) -> None:
        if self.watching:
            self.check_runs()

    @work(exclusive=True, group="runs", exit_on_error=False, description="Following runs")
    async def check_runs(self) -> None:
        """Say when a run queued here ends, and how (the failing step and why)."""
        from storage import Queries

        queries = Queries(await self.database())
        for run_id, (name, kind) in list(self.watching.items()):
            run = await queries.get_run(run_id)
            if run is None or run.state not in ("succeeded", "failed", "cancelled"):
                continue
            del self.watching[run_id]
            if run.state == "succeeded":
                self.notify(f"{kind} of {name} succeeded", timeout=8)
            else:
                self.notify(
                    run.error or f"{kind} of {name} {run.state}",
                    title=f"{kind} of {name} failed",
                    severity="error",
                    timeout=15,
                )


def run_console(*, profile: Profile, db_path: Path, read_only: bool = False) -> None:
    ToastApp(profile, db_path, read_only=read_only).run()
