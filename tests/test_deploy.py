"""The deploy engine end to end on the sandbox: real moto, sshd, nginx, certbot and pebble."""

from __future__ import annotations

import json
import re
import signal
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.profile.installation import installation_id
from core.runs.graphs import DEPLOY
from core.sandbox.controller import Sandbox, SandboxInfo, githost

from .deploy_helpers import (
    Hammer,
    deploy,
    engine_log,
    https_get,
    settled,
    show,
    start_engine,
    toast,
    wait_engine_exit,
)

Clients = Callable[[str], Any]


def instances(aws: Clients, name: str, *, live_only: bool = False) -> list[dict[str, Any]]:
    filters = [{"Name": "tag:toast:deployment", "Values": [name]}]
    if live_only:
        filters.append(
            {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]}
        )
    reservations = aws("ec2").describe_instances(Filters=filters)["Reservations"]
    return [i for r in reservations for i in r["Instances"]]


def records(aws: Clients, sandbox: SandboxInfo) -> list[str]:
    route53 = aws("route53")
    zone = route53.list_hosted_zones_by_name(DNSName=sandbox.base_domain + ".")["HostedZones"][0]
    sets = route53.list_resource_record_sets(HostedZoneId=zone["Id"])["ResourceRecordSets"]
    return [r["Name"] for r in sets if r["Type"] == "A"]


def test_both_sample_apps_deploy_and_serve_https_trusting_only_the_sandbox_ca(
    sandbox: SandboxInfo, aws: Clients
) -> None:
    # By name alone, no build flags: the way a newcomer's first deploy goes.
    site = deploy("static-site", "site")
    api = deploy("node-server", "api")
    assert site["state"] == "live" and api["state"] == "live"
    assert show("site")["plan"]["output_dir"]["source"] == "toast.toml: output_dir"
    assert show("api")["plan"]["build_type"]["source"] == "package.json: scripts.start"
    assert show("site")["state"] == "live" and show("api")["url"] == "https://api.sandbox.test/"
    assert "Hello from the Toast static sample" in https_get(sandbox, "site.sandbox.test").text
    assert "Hello from the Toast node sample" in https_get(sandbox, "api.sandbox.test").text
    # No dot path is served, not even as the single-page fallback that answers other paths.
    for path in ("/.git/config", "/.env", "/.env.production", "/assets/.npmrc"):
        assert https_get(sandbox, "site.sandbox.test", path).status_code == 404, path
    assert https_get(sandbox, "site.sandbox.test", "/no/such/page").status_code == 200
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        https_get(sandbox, "site.sandbox.test", trust=True)
    details = settled("site")
    assert details["certificate_expires_at"] and details["instance"].startswith("i-")
    assert [s["state"] for s in details["last_run"]["steps"]] == ["succeeded"] * len(DEPLOY)
    assert len(instances(aws, "site")) == 1


def test_wait_returns_when_live_and_the_renewal_check_reports_afterwards(
    sandbox: SandboxInfo, aws: Clients, isolated_toast: Path
) -> None:
    """`deploy --wait` returns once the health check passed; the renewal rehearsal finishes
    afterwards with its own result, and its failure warns without taking the site down."""
    slow = toast(
        "--sandbox",
        "deploy",
        "toast-samples/static-site",
        "--subdomain",
        "early",
        "--wait",
        env={"TOAST_FAULTS": "delay:renewal:6"},
    )
    assert slow.returncode == 0, slow.stderr
    assert "deploy of early succeeded: https://early.sandbox.test/" in slow.stdout
    assert "Still checking after going live: renewal" in slow.stdout
    now = show("early")
    assert now["state"] == "live" and now["last_run"]["state"] == "running"
    assert "Hello from the Toast static sample" in https_get(sandbox, "early.sandbox.test").text
    ended = settled("early")
    steps = {s["name"]: s["state"] for s in ended["last_run"]["steps"]}
    assert ended["last_run"]["state"] == "succeeded" and steps["renewal"] == "succeeded"

    broken = toast(
        "--sandbox",
        "deploy",
        "toast-samples/static-site",
        "--subdomain",
        "warned",
        "--wait",
        env={"TOAST_FAULTS": "raise-in:renewal"},
    )
    assert broken.returncode == 0, broken.stderr
    details = settled("warned")
    steps = {s["name"]: s["state"] for s in details["last_run"]["steps"]}
    assert details["state"] == "live" and details["last_run"]["state"] == "succeeded"
    assert steps["renewal"] == "failed" and steps["health"] == "succeeded"
    assert len(instances(aws, "warned")) == 1  # nothing rolled back
    assert "Hello from the Toast static sample" in https_get(sandbox, "warned.sandbox.test").text
    told = toast("show", "warned").stdout
    assert "the site is live, but a check after it failed: renewal" in told
    assert "injected unexpected error in step renewal" in told


