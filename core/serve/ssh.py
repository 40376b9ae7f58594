"""The team's console over SSH, served by asyncssh inside `toast serve`.

Public keys only, each with a person and a role from the authorized-keys file
(`toast-name="ana",toast-role="deployer" ssh-ed25519 ...`); an unknown key gets nothing.
A shell needs a PTY and gets a console process of its own on it (its controlling terminal,
so resizes arrive as SIGWINCH); without a PTY only an exact allow-list of read-only
commands runs. Agent and X11 forwarding, port forwarding and subsystems are refused.
Concerns are kept apart as Wish's middleware keeps them: who (authentication and the
lockout), what (the session's allow-list), how long (timeouts), and the record (SQLite).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import re
import shlex
import signal
import struct
import subprocess
import sys
import termios
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import asyncssh

from core.profile import paths
from core.runs.access import Role
from storage import Queries

#: Read-only commands a session without a PTY may run, by their exact words.
EXEC_ALLOWED = (
    re.compile(r"toast ls --json"),
    re.compile(r"toast show [a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])? --json"),
    re.compile(r"toast activity --json"),
)
PROJECT = Path(__file__).resolve().parents[2]
#: How long before the idle timeout the console warns that the session will end.
IDLE_WARNING_S = 60.0


@dataclass(frozen=True)
class SshOptions:
    listen: tuple[str, int]
    authorized_keys: Path
    host_key: Path | None = None
    idle_timeout: float = 15 * 60
    login_timeout: float = 30.0
    max_sessions: int = 20
    #: A connection that authenticates but opens no session is closed after this.
    session_timeout: float = 30.0
    failures_allowed: int = 20
    lockout_s: float = 10 * 60
    #: What a terminal session runs instead of the Toast console (argv). The SSH benchmark
    #: serves a plain Textual app through this same server to compare bytes sent.
    program: tuple[str, ...] | None = None


@dataclass
class Lockout:
    """Failed authentications per address: `allowed` within a minute, then the address is
    refused for `lockout_s` (another address is not affected)."""

    allowed: int = 20
    lockout_s: float = 600.0
    failures: dict[str, deque[float]] = field(default_factory=dict)
    locked_until: dict[str, float] = field(default_factory=dict)

    def locked(self, address: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        return self.locked_until.get(address, 0.0) > now

    def failed(self, address: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        recent = self.failures.setdefault(address, deque())
        recent.append(now)
        while recent and recent[0] < now - 60:
            recent.popleft()
        if len(recent) >= self.allowed:
            self.locked_until[address] = now + self.lockout_s
            recent.clear()
        if len(self.failures) > 10_000:  # bounded under a spray of addresses
            self.failures.clear()


def host_key(path: Path | None) -> asyncssh.SSHKey:
    """The server's key: the one given, or one made once (0600) in the data directory."""
    where = path or paths.ensure_data_dir() / "ssh_host_ed25519_key"
    if where.exists():
        return asyncssh.read_private_key(str(where))
    key = asyncssh.generate_private_key("ssh-ed25519")
    fd = os.open(where, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key.export_private_key())
    return key


class SshConsole:
    """The SSH server: started and stopped by `toast serve`."""

    def __init__(
        self, options: SshOptions, say: Callable[[str], None], queries: Queries | None = None
    ) -> None:
        self.options = options
        self.say = say
        #: The connection log (who, key, address, start, end, bytes); None: not kept.
        self.queries = queries
        self.lockout = Lockout(options.failures_allowed, options.lockout_s)
        self.sessions: set[ConsoleSession] = set()
        self.closing: set[asyncio.Task[None]] = set()
        self.server: asyncssh.SSHAcceptor | None = None
        self.key = host_key(options.host_key)

    @property
    def fingerprint(self) -> str:
        return str(self.key.get_fingerprint())

    async def start(self) -> tuple[str, int]:
        host, port = self.options.listen
        self.server = await asyncssh.create_server(
            lambda: _Server(self),
            host,
            port,
            server_host_keys=[self.key],
            agent_forwarding=False,
            x11_forwarding=False,
            allow_pty=True,
            line_editor=False,
            encoding=None,
            login_timeout=self.options.login_timeout,
            keepalive_interval=30,
            keepalive_count_max=4,
        )
        bound = self.server.sockets[0].getsockname()
        return str(bound[0]), int(bound[1])

    async def stop(self) -> None:
        for session in list(self.sessions):
            session.hang_up("toast serve is stopping")
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
        if self.closing:
            await asyncio.wait(list(self.closing), timeout=5)


