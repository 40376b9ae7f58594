"""Bytes a 160x50 SSH session receives while a log view follows 200 lines a second: Toast's
log pane (as the console serves it over SSH: TOAST_REMOTE, flushes twice a second) side by
side with a plain Textual `Log`, through the same asyncssh server, in one run.

Goals (from the SSH console issue): under 50 KiB/s, and under a third of the plain app's.
Also reported: the resident memory of each session's process.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import asyncssh

from core.serve.ssh import SshConsole, SshOptions

from .report import Report

APP = Path(__file__).with_name("ssh_app.py")
WARMUP_S = 3.0
WINDOW_S = 10.0


async def bytes_per_second(kind: str, tmp: Path) -> tuple[float, int]:
    key = asyncssh.generate_private_key("ssh-ed25519")
    keys = tmp / f"keys-{kind}"
    keys.write_text(f'toast-name="bench",toast-role="viewer" {key.export_public_key().decode()}')
    console = SshConsole(
        SshOptions(
            listen=("127.0.0.1", 0),
            authorized_keys=keys,
            program=(sys.executable, str(APP), kind),
        ),
        say=lambda _m: None,
    )
    host, port = await console.start()
    try:
        async with asyncssh.connect(
            host, port, username="bench", client_keys=[key], known_hosts=None, agent_path=None
        ) as conn:
            process = await conn.create_process(
                term_type="xterm-256color", term_size=(160, 50), encoding=None
            )
            received = 0
            started = time.monotonic()
            counted_from: float | None = None
            while True:
                now = time.monotonic()
                if counted_from is None and now - started >= WARMUP_S:
                    counted_from, received = now, 0  # the first paint is not the steady rate
                if counted_from is not None and now - counted_from >= WINDOW_S:
                    break
                try:
                    chunk = await asyncio.wait_for(process.stdout.read(65536), timeout=0.5)
                except TimeoutError:
                    continue
                received += len(chunk)
            rate = received / (time.monotonic() - (counted_from or started))
            pids = [s.proc.pid for s in console.sessions if s.proc is not None]
            rss = _rss_kib(pids[0]) if pids else 0
            process.close()
    finally:
        await console.stop()
    return rate, rss


def _rss_kib(pid: int) -> int:
    out = subprocess.run(["ps", "-o", "rss=", "-p", str(pid)], capture_output=True, text=True)
    return int(out.stdout.strip() or 0)


async def test_the_console_over_ssh_sends_a_fraction_of_a_plain_log(
    tmp_path: Path, bench: Report
) -> None:
    pane_rate, pane_rss = await bytes_per_second("pane", tmp_path)
    log_rate, log_rss = await bytes_per_second("log", tmp_path)
    print(
        f"\nSSH bytes/s following 200 lines/s at 160x50: Toast log pane "
        f"{pane_rate / 1024:.1f} KiB/s (goal < 50), plain Textual Log {log_rate / 1024:.1f} "
        f"KiB/s; ratio {pane_rate / log_rate:.2f} (goal < 0.33); session RSS "
        f"{pane_rss / 1024:.0f} MiB (pane) and {log_rss / 1024:.0f} MiB (Log)"
    )
    bench.add(
        "console over SSH",
        "bytes sent following 200 lines/s, 160x50",
        pane_rate / 1024,
        "KiB/s",
        baseline=f"plain Textual Log {log_rate / 1024:.1f} KiB/s",
        goal="< 50 KiB/s",
        ok=pane_rate < 50 * 1024,
    )
    bench.add(
        "console over SSH",
        "bytes against a plain Log",
        pane_rate / log_rate,
        "x",
        goal="< 0.33 x",
        ok=pane_rate < log_rate / 3,
    )
    bench.add("console over SSH", "RSS per session", pane_rss / 1024, "MiB")
