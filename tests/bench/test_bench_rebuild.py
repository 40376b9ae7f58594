"""Real apps, made by their real scaffolders (create-vite's React template and
create-next-app, committed under tests/fixtures/scaffolds): a first deploy (cold package
cache) and a redeploy of a change that leaves the lockfile alone, each from the command to
the site live (`--wait` returns then), with the install step's share of it. Goal: the
redeploy's install at most 20 % of the first's (node_modules reused)."""

from __future__ import annotations

import re
import shutil
import time
from typing import Any

import pytest

from core.sandbox.controller import SandboxInfo

from ..deploy_helpers import show, toast
from ..helpers.scaffolds import push_change, scaffold_repo
from .report import Report

GOAL = 0.20
#: Label in the table -> the committed scaffold.
APPS = {"create-vite react-ts": "vite-react-ts", "create-next-app": "next-app"}


def install_seconds(name: str) -> tuple[float, str]:
    build = next(s for s in show(name)["last_run"]["steps"] if s["name"] == "build")
    found = re.search(r"(installed|reused from \w+) in ([\d.]+) s", build["detail"])
    assert found, build
    return float(found.group(2)), found.group(1)


def timed(*args: str) -> float:
    """Seconds from the command to its return: with --wait, when the site is live."""
    started = time.perf_counter()
    done = toast(*args, "--wait", timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return time.perf_counter() - started


@pytest.mark.parametrize("label", list(APPS))
def test_first_deploy_and_a_redeploy_with_an_unchanged_lockfile(
    sandbox: SandboxInfo, session_sandbox: Any, bench: Report, label: str
) -> None:
    shutil.rmtree(session_sandbox.layout.host_root / "toast" / "cache", ignore_errors=True)
    scaffold = APPS[label]
    name = f"bench-{scaffold.split('-')[0]}"
    bare = session_sandbox.layout.bare_repo(f"scaffolds/{scaffold}")
    url = scaffold_repo(scaffold, bare)
    first = timed("--sandbox", "deploy", url, "--subdomain", name)
    cold, _ = install_seconds(name)
    push_change(bare, "note.txt", "a change that leaves the lockfile alone\n", "Touch")
    again = timed("redeploy", name)
    reused, how = install_seconds(name)
    assert how.startswith("reused")
    ratio = reused / cold
    print(
        f"\n{label}: first deploy {first:.1f} s, its install {cold:.2f} s ({cold / first:.0%}, "
        f"cold cache); redeploy, lockfile unchanged, {again:.1f} s, its install {reused:.2f} s "
        f"(node_modules reused) = {ratio:.1%} of the first (goal <= {GOAL:.0%})"
    )
    section = f"real apps: {label}"
    bench.add(
        section,
        "first deploy, command -> live",
        first,
        "s",
        baseline=f"install {cold:.1f} s ({cold / first:.0%}), cold package cache",
    )
    bench.add(
        section,
        "redeploy, lockfile unchanged, command -> live",
        again,
        "s",
        baseline=f"install {reused:.1f} s ({reused / again:.0%})",
    )
    bench.add(
        section,
        "redeploy's install, lockfile unchanged",
        ratio * 100,
        "% of the first",
        baseline=f"first {cold:.1f} s",
        goal=f"<= {GOAL:.0%}",
        ok=ratio <= GOAL,
    )