@pytest.mark.parametrize("sample", ["static-site", "node-server"])
def test_redeploy_and_rollback_switch_content_without_failing_a_request(
    sandbox: SandboxInfo, session_sandbox: Sandbox, sample: str, isolated_toast: Path
) -> None:
    name = "flip" if sample == "static-site" else "flipnode"
    fqdn = f"{name}.sandbox.test"
    deploy(sample, name)
    old = https_get(sandbox, fqdn).text
    first_sha = show(name)["current_release"]
    # The live commit is the branch head: a redeploy says so and queues nothing.
    same = toast("redeploy", name, "--wait")
    assert same.returncode == 0, same.stderr
    assert f"{name} already serves {first_sha[:12]}" in same.stdout and "--force" in same.stdout
    assert show(name)["last_run"]["kind"] == "deploy"
    with Hammer(sandbox, fqdn) as hammer:
        forced = toast("redeploy", name, "--force", "--wait")
        assert forced.returncode == 0, forced.stderr
        assert show(name)["current_release"] == first_sha
        githost.commit_files(
            session_sandbox.layout,
            f"toast-samples/{sample}",
            {"message.txt": f"Second version of {name}\n"},
            "Second version",
        )
        redeployed = toast("redeploy", name, "--wait")
        assert redeployed.returncode == 0, redeployed.stderr
        assert f"Second version of {name}" in https_get(sandbox, fqdn).text
        rolled = toast("rollback", name, "--wait")
        assert rolled.returncode == 0, rolled.stderr
        assert https_get(sandbox, fqdn).text.split("<p>")[0] == old.split("<p>")[0]
    assert hammer.failures == [], hammer.failures[:5]
    assert len(hammer.bodies) > 20
    assert any("Second version" in body for body in hammer.bodies)
    details = show(name)
    assert len(details["releases"]) == 3  # the first build, its forced rebuild, the second
    assert details["current_release"] == first_sha
    rollback_steps = [s["name"] for s in details["last_run"]["steps"]]
    assert rollback_steps == ["pick", "switch", "health"]  # no rebuild
    # Every build has its own directory; the live one was never rebuilt in place.
    releases_dir = session_sandbox.layout.host_root / "toast" / "apps" / name / "releases"
    built = sorted(p.name for p in releases_dir.iterdir() if not p.name.startswith("."))
    assert len(built) == 3
    assert {b.split("-r")[0] for b in built} == {r["sha"] for r in details["releases"]}


