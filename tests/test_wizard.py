"""The deploy wizard on the sandbox: the plan read from the repository prefills each field
with its source, validation speaks the CLI's words, leaving keeps what was typed, and a
deploy from it goes live with the environment given."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from textual import events

from core.profile import paths
from core.profile.config import sandbox_profile
from core.sandbox import githost
from core.sandbox.controller import SandboxInfo
from tui.app import ToastApp
from tui.screens.deployment import DeploymentScreen
from tui.screens.wizard import DeployWizard

from .deploy_helpers import ENGINE_ENV, https_get, show, toast
from .helpers.waiting import settled, until
from .sandbox_helpers import planless_repo


async def test_the_wizard_detects_validates_resumes_and_deploys(
    sandbox: SandboxInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in ENGINE_ENV.items():
        monkeypatch.setenv(key, value)
    app = ToastApp(sandbox_profile(), paths.database_path(), start_sandbox=False)
    async with app.run_test(size=(160, 60)) as pilot:
        await settled(app)
        await pilot.press("n")
        wizard = app.screen
        assert isinstance(wizard, DeployWizard)
        await pilot.press(*"toast-samples/node-server")
        await pilot.press("ctrl+r")
        await until(pilot, lambda: wizard.value("build_type") == "node", "the detected plan")
        assert wizard.value("start_cmd") == "npm run start"
        assert "from package.json: scripts.start" in str(
            wizard.query_one("#start_cmd-source").render()
        )
        assert wizard.value("install_cmd") == "npm install"  # the sample has no lockfile

        # Validation with the spec's own rules and words, as the CLI says them.
        wizard.query_one("#subdomain").focus()
        await pilot.press(*"Bad_Name")
        await until(
            pilot,
            lambda: "must be a DNS label" in str(wizard.query_one("#subdomain-problem").render()),
            "the subdomain rule",
        )
        wizard.query_one("#start_cmd").value = "rm -rf /"  # type: ignore[attr-defined]
        await until(
            pilot,
            lambda: (
                "must start with node or a package manager"
                in str(wizard.query_one("#start_cmd-problem").render())
            ),
            "the start rule",
        )
        assert "edited" in str(wizard.query_one("#start_cmd-source").render())
        wizard.query_one("#start_cmd").value = "npm run start"  # type: ignore[attr-defined]
        await pilot.press("ctrl+s")  # refused: the subdomain is still bad
        await until(
            pilot,
            lambda: (
                "cannot deploy yet: subdomain" in str(wizard.query_one("#wizard-error").render())
            ),
            "the refusal",
        )

        # Leave and come back: everything typed is still there.
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, DeployWizard), "the wizard to go")
        await pilot.press("n")
        assert app.screen is wizard and wizard.value("repo") == "toast-samples/node-server"

        wizard.query_one("#subdomain").value = "wiz"  # type: ignore[attr-defined]
        wizard.query_one("#env").text = 'GREETING="hello from the wizard"\n'  # type: ignore[attr-defined]
        await until(
            pilot,
            lambda: "Ready: ctrl+s deploys" in str(wizard.query_one("#review").render()),
            "the review to be ready",
        )
        review = str(wizard.query_one("#review").render())
        assert "SSH: from 127.0.0.1/32" in review
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, DeploymentScreen), "the detail screen")
        await until(pilot, lambda: show("wiz")["state"] in ("live", "failed"), "the deploy", 180)
    assert show("wiz")["state"] == "live", show("wiz")["last_run"]
    assert show("wiz")["plan"]["start_cmd"]["source"] == "package.json: scripts.start"
    assert https_get(sandbox, "wiz.sandbox.test", "/env/GREETING").text == "hello from the wizard"


async def test_the_static_sample_deploys_from_the_wizard_with_no_field_edited(
    sandbox: SandboxInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The newcomer's first deploy: pick the sample, type a subdomain, ctrl+s. Its plan
    comes from the toast.toml the sample carries."""
    for key, value in ENGINE_ENV.items():
        monkeypatch.setenv(key, value)
    app = ToastApp(sandbox_profile(), paths.database_path(), start_sandbox=False)
    async with app.run_test(size=(160, 60)) as pilot:
        await settled(app)
        await pilot.press("n")
        wizard = app.screen
        assert isinstance(wizard, DeployWizard)
        await pilot.press(*"toast-samples/static-site")
        await pilot.press("ctrl+r")
        await until(pilot, lambda: wizard.value("build_type") == "static", "the sample's plan")
        assert "from toast.toml: output_dir" in str(wizard.query_one("#output_dir-source").render())
        wizard.query_one("#subdomain").value = "first"  # type: ignore[attr-defined]
        await until(
            pilot,
            lambda: "Ready: ctrl+s deploys" in str(wizard.query_one("#review").render()),
            "the review to be ready",
        )
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, DeploymentScreen), "the detail screen")
        await until(pilot, lambda: show("first")["state"] in ("live", "failed"), "the deploy", 180)
    deployed = show("first")
    assert deployed["state"] == "live", deployed["last_run"]
    assert deployed["plan"]["build_type"]["source"] == "toast.toml: build_type"
    assert "Hello from the Toast static sample" in https_get(sandbox, "first.sandbox.test").text


