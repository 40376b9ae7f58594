"""`toast serve` as a real process for tests: started with the test's data dir and config,
read through its log, stopped with SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from core.sandbox import githost
from core.sandbox.layout import Layout

from ..conftest import PROJECT_ROOT
from ..deploy_helpers import ENGINE_ENV
from .waiting import wait_for


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ServeProcess:
    def __init__(self, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.proc = proc
        self.log = log

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_line(self, text: str, timeout: float = 60) -> None:
        wait_for(
            lambda: True if text in self.text() else None,
            f"toast serve to say {text!r}; its log:\n{self.text()[-3000:]}",
            timeout,
        )

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)


@contextmanager
def serving(tmp_path: Path, *args: str, name: str = "serve") -> Iterator[ServeProcess]:
    log = tmp_path / f"{name}.log"
    env = {**os.environ, **ENGINE_ENV}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli", "serve", *args],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    running = ServeProcess(proc, log)
    try:
        running.wait_for_line("serving: engine running")
        yield running
    finally:
        running.stop()


def write_config(text: str) -> None:
    path = Path(os.environ["TOAST_CONFIG"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


SLOW_BUILD = """const fs = require("fs");
console.log("waiting for the go-ahead");
const deadline = Date.now() + 300000;
const timer = setInterval(() => {
  if (fs.existsSync(process.env.GO_FLAG)) {
    clearInterval(timer);
    fs.mkdirSync("dist", { recursive: true });
    fs.writeFileSync("dist/index.html", "<h1>built after a restart</h1>\\n");
    console.log("built");
  } else if (Date.now() > deadline) {
    console.error("Error: no go-ahead within 300 s");
    process.exit(1);
  }
}, 100);
"""


def slow_build_repo(layout: Layout, name: str) -> tuple[Path, Path]:
    """A sandbox repository whose build waits until a flag file exists (so a test can act
    while a run is mid-build); returns the flag's directory (remove it) and the flag."""
    githost.create_repo(
        layout,
        name,
        {
            "package.json": json.dumps({"name": "slow", "scripts": {"build": "node build.js"}}),
            "build.js": SLOW_BUILD,
            "toast.toml": 'build_type = "static"\noutput_dir = "dist"\n',
        },
    )
    # Where the host's login user (who builds) can see it.
    flags = Path(tempfile.mkdtemp(prefix="toast-go-"))
    flags.chmod(0o755)
    return flags, flags / "go"
