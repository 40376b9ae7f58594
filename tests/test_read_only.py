"""A read-only console: mutating keys are hidden from the footer and say why when pressed,
and the engine's queue functions refuse (and audit) what any path asks, CLI included."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.profile import paths
from core.profile.config import sandbox_profile
from core.runs.access import Actor, ReadOnlyError
from core.runs.queue import queue_run
from storage import Queries, open_database
from tui.app import ToastApp

from .conftest import run_toast
from .helpers.builders import live_deployment
from .helpers.waiting import Story, palette_options, settled

MUTATING_KEYS = ("R", "b", "D", "n")


async def runs_and_audit(db_path: Path) -> tuple[int, list[str]]:
    db = await open_database(db_path)
    try:
        q = Queries(db)
        d = await q.get_deployment("blog")
        assert d is not None
        runs = await q.runs_for(d.id)
        return len(runs), [e["action"] for e in await q.audit_trail()]
    finally:
        await db.close()


@pytest.mark.parametrize("read_only", [False, True])
async def test_mutating_keys_are_hidden_and_explain_themselves(
    tmp_path: Path, read_only: bool
) -> None:
    db_path = tmp_path / "toast.db"
    await live_deployment(db_path)
    app = ToastApp(sandbox_profile(), db_path, start_sandbox=False, read_only=read_only)
    story = Story()
    async with app.run_test(size=(160, 30), message_hook=story.hook) as pilot:
        await settled(app)
        await pilot.pause()
        shown = set(app.screen.active_bindings)
        if not read_only:  # the same keys are there on a normal console
            assert set(MUTATING_KEYS) <= shown
            return
        assert not set(MUTATING_KEYS) & shown, shown & set(MUTATING_KEYS)
        assert {"l", "o", "c", "enter"} <= shown  # looking still works
        assert "READ-ONLY" in app.sub_title
        for key in MUTATING_KEYS:
            await pilot.press(key)
            await pilot.pause()
            assert "read-only" in story.notices[-1], key
            assert type(app.screen).__name__ == "DeploymentsScreen"  # no wizard, no dialog
        await settled(app)
    assert (await runs_and_audit(db_path))[0] == 0


async def test_the_engine_refuses_a_read_only_actor_whatever_the_path(tmp_path: Path) -> None:
    db_path = tmp_path / "toast.db"
    await live_deployment(db_path)
    app = ToastApp(sandbox_profile(), db_path, start_sandbox=False, read_only=True)
    story = Story()
    async with app.run_test(size=(160, 30), message_hook=story.hook) as pilot:
        await settled(app)
        await pilot.pause()
        # A path around the keys: queuing straight through the app's worker.
        app.queue_action("redeploy", "blog")
        await settled(app)
        await pilot.pause()
        assert "redeploy of blog refused" in story.notices[-1]
        # The palette offers nothing that changes anything, and still offers to look.
        await pilot.press("ctrl+p")
        await pilot.pause()
        assert any("Open blog" in o for o in await palette_options(pilot, "open blog"))
        for query in ("redeploy blog", "roll back blog", "new deploy", "destroy blog"):
            offered = await palette_options(pilot, query)
            assert not any(query in o.lower() for o in offered), query
    db = await open_database(db_path)
    try:
        with pytest.raises(ReadOnlyError, match="destroy of blog refused"):
            await queue_run(
                Queries(db), "blog", "destroy", actor=Actor("viewer@ssh", read_only=True)
            )
    finally:
        await db.close()
    runs, audit = await runs_and_audit(db_path)
    assert runs == 0
    assert audit[:2] == ["refused destroy", "refused redeploy"]


def test_the_cli_refuses_under_read_only_and_says_why(tmp_path: Path) -> None:
    import asyncio

    asyncio.run(live_deployment(paths.database_path()))
    result = run_toast("--read-only", "rollback", "blog")
    assert result.returncode != 0
    assert "rollback of blog refused" in result.stderr and "--read-only" in result.stderr
    result = run_toast(
        "--read-only", "--sandbox", "deploy", "toast-samples/static-site", "--subdomain", "new"
    )
    assert result.returncode != 0 and "deploy of new refused" in result.stderr
    assert asyncio.run(runs_and_audit(paths.database_path()))[0] == 0
    # refused before anything was started for it: no sandbox came up
    from core.sandbox.controller import Sandbox

    status = Sandbox(paths.sandbox_dir()).status()
    assert status is None or not status.running


def test_every_mutating_cli_command_is_refused_and_audited_under_read_only() -> None:
    """gc --delete, sandbox up/down/reset used to run under --read-only (gc deleted 13
    record pairs); each is refused before it does anything, and audited."""
    import asyncio

    asyncio.run(live_deployment(paths.database_path()))
    cases = [
        (("--sandbox", "gc", "--delete"), "gc --delete"),
        (("sandbox", "up"), "sandbox up"),
        (("sandbox", "down"), "sandbox down"),
        (("sandbox", "reset", "--yes"), "sandbox reset"),
        (("destroy", "blog", "--yes"), "destroy"),
        (("redeploy", "blog"), "redeploy"),
    ]
    for args, kind in cases:
        result = run_toast("--read-only", *args)
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        assert f"{kind} of " in result.stderr and "--read-only" in result.stderr, result.stderr
    runs, audit = asyncio.run(runs_and_audit(paths.database_path()))
    assert runs == 0
    refused = [a for a in audit if a.startswith("refused")]
    assert sorted(refused) == sorted(f"refused {kind}" for _, kind in cases)


async def test_a_read_only_console_offers_no_deploy_on_the_command_bar(tmp_path: Path) -> None:
    from textual.widgets import Input, Static

    db_path = tmp_path / "toast.db"
    await live_deployment(db_path)
    app = ToastApp(sandbox_profile(), db_path, start_sandbox=False, read_only=True)
    story = Story()
    async with app.run_test(size=(160, 30), message_hook=story.hook) as pilot:
        await settled(app)
        await pilot.press("colon")
        bar = app.screen
        assert type(bar).__name__ == "CommandBar"
        shown = str(bar.query_one("#command-help", Static).render())
        assert ":deploys" in shown and ":deploy " not in shown + " "
        bar.query_one(Input).value = "deploy"
        await pilot.press("enter")
        await pilot.pause()
        assert type(app.screen).__name__ == "DeploymentsScreen"  # no wizard
        assert "refused" in story.notices[-1]
        app.start_wizard("toast-samples/static-site", "main")  # the Repos screen's path
        await pilot.pause()
        assert type(app.screen).__name__ == "DeploymentsScreen"


async def test_a_run_queued_from_the_console_records_the_console_as_its_trigger(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOAST_ENGINE_AUTOSTART", "0")  # queued is enough: nothing runs it
    db_path = tmp_path / "toast.db"
    await live_deployment(db_path)
    app = ToastApp(sandbox_profile(), db_path, start_sandbox=False)
    async with app.run_test(size=(160, 30)) as pilot:
        await settled(app)
        await pilot.press("R")
        await settled(app)
    db = await open_database(db_path)
    try:
        q = Queries(db)
        d = await q.get_deployment("blog")
        assert d is not None
        [run] = await q.runs_for(d.id)
        assert (run.kind, run.trigger) == ("redeploy", "console")
        assert any(e["actor"].endswith("@console") for e in await q.audit_trail())
    finally:
        await db.close()


async def test_a_read_only_destroy_asked_by_name_opens_no_dialog_and_is_audited(
    tmp_path: Path,
) -> None:
    db_path = tmp_path / "toast.db"
    await live_deployment(db_path)
    app = ToastApp(sandbox_profile(), db_path, start_sandbox=False, read_only=True)
    story = Story()
    async with app.run_test(size=(160, 30), message_hook=story.hook) as pilot:
        await settled(app)
        app.perform("destroy", "blog")
        await settled(app)
        await pilot.pause()
        assert type(app.screen).__name__ == "DeploymentsScreen"  # no confirmation dialog
        assert "destroy of blog refused" in story.notices[-1]
    runs, audit = await runs_and_audit(db_path)
    assert runs == 0 and "refused destroy" in audit
