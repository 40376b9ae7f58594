"""Node apps under systemd (EC2): one unit per deployment and port, Restart=always, so a
crash or a reboot brings the app back without Toast."""

from __future__ import annotations

import posixpath
import re
import shlex

from core.commands import chain, render
from core.commands.runner import secret_list
from core.host.layout import AppPaths
from core.host.profiles import HostProfile

UNIT_DIR = "/etc/systemd/system"


def unit_name(paths: AppPaths, port: int) -> str:
    return f"toast-{paths.name}-{port}.service"


def quote(word: str) -> str:
    """One word of a unit file line, as systemd parses it (double quotes, C escapes; `%` is
    a specifier and `$` an expansion, so both are doubled)."""
    escaped = (
        word.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("%", "%%")
        .replace("$", "$$")
    )
    if re.fullmatch(r"[A-Za-z0-9_@%+=:,./-]+", word):
        return escaped
    return f'"{escaped}"'


def render_unit(
    paths: AppPaths,
    *,
    user: str,
    cwd: str,
    start_cmd: str,
    port: int,
    env: dict[str, str],
    redact: list[str] | tuple[str, ...] = (),
    node: str = "node",
) -> str:
    """The unit: the runner (which reads the 0600 env file and filters secrets out of the
    app log) runs the start command. No secret is in the unit: only PORT, NODE_ENV and the
    toolchain's paths."""
    environment = {**env, "PORT": str(port), "NODE_ENV": "production"}
    exec_start = [
        "/usr/bin/env",
        node,
        paths.runner,
        paths.app_env_file if paths.host.app_user else paths.env_file,
        paths.app_log,
        cwd,
        secret_list(redact),
        "--",
        *shlex.split(start_cmd),
    ]
    lines = [
        "[Unit]",
        f"Description=Toast app {paths.name} on port {port}",
        "After=network-online.target",
        "Wants=network-online.target",
        "",
        "[Service]",
        "Type=simple",
        f"User={user}",
        f"WorkingDirectory={quote(cwd)}",
        *(f"Environment={quote(f'{k}={v}')}" for k, v in sorted(environment.items())),
        "ExecStart=" + " ".join(quote(w) for w in exec_start),
        "Restart=always",
        "RestartSec=1",
        "KillMode=control-group",
        "TimeoutStopSec=15",
        "StandardOutput=null",
        "StandardError=journal",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ]
    return "\n".join(lines)


def install_unit(host: HostProfile, staged: str, unit: str) -> str:
    """Move the staged unit into place and start it (and on every boot)."""
    target = posixpath.join(UNIT_DIR, unit)
    return chain(
        (*host.sudo, "install", "-m", "0644", staged, target),
        (*host.sudo, "systemctl", "daemon-reload"),
        (*host.sudo, "systemctl", "enable", "--now", unit),
        (*host.sudo, "systemctl", "show", "--property=MainPID", "--value", unit),
    )


def remove_unit(host: HostProfile, unit: str) -> str:
    """Stop and remove a unit; fine if it never existed."""
    target = posixpath.join(UNIT_DIR, unit)
    return (
        f"{render((*host.sudo, 'systemctl', 'disable', '--now', unit))} >/dev/null 2>&1; "
        f"{render((*host.sudo, 'rm', '-f', target))} && "
        f"{render((*host.sudo, 'systemctl', 'daemon-reload'))}"
    )
