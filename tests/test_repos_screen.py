"""The Repos screen on the sandbox's git host: every page of the list, a second look served
from memory, and a new session showing the list saved by the last one at once, then
brought up to date (repos added and removed since) or kept, with the reason, when GitHub
cannot be read."""

from __future__ import annotations

import asyncio
import shutil
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from core.profile import paths
from core.profile.config import sandbox_profile
from core.repo.github import GitHub, GitHubError, Repo
from core.repo.listing import CACHE
from core.sandbox.controller import SandboxInfo, githost
from tui.app import ToastApp
from tui.screens.repos import ReposScreen

from .helpers.waiting import until


def _names(screen: Any) -> set[str]:
    table = screen.query_one("#repos")
    return {table.get_row_at(i)[0] for i in range(table.row_count)}


def _status(screen: Any) -> str:
    return str(screen.query_one("#repos-status").render())


def _saved_file(sandbox: SandboxInfo) -> tuple[int, bool]:
    """The saved list's permissions, and whether the GitHub token is anywhere in it."""
    token = Path(sandbox.github_token_file).read_text().strip()
    assert token
    return stat.S_IMODE(CACHE.path.stat().st_mode), token in CACHE.path.read_text()


async def _open_repos(pilot: Any) -> Any:
    await pilot.press("2")
    await until(pilot, lambda: isinstance(pilot.app.screen, ReposScreen), "the Repos screen")
    return pilot.app.screen


async def test_repos_are_listed_in_full_then_remembered_across_sessions(
    sandbox: SandboxInfo, session_sandbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    layout = session_sandbox.layout
    for n in range(130):  # two pages of 100
        githost.create_repo(layout, f"many/repo-{n:03d}")
    gate = asyncio.Event()
    real_pages = GitHub.my_repo_pages
    failure: list[GitHubError] = []

    async def held_pages(self: GitHub, **kw: Any) -> AsyncIterator[list[Repo]]:
        await gate.wait()  # the network, held so the test sees what shows before it answers
        if failure:
            raise failure[0]
        async for page in real_pages(self, **kw):
            yield page

    CACHE.lists.clear()
    try:
        everything = set(githost.list_repos(layout))
        assert len(everything) > 130
        app = ToastApp(sandbox_profile(), paths.database_path(), start_sandbox=False)
        async with app.run_test(size=(160, 45)) as pilot:
            screen = await _open_repos(pilot)
            await until(pilot, lambda: _names(screen) == everything, "every page of repos")
            await until(pilot, lambda: "reading more" not in _status(screen), "the end")
            assert f"{len(everything)} repositories" in _status(screen)

        # Saved for the next session: owner-only, and without the token.
        mode, holds_token = _saved_file(sandbox)
        assert mode == 0o600 and not holds_token

        # The same process: the list is in memory, GitHub is not asked again.
        monkeypatch.setattr(GitHub, "my_repo_pages", held_pages)
        app = ToastApp(sandbox_profile(), paths.database_path(), start_sandbox=False)
        async with app.run_test(size=(160, 45)) as pilot:
            screen = await _open_repos(pilot)
            await until(pilot, lambda: _names(screen) == everything, "the remembered list")
            assert "checking" not in _status(screen)  # from memory, not the saved file

        # A new session (nothing in memory) while repos came and went.
        githost.create_repo(layout, "many/added-later")
        shutil.rmtree(layout.bare_repo("many/repo-000"))
        CACHE.lists.clear()
        app = ToastApp(sandbox_profile(), paths.database_path(), start_sandbox=False)
        async with app.run_test(size=(160, 45)) as pilot:
            screen = await _open_repos(pilot)
            await until(pilot, lambda: _names(screen) == everything, "the saved list, at once")
            assert "saved" in _status(screen) and "checking for changes" in _status(screen)
            gate.set()
            await until(pilot, lambda: "many/added-later" in _names(screen), "the repo added since")
            await until(
                pilot, lambda: "many/repo-000" not in _names(screen), "the repo removed since"
            )
            await until(pilot, lambda: "saved" not in _status(screen), "the status")
            # `r` reads the list again, and what went meanwhile goes from the screen too.
            shutil.rmtree(layout.bare_repo("many/repo-001"))
            await pilot.press("r")
            await until(
                pilot, lambda: "many/repo-001" not in _names(screen), "the repo removed before r"
            )

        # Next session, GitHub failing: the saved list stays, and the status says why.
        gate.clear()
        failure.append(GitHubError("list repos", 503, "Service Unavailable"))
        CACHE.lists.clear()
        app = ToastApp(sandbox_profile(), paths.database_path(), start_sandbox=False)
        async with app.run_test(size=(160, 45)) as pilot:
            screen = await _open_repos(pilot)
            await until(
                pilot, lambda: "many/added-later" in _names(screen), "the list saved last time"
            )
            gate.set()
            await until(pilot, lambda: "HTTP 503" in _status(screen), "the reason")
            assert "showing the list saved" in _status(screen)
            assert "many/added-later" in _names(screen)
    finally:
        shutil.rmtree(layout.git_root / "many", ignore_errors=True)
        CACHE.lists.clear()
