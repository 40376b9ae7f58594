"""The console's one late-import seam, as the CLI's entry point is for its commands.

Start-up loads what the Deployments list needs and nothing more: the first frame is what a
user waits for (goal: within 1.3 x a bare Textual app's, tests/bench/test_bench_console.py).
The other screens (the detail's text areas, the wizard's repository detection, the log
tail's AWS client) and the console's engine-facing work (queuing a run imports the queue's
checks, the sandbox controller and httpx) load here, the first time they are used, each
behind a typed function. tests/test_import_contract.py checks what start-up leaves out."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from textual.screen import Screen

    from tui.actions import Action
    from tui.operations import Operations
    from tui.screens.wizard import DeployWizard


#: Every module loaded here: warmed in a thread a moment after the first frame, so the
#: first use of each does not pause the event loop while it imports.
MODULES = (
    "tui.operations",
    "tui.screens.deployment",
    "tui.screens.logs",
    "tui.screens.wizard",
    "tui.screens.confirm_destroy",
    "tui.screens.command_bar",
    "tui.screens.repos",
    "tui.screens.activity",
    "tui.screens.profiles",
)


def warm() -> None:
    """Import every module of this seam (blocking: call from a thread)."""
    for name in MODULES:
        importlib.import_module(name)


def section(module: str, name: str) -> Screen[None]:
    """The first screen of a section (1-4), made when the section is first opened."""
    screen: Screen[None] = getattr(importlib.import_module(f"tui.screens.{module}"), name)()
    return screen


def deployment_screen(name: str) -> Screen[None]:
    from tui.screens.deployment import DeploymentScreen

    return DeploymentScreen(name)


def logs_screen(name: str, profile: str) -> Screen[None]:
    from tui.screens.logs import LogsScreen

    return LogsScreen(name, profile)


def confirm_destroy_screen(name: str, fqdn: str) -> Screen[bool]:
    from tui.screens.confirm_destroy import ConfirmDestroy

    return ConfirmDestroy(name, fqdn)


def command_bar_screen(
    names: list[str], *, allowed: Callable[[Action], bool]
) -> Screen[str | None]:
    from tui.screens.command_bar import CommandBar

    return CommandBar(names, allowed=allowed)


def wizard_class() -> type[DeployWizard]:
    from tui.screens.wizard import DeployWizard

    return DeployWizard


def operations() -> Operations:
    """What the console asks of core beyond reading (queue a run, start the sandbox)."""
    from tui.operations import Operations

    return Operations()
