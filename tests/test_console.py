"""The console's Deployments screen, driven with Pilot as a user would."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from textual.color import Color
from textual.pilot import Pilot

from core.profile.config import Profile, sandbox_profile
from core.runs.launcher import hold_serve_lock
from storage import Queries, open_database
from tui.app import ToastApp

from .helpers.builders import new_deployment
from .helpers.waiting import Story, palette_options, settled, until

FIXED_TIME = 1_790_000_000.0  # a fixed clock keeps snapshots stable


async def seed(db_path: Path, *names: str) -> None:
    db = await open_database(db_path)
    try:
        for name in names:
            await Queries(db).create_deployment(new_deployment(name), actor="test", now=FIXED_TIME)
    finally:
        await db.close()


@asynccontextmanager
async def console(
    db_path: Path, size: tuple[int, int] = (140, 30)
) -> AsyncIterator[tuple[ToastApp, Pilot[None]]]:
    """The console on `db_path`, its first reads done."""
    app = ToastApp(sandbox_profile(), db_path, start_sandbox=False)
    async with app.run_test(size=size) as pilot:
        await settled(app)
        await pilot.pause()
        yield app, pilot


async def test_lists_deployments_from_sqlite_and_quits_on_q(tmp_path: Path) -> None:
    db_path = tmp_path / "toast.db"
    await seed(db_path, "blog", "shop")
    async with console(db_path) as (app, pilot):
        table = app.screen.query_one("#deployments")
        rows = [table.get_row_at(i) for i in range(table.row_count)]  # type: ignore[attr-defined]
        assert [r[0] for r in rows] == ["blog", "shop"]
        assert rows[0][2] == "https://blog.sandbox.test/"
        assert not app.screen.query_one("#empty").display
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0


async def test_refresh_shows_a_deployment_added_by_another_process(tmp_path: Path) -> None:
    db_path = tmp_path / "toast.db"
    async with console(db_path) as (app, pilot):
        assert "No deployments yet." in str(app.screen.query_one("#empty").render())
        await seed(db_path, "docs")
        await pilot.press("r")
        await settled(app)
        await pilot.pause()
        table = app.screen.query_one("#deployments")
        assert table.row_count == 1  # type: ignore[attr-defined]
        assert not app.screen.query_one("#empty").display


@pytest.mark.parametrize("sandboxed", [True, False])
async def test_banner_says_plainly_which_cloud(tmp_path: Path, sandboxed: bool) -> None:
    profile = (
        sandbox_profile()
        if sandboxed
        else Profile(
            name="work", aws_profile="work", region="eu-west-1", base_domain="apps.example.com"
        )
    )
    app = ToastApp(profile, tmp_path / "toast.db", start_sandbox=False)
    async with app.run_test(size=(140, 30)) as pilot:
        await pilot.pause()
        banner = str(app.screen.query_one("#banner").render())
    if sandboxed:
        assert banner.startswith("SANDBOX:")
    else:
        assert "SANDBOX" not in banner and "eu-west-1" in banner and "apps.example.com" in banner


async def test_the_banner_says_whether_toast_serve_runs_for_this_data_directory(
    tmp_path: Path,
) -> None:
    app = ToastApp(sandbox_profile(), tmp_path / "toast.db", start_sandbox=False)
    async with app.run_test(size=(160, 30)) as pilot:
        banner = app.screen.query_one("#banner")
        await until(pilot, lambda: "serve: off" in str(banner.render()), "serve: off")
        held = hold_serve_lock()  # as `toast serve` holds it
        assert held is not None
        try:
            app._check_serve()  # the periodic check, without waiting for it
            await until(
                pilot,
                lambda: f"serve: on (pid {os.getpid()})" in str(banner.render()),
                "serve: on",
            )
        finally:
            os.close(held)


async def test_sandbox_profile_starts_the_sandbox_and_says_so(
    tmp_path: Path, sandbox: object
) -> None:
    app = ToastApp(sandbox_profile(), tmp_path / "toast.db")
    async with app.run_test(size=(140, 30)) as pilot:
        await settled(app)
        await pilot.pause()
        banner = str(app.screen.query_one("#banner").render())
    assert "AWS at http://127.0.0.1:" in banner


async def test_a_broken_database_is_reported_not_crashed(tmp_path: Path) -> None:
    db_path = tmp_path / "toast.db"
    db_path.write_bytes(b"this is not a database" * 100)
    async with console(db_path) as (app, _pilot):
        message = str(app.screen.query_one("#empty").render())
    assert message.startswith("Could not read deployments:")


async def test_l_opens_live_logs_of_the_selected_deployment(
    tmp_path: Path, sandbox: object, aws: object
) -> None:
    import time as clock

    from tui.screens.logs import LogsScreen
    from tui.widgets.log_pane import LogPane

    db_path = tmp_path / "toast.db"
    await seed(db_path, "blog")
    logs = aws("logs")  # type: ignore[operator]
    now = int(clock.time() * 1000)
    for source in ("build", "access"):
        group = f"/toast/blog/{source}"
        logs.create_log_group(logGroupName=group)
        logs.create_log_stream(logGroupName=group, logStreamName="i-1")
        logs.put_log_events(
            logGroupName=group,
            logStreamName="i-1",
            logEvents=[{"timestamp": now, "message": f"{source} line"}],
        )
    async with console(db_path, size=(140, 40)) as (app, pilot):
        await pilot.press("l")
        await pilot.pause()
        assert isinstance(app.screen, LogsScreen)
        build = app.screen.query_one("#pane-build", LogPane)
        access = app.screen.query_one("#pane-access", LogPane)
        await until(pilot, lambda: len(build.view.lines) and len(access.view.lines), "both panes")
        assert [ln.message for ln in build.view.lines] == ["build line"]
        assert [ln.message for ln in access.view.lines] == ["access line"]
        assert build.border_title == "build · streaming"
        # A line shipped while the screen is open arrives too.
        logs.put_log_events(
            logGroupName="/toast/blog/build",
            logStreamName="i-1",
            logEvents=[{"timestamp": now + 5, "message": "late build line"}],
        )
        await until(pilot, lambda: len(build.view.lines) == 2, "the late line")
        assert [ln.message for ln in build.view.lines][-1] == "late build line"
        await pilot.press("escape")
        assert not isinstance(app.screen, LogsScreen)


async def test_state_changes_by_the_engine_show_without_a_keypress_and_keep_the_cursor(
    tmp_path: Path,
) -> None:
    db_path = tmp_path / "toast.db"
    await seed(db_path, "alpha", "beta", "gamma")
    async with console(db_path) as (app, pilot):
        table = app.screen.query_one("#deployments")
        await pilot.press("down", "down")
        assert table.cursor_row == 2  # type: ignore[attr-defined]
        db = await open_database(db_path)
        beta = await Queries(db).get_deployment("beta")
        assert beta is not None
        await Queries(db).update_deployment(beta.id, state="live")
        await Queries(db).create_deployment(new_deployment("delta"), actor="engine")
        await db.close()
        # the screen polls SQLite every couple of seconds
        await until(pilot, lambda: table.row_count == 4, "the new row")  # type: ignore[attr-defined]
        assert table.row_count == 4  # type: ignore[attr-defined]
        assert table.get_row("beta")[1] == "live"  # type: ignore[attr-defined]
        # delta is placed in name order, and the cursor stays on the row it was on
        rows = [table.get_row_at(i)[0] for i in range(4)]  # type: ignore[attr-defined]
        assert rows == ["alpha", "beta", "delta", "gamma"]
        assert table.cursor_key == "gamma"  # type: ignore[attr-defined]


async def test_j_k_move_and_slash_filters_the_list(tmp_path: Path) -> None:
    db_path = tmp_path / "toast.db"
    await seed(db_path, "alpha", "beta", "gamma")
    async with console(db_path) as (app, pilot):
        table = app.screen.query_one("#deployments")
        await pilot.press("j", "j")
        assert table.cursor_row == 2  # type: ignore[attr-defined]
        await pilot.press("k")
        assert table.cursor_row == 1  # type: ignore[attr-defined]
        await pilot.press("slash", *"amm", "enter")
        await pilot.pause()
        rows = [table.get_row_at(i)[0] for i in range(table.row_count)]  # type: ignore[attr-defined]
        assert rows == ["gamma"]
        await pilot.press("slash", "backspace", "backspace", "backspace", *"zzz")
        await pilot.pause()
        assert table.row_count == 0  # type: ignore[attr-defined]
        assert "Nothing matches 'zzz'" in str(app.screen.query_one("#empty").render())
        await pilot.press("escape")
        await pilot.pause()
        assert table.row_count == 3  # type: ignore[attr-defined]


async def test_the_palette_offers_deployments_by_what_fits_their_state(tmp_path: Path) -> None:
    from textual.command import CommandPalette

    from tui.screens.deployment import DeploymentScreen

    db_path = tmp_path / "toast.db"
    await seed(db_path, "alpha", "beta", "gamma")
    db = await open_database(db_path)
    queries = Queries(db)
    gamma = await queries.get_deployment("gamma")
    assert gamma is not None
    release = await queries.add_release(gamma.id, "a" * 40, "/r/a", run_id=None)
    await queries.update_deployment(gamma.id, state="live", current_release_id=release.id)
    await db.close()
    async with console(db_path) as (app, pilot):
        await pilot.press("ctrl+p")
        await pilot.pause()
        assert isinstance(app.screen, CommandPalette)

        async def offered(query: str) -> list[str]:
            return await palette_options(pilot, query)

        assert any("Open beta" in o for o in await offered("open beta"))
        # alpha has never been live: nothing to redeploy or roll back.
        assert not any("Roll back alpha" in o for o in await offered("roll back alpha"))
        assert any("Roll back gamma" in o for o in await offered("roll back gamma"))
        await offered("open beta")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DeploymentScreen), "the detail")
        assert isinstance(app.screen, DeploymentScreen)
        assert app.screen.deployment_name == "beta"


async def test_an_idle_list_draws_nothing_and_a_change_redraws_only_its_row(
    tmp_path: Path,
) -> None:
    db_path = tmp_path / "toast.db"
    await seed(db_path, *[f"app-{i:02d}" for i in range(20)])
    async with console(db_path) as (app, pilot):
        table = app.screen.query_one("#deployments")
        assert table.row_count == 20  # type: ignore[attr-defined]
        before = table.repaints  # type: ignore[attr-defined]
        checks = app.screen.checks  # type: ignore[attr-defined]
        # two polls of SQLite: nothing changed, nothing drawn
        await until(pilot, lambda: app.screen.checks >= checks + 2, "two polls", timeout=30)  # type: ignore[attr-defined]
        assert table.repaints == before  # type: ignore[attr-defined]
        db = await open_database(db_path)
        d = await Queries(db).get_deployment("app-07")
        assert d is not None
        await Queries(db).set_deployment_state(d.id, "live")
        await db.close()
        await until(pilot, lambda: table.get_row("app-07")[1] == "live", "the row")  # type: ignore[attr-defined]
        await pilot.pause()
        assert table.get_row("app-07")[1] == "live"  # type: ignore[attr-defined]
        assert 1 <= table.repaints - before <= 3  # type: ignore[attr-defined]


async def test_keys_typed_right_after_slash_land_in_the_filter(tmp_path: Path) -> None:
    """A fast typist's "/gam": every key already queued when / is handled reaches the box
    (Widget.focus() would move focus only after them)."""
    from textual import events

    db_path = tmp_path / "toast.db"
    await seed(db_path, "alpha", "beta", "gamma")
    async with console(db_path) as (app, pilot):
        for key, char in (("slash", "/"), ("g", "g"), ("a", "a"), ("m", "m")):
            app.post_message(events.Key(key, char))  # queued together, as a terminal sends them
        # The box is made when / is handled (the first frame does not build it).
        await until(
            pilot,
            lambda: [box.value for box in app.screen.query("#filter")] == ["gam"],  # type: ignore[attr-defined]
            "the typed filter",
        )
        table = app.screen.query_one("#deployments")
        assert [table.get_row_at(i)[0] for i in range(table.row_count)] == ["gamma"]  # type: ignore[attr-defined]


async def test_slash_is_a_character_once_the_search_box_has_focus(tmp_path: Path) -> None:
    app = ToastApp(sandbox_profile(), tmp_path / "toast.db", start_sandbox=False)
    async with app.run_test(size=(140, 30)) as pilot:
        await pilot.press("2", "slash", *"https://git.example.com/a/b.git")
        await pilot.pause()
        box = app.screen.query_one("#repo-search")
        assert box.value == "https://git.example.com/a/b.git"  # type: ignore[attr-defined]


async def test_the_command_bar_switches_sections_themes_and_opens_deployments(
    tmp_path: Path,
) -> None:
    from tui.screens.deployment import DeploymentScreen

    db_path = tmp_path / "toast.db"
    await seed(db_path, "blog")
    app = ToastApp(sandbox_profile(), db_path, start_sandbox=False, theme="high-contrast")
    assert app.theme == "toast-high-contrast"
    story = Story()
    async with app.run_test(size=(140, 30), message_hook=story.hook) as pilot:
        await settled(app)
        await pilot.pause()

        async def command(text: str) -> None:
            await pilot.press("colon", *text, "enter")
            await pilot.pause()

        await command("activity")
        assert type(app.screen).__name__ == "ActivityScreen"
        await command("theme light")
        assert app.theme == "textual-light"
        await command("open blog")
        assert isinstance(app.screen, DeploymentScreen) and app.screen.deployment_name == "blog"
        await command("open nope")
        await until(pilot, lambda: "no deployment named 'nope'" in story.notices[-1], "refusal")
        await command("frobnicate")
        assert "unknown command 'frobnicate'" in story.notices[-1]


async def test_the_profile_picker_sets_the_profile_new_deploys_use(tmp_path: Path) -> None:
    from core.profile import paths

    paths.config_path().parent.mkdir(parents=True, exist_ok=True)
    paths.config_path().write_text(
        '[profiles.work]\nregion = "eu-west-1"\nbase_domain = "apps.example.com"\n'
    )
    app = ToastApp(sandbox_profile(), tmp_path / "toast.db", start_sandbox=False)
    async with app.run_test(size=(140, 30)) as pilot:
        await pilot.press("4")
        await pilot.pause()
        table = app.screen.query_one("#profiles")
        names = [table.get_row_at(i)[1] for i in range(table.row_count)]  # type: ignore[attr-defined]
        assert names == ["work", "sandbox"]
        assert table.get_row("sandbox")[0] == "*"  # type: ignore[attr-defined]  # in use
        await pilot.press("enter")  # on "work"
        await pilot.pause()
        assert app.profile.name == "work" and "profile work" in app.sub_title
        assert table.get_row("work")[0] == "*"  # type: ignore[attr-defined]


async def test_the_footer_follows_the_row_the_cursor_is_on(tmp_path: Path) -> None:
    """Keys that apply to the row are shown enabled; with no row, greyed."""
    from textual.widgets import Footer

    db_path = tmp_path / "toast.db"
    async with console(db_path) as (app, pilot):
        footer = app.screen.query_one(Footer)

        def keys(disabled: bool) -> set[str]:
            return {
                k.key for k in footer.query("FooterKey") if k.has_class("-disabled") == disabled
            }

        assert "D" in keys(disabled=True)  # no row: nothing to destroy
        await seed(db_path, "blog")
        app.screen.load_deployments(force=True)  # type: ignore[attr-defined]
        await until(pilot, lambda: "D" in keys(disabled=False), "destroy to apply to the row")


async def test_a_burst_of_binding_changes_rebuilds_the_footer_once(tmp_path: Path) -> None:
    """Changes that come together (focus, mount, rows) rebuild the footer once, and it
    shows the last of them: one rebuild mounts and styles a widget per key."""
    from textual.widgets import Footer

    db_path = tmp_path / "toast.db"
    async with console(db_path) as (app, pilot):
        footer = app.screen.query_one(Footer)
        rebuilds = 0
        original = footer.recompose

        async def counted() -> None:
            nonlocal rebuilds
            rebuilds += 1
            await original()

        footer.recompose = counted  # type: ignore[method-assign]
        await seed(db_path, "blog")
        app.screen.load_deployments(force=True)  # type: ignore[attr-defined]
        await until(pilot, lambda: app.screen.query_one("#deployments").row_count == 1, "the row")  # type: ignore[attr-defined]
        for _ in range(5):
            app.screen.refresh_bindings()
        await until(
            pilot,
            lambda: (
                "D" in {k.key for k in footer.query("FooterKey") if not k.has_class("-disabled")}
            ),
            "destroy to apply to the row",
        )
        await pilot.pause()
        assert 1 <= rebuilds <= 2, rebuilds  # the row's highlight, then the burst: not 6


async def test_state_colours_come_from_the_theme(tmp_path: Path) -> None:
    """The list's state colours are the theme's success/error/warning: switching the theme
    recolours them (hard-coded colours would look the same in all three)."""
    db_path = tmp_path / "toast.db"
    await seed(db_path, "blog")
    async with console(db_path) as (app, pilot):
        table = app.screen.query_one("#deployments")
        seen = set()
        for theme in ("textual-dark", "textual-light", "toast-high-contrast"):
            app.theme = theme
            await pilot.pause()
            live = table.get_component_rich_style("row-table--live", partial=True)
            failed = table.get_component_rich_style("row-table--failed", partial=True)
            assert live.color != failed.color
            assert live.color == Color.parse(app.current_theme.success).rich_color
            seen.add(live.color)
        assert len(seen) >= 2  # textual-dark and -light share their green; high contrast does not
