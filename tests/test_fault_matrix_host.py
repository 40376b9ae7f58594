"""The fault matrix's SSH and git columns: every host command of a deploy, a redeploy, a
rollback and a destroy, with the SSH connection cut as it runs, with the host frozen (only
SSH keepalives can tell), and the same at every command of a step; the build's git fetch
against a git server that refuses connections and one that accepts and never answers.

A fault that strikes once ends in success: the step runs again on a new connection (a
fetch is tried again), and the site serves the build it should. The network down for a
step ends in a failed run that says what was lost and where, with the live release still
serving (a redeploy, a rollback) or everything rolled back (a first deploy); a switch that
fails half done is undone; a destroy always finishes, naming what it left on the host.
`toast gc` finds nothing orphaned at the end.

Each batch of cases runs at once under one engine (the faults travel with each run), so
the matrix costs four rounds of runs, not one per case. The matrix is printed."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.sandbox import githost
from core.sandbox.controller import Sandbox, SandboxInfo

from .deploy_helpers import gc_findings, run_at_once, serves
from .helpers.state import last_run, open_resources
from .helpers.waiting import wait_for

REPO = "matrix/site"
NODE_REPO = "matrix/node"
#: A frozen host is given up after four silent keepalive intervals: 4 s here, 60 s by default.
TUNING = {"TOAST_SSH_KEEPALIVE": "1", "TOAST_GIT_STALL": "2"}
DEPLOY_STEPS = ("ssh", "build", "https", "switch", "renewal")
#: The most host commands a deploy step sends (https: certificate, site, reload polls).
MOST_COMMANDS = 8
#: A redeploy's build and switch are the deploy's (struck above at every command): here its
#: own, the env file's check (4th), the first and the last (the output's check, 9th), and
#: both commands of a static switch.
REDEPLOY_STRIKES = (1, 2, 4, 9)

Matrix = list[tuple[str, str, str]]


@pytest.fixture
def silent_git_server() -> Iterator[int]:
    """A port that accepts connections (the kernel completes them) and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield listener.getsockname()[1]


def _ok(run: dict[str, Any], what: str) -> None:
    assert run["state"] == "succeeded", (what, run["error"], run["steps"])


def _lost(run: dict[str, Any], what: str) -> str:
    """A run that failed for a lost connection: the step it failed at."""
    assert run["state"] == "failed", (what, run["steps"])
    assert "lost the SSH connection" in run["error"], (what, run["error"])
    assert "3 attempts" in run["error"], (what, run["error"])
    return str(next(s["name"] for s in run["steps"] if s["state"] == "failed"))


