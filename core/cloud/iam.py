"""Each deployment's instance gets its own role: the CloudWatch agent may write that
deployment's log groups and nothing else (no managed policy, no other group, no other
service). The role and its instance profile belong to the deployment in the ledger and
go with it."""

from __future__ import annotations

import hashlib
from typing import Any

from core.cloud.aws import Aws, AwsError, is_not_found
from core.profile.installation import installation_id

POLICY_NAME = "toast-logs"
LOG_ACTIONS = ("logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams")
ASSUME_ROLE = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "ec2.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}
_IAM_NAME_LIMIT = 64


def role_name(deployment: str) -> str:
    """`toast-<installation>-<deployment>`, within IAM's 64 characters: a long name is cut
    and given a hash of the whole, so two long names never share a role."""
    name = f"toast-{installation_id()}-{deployment}"
    if len(name) <= _IAM_NAME_LIMIT:
        return name
    digest = hashlib.sha256(deployment.encode()).hexdigest()[:8]
    return f"{name[: _IAM_NAME_LIMIT - 9]}-{digest}"


def logs_policy(region: str, account: str, deployment: str) -> dict[str, Any]:
    """The three actions the agent needs, on the deployment's log groups only (their
    streams included: the ARN pattern covers `...:log-group:/toast/<name>/x:log-stream:y`)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ShipThisDeploymentsLogs",
                "Effect": "Allow",
                "Action": list(LOG_ACTIONS),
                "Resource": [f"arn:aws:logs:{region}:{account}:log-group:/toast/{deployment}/*"],
            }
        ],
    }


async def delete_instance_profile(aws: Aws, name: str) -> None:
    found = await aws.run((await aws.iam()).get_instance_profile, InstanceProfileName=name)
    for role in found["InstanceProfile"].get("Roles", []):
        await aws.run(
            (await aws.iam()).remove_role_from_instance_profile,
            InstanceProfileName=name,
            RoleName=role["RoleName"],
        )
    await aws.run((await aws.iam()).delete_instance_profile, InstanceProfileName=name)


async def delete_role(aws: Aws, name: str) -> None:
    """The role's inline policies, then the role. A managed policy attached since by
    someone else is detached, never deleted (it is not Toast's)."""
    policies = await aws.run((await aws.iam()).list_role_policies, RoleName=name)
    for policy in policies.get("PolicyNames", []):
        await aws.run((await aws.iam()).delete_role_policy, RoleName=name, PolicyName=policy)
    attached = await aws.run((await aws.iam()).list_attached_role_policies, RoleName=name)
    for managed in attached.get("AttachedPolicies", []):
        await aws.run(
            (await aws.iam()).detach_role_policy, RoleName=name, PolicyArn=managed["PolicyArn"]
        )
    profiles = await aws.run((await aws.iam()).list_instance_profiles_for_role, RoleName=name)
    for profile in profiles.get("InstanceProfiles", []):
        try:
            await aws.run(
                (await aws.iam()).remove_role_from_instance_profile,
                InstanceProfileName=profile["InstanceProfileName"],
                RoleName=name,
            )
        except AwsError as exc:
            if not is_not_found(exc):
                raise
    await aws.run((await aws.iam()).delete_role, RoleName=name)