def test_a_failed_build_keeps_the_old_release_serving_and_old_releases_are_pruned(
    sandbox: SandboxInfo, session_sandbox: Sandbox
) -> None:
    fqdn = "keep.sandbox.test"
    deploy("static-site", "keep")
    good = https_get(sandbox, fqdn).text
    githost.commit_files(
        session_sandbox.layout,
        "toast-samples/static-site",
        {"build.js": "process.exit(3);\n"},
        "Break the build",
    )
    with Hammer(sandbox, fqdn) as hammer:
        broken = toast("redeploy", "keep", "--wait")
    assert broken.returncode == 1
    assert "redeploy of keep failed at step build" in broken.stderr
    assert hammer.failures == [] and hammer.bodies and set(hammer.bodies) == {good}
    assert show("keep")["state"] == "live"
    githost.commit_files(
        session_sandbox.layout,
        "toast-samples/static-site",
        {"build.js": githost.STATIC_SITE_FILES["build.js"]},
        "Fix the build",
    )
    for _ in range(6):
        forced = toast("redeploy", "keep", "--force", "--wait")
        assert forced.returncode == 0, forced.stderr
    details = show("keep")
    assert len(details["releases"]) == 5
    releases_dir = session_sandbox.layout.host_root / "toast" / "apps" / "keep" / "releases"
    on_disk = sorted(p.name for p in releases_dir.iterdir() if not p.name.startswith("."))
    assert len(on_disk) == 5  # the failed build's directory went with it
    assert good == https_get(sandbox, fqdn).text


def test_destroy_leaves_nothing_and_gc_removes_an_orphan(
    sandbox: SandboxInfo, aws: Clients, isolated_toast: Path
) -> None:
    deploy("static-site", "gone")
    destroyed = toast("destroy", "gone", "--yes", "--wait")
    assert destroyed.returncode == 0, destroyed.stderr
    assert instances(aws, "gone", live_only=True) == []
    assert "gone.sandbox.test." not in records(aws, sandbox)
    assert show("gone")["state"] == "destroyed"
    with sqlite3.connect(isolated_toast / "toast.db") as db:
        still_open = db.execute(
            "SELECT kind, resource_id FROM resources r JOIN deployments d "
            "ON d.id = r.deployment_id WHERE d.name = 'gone' AND r.deleted_at IS NULL"
        ).fetchall()
        closed = db.execute("SELECT count(*) FROM resources WHERE deleted_at IS NOT NULL")
        assert still_open == [] and closed.fetchone()[0] >= 6  # instance, DNS, 4 log groups
    listed = json.loads(toast("ls", "--json", "--all").stdout)
    assert [d["state"] for d in listed] == ["destroyed"]
    with pytest.raises(httpx.HTTPError):
        https_get(sandbox, "gone.sandbox.test")
    clean = json.loads(toast("--sandbox", "gc", "--json").stdout)
    assert clean["findings"] == []

    # An instance launched behind Toast's back, with Toast's tags, is an orphan.
    ec2 = aws("ec2")
    ami = aws("ssm").get_parameter(
        Name="/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
    )["Parameter"]["Value"]
    orphan = ec2.run_instances(
        ImageId=ami,
        InstanceType="t3.micro",
        MinCount=1,
        MaxCount=1,
        TagSpecifications=[
            {
                "ResourceType": "instance",
                "Tags": [
                    {"Key": "toast:managed-by", "Value": "toast"},
                    {"Key": "toast:profile", "Value": "sandbox"},
                    {"Key": "toast:installation", "Value": installation_id()},
                ],
            }
        ],
    )["Instances"][0]["InstanceId"]
    found = json.loads(toast("--sandbox", "gc", "--json").stdout)
    assert {"kind": "instance", "id": orphan, "region": "us-east-1", "problem": "orphan"} in found[
        "findings"
    ]
    removed = json.loads(toast("--sandbox", "gc", "--delete", "--json").stdout)
    assert f"deleted orphan instance {orphan}" in removed["done"]
    state = ec2.describe_instances(InstanceIds=[orphan])["Reservations"][0]["Instances"][0]
    assert state["State"]["Name"] == "terminated"
    assert json.loads(toast("--sandbox", "gc", "--json").stdout)["findings"] == []


