"""A repository on this machine's disk (file://) is checked before money is spent: a real
AWS profile refuses it at once (an instance elsewhere can never read it), and the sandbox,
whose host is this machine, fails at `check` with nothing launched when the host's login
user cannot read it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from core.sandbox.controller import SandboxInfo

from .conftest import run_toast
from .deploy_helpers import show, toast
from .helpers.scaffolds import scaffold_repo

REAL_PROFILE = """
[profiles.work]
region = "eu-west-1"
base_domain = "apps.example.com"
operator_cidr = "203.0.113.7/32"
"""


def test_a_local_path_on_a_real_profile_is_refused_before_anything_is_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = Path(str(tmp_path / "config" / "config.toml"))
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(REAL_PROFILE)
    monkeypatch.setenv("TOAST_CONFIG", str(config))
    url = scaffold_repo("vite-vue", tmp_path / "app.git")
    env = {"AWS_ACCESS_KEY_ID": "unused", "AWS_SECRET_ACCESS_KEY": "unused"}
    refused = run_toast("deploy", url, "--subdomain", "local", env=env)
    assert refused.returncode == 1
    assert "the instance cannot read a path on this machine" in refused.stderr
    assert "push it to a git host" in refused.stderr
    assert json.loads(run_toast("ls", "--all", "--json").stdout) == []
    # `toast detect` says the same: the plan of such a repository is never offered.
    detected = run_toast("detect", url, env=env)
    assert detected.returncode == 1 and "cannot read a path" in detected.stderr


@pytest.fixture
def unreadable(tmp_path: Path) -> Iterator[Path]:
    bare = tmp_path / "private" / "app.git"
    scaffold_repo("vite-vue", bare)
    bare.chmod(0)
    try:
        yield bare
    finally:
        bare.chmod(0o755)


def test_a_repo_the_sandbox_host_cannot_read_fails_at_check_with_nothing_launched(
    sandbox: SandboxInfo, aws: Callable[[str], Any], unreadable: Path
) -> None:
    failed = toast(
        "--sandbox",
        "deploy",
        f"file://{unreadable}",
        "--subdomain",
        "unread",
        "--wait",
    )
    assert failed.returncode == 1, failed.stdout
    assert "deploy of unread failed at step check" in failed.stderr
    assert "cannot read" in failed.stderr
    steps = {s["name"]: s["state"] for s in show("unread")["last_run"]["steps"]}
    assert steps["check"] == "failed" and steps["launch"] != "succeeded"
    assert aws("ec2").describe_instances()["Reservations"] == []
