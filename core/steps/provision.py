"""Cloud resources: shared ones per profile and region, then the deployment's instance."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from core.cloud.aws import AwsError
from core.cloud.iam import ASSUME_ROLE, POLICY_NAME, logs_policy, role_name
from core.cloud.userdata import render_userdata
from core.host.keyfiles import KeyFileError, create_private_key, matches, public_key_of
from core.host.operator_address import OperatorAddressError, operator_cidr
from core.profile import paths
from core.profile.config import Profile
from core.profile.installation import MANAGED_BY, TAG, installation_id
from core.runs.context import RunContext

if TYPE_CHECKING:
    from mypy_boto3_ec2.type_defs import (
        CreateSecurityGroupRequestTypeDef,
        FilterTypeDef,
        InstanceTypeDef,
        ReservationResponseTypeDef,
        RunInstancesRequestTypeDef,
        SecurityGroupTypeDef,
        TagTypeDef,
    )
    from mypy_boto3_iam.type_defs import TagTypeDef as IamTagTypeDef
from core.runs.failures import StepFailed
from core.runs.waiting import poll
from core.steps.outputs import AddressOutput, CheckOutput, LaunchOutput, SharedOutput


def security_group_name() -> str:
    """One group per installation: two installations in one account never share rules."""
    return f"toast-web-{installation_id()}"


def toast_tags(ctx: RunContext, **extra: str) -> list[TagTypeDef]:
    tags = {
        MANAGED_BY[0]: MANAGED_BY[1],
        "toast:profile": ctx.profile_name,
        TAG: installation_id(),
        **extra,
    }
    return [{"Key": k, "Value": v} for k, v in tags.items()]


@contextlib.asynccontextmanager
async def shared_lock(ctx: RunContext) -> AsyncIterator[None]:
    """One lock per profile and region around creating shared resources, for every engine
    on this machine: two first deploys at once must not both create the key pair."""
    safe = f"{ctx.profile_name}-{ctx.region}".replace("/", "_")
    path = paths.data_dir() / "locks" / f"shared-{safe}.lock"
    paths.private_dir(path.parent)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)

    async def acquired() -> bool | None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return None
        return True

    try:
        await ctx.wait(
            acquired,
            step="shared",
            what="another deploy to finish creating the shared resources",
            timeout=600,
            initial=0.05,
            maximum=1,
        )
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


A = TypeVar("A")
B = TypeVar("B")


async def settled_pair(first: Awaitable[A], second: Awaitable[B]) -> tuple[A, B]:
    """Both at once; when one fails, the other still runs to its end (a resource it is
    creating reaches the ledger before the rollback reads it), then the first error is
    raised. (gather alone would raise at once and leave the other running unseen.)"""
    one, two = await asyncio.gather(first, second, return_exceptions=True)
    if isinstance(one, BaseException):
        raise one
    if isinstance(two, BaseException):
        raise two
    return one, two


async def shared(ctx: RunContext) -> SharedOutput:
    """Key pair and security group (one per profile and region, under a lock), and the
    deployment's own instance role (which needs no lock: nobody else shares it)."""

    try:
        cidr, source = await operator_cidr(ctx.target.profile)
    except OperatorAddressError as exc:
        raise StepFailed(str(exc)) from exc

    async def shared_ones() -> tuple[str, str]:
        async with shared_lock(ctx):
            key, group = await settled_pair(ensure_key_pair(ctx), ensure_security_group(ctx, cidr))
        return key, group

    (key_name, sg_id), instance_profile = await settled_pair(
        shared_ones(), ensure_instance_role(ctx)
    )
    return SharedOutput(
        key_name=key_name,
        security_group=sg_id,
        instance_profile=instance_profile,
        ssh_from=cidr,
        detail=f"SSH from {cidr} ({source}); instance role {instance_profile}",
    )


