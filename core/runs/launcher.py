"""Starting an engine when one is needed, cheaply: every Toast command asks at start-up
whether runs were left behind, and every command that queues a run makes sure an engine
will pick it up. Nothing here imports the engine itself (SSH, AWS, the steps)."""

from __future__ import annotations

import fcntl
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from core.profile import paths
from core.runs.settings import engine_environment
from storage.queries import unfinished_jobs

HOSTNAME = socket.gethostname()


def owner_dead(owner: str | None) -> bool:
    """True when a lease holder ran on this machine and its process is gone."""
    if not owner:
        return False
    host, _, pid = owner.rpartition(":")
    if host != HOSTNAME or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def lock_path() -> Path:
    return paths.data_dir() / "engine.lock"


def _hold(path: Path) -> int | None:
    """An exclusive lock on `path` (0600) for this process's life; None if it is held."""
    paths.private_dir(path.parent)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def hold_engine_lock() -> int | None:
    """Take the engine lock for this process; None if another engine holds it."""
    return _hold(lock_path())


def serve_lock_path() -> Path:
    return paths.data_dir() / "serve.lock"


def hold_serve_lock() -> int | None:
    """Take the `toast serve` lock (one per data directory) and write our PID in it; None
    when another process holds it."""
    fd = _hold(serve_lock_path())
    if fd is not None:
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd


def serve_pid() -> int | None:
    """The PID of the `toast serve` running for this data directory, or None."""
    path = serve_lock_path()
    if not path.exists():
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.pread(fd, 32, 0).decode(errors="replace").strip()
            return int(text) if text.isdigit() else -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def engine_running() -> bool:
    fd = hold_engine_lock()
    if fd is None:
        return True
    os.close(fd)
    return False


def ensure_engine() -> int | None:
    """Start a detached `toast engine` unless one is running; returns the new PID.

    TOAST_ENGINE_AUTOSTART=0 leaves starting engines to someone else (`toast serve`, tests);
    TOAST_ENGINE_IDLE_EXIT sets how long a started engine waits for work before exiting."""
    if os.environ.get("TOAST_ENGINE_AUTOSTART", "1") == "0" or engine_running():
        return None
    idle = os.environ.get("TOAST_ENGINE_IDLE_EXIT", "60")
    log = paths.ensure_data_dir() / "engine.log"
    with os.fdopen(paths.open_private(log), "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli", "engine", "--idle-exit", idle],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            cwd=str(Path(__file__).resolve().parents[1]),
            # Each run carries its own settings; the engine must not inherit this command's.
            env=engine_environment(),
        )
    return proc.pid


def work_left_behind(db_path: Path) -> bool:
    """Whether the database holds runs no live engine is working on: queued ones, and ones
    whose engine died (its lease ran out, or its process on this machine is gone)."""
    now = time.time()
    for owner, lease in unfinished_jobs(str(db_path)):
        if owner is None or lease is None or lease < now or owner_dead(owner):
            return True
    return False


def resume_unfinished(db_path: Path) -> int | None:
    """Start an engine when runs were left behind: called as any Toast process starts, so a
    run interrupted by a dead engine goes on without the user asking."""
    if not db_path.exists() or engine_running() or not work_left_behind(db_path):
        return None
    return ensure_engine()
