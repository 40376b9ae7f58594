"""Entry point of the `toast` command.

Startup stays light, a documented seam: each command's module (and what it needs: asyncssh
and aiohttp for `engine` and `serve`, Textual for the console, boto3 for AWS) is imported
when that command runs, through click's lazily loaded subcommands. `toast ls` does not pay
for the engine or the webhook server.
"""

from __future__ import annotations

import importlib
import re
import sys
from dataclasses import dataclass

import click

from cli.output import EXIT_USAGE, fail
from core.profile import paths
from core.profile.config import ConfigError, Profile, choose_profile, load_config
from core.runs.access import Role
from core.runs.launcher import resume_unfinished

#: Each command, and the module.attribute that defines it.
COMMANDS = {
    "activity": "cli.activity_cmd.activity",
    "authorized-keys-line": "cli.serve_cmd.authorized_keys_line",
    "deploy": "cli.deploy_cmd.deploy",
    "destroy": "cli.lifecycle_cmd.destroy",
    "detect": "cli.deploy_cmd.detect",
    "doctor": "cli.doctor_cmd.doctor",
    "engine": "cli.engine_cmd.engine",
    "gc": "cli.gc_cmd.gc",
    "logs": "cli.show_cmd.logs",
    "ls": "cli.show_cmd.list_deployments",
    "notify": "cli.serve_cmd.notify",
    "redeploy": "cli.lifecycle_cmd.redeploy",
    "rollback": "cli.lifecycle_cmd.rollback",
    "sandbox": "cli.sandbox_cmd.sandbox",
    "serve": "cli.serve_cmd.serve",
    "show": "cli.show_cmd.show",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported when used (click's documented pattern for
    lazily loaded subcommands); `--help` imports them all to list them."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        where = COMMANDS.get(cmd_name)
        if where is None:
            return None
        module, name = where.rsplit(".", 1)
        command = getattr(importlib.import_module(module), name)
        assert isinstance(command, click.Command) and command.name == cmd_name, where
        return command


@dataclass
class Context:
    requested_profile: str | None
    sandbox: bool

    def check_config(self) -> None:
        """Validate config.toml (and a requested profile) without choosing a profile."""
        try:
            config = load_config(paths.config_path())
            if self.requested_profile:
                config.profile(self.requested_profile)
        except ConfigError as exc:
            fail(str(exc), EXIT_USAGE)

    def profile(self) -> Profile:
        try:
            config = load_config(paths.config_path())
            return choose_profile(config, requested=self.requested_profile, sandbox=self.sandbox)
        except ConfigError as exc:
            fail(str(exc), EXIT_USAGE)


@click.group(
    cls=LazyGroup,
    invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.option(
    "--profile",
    "profile_name",
    metavar="NAME",
    envvar="TOAST_PROFILE",
    help="Config profile to use (default: default_profile, or the sandbox when no AWS "
    "credentials exist). Env: TOAST_PROFILE.",
)
@click.option(
    "--sandbox", is_flag=True, help="Use the local sandbox cloud (same as --profile sandbox)."
)
@click.option(
    "--read-only",
    is_flag=True,
    help="Look, never change: the console hides deploy, redeploy, roll back and destroy, "
    "and they are refused (and audited) wherever they are asked for, CLI commands included.",
)
@click.option(
    "--as",
    "as_name",
    metavar="NAME",
    default=None,
    help="Act for NAME over SSH (a forced command in authorized_keys sets it): the audit "
    "trail says NAME@ssh.",
)
@click.option(
    "--role",
    type=click.Choice([r.value for r in Role]),
    default=None,
    help="With --as: viewer (looks), deployer (deploy, redeploy, roll back) or admin.",
)
# The version is looked up only when asked for: importlib.metadata costs every command ~16 ms.
@click.version_option(package_name="toast-console", prog_name="toast")
@click.pass_context
def cli(
    ctx: click.Context,
    profile_name: str | None,
    sandbox: bool,
    read_only: bool,
    as_name: str | None,
    role: str | None,
) -> None:
    """Deploy web apps from Git to your own AWS account.

    With no command, opens the console.
    """
    if role is not None and as_name is None:
        fail("--role needs --as NAME (the person the role is given to)", EXIT_USAGE)
    if as_name is not None and not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", as_name):
        fail("--as: a name of letters, digits, '.', '_' or '-' (at most 64)", EXIT_USAGE)
    ctx.obj = Context(requested_profile=profile_name, sandbox=sandbox)
    try:
        # Tightened when an older Toast left it open; made (0700) by what first writes there.
        if paths.data_dir().exists():
            paths.ensure_data_dir()
    except OSError as exc:
        fail(f"cannot use the data directory {paths.data_dir()}: {exc}", EXIT_USAGE)
    if ctx.invoked_subcommand not in ("engine", "sandbox", "serve"):
        # Runs an engine left behind (it was stopped or died) go on without being asked for.

        resume_unfinished(paths.database_path())
    if ctx.invoked_subcommand is None:
        profile = ctx.obj.profile()
        theme = load_config(paths.config_path()).console.theme
        from cli.common import actor  # the console's seam, as Textual's below
        from tui.app import run_console  # Textual is imported only for the console.

        run_console(
            profile=profile,
            db_path=paths.database_path(),
            theme=theme,
            actor=actor(),
        )


def main() -> None:
    """Run the CLI; every error, usage errors included, is one line on stderr."""
    try:
        code = cli.main(prog_name="toast", standalone_mode=False)
    except click.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx else "toast"
        message = exc.format_message().rstrip(".")
        fail(f"{message[0].lower()}{message[1:]} (see '{where} --help')", EXIT_USAGE)
    except click.Abort:
        fail("aborted")
    except KeyboardInterrupt:
        # Only following stops: a queued run goes on in the engine.
        click.echo(
            "toast: interrupted (runs already queued go on; see `toast show NAME`)", err=True
        )
        sys.exit(130)
    except click.ClickException as exc:
        fail(exc.format_message(), exc.exit_code)
    sys.exit(code if isinstance(code, int) else 0)
