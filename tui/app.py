"""The Toast console application."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import App
from textual.reactive import reactive

from core.profile.config import Profile
from core.runs.access import Actor, ReadOnlyError
from core.runs.access import actor as actor_for
from core.runs.launcher import serve_pid
from core.runs.states import Trigger
from storage import Queries, open_database
from tui import lazy
from tui.actions import (
    ACTIONS,
    BY_NAME,
    BY_WORD,
    KIND_OF,
    MUTATING,
    Action,
    Scope,
    bar_help,
    bindings,
)
from tui.commands import ActionCommands
from tui.messages import RunQueued, SandboxState, WizardDone
from tui.screens.deployments import DeploymentsScreen
from tui.themes import HIGH_CONTRAST, TEXTUAL_THEMES

if TYPE_CHECKING:
    from storage import Database


#: Seconds after start-up before boto3 is imported in the background.
WARM_AFTER_S = 1.5
#: How often the console looks for a `toast serve` of its data directory.
SERVE_CHECK_S = 5.0


class ToastApp(App[None]):
    TITLE = "Toast"
    CSS_PATH = Path(__file__).parent / "toast.tcss"  # absolute: subclasses elsewhere work
    COMMANDS = App.COMMANDS | {ActionCommands}
    #: The sections, on 1-4 (each keeps its own stack of screens). The console opens on
    #: the first as Textual's start-up mode (switching to it from Textual's default screen
    #: in on_mount built and styled that screen too, and restyled everything twice).
    DEFAULT_MODE = "deployments"
    MODES = {
        "deployments": DeploymentsScreen,
        # imported when first opened: start-up loads only what the first screen needs
        "repos": lambda: lazy.section("repos", "ReposScreen"),
        "activity": lambda: lazy.section("activity", "ActivityScreen"),
        "profiles": lambda: lazy.section("profiles", "ProfilesScreen"),
    }
    #: The app-wide keys of the action table (sections, help, the `:` bar, quit).
    BINDINGS = bindings(Scope.APP)

    #: What the sandbox is doing, shown in the banner ("" when not in the sandbox).
    sandbox_detail: reactive[str] = reactive("")
    #: "starting", "running" or "failed" while this console brings the sandbox up ("" when
    #: it does not): screens that need it wait for "running" and then fill in by themselves.
    sandbox_state: reactive[str] = reactive("")
    #: Whether a `toast serve` runs for this data directory (pushes redeploy only then).
    serve_status: reactive[str] = reactive("")

    def __init__(
        self,
        profile: Profile,
        db_path: Path,
        *,
        start_sandbox: bool = True,
        read_only: bool = False,
        theme: str = "dark",
        clock: Callable[[], float] = time.time,
        actor: Actor | None = None,
    ) -> None:
        super().__init__()
        self.register_theme(HIGH_CONTRAST)
        self.theme = TEXTUAL_THEMES.get(theme, "textual-dark")

        #: Who works here, and their role: what they may not do is hidden and explained,
        #: and the engine refuses it too (a viewer, or --read-only, looks only).
        self.actor = actor or actor_for(Trigger.CONSOLE, read_only=read_only)
        self.read_only = self.actor.read_only
        self.profile = profile
        self.db_path = db_path
        self.start_sandbox = start_sandbox
        #: Where "now" comes from (snapshot tests fix it).
        self.clock = clock
        self._db: Database | None = None
        #: Every deployment the list has read, and its profile (for `:logs NAME`).
        self.profile_of: dict[str, str] = {}
        self._db_lock = asyncio.Lock()
        self.sub_title = self._subtitle()
        #: Runs queued from this console, followed until they end: run id -> (name, kind).
        self.watching: dict[int, tuple[str, str]] = {}
        #: The section whose stack holds the wizard, while it is open somewhere.
        self.wizard_mode: str | None = None
        #: Whether the first frame has been shown (Textual's Ready): until then footers
        #: wait to build their keys, so the first frame does not wait for them.
        self.first_frame_shown = False

    def on_mount(self) -> None:
        self.set_interval(1.0, self._watch_runs)
        self._check_serve()
        self.set_interval(SERVE_CHECK_S, self._check_serve)
        # Warm slow imports once the list is on screen: importing boto3 holds the GIL for
        # a few hundred milliseconds, which the first rows would otherwise wait behind.
        self.set_timer(WARM_AFTER_S, self.warm_imports)
        if os.environ.get("TOAST_REMOTE") == "1":
            # Served over SSH: the server signals a minute before an idle session ends.
            with contextlib.suppress(NotImplementedError, RuntimeError):
                asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, self._idle_warning)
        if self.profile.is_sandbox and self.start_sandbox:
            self.sandbox_state = "starting"  # before any screen asks (the worker starts later)
            self.call_after_refresh(self.bring_up_sandbox)

    def on_ready(self) -> None:
        """The first frame is on screen: the footers' keys can be built now."""
        self.first_frame_shown = True
        self.screen.refresh_bindings()

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

    @work(
        thread=True,
        group="warm",
        exit_on_error=False,
        description="Importing the AWS SDK and the other screens",
    )
    def warm_imports(self) -> None:
        import boto3  # noqa: F401

        lazy.warm()  # the other screens and operations: their first use does not wait

    @work(
        thread=True,
        group="sandbox",
        exclusive=True,
        exit_on_error=False,
        description="Starting the sandbox",
    )
    def bring_up_sandbox(self) -> None:
        self.post_message(SandboxState("starting", "starting the local cloud..."))
        started, detail = lazy.operations().sandbox_up()
        self.post_message(SandboxState("running" if started else "failed", detail))

    def _idle_warning(self) -> None:
        self.notify(
            "No input for a while: this SSH session ends soon (in a minute at most) unless "
            "you press a key.",
            title="idle",
            severity="warning",
            timeout=60,
        )

    def _check_serve(self) -> None:
        pid = serve_pid()  # a non-blocking lock probe: cheap enough for the event loop
        self.serve_status = "serve: off" if pid is None else f"serve: on (pid {pid})"

    @on(SandboxState)
    def sandbox_changed(self, message: SandboxState) -> None:
        self.sandbox_detail = message.detail
        self.sandbox_state = message.state

    # -- the action table: every key, palette entry and `:` word ends here -----------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "perform" and parameters:
            name = str(parameters[0])
            return not (name in MUTATING and not self.may_action(BY_NAME[name]))
        return True

    def may(self, kind: str) -> bool:
        """Whether this console's actor may `kind` (a run kind): the engine decides the
        same way, so hiding a key is a courtesy, not the check."""
        return self.actor.may(kind)

    def may_action(self, action: Action) -> bool:
        return not action.mutating or self.may(KIND_OF[action.name])

    def refusal(self, kind: str) -> str:
        """Why `kind` is not offered, in the words the engine would refuse it with."""
        return str(ReadOnlyError(self.actor, kind))

    def _subtitle(self) -> str:
        who = self.actor
        person = f" · {who.name.rsplit('@', 1)[0]} ({who.role})" if who.via == Trigger.SSH else ""
        return f"profile {self.profile.name} · {self.profile.region}{person}" + (
            " · READ-ONLY" if who.read_only and who.via != Trigger.SSH else ""
        )

    def action_perform(self, name: str) -> None:
        self.perform(name)

    def perform(
        self,
        name: str,
        target: str | None = None,
        *,
        argument: str | None = None,
        sha: str | None = None,
    ) -> None:
        """Run action `name` of the table, on deployment `target` when it acts on one, from
        whichever screen is showing."""
        action = BY_NAME[name]
        if not self.may_action(action) and action.scope is Scope.APP:
            self.notify(self.refusal(KIND_OF[action.name]), title=action.title, severity="warning")
            return
        if action.scope is Scope.DEPLOYMENT:
            if target is None:
                self.notify(f"{action.title}: which deployment? (:{action.word} NAME)")
                return
            self.on_deployment(name, target, sha=sha)
            return
        if name.startswith("section_"):
            mode = name.removeprefix("section_")
            if mode == self.current_mode:  # asked from a screen of that section: its list
                while len(self.screen_stack) > 1:
                    self.pop_screen()
            else:
                self.switch_mode(mode)
        elif name == "new_deploy":
            self.start_wizard(None, None)
        elif name == "help":
            if self.screen.query("HelpPanel"):
                self.action_hide_help_panel()
            else:
                self.action_show_help_panel()
        elif name == "command_bar":
            self.push_screen(
                lazy.command_bar_screen(self.known_names, allowed=self.may_action), self.run_command
            )
        elif name == "theme":
            if argument not in TEXTUAL_THEMES:
                self.notify(f"theme: one of {action.argument}", severity="error")
            else:
                self.theme = TEXTUAL_THEMES[argument]
        elif name == "quit":
            self.exit()

    def on_deployment(self, name: str, target: str, *, sha: str | None = None) -> None:
        if name in ("redeploy", "rollback"):
            self.queue_action(name, target, sha=sha)
        elif name == "destroy" and self.may("destroy"):
            self.confirm_destroy(target)
        elif name == "destroy":  # refused (and audited) by the queue, with no dialog first
            self.queue_action(name, target)
        else:
            self.look_at(name, target)

    @work(group="look", exit_on_error=False, description="Finding the deployment")
    async def look_at(self, name: str, target: str) -> None:
        """open, logs, open_url and copy_url: each needs the deployment's record."""
        d = await Queries(await self.database()).get_deployment(target)
        if d is None:
            self.notify(f"no deployment named {target!r}; see :deploys", severity="error")
        elif name == "open":
            self.push_screen(lazy.deployment_screen(d.name))
        elif name == "logs":
            self.push_screen(lazy.logs_screen(d.name, d.profile))
        elif name == "copy_url":
            self.copy_to_clipboard(f"https://{d.fqdn}/")  # OSC 52: works over SSH
            self.notify(f"copied https://{d.fqdn}/")
        elif name == "open_url":
            url, command = await asyncio.to_thread(lazy.operations().reach, self.profile, d.fqdn)
            if command is None:
                self.open_url(url)  # the browser here, or the user's over textual-serve
                self.notify(f"opening {url} (c copies it)")
                return
            # Sandbox names are in no public DNS: a browser cannot reach them, curl can.
            self.copy_to_clipboard(command)
            self.notify(
                f"{url} is in the sandbox; reach it with (copied): {command}",
                title="open",
                timeout=20,
            )

    @work(group="look", exit_on_error=False, description="Asking before destroying")
    async def confirm_destroy(self, target: str) -> None:
        d = await Queries(await self.database()).get_deployment(target)
        if d is None:
            self.notify(f"no deployment named {target!r}; see :deploys", severity="error")
            return

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.queue_action("destroy", d.name)

        self.push_screen(lazy.confirm_destroy_screen(d.name, d.fqdn), confirmed)

    @work(group="actions", exit_on_error=False, description="Queuing a run")
    async def queue_action(self, kind: str, name: str, sha: str | None = None) -> None:
        """Queue a run through core (which refuses, and audits, a read-only actor)."""
        queries = Queries(await self.database())
        queued = await lazy.operations().queue(queries, kind, name, self.actor, sha)
        if queued.run_id is None:
            self.notify(queued.refusal, title=kind, severity=queued.severity)
            return
        self.post_message(RunQueued(name, kind, queued.run_id))

    def explain_read_only(self, key: str) -> bool:
        """A key of an action this actor may not do (a read-only console, a viewer, a
        deployer's destroy): say why nothing happens."""
        for action in ACTIONS:
            if action.key == key and not self.may_action(action):
                self.notify(
                    self.refusal(KIND_OF[action.name]), title=action.title, severity="warning"
                )
                return True
        return False

    @property
    def known_names(self) -> list[str]:
        return sorted(self.profile_of)

    def run_command(self, command: str | None) -> None:
        """What the `:` bar was told: a word of the action table, with a deployment's NAME
        or the action's argument."""
        if not command:
            return
        word, _, arg = command.partition(" ")
        arg = arg.strip()
        action = BY_WORD.get(word) or (BY_WORD.get("quit") if word == "q" else None)
        if word == "deployments":
            action = BY_NAME["section_deployments"]
        takes = action is not None and (action.scope is Scope.DEPLOYMENT or action.argument)
        if action is None or bool(arg) != bool(takes):
            self.notify(
                f"unknown command {command!r}: try {bar_help(allowed=self.may_action)}",
                severity="error",
            )
            return
        if not self.may_action(action):
            self.notify(self.refusal(KIND_OF[action.name]), title=action.title, severity="warning")
            return
        if action.scope is Scope.DEPLOYMENT:
            self.perform(action.name, arg)
        else:
            self.perform(action.name, argument=arg or None)

    def use_profile(self, profile: Profile) -> None:
        """New deploys (and the wizard's checks) go to `profile` from now on."""
        self.profile = profile
        self.sub_title = self._subtitle()
        self.sandbox_detail = ""
        self.mutate_reactive(ToastApp.sandbox_detail)  # the banners redraw
        self.notify(f"new deploys use profile {profile.name}")
        if profile.is_sandbox and self.start_sandbox:
            self.sandbox_state = "starting"
            self.bring_up_sandbox()
        else:
            self.sandbox_state = ""

    def start_wizard(self, repo: str | None, branch: str | None) -> None:
        if not self.may("deploy"):  # whichever path led here
            self.notify(self.refusal("deploy"), severity="warning")
            return

        # Installed, so leaving it (pop) keeps its widgets and what was typed.
        wizard_class = lazy.wizard_class()
        if not self.is_screen_installed("wizard"):
            self.install_screen(wizard_class(), "wizard")
        wizard = self.get_screen("wizard", wizard_class)
        if repo is not None:
            wizard.start_with(repo, branch)
        if self.screen is wizard:
            wizard.on_screen_resume()
            return
        if self.wizard_mode is not None and self.wizard_mode != self.current_mode:
            self.switch_mode(self.wizard_mode)  # left open in another section: go back there
        if wizard in self.screen_stack:
            while self.screen is not wizard:
                self.pop_screen()
            return
        self.wizard_mode = self.current_mode
        self.push_screen(wizard)

    @on(WizardDone)
    def wizard_done(self, message: WizardDone) -> None:
        self.wizard_mode = None
        self.pop_screen()
        self.uninstall_screen("wizard")
        self.push_screen(lazy.deployment_screen(message.name))

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


def run_console(
    *, profile: Profile, db_path: Path, theme: str = "dark", actor: Actor | None = None
) -> None:
    ToastApp(profile, db_path, theme=theme, actor=actor).run()
