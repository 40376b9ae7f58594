"""A create-vite React app: the install step of a first build (cold package cache) against
a redeploy whose lockfile did not change (node_modules reused), and a forced rebuild (the
cache warm, nothing reused). Goal: the redeploy's install at most 20 % of the first's."""

from __future__ import annotations

import re
import shutil
from typing import Any

from core.sandbox.controller import SandboxInfo

from ..deploy_helpers import show, toast
from ..helpers.scaffolds import push_change, scaffold_repo
from .report import Report

GOAL = 0.20


def install_seconds(name: str) -> tuple[float, str]:
    build = next(s for s in show(name)["last_run"]["steps"] if s["name"] == "build")
    found = re.search(r"(installed|reused from \w+) in ([\d.]+) s", build["detail"])
    assert found, build
    return float(found.group(2)), found.group(1)


def test_rebuild_with_an_unchanged_lockfile(
    sandbox: SandboxInfo, session_sandbox: Any, bench: Report
) -> None:
    shutil.rmtree(session_sandbox.layout.host_root / "toast" / "cache", ignore_errors=True)
    bare = session_sandbox.layout.bare_repo("scaffolds/vite-react-ts")
    url = scaffold_repo("vite-react-ts", bare)
    first = toast("--sandbox", "deploy", url, "--subdomain", "bench", "--wait", timeout=900)
    assert first.returncode == 0, first.stderr
    cold, _ = install_seconds("bench")
    push_change(bare, "src/note.txt", "a change that leaves the lockfile alone\n", "Touch")
    again = toast("redeploy", "bench", "--wait", timeout=900)
    assert again.returncode == 0, again.stderr
    reused, how = install_seconds("bench")
    assert how.startswith("reused")
    forced = toast("redeploy", "bench", "--force", "--wait", timeout=900)
    assert forced.returncode == 0, forced.stderr
    warm, _ = install_seconds("bench")
    ratio = reused / cold
    print(
        f"\nrebuild (vite react-ts, npm ci): first install {cold:.2f} s (cold cache); "
        f"redeploy, lockfile unchanged: {reused:.2f} s (node_modules reused) = {ratio:.1%} "
        f"of the first (goal <= {GOAL:.0%}: {'met' if ratio <= GOAL else 'NOT met'}); "
        f"forced rebuild with a warm cache: {warm:.2f} s ({warm / cold:.1%})"
    )
    section = "real apps: create-vite react-ts"
    bench.add(section, "first deploy's install (cold cache)", cold, "s")
    bench.add(
        section,
        "redeploy's install, lockfile unchanged",
        ratio * 100,
        "% of the first",
        baseline=f"first {cold:.1f} s",
        goal=f"<= {GOAL:.0%}",
        ok=ratio <= GOAL,
    )
    bench.add(section, "forced rebuild's install (warm cache)", warm, "s")
