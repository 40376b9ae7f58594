"""Node app processes: started on a port under a supervisor, probed, stopped.

Where the host has systemd (EC2) each app is a unit (core.commands.systemd); elsewhere (the
sandbox host) the runner supervises it itself in a detached session (TOAST_RESTART=1),
with the same contract: restarted whenever it exits, until stopped."""

from __future__ import annotations

import shlex

from core.commands import Argv, chain, mkdirs, render
from core.commands.runner import secret_list
from core.commands.systemd import remove_unit, unit_name
from core.host.layout import AppPaths
from core.host.profiles import HostProfile


def app_env(paths: AppPaths) -> str:
    """The env file the running app reads."""
    return paths.app_env_file if paths.host.app_user else paths.env_file


def prepare_app_files(paths: AppPaths, release_dir: str) -> str:
    """Where the app runs as a user of its own, that user owns exactly its release, its
    env file (0600, copied from the login user's) and its log; nothing else."""
    user = paths.host.app_user
    if not user:
        return "true"
    sudo = paths.host.sudo
    return chain(
        (
            *sudo,
            "install",
            "-o",
            user,
            "-g",
            user,
            "-m",
            "0600",
            paths.env_file,
            paths.app_env_file,
        ),
        (*sudo, "touch", paths.app_log),
        (*sudo, "chown", f"{user}:{user}", paths.app_log),
        (*sudo, "chmod", "0640", paths.app_log),
        (*sudo, "chown", "-R", f"{user}:{user}", "--", release_dir),
    )


def start_node_app(
    paths: AppPaths,
    cwd: str,
    start_cmd: str,
    port: int,
    redact: list[str] | tuple[str, ...] = (),
    extra_env: dict[str, str] | None = None,
    node: str = "node",
) -> str:
    """Start the app in `cwd`, detached in a session of its own; prints the session's id
    (its process group, which stop_node_app signals)."""
    env: Argv = (
        "env",
        *(f"{k}={v}" for k, v in sorted((extra_env or {}).items())),
        f"PORT={port}",
        "NODE_ENV=production",
    )
    app: Argv = (
        node,
        paths.runner,
        app_env(paths),
        paths.app_log,
        cwd,
        secret_list(redact),
        "--",
        *shlex.split(start_cmd),
    )
    pid_file = shlex.quote(paths.pid_file(port))
    user = paths.host.app_user
    if user:
        # The app user's shell leads a new session of its own (setsid -w, so no terminal
        # sudo may have opened can hang it up), starts the app in it and says the session's
        # id. The login user's shell keeps that in the pid file.
        inner = f"{render((*env, *app))} </dev/null >/dev/null 2>&1 & echo $$"
        as_app = render((*paths.host.sudo, "-u", user, "--", "setsid", "-w", "sh", "-c", inner))
        return (
            f"{render(mkdirs(paths.run_dir))} && pid=$({as_app}) && "
            f'echo "$pid" > {pid_file} && cat {pid_file}'
        )
    run = render((*env, "setsid", *app))
    return (
        f"{render(mkdirs(paths.run_dir))} && {{ {run} </dev/null >/dev/null 2>&1 & "
        f"echo $! > {pid_file}; cat {pid_file}; }}"
    )


def stop_node_app(paths: AppPaths, port: int) -> str:
    """Stop the app started on `port` (its whole process group); fine if it already exited."""
    pid_file = shlex.quote(paths.pid_file(port))
    # The app user's processes are signalled through sudo.
    kill = render((*paths.host.sudo, "kill")) if paths.host.app_user else "kill"
    return (
        f'if [ -f {pid_file} ]; then {kill} -TERM -- -"$(cat {pid_file})" 2>/dev/null; '
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
