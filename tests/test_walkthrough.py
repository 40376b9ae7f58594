"""A first-time user in a real terminal: tmux at 120x40 runs the README's `scripts/run`,
and the keys a user would press, reading only the screen, take a sample app from the Repos
screen to a live site and back to nothing."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.runs.waiting import WaitTimeout
from core.sandbox.controller import Sandbox, SandboxInfo

from .conftest import PROJECT_ROOT
from .deploy_helpers import ENGINE_ENV, https_get, show
from .helpers.waiting import wait_for


class Terminal:
    """One tmux session on a private server, read with capture-pane."""

    def __init__(self, socket: str) -> None:
        self.socket = socket

    def tmux(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "walk")

    def flat(self) -> str:
        """The screen as one line of words (notifications wrap inside their boxes)."""
        return re.sub(r"[\s│┃▌▐▊▎]+", " ", self.screen())

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "walk", *keys)

    def type(self, text: str) -> None:
        self.tmux("send-keys", "-t", "walk", "-l", text)

    def wait_for(self, text: str, timeout: float = 60) -> str:
        # Polling a terminal: nothing to wait on but its contents.
        try:
            return wait_for(
                lambda: self.screen() if text in self.flat() else None, repr(text), timeout
            )
        except WaitTimeout:
            raise AssertionError(
                f"{text!r} never showed within {timeout} s; the screen:\n" + self.screen()
            ) from None

    def wait_for_gone(self, text: str, timeout: float = 30) -> None:
        try:
            wait_for(lambda: True if text not in self.flat() else None, repr(text), timeout)
        except WaitTimeout:
            raise AssertionError(
                f"{text!r} still shown after {timeout} s:\n{self.screen()}"
            ) from None

    def alive(self) -> bool:
        done = subprocess.run(
            ["tmux", "-L", self.socket, "has-session", "-t", "walk"],
            capture_output=True,
            check=False,
        )
        return done.returncode == 0


@pytest.fixture
def terminal(sandbox: SandboxInfo) -> Iterator[Terminal]:
    assert shutil.which("tmux"), "scripts/lib.sh installs tmux"
    # A new user: no AWS credentials and no config, so Toast opens the sandbox (the test
    # session's, already running). Everything else as the test isolates it.
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(ENGINE_ENV)
    env["TERM"] = "xterm-256color"
    term = Terminal(f"toast-walk-{os.getpid()}")
    subprocess.run(
        [
            "tmux",
            "-L",
            term.socket,
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            "walk",
            "-x",
            "120",
            "-y",
            "40",
            f"cd {PROJECT_ROOT} && scripts/run",
        ],
        env=env,
        check=True,
    )
    try:
        yield term
    finally:
        subprocess.run(["tmux", "-L", term.socket, "kill-server"], check=False)


def test_a_first_time_user_deploys_a_sample_and_destroys_it(
    terminal: Terminal, sandbox: SandboxInfo
) -> None:
    t = terminal
    # The empty list says what to do next.
    t.wait_for("No deployments yet. Press 2 to pick one of your repositories", timeout=120)
    assert "SANDBOX" in t.screen()
    t.keys("2")
    t.wait_for("toast-samples/node-server")
    t.wait_for("2 repositories")  # the list is read; keys now go to a settled screen
    t.keys("/")
    t.type("node")
    t.wait_for_gone("toast-samples/static-site")  # the list narrows as you type
    t.keys("Enter")  # the one match: the wizard opens on it and reads its plan
    t.wait_for("Ready: ctrl+s deploys", timeout=60)
    assert "from package.json" in t.flat(), t.screen()  # each field says where it came from
    t.keys("C-s")

    # The detail screen shows the run; the build output scrolls by; the run ends live.
    t.wait_for("Last run")
    t.wait_for("nothing to build", timeout=240)  # the sample's build script, in the output
    t.wait_for("deploy of node-server succeeded", timeout=240)
    assert show("node-server")["state"] == "live"

    # o: the site's address; in the sandbox, the curl command that reaches it.
    t.keys("o")
    t.wait_for("is in the sandbox;")  # a toast: matched within one of its lines
    assert "Hello from the Toast node sample" in https_get(sandbox, "node-server.sandbox.test").text

    # D asks for the name before destroying anything.
    t.keys("D")
    t.wait_for("Type node-server to confirm")
    t.type("node-server")
    t.keys("Enter")
    t.wait_for("destroy of node-server succeeded", timeout=180)
    assert show("node-server")["state"] == "destroyed"

    t.keys("Escape")  # back where the deploy began: the Repos section
    t.wait_for("Repositories —")
    t.keys("1")  # the Deployments section: nothing left (a destroyed one is hidden)
    t.wait_for("No deployments yet")
    t.keys("q")
    wait_for(lambda: True if not t.alive() else None, "q to quit the console", 20)


def test_the_first_minute_repos_fill_in_by_themselves_while_the_sandbox_starts(
    tmp_path: Path,
) -> None:
    """A fresh data dir and no sandbox yet: `scripts/run` starts it. `2` pressed at once
    says the local cloud is starting, then shows the samples with no other key."""
    assert shutil.which("tmux"), "scripts/lib.sh installs tmux"
    box_dir = tmp_path / "fresh-sandbox"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        ENGINE_ENV,
        TERM="xterm-256color",
        TOAST_SANDBOX_DIR=str(box_dir),
        TOAST_DATA_DIR=str(tmp_path / "fresh-data"),
        TOAST_CONFIG=str(tmp_path / "fresh-config" / "config.toml"),
    )
    term = Terminal(f"toast-first-{os.getpid()}")
    subprocess.run(
        [
            *("tmux", "-L", term.socket, "-f", "/dev/null", "new-session", "-d", "-s", "walk"),
            *("-x", "120", "-y", "40", f"cd {PROJECT_ROOT} && scripts/run"),
        ],
        env=env,
        check=True,
    )
    try:
        term.wait_for("Press 2 to pick one of your repositories", timeout=120)
        term.keys("2")  # at once: the sandbox is still starting
        term.wait_for("Repositories —")
        # The screen fills in by itself once the local cloud is up: no other key is pressed.
        term.wait_for("toast-samples/static-site", timeout=180)
        term.wait_for("2 repositories")
        assert "toast-samples/node-server" in term.screen()
    finally:
        subprocess.run(["tmux", "-L", term.socket, "kill-server"], check=False)
        Sandbox(box_dir).down()