def test_sigkill_at_every_step_boundary_still_launches_exactly_one_instance(
    sandbox: SandboxInfo, aws: Clients, isolated_toast: Path
) -> None:
    queued = toast(
        "--sandbox",
        "deploy",
        "toast-samples/static-site",
        "--subdomain",
        "tough",
        env={"TOAST_ENGINE_AUTOSTART": "0"},
    )
    assert queued.returncode == 0, queued.stderr
    boundaries = ["shared", "launch", "address", "dns", "ssh", "build", "https", "switch", "health"]
    killed = 0
    for step in boundaries:
        engine = start_engine({"TOAST_FAULTS": f"kill-after:{step}"})
        output, _ = engine.communicate(timeout=120)
        if engine.returncode == -signal.SIGKILL:
            killed += 1
        else:  # the step had already finished under an earlier engine (it ran concurrently)
            assert engine.returncode == 0, output
    assert killed >= 6
    final = start_engine()
    output, _ = final.communicate(timeout=180)
    assert final.returncode == 0, output
    details = show("tough")
    assert details["state"] == "live", details["last_run"]
    assert len(instances(aws, "tough")) == 1
    assert "Hello from the Toast static sample" in https_get(sandbox, "tough.sandbox.test").text


def test_throttling_is_retried_through(sandbox: SandboxInfo, isolated_toast: Path) -> None:
    faults = (
        "aws:ec2.RunInstances:RequestLimitExceeded:2,"
        "aws:route53.ChangeResourceRecordSets:Throttling:2,"
        "aws:ec2.DescribeInstances:RequestLimitExceeded:1"
    )
    result = deploy("static-site", "busy", env={"TOAST_FAULTS": faults})
    assert result["state"] == "live"
    wait_engine_exit()
    log = engine_log(isolated_toast)
    assert log.count("injected RequestLimitExceeded into ec2.RunInstances") == 2
    assert log.count("injected Throttling into route53.ChangeResourceRecordSets") == 2


def test_aws_eventual_consistency_is_waited_out(sandbox: SandboxInfo, isolated_toast: Path) -> None:
    """A new instance unknown to DescribeInstances for a moment, and a new instance profile
    that RunInstances calls invalid for a while, are retried through, as on AWS."""
    faults = (
        "aws:ec2.DescribeInstances:InvalidInstanceID.NotFound:2:InstanceId.1,"
        "aws:ec2.RunInstances:InvalidParameterValue:2"
    )
    result = deploy("static-site", "settle", env={"TOAST_FAULTS": faults})
    assert result["state"] == "live"
    wait_engine_exit()
    log = engine_log(isolated_toast)
    assert log.count("injected InvalidInstanceID.NotFound into ec2.DescribeInstances") == 2
    assert log.count("injected InvalidParameterValue into ec2.RunInstances") == 2


@pytest.mark.parametrize(
    ("fault", "step", "says"),
    [
        ("aws:ec2.RunInstances:InsufficientInstanceCapacity", "launch", "EC2 has no capacity"),
        ("ssh:refuse", "ssh", "cannot reach"),
        ("certbot:fail", "https", "certbot could not get a certificate"),
    ],
)
def test_hard_errors_fail_clearly_and_leave_nothing_orphaned(
    sandbox: SandboxInfo, aws: Clients, fault: str, step: str, says: str
) -> None:
    result = toast(
        "--sandbox",
        "deploy",
        "toast-samples/static-site",
        "--subdomain",
        "doomed",
        "--wait",
        # A refused SSH is retried until the timeout: 5 s proves the same as the usual 20.
        env={
            "TOAST_FAULTS": fault,
            "TOAST_AWS_MAX_ATTEMPTS": "2",
            **({"TOAST_SSH_TIMEOUT": "5"} if step == "ssh" else {}),
        },
    )
    assert result.returncode == 1
    error = result.stderr.strip().splitlines()[-1] if step != "https" else result.stderr
    assert f"deploy of doomed failed at step {step}" in result.stderr
    assert says in error
    details = show("doomed")
    assert details["state"] == "failed"
    assert instances(aws, "doomed", live_only=True) == []
    assert "doomed.sandbox.test." not in records(aws, sandbox)
    if step != "launch":
        assert re.search(r"Rolled back: .*\binstance i-\w+.*\biam_role toast-", result.stderr)
    gc = json.loads(toast("--sandbox", "gc", "--json").stdout)
    assert gc["findings"] == []
    # The name is free again: a clean deploy now succeeds.
    wait_engine_exit()
    assert deploy("static-site", "doomed")["state"] == "live"
