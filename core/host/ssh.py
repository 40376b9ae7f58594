"""SSH to an app's host with asyncssh: host keys always verified, output streamed by line."""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import asyncssh

from core.runs.waiting import poll

#: Tries of work whose SSH connection was lost (cut, or the host stopped answering), each on
#: a new connection: Toast's host steps are safe to run again (a resumed run does), so a
#: network blip costs a reconnect, not the run.
SSH_ATTEMPTS = 3


class RemoteError(Exception):
    """A command on the host failed; says which step's command, its exit status and output."""

    def __init__(self, what: str, status: int | None, tail: list[str]) -> None:
        self.what = what
        self.status = status
        self.tail = tail
        last = f": {tail[-1]}" if tail else ""
        super().__init__(f"{what} exited with status {status}{last}")


class SshError(Exception):
    """The host refused to be trusted (connecting), or the connection to it was lost during
    a command (cut, or the host stopped answering keepalives): steps meet only the latter,
    as connecting raises core.host.connect.ConnectError."""


@dataclass
class RunResult:
    status: int
    output: list[str]


def host_keys_from_console(text: str) -> list[str]:
    """Public host keys cloud-init printed to the instance console (BEGIN SSH HOST KEY KEYS)."""
    match = re.search(
        r"-----BEGIN SSH HOST KEY KEYS-----\s*\n(.*?)-----END SSH HOST KEY KEYS", text, re.S
    )
    if not match:
        return []
    return [" ".join(line.split()[:2]) for line in match.group(1).splitlines() if line.strip()]


async def tcp_open(host: str, port: int) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout=3)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


#: AES-GCM first: one call into OpenSSL per packet (AES in hardware), where asyncssh's
#: ChaCha20-Poly1305 makes cipher objects and a MAC in Python for each, on the event loop
#: (14 % of the engine's CPU with twenty deployments building). Both are OpenSSH defaults.
CIPHERS = (
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "chacha20-poly1305@openssh.com",
    "aes128-ctr",
    "aes256-ctr",
)


