"""The engine and storage never import the UI toolkit; the console defers boto3."""

from __future__ import annotations

import os
import pkgutil
import subprocess
import sys

import core
import storage

from .conftest import PROJECT_ROOT


def all_modules(package: object) -> list[str]:
    path = package.__path__  # type: ignore[attr-defined]
    prefix = package.__name__ + "."  # type: ignore[attr-defined]
    return sorted(m.name for m in pkgutil.walk_packages(path, prefix) if "__main__" not in m.name)


def test_core_and_storage_never_import_textual_or_rich() -> None:
    """Every module of core and storage imported: no import of textual or rich comes from
    Toast's own code. (httpx loads its optional command line, and with it rich, whenever
    rich is installed, as Textual makes it: that one importer is httpx's, not ours.)"""
    modules = all_modules(core) + all_modules(storage)
    assert "core.sandbox.controller" in modules and "storage.queries" in modules
    code = (
        "import builtins, importlib, sys\n"
        "real = builtins.__import__\n"
        "importers = set()\n"
        "def watch(name, globals=None, locals=None, fromlist=(), level=0):\n"
        "    caller = (globals or {}).get('__name__', '?')\n"
        "    ui = name.split('.')[0] in ('textual', 'rich')\n"
        "    if ui and caller.split('.')[0] not in ('textual', 'rich'):\n"
        "        importers.add(caller)\n"
        "    return real(name, globals, locals, fromlist, level)\n"
        "builtins.__import__ = watch\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(','.join(sorted(importers)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    )
    assert set(filter(None, result.stdout.strip().split(","))) <= {"httpx._main"}, result.stdout


def test_headless_commands_do_not_load_textual() -> None:
    code = (
        "import sys\nfrom click.testing import CliRunner\nfrom cli.main import cli\n"
        "CliRunner().invoke(cli, ['--version'])\n"
        "print(any(m.startswith('textual') for m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_a_quick_command_loads_only_what_it_needs(tmp_path: object) -> None:
    """`toast ls` (the CLI's commands are loaded when run): not the engine's SSH, the
    webhook server or notifications, which made it 3 x slower."""
    code = (
        "import sys\nfrom click.testing import CliRunner\nfrom cli.main import cli\n"
        "result = CliRunner().invoke(cli, ['ls', '--json'])\n"
        "assert result.exit_code == 0, result.output\n"
        "heavy = ('asyncssh', 'aiohttp', 'apprise', 'textual', 'boto3')\n"
        "print(','.join(sorted(m for m in heavy if m in sys.modules)))\n"
    )
    env = {**os.environ, "TOAST_DATA_DIR": str(tmp_path), "TOAST_ENGINE_AUTOSTART": "0"}
    env["TOAST_DB"] = f"{tmp_path}/toast.db"
    env["TOAST_CONFIG"] = f"{tmp_path}/config.toml"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"loaded by `toast ls`: {result.stdout}"


def test_console_imports_boto3_and_other_screens_only_after_first_paint(tmp_path: object) -> None:
    code = f"""
import asyncio, sys
from pathlib import Path
from core.profile.config import sandbox_profile
from tui.app import ToastApp
from tests.helpers.waiting import until

async def main():
    app = ToastApp(sandbox_profile(), Path({str(tmp_path)!r}) / 't.db', start_sandbox=False)
    seen = []
    async with app.run_test() as pilot:
        # on_mount has run and the first frame is composed
        seen.append('boto3' in sys.modules or 'tui.screens.wizard' in sys.modules)
        # warmed in the background a moment after the list shows, with the screens and
        # operations tui.lazy loads (their first use need not pause the event loop)
        later = ('boto3', 'tui.screens.wizard', 'tui.operations')
        warmed = lambda: all(m in sys.modules for m in later)
        await until(pilot, warmed, 'boto3 and the other screens to be warmed', timeout=10)
        seen.append(warmed())
    print(seen)

assert 'boto3' not in sys.modules
asyncio.run(main())
"""
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert result.stdout.strip().splitlines()[-1] == "[False, True]"


def test_the_run_context_does_not_depend_on_the_steps() -> None:
    """Steps build on the run context, never the reverse: connecting to an instance takes
    plain values, so importing the context loads no step module (no import cycle)."""
    code = (
        "import sys, core.runs.context, core.host.connect\n"
        "print(','.join(sorted(m for m in sys.modules if m.startswith('core.steps'))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "", f"step modules loaded: {result.stdout}"


def test_the_console_starts_with_only_what_the_deployments_list_needs() -> None:
    """The other screens, and queuing runs or starting the sandbox (the queue's checks, the
    sandbox controller, httpx), load when first used, through tui.lazy: importing them
    all at start-up made the first frame 2 x a bare Textual app's."""
    code = (
        "import sys, tui.app\n"
        "later = ('tui.screens.wizard', 'tui.screens.deployment', 'tui.screens.logs',\n"
        "         'tui.operations', 'core.runs.queue', 'core.sandbox.controller', 'httpx',\n"
        "         'dotenv', 'yaml')\n"
        "print(','.join(m for m in later if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "", f"loaded at start-up: {result.stdout}"