async def ensure_key_pair(ctx: RunContext) -> str:
    """The profile's key pair and its private key file, which must match. An existing key
    file is never overwritten; a mismatch stops the deploy with what to do about it."""
    profile = ctx.target.profile
    name = profile.key_pair
    key_path = ctx.target.key_file
    try:
        found = await ctx.aws.run((await ctx.aws.ec2()).describe_key_pairs, KeyNames=[name])
        pairs = list(found["KeyPairs"])
    except AwsError as exc:
        if exc.code != "InvalidKeyPair.NotFound":
            raise
        pairs = []
    if pairs:
        if not key_path.exists():
            raise StepFailed(
                f"key pair {name!r} exists in {profile.region} but its private key is not at "
                f"{key_path}",
                hint=await _key_pair_hint(ctx, name, key_path),
            )
        try:
            public = public_key_of(key_path)
        except KeyFileError as exc:
            raise StepFailed(str(exc), hint="restore the key file from a backup") from exc
        reported = str(pairs[0].get("KeyFingerprint", ""))
        if reported and not matches(public, reported):
            raise StepFailed(
                f"the private key at {key_path} does not match key pair {name!r} in "
                f"{profile.region} (EC2 reports fingerprint {reported})",
                hint=await _key_pair_hint(ctx, name, key_path),
            )
        await ctx.record("key_pair", name, shared=True, attributes={"key_file": str(key_path)})
        return name
    if key_path.exists():
        # The key pair is gone from EC2 but the key is here: give EC2 its public half again.
        try:
            public = public_key_of(key_path)
        except KeyFileError as exc:
            raise StepFailed(str(exc), hint="restore the key file from a backup") from exc
        made = "imported the existing key"
    else:
        public = create_private_key(key_path, comment=f"toast-{profile.name}")
        made = "created a new key"
    await ctx.aws.run(
        (await ctx.aws.ec2()).import_key_pair,
        KeyName=name,
        PublicKeyMaterial=public,
        TagSpecifications=[{"ResourceType": "key-pair", "Tags": toast_tags(ctx)}],
    )
    await ctx.record("key_pair", name, shared=True, attributes={"key_file": str(key_path)})
    ctx.say(f"key pair {name}: {made} ({key_path})", step="shared")
    return name


async def _key_pair_hint(ctx: RunContext, name: str, key_path: Path) -> str:
    """What to do about a key pair without its key. Deleting it is suggested only when no
    instance uses it: an instance's key pair cannot be replaced under it."""
    ec2 = await ctx.aws.ec2()
    pages = await ctx.aws.pages(
        ec2.describe_instances,
        Filters=[
            {"Name": "key-name", "Values": [name]},
            {
                "Name": "instance-state-name",
                "Values": ["pending", "running", "stopping", "stopped"],
            },
        ],
    )
    users = sorted(
        i["InstanceId"] for page in pages for r in page["Reservations"] for i in r["Instances"]
    )
    if users:
        return (
            f"restore the private key to {key_path} from a backup ({', '.join(users[:5])} "
            f"use key pair {name}), or set another key_pair in the profile"
        )
    return (
        f"restore the private key to {key_path}; or, since no instance uses it, delete the key "
        f"pair (aws ec2 delete-key-pair --key-name {name} --region {ctx.region}) and deploy "
        "again, or set another key_pair in the profile"
    )


