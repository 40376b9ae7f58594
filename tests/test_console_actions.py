"""A user's whole journey in the console, on the real sandbox: Repos -> wizard (detected
plan, env edited) -> deploy -> the detail's steps going live -> logs streaming -> HTTPS
answers; then redeploy, roll back and destroy from their keys, and keys that no longer
apply."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from core.profile import paths
from core.profile.config import sandbox_profile
from core.sandbox.controller import SandboxInfo, githost
from storage import Queries, open_database
from tui.app import ToastApp
from tui.screens.confirm_destroy import ConfirmDestroy
from tui.screens.deployment import DeploymentScreen

from .deploy_helpers import ENGINE_ENV, https_get
from .helpers.waiting import Story, settled, until, until_value

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

    async def finished() -> Any | None:
        run = await latest_run(name)
        done = run is not None and run.kind == kind and run.state in ("succeeded", "failed")
        return run if done else None

    return await until_value(pilot, finished, f"a finished {kind} of {name}", timeout)


async def test_from_the_repos_screen_to_a_live_site_and_back_to_nothing(
    sandbox: SandboxInfo,
    session_sandbox: Any,
    aws: Clients,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tui.screens.logs import LogsScreen
    from tui.screens.repos import ReposScreen
    from tui.screens.wizard import DeployWizard

    for key, value in ENGINE_ENV.items():
        monkeypatch.setenv(key, value)
    fqdn = "shop.sandbox.test"
    app = ToastApp(sandbox_profile(), paths.database_path(), start_sandbox=False)
    story = Story()
    async with app.run_test(size=(160, 45), message_hook=story.hook) as pilot:
        # Repos: the sandbox git host's repositories, searchable; enter starts the wizard.
        await pilot.press("2")
        await until(pilot, lambda: isinstance(app.screen, ReposScreen), "the Repos screen")
        repos = app.screen.query_one("#repos")
        await until(pilot, lambda: repos.row_count >= 2, "the repositories")  # type: ignore[attr-defined]
        await pilot.press("slash", *"node")
        await until(pilot, lambda: repos.row_count == 1, "the search")  # type: ignore[attr-defined]
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DeployWizard), "the wizard")
        wizard = app.screen
        assert isinstance(wizard, DeployWizard)
        assert wizard.value("repo") == "toast-samples/node-server"
        await until(pilot, lambda: wizard.value("build_type") == "node", "the detected plan")
        assert "from package.json: scripts.start" in str(
            wizard.query_one("#start_cmd-source").render()
        )
        assert wizard.value("subdomain") == "node-server"  # suggested from the repo name
        wizard.query_one("#subdomain").value = "shop"  # type: ignore[attr-defined]
        wizard.query_one("#env").text = "GREETING=hello from the console\n"  # type: ignore[attr-defined]
        await until(
            pilot,
            lambda: "Ready: ctrl+s deploys" in str(wizard.query_one("#review").render()),
            "the review",
        )
        await pilot.press("ctrl+s")

        # Detail: the steps go live as the engine (another process) works.
        await until(pilot, lambda: isinstance(app.screen, DeploymentScreen), "the detail")
        detail = app.screen
        steps = detail.query_one("#steps")
        seen: set[str] = set()

        def states() -> dict[str, str]:
            rows = [steps.get_row_at(i) for i in range(steps.row_count)]  # type: ignore[attr-defined]
            found = {str(r[0]): str(r[1]) for r in rows}
            seen.update(found.values())
            return found

        await until(
            pilot,
            lambda: len(states()) == 11 and set(states().values()) == {"succeeded"},
            "every step of the deploy to succeed",
            240,
        )
        assert "running" in seen  # it was watched going, not only read when done
        build_output = detail.query_one("#build-output")
        assert any(
            "listening" in ln.message or "npm" in ln.message for ln in build_output.view.lines
        )  # type: ignore[attr-defined]
        assert https_get(sandbox, fqdn, "/env/GREETING").text == "hello from the console"
        await pilot.press("o")  # the sandbox's site is reached with curl: it says how
        await until(
            pilot,
            lambda: any("is in the sandbox; reach it" in n for n in story.notices),
            "how to reach the site",
        )

        # Logs: the panes stream what CloudWatch has.
        await pilot.press("l")
        await until(pilot, lambda: isinstance(app.screen, LogsScreen), "the logs")
        logs = app.screen
        assert isinstance(logs, LogsScreen)
        await until(pilot, lambda: len(logs.pane("build").view.lines) > 0, "build lines", 60)
        https_get(sandbox, fqdn, "/")
        await until(
            pilot,
            lambda: any("GET /" in ln.message for ln in logs.pane("access").view.lines),
            "the request in the access log",
            60,
        )
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is detail, "back to the detail")

        # Redeploy a new commit from its key.
        githost.commit_files(
            session_sandbox.layout,
            "toast-samples/node-server",
            {"message.txt": "Second edition\n"},
            "Second edition",
        )
        await pilot.press("R")
        run = await wait_run(pilot, "shop", "redeploy")
        assert run.state == "succeeded", run.error
        assert "Second edition" in https_get(sandbox, fqdn).text
        releases = detail.query_one("#releases")
        await until(pilot, lambda: releases.row_count == 2, "two releases")  # type: ignore[attr-defined]

        # Roll back to the release before the live one.
        await pilot.press("b")
        run = await wait_run(pilot, "shop", "rollback")
        assert run.state == "succeeded", run.error
        assert "Hello from the Toast node sample" in https_get(sandbox, fqdn).text
        await until(
            pilot,
            lambda: any("rollback of shop succeeded" in n for n in story.notices),
            "the notification",
        )

        # Destroy asks for the name; a wrong one does nothing.
        await pilot.press("D")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDestroy), "the confirmation")
        await pilot.press(*"shp", "enter")
        await until(
            pilot,
            lambda: "that is not shop" in str(app.screen.query_one("#confirm-error").render()),
            "the wrong name to be refused",
        )
        assert isinstance(app.screen, ConfirmDestroy)
        app.screen.query_one("#confirm-input").value = ""  # type: ignore[attr-defined]
        await pilot.press(*"shop", "enter")
        run = await wait_run(pilot, "shop", "destroy")
        assert run.state == "succeeded", run.error
        reservations = aws("ec2").describe_instances(
            Filters=[{"Name": "instance-state-name", "Values": ["running", "pending"]}]
        )["Reservations"]
        assert reservations == []

        # Nothing to act on: the keys are disabled, pressing them queues nothing.
        await until(
            pilot,
            lambda: app.screen.check_action("perform", ("redeploy",)) is None,
            "redeploy to be greyed for a destroyed deployment",
        )
        destroyed = await latest_run("shop")
        await pilot.press("R")
        await pilot.pause()
        await settled(app)
        assert (await latest_run("shop")).id == destroyed.id
