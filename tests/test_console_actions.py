"""The console acts, not just looks: redeploy, roll back and destroy from their keys on a
real sandbox deployment, the detail screen's step timeline, and keys that do not apply."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from core import paths
from core.config import sandbox_profile
from core.sandbox import SandboxInfo, githost
from storage import Queries, open_database
from tui.app import ToastApp
from tui.screens.confirm_destroy import ConfirmDestroy
from tui.screens.deployment import DeploymentScreen

from .deploy_helpers import ENGINE_ENV, deploy, https_get

Clients = Callable[[str], Any]


async def latest_run(name: str) -> Any:
    db = await open_database(paths.database_path())
    try:
        queries = Queries(db)
        d = await queries.get_deployment(name)
        assert d is not None
        return await queries.latest_run(d.id)
    finally:
        await db.close()


async def wait_run(pilot: Any, name: str, kind: str, timeout: float = 180) -> Any:
    """Until the newest run of `name` is a finished `kind` (the engine is another process)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = await latest_run(name)
        if run is not None and run.kind == kind and run.state in ("succeeded", "failed"):
            return run
        await pilot.pause(0.2)
    raise AssertionError(f"no finished {kind} of {name} within {timeout} s")


async def test_redeploy_rollback_and_destroy_from_the_console(
    sandbox: SandboxInfo,
    session_sandbox: Any,
    aws: Clients,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key, value in ENGINE_ENV.items():
        monkeypatch.setenv(key, value)
    deploy("static-site", "shop")
    fqdn = "shop.sandbox.test"
    assert "Hello from the Toast static sample" in https_get(sandbox, fqdn).text
    githost.commit_files(
        session_sandbox.layout,
        "toast-samples/static-site",
        {"message.txt": "Second edition\n"},
        "Second edition",
    )
    app = ToastApp(sandbox_profile(), paths.database_path(), start_sandbox=False)
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.pause(0.3)
        await pilot.press("R")
        run = await wait_run(pilot, "shop", "redeploy")
        assert run.state == "succeeded", run.error
        assert "Second edition" in https_get(sandbox, fqdn).text

        # Detail: the last run's steps, live from SQLite.
        await pilot.press("enter")
        await pilot.pause(0.3)
        assert isinstance(app.screen, DeploymentScreen)
        steps = app.screen.query_one("#steps")
        for _ in range(100):
            if steps.row_count == 3:  # type: ignore[attr-defined]
                break
            await pilot.pause(0.05)
        assert [steps.get_row(n)[1] for n in ("build", "switch", "health")] == [  # type: ignore[attr-defined]
            "succeeded"
        ] * 3
        releases = app.screen.query_one("#releases")
        assert releases.row_count == 2  # type: ignore[attr-defined]

        await pilot.press("b")  # back to the release before the live one
        run = await wait_run(pilot, "shop", "rollback")
        assert run.state == "succeeded", run.error
        assert "Hello from the Toast static sample" in https_get(sandbox, fqdn).text
        for _ in range(100):
            if any("rollback of shop succeeded" in n.message for n in app._notifications):
                break
            await pilot.pause(0.05)
        assert any("rollback of shop succeeded" in n.message for n in app._notifications)

        # Destroy asks for the name; a wrong one does nothing.
        await pilot.press("D")
        await pilot.pause(0.1)
        assert isinstance(app.screen, ConfirmDestroy)
        await pilot.press(*"shp", "enter")
        await pilot.pause(0.1)
        assert isinstance(app.screen, ConfirmDestroy)
        assert "that is not shop" in str(app.screen.query_one("#confirm-error").render())
        app.screen.query_one("#confirm-input").value = ""  # type: ignore[attr-defined]
        await pilot.press(*"shop", "enter")
        run = await wait_run(pilot, "shop", "destroy")
        assert run.state == "succeeded", run.error
        reservations = aws("ec2").describe_instances(
            Filters=[{"Name": "instance-state-name", "Values": ["running", "pending"]}]
        )["Reservations"]
        assert reservations == []

        # Nothing to act on: the keys are disabled, pressing them queues nothing.
        await pilot.pause(0.5)
        destroyed = await latest_run("shop")
        assert app.screen.check_action("redeploy", ()) is None
        await pilot.press("R")
        await pilot.pause(0.5)
        assert (await latest_run("shop")).id == destroyed.id
