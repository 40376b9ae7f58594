"""The session sandbox stopped and started again with deployments in it, as a user does
between two working days: `down` leaves no app running, `up` brings back the same cloud
(same instance, zone and log groups), so the database still matches it and gc finds
nothing to collect; a new instance's UserData never takes another app's files; destroy
leaves no host logs."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.runs.waiting import poll_sync
from core.sandbox.controller import Sandbox, SandboxInfo
from core.sandbox.daemon import aws_client
from core.sandbox.processes import processes_mentioning

from .deploy_helpers import deploy, https_get, show, toast

Clients = Callable[[str], Any]


def owners(root: Path) -> dict[str, tuple[int, int]]:
    """path -> (uid, gid) of every file under `root`."""
    return {str(p.relative_to(root)): (p.lstat().st_uid, p.lstat().st_gid) for p in root.rglob("*")}


def test_down_stops_every_app_and_up_brings_back_the_same_cloud(
    sandbox: SandboxInfo, session_sandbox: Sandbox, aws: Clients, isolated_toast: Path
) -> None:
    host = session_sandbox.layout.host_root
    api = deploy("node-server", "keep")
    assert api["state"] == "live"
    app_dir = host / "toast" / "apps" / "keep"
    before = owners(app_dir / "releases")

    # A second deployment boots a new instance on the same host: its UserData must not
    # re-own the first app's files.
    deploy("static-site", "other")
    assert owners(app_dir / "releases") == before

    instance = show("keep")["instance"]
    zone_before = aws("route53").list_hosted_zones()["HostedZones"]
    down = toast("sandbox", "down")
    assert down.returncode == 0, down.stderr
    assert "app keep:" in down.stdout and "AWS state is kept" in down.stdout
    # No process of any app is left, so nothing listens on their ports.
    gone = poll_sync(
        lambda: True if not processes_mentioning(str(app_dir)) else None,
        what="the apps' processes to exit",
        timeout=10,
    )
    assert gone
    assert not list(app_dir.glob("run/*.pid"))

    up = toast("sandbox", "up", "--json", timeout=180)
    assert up.returncode == 0, up.stderr
    # A port still held by the kernel after `down` may be chosen anew: ask the sandbox.
    info = session_sandbox.status()
    assert info is not None and info.running
    assert json.loads(up.stdout)["aws_endpoint"] == info.aws_endpoint

    def cloud(service: str) -> Any:
        return aws_client(service, info.aws_endpoint)

    # The same instance, zone and log groups: the database still describes the cloud.
    state = cloud("ec2").describe_instances(InstanceIds=[instance])["Reservations"][0]
    assert state["Instances"][0]["State"]["Name"] == "running"
    assert cloud("route53").list_hosted_zones()["HostedZones"] == zone_before
    groups = [g["logGroupName"] for g in cloud("logs").describe_log_groups()["logGroups"]]
    assert "/toast/keep/build" in groups
    findings = json.loads(toast("--sandbox", "gc", "--json").stdout)["findings"]
    assert findings == []
    listed = {d["name"]: d["state"] for d in json.loads(toast("ls", "--json").stdout)}
    assert listed == {"keep": "live", "other": "live"}

    # The static site serves again at once; the node app after a forced redeploy.
    assert https_get(info, "other.sandbox.test").status_code == 200
    again = toast("redeploy", "keep", "--force", "--wait")
    assert again.returncode == 0, again.stderr
    assert "Hello from the Toast node sample" in https_get(info, "keep.sandbox.test").text

    # A live deployment's record is never collected, even with its ledger entry lost.
    with sqlite3.connect(isolated_toast / "toast.db") as db:
        db.execute("DELETE FROM resources WHERE kind = 'dns_record' AND resource_id LIKE 'other.%'")
    collected = json.loads(toast("--sandbox", "gc", "--delete", "--json").stdout)
    assert {
        "kind": "dns_record",
        "id": "other.sandbox.test",
        "region": "global",
        "problem": "in-use",
    } in collected["findings"]
    assert any(line.startswith("kept dns_record other.sandbox.test") for line in collected["done"])
    assert https_get(info, "other.sandbox.test").status_code == 200

    # Destroy takes the deployment's host logs with it (build output may hold what leaked).
    logs = Path(session_sandbox.host_profile().log_dir) / "keep"
    assert logs.exists()
    assert toast("destroy", "keep", "--yes", "--wait").returncode == 0
    assert not logs.exists()
