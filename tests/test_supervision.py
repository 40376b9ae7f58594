"""Node apps are supervised: a crash brings the app back within seconds without Toast
running (the sandbox's runner supervision), and the EC2 unit is one systemd accepts."""

from __future__ import annotations

import os
import pwd
import re
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from core.commands.systemd import render_unit
from core.commands.toolchain import build_env
from core.host.layout import AppPaths
from core.host.profiles import ec2_host_profile
from core.sandbox.controller import SandboxInfo

from .deploy_helpers import deploy, https_get, show, toast
from .helpers.waiting import wait_for

EC2 = ec2_host_profile()
Clients = Callable[[str], Any]


def verify(unit: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, check=False
    )


def test_the_ec2_unit_restarts_always_and_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    text = render_unit(
        AppPaths(EC2, "blog"),
        user="ec2-user",
        cwd="/opt/toast/apps/blog/releases/abc-r2",
        start_cmd="npm run start -- --title 'a b % $HOME'",
        port=3000,
        env=build_env(EC2, "npm ci", "24"),
        redact=["API_KEY"],
    )
    assert "Restart=always" in text
    assert "API_KEY=" not in text  # the name of a secret goes to the runner; no value here
    unit = tmp_path / "toast-blog-3000.service"
    unit.write_text(text)
    checked = verify(unit)
    assert (checked.returncode, checked.stdout + checked.stderr) == (0, "")
    # The check can fail: a unit systemd would ignore parts of is reported.
    broken = tmp_path / "toast-bad-3000.service"
    broken.write_text(text.replace("Restart=always", "Restart=sometimes"))
    assert "restart specifier" in verify(broken).stderr
    # Words with spaces, % and $ reach the app as written (systemd unquotes them once).
    assert "ExecStart=/usr/bin/env node" in text and '"a b %% $$HOME"' in text


def page_pid(sandbox: SandboxInfo, fqdn: str) -> int | None:
    try:
        page = https_get(sandbox, fqdn)
    except httpx.HTTPError:
        return None
    found = re.search(r"pid (\d+)", page.text) if page.status_code == 200 else None
    return int(found.group(1)) if found else None


def test_a_killed_node_app_is_serving_again_within_seconds_without_toast(
    sandbox: SandboxInfo,
) -> None:
    deploy("node-server", "phoenix")
    fqdn = "phoenix.sandbox.test"
    first = page_pid(sandbox, fqdn)
    assert first is not None
    os.kill(first, signal.SIGKILL)
    again = wait_for(
        lambda: pid if (pid := page_pid(sandbox, fqdn)) not in (None, first) else None,
        "the app to come back",
        20,
    )
    # Killed again at once, it comes back again (the backoff is short, not a give-up).
    os.kill(again, signal.SIGKILL)
    third = wait_for(
        lambda: pid if (pid := page_pid(sandbox, fqdn)) not in (None, first, again) else None,
        "the app to come back again",
        20,
    )
    assert third not in (first, again)


def test_the_sandbox_host_is_an_unprivileged_login_with_sudo_as_on_ec2(
    sandbox: SandboxInfo, session_sandbox: Any
) -> None:
    # Run as root (CI, scripts/test), the instance host is toast-host with sudo, as
    # ec2-user is on AL2023; nginx's and certbot's files are root's.
    host = session_sandbox.host_profile()
    assert os.geteuid() == 0, "scripts/test runs as root, so this is the EC2-like path"
    assert (host.ssh_user, host.sudo, host.app_user) == ("toast-host", ("sudo",), "toast-app")
    assert host.nginx_reload[0] == "sudo"
    deploy("node-server", "unpriv")
    pid = page_pid(sandbox, "unpriv.sandbox.test")
    assert pid is not None
    owner = subprocess.run(
        ["ps", "-o", "user=", "-p", str(pid)], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert owner == "toast-app"  # a user of its own, not the login user
    app_dir = Path(host.root) / "apps" / "unpriv"
    env = app_dir / "app-env.json"
    assert env.owner() == "toast-app" and env.stat().st_mode & 0o777 == 0o600
    # It owns its release, its env file and its log: nothing else on the host.
    app_uid = pwd.getpwnam("toast-app").pw_uid
    owned = {
        p
        for base in (Path(host.root), Path(host.log_dir))
        for p in base.rglob("*")
        if p.lstat().st_uid == app_uid  # the link itself, not what it points at
    }
    allowed_roots = {env, Path(host.log_dir) / "unpriv" / "app.log"}
    releases = app_dir / "releases"
    assert owned, "nothing is the app's"
    assert all(p in allowed_roots or releases in p.parents for p in owned), sorted(
        str(p) for p in owned if p not in allowed_roots and releases not in p.parents
    )[:5]
    live = Path(host.certbot_home("unpriv.sandbox.test")) / "live"
    assert live.stat().st_uid == 0 and live.stat().st_mode & 0o077 == 0  # root's alone
    site = Path(host.nginx_sites_dir) / "toast-unpriv.conf"
    assert site.stat().st_uid == 0
    release_root = Path(host.root) / "apps" / "unpriv"
    assert release_root.owner() == "toast-host"
    said = toast("sandbox", "doctor")
    assert "logs in as toast-host with sudo, as EC2's ec2-user" in said.stdout


def test_host_preparation_runs_the_real_userdata_and_a_failing_stage_is_reported(
    sandbox: SandboxInfo, session_sandbox: Any, aws: Clients
) -> None:
    # The stage fails on the host; the deploy ends at `ssh` with the stage and its output
    # (long before the 900 s preparation timeout the command's own timeout would hit).
    failed = toast(
        "--sandbox",
        "deploy",
        "toast-samples/static-site",
        "--subdomain",
        "broken-boot",
        "--wait",
        env={"TOAST_FAULTS": "userdata:fail:packages"},
        timeout=120,
    )
    assert failed.returncode == 1
    assert "deploy of broken-boot failed at step ssh" in failed.stderr
    assert (
        "host preparation failed at stage 'packages' (exit 1): "
        "toast: injected failure in stage packages"
    ) in failed.stderr
    assert [
        i
        for r in aws("ec2").describe_instances()["Reservations"]
        for i in r["Instances"]
        if i["State"]["Name"] == "running"
    ] == []
    # A good boot ran every stage of the same script, through the sandbox's checking dnf.
    deploy("static-site", "good-boot")
    instance = show("good-boot")["instance"]
    boot = Path(session_sandbox.host_profile().boot_status_dir(instance))
    assert (boot / "status").read_text().strip() == "done"
    assert "sandbox: nginx is provided by this machine" in (boot / "packages.log").read_text()
    assert (boot / "node.log").read_text().startswith("sandbox: alternatives")
