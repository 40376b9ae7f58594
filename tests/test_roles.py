"""Roles are enforced where runs are queued: a viewer changes nothing, a deployer deploys,
redeploys and rolls back but never destroys, an admin does everything; every refusal is
audited with who and why, and the console hides (and explains) what the role cannot do."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.profile import paths
from core.profile.config import sandbox_profile
from core.runs.access import Actor, ReadOnlyError, Role
from core.runs.queue import queue_run
from core.runs.states import Trigger
from storage import Queries, open_database
from tui.app import ToastApp

from .conftest import run_toast
from .helpers.builders import live_deployment
from .helpers.waiting import Story, settled, until


def ssh_actor(name: str, role: Role) -> Actor:
    return Actor(f"{name}@ssh", read_only=role == Role.VIEWER, via=Trigger.SSH, role=role)


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        (Role.VIEWER, set()),
        (Role.DEPLOYER, {"redeploy", "rollback"}),
        (Role.ADMIN, {"redeploy", "rollback", "destroy"}),
    ],
)
async def test_each_role_may_queue_only_its_runs_and_refusals_are_audited(
    role: Role, allowed: set[str]
) -> None:
    await live_deployment(paths.database_path(), "blog")
    db = await open_database(paths.database_path())
    try:
        queries = Queries(db)
        who = ssh_actor("ana", role)
        for kind in ("redeploy", "rollback", "destroy"):
            if kind in allowed:
                _, run = await queue_run(queries, "blog", kind, actor=who, force=True)
                assert run.trigger == "ssh"
                continue
            with pytest.raises(ReadOnlyError, match=f"{kind} of blog refused: ana@ssh"):
                await queue_run(queries, "blog", kind, actor=who)
        refused = [a for a in await queries.audit_trail() if a["action"].startswith("refused")]
        assert {a["action"].removeprefix("refused ") for a in refused} == (
            {"redeploy", "rollback", "destroy"} - allowed
        )
        assert all(a["actor"] == "ana@ssh" for a in refused)
    finally:
        await db.close()


def test_the_cli_acts_for_a_person_with_a_role() -> None:
    import asyncio

    asyncio.run(live_deployment(paths.database_path(), "blog"))
    listed = run_toast("--as", "bob", "--role", "viewer", "ls", "--json")
    assert listed.returncode == 0 and json.loads(listed.stdout)[0]["name"] == "blog"
    refused = run_toast("--as", "ana", "--role", "deployer", "destroy", "blog", "--yes")
    assert refused.returncode != 0
    assert "destroy of blog refused: ana@ssh is a deployer" in refused.stderr
    # Refused before anything was started on its behalf (the sandbox's cloud, an engine).
    assert not (paths.data_dir() / "sandbox").exists()
    alone = run_toast("--role", "admin", "ls")
    assert alone.returncode == 2 and "--role needs --as NAME" in alone.stderr
    trail = run_toast("activity", "--json")
    assert any(
        r["actor"] == "ana@ssh" and r["action"] == "refused destroy"
        for r in json.loads(trail.stdout)
    )


async def test_the_console_names_the_person_and_hides_what_their_role_cannot_do(
    tmp_path: Path,
) -> None:
    await live_deployment(paths.database_path(), "blog")
    app = ToastApp(
        sandbox_profile(),
        paths.database_path(),
        start_sandbox=False,
        actor=ssh_actor("ana", Role.DEPLOYER),
    )
    story = Story()
    async with app.run_test(size=(160, 40), message_hook=story.hook) as pilot:
        await settled(app)
        assert "ana (deployer)" in app.sub_title
        shown = {b.binding.action for b in app.screen.active_bindings.values() if b.binding.show}
        assert "perform('rollback')" in shown and "perform('destroy')" not in shown
        await pilot.press("D")  # destroy: not offered; pressing it says why
        await settled(app)
        await until(
            pilot,
            lambda: any("is a deployer" in m for m in story.notices),
            "the refusal, in the engine's words",
        )
    db = await open_database(paths.database_path())
    try:
        destroyed = [r for r in await Queries(db).runs_for(1) if r.kind == "destroy"]
    finally:
        await db.close()
    assert destroyed == []


def test_a_viewer_is_told_their_role_not_a_flag_they_never_gave() -> None:
    import asyncio

    asyncio.run(live_deployment(paths.database_path(), "blog"))
    refused = run_toast("--as", "bob", "--role", "viewer", "rollback", "blog")
    assert refused.returncode != 0
    assert "rollback of blog refused: bob@ssh is a viewer (a viewer may: look" in refused.stderr
    assert "--read-only" not in refused.stderr