class Remote:
    """One SSH connection to a host."""

    def __init__(self, conn: asyncssh.SSHClientConnection, where: str) -> None:
        self.conn = conn
        self.where = where
        #: Told each command before it runs (a run records what it ran on the host).
        self.on_command: Callable[[str], None] | None = None
        #: Fault injection (core.cloud.faults): asked as each command starts what befalls
        #: it: the connection cut as it runs ("drop") or before it is sent ("down"), nothing
        #: arriving any more ("hang"), or its answer turned into a failure ("fail").
        self.fault: Callable[[str], str | None] | None = None

    @classmethod
    async def connect(
        cls,
        host: str,
        port: int,
        *,
        user: str,
        client_key: Path,
        host_keys: list[str],
        timeout: float = 60.0,
        progress: Callable[[float], None] | None = None,
        refused_for: float = 0.0,
        keepalive: float = 15.0,
    ) -> Remote:
        """Probe TCP, then handshake; retry while sshd is still starting. `refused_for`: the
        port refuses connections that long yet (a rehearsed boot, core.cloud.faults).
        A host that stops answering is given up after four `keepalive` intervals with no
        answer (asyncssh's count of three unanswered keepalives), whatever the command."""
        where = f"{user}@{host}:{port}"
        opens_at = time.monotonic() + refused_for

        async def port_open() -> bool | None:
            if time.monotonic() < opens_at:
                return None
            return await _true_or_none(tcp_open(host, port))

        await poll(
            port_open,
            what=f"SSH port on {host}:{port}",
            timeout=timeout,
            progress=progress,
        )
        trusted = [asyncssh.import_public_key(k) for k in host_keys]
        last_error: list[str] = []

        async def handshake() -> asyncssh.SSHClientConnection | None:
            try:
                return await asyncssh.connect(
                    host,
                    port=port,
                    username=user,
                    client_keys=[str(client_key)],
                    known_hosts=(trusted, [], []),
                    agent_path=None,
                    config=None,
                    connect_timeout=10,
                    keepalive_interval=keepalive,
                    encryption_algs=CIPHERS,
                )
            except asyncssh.HostKeyNotVerifiable as exc:
                raise SshError(
                    f"{where} presented a host key that does not match the one the "
                    f"instance printed at boot ({exc}); refusing to connect"
                ) from exc
            except asyncssh.PermissionDenied as exc:
                last_error[:] = [f"permission denied ({exc})"]
                return None
            except (OSError, asyncssh.Error) as exc:
                last_error[:] = [str(exc) or type(exc).__name__]
                return None

        conn = await poll(
            handshake, what=f"an SSH session with {where}", timeout=timeout, progress=progress
        )
        return cls(conn, where)

    @property
    def alive(self) -> bool:
        """Not lost: no command saw it go, and it is not closed or closing."""
        transport = self.conn._transport  # asyncssh has no public "closing" test
        return not (self.conn.is_closed() or transport is None or transport.is_closing())

    async def __aenter__(self) -> Remote:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        self.conn.close()
        await self.conn.wait_closed()

    async def run(
        self,
        command: str,
        *,
        what: str,
        input: str | None = None,
        on_line: Callable[[str], None] | None = None,
        check: bool = True,
        timeout: float = 1800.0,
    ) -> RunResult:
        """Run a rendered command, passing each output line to `on_line` as it arrives."""
        if self.on_command is not None:
            self.on_command(command)
        output: list[str] = []
        fault = self.fault(what) if self.fault is not None else None
        process: asyncssh.SSHClientProcess[str] | None = None
        if fault == "down":
            self._strike("drop")
        try:
            async with asyncio.timeout(timeout):
                process = await self.conn.create_process(
                    command, stderr=asyncssh.STDOUT, encoding="utf-8", errors="replace"
                )
                if fault in ("drop", "hang"):
                    self._strike(fault)
                if input is not None:
                    process.stdin.write(input)
                process.stdin.write_eof()
                async for line in process.stdout:
                    if not line:
                        break
                    text = line.rstrip("\n")
                    output.append(text)
                    if len(output) > 2000:
                        del output[:1000]
                    if on_line is not None:
                        on_line(text)
                await process.wait()
        except TimeoutError as exc:
            if process is not None:
                process.close()  # the channel closes: sshd hangs up on the command
            raise RemoteError(
                f"{what} (timed out after {timeout:.0f} s)", None, output[-50:]
            ) from exc
        except (OSError, asyncssh.Error) as exc:
            raise SshError(f"lost the SSH connection to {self.where} during {what}: {exc}") from exc
        if process.exit_status is None and process.exit_signal is None:
            # The channel closed without saying how the command ended: the connection went.
            raise SshError(f"lost the SSH connection to {self.where} during {what}")
        status = process.exit_status if process.exit_status is not None else -1
        if fault == "fail":
            output.append("toast fault: injected: the command reports failure")
            status = 1
        if check and status != 0:
            raise RemoteError(what, status, output[-50:])
        return RunResult(status, output)

    def _strike(self, fault: str) -> None:
        """An injected fault, at the socket under asyncssh, so it sees what it would see
        when the network fails: the connection reset (drop), or nothing arriving any more
        (hang: the host or the network froze). asyncssh has no public handle on it."""
        transport = self.conn._transport
        if transport is None:
            return
        if fault == "drop":
            transport.abort()
        elif fault == "hang":
            transport.pause_reading()

    async def write_file(self, path: str, data: bytes, *, mode: int) -> None:
        """Write a file over SFTP, created with `mode` before any byte is written, and put
        in place by an atomic rename. The staging name is unique to this write: several runs
        may write one host-wide file (the runner) at once on a host they share."""
        try:
            async with self.conn.start_sftp_client() as sftp:
                tmp = f"{path}.toast-tmp-{secrets.token_hex(6)}"
                attrs = asyncssh.SFTPAttrs(permissions=mode)
                try:
                    async with sftp.open(tmp, "wb", attrs) as handle:
                        await handle.write(data)
                    await sftp.chmod(tmp, mode)
                    await sftp.posix_rename(tmp, path)
                except BaseException:
                    with contextlib.suppress(asyncssh.Error, OSError):
                        await sftp.remove(tmp)
                    raise
        except (OSError, asyncssh.Error) as exc:
            # SFTP's own errors (a full disk, a missing directory) are the host's answers;
            # a connection that went away is not, and is retried like a command's.
            if not self.alive:
                raise SshError(
                    f"lost the SSH connection to {self.where} while writing {path}: {exc}"
                ) from exc
            raise


async def _true_or_none(check: object) -> bool | None:
    result = await check  # type: ignore[misc]  # asyncssh's awaitable is untyped
    return True if result else None