class _Server(asyncssh.SSHServer):
    """One per connection: who it is, and what it may ask for."""

    def __init__(self, console: SshConsole) -> None:
        self.console = console
        self.conn: asyncssh.SSHServerConnection | None = None
        self.address = "?"
        self.name: str | None = None
        self.role: Role | None = None
        self.fingerprint = ""
        self.sessions = 0
        self._idle_timer: asyncio.TimerHandle | None = None
        self.keys: asyncssh.SSHAuthorizedKeys | None = None
        #: The options of the key that was offered and matched (its signature is checked
        #: by asyncssh before auth_completed).
        self.matched: Mapping[str, object] | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self.conn = conn
        peer = conn.get_extra_info("peername")
        self.address = str(peer[0]) if peer else "?"
        if self.console.lockout.locked(self.address):
            self.console.say(f"ssh: refused {self.address}: too many failed logins")
            conn.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()

    def begin_auth(self, username: str) -> bool:
        # Read at every login: a key added or removed counts at once, no restart.
        try:
            self.keys = asyncssh.read_authorized_keys(str(self.console.options.authorized_keys))
        except (OSError, ValueError) as exc:
            self.console.say(f"ssh: cannot read the authorized keys: {exc}")
            self.keys = None
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        options = self.keys.validate(key, "", self.address) if self.keys is not None else None
        if options is None:
            self.console.lockout.failed(self.address)
            self.console.say(f"ssh: {self.address}: unknown key {key.get_fingerprint()}")
            return False
        self.matched = options
        self.fingerprint = str(key.get_fingerprint())
        return True

    def password_auth_supported(self) -> bool:
        return False

    def kbdint_auth_supported(self) -> bool:
        return False

    def host_based_auth_supported(self) -> bool:
        return False

    def public_key_auth_supported(self) -> bool:
        return True

    def auth_completed(self) -> None:
        assert self.conn is not None
        options = self.matched or {}
        name = _first(options.get("toast-name"))
        role_text = _first(options.get("toast-role")) or Role.VIEWER.value
        if (
            not name
            or not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", name)
            or role_text not in (r.value for r in Role)
        ):
            self.console.say(
                f"ssh: {self.address}: a key without a valid toast-name and toast-role; closed"
            )
            self.conn.close()
            return
        self.name, self.role = name, Role(role_text)
        self.console.say(f"ssh: {name} ({self.role}) from {self.address} {self.fingerprint}")
        loop = asyncio.get_running_loop()
        self._idle_timer = loop.call_later(self.console.options.session_timeout, self._no_session)

    def _no_session(self) -> None:
        if self.sessions == 0 and self.conn is not None:
            self.console.say(f"ssh: {self.name} opened no session; closed")
            self.conn.close()

    def session_requested(self) -> asyncssh.SSHServerSession[bytes] | bool:
        if self.name is None or self.role is None:
            return False
        if len(self.console.sessions) >= self.console.options.max_sessions:
            self.console.say(f"ssh: {self.name}: refused a session (the server is full)")
            return False
        self.sessions += 1
        return ConsoleSession(self.console, self.name, self.role, self.address, self.fingerprint)

    # Forwarding of every kind is refused ("administratively prohibited").
    def connection_requested(self, *args: object) -> bool:
        return False

    def server_requested(self, *args: object) -> bool:
        return False

    def unix_connection_requested(self, *args: object) -> bool:
        return False

    def unix_server_requested(self, *args: object) -> bool:
        return False


def _first(value: object) -> str | None:
    if isinstance(value, list) and value:
        return str(value[0])
    return str(value) if isinstance(value, str) else None


