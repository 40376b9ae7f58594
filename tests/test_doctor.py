"""`toast doctor` passes on the sandbox and names each problem with its fix; a region
where no subnet can take an instance stops the deploy before anything is created."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.cloud.doctor import run_checks
from core.profile.config import sandbox_profile
from core.profile.targets import resolve_target
from core.sandbox.controller import SandboxInfo

from .deploy_helpers import toast
from .sandbox_helpers import new_key

Clients = Callable[[str], Any]


def by_name(checks: list[Any]) -> dict[str, Any]:
    return {c.name: c for c in checks}


def test_doctor_passes_on_the_sandbox(sandbox: SandboxInfo) -> None:
    result = toast("--sandbox", "doctor", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    for name in ("credentials", "region", "hosted zone", "subnet", "AMI", "key pair"):
        assert checks[name]["ok"] is True, checks[name]
    assert "account 123456789012" in checks["credentials"]["detail"]
    assert "sandbox.test is zone" in checks["hosted zone"]["detail"]
    human = toast("--sandbox", "doctor")
    assert human.returncode == 0 and "ok    subnet" in human.stdout


async def test_doctor_names_each_problem_with_its_fix(
    sandbox: SandboxInfo, aws: Clients, tmp_path: Path
) -> None:
    target = resolve_target(sandbox_profile())

    def with_profile(**changes: Any) -> Any:
        return dataclasses.replace(target, profile=dataclasses.replace(target.profile, **changes))

    nobody = dataclasses.replace(
        with_profile(name="work", aws_profile="no-such-profile"), credentials=None
    )
    (credentials,) = await run_checks(nobody)
    assert credentials.ok is False and "ProfileNotFound" in credentials.detail
    assert "~/.aws/config" in (credentials.fix or "")

    zone = by_name(await run_checks(with_profile(base_domain="nowhere.example")))["hosted zone"]
    assert zone.ok is False and "create a public hosted zone for nowhere.example" in zone.fix

    subnet = by_name(await run_checks(with_profile(subnet_id="subnet-0123456789abcdef0")))
    assert subnet["subnet"].ok is False
    assert (
        "subnet_id subnet-0123456789abcdef0 does not exist in us-east-1" in subnet["subnet"].detail
    )

    _, public = new_key(tmp_path, "elsewhere")
    aws("ec2").import_key_pair(KeyName="lost", PublicKeyMaterial=public.encode())
    lost = dataclasses.replace(with_profile(key_pair="lost"), key_file=tmp_path / "lost.pem")
    key = by_name(await run_checks(lost))["key pair"]
    assert key.ok is False and f"its private key is not at {tmp_path / 'lost.pem'}" in key.detail
    assert "restore the key" in (key.fix or "")


def test_no_public_subnet_stops_the_deploy_before_anything_is_created(
    sandbox: SandboxInfo, aws: Clients
) -> None:
    ec2 = aws("ec2")
    for subnet in ec2.describe_subnets()["Subnets"]:
        ec2.modify_subnet_attribute(
            SubnetId=subnet["SubnetId"], MapPublicIpOnLaunch={"Value": False}
        )
    result = toast(
        "--sandbox",
        "deploy",
        "toast-samples/static-site",
        "--subdomain",
        "nowhere",
        "--wait",
    )
    assert result.returncode == 1
    # The review printed before queuing says who may reach SSH.
    assert "SSH from 127.0.0.1/32 (the sandbox (its instance host is this machine))" in (
        result.stdout
    )
    assert "deploy of nowhere failed at step check" in result.stderr
    assert "has no subnet that gives instances public IPs; set subnet_id" in result.stderr
    assert ec2.describe_key_pairs()["KeyPairs"] == []
    assert ec2.describe_instances()["Reservations"] == []
