"""`toast detect` and `toast deploy`: read the repository's build plan, merge the flags
given, check everything that can be checked, and queue the run."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from pathlib import Path
from typing import Any, NoReturn

import click

from cli.common import (
    actor,
    after_queue,
    ensure_sandbox,
    open_queries,
    refuse_unless_allowed,
    run_with_storage,
)
from cli.output import EXIT_FAILED, EXIT_USAGE, emit_json, fail
from core.host.operator_address import OperatorAddressError, operator_cidr
from core.profile.targets import TargetError, resolve_target
from core.repo.detect import BuildPlan, DetectionError, resolve
from core.repo.heads import RepoCheckError
from core.repo.plan_file import render_plan_file
from core.repo.plans import apply_plan, cannot_deploy, describe_plan, detect_repo
from core.repo.spec import DeploySpec, SpecError, parse_env, validate
from core.runs.access import ReadOnlyError
from core.runs.launcher import ensure_engine
from core.runs.queue import OperationError, queue_deploy


def _target(obj: Any) -> Any:
    profile = obj.profile()
    if profile.is_sandbox:
        ensure_sandbox()
    try:
        return resolve_target(profile)
    except TargetError as exc:
        fail(str(exc))


def _plan_failed(exc: Exception) -> NoReturn:
    """The command fails saying why the repository's plan cannot be read."""
    if isinstance(exc, RepoCheckError):
        fail(f"{exc}" + (f"; {exc.hint}" if exc.hint else ""))
    if isinstance(exc, DetectionError):
        fail(f"{exc.field}: {exc}", EXIT_USAGE)
    raise exc


def _read_plan(target: Any, repo: str, branch: str, root: str) -> Any:
    try:
        return asyncio.run(detect_repo(target, repo, branch, root))
    except Exception as exc:
        _plan_failed(exc)


async def _plan_of(target: Any, repo: str, branch: str, root: str) -> Any:
    try:
        return await detect_repo(target, repo, branch, root)
    except Exception as exc:
        _plan_failed(exc)


@click.command()
@click.argument("repo")
@click.option("--branch", default="main", show_default=True)
@click.option(
    "--root", "root_dir", default="", help="The app's directory in a monorepo (e.g. apps/web)."
)
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.option(
    "--write",
    is_flag=True,
    help="Print the plan as a toast.toml and offer to write it to ./toast.toml.",
)
@click.option("--yes", is_flag=True, help="With --write: write without asking.")
@click.pass_obj
def detect(
    obj: Any, repo: str, branch: str, root_dir: str, as_json: bool, write: bool, yes: bool
) -> None:
    """Show the build plan Toast reads from REPO, and where each value came from.

    Reads only a few files at the branch head (GitHub's contents API for owner/name, a
    shallow fetch for a git URL). Exits 1 when a value cannot be detected, naming the flag
    `toast deploy` needs for it. With --write, the plan becomes a toast.toml to commit at
    the app's root, so every deploy builds it the same way."""
    plan = _read_plan(_target(obj), repo, branch, root_dir)
    if write:
        _write_plan_file(repo, plan, yes)
        return
    try:
        chosen = resolve(plan, {})
        problem = None
    except DetectionError as exc:
        chosen = {k: v for k, v in plan.values().items() if k not in ("framework",)}
        problem = exc
    if as_json:
        emit_json({"repo": repo, "branch": branch, **plan.to_json(), "complete": not problem})
    else:
        commit = f" ({plan.commit[:12]})" if plan.commit else ""
        click.echo(f"Build plan for {repo}@{branch}{commit}:")
        for line in describe_plan(chosen, plan):
            click.echo(line)
    if problem is not None:
        fail(f"{problem.field}: {problem}", EXIT_FAILED)


def _write_plan_file(repo: str, plan: BuildPlan, yes: bool) -> None:
    try:
        chosen = resolve(plan, {})
    except DetectionError as exc:
        fail(cannot_deploy(repo, exc) + "; set it in toast.toml by hand", EXIT_FAILED)
    values = {name: item.value for name, item in chosen.items()}
    text = render_plan_file(values)
    click.echo(text, nl=False)
    path = Path("toast.toml")
    question = f"{'Replace' if path.exists() else 'Write'} {path.resolve()}?"
    if not yes and not click.confirm(question, default=False, err=True):
        click.echo("not written", err=True)
        return
    path.write_text(text)
    click.echo(f"wrote {path.resolve()}; commit it at the app's root", err=True)


