"""Headless commands that queue runs for the engine, follow them, and report."""

from __future__ import annotations

import asyncio
import contextlib
import json as jsonlib
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import click

from cli.follow import follow
from cli.output import EXIT_FAILED, EXIT_USAGE, emit_json, fail
from core.cloud.aws import Aws, AwsError
from core.cloud.gc import collect_garbage, find_garbage
from core.profile import paths
from core.profile.config import ConfigError, choose_profile, load_config
from core.profile.targets import TargetError, resolve_target
from core.repo.detect import DetectionError
from core.repo.heads import RepoCheckError
from core.repo.plans import redetect
from core.runs.access import Actor, ReadOnlyError
from core.runs.access import actor as actor_for
from core.runs.engine import Engine
from core.runs.launcher import ensure_engine, hold_engine_lock
from core.runs.queue import OperationError, head_is_live, queue_run, require_write
from core.runs.redact import Redactor
from core.runs.states import Trigger
from core.sandbox.controller import Sandbox, SandboxError
from core.views.read_models import NotFound
from core.views.read_models import describe as read
from core.views.tail import LogLine, parse_since, tails_for
from storage import Queries, StorageError, open_database

T = TypeVar("T")


def actor() -> Actor:
    """Who runs this command; read-only when `toast --read-only` was given."""
    root = click.get_current_context().find_root()
    return actor_for(Trigger.CLI, read_only=bool(root.params.get("read_only")))


def refuse_read_only(kind: str, name: str) -> None:
    """Under `toast --read-only`, stop here (audited) before anything is read or started."""
    if not actor().read_only:
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


def _after_queue(queries: Any, run: Any, name: str, wait: bool, as_json: bool) -> Awaitable[int]:
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
        elif state == "succeeded":
            d = await queries.get_deployment(name)
            click.echo(
                f"{run.kind} of {name} succeeded: https://{d.fqdn}/"
                if d and run.kind != "destroy"
                else f"{run.kind} of {name} succeeded."
            )
        if state != "succeeded":
            if final is not None and final.error:
                click.echo(f"toast: error: {final.error}", err=True)
            return EXIT_FAILED
        return 0

    return go()


def _ensure_sandbox() -> None:
    try:
        Sandbox(paths.sandbox_dir()).up()
    except SandboxError as exc:
        fail(f"the sandbox could not start: {exc}")


def _queue_command(
    kind: str,
    name: str,
    wait: bool,
    as_json: bool,
    sha: str | None = None,
    force: bool = False,
    redetect: bool = False,
) -> None:
    refuse_read_only(kind, name)  # before anything is started or read on its behalf

    async def work(queries: Any) -> int:
        nonlocal force
        d = await queries.get_deployment(name)
        if d is not None and d.profile == "sandbox":
            await asyncio.to_thread(_ensure_sandbox)
        if redetect and d is not None:
            changes = await _redetect(queries, d)
            if changes:
                force = True  # the same commit must be built again with the new plan
            if not as_json:
                click.echo(
                    "Build plan changed: " + "; ".join(changes)
                    if changes
                    else "Build plan unchanged."
                )
        if kind == "redeploy" and d is not None and not force:
            live = await _already_live(queries, d)
            if live is not None:
                if as_json:
                    emit_json({"deployment": name, "run": None, "unchanged": True, "sha": live})
                else:
                    click.echo(
                        f"{name} already serves {live[:12]}, the head of {d.branch}; nothing to "
                        f"do. `toast redeploy {name} --force` rebuilds it."
                    )
                return 0
        try:
            deployment, run = await queue_run(
                queries, name, kind, actor=actor(), sha=sha, force=force
            )
        except (OperationError, ReadOnlyError) as exc:
            fail(str(exc))
        return await _after_queue(queries, run, deployment.name, wait, as_json)

    raise SystemExit(with_queries(work))


