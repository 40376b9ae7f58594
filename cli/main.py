"""Entry point of the `toast` command.

Startup stays light: the console (Textual) and AWS (boto3) are imported only by the
commands that use them.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass

import click

from cli import (
    activity_cmd,
    common,
    deploy_cmd,
    doctor_cmd,
    engine_cmd,
    gc_cmd,
    lifecycle_cmd,
    serve_cmd,
    show_cmd,
)
from cli.output import EXIT_USAGE, fail
from cli.sandbox_cmd import sandbox
from core.profile import paths
from core.profile.config import ConfigError, Profile, choose_profile, load_config
from core.runs.access import Role
from core.runs.launcher import resume_unfinished


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


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
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
        from tui.app import run_console  # Textual is imported only for the console.

        run_console(
            profile=profile,
            db_path=paths.database_path(),
            theme=theme,
            actor=common.actor(),
        )


def _register_subcommands() -> None:
    cli.add_command(sandbox)
    for command in (
        *deploy_cmd.COMMANDS,
        *doctor_cmd.COMMANDS,
        *lifecycle_cmd.COMMANDS,
        *show_cmd.COMMANDS,
        *gc_cmd.COMMANDS,
        *engine_cmd.COMMANDS,
        *activity_cmd.COMMANDS,
        *serve_cmd.COMMANDS,
    ):
        cli.add_command(command)


_register_subcommands()


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
