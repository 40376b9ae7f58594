"""Starting and stopping the sandbox's processes, and knowing which are ours."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from core.host.profiles import HostProfile
from core.runs.waiting import WaitTimeout, poll_sync

#: The sandbox's processes stand in for other machines (AWS, the instances, Let's Encrypt):
#: on EC2 an instance's build and certbot never take a core from Toast. Here they share this
#: machine's cores, so they run at a lower priority and Toast's engine and console keep the
#: CPU they would have (twenty deployments' certbots otherwise starved the engine's loop).
OTHER_MACHINES_NICE = 10


def spawn(
    argv: Sequence[str],
    *,
    log: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    nice: int = OTHER_MACHINES_NICE,
) -> int:
    """Start a detached process (own session, so a Ctrl+C in the terminal does not reach it),
    `nice` steps below this one's priority (nice(1) execs it: the pid is the process's)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            ["nice", "-n", str(nice), *argv] if nice else list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
            close_fds=True,
        )
    return proc.pid


def cmdline(pid: int) -> str | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return raw.replace(b"\0", b" ").decode("utf-8", "replace")


def alive(pid: int, marker: str) -> bool:
    """True if `pid` runs and is ours: its command line mentions the sandbox dir `marker`.

    Checking the command line keeps us from signalling a stranger that reused the PID.
    """
    line = cmdline(pid)
    if line is None or marker not in line:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def reap(pid: int) -> None:
    """Collect a child of ours that has exited, so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def stop(pid: int, marker: str, *, grace: float = 5.0) -> None:
    """SIGTERM the process group we started, then SIGKILL it if it outlives `grace`."""
    if not alive(pid, marker):
        reap(pid)
        return
    _signal_group(pid, signal.SIGTERM)

    def gone() -> bool | None:
        reap(pid)
        return True if not alive(pid, marker) else None

    try:
        poll_sync(gone, what=f"process {pid} to exit", timeout=grace)
    except WaitTimeout:
        _signal_group(pid, signal.SIGKILL)
        poll_sync(gone, what=f"process {pid} to die", timeout=5.0)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)  # spawn() made each process a group leader
    except ProcessLookupError:
        pass
    except PermissionError:
        os.kill(pid, sig)


def processes_mentioning(marker: str) -> list[int]:
    """Every live process whose command line mentions `marker` (used to prove a clean stop)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            pid = int(entry.name)
            if alive(pid, marker):
                found.append(pid)
    return found


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_port(port: int, what: str, *, timeout: float = 15.0, log: Path | None = None) -> None:
    try:
        poll_sync(lambda: True if port_open(port) else None, what=what, timeout=timeout)
    except WaitTimeout as exc:
        hint = f"; see {log}" if log else ""
        raise WaitTimeout(f"{what} on 127.0.0.1:{port}{hint}", exc.waited_s) from None


def reload_nginx_locally(host: HostProfile) -> None:
    """Reload an nginx on this machine and wait until every worker that served the old config
    has exited: until then a new connection may still reach a worker without the new site.
    (The engine does the same over SSH; this is the sandbox's and the tests' local copy.)"""
    master = int(Path(host.nginx_pid_file).read_text())
    children = Path(f"/proc/{master}/task/{master}/children")
    old = set(children.read_text().split())
    subprocess.run(list(host.nginx_reload), check=True, capture_output=True)
    poll_sync(
        lambda: True if not (set(children.read_text().split()) & old) else None,
        what="nginx's old workers to exit after a reload",
        timeout=15,
    )
