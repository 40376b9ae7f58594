"""A deployment's whole life on the sandbox: names re-created, DNS owned and never taken
over, checks before spending, shared setup under concurrency, and a destroy that finishes."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from core.cloud.dns_owner import marker_name, marker_value
from core.host.keyfiles import matches, public_key_of
from core.profile.installation import installation_id
from core.sandbox.controller import SandboxInfo

from .conftest import PROJECT_ROOT
from .deploy_helpers import ENGINE_ENV, deploy, https_get, show, toast
from .sandbox_helpers import live_instances, record_sets, upsert_a, upsert_record, zone_id

Clients = Callable[[str], Any]


def open_ledger(data_dir: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(data_dir / "toast.db") as db:
        return db.execute(
            "SELECT kind, resource_id FROM resources WHERE deleted_at IS NULL "
            "AND deployment_id IS NOT NULL"
        ).fetchall()


def add_records(aws: Clients, sandbox: SandboxInfo, changes: list[dict[str, Any]]) -> None:
    aws("route53").change_resource_record_sets(
        HostedZoneId=zone_id(aws, sandbox.base_domain),
        ChangeBatch={"Changes": [{"Action": "UPSERT", "ResourceRecordSet": c} for c in changes]},
    )


def marked(name: str, ip: str, owner: str) -> list[dict[str, Any]]:
    return [
        {"Name": name, "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": ip}]},
        {
            "Name": marker_name(name),
            "Type": "TXT",
            "TTL": 60,
            "ResourceRecords": [{"Value": marker_value(owner, name.split(".")[0])}],
        },
    ]


def test_deploy_destroy_cycles_of_one_name_leave_nothing_behind(
    sandbox: SandboxInfo, aws: Clients, isolated_toast: Path
) -> None:
    fqdn = "hello.sandbox.test."
    for cycle in range(3):
        deployed = deploy("static-site", "hello")
        assert deployed["state"] == "live", cycle
        owner = record_sets(aws, sandbox)[("_toast." + fqdn, "TXT")]
        assert owner == [f'"toast-owner={installation_id()},deployment=hello"']
        destroyed = toast("destroy", "hello", "--yes", "--wait")
        assert destroyed.returncode == 0, destroyed.stderr
        assert live_instances(aws) == [], cycle
        names = {name for name, _ in record_sets(aws, sandbox)}
        assert fqdn not in names and "_toast." + fqdn not in names, cycle
        assert open_ledger(isolated_toast) == [], cycle
        # The deployment's own instance role and profile went with it.
        assert aws("iam").list_roles()["Roles"] == [], cycle
        assert aws("iam").list_instance_profiles()["InstanceProfiles"] == [], cycle
    assert json.loads(toast("--sandbox", "gc", "--json").stdout)["findings"] == []


def test_gc_finds_a_marked_leftover_record_and_never_touches_another_installation(
    sandbox: SandboxInfo, aws: Clients
) -> None:
    ours = installation_id()
    add_records(aws, sandbox, marked("left.sandbox.test.", "192.0.2.10", ours))
    add_records(aws, sandbox, marked("theirs.sandbox.test.", "192.0.2.11", "f0f0f0f0f0f0f0f0"))
    ec2 = aws("ec2")
    ami = aws("ssm").get_parameter(
        Name="/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
    )["Parameter"]["Value"]
    foreign = ec2.run_instances(
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
                    {"Key": "toast:installation", "Value": "f0f0f0f0f0f0f0f0"},
                ],
            }
        ],
    )["Instances"][0]["InstanceId"]
    found = json.loads(toast("--sandbox", "gc", "--json").stdout)["findings"]
    assert found == [
        {"kind": "dns_record", "id": "left.sandbox.test", "region": "global", "problem": "orphan"}
    ]
    removed = json.loads(toast("--sandbox", "gc", "--delete", "--json").stdout)
    assert removed["done"] == ["deleted orphan dns_record left.sandbox.test"]
    sets = record_sets(aws, sandbox)
    assert ("left.sandbox.test.", "A") not in sets
    assert ("_toast.left.sandbox.test.", "TXT") not in sets
    assert sets[("theirs.sandbox.test.", "A")] == ["192.0.2.11"]
    assert ("_toast.theirs.sandbox.test.", "TXT") in sets
    assert foreign in live_instances(aws)


def test_a_foreign_record_refuses_the_deploy_before_anything_is_created(
    sandbox: SandboxInfo, aws: Clients
) -> None:
    upsert_a(aws, sandbox, "www.sandbox.test", "192.0.2.55")
    result = toast(
        "--sandbox",
        "deploy",
        "toast-samples/static-site",
        "--subdomain",
        "www",
        "--wait",
    )
    assert result.returncode == 1
    assert "deploy of www failed at step check" in result.stderr
    assert "www.sandbox.test already points at 192.0.2.55 (A record) and was not made by Toast" in (
        result.stderr
    )
    assert "Nothing of this deployment's own was created" in result.stderr
    assert live_instances(aws) == []
    assert aws("ec2").describe_key_pairs()["KeyPairs"] == []
    assert record_sets(aws, sandbox)[("www.sandbox.test.", "A")] == ["192.0.2.55"]
    # Destroying the failed deployment does not touch the record either.
    assert toast("destroy", "www", "--yes", "--wait").returncode == 0
    assert record_sets(aws, sandbox)[("www.sandbox.test.", "A")] == ["192.0.2.55"]


def test_a_foreign_ownership_txt_refuses_the_deploy_and_survives_destroy(
    sandbox: SandboxInfo, aws: Clients
) -> None:
    """A TXT at `_toast.NAME` that Toast did not write (a user's, or another tool's) is not
    Toast's to overwrite or delete, even with no A record beside it."""
    spf = '"v=spf1 include:mail.example.com -all"'
    upsert_record(aws, sandbox, "_toast.mail.sandbox.test", "TXT", spf)
    result = toast(
        "--sandbox",
        "deploy",
        "toast-samples/static-site",
        "--subdomain",
        "mail",
        "--wait",
    )
    assert result.returncode == 1
    assert "deploy of mail failed at step check" in result.stderr
    assert "_toast.mail.sandbox.test already has a TXT record" in result.stderr
    assert live_instances(aws) == []
    assert toast("destroy", "mail", "--yes", "--wait").returncode == 0
    sets = record_sets(aws, sandbox)
    assert sets[("_toast.mail.sandbox.test.", "TXT")] == [spf]
    assert ("mail.sandbox.test.", "A") not in sets