async def test_the_wizard_and_toast_deploy_build_the_same_spec_and_refuse_alike(
    sandbox: SandboxInfo, session_sandbox: Any
) -> None:
    """One function builds the spec for both: a repository whose plan misses a value is
    refused in the same words, and a field the user cleared is not refilled behind their
    back."""
    planless = planless_repo(session_sandbox.layout)
    cli = toast("--sandbox", "deploy", planless, "--subdomain", "same")
    assert cli.returncode == 2, cli.stdout
    said = cli.stderr.strip().removeprefix("toast: error: ")
    assert said.startswith(f"cannot deploy {planless}: build_type:")

    app = ToastApp(sandbox_profile(), paths.database_path(), start_sandbox=False)
    async with app.run_test(size=(160, 60)) as pilot:
        await pilot.press("n")
        wizard = app.screen
        assert isinstance(wizard, DeployWizard)
        wizard.query_one("#repo").value = planless  # type: ignore[attr-defined]
        await pilot.press("ctrl+r")
        await until(pilot, lambda: wizard.plan is not None, "the plan to be read")
        wizard.query_one("#subdomain").value = "same"  # type: ignore[attr-defined]
        await pilot.press("ctrl+s")
        error = wizard.query_one("#wizard-error")
        await until(pilot, lambda: said in str(error.render()), "the CLI's refusal")
        assert wizard.value("build_type") == ""  # nothing was filled in for the user

        # A detected value the user clears stays cleared, and validation says so.
        wizard.query_one("#repo").value = "toast-samples/node-server"  # type: ignore[attr-defined]
        await pilot.press("ctrl+r")
        await until(pilot, lambda: wizard.value("build_type") == "node", "the node plan")
        wizard.query_one("#install_cmd").value = ""  # type: ignore[attr-defined]
        problem = wizard.query_one("#install_cmd-problem")
        await until(pilot, lambda: "must not be empty" in str(problem.render()), "the rule")
        assert wizard.value("install_cmd") == ""
    assert toast("ls", "--json").stdout.strip() == "[]"


async def test_the_name_check_asks_once_typing_pauses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A subdomain typed key by key is checked against Route53 once, for what was typed."""
    asked: list[str] = []

    async def counted(queries: Any, target: Any, subdomain: str) -> str | None:
        asked.append(subdomain)
        return None

    monkeypatch.setattr("tui.screens.wizard.name_problem", counted)
    monkeypatch.setattr("tui.screens.wizard.resolve_target", lambda profile: profile)
    app = ToastApp(sandbox_profile(), tmp_path / "toast.db", start_sandbox=False)
    async with app.run_test(size=(160, 60)) as pilot:
        await pilot.press("n")
        wizard = app.screen
        assert isinstance(wizard, DeployWizard)
        box = wizard.query_one("#subdomain")
        box.focus()
        await pilot.pause()
        for char in "my-blog":  # queued together, as a terminal sends a fast typist's keys
            box.post_message(events.Key("minus" if char == "-" else char, char))
        await until(pilot, lambda: "my-blog" in asked, "the name check")
        await settled(app)
    assert asked == ["my-blog"]


async def test_a_workspace_repository_offers_its_apps_as_the_root_dir(
    sandbox: SandboxInfo, session_sandbox: Any
) -> None:
    githost.create_repo(
        session_sandbox.layout,
        "someone/monorepo",
        {
            "package.json": json.dumps({"name": "mono", "private": True}),
            "pnpm-workspace.yaml": "packages:\n  - 'apps/*'\n",
            "apps/site/package.json": json.dumps(
                {"name": "site", "devDependencies": {"vite": "^7"}, "scripts": {"build": "b"}}
            ),
        },
    )
    app = ToastApp(sandbox_profile(), paths.database_path(), start_sandbox=False)
    async with app.run_test(size=(160, 60)) as pilot:
        await pilot.press("n")
        wizard = app.screen
        assert isinstance(wizard, DeployWizard)
        wizard.query_one("#repo").value = "someone/monorepo"  # type: ignore[attr-defined]
        await pilot.press("ctrl+r")
        error = wizard.query_one("#wizard-error")
        await until(pilot, lambda: "--root apps/site" in str(error.render()), "the refusal")
        offered = wizard.query_one("#root_dir-source")
        assert "apps: apps/site" in str(offered.render())
        wizard.query_one("#root_dir").value = "apps/site"  # type: ignore[attr-defined]
        await pilot.press("ctrl+r")
        await until(pilot, lambda: wizard.value("build_type") == "static", "the app's plan")
        assert wizard.value("output_dir") == "dist"
