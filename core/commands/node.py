"""Node app processes: started on a port under a supervisor, probed, stopped.

Where the host has systemd (EC2) each app is a unit (core.commands.systemd); elsewhere (the
sandbox host) the runner supervises it itself in a detached session (TOAST_RESTART=1),
with the same contract: restarted whenever it exits, until stopped."""

from __future__ import annotations

import shlex

from core.commands import Argv, mkdirs, render
from core.commands.layout import AppPaths
from core.commands.runner import secret_list
from core.commands.systemd import remove_unit, unit_name
from core.hosts import HostProfile


def start_node_app(
    paths: AppPaths,
    cwd: str,
    start_cmd: str,
    port: int,
    redact: list[str] | tuple[str, ...] = (),
    extra_env: dict[str, str] | None = None,
) -> str:
    """Start the app in `cwd`, detached in its own session; prints its PID (the process
    group id)."""
    argv = tuple(shlex.split(start_cmd))
    run = render(
        (
            "env",
            *(f"{k}={v}" for k, v in sorted((extra_env or {}).items())),
            f"PORT={port}",
            "NODE_ENV=production",
            "setsid",
            "node",
            paths.runner,
            paths.env_file,
            paths.app_log,
            cwd,
            secret_list(redact),
            "--",
            *argv,
        )
    )
    pid_file = shlex.quote(paths.pid_file(port))
    return (
        f"{render(mkdirs(paths.run_dir))} && {{ {run} </dev/null >/dev/null 2>&1 & "
        f"echo $! > {pid_file}; cat {pid_file}; }}"
    )


def stop_node_app(paths: AppPaths, port: int) -> str:
    """Stop the app started on `port` (its whole process group); fine if it already exited."""
    pid_file = shlex.quote(paths.pid_file(port))
    return (
        f'if [ -f {pid_file} ]; then kill -TERM -- -"$(cat {pid_file})" 2>/dev/null; '
        f"rm -f {pid_file}; fi; true"
    )


def stop_app(host: HostProfile, paths: AppPaths, port: int) -> str:
    """Stop the app on `port` under whichever supervisor the host uses."""
    if host.supervisor == "systemd":
        return remove_unit(host, unit_name(paths, port))
    return stop_node_app(paths, port)


def local_http_ok(port: int, path: str = "/") -> Argv:
    """Exit 0 when the app answers on 127.0.0.1:port with a status below 500."""
    script = (
        "fetch(process.argv[1]).then(r => process.exit(r.status < 500 ? 0 : 1))"
        ".catch(() => process.exit(1))"
    )
    return ("node", "-e", script, f"http://127.0.0.1:{port}{path}")