async def test_a_record_appearing_between_check_and_write_fails_the_step_untouched(
    sandbox: SandboxInfo, aws: Clients
) -> None:
    """Toast CREATEs what it expects absent, so Route53 refuses the whole change when a
    record appeared after the ownership check: nothing of Toast's is written, and the
    newcomer keeps its value."""
    from core.cloud.aws import Aws
    from core.cloud.dns_owner import claim_name, records_at
    from core.profile.config import sandbox_profile
    from core.profile.targets import resolve_target
    from core.runs.failures import StepFailed

    cloud = await Aws.connect(resolve_target(sandbox_profile()))
    zone = zone_id(aws, sandbox.base_domain).removeprefix("/hostedzone/")
    for kind, name, value in (
        ("A", "race.sandbox.test", "192.0.2.77"),
        ("TXT", "_toast.race2.sandbox.test", '"someone-else"'),
    ):
        fqdn = name.removeprefix("_toast.")
        seen = await records_at(cloud, zone, fqdn)
        assert not seen.pointing and seen.marker is None  # the check saw a free name
        upsert_record(aws, sandbox, name, kind, value)  # ... then someone took it
        marker = marker_value(installation_id(), fqdn.split(".")[0])
        with pytest.raises(StepFailed, match=f"the DNS records at {fqdn} changed"):
            await claim_name(cloud, zone, seen, "198.51.100.4", marker, "test")
        sets = record_sets(aws, sandbox)
        assert sets[(name + ".", kind)] == [value]
        assert (marker_name(fqdn), "TXT") not in sets or kind == "TXT"
        assert (fqdn + ".", "A") not in sets or kind == "A"


def test_a_missing_repo_or_branch_fails_before_any_resource_exists(
    sandbox: SandboxInfo, aws: Clients, session_sandbox: Any
) -> None:
    url = "file://" + str(session_sandbox.layout.bare_repo("toast-samples/static-site"))
    cases = [
        (("toast-samples/no-such-app",), "repository toast-samples/no-such-app was not found"),
        (("toast-samples/static-site", "--branch", "nope"), "branch 'nope' does not exist in"),
        ((url, "--branch", "nope"), f"branch 'nope' does not exist in {url}"),
        (("file:///nowhere/at/all.git",), "repository file:///nowhere/at/all.git cannot be read"),
        # git's own first line, not its closing boilerplate ("and the repository exists.")
        (("file:///etc",), "cannot be read: '/etc' does not appear to be a git repository"),
    ]
    for index, (args, says) in enumerate(cases):
        result = toast("--sandbox", "deploy", *args, "--subdomain", f"typo{index}", "--wait")
        assert result.returncode == 1, result.stdout
        # Refused while reading the build plan, before a run or a deployment exists.
        assert says in result.stderr
        assert f"typo{index}" not in toast("ls", "--all").stdout
    assert live_instances(aws) == []
    assert aws("ec2").describe_key_pairs()["KeyPairs"] == []
    assert (
        aws("ec2").describe_security_groups(
            Filters=[{"Name": "tag:toast:managed-by", "Values": ["toast"]}]
        )["SecurityGroups"]
        == []
    )