def test_every_host_command_and_fetch_under_lost_connections_frozen_hosts_and_git_faults(
    sandbox: SandboxInfo,
    session_sandbox: Sandbox,
    isolated_toast: Path,
    silent_git_server: int,
) -> None:
    db_path = isolated_toast / "toast.db"
    layout = session_sandbox.layout
    files = {**githost.SAMPLES["static-site"], "message.txt": "Matrix one\n"}
    githost.create_repo(layout, REPO, files)
    node_files = {**githost.SAMPLES["node-server"], "message.txt": "Matrix node one\n"}
    githost.create_repo(layout, NODE_REPO, node_files)
    matrix: Matrix = []

    def deploy_args(name: str) -> tuple[str, ...]:
        return ("--sandbox", "deploy", REPO, "--subdomain", name)

    def every_step(kind: str, steps: tuple[str, ...], n: int | str) -> str:
        return ",".join(f"ssh:{kind}:{step}:{n}" for step in steps)

    def run_of(name: str) -> dict[str, Any]:
        return last_run(db_path, name)

    def fqdn(name: str) -> str:
        return f"{name}.sandbox.test"

    def serving(name: str, text: str) -> None:
        wait_for(lambda: serves(sandbox, fqdn(name), text), f"{name} to serve {text!r}", 30)

    def cut_once(kind: str, steps: tuple[str, ...], strikes: dict[str, int], version: str) -> None:
        """Each case (a deployment, the command its steps were cut at) succeeded and serves
        `version`; every step was struck, at its first command at least."""
        reached: dict[str, set[int]] = {step: set() for step in steps}
        for name, n in strikes.items():
            _ok(run_of(name), name)
            serving(name, f"Matrix {version}")
            for step in set(run_of(name)["struck"]):
                reached[step].add(n)
        for step, ns in reached.items():
            assert 1 in ns, f"no command of {step} was struck"
            matrix.append((f"{kind} {step}: command {_spans(ns)}", "cut once", "ran again; live"))

    # 1. Deploys.
    stall = f"git:stall:{silent_git_server}"
    deploys: dict[str, tuple[tuple[str, ...], str]] = {
        f"d{n}": (deploy_args(f"d{n}"), every_step("drop", DEPLOY_STEPS, n))
        for n in range(1, MOST_COMMANDS + 1)
    }
    deploys["dhang"] = (deploy_args("dhang"), every_step("hang", DEPLOY_STEPS, 1))
    # Ten at a time: twenty first deploys at once starve the sandbox's DNS (it shares two
    # cores with twenty certbots), and the CA's lookups time out.
    run_at_once(db_path, env=TUNING, cases=deploys)
    lasting: dict[str, tuple[tuple[str, ...], str]] = {
        f"dx{step}": (deploy_args(f"dx{step}"), f"ssh:drop:{step}:*") for step in DEPLOY_STEPS
    }
    lasting["dxhang"] = (deploy_args("dxhang"), "ssh:hang:build:*")
    lasting["grefuse"] = (deploy_args("grefuse"), "git:refuse:1")
    lasting["gstall"] = (deploy_args("gstall"), f"{stall}:1")
    lasting["gxrefuse"] = (deploy_args("gxrefuse"), "git:refuse")
    lasting["gxstall"] = (deploy_args("gxstall"), stall)
    lasting["dundo"] = (deploy_args("dundo"), "")
    for name in ("nundo", "nold"):
        lasting[name] = (("--sandbox", "deploy", NODE_REPO, "--subdomain", name), "")
    run_at_once(db_path, env=TUNING, cases=lasting)
    deploys.update(lasting)

    cut_once("deploy", DEPLOY_STEPS, {f"d{n}": n for n in range(1, MOST_COMMANDS + 1)}, "one")
    _ok(run_of("dhang"), "dhang")
    assert set(run_of("dhang")["struck"]) == set(DEPLOY_STEPS)
    matrix.append(("deploy, every step: 1st command", "host frozen", "ran again; live"))
    for step in DEPLOY_STEPS:
        name = f"dx{step}"
        run = run_of(name)
        if step == "renewal" and run["deployment"] == "live":
            # An after-live check: the site stays, warned.
            renewal = next(s for s in run["steps"] if s["name"] == "renewal")
            assert renewal["state"] == "failed" and "lost the SSH" in renewal["error"]
            matrix.append((f"deploy {step}: every command", "network down", "live, warned"))
            continue
        # (The renewal check shares the run's connection with the switch and the health
        # check beside it: cut at every one of its commands, it may take them down too.)
        failed_at = _lost(run, name)
        assert open_resources(db_path, name) == [], (name, "rolled back")
        matrix.append(
            (f"deploy {step}: every command", "network down", f"failed at {failed_at}; rolled back")
        )
    failed_at = _lost(run_of("dxhang"), "dxhang")
    assert open_resources(db_path, "dxhang") == []
    matrix.append(("deploy build: every command", "host frozen", f"failed at {failed_at}"))
    for name, fault in (("grefuse", "refused once"), ("gstall", "silent once")):
        _ok(run_of(name), name)
        assert run_of(name)["struck"] == [], "git faults are not SSH faults"
        matrix.append(("deploy build: git fetch", fault, "fetched again; live"))
    for name, fault, said in (
        ("gxrefuse", "refused always", "Failed to connect"),
        ("gxstall", "silent always", "Operation too slow"),
    ):
        run = run_of(name)
        assert run["state"] == "failed" and "git could not fetch" in run["error"], run
        assert "after 3 attempts" in run["error"] and said in run["error"], run["error"]
        assert open_resources(db_path, name) == []
        matrix.append(("deploy build: git fetch", fault, "failed at build; rolled back"))

    # 2. Redeploys of the live ones, to a second commit.
    githost.commit_files(layout, REPO, {"message.txt": "Matrix two\n"}, "Second")
    redeploys = {
        f"d{i}": (("redeploy", f"d{i}"), every_step("drop", ("build", "switch"), n))
        for i, n in enumerate(REDEPLOY_STRIKES, start=1)
    }
    redeploys["dhang"] = (("redeploy", "dhang"), every_step("hang", ("build", "switch"), 1))
    redeploys["grefuse"] = (("redeploy", "grefuse"), "ssh:drop:build:*")
    redeploys["gstall"] = (("redeploy", "gstall"), "ssh:drop:switch:*")
    redeploys["d5"] = (("redeploy", "d5"), "git:refuse")
    # The switch links the new release, then its next command fails: put back.
    redeploys["dundo"] = (("redeploy", "dundo"), "ssh:fail:switch:2")
    # A node app's switch fails with the old process still up, and once it was stopped.
    githost.commit_files(layout, NODE_REPO, {"message.txt": "Matrix node two\n"}, "Second")
    redeploys["nundo"] = (("redeploy", "nundo"), "ssh:fail:switch:point current")
    redeploys["nold"] = (("redeploy", "nold"), "ssh:fail:switch:stop the old process")
    run_at_once(db_path, env=TUNING, cases=redeploys)
    strikes = {f"d{i}": n for i, n in enumerate(REDEPLOY_STRIKES, start=1)}
    cut_once("redeploy", ("build", "switch"), strikes, "two")
    _ok(run_of("dhang"), "dhang")
    assert set(run_of("dhang")["struck"]) == {"build", "switch"}
    matrix.append(("redeploy, every step: 1st command", "host frozen", "ran again; live"))
    for name, site in (("grefuse", "build"), ("gstall", "switch")):
        failed_at = _lost(run_of(name), name)
        assert serves(sandbox, fqdn(name), "Matrix one"), f"{name}: the live release stays"
        matrix.append(
            (
                f"redeploy {site}: every command",
                "network down",
                f"failed at {failed_at}; old serves",
            )
        )
    run = run_of("d5")
    assert run["state"] == "failed" and "git could not fetch" in run["error"], run
    assert serves(sandbox, fqdn("d5"), "Matrix one")
    matrix.append(("redeploy build: git fetch", "refused always", "failed; old serves"))
    run = run_of("dundo")
    assert run["state"] == "failed" and "serves again" in run["error"], run
    assert serves(sandbox, fqdn("dundo"), "Matrix one"), "the half-done switch was undone"
    matrix.append(("redeploy switch: 2nd command", "fails", "failed; undone, old serves"))
    for name, site in (("nundo", "link"), ("nold", "stop the old process")):
        run = run_of(name)
        assert run["state"] == "failed" and "serves again" in run["error"], run
        assert serves(sandbox, fqdn(name), "Matrix node one"), f"{name}: undone"
        matrix.append((f"redeploy node switch: {site}", "fails", "failed; undone, old serves"))

    # 3. Rollbacks to the first commit.
    rollbacks = {f"d{n}": (("rollback", f"d{n}"), f"ssh:drop:switch:{n}") for n in (1, 2)}
    rollbacks["dhang"] = (("rollback", "dhang"), "ssh:hang:switch:1")
    rollbacks["d3"] = (("rollback", "d3"), "ssh:drop:switch:*")
    run_at_once(db_path, env=TUNING, cases=rollbacks)
    for name in ("d1", "d2", "dhang"):
        _ok(run_of(name), name)
        assert run_of(name)["struck"] == ["switch"], name
        serving(name, "Matrix one")
    matrix.append(("rollback switch: commands 1-2", "cut once", "ran again; rolled back"))
    matrix.append(("rollback switch: 1st command", "host frozen", "ran again; rolled back"))
    failed_at = _lost(run_of("d3"), "d3")
    assert serves(sandbox, fqdn("d3"), "Matrix two"), "a failed rollback leaves the live one"
    matrix.append(("rollback switch: every command", "network down", f"failed at {failed_at}"))

    # 4. Destroys of everything left: each finishes, the cloud resources go.
    left = [name for name in deploys if open_resources(db_path, name)]
    faults = {name: "" for name in left}
    cut = [name for name in left if name.startswith("d") and name[1:].isdigit()]
    for n, name in enumerate(cut, start=1):
        faults[name] = f"ssh:drop:host-cleanup:{n}"
    faults["dhang"] = "ssh:hang:host-cleanup:1"
    faults["grefuse"] = "ssh:drop:host-cleanup:*"
    destroys = {name: (("destroy", name, "--yes"), f) for name, f in faults.items()}
    run_at_once(db_path, env=TUNING, cases=destroys)
    for name in left:
        run = run_of(name)
        assert run["kind"] == "destroy" and run["state"] == "succeeded", (name, run)
        assert open_resources(db_path, name) == [], name
    cleanup = next(s for s in run_of("grefuse")["steps"] if s["name"] == "host-cleanup")
    assert "left on the host" in cleanup["detail"] and "lost the SSH" in cleanup["detail"], cleanup
    matrix.append((f"destroy host-cleanup: commands 1-{len(cut)}", "cut once", "ran again; gone"))
    matrix.append(("destroy host-cleanup: 1st command", "host frozen", "ran again; gone"))
    matrix.append(
        ("destroy host-cleanup: every command", "network down", "named what it left; gone")
    )
    assert gc_findings() == []

    width = max(len(site) for site, _, _ in matrix)
    print(
        "\n"
        + "\n".join(f"{site:<{width}}  {fault:<14}  {outcome}" for site, fault, outcome in matrix)
    )


def _spans(ns: set[int]) -> str:
    """1, 2, 3, 5 -> "1-3, 5"."""
    out: list[str] = []
    for n in sorted(ns):
        if out and out[-1].split("-")[-1] == str(n - 1):
            out[-1] = f"{out[-1].split('-')[0]}-{n}"
        else:
            out.append(str(n))
    return ", ".join(out)
