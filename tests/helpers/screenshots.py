"""Render every screen of the console against a real sandbox deploy, to SVG and PNG
(python -m tests.helpers.screenshots OUT_DIR; scripts/screenshots runs it).

A throwaway sandbox is started, the node sample is deployed and redeployed through the
real CLI and engine, and the console is driven to each screen with Pilot."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

# Imported before main() sets the environment: tests.conftest (which deploy_helpers
# imports) clears TOAST_* variables when it loads.
from core.sandbox import githost
from core.sandbox.controller import Sandbox
from tests.deploy_helpers import https_get
from tests.helpers.waiting import settled
from tests.helpers.waiting import until as wait_until

SIZE = (140, 40)


def toast(*args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "cli", *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"toast {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")


async def settle(pilot: Any) -> None:
    """Everything the screen started has finished and been drawn."""
    await pilot.pause()
    await settled(pilot.app)
    await pilot.pause()


async def until(pilot: Any, check: Callable[[], object], timeout: float = 60) -> None:
    await wait_until(pilot, check, "a screen to show what its picture needs", timeout)


async def shoot(out: Path, name: str, drive: Callable[[Any], Awaitable[None]]) -> None:
    from core.profile import paths
    from core.profile.config import sandbox_profile
    from tui.app import ToastApp

    app = ToastApp(sandbox_profile(), paths.database_path(), start_sandbox=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await drive(pilot)
        app.save_screenshot(f"{name}.svg", str(out))
    print(f"  {name}")


def keys(*pressed: str) -> Callable[[Any], Awaitable[None]]:
    async def drive(pilot: Any) -> None:
        for key in pressed:
            await pilot.press(key)
            await settle(pilot)
        await settle(pilot)

    return drive


async def logs(pilot: Any) -> None:
    await pilot.press("l")  # its tails run until the screen closes: no waiting for workers
    await until(pilot, lambda: type(pilot.app.screen).__name__ == "LogsScreen")
    screen = pilot.app.screen
    await until(pilot, lambda: len(screen.pane("access").view.lines) > 0)
    await until(pilot, lambda: all(len(screen.pane(s).view.lines) > 0 for s in ("build",)))


async def wizard(pilot: Any) -> None:
    await keys("2", "slash", *"node", "enter")(pilot)
    await until(pilot, lambda: "Ready" in str(pilot.app.screen.query_one("#review").render()))


async def repos(pilot: Any) -> None:
    await keys("2")(pilot)
    await until(pilot, lambda: pilot.app.screen.query_one("#repos").row_count > 0)


async def activity(pilot: Any) -> None:
    await keys("3", "down", "down")(pilot)


async def render(out: Path) -> None:

    box = Sandbox(Path(os.environ["TOAST_SANDBOX_DIR"]))
    info = box.up()
    try:
        toast("--sandbox", "deploy", "toast-samples/node-server", "--subdomain", "shop", "--wait")
        githost.commit_files(
            box.layout, "toast-samples/node-server", {"message.txt": "Spring sale\n"}, "Sale"
        )
        toast("--sandbox", "redeploy", "shop", "--wait")
        for path in ("/", "/missing", "/"):  # lines for the access log
            https_get(info, "shop.sandbox.test", path)
        print(f"deployed and redeployed shop; writing screens to {out}")
        screens: dict[str, Callable[[Any], Awaitable[None]]] = {
            "deployments": keys(),
            "deployment-detail": keys("enter"),
            "deployment-ledger": keys("enter", "g"),
            "confirm-destroy": keys("D"),
            "repos": repos,
            "deploy-wizard": wizard,
            "log-panes": logs,
            "activity": activity,
            "profiles": keys("4"),
            "command-bar": keys("colon", "l", "o"),
            "help": keys("question_mark"),
        }
        for name, drive in screens.items():
            await shoot(out, name, drive)
    finally:
        box.reset_host()
        box.down()


def to_png(out: Path) -> None:
    converter = shutil.which("rsvg-convert")
    if converter is None:
        raise SystemExit("rsvg-convert is missing (scripts/screenshots installs librsvg2-bin)")
    for svg in sorted(out.glob("*.svg")):
        subprocess.run(
            [converter, "--zoom", "1.5", str(svg), "-o", str(svg.with_suffix(".png"))], check=True
        )


def main() -> None:
    import signal

    # Stopped (Ctrl+C, timeout): still take the throwaway sandbox and its apps down.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    out = Path(sys.argv[1]).resolve()
    out.mkdir(parents=True, exist_ok=True)
    for old in [*out.glob("*.svg"), *out.glob("*.png")]:
        old.unlink()
    with tempfile.TemporaryDirectory(prefix="toast-screens-") as tmp:
        # A sandbox, database and config of its own: the user's are never touched.
        os.environ.update(
            TOAST_DATA_DIR=f"{tmp}/data",
            TOAST_DB=f"{tmp}/data/toast.db",
            TOAST_CONFIG=f"{tmp}/config.toml",
            TOAST_SANDBOX_DIR=f"{tmp}/sandbox",
            TOAST_ENGINE_IDLE_EXIT="5",
            TZ="UTC",
        )
        for key in [k for k in os.environ if k.startswith("AWS_")]:
            del os.environ[key]
        time.tzset()
        asyncio.run(render(out))
    to_png(out)
    print(f"wrote the console's screens to {out}")


if __name__ == "__main__":
    main()