async def ensure_security_group(ctx: RunContext, ssh_cidr: str) -> str:
    check = ctx.output_if("check", CheckOutput)
    vpc_id = check.vpc_id if check is not None else None
    filters: list[FilterTypeDef] = [
        {"Name": "group-name", "Values": [security_group_name()]},
        {"Name": f"tag:{TAG}", "Values": [installation_id()]},
    ]
    if vpc_id:
        filters.append({"Name": "vpc-id", "Values": [vpc_id]})
    groups = await ctx.aws.run((await ctx.aws.ec2()).describe_security_groups, Filters=filters)
    if groups["SecurityGroups"]:
        group = groups["SecurityGroups"][0]
        group_id = str(group["GroupId"])
        await reconcile_ssh_rule(ctx, group, ssh_cidr)
    else:
        request: CreateSecurityGroupRequestTypeDef = {
            "GroupName": security_group_name(),
            "Description": "Toast: HTTP and HTTPS from anywhere, SSH from the operator",
            "TagSpecifications": [{"ResourceType": "security-group", "Tags": toast_tags(ctx)}],
        }
        if vpc_id:
            request["VpcId"] = vpc_id
        created = await ctx.aws.run((await ctx.aws.ec2()).create_security_group, **request)
        group_id = str(created["GroupId"])
        await ctx.record("security_group", group_id, shared=True)
        rules = [
            (80, "0.0.0.0/0", "HTTP (ACME and redirect)"),
            (443, "0.0.0.0/0", "HTTPS"),
            (22, ssh_cidr, "SSH from the operator"),
        ]
        await ctx.aws.run(
            (await ctx.aws.ec2()).authorize_security_group_ingress,
            GroupId=group_id,
            IpPermissions=[
                {
                    "IpProtocol": "tcp",
                    "FromPort": port,
                    "ToPort": port,
                    "IpRanges": [{"CidrIp": cidr, "Description": what}],
                }
                for port, cidr, what in rules
            ],
        )
        ctx.say(
            f"created security group {group_id}: 80/443 open, 22 from {ssh_cidr}",
            step="shared",
        )
    await ctx.record("security_group", group_id, shared=True)
    return group_id


async def reconcile_ssh_rule(ctx: RunContext, group: SecurityGroupTypeDef, wanted: str) -> None:
    """SSH stays open to exactly the operator's CIDR: a changed operator_cidr (or public
    address) replaces the old rule on the next deploy."""
    ssh = [
        p
        for p in group.get("IpPermissions", [])
        if p.get("IpProtocol") == "tcp" and p.get("FromPort") == 22 and p.get("ToPort") == 22
    ]
    present = {r["CidrIp"] for p in ssh for r in p.get("IpRanges", [])}
    stale = sorted(present - {wanted})
    if stale:
        await ctx.aws.run(
            (await ctx.aws.ec2()).revoke_security_group_ingress,
            GroupId=group["GroupId"],
            IpPermissions=[
                {
                    "IpProtocol": "tcp",
                    "FromPort": 22,
                    "ToPort": 22,
                    "IpRanges": [{"CidrIp": cidr} for cidr in stale],
                }
            ],
        )
    if wanted not in present:
        await ctx.aws.run(
            (await ctx.aws.ec2()).authorize_security_group_ingress,
            GroupId=group["GroupId"],
            IpPermissions=[
                {
                    "IpProtocol": "tcp",
                    "FromPort": 22,
                    "ToPort": 22,
                    "IpRanges": [{"CidrIp": wanted, "Description": "SSH from the operator"}],
                }
            ],
        )
    if stale or wanted not in present:
        ctx.say(
            f"security group {group['GroupId']}: SSH now from {wanted} only"
            + (f" (removed {', '.join(stale)})" if stale else ""),
            step="shared",
        )


async def find_instances(ctx: RunContext) -> list[InstanceTypeDef]:
    """Live instances tagged for this deployment (how a resumed run finds an earlier launch)."""
    ec2 = await ctx.aws.ec2()
    pages = await ctx.aws.pages(
        ec2.describe_instances,
        Filters=[
            {"Name": "tag:toast:deployment", "Values": [ctx.deployment.name]},
            {"Name": "tag:toast:profile", "Values": [ctx.profile_name]},
            {
                "Name": "instance-state-name",
                "Values": ["pending", "running", "stopping", "stopped"],
            },
        ],
    )
    return [i for page in pages for r in page["Reservations"] for i in r["Instances"]]


