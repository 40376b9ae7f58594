"""The team's console over SSH, with real clients: asyncssh for the protocol's corners and
OpenSSH `ssh` in tmux as a person would use it, against `toast serve` on the sandbox."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from core.runs.waiting import WaitTimeout
from core.sandbox.controller import SandboxInfo

from .conftest import run_toast
from .deploy_helpers import deploy, toast
from .helpers.serve import ServeProcess, free_port, serving, slow_build_repo, write_config
from .helpers.waiting import wait_for


def make_key(directory: Path, name: str) -> Path:
    key = asyncssh.generate_private_key("ssh-ed25519")
    path = directory / name
    key.write_private_key(str(path))
    key.write_public_key(str(path) + ".pub")
    path.chmod(0o600)
    return path


class Team:
    def __init__(self, tmp_path: Path) -> None:
        self.dir = tmp_path / "team"
        self.dir.mkdir()
        self.viewer = make_key(self.dir, "bob")
        self.deployer = make_key(self.dir, "ana")
        self.stranger = make_key(self.dir, "eve")

        def public(key: Path) -> str:
            return Path(f"{key}.pub").read_text()

        lines = [
            f'toast-name="bob",toast-role="viewer" {public(self.viewer)}',
            f'toast-name="ana",toast-role="deployer" {public(self.deployer)}',
        ]
        self.authorized = self.dir / "authorized_keys"
        self.authorized.write_text("".join(lines))
        self.port = free_port()


@contextmanager
def ssh_serving(tmp_path: Path, people: Team, *extra: str) -> Iterator[ServeProcess]:
    """`toast serve` with the team's SSH console, on a box that runs the sandbox."""
    write_config('default_profile = "sandbox"\n')
    with serving(
        tmp_path,
        "--no-webhooks",
        "--no-poll",
        "--ssh-listen",
        f"127.0.0.1:{people.port}",
        "--authorized-keys",
        str(people.authorized),
        *extra,
    ) as serve:
        serve.wait_for_line("ssh: listening on")
        yield serve


@pytest.fixture
def team(sandbox: SandboxInfo, tmp_path: Path) -> Iterator[tuple[Team, ServeProcess]]:
    people = Team(tmp_path)
    with ssh_serving(tmp_path, people) as serve:
        yield people, serve


async def connect(team: Team, key: Path, **options: Any) -> asyncssh.SSHClientConnection:
    options.setdefault("agent_path", None)
    return await asyncssh.connect(
        "127.0.0.1",
        team.port,
        username="toast",
        client_keys=[str(key)],
        known_hosts=None,
        **options,
    )


async def test_only_known_keys_get_in_and_only_allowed_requests_are_served(
    team: tuple[Team, ServeProcess],
) -> None:
    people, serve = team
    with pytest.raises(asyncssh.PermissionDenied):
        await connect(people, people.stranger)
    with pytest.raises(asyncssh.PermissionDenied):
        await asyncssh.connect(
            "127.0.0.1",
            people.port,
            username="bob",
            password="guess",
            known_hosts=None,
            client_keys=None,
            agent_path=None,
        )
    async with await connect(people, people.viewer) as conn:
        listed = await conn.run("toast ls --json", check=True)
        assert json.loads(str(listed.stdout)) == []
        with pytest.raises(asyncssh.ChannelOpenError, match="Session request failed"):
            await conn.run("toast destroy blog --yes")
        with pytest.raises(asyncssh.ChannelOpenError, match=r"prohibited|refused|denied"):
            await conn.open_connection("127.0.0.1", 22)
        with pytest.raises((asyncssh.SFTPError, asyncssh.ChannelOpenError)):
            await conn.start_sftp_client()
        with pytest.raises(asyncssh.ChannelOpenError, match="Session request failed"):
            await conn.run()  # a shell without a terminal
    log = serve.text()
    assert "unknown key" in log and "the console needs a terminal" in log
    assert "not allowed over ssh: 'toast destroy blog --yes'" in log


