"""`toast sandbox up/status/down/reset` on a sandbox of its own, through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.sandbox.controller import Sandbox
from core.sandbox.daemon import aws_client
from core.sandbox.netcheck import listeners
from core.sandbox.processes import processes_mentioning

from .conftest import run_toast

REQUIRED_KEYS = {
    "aws_endpoint",
    "base_domain",
    "http_port",
    "https_port",
    "ca_bundle",
    "dns",
    "ssh",
    "github_api",
}


@pytest.fixture
def own_sandbox(tmp_path: Path) -> dict[str, str]:
    root = tmp_path / "lifecycle-sandbox"
    yield {"TOAST_SANDBOX_DIR": str(root)}
    Sandbox(root).down()  # never leave processes behind, whatever the test did


def test_up_status_down_reset_leave_nothing_behind(own_sandbox: dict[str, str]) -> None:
    root = own_sandbox["TOAST_SANDBOX_DIR"]
    before = run_toast("sandbox", "status", "--json", env=own_sandbox)
    assert before.returncode == 0 and json.loads(before.stdout) == {"running": False}

    up = run_toast("sandbox", "up", "--json", env=own_sandbox)
    assert up.returncode == 0, up.stderr
    info = json.loads(up.stdout)
    assert set(info) >= REQUIRED_KEYS and info["running"] is True
    assert set(info["ssh"]) >= {"host", "port"} and info["ssh"]["host"] == "127.0.0.1"
    assert info["dns"].startswith("127.0.0.1:")
    pids = [c["pid"] for c in info["components"].values()]
    assert len(set(pids)) == 4

    # Nothing the sandbox started listens beyond loopback (nginx workers and children included).
    sockets = listeners(pids)
    ports = {s.port for s in sockets}
    assert {
        info["http_port"],
        info["https_port"],
        info["ssh"]["port"],
        int(info["dns"].rsplit(":", 1)[1]),
    } <= ports
    assert sockets and all(s.loopback for s in sockets), [s for s in sockets if not s.loopback]

    again = run_toast("sandbox", "up", "--json", env=own_sandbox)
    assert json.loads(again.stdout)["components"] == info["components"], "up must be idempotent"

    status = json.loads(run_toast("sandbox", "status", "--json", env=own_sandbox).stdout)
    assert status["running"] is True and status["aws_endpoint"] == info["aws_endpoint"]

    # State survives down/up: a Route53 record made before is there after.
    route53 = aws_client("route53", info["aws_endpoint"])
    zone = route53.list_hosted_zones_by_name(DNSName="sandbox.test.")["HostedZones"][0]["Id"]
    route53.change_resource_record_sets(
        HostedZoneId=zone,
        ChangeBatch={
            "Changes": [
                {
                    "Action": "UPSERT",
                    "ResourceRecordSet": {
                        "Name": "kept.sandbox.test",
                        "Type": "A",
                        "TTL": 60,
                        "ResourceRecords": [{"Value": "127.0.0.1"}],
                    },
                }
            ]
        },
    )

    down = run_toast("sandbox", "down", env=own_sandbox)
    assert down.returncode == 0 and "Stopped: acme, nginx, sshd, aws." in down.stdout
    assert processes_mentioning(root) == []
    stopped = json.loads(run_toast("sandbox", "status", "--json", env=own_sandbox).stdout)
    assert stopped["running"] is False

    up2 = json.loads(run_toast("sandbox", "up", "--json", env=own_sandbox).stdout)
    assert up2["http_port"] == info["http_port"], "ports are kept across restarts"
    route53 = aws_client("route53", up2["aws_endpoint"])
    zone = route53.list_hosted_zones_by_name(DNSName="sandbox.test.")["HostedZones"][0]["Id"]
    names = [
        r["Name"]
        for r in route53.list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]
    ]
    assert "kept.sandbox.test." in names
    # the new ACME root is trusted alongside the old one
    assert Path(up2["ca_bundle"]).read_text().count("BEGIN CERTIFICATE") == 2

    reset = run_toast("sandbox", "reset", "--yes", env=own_sandbox)
    assert reset.returncode == 0
    assert processes_mentioning(root) == []
    assert not Path(root).exists()


def test_doctor_reports_a_working_machine() -> None:
    result = run_toast("sandbox", "doctor")
    assert result.returncode == 0, result.stdout
    assert "Everything the sandbox needs is installed." in result.stdout


def test_doctor_names_the_install_command_for_missing_programs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from core.sandbox import controller

    monkeypatch.setattr(controller, "_which", lambda binary: binary != "pebble")
    problems = controller.doctor()
    assert len(problems) == 1
    assert "pebble" in problems[0].what
    assert "apt-get install -y openssh-server nginx certbot python3-certbot-nginx pebble" in (
        problems[0].fix
    )