@click.command()
@click.argument("repo")
@click.option(
    "--subdomain",
    required=True,
    help="DNS label; the app is served at <subdomain>.<base_domain>. Also the deployment's name.",
)
@click.option("--branch", default="main", show_default=True)
@click.option(
    "--root", "root_dir", default="", help="The app's directory in a monorepo (e.g. apps/web)."
)
@click.option(
    "--build-type",
    type=click.Choice(["static", "node"]),
    default=None,
    help="static: serve the build output; node: run a server. Default: detected.",
)
@click.option(
    "--node",
    "node_version",
    default=None,
    help="Node.js major: 20, 22 or 24 (the lines Amazon Linux 2023 packages). "
    "Default: from .nvmrc, .node-version, engines.node or volta.node, else 24.",
)
@click.option("--install", "install_cmd", default=None, help="Default: from the lockfile.")
@click.option("--build", "build_cmd", default=None, help="Default: the build script.")
@click.option(
    "--output-dir", default=None, help="Static builds: the directory to serve. Default: detected."
)
@click.option(
    "--start",
    "start_cmd",
    default=None,
    help="Node apps: the command that serves on $PORT. Default: detected.",
)
@click.option(
    "--port",
    type=int,
    default=None,
    help="Node apps: base port ($PORT). Default: toast.toml's port, else 3000.",
)
@click.option(
    "--env",
    "env_pairs",
    multiple=True,
    metavar="NAME=VALUE",
    help="Environment for build and app (repeatable).",
)
@click.option(
    "--secret",
    "secret_pairs",
    multiple=True,
    metavar="NAME[=VALUE]",
    help="Secret environment: never stored locally or shown; NAME alone reads it "
    "from your environment (repeatable).",
)
@click.option("--instance-type", default=None, help="EC2 instance type (default: the profile's).")
@click.option(
    "--health-path",
    default=None,
    help="The path the health check asks for. Default: toast.toml's health_path, else /.",
)
@click.option("--wait", is_flag=True, help="Follow the deploy until it ends.")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.pass_obj
def deploy(
    obj: Any,
    repo: str,
    subdomain: str,
    branch: str,
    root_dir: str,
    build_type: str | None,
    node_version: str | None,
    install_cmd: str | None,
    build_cmd: str | None,
    output_dir: str | None,
    start_cmd: str | None,
    port: int | None,
    env_pairs: tuple[str, ...],
    secret_pairs: tuple[str, ...],
    instance_type: str | None,
    health_path: str | None,
    wait: bool,
    as_json: bool,
) -> None:
    """Deploy REPO (GitHub owner/name or a git URL) to a new instance.

    The build (framework, package manager, commands, output dir, Node version) is read
    from the repository; each flag given overrides what was detected. The plan is printed
    before the run is queued and kept with the deployment."""
    profile = obj.profile()
    refuse_unless_allowed("deploy", subdomain)
    given = {
        "build_type": build_type,
        "node_version": node_version,
        "install_cmd": install_cmd,
        "build_cmd": build_cmd,
        "output_dir": output_dir,
        "start_cmd": start_cmd,
        "port": str(port) if port is not None else None,
        "health_path": health_path,
    }

    def refuse(exc: SpecError) -> None:
        fail(
            "invalid deploy: " + "; ".join(f"{k}: {v}" for k, v in exc.problems.items()), EXIT_USAGE
        )

    try:
        env = parse_env(list(env_pairs), list(secret_pairs), dict(os.environ))
        base = DeploySpec(
            repo=repo,
            subdomain=subdomain,
            branch=branch,
            port=port if port is not None else DeploySpec.port,
            env=tuple(env),
            instance_type=instance_type or profile.instance_type,
            health_path=health_path if health_path is not None else DeploySpec.health_path,
        )
        # Everything that does not depend on the repository is checked before reading it.
        provisional = dataclasses.replace(
            base,
            build_type=build_type or base.build_type,
            node_version=node_version or base.node_version,
            install_cmd=install_cmd or base.install_cmd,
            build_cmd=build_cmd or base.build_cmd,
            output_dir=output_dir or base.output_dir,
            start_cmd=start_cmd or base.start_cmd,
        )
        validate(provisional)
    except SpecError as exc:
        refuse(exc)
    target = _target(obj)

    async def work() -> int:
        if wait:
            # Someone waits for the site: the engine boots while the repository is read, so
            # it claims the run the moment it is queued.
            await asyncio.to_thread(ensure_engine)
        # The operator's address is waited for on the network too: the database is opened
        # meanwhile, on this loop.
        address = asyncio.ensure_future(operator_cidr(profile))
        # Its failure is reported below, or not at all when the plan failed first.
        address.add_done_callback(lambda t: t.cancelled() or t.exception())
        async with open_queries() as queries:
            plan = await _plan_of(target, repo, branch, root_dir)
            try:
                spec, chosen = apply_plan(base, plan, given)
                validate(spec)
            except DetectionError as exc:
                fail(cannot_deploy(repo, exc), EXIT_USAGE)
            except SpecError as exc:
                refuse(exc)
            try:
                ssh_from, ssh_source = await address
            except OperatorAddressError as exc:
                fail(str(exc), EXIT_USAGE)
            if not as_json:
                commit = f" ({plan.commit[:12]})" if plan.commit else ""
                click.echo(f"Build plan for {repo}@{branch}{commit}:")
                for line in describe_plan(chosen, plan):
                    click.echo(line)
                click.echo(
                    f"Instance: {spec.instance_type} in {profile.region}; HTTP and HTTPS open, "
                    f"SSH from {ssh_from} ({ssh_source})"
                )
            try:
                deployment, run = await queue_deploy(queries, profile, spec, actor=actor())
            except (OperationError, ReadOnlyError) as exc:
                fail(str(exc))
            return await after_queue(queries, run, deployment.name, wait, as_json)

    raise SystemExit(run_with_storage(work))
