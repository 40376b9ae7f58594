"""The Toast console application."""

from __future__ import annotations

import asyncio
import importlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import App
from textual.binding import Binding
from textual.reactive import reactive
from textual.screen import Screen

from core.profile import paths
from core.profile.config import Profile
from core.runs.access import actor
from core.runs.states import Trigger
from core.sandbox.controller import Sandbox, SandboxError
from storage import Queries, open_database
from tui.commands import DeploymentCommands
from tui.messages import RunQueued, SandboxState, WizardDone
from tui.screens.command_bar import CommandBar
from tui.screens.deployment import DeploymentScreen
from tui.screens.deployments import DeploymentsScreen
from tui.screens.logs import LogsScreen
from tui.screens.wizard import DeployWizard
from tui.themes import HIGH_CONTRAST, TEXTUAL_THEMES

if TYPE_CHECKING:
    from storage import Database


#: Seconds after start-up before boto3 is imported in the background.
WARM_AFTER_S = 1.5


class ToastApp(App[None]):
    TITLE = "Toast"
    CSS_PATH = Path(__file__).parent / "toast.tcss"  # absolute: subclasses elsewhere work
    COMMANDS = App.COMMANDS | {DeploymentCommands}
    #: The sections, on 1-4 (each keeps its own stack of screens).
    MODES = {
        "deployments": DeploymentsScreen,
        # imported when first opened: start-up loads only what the first screen needs
        "repos": lambda: _screen("repos", "ReposScreen"),
        "activity": lambda: _screen("activity", "ActivityScreen"),
        "profiles": lambda: _screen("profiles", "ProfilesScreen"),
    }
    BINDINGS = [
        Binding("1", "section('deployments')", "Deploys", show=False),
        Binding("2", "section('repos')", "Repos", show=False),
        Binding("3", "section('activity')", "Activity", show=False),
        Binding("4", "section('profiles')", "Profiles", show=False),
        Binding("question_mark", "toggle_help", "Help"),
        Binding("colon", "command_bar", "Command", show=False),
    ]

    #: What the sandbox is doing, shown in the banner ("" when not in the sandbox).
    sandbox_detail: reactive[str] = reactive("")

    def __init__(
        self,
        profile: Profile,
        db_path: Path,
        *,
        start_sandbox: bool = True,
        read_only: bool = False,
        theme: str = "dark",
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.register_theme(HIGH_CONTRAST)
        self.theme = TEXTUAL_THEMES.get(theme, "textual-dark")

        #: Look, never change: mutating keys are hidden, and the engine refuses them too.
        self.read_only = read_only
        self.actor = actor(Trigger.CONSOLE, read_only=read_only)
        self.profile = profile
        self.db_path = db_path
        self.start_sandbox = start_sandbox
        #: Where "now" comes from (snapshot tests fix it).
        self.clock = clock
        self._db: Database | None = None
        #: Every deployment the list has read, and its profile (for `:logs NAME`).
        self.profile_of: dict[str, str] = {}
        self._db_lock = asyncio.Lock()
        self.sub_title = f"profile {profile.name} · {profile.region}" + (
            " · READ-ONLY" if read_only else ""
        )
        #: Runs queued from this console, followed until they end: run id -> (name, kind).
        self.watching: dict[int, tuple[str, str]] = {}

    def on_mount(self) -> None:
        self.switch_mode("deployments")
        self.set_interval(1.0, self._watch_runs)
        # Warm slow imports once the list is on screen: importing boto3 holds the GIL for
        # a few hundred milliseconds, which the first rows would otherwise wait behind.
        self.set_timer(WARM_AFTER_S, self.warm_imports)
        if self.profile.is_sandbox and self.start_sandbox:
            self.call_after_refresh(self.bring_up_sandbox)

    async def database(self) -> Database:
        """The console's one connection to the state database, opened on first use and
        kept (every screen and worker shares it)."""
        async with self._db_lock:
            if self._db is None:
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

    def action_section(self, mode: str) -> None:
        self.switch_mode(mode)

    def action_toggle_help(self) -> None:
        """Textual's help panel: the keys of the focused view and what each does."""
        if self.screen.query("HelpPanel"):
            self.action_hide_help_panel()
        else:
            self.action_show_help_panel()

    def action_command_bar(self) -> None:
        self.push_screen(CommandBar(self.known_names, read_only=self.read_only), self.run_command)

    @property
    def known_names(self) -> list[str]:
        return sorted(self.profile_of)

    def run_command(self, command: str | None) -> None:
        """What the `:` bar was told: a section, an action on a deployment, or a setting."""
        if not command:
            return
        word, _, arg = command.partition(" ")
        arg = arg.strip()
        sections = {
            "deploys": "deployments",
            "deployments": "deployments",
            "repos": "repos",
            "activity": "activity",
            "profiles": "profiles",
        }
        if word in sections and not arg:
            self.switch_mode(sections[word])
        elif word in ("logs", "open") and arg:
            if arg not in self.known_names:
                self.notify(f"no deployment named {arg!r}; see :deploys", severity="error")
            elif word == "logs":
                self.push_screen(LogsScreen(arg, self.profile_of.get(arg, self.profile.name)))
            else:
                self.push_screen(DeploymentScreen(arg))
        elif word == "deploy" and not arg:
            if self.read_only:
                self.notify(
                    "read-only console: deploys are refused (open it without --read-only to "
                    "deploy)",
                    severity="warning",
                )
            else:
                self.action_new_deploy()
        elif word == "theme" and arg in TEXTUAL_THEMES:
            self.theme = TEXTUAL_THEMES[arg]
        elif word == "help":
            self.action_show_help_panel()
        elif word in ("quit", "q"):
            self.exit()
        else:
            self.notify(
                f"unknown command {command!r}: try :deploys, :repos, :activity, :profiles, "
                ":logs NAME, :open NAME, :deploy, :theme dark|light|high-contrast, :quit",
                severity="error",
            )

    def use_profile(self, profile: Profile) -> None:
        """New deploys (and the wizard's checks) go to `profile` from now on."""
        self.profile = profile
        self.sub_title = f"profile {profile.name} · {profile.region}" + (
            " · READ-ONLY" if self.read_only else ""
        )
        self.sandbox_detail = ""
        self.mutate_reactive(ToastApp.sandbox_detail)  # the banners redraw
        self.notify(f"new deploys use profile {profile.name}")
        if profile.is_sandbox and self.start_sandbox:
            self.bring_up_sandbox()

    def action_new_deploy(self) -> None:
        """The wizard, where it was left (a deploy started from it clears it)."""
        self.start_wizard(None, None)

    def start_wizard(self, repo: str | None, branch: str | None) -> None:
        if self.read_only:  # whichever path led here: a read-only console never deploys
            self.notify("read-only console: deploys are refused", severity="warning")
            return

        # Installed, so leaving it (pop) keeps its widgets and what was typed.
        if not self.is_screen_installed("wizard"):
            self.install_screen(DeployWizard(), "wizard")
        wizard = self.get_screen("wizard")
        if repo is not None:
            wizard.start_with(repo, branch)  # type: ignore[attr-defined]
        if self.screen is wizard:
            wizard.on_screen_resume()  # type: ignore[attr-defined]
            return
        for mode, stack in self._screen_stacks.items():
            if wizard in stack:  # left open in another section: go back to it there
                self.switch_mode(mode)
                while self.screen is not wizard:
                    self.pop_screen()
                return
        self.push_screen(wizard)

    @on(WizardDone)
    def wizard_done(self, message: WizardDone) -> None:
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


def _screen(module: str, name: str) -> Screen[None]:
    screen: Screen[None] = getattr(importlib.import_module(f"tui.screens.{module}"), name)()
    return screen


def run_console(
    *, profile: Profile, db_path: Path, read_only: bool = False, theme: str = "dark"
) -> None:
    ToastApp(profile, db_path, read_only=read_only, theme=theme).run()
