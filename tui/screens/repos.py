"""The Repos screen: the user's repositories (in the sandbox, its git host's), searchable as
you type, read a page at a time in the background and cached; a typed owner/name or git URL
works too. Enter starts the deploy wizard on the chosen one."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Header, Input, Static

from core.profile.targets import TargetError, resolve_target
from core.repo.github import Repo
from core.repo.listing import CACHE, ReposUnavailable, looks_like_repo, repo_pages
from core.views import read_models
from tui.base import ToastNode
from tui.widgets.banner import ProfileBanner
from tui.widgets.footer import Footer
from tui.widgets.row_table import RowTable

COLUMNS = (("Repository", 40), ("Branch", 14), ("Visibility", 10), ("Clone URL", 60))


@dataclass
class ReposPage(Message):
    repos: list[Repo]
    done: bool
    #: The whole list once read: repos shown before (saved, or before `r`) but gone drop.
    replace: list[Repo] | None = None
    #: Set when the repos are the list saved by an earlier session: how old it is.
    saved_age: str | None = None


@dataclass
class ReposFailed(Message):
    error: str


class ReposScreen(ToastNode, Screen[None]):
    BINDINGS = [
        Binding("enter", "deploy", "Deploy this"),
        Binding("slash", "search", "Search", priority=True),
        Binding("r", "reload", "Reload"),
        Binding("j", "move(1)", "Down", show=False),
        Binding("k", "move(-1)", "Up", show=False),
        Binding("escape", "clear", "Clear search", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.repos: dict[str, Repo] = {}
        self.search_text = ""
        self.loading = False
        self.saved_age: str | None = None
        #: The last listing failed (the sandbox was not up, the network was down): it is
        #: tried again when the screen is shown again, and when the sandbox comes up.
        self.failed_last = False
        self.waiting_for_sandbox = False

    def compose(self) -> ComposeResult:
        yield Header()
        yield ProfileBanner(id="banner")
        yield Input(
            placeholder="search your repositories, or type owner/name or a git URL",
            id="repo-search",
        )
        yield RowTable(COLUMNS, id="repos")
        yield Static("", id="repos-status")
        yield Footer()

    @property
    def table(self) -> RowTable:
        return self.query_one("#repos", RowTable)

    def on_mount(self) -> None:
        self.title = "Repositories"
        self.table.focus()  # keys work at once; / searches
        self.watch(self.app, "sandbox_state", self.sandbox_state_changed, init=False)
        self.load_when_ready(reload=False)

    def on_screen_resume(self) -> None:
        if self.failed_last and not self.loading:
            self.load_when_ready(reload=True)

    def load_when_ready(self, *, reload: bool) -> None:
        """List now, or, while this console is still starting the sandbox, say so and list
        once it is up (no key needed)."""
        if self.toast.sandbox_state == "starting":
            self.waiting_for_sandbox = True
            self.query_one("#repos-status", Static).update(
                "starting the local cloud... its repositories appear here once it is up"
            )
            return
        self.waiting_for_sandbox = False
        self.load(reload=reload)

    def sandbox_state_changed(self, state: str) -> None:
        if state == "running" and (self.waiting_for_sandbox or self.failed_last):
            self.load_when_ready(reload=True)
        elif state == "failed" and self.waiting_for_sandbox:
            self.waiting_for_sandbox = False
            self.failed_last = True
            self.query_one("#repos-status", Static).update(
                f"{self.toast.sandbox_detail}; r tries again"
            )

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "search" and isinstance(self.focused, Input):
            return False  # typing a URL: "/" is a character there
        return not (action == "deploy" and not self.toast.may("deploy"))

    # -- loading ------------------------------------------------------------------------

    @work(exclusive=True, group="repos", exit_on_error=False, description="Listing repositories")
    async def load(self, *, reload: bool) -> None:
        try:
            target = await asyncio.to_thread(resolve_target, self.toast.profile)
        except TargetError as exc:
            self.post_message(ReposFailed(str(exc)))
            return
        cached = None if reload else CACHE.get(target)
        if cached is not None:
            self.post_message(ReposPage(cached, True))
            return
        saved = None if reload else await asyncio.to_thread(CACHE.saved, target)
        if saved is not None:
            age = read_models.age(max(0.0, self.toast.clock() - saved.saved_at))
            self.post_message(ReposPage(saved.repos, False, saved_age=age))
        self.loading = True
        current: list[Repo] = []
        try:
            async for page in repo_pages(target):
                current += page
                self.post_message(ReposPage(page, False))
        except ReposUnavailable as exc:
            shown = f" (showing the list saved {age} ago)" if saved is not None else ""
            self.post_message(ReposFailed(f"{exc}{shown}"))
            return
        finally:
            self.loading = False
        self.post_message(ReposPage([], True, replace=current))  # drops repos gone since

    @on(ReposPage)
    def page_arrived(self, message: ReposPage) -> None:
        self.failed_last = False
        if message.saved_age is not None:
            self.saved_age = message.saved_age
        if message.replace is not None:
            self.repos = {r.full_name: r for r in message.replace}
            self.saved_age = None
        self.repos.update((r.full_name, r) for r in message.repos)
        self._show()
        if message.done:
            progress = ""
        elif self.saved_age is not None:
            progress = f" (saved {self.saved_age} ago), checking for changes..."
        else:
            progress = " so far, reading more..."
        self.query_one("#repos-status", Static).update(
            f"{len(self.repos)} repositories{progress}"
            " · enter deploys the selected one; a typed owner/name or git URL works too"
        )

    @on(ReposFailed)
    def failed(self, message: ReposFailed) -> None:
        self.failed_last = True
        self.query_one("#repos-status", Static).update(f"{message.error} · r tries again")

    def _show(self) -> None:
        wanted = self.search_text
        self.table.replace_all(
            {
                name: (name, r.default_branch, "private" if r.private else "public", r.clone_url)
                for name, r in self.repos.items()
                if not wanted or wanted in name.lower()
            }
        )

    # -- keys ---------------------------------------------------------------------------

    @on(Input.Changed, "#repo-search")
    def search_changed(self, event: Input.Changed) -> None:
        self.search_text = event.value.strip().lower()
        self._show()

    def on_key(self, event: object) -> None:
        # down from the search box goes to the list
        if getattr(event, "key", "") == "down" and isinstance(self.focused, Input):
            self.table.focus()

    @on(Input.Submitted, "#repo-search")
    def search_submitted(self, event: Input.Submitted) -> None:
        typed = event.value.strip()
        if self.table.row_count == 1 or (self.table.row_count and not looks_like_repo(typed)):
            self.table.focus()
            if self.table.row_count == 1:
                self.action_deploy()
        elif looks_like_repo(typed):
            self._start(typed, None)
        else:
            self.query_one("#repos-status", Static).update(
                f"{typed!r} matches no repository and is not owner/name or a git URL"
            )

    @on(RowTable.Selected, "#repos")
    def chosen(self) -> None:
        self.action_deploy()

    def action_deploy(self) -> None:
        key = self.table.cursor_key
        if key is None:
            self.notify("no repository selected: type one above", severity="warning")
            return
        repo = self.repos[key]
        self._start(repo.full_name, repo.default_branch)

    def _start(self, repo: str, branch: str | None) -> None:
        if not self.toast.may("deploy"):
            self.notify(self.toast.refusal("deploy"), severity="warning")
            return
        self.table.focus()  # coming back, the section keys work at once
        self.toast.start_wizard(repo, branch)

    def action_search(self) -> None:
        self.set_focus(self.query_one("#repo-search", Input))

    def action_clear(self) -> None:
        box = self.query_one("#repo-search", Input)
        if box.value:
            box.value = ""
        else:
            self.table.focus()

    def action_move(self, delta: int) -> None:
        self.table.action_move(delta)

    def action_reload(self) -> None:
        self.load_when_ready(reload=True)
