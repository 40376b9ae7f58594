"""`toast sandbox ...`: the local cloud used by `--sandbox` and by the tests."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from cli.common import refuse_unless_allowed
from cli.output import emit_json, fail
from core.profile import paths
from core.sandbox.controller import Sandbox, SandboxError, host_login
from core.sandbox.controller import doctor as check

if TYPE_CHECKING:
    from core.sandbox.controller import Sandbox


def _sandbox() -> Sandbox:
    return Sandbox(paths.sandbox_dir())


@click.group()
def sandbox() -> None:
    """Run a local rehearsal of AWS, an instance and Let's Encrypt on 127.0.0.1."""


@sandbox.command()
@click.option("--json", "as_json", is_flag=True, help="Print endpoints and ports as JSON.")
def up(as_json: bool) -> None:
    """Start the sandbox (only what is not already running)."""
    refuse_unless_allowed("sandbox up", "the sandbox")

    def progress(message: str) -> None:
        if not as_json:
            click.echo(f"  {message}", err=True)

    try:
        info = _sandbox().up(progress=progress)
    except SandboxError as exc:
        fail(str(exc))
    if as_json:
        emit_json(info.to_json())
    else:
        _print_info(info.to_json())


@sandbox.command()
@click.option(
    "--json", "as_json", is_flag=True, help="Print endpoints, ports and processes as JSON."
)
def status(as_json: bool) -> None:
    """Show whether the sandbox runs, and where each service listens."""
    info = _sandbox().status()
    if info is None:
        if as_json:
            emit_json({"running": False})
        else:
            click.echo("The sandbox has never been started. Start it with: toast sandbox up")
        return
    if as_json:
        emit_json(info.to_json())
    else:
        _print_info(info.to_json())


@sandbox.command()
def down() -> None:
    """Stop every process the sandbox started, its apps included. AWS state (instances,
    DNS, logs) is kept for the next `up`; node apps start again with `toast redeploy NAME
    --force`."""
    refuse_unless_allowed("sandbox down", "the sandbox")
    stopped = _sandbox().down()
    click.echo(f"Stopped: {', '.join(stopped)}." if stopped else "Nothing was running.")
    apps = [s.removeprefix("app ") for s in stopped if s.startswith("app ")]
    if apps:
        click.echo(
            "AWS state is kept for the next `toast sandbox up` (static sites serve again "
            "then); node apps start again with `toast redeploy NAME --force`."
        )


@sandbox.command()
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def reset(yes: bool) -> None:
    """Stop the sandbox and delete all its state."""
    refuse_unless_allowed("sandbox reset", "the sandbox")
    if not yes:
        click.confirm(f"Delete everything under {paths.sandbox_dir()}?", abort=True)
    _sandbox().reset()
    click.echo("Sandbox stopped and wiped.")


@sandbox.command()
def doctor() -> None:
    """Check that this machine has what the sandbox needs; print the fix for what is missing."""
    click.echo(host_login())
    problems = check()
    if not problems:
        click.echo("Everything the sandbox needs is installed.")
        return
    for problem in problems:
        click.echo(f"missing: {problem.what}\n  fix: {problem.fix}")
    raise SystemExit(1)


def _print_info(info: dict[str, object]) -> None:
    state = "running" if info["running"] else "stopped"
    click.echo(f"Sandbox {state} ({info['dir']})")
    for key in (
        "aws_endpoint",
        "base_domain",
        "http_port",
        "https_port",
        "dns",
        "ssh",
        "github_api",
        "acme_directory",
        "ca_bundle",
    ):
        click.echo(f"  {key:<15} {info[key]}")
    components = info["components"]
    assert isinstance(components, dict)
    for name, comp in components.items():
        click.echo(f"  {name:<15} {'up' if comp['running'] else 'down'} (pid {comp['pid']})")
