"""`toast engine`: the engine in the foreground."""

from __future__ import annotations

import asyncio
import os
import time

import click

from core.profile import paths
from core.runs.engine import Engine
from core.runs.launcher import hold_engine_lock


@click.command()
@click.option(
    "--idle-exit",
    type=float,
    default=None,
    metavar="SECONDS",
    help="Exit after this long with nothing to do (default: run until stopped).",
)
def engine(idle_exit: float | None) -> None:
    """Run the engine in the foreground: execute queued runs."""
    lock = hold_engine_lock()
    if lock is None:
        click.echo("Another engine is running.")
        return
    runner = Engine(
        paths.database_path(),
        idle_exit_s=idle_exit,
        # Flushed line by line: the engine's log is read while it runs.
        say=lambda m: print(f"{time.strftime('%H:%M:%S')} {m}", flush=True),
    )
    try:
        asyncio.run(runner.run())
    except KeyboardInterrupt:
        pass
    finally:
        os.close(lock)