async def test_twenty_failed_logins_lock_that_address_out_and_no_other(
    team: tuple[Team, ServeProcess],
) -> None:
    people, _ = team
    for _ in range(20):
        with pytest.raises(asyncssh.PermissionDenied):
            await connect(people, people.stranger, local_addr=("127.0.0.2", 0))
    with pytest.raises((asyncssh.Error, OSError)):
        await connect(people, people.viewer, local_addr=("127.0.0.2", 0))
    async with await connect(people, people.viewer, local_addr=("127.0.0.3", 0)) as conn:
        assert (await conn.run("toast activity --json", check=True)).exit_status == 0


class Tmux:
    def __init__(self, name: str) -> None:
        self.socket = f"toast-ssh-{name}-{os.getpid()}"

    def run(self, *args: str) -> str:
        return subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=False
        ).stdout

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", "s")

    def wait_for(self, text: str, timeout: float = 60) -> None:
        try:
            wait_for(lambda: True if text in self.screen() else None, repr(text), timeout)
        except WaitTimeout as exc:
            raise AssertionError(f"{text!r} never showed; the screen:\n{self.screen()}") from exc


def session_processes(name: str) -> list[str]:
    ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True, check=True)
    return [line for line in ps.stdout.splitlines() if f"--as {name} " in line and "cli" in line]


def test_a_person_gets_the_console_on_a_real_terminal_and_leaves_nothing_behind(
    team: tuple[Team, ServeProcess], sandbox: SandboxInfo
) -> None:
    people, serve = team
    assert shutil.which("ssh") and shutil.which("tmux")
    assert deploy("static-site", "shared")["state"] == "live"
    term = Tmux("ana")
    command = (
        f"ssh -tt -p {people.port} -i {people.deployer} -o StrictHostKeyChecking=no "
        "-o UserKnownHostsFile=/dev/null -o LogLevel=ERROR toast@127.0.0.1"
    )
    term.run("-f", "/dev/null", "new-session", "-d", "-s", "s", "-x", "120", "-y", "40", command)
    try:
        term.wait_for("ana (deployer)")
        term.wait_for("shared")  # the deployment, live, in the list
        assert "live" in term.screen()
        # A resize reaches the console, which lays itself out again.
        term.run("resize-window", "-t", "s", "-x", "90", "-y", "30")
        wait_for(
            lambda: (
                True
                if max(len(line.rstrip()) for line in term.screen().splitlines()) <= 90
                and "ana (deployer)" in term.screen()
                else None
            ),
            "the console to redraw at 90 columns",
            30,
        )
        assert session_processes("ana")
        now = toast("activity").stdout
        assert "Connected now over ssh: ana (deployer" in now
    finally:
        term.run("kill-server")  # the client dies without a goodbye
    wait_for(lambda: True if not session_processes("ana") else None, "no orphans", 5)
    serve.wait_for_line("ssh: ana from 127.0.0.1: session ended")

    def logged() -> dict[str, Any] | None:
        rows = json.loads(toast("activity", "--json").stdout)
        return next(
            (r for r in rows if r["actor"] == "ana@ssh" and "ended" in str(r["detail"])), None
        )

    entry = wait_for(logged, "the session in the connection log", 15)
    assert (
        entry["action"] == "ssh console"
        and "deployer from 127.0.0.1, key SHA256:" in (entry["detail"])
    )
    assert "Connected now" not in toast("activity").stdout


def test_two_people_see_the_same_runs_live_and_a_dropped_session_stops_no_deploy(
    team: tuple[Team, ServeProcess], sandbox: SandboxInfo, session_sandbox: Any
) -> None:
    people, _ = team
    flags, flag = slow_build_repo(session_sandbox.layout, "someone/slow")
    ana, bob = Tmux("ana2"), Tmux("bob2")
    try:
        for term, key in ((ana, people.deployer), (bob, people.viewer)):
            command = (
                f"ssh -tt -p {people.port} -i {key} -o StrictHostKeyChecking=no "
                "-o UserKnownHostsFile=/dev/null -o LogLevel=ERROR toast@127.0.0.1"
            )
            term.run("-f", "/dev/null", "new-session", "-d", "-s", "s", "-x", "140", "-y", "40")
            term.run("send-keys", "-t", "s", command, "Enter")
        ana.wait_for("ana (deployer)")
        bob.wait_for("bob (viewer)")
        # ana deploys (from her session's role, as the engine checks it).
        queued = toast(
            "--as",
            "ana",
            "--role",
            "deployer",
            "--sandbox",
            "deploy",
            "someone/slow",
            "--subdomain",
            "slow",
            "--env",
            f"GO_FLAG={flag}",
        )
        assert queued.returncode == 0, queued.stderr
        for term in (ana, bob):  # both see it building, live
            term.wait_for("deploying", 120)
        ana.run("kill-server")  # ana's connection drops mid-build
        wait_for(lambda: True if not session_processes("ana") else None, "ana's console gone", 5)
        flag.write_text("go")
        bob.wait_for("live", 180)  # the deploy went on without her
        assert "deploying" not in bob.screen()
    finally:
        for term in (ana, bob):
            term.run("kill-server")
        shutil.rmtree(flags, ignore_errors=True)