async def _redetect(queries: Any, d: Any) -> list[str]:
    try:
        profile = choose_profile(
            load_config(paths.config_path()), requested=d.profile, sandbox=False
        )
        return await redetect(queries, resolve_target(profile), d)
    except RepoCheckError as exc:
        fail(f"{exc}" + (f"; {exc.hint}" if exc.hint else ""))
    except DetectionError as exc:
        fail(f"cannot redetect {d.name}: {exc.field}: {exc}", EXIT_USAGE)
    except (TargetError, ConfigError) as exc:
        fail(str(exc))


async def _already_live(queries: Any, d: Any) -> str | None:
    return await head_is_live(queries, d)


@click.command()
@click.argument("name")
@click.option("--force", is_flag=True, help="Rebuild even when the branch head is already live.")
@click.option(
    "--redetect",
    is_flag=True,
    help="Read the build plan from the repository again (flags given at deploy are kept).",
)
@click.option("--wait", is_flag=True, help="Follow the run until it ends.")
@click.option("--json", "as_json", is_flag=True)
def redeploy(name: str, force: bool, redetect: bool, wait: bool, as_json: bool) -> None:
    """Build the branch's new head as a new release on the same instance.

    The build plan stays as it was at deploy time, so a passing deployment does not change
    under you; --redetect reads it again (and rebuilds even the live commit if it changed).
    When the head is the commit already live, says so and does nothing (--force rebuilds
    it into a new release directory)."""
    _queue_command("redeploy", name, wait, as_json, force=force, redetect=redetect)


@click.command()
@click.argument("name")
@click.option(
    "--to",
    "sha",
    default=None,
    metavar="SHA",
    help="Release to return to (default: the one before the current).",
)
@click.option("--wait", is_flag=True, help="Follow the run until it ends.")
@click.option("--json", "as_json", is_flag=True)
def rollback(name: str, sha: str | None, wait: bool, as_json: bool) -> None:
    """Serve an earlier release again, without rebuilding."""
    _queue_command("rollback", name, wait, as_json, sha)


@click.command()
@click.argument("name")
@click.option("--yes", is_flag=True, help="Confirm: delete the instance, DNS record and logs.")
@click.option("--wait", is_flag=True, help="Follow the run until it ends.")
@click.option("--json", "as_json", is_flag=True)
def destroy(name: str, yes: bool, wait: bool, as_json: bool) -> None:
    """Delete everything the deployment created, following the ledger."""
    if not yes:
        fail(
            f"destroying {name} deletes its instance, DNS record and logs; pass --yes to confirm",
            EXIT_USAGE,
        )
    _queue_command("destroy", name, wait, as_json)


async def describe(queries: Any, name: str) -> dict[str, Any]:
    try:
        return await read(queries, name)
    except NotFound as exc:
        fail(str(exc))


@click.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
def show(name: str, as_json: bool) -> None:
    """A deployment: state, URL, instance, releases, certificate, last run and its steps."""
    info = with_queries(lambda q: describe(q, name))
    if as_json:
        emit_json(info)
        return
    click.echo(f"{info['name']}  {info['state']}  {info['url']}")
    click.echo(f"  repo      {info['repo']}@{info['branch']} ({info['build_type']})")
    for key, item in (info["plan"] or {}).items():
        if key != "build_type" and item["value"]:
            click.echo(f"    {key:<13} {item['value']}  ({item['source']})")
    click.echo(f"  instance  {info['instance'] or '-'}  {info['ip'] or ''}")
    click.echo(f"  release   {(info['current_release'] or '-')[:12]}")
    if info["certificate_expires_at"]:
        days = (info["certificate_expires_at"] - time.time()) / 86400
        warning = f"  (expires in {max(days, 0):.0f} days: renewal is overdue)" if days < 14 else ""
        click.echo(
            "  cert      valid until "
            + time.strftime("%Y-%m-%d", time.gmtime(info["certificate_expires_at"]))
            + warning
        )
    last = info["last_run"]
    if last:
        click.echo(f"  last run  {last['id']} {last['kind']} {last['state']}")
        for step in last["steps"]:
            click.echo(
                f"    {step['state']:<10} {step['name']:<13} "
                f"{step['error'] or step['detail'] or ''}"
            )