def test_two_first_deploys_at_once_share_one_key_pair_with_an_intact_key_file(
    sandbox: SandboxInfo, aws: Clients, isolated_toast: Path
) -> None:
    import os

    env = {**os.environ, **ENGINE_ENV}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cli",
                "--sandbox",
                "deploy",
                "toast-samples/static-site",
                "--subdomain",
                name,
                "--wait",
            ],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("twin-a", "twin-b")
    ]
    for proc in procs:
        _out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    pairs = aws("ec2").describe_key_pairs()["KeyPairs"]
    assert len(pairs) == 1
    key_files = list((isolated_toast / "keys").glob("*.pem"))
    assert len(key_files) == 1
    assert matches(public_key_of(key_files[0]), pairs[0]["KeyFingerprint"])
    groups = aws("ec2").describe_security_groups(
        Filters=[{"Name": "tag:toast:managed-by", "Values": ["toast"]}]
    )["SecurityGroups"]
    assert len(groups) == 1
    for name in ("twin-a", "twin-b"):
        assert (
            "Hello from the Toast static sample" in https_get(sandbox, f"{name}.sandbox.test").text
        )


@pytest.mark.parametrize("cause", ["ssh refused", "instance gone"])
def test_destroy_with_the_host_out_of_reach_deletes_the_cloud_and_says_what_it_left(
    sandbox: SandboxInfo, aws: Clients, isolated_toast: Path, cause: str
) -> None:
    deploy("static-site", "cutoff")
    faults = "ssh:refuse"
    if cause == "instance gone":
        # Terminated behind Toast's back before its host keys were ever recorded (a first
        # deploy that died early), and no longer known to EC2: nothing can say its keys.
        [instance] = live_instances(aws)
        aws("ec2").terminate_instances(InstanceIds=[instance])
        with sqlite3.connect(isolated_toast / "toast.db") as db:
            db.execute(
                "UPDATE resources SET attributes_json = json_remove(attributes_json, "
                "'$.host_keys') WHERE kind = 'instance'"
            )
        faults = "aws:ec2.GetConsoleOutput:InvalidInstanceID.NotFound:99"
    result = toast("destroy", "cutoff", "--yes", "--wait", env={"TOAST_FAULTS": faults})
    assert result.returncode == 0, result.stderr
    said = result.stdout + result.stderr
    assert "left on the host" in said
    assert "the app, its nginx site, certificate, files and logs" in said
    assert live_instances(aws) == []
    assert ("cutoff.sandbox.test.", "A") not in record_sets(aws, sandbox)
    assert ("_toast.cutoff.sandbox.test.", "TXT") not in record_sets(aws, sandbox)
    assert open_ledger(isolated_toast) == []
    assert show("cutoff")["state"] == "destroyed"


def test_the_data_dir_is_private_after_a_deploy(sandbox: SandboxInfo, isolated_toast: Path) -> None:
    """It holds env values, repository URLs, the audit trail and build output: 0700, and
    every file in it 0600 (the database's WAL and SHM included)."""
    isolated_toast.mkdir(parents=True)
    isolated_toast.chmod(0o755)  # as an older Toast left it
    deploy("static-site", "private")
    assert isolated_toast.stat().st_mode & 0o777 == 0o700
    files = [p for p in isolated_toast.rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert {"toast.db", "toast.db-wal", "installation-id", "engine.log"} <= names, names
    loose = {str(p.relative_to(isolated_toast)): oct(p.stat().st_mode & 0o777) for p in files}
    assert {k: v for k, v in loose.items() if v != "0o600"} == {}
    dirs = [p for p in isolated_toast.rglob("*") if p.is_dir()]
    assert all(d.stat().st_mode & 0o077 == 0 for d in dirs), dirs


def test_a_run_uses_the_settings_it_was_queued_with_not_the_engines(
    sandbox: SandboxInfo, aws: Clients
) -> None:
    # The first command's fault and AWS profile must not leak into the engine it starts.
    first = toast(
        "--sandbox",
        "deploy",
        "toast-samples/static-site",
        "--subdomain",
        "leaky",
        "--wait",
        env={
            "TOAST_FAULTS": "certbot:fail",
            "AWS_PROFILE": "no-such-profile",
            "TOAST_ENGINE_IDLE_EXIT": "60",
        },
    )
    assert first.returncode == 1 and "certbot could not get a certificate" in first.stderr
    from core.runs.launcher import engine_running

    assert engine_running()  # the same engine picks up the next run
    second = deploy("static-site", "clean")
    assert second["state"] == "live"
    assert "Hello from the Toast static sample" in https_get(sandbox, "clean.sandbox.test").text