class ConsoleSession(asyncssh.SSHServerSession[bytes]):
    """A shell on a PTY (the console) or one allowed command; the process is this
    session's, and goes with it."""

    def __init__(
        self, console: SshConsole, name: str, role: Role, address: str, fingerprint: str = ""
    ) -> None:
        self.console = console
        self.name = name
        self.role = role
        self.address = address
        self.fingerprint = fingerprint
        self.bytes_in = 0
        self.bytes_out = 0
        self.logged: asyncio.Task[int] | None = None
        self.chan: asyncssh.SSHServerChannel[bytes] | None = None
        self.term = "xterm-256color"
        self.size = (80, 24)
        self.pty = False
        self.command: list[str] | None = None
        self.proc: asyncio.subprocess.Process | None = None
        self.master: int | None = None
        self.last_input = time.monotonic()
        self._watch: asyncio.Task[None] | None = None

    def connection_made(self, chan: asyncssh.SSHServerChannel[bytes]) -> None:
        self.chan = chan

    def pty_requested(
        self, term_type: str, term_size: tuple[int, int, int, int], term_modes: object
    ) -> bool:
        self.pty = True
        self.term = term_type if re.fullmatch(r"[A-Za-z0-9._+-]{1,40}", term_type) else "xterm"
        cols, rows = term_size[0] or 80, term_size[1] or 24
        self.size = (cols, rows)
        return True

    def shell_requested(self) -> bool:
        if not self.pty:
            self._refuse("the console needs a terminal: connect with ssh -t")
            return False
        return True

    def exec_requested(self, command: str) -> bool:
        if not any(p.fullmatch(command) for p in EXEC_ALLOWED):
            self._refuse(f"not allowed over ssh: {command[:80]!r}")
            return False
        self.command = shlex.split(command)[1:]
        return True

    def subsystem_requested(self, subsystem: str) -> bool:
        self._refuse(f"subsystem {subsystem[:40]!r} refused")
        return False

    def _refuse(self, why: str) -> None:
        self.console.say(f"ssh: {self.name} from {self.address}: {why}")

    def session_started(self) -> None:
        self.console.sessions.add(self)
        if self.console.queries is not None:
            self.logged = asyncio.ensure_future(
                self.console.queries.session_started(
                    name=self.name,
                    role=str(self.role),
                    fingerprint=self.fingerprint,
                    address=self.address,
                    kind="console" if self.command is None else " ".join(["toast", *self.command]),
                )
            )
        self._watch = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        """The session's program to its end; one that cannot start is said, not hung on."""
        try:
            await self._start()
        except OSError as exc:
            self.console.say(f"ssh: {self.name}: cannot start the console: {exc}")
            if self.chan is not None:
                self.chan.write_stderr(f"toast: the console cannot start: {exc}\r\n".encode())
                self.chan.exit(1)

    def _send(self, data: bytes) -> None:
        assert self.chan is not None
        self.bytes_out += len(data)
        self.chan.write(data)

    async def _start(self) -> None:
        assert self.chan is not None
        env = {
            **{k: v for k, v in os.environ.items() if k.startswith(("TOAST_", "AWS_", "GITHUB_"))},
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/"),
            "LANG": os.environ.get("LANG", "C.UTF-8"),
            "PYTHONPATH": str(PROJECT),
        }
        who = ["--as", self.name, "--role", str(self.role)]
        if self.command is not None:  # an allowed read-only command, no terminal
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "cli",
                *who,
                *self.command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                start_new_session=True,
            )
            out, err = await self.proc.communicate()
            self._send(out)
            if err:
                self.chan.write_stderr(err)
            self.chan.exit(self.proc.returncode or 0)
            return
        master, slave = os.openpty()
        _set_size(master, *self.size)  # before the console starts: a new PTY is 0x0
        # Frugal across the network: the log panes take lines in twice a second.
        env |= {"TERM": self.term, "COLORTERM": "truecolor", "TOAST_REMOTE": "1"}
        try:
            program = self.console.options.program or (sys.executable, "-m", "cli", *who)
            self.proc = await asyncio.create_subprocess_exec(
                *program,
                stdin=slave,
                stdout=slave,
                stderr=slave,
                env=env,
                start_new_session=True,
                preexec_fn=_controlling_terminal,  # setsid is done first
                close_fds=True,
            )
        except OSError:
            os.close(master)
            raise
        finally:
            os.close(slave)
        self.master = master
        os.set_blocking(master, False)
        asyncio.get_running_loop().add_reader(master, self._pump_out)
        self.console.say(f"ssh: {self.name} ({self.role}) opened the console ({self.term})")
        await self._wait_console()

    def _pump_out(self) -> None:
        assert self.master is not None and self.chan is not None
        try:
            data = os.read(self.master, 65536)
        except BlockingIOError:
            return
        except OSError:  # EIO: the console has gone
            data = b""
        if not data:
            asyncio.get_running_loop().remove_reader(self.master)
            return
        self._send(data)

    def pause_writing(self) -> None:
        if self.master is not None:  # the client is slow: stop reading, the PTY fills
            asyncio.get_running_loop().remove_reader(self.master)

    def resume_writing(self) -> None:
        if self.master is not None:
            asyncio.get_running_loop().add_reader(self.master, self._pump_out)

    def data_received(self, data: bytes, datatype: object) -> None:
        self.last_input = time.monotonic()
        self.bytes_in += len(data)
        if self.master is not None:
            with contextlib.suppress(OSError):
                os.write(self.master, data)

    def terminal_size_changed(self, width: int, height: int, pixwidth: int, pixheight: int) -> None:
        self.size = (width or 80, height or 24)
        if self.master is not None:
            _set_size(self.master, *self.size)  # the kernel sends SIGWINCH

    def eof_received(self) -> bool:
        return False

    async def _wait_console(self) -> None:
        """Until the console exits, or has had no input for the idle timeout."""
        assert self.proc is not None and self.chan is not None
        idle = self.console.options.idle_timeout
        warn_at = idle - min(IDLE_WARNING_S, idle / 4)
        warned_for: float | None = None
        exited = asyncio.ensure_future(self.proc.wait())
        while not exited.done():
            quiet = time.monotonic() - self.last_input
            if quiet >= idle:
                self.console.say(f"ssh: {self.name} idle for {idle / 60:.0f} min; closed")
                self.hang_up("idle")
                break
            if quiet >= warn_at and warned_for != self.last_input:
                # The console says so on screen (it handles SIGUSR1 when served over SSH).
                warned_for = self.last_input
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.proc.pid, signal.SIGUSR1)
            next_at = warn_at if quiet < warn_at else idle
            await asyncio.wait({exited}, timeout=max(next_at - quiet, 0.05))
        status = await exited
        if self.master is not None:
            loop = asyncio.get_running_loop()
            loop.remove_reader(self.master)
            with contextlib.suppress(OSError):
                while chunk := os.read(self.master, 65536):
                    self._send(chunk)
            os.close(self.master)
            self.master = None
        with contextlib.suppress(Exception):
            self.chan.exit(status if status >= 0 else 128 - status)

    def hang_up(self, why: str) -> None:
        """SIGHUP to the session's process group, SIGKILL after a grace period."""
        proc = self.proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGHUP)

        def kill() -> None:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)

        asyncio.get_running_loop().call_later(3.0, kill)

    def connection_lost(self, exc: Exception | None) -> None:
        self.console.sessions.discard(self)
        self.hang_up("disconnected")
        self.console.say(
            f"ssh: {self.name} from {self.address}: session ended "
            f"({self.bytes_in} bytes in, {self.bytes_out} out)"
        )
        if self.logged is not None and self.console.queries is not None:
            ending = asyncio.ensure_future(self._log_end(self.console.queries, self.logged))
            self.console.closing.add(ending)  # kept until written (a task is weakly held)
            ending.add_done_callback(self.console.closing.discard)

    async def _log_end(self, queries: Queries, logged: asyncio.Task[int]) -> None:
        await queries.session_ended(await logged, bytes_in=self.bytes_in, bytes_out=self.bytes_out)


def _set_size(fd: int, cols: int, rows: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def _controlling_terminal() -> None:
    """In the child, after setsid: the PTY (its stdin) becomes its controlling terminal,
    and the signals it inherits are the defaults (an ignored SIGHUP would outlive us)."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    for sig in (signal.SIGHUP, signal.SIGINT, signal.SIGTERM, signal.SIGWINCH):
        signal.signal(sig, signal.SIG_DFL)