def test_an_idle_session_is_warned_then_ended(sandbox: SandboxInfo, tmp_path: Path) -> None:
    people = Team(tmp_path)
    with ssh_serving(tmp_path, people, "--ssh-idle-timeout", "8") as serve:
        term = Tmux("idle")
        command = (
            f"ssh -tt -p {people.port} -i {people.viewer} -o StrictHostKeyChecking=no "
            "-o UserKnownHostsFile=/dev/null -o LogLevel=ERROR toast@127.0.0.1"
        )
        term.run("-f", "/dev/null", "new-session", "-d", "-s", "s", "-x", "140", "-y", "40")
        term.run("send-keys", "-t", "s", command, "Enter")
        try:
            term.wait_for("bob (viewer)")
            term.wait_for("No input for a while", 30)
            serve.wait_for_line("ssh: bob idle for", 30)
            wait_for(lambda: True if not session_processes("bob") else None, "bob's console", 5)
        finally:
            term.run("kill-server")


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[Path]:
    """A real ssh-agent the client offers to forward."""
    sock = tmp_path / "agent.sock"
    proc = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL)
    try:
        wait_for(lambda: True if sock.exists() else None, "ssh-agent to listen", 10)
        yield sock
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def server_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The TMPDIR `toast serve` runs with: asyncssh makes an agent's socket there."""
    path = tmp_path / "server-tmp"
    path.mkdir()
    monkeypatch.setenv("TMPDIR", str(path))
    return path


async def test_agent_forwarding_is_refused(
    sandbox: SandboxInfo, tmp_path: Path, agent: Path, server_tmp: Path
) -> None:
    """A client that forwards its agent gets a console but no agent on the server: no
    forwarding socket is ever made (asyncssh would make one under the server's TMPDIR)."""
    people = Team(tmp_path)
    with ssh_serving(tmp_path, people) as serve:
        async with await connect(
            people, people.viewer, agent_path=str(agent), agent_forwarding=True
        ) as conn:
            process = await conn.create_process(term_type="xterm", term_size=(100, 30))
            await asyncio.to_thread(serve.wait_for_line, "opened the console")
            assert (await conn.run("toast ls --json", check=True)).exit_status == 0
            made = await asyncio.to_thread(os.listdir, server_tmp)
            assert [name for name in made if name.startswith("asyncssh")] == []
            process.close()


def test_authorized_keys_lines_for_toast_serve_and_for_plain_openssh(tmp_path: Path) -> None:
    key = make_key(tmp_path, "ana")
    line = run_toast("authorized-keys-line", "--role", "deployer", "--name", "ana", f"{key}.pub")
    assert line.returncode == 0, line.stderr
    parsed = asyncssh.import_authorized_keys(line.stdout)
    options = parsed.validate(asyncssh.read_public_key(f"{key}.pub"), "", "127.0.0.1")
    assert options is not None
    assert (options["toast-name"], options["toast-role"]) == (["ana"], ["deployer"])
    forced = run_toast(
        "authorized-keys-line", "--role", "viewer", "--name", "bob", "--openssh", f"{key}.pub"
    )
    assert forced.stdout.startswith('restrict,pty,command="toast --as bob --role viewer" ')
    bad = run_toast("authorized-keys-line", "--role", "viewer", "--name", "b o b", f"{key}.pub")
    assert bad.returncode == 2 and "--name" in bad.stderr
