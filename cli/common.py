"""What the CLI's commands share: who runs them, the state database for one command, queuing
a run and following it, and starting the sandbox."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import click

from cli.follow import LIVE, follow
from cli.output import EXIT_FAILED, emit_json, fail
from core.profile import paths
from core.runs.access import Actor, ReadOnlyError, Role
from core.runs.access import actor as actor_for
from core.runs.launcher import ensure_engine
from core.runs.queue import require_write
from core.runs.states import Trigger
from core.sandbox.controller import Sandbox, SandboxError
from core.views.read_models import NotFound
from core.views.read_models import describe as read
from storage import Queries, StorageError, open_database

T = TypeVar("T")


def actor() -> Actor:
    """Who runs this command: read-only under `toast --read-only`; the person and role
    `--as`/`--role` name (an SSH forced command), over ssh."""
    root = click.get_current_context().find_root()
    read_only = bool(root.params.get("read_only"))
    name = root.params.get("as_name")
    if name:
        role = Role(root.params.get("role") or Role.VIEWER)
        return actor_for(Trigger.SSH, read_only=read_only, name=name, role=role)
    via = Trigger.CONSOLE if root.invoked_subcommand is None else Trigger.CLI
    return actor_for(via, read_only=read_only)


def refuse_unless_allowed(kind: str, name: str) -> None:
    """When the actor may not `kind` (`--read-only`, a viewer, a deployer's destroy), stop
    here, audited, before anything is read or started on its behalf (the sandbox, an
    engine)."""
    if actor().may(kind):
        return

    async def check(queries: Any) -> None:
        try:
            await require_write(queries, actor(), kind, name)
        except ReadOnlyError as exc:
            fail(str(exc))

    with_queries(check)


@contextlib.asynccontextmanager
async def open_queries() -> AsyncIterator[Any]:
    """The state database, open for one command."""
    db = await open_database(paths.database_path())
    try:
        yield Queries(db)
    finally:
        await db.close()


def run_with_storage(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a command's event loop; a database that cannot be used fails it in one line."""
    try:
        return asyncio.run(main())
    except StorageError as exc:
        fail(str(exc))


def with_queries(work: Callable[[Any], Awaitable[T]]) -> T:
    async def main() -> T:
        async with open_queries() as queries:
            return await work(queries)

    return run_with_storage(main)


def after_queue(queries: Any, run: Any, name: str, wait: bool, as_json: bool) -> Awaitable[int]:
    async def go() -> int:
        ensure_engine()
        if not wait:
            if as_json:
                emit_json({"deployment": name, "run": run.id, "kind": run.kind, "state": run.state})
            else:
                click.echo(
                    f"Queued {run.kind} of {name} as run {run.id}. Follow it with "
                    f"`toast show {name}`."
                )
            return 0
        if not as_json:
            click.echo(f"Run {run.id}: {run.kind} {name} (Ctrl+C stops following, not the run)")

        try:
            state = await follow(queries, run.id, as_json=as_json)
        except (KeyboardInterrupt, asyncio.CancelledError):
            click.echo(f"Stopped following; run {run.id} goes on.", err=True)
            return 0
        final = await queries.get_run(run.id)
        if as_json:
            emit_json(await describe(queries, name))
        elif state in ("succeeded", LIVE):
            d = await queries.get_deployment(name)
            click.echo(
                f"{run.kind} of {name} succeeded: https://{d.fqdn}/"
                if d and run.kind != "destroy"
                else f"{run.kind} of {name} succeeded."
            )
            pending = [
                s.name for s in await queries.steps_for(run.id) if s.state in ("pending", "running")
            ]
            if state == LIVE and pending:
                click.echo(
                    f"Still checking after going live: {', '.join(pending)} (run {run.id}); "
                    f"`toast show {name}` has the result."
                )
        if state not in ("succeeded", LIVE):
            if final is not None and final.error:
                click.echo(f"toast: error: {final.error}", err=True)
            return EXIT_FAILED
        return 0

    return go()


def ensure_sandbox() -> None:
    try:
        Sandbox(paths.sandbox_dir()).up()
    except SandboxError as exc:
        fail(f"the sandbox could not start: {exc}")


async def describe(queries: Any, name: str) -> dict[str, Any]:
    try:
        return await read(queries, name)
    except NotFound as exc:
        fail(str(exc))