async def launch(ctx: RunContext) -> LaunchOutput:
    existing = await find_instances(ctx)
    if existing:
        instance_id = str(existing[0]["InstanceId"])
        await ctx.record("instance", instance_id)
        ctx.say(
            f"found instance {instance_id} from an earlier attempt; not launching another",
            step="launch",
        )
        return LaunchOutput(instance_id=instance_id, adopted=True)
    profile: Profile = ctx.target.profile
    ami = (await ctx.aws.run((await ctx.aws.ssm()).get_parameter, Name=profile.ami_parameter))[
        "Parameter"
    ]["Value"]
    shared_out = ctx.output("shared", SharedOutput)
    tags = toast_tags(
        ctx,
        **{
            "toast:deployment": ctx.deployment.name,
            "toast:run": str(ctx.run.id),
            "Name": f"toast-{ctx.deployment.name}",
        },
    )
    fail_stage = next(
        (r[1] for r in ctx.settings.faults.rules("userdata") if len(r) > 1 and r[0] == "fail"),
        None,
    )
    userdata = render_userdata(
        ctx.host,
        node_version=ctx.deployment.node_version,
        instance_tag=f"toast-{ctx.deployment.name}",
        fail_stage=fail_stage,
    )
    params: RunInstancesRequestTypeDef = {
        "ImageId": ami,
        "InstanceType": ctx.deployment.instance_type,  # type: ignore[typeddict-item]  # checked against EC2's names at deploy
        "MinCount": 1,
        "MaxCount": 1,
        "KeyName": shared_out.key_name,
        "IamInstanceProfile": {"Name": shared_out.instance_profile},
        "UserData": userdata,
        # Derived from our run, so a retried call within this run cannot launch twice.
        "ClientToken": f"toast-{ctx.deployment.id}-run-{ctx.run.id}",
        "MetadataOptions": {"HttpTokens": "required", "HttpEndpoint": "enabled"},
        "BlockDeviceMappings": [
            {
                "DeviceName": "/dev/xvda",
                "Ebs": {
                    "Encrypted": True,
                    "VolumeType": "gp3",
                    "VolumeSize": 16,
                    "DeleteOnTermination": True,
                },
            }
        ],
        "TagSpecifications": [
            {"ResourceType": "instance", "Tags": tags},
            {"ResourceType": "volume", "Tags": tags},
        ],
    }
    _place(ctx, shared_out.security_group, params)
    ec2 = await ctx.aws.ec2()

    async def run_instances() -> ReservationResponseTypeDef | None:
        try:
            return await ctx.aws.run(ec2.run_instances, **params)
        except AwsError as exc:
            # A new instance profile takes seconds to become usable (IAM is eventually
            # consistent); anything else is a real failure.
            if exc.code == "InvalidParameterValue" and "iamInstanceProfile" in exc.aws_message:
                return None
            raise

    try:
        reservation = await poll(
            run_instances,
            what="EC2 to accept the instance profile",
            timeout=60,
            initial=1,
            maximum=5,
        )
    except AwsError as exc:
        if exc.code == "InsufficientInstanceCapacity":
            raise StepFailed(
                f"EC2 has no capacity for {ctx.deployment.instance_type} in {profile.region} "
                f"right now ({exc.aws_message})",
                hint="try again later or deploy with another --instance-type",
            ) from exc
        raise
    instance_id = str(reservation["Instances"][0]["InstanceId"])
    await ctx.record(
        "instance", instance_id, attributes={"ami": ami, "type": ctx.deployment.instance_type}
    )
    ctx.say(f"launched {instance_id} ({ctx.deployment.instance_type}, {ami})", step="launch")
    return LaunchOutput(instance_id=instance_id, adopted=False)