@click.command()
@click.option("--delete", "delete", is_flag=True, help="Delete orphans and close stale entries.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def gc(obj: Any, delete: bool, as_json: bool) -> None:
    """Find Toast-tagged resources missing from the ledger, and ledger entries already gone."""
    profile = obj.profile()
    if delete:
        refuse_read_only("gc --delete", profile.name)
    if profile.is_sandbox:
        _ensure_sandbox()
    try:
        target = resolve_target(profile)
    except TargetError as exc:
        fail(str(exc))

    async def work(queries: Any) -> dict[str, Any]:
        aws = await Aws.connect(target)
        findings = await find_garbage(aws, queries, target.profile)
        done = await collect_garbage(aws, queries, target.profile, findings) if delete else []
        return {"findings": [f.to_json() for f in findings], "done": done}

    result = with_queries(work)
    if as_json:
        emit_json(result)
        return
    if not result["findings"]:
        click.echo("Nothing to collect: the ledger matches the cloud.")
    for finding in result["findings"]:
        click.echo(f"{finding['problem']:<7} {finding['kind']:<15} {finding['id']}")
    for line in result["done"]:
        click.echo(line)
    if result["findings"] and not delete:
        click.echo("Run `toast gc --delete` to remove orphans and close stale entries.")


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


COMMANDS = [show, redeploy, rollback, destroy, gc, engine]


@click.command()
@click.argument("name")
@click.option(
    "--source",
    "sources",
    multiple=True,
    type=click.Choice(["build", "access", "error", "app"]),
    help="Which log (repeatable; default: all).",
)
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines until Ctrl+C.")
@click.option(
    "--since",
    default="10m",
    show_default=True,
    metavar="DURATION",
    help="How far back to start: 30s, 10m, 2h, 1d.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def logs(name: str, sources: tuple[str, ...], follow: bool, since: str, as_json: bool) -> None:
    """Print a deployment's logs from CloudWatch (build, nginx access and error, app)."""
    try:
        since_ms = parse_since(since)
    except ValueError as exc:
        fail(f"--since: {exc}", EXIT_USAGE)

    async def deployment_profile(queries: Any) -> str:
        d = await queries.get_deployment(name)
        if d is None:
            fail(f"no deployment named {name!r}; see `toast ls`")
        return str(d.profile)

    profile = choose_profile(
        load_config(paths.config_path()), requested=with_queries(deployment_profile), sandbox=False
    )
    try:
        target = resolve_target(profile)
    except TargetError as exc:
        fail(str(exc))

    def emit(line: LogLine) -> None:
        if as_json:
            click.echo(jsonlib.dumps(line.to_json(), ensure_ascii=False))
        else:
            stamp = time.strftime("%H:%M:%S", time.localtime(line.timestamp / 1000))
            click.echo(f"{stamp} {line.source:<6} {line.message}")

    async def run() -> None:
        aws = await Aws.connect(target)
        redact = Redactor([target.github_token] if target.github_token else [])
        start = int(time.time() * 1000) - since_ms
        tails = tails_for(aws, name, list(sources) or None, start_ms=start, redact=redact)
        first = await asyncio.gather(*(t.poll_once() for t in tails))
        for line in sorted((ln for batch in first for ln in batch), key=lambda ln: ln.timestamp):
            emit(line)
        if not follow:
            return
        queue: asyncio.Queue[list[LogLine]] = asyncio.Queue()

        async def pump(tail: Any) -> None:
            async for batch in tail.follow():
                await queue.put(batch)

        pumps = [asyncio.create_task(pump(t)) for t in tails]
        try:
            while True:
                for line in await queue.get():
                    emit(line)
        finally:
            for task in pumps:
                task.cancel()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass
    except AwsError as exc:
        fail(str(exc))


COMMANDS.append(logs)
