"""Render the console's screens to SVG files (python -m tests.helpers.screenshots OUT_DIR)."""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from core.config import sandbox_profile
from storage import Queries, open_database
from storage.records import NewDeployment
from tui.app import ToastApp

SAMPLES = [
    ("blog", "toast-samples/static-site", "static"),
    ("api", "toast-samples/node-server", "node"),
]


async def render(out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db_path = Path(tmp) / "toast.db"
        db = await open_database(db_path)
        for name, repo, build in SAMPLES:
            await Queries(db).create_deployment(
                NewDeployment(
                    name=name,
                    profile="sandbox",
                    repo=repo,
                    branch="main",
                    subdomain=name,
                    fqdn=f"{name}.sandbox.test",
                    build_type=build,
                    node_version="22",
                    install_cmd="npm ci",
                    build_cmd="npm run build",
                    instance_type="t3.micro",
                ),
                actor="screenshots",
            )
        await db.close()
        app = ToastApp(sandbox_profile(), db_path, start_sandbox=False)
        async with app.run_test(size=(140, 24)) as pilot:
            await app.workers.wait_for_complete()
            await pilot.pause()
            app.save_screenshot("deployments.svg", str(out))
            await pilot.press("enter")
            await pilot.pause(0.3)
            app.save_screenshot("deployment-detail.svg", str(out))
        app = ToastApp(sandbox_profile(), db_path, start_sandbox=False)
        async with app.run_test(size=(140, 50)) as pilot:
            await pilot.pause()
            await pilot.press("n")
            await pilot.pause()
            wizard = app.screen
            fields = {
                "repo": "toast-samples/node-server",
                "install_cmd": "npm ci",
                "start_cmd": "npm run start",
                "subdomain": "Bad_Name",
            }
            for field, value in fields.items():
                wizard.query_one(f"#{field}").value = value  # type: ignore[attr-defined]
            await pilot.pause(0.3)
            app.save_screenshot("deploy-wizard.svg", str(out))


async def render_log_pane(out: Path) -> None:
    import time

    from textual.app import App, ComposeResult

    from core.logs import LogLine
    from tui.widgets.log_pane import LogPane

    class Panes(App[None]):
        def compose(self) -> ComposeResult:
            yield LogPane("build", id="build")
            yield LogPane("access", id="access")

    now = int(time.time() * 1000)
    build = [
        "==> toast: building toast-samples/static-site@46c41c27429d (Initial commit)",
        "$ npm install",
        "up to date in 411ms",
        "$ npm run build",
        "> static-site@1.0.0 build",
        "> node build.js",
        "built dist/index.html (147 bytes)",
    ]
    access = [
        f'127.0.0.1 - - "GET /{p} HTTP/1.1" {s} 612 "-" "curl/8.5"'
        for p, s in [("", 200), ("app.js", 200), ("missing", 404), ("", 200)] * 3
    ]
    app = Panes()
    async with app.run_test(size=(120, 30)) as pilot:
        for pane_id, rows in (("build", build), ("access", access)):
            pane = app.query_one(f"#{pane_id}", LogPane)
            pane.write_lines(
                [LogLine(now + i, pane_id, m, f"{pane_id}{i}", "i-1") for i, m in enumerate(rows)]
            )
            pane.view.flush()
            pane.state = "streaming"
        access_pane = app.query_one("#access", LogPane)
        access_pane.view.focus()
        access_pane.view.set_filter("404|500")
        await pilot.pause()
        await pilot.pause()
        app.save_screenshot("log-panes.svg", str(out))


if __name__ == "__main__":
    target = Path(sys.argv[1])
    target.mkdir(parents=True, exist_ok=True)
    asyncio.run(render(target))
    asyncio.run(render_log_pane(target))
    print(f"wrote the console's screens to {target}")
