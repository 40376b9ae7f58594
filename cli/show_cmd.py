"""`toast ls`, `show` and `logs`: the deployments, one deployment's state, and its logs
from CloudWatch."""

from __future__ import annotations

import asyncio
import json as jsonlib
import time
from typing import Any

import click

from cli.common import describe, open_queries, with_queries
from cli.output import EXIT_USAGE, emit_json, fail
from core.cloud.aws import Aws, AwsError
from core.profile import paths
from core.profile.config import choose_profile, load_config
from core.profile.targets import TargetError, resolve_target
from core.runs.redact import Redactor
from core.views.kept_output import KeptOutput, kept_build_output
from core.views.read_models import LIST_COLUMNS, list_table
from core.views.read_models import list_deployments as read_list
from core.views.tail import LogLine, parse_since, tails_for
from storage import Queries, StorageError, open_database


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
    live = next((r for r in info["releases"] if r["live"]), None)
    built_with = f"  built with Node {live['node']}" if live and live.get("node") else ""
    click.echo(f"  release   {(info['current_release'] or '-')[:12]}{built_with}")
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
        click.echo(f"  last run  {last['id']} {last['kind']} {last['state']} ({last['trigger']})")
        for step in last["steps"]:
            click.echo(
                f"    {step['state']:<10} {step['name']:<13} "
                f"{step['error'] or step['detail'] or ''}"
            )
        late = [step["name"] for step in last["steps"] if step["state"] == "failed"]
        if last["state"] in ("running", "succeeded") and late:
            click.echo(
                f"  warning   the site is live, but a check after it failed: {', '.join(late)}"
            )


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

    async def kept(queries: Queries) -> KeptOutput | None:
        d = await queries.get_deployment(name)
        return await kept_build_output(queries, d) if d is not None else None

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
        build = next((t for t in tails if t.source == "build"), None)
        if build is not None and build.group_missing:
            # A failed first deploy was rolled back with its log groups: the engine's own
            # record of the build is what is left, and it is said where it comes from.
            async with open_queries() as queries:
                found = await kept(queries)
            if found is None:
                fail(
                    f"no build output for {name}: its log group {build.group} does not exist "
                    "and no run recorded build output (the build has not started yet?)"
                )
            click.echo(
                f"{build.group} is gone (a failed first deploy is rolled back with its logs); "
                f"the build output of {found.run_kind} run {found.run_id} ({found.run_state}) "
                "as Toast recorded it:",
                err=True,
            )
            for at, message in found.lines:
                emit(LogLine(int(at * 1000), "build", message, "", "toast"))
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


@click.command("ls")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.option("--all", "include_destroyed", is_flag=True, help="Include destroyed deployments.")
@click.pass_obj
def list_deployments(obj: Any, as_json: bool, include_destroyed: bool) -> None:
    """List deployments recorded in the local state database."""
    obj.check_config()  # a broken config is reported before anything is opened or written

    sandbox = obj.sandbox or obj.requested_profile == "sandbox"

    async def load() -> Any:
        db = await open_database(paths.database_path())
        try:
            if as_json:
                return await read_list(Queries(db), include_destroyed=include_destroyed)
            return await list_table(
                Queries(db), include_destroyed=include_destroyed, sandbox=sandbox
            )
        finally:
            await db.close()

    try:
        rows = asyncio.run(load())
    except StorageError as exc:
        fail(str(exc))
    if as_json:
        emit_json(rows)
        return
    if not rows:
        click.echo("No deployments yet.")
        return
    # The console's columns, each as wide as its widest value.
    titles = [title.upper() for title, _ in LIST_COLUMNS]
    widths = [max(len(t), *(len(r[i]) for r in rows)) for i, t in enumerate(titles)]
    for line in [titles, *rows]:
        click.echo("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip())
