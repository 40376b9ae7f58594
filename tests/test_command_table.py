"""The console's one table of actions, tried from every screen: each command the palette
offers there, and each `:` word, does what it says, whichever screen it was asked from."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.command import CommandList, CommandPalette

from core.profile.config import sandbox_profile
from storage import Queries, open_database
from tui.actions import ACTIONS, Scope
from tui.app import ToastApp

from .helpers.builders import live_deployment
from .helpers.waiting import Story, palette_options, settled, until

#: How to reach each screen from a fresh console, and what it is called.
SCREENS: dict[str, tuple[str, ...]] = {
    "DeploymentsScreen": (),
    "ReposScreen": ("2",),
    "ActivityScreen": ("3",),
    "ProfilesScreen": ("4",),
    "DeploymentScreen": ("enter",),
}

#: The section each screen lives in.
MODES = {"ReposScreen": "repos", "ActivityScreen": "activity", "ProfilesScreen": "profiles"}


async def run_count(db_path: Path) -> int:
    db = await open_database(db_path)
    try:
        q = Queries(db)
        d = await q.get_deployment("blog")
        assert d is not None
        return len(await q.runs_for(d.id))
    finally:
        await db.close()


def effect_of(name: str, app: ToastApp, story: Story, runs_before: int) -> Callable[[], bool]:
    """What running action `name` (on the deployment "blog" when it takes one) must show."""
    screen = lambda: type(app.screen).__name__  # noqa: E731
    effects: dict[str, Callable[[], bool]] = {
        "section_deployments": lambda: screen() == "DeploymentsScreen",
        "section_repos": lambda: screen() == "ReposScreen",
        "section_activity": lambda: screen() == "ActivityScreen",
        "section_profiles": lambda: screen() == "ProfilesScreen",
        "new_deploy": lambda: screen() == "DeployWizard",
        "open": lambda: (
            screen() == "DeploymentScreen" and getattr(app.screen, "deployment_name", "") == "blog"
        ),
        "logs": lambda: screen() == "LogsScreen",
        "destroy": lambda: screen() == "ConfirmDestroy",
        "copy_url": lambda: any("copied https://blog.sandbox.test/" in n for n in story.notices),
        "open_url": lambda: any("https://blog.sandbox.test/" in n for n in story.notices),
        "help": lambda: bool(app.screen.query("HelpPanel")),
    }
    return effects[name]


async def back_to(app: ToastApp, pilot: Any, screen: str, keys: tuple[str, ...], home: str) -> None:
    """Leave whatever the last command opened (in this section and in the one it may have
    switched to), and stand on `screen` again."""
    if app.screen.query("HelpPanel"):
        app.action_hide_help_panel()
    for mode in dict.fromkeys((app.current_mode, home, "deployments")):
        app.switch_mode(mode)
        await pilot.pause()
        while len(app.screen_stack) > 1:
            app.pop_screen()
    await pilot.pause()
    await pilot.press(*keys)
    await until(pilot, lambda: type(app.screen).__name__ == screen, f"the {screen}")


@pytest.mark.parametrize("screen", list(SCREENS))
async def test_every_palette_command_and_colon_word_works_from_every_screen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, screen: str
) -> None:
    monkeypatch.setenv("TOAST_ENGINE_AUTOSTART", "0")  # queued is the effect; nothing runs
    db_path = tmp_path / "toast.db"
    await live_deployment(db_path)
    app = ToastApp(sandbox_profile(), db_path, start_sandbox=False)
    story = Story()
    keys = SCREENS[screen]
    home = MODES.get(screen, "deployments")
    tried: list[str] = []
    async with app.run_test(size=(160, 45), message_hook=story.hook) as pilot:
        await settled(app)
        for action in ACTIONS:
            if action.name in ("quit", "command_bar", "theme"):
                continue  # quit ends the run (tried last, below); the bar is itself a way in
            takes = action.scope is Scope.DEPLOYMENT
            for way in ("palette", "colon"):
                if way == "colon" and action.word is None:
                    continue
                await back_to(app, pilot, screen, keys, home)
                before = await run_count(db_path)
                if way == "palette":
                    title = f"{action.title} blog" if takes else action.title
                    await pilot.press("ctrl+p")
                    await until(pilot, lambda: isinstance(app.screen, CommandPalette), "palette")
                    offered = await palette_options(pilot, title)
                    assert title in offered, (screen, title, offered)
                    app.screen.query_one(CommandList).highlighted = offered.index(title)
                    await pilot.press("enter")
                else:
                    word = f"{action.word} blog" if takes else str(action.word)
                    await pilot.press("colon", *word, "enter")
                if action.name in ("redeploy", "rollback"):
                    await settled(app)
                    assert await run_count(db_path) == before + 1, (screen, way, action.name)
                else:
                    check = effect_of(action.name, app, story, before)
                    await until(pilot, check, f"{action.name} by {way} on {screen}", timeout=20)
                tried.append(f"{way}:{action.name}")
        # : theme, then : quit, which ends the console from here.
        await back_to(app, pilot, screen, keys, home)
        await pilot.press("colon", *"theme light", "enter")
        await until(pilot, lambda: app.theme == "textual-light", "the light theme")
        await pilot.press("colon", *"quit", "enter")
        await until(pilot, lambda: not app.is_running, "the console to quit")
    offered_words = {a.name for a in ACTIONS if a.word} - {"quit", "theme", "command_bar"}
    assert {t.split(":")[1] for t in tried if t.startswith("colon")} == offered_words
