"""`toast redeploy`, `rollback` and `destroy`: runs queued for the engine, followed with --wait."""

from __future__ import annotations

import asyncio
from typing import Any

import click

from cli.common import actor, after_queue, ensure_sandbox, refuse_unless_allowed, with_queries
from cli.output import EXIT_USAGE, emit_json, fail
from core.profile import paths
from core.profile.config import ConfigError, choose_profile, load_config
from core.profile.targets import TargetError, resolve_target
from core.repo.detect import DetectionError
from core.repo.heads import RepoCheckError
from core.repo.plans import redetect
from core.runs.access import ReadOnlyError
from core.runs.queue import OperationError, head_is_live, queue_run


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


def queue_command(
    kind: str,
    name: str,
    wait: bool,
    as_json: bool,
    sha: str | None = None,
    force: bool = False,
    redetect: bool = False,
) -> None:
    refuse_unless_allowed(kind, name)  # before anything is started or read on its behalf

    async def work(queries: Any) -> int:
        nonlocal force
        d = await queries.get_deployment(name)
        if d is not None and d.profile == "sandbox":
            await asyncio.to_thread(ensure_sandbox)
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
        return await after_queue(queries, run, deployment.name, wait, as_json)

    raise SystemExit(with_queries(work))


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
    queue_command("redeploy", name, wait, as_json, force=force, redetect=redetect)


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
    queue_command("rollback", name, wait, as_json, sha)


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
    queue_command("destroy", name, wait, as_json)
