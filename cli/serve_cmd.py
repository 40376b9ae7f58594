"""`toast serve` (the long-lived process a team runs) and `toast notify test`."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import Any

import asyncssh
import click

from cli.output import EXIT_USAGE, fail
from core.profile import paths
from core.profile.config import ConfigError, load_config, parse_listen
from core.runs.access import Role
from core.serve.notify import Notifier, masked, resolve_urls
from core.serve.server import Serve, ServeError, ServeOptions
from core.serve.ssh import SshOptions


def _say(message: str) -> None:
    # Flushed line by line: the log is read (journalctl, a terminal) while it runs.
    print(f"{time.strftime('%H:%M:%S')} {message}", flush=True)


@click.command()
@click.option(
    "--webhook-listen",
    metavar="HOST:PORT",
    default=None,
    help="Where GitHub's webhooks are received (behind your TLS proxy). "
    "Default: [serve] webhook_listen, else 127.0.0.1:8787.",
)
@click.option("--no-webhooks", is_flag=True, help="Receive no webhooks (polling only).")
@click.option(
    "--poll-interval",
    type=click.FloatRange(min=1),
    default=None,
    metavar="SECONDS",
    help="How often branch heads are read. Default: [serve] poll_interval, else 60.",
)
@click.option("--no-poll", is_flag=True, help="No polling (only the catch-up at start).")
@click.option(
    "--ssh-listen",
    metavar="HOST:PORT",
    default=None,
    help="Serve the console over SSH here (public keys only; needs --authorized-keys).",
)
@click.option(
    "--authorized-keys",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help='Who may connect: OpenSSH lines with toast-name="NAME",toast-role="viewer|deployer|'
    'admin" options (see toast authorized-keys-line).',
)
@click.option(
    "--host-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The SSH host key (default: one made once, 0600, in the data directory).",
)
@click.option(
    "--ssh-idle-timeout",
    type=click.FloatRange(min=2),
    default=15 * 60,
    show_default=True,
    metavar="SECONDS",
    help="An SSH session with no input this long ends (warned a minute before).",
)
def serve(
    webhook_listen: str | None,
    no_webhooks: bool,
    poll_interval: float | None,
    no_poll: bool,
    ssh_listen: str | None,
    authorized_keys: Path | None,
    host_key: Path | None,
    ssh_idle_timeout: float,
) -> None:
    """Run Toast for a team: the engine, the webhook receiver and the poller in one
    process, one per data directory. Pushes to a deployment's branch redeploy it (latest
    wins); run ends are announced to each profile's `notify` URLs. SIGTERM or Ctrl+C stops
    it cleanly; runs in progress resume under the next `toast serve` or `toast engine`."""
    try:
        config = load_config(paths.config_path())
    except ConfigError as exc:
        fail(str(exc), EXIT_USAGE)
    listen_text = webhook_listen or config.serve.webhook_listen
    listen = parse_listen(listen_text)
    if listen is None:
        fail(f"--webhook-listen: must be HOST:PORT (got {listen_text!r})", EXIT_USAGE)
    ssh = None
    if ssh_listen is not None:
        ssh_at = parse_listen(ssh_listen)
        if ssh_at is None:
            fail(f"--ssh-listen: must be HOST:PORT (got {ssh_listen!r})", EXIT_USAGE)
        if authorized_keys is None:
            fail("--ssh-listen needs --authorized-keys FILE (who may connect)", EXIT_USAGE)
        ssh = SshOptions(
            listen=ssh_at,
            authorized_keys=authorized_keys,
            host_key=host_key,
            idle_timeout=ssh_idle_timeout,
        )
    options = ServeOptions(
        webhook_listen=None if no_webhooks else listen,
        poll=config.serve.poll and not no_poll,
        poll_interval=poll_interval or config.serve.poll_interval,
        ssh=ssh,
    )
    _say(f"toast serve for {paths.data_dir()} (state: {paths.database_path()})")
    runner = Serve(paths.database_path(), config, options, _say)
    try:
        asyncio.run(runner.run())
    except ServeError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        pass


@click.group()
def notify() -> None:
    """Notifications (each profile's `notify` URLs, sent through Apprise)."""


@notify.command("test")
@click.pass_obj
def notify_test(obj: Any) -> None:
    """Send a test message to the profile's notification URLs."""
    profile = obj.profile()
    urls = resolve_urls(profile, lambda m: click.echo(m, err=True))
    if not urls:
        fail(
            f'profile {profile.name} has no notification URLs: add notify = ["slack://..."] '
            "to its table in config.toml",
            EXIT_USAGE,
        )

    async def send() -> bool:
        sent = Notifier(lambda m: click.echo(m, err=True), attempts=1).announce(
            urls, f"Toast: test from profile {profile.name}", "Notifications reach you."
        )
        return bool(sent is not None and await sent)

    if not asyncio.run(send()):
        fail(f"the test message did not reach {masked(urls)}")
    click.echo(f"sent to {masked(urls)}")


@click.command("authorized-keys-line")
@click.option(
    "--role", type=click.Choice([r.value for r in Role]), required=True, help="What they may do."
)
@click.option("--name", required=True, help="Who they are, as the audit trail names them.")
@click.option(
    "--openssh",
    is_flag=True,
    help="A forced-command line for plain OpenSSH instead of toast serve's SSH server.",
)
@click.argument("keyfile", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def authorized_keys_line(role: str, name: str, openssh: bool, keyfile: Path) -> None:
    """Print the authorized_keys line that gives KEYFILE's public key a name and a role:
    for `toast serve --authorized-keys`, or with --openssh for sshd, where the key can
    only open the console as that person (restrict,pty,command=...)."""
    if not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", name):
        fail("--name: letters, digits, '.', '_' or '-' (at most 64)", EXIT_USAGE)
    try:
        key = asyncssh.read_public_key(str(keyfile))
    except (OSError, ValueError) as exc:
        fail(f"{keyfile}: not an OpenSSH public key ({exc})", EXIT_USAGE)
    public = key.export_public_key().decode().strip()
    if openssh:
        command = f"toast --as {name} --role {role}"
        click.echo(f'restrict,pty,command="{command}" {public}')
    else:
        click.echo(f'toast-name="{name}",toast-role="{role}" {public}')