def _place(ctx: RunContext, group_id: str, params: RunInstancesRequestTypeDef) -> None:
    """The subnet chosen by the check step; a subnet that does not hand out public IPs by
    itself is asked for one (the instance must be reachable for HTTPS and SSH)."""
    check = ctx.output_if("check", CheckOutput)
    subnet = check.subnet_id if check is not None else None
    if not subnet:
        params["SecurityGroupIds"] = [group_id]
    elif check is None or check.public_ips:
        params["SubnetId"] = subnet
        params["SecurityGroupIds"] = [group_id]
    else:
        params["NetworkInterfaces"] = [
            {
                "DeviceIndex": 0,
                "SubnetId": subnet,
                "Groups": [group_id],
                "AssociatePublicIpAddress": True,
            }
        ]


async def address(ctx: RunContext) -> AddressOutput:
    """Poll DescribeInstances (1-2 s, not the waiter's 15 s) until running with a public IP."""
    instance_id = ctx.output("launch", LaunchOutput).instance_id
    last = ["pending"]

    async def running() -> InstanceTypeDef | None:
        try:
            found = await ctx.aws.run(
                (await ctx.aws.ec2()).describe_instances, InstanceIds=[instance_id]
            )
        except AwsError as exc:
            # EC2 is eventually consistent: a new instance may be unknown for a few seconds.
            if exc.code == "InvalidInstanceID.NotFound":
                last[0] = "not yet visible"
                return None
            raise
        instance = found["Reservations"][0]["Instances"][0]
        last[0] = instance["State"]["Name"]
        if last[0] in ("terminated", "shutting-down"):
            raise StepFailed(
                f"instance {instance_id} is {last[0]}",
                hint="see the EC2 console for the state reason",
            )
        if last[0] == "running" and instance.get("PublicIpAddress"):
            return instance
        return None

    instance = await ctx.wait(
        running,
        step="address",
        what=f"{instance_id} to run with a public IP",
        timeout=300,
        initial=1,
        maximum=2,
        hint="see the EC2 console for the instance's state reason",
    )
    ip = str(instance["PublicIpAddress"])
    await ctx.record(
        "instance", instance_id, attributes={"public_ip": ip, "type": ctx.deployment.instance_type}
    )
    return AddressOutput(public_ip=ip, detail=f"{instance_id} at {ip}")


async def ensure_instance_role(ctx: RunContext) -> str:
    """The deployment's role with its inline policy, and an instance profile holding it.
    Every part is recorded in the ledger as it is created; a resumed run finds them."""
    name = role_name(ctx.deployment.name)
    tags: list[IamTagTypeDef] = [
        {"Key": "toast:managed-by", "Value": "toast"},
        {"Key": "toast:installation", "Value": installation_id()},
        {"Key": "toast:deployment", "Value": ctx.deployment.name},
    ]
    try:
        await ctx.aws.run(
            (await ctx.aws.iam()).create_role,
            RoleName=name,
            AssumeRolePolicyDocument=json.dumps(ASSUME_ROLE),
            Description=f"Toast: ships the logs of {ctx.deployment.name}, nothing else",
            Tags=tags,
        )
    except AwsError as exc:
        if exc.code != "EntityAlreadyExists":
            raise
    await ctx.record("iam_role", name, region="global")
    account = (await ctx.aws.run((await ctx.aws.sts()).get_caller_identity))["Account"]
    await ctx.aws.run(
        (await ctx.aws.iam()).put_role_policy,
        RoleName=name,
        PolicyName=POLICY_NAME,
        PolicyDocument=json.dumps(logs_policy(ctx.region, account, ctx.deployment.name)),
    )
    try:
        await ctx.aws.run(
            (await ctx.aws.iam()).create_instance_profile, InstanceProfileName=name, Tags=tags
        )
    except AwsError as exc:
        if exc.code != "EntityAlreadyExists":
            raise
    await ctx.record("instance_profile", name, region="global")
    found = await ctx.aws.run((await ctx.aws.iam()).get_instance_profile, InstanceProfileName=name)
    if name not in [r["RoleName"] for r in found["InstanceProfile"].get("Roles", [])]:
        await ctx.aws.run(
            (await ctx.aws.iam()).add_role_to_instance_profile,
            InstanceProfileName=name,
            RoleName=name,
        )
    return name
