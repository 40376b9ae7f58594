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


if __name__ == "__main__":
    target = Path(sys.argv[1])
    target.mkdir(parents=True, exist_ok=True)
    asyncio.run(render(target))
    print(f"wrote {target / 'deployments.svg'}")
