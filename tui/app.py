"""The Toast console application."""

from __future__ import annotations

from pathlib import Path

from textual import on, work
from textual.app import App
from textual.reactive import reactive

from core.config import Profile
from tui.messages import SandboxState
from tui.screens.deployments import DeploymentsScreen


class ToastApp(App[None]):
    TITLE = "Toast"
    CSS = """
    #empty { padding: 1 2; color: $text-muted; }
    DataTable { height: 1fr; }
    """

    #: What the sandbox is doing, shown in the banner ("" when not in the sandbox).
    sandbox_detail: reactive[str] = reactive("")

    def __init__(self, profile: Profile, db_path: Path, *, start_sandbox: bool = True) -> None:
        super().__init__()
        self.profile = profile
        self.db_path = db_path
        self.start_sandbox = start_sandbox
        self.sub_title = f"profile {profile.name} · {profile.region}"

    def on_mount(self) -> None:
        self.push_screen(DeploymentsScreen())
        # Warm slow imports only once the first frame is on screen.
        self.call_after_refresh(self.warm_imports)
        if self.profile.is_sandbox and self.start_sandbox:
            self.call_after_refresh(self.bring_up_sandbox)

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


def run_console(*, profile: Profile, db_path: Path) -> None:
    ToastApp(profile, db_path).run()
