"""`toast doctor`: before the first real deploy, check what would fail, and say how to fix
each. Every check is a read; nothing is created or changed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from core.cloud.aws import Aws, AwsError
from core.cloud.dns_owner import hosted_zone_id
from core.cloud.network import NetworkError, choose_subnet
from core.host.keyfiles import KeyFileError, matches, public_key_of
from core.profile.targets import Target

#: EC2's quota code for running On-Demand Standard (A, C, D, H, I, M, R, T, Z) vCPUs.
STANDARD_VCPU_QUOTA = "L-1216C47A"
#: The calls a deploy makes, checked with IAM's policy simulator where the caller may.
DEPLOY_ACTIONS = (
    "ec2:RunInstances",
    "ec2:CreateSecurityGroup",
    "ec2:ImportKeyPair",
    "iam:CreateRole",
    "iam:PutRolePolicy",
    "iam:PassRole",
    "route53:ChangeResourceRecordSets",
    "logs:CreateLogGroup",
    "ssm:GetParameter",
)


@dataclass(frozen=True)
class Check:
    name: str
    #: True passed, False failed, None could not be checked (the detail says why).
    ok: bool | None
    detail: str
    fix: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail, "fix": self.fix}


def _credentials_fix(profile_name: str, aws_profile: str | None, code: str, message: str) -> str:
    named = f" --profile {aws_profile}" if aws_profile else ""
    if "sso" in (code + message).lower() or "token" in code.lower():
        return f"your SSO session has expired: run `aws sso login{named}`"
    if code == "ProfileNotFound":
        return (
            f"add the AWS profile {aws_profile!r} to ~/.aws/config (`aws configure{named}`), "
            f"or set aws_profile in [profiles.{profile_name}]"
        )
    return f"set up credentials for boto3 (`aws configure{named}`, or AWS_* variables)"


async def run_checks(target: Target) -> list[Check]:
    profile = target.profile
    checks: list[Check] = []
    try:
        aws = await Aws.connect(target, max_attempts=2)
        identity = await aws.run((await aws.sts()).get_caller_identity)
    except AwsError as exc:
        checks.append(
            Check(
                "credentials",
                False,
                f"{exc.code}: {exc.aws_message}",
                _credentials_fix(profile.name, profile.aws_profile, exc.code, exc.aws_message),
            )
        )
        return checks
    except Exception as exc:  # boto3 refuses before any call (a profile it cannot find)
        code = type(exc).__name__
        checks.append(
            Check(
                "credentials",
                False,
                f"{code}: {exc}",
                _credentials_fix(profile.name, profile.aws_profile, code, str(exc)),
            )
        )
        return checks
    checks.append(Check("credentials", True, f"account {identity['Account']} as {identity['Arn']}"))

    async def attempt(name: str, work: Callable[[], Awaitable[Check]]) -> None:
        try:
            checks.append(await work())
        except AwsError as exc:
            checks.append(Check(name, False, str(exc), "check the profile's permissions"))

    async def region() -> Check:
        zones = await aws.run((await aws.ec2()).describe_availability_zones)
        names = [z["ZoneName"] for z in zones["AvailabilityZones"]]
        return Check("region", True, f"{profile.region} ({len(names)} availability zones)")

    async def zone() -> Check:
        try:
            found = await hosted_zone_id(aws, profile)
        except Exception as exc:
            return Check(
                "hosted zone",
                False,
                str(exc),
                f"create a public hosted zone for {profile.base_domain} in Route53 and point "
                "the domain's NS records at it, or set hosted_zone_id",
            )
        return Check("hosted zone", True, f"{profile.base_domain} is zone {found}")

    async def subnet() -> Check:
        try:
            placement = await choose_subnet(aws, profile)
        except NetworkError as exc:
            return Check("subnet", False, str(exc), "set subnet_id in the profile")
        return Check("subnet", True, f"{placement.subnet_id} ({placement.source})")

    async def ami() -> Check:
        try:
            found = await aws.run((await aws.ssm()).get_parameter, Name=profile.ami_parameter)
        except AwsError as exc:
            return Check(
                "AMI",
                False,
                f"{profile.ami_parameter}: {exc.code}",
                "set ami_parameter to an Amazon Linux 2023 SSM parameter",
            )
        return Check("AMI", True, f"{found['Parameter']['Value']} ({profile.ami_parameter})")

    async def key_pair() -> Check:
        path = target.key_file
        try:
            found = await aws.run((await aws.ec2()).describe_key_pairs, KeyNames=[profile.key_pair])
            pairs = found["KeyPairs"]
        except AwsError as exc:
            if exc.code != "InvalidKeyPair.NotFound":
                raise
            pairs = []
        if not pairs:
            detail = f"{profile.key_pair} does not exist yet"
            if path.exists():
                return Check("key pair", True, f"{detail}; the first deploy imports {path}")
            return Check("key pair", True, f"{detail}; the first deploy creates it and {path}")
        if not path.exists():
            return Check(
                "key pair",
                False,
                f"{profile.key_pair} exists in {profile.region} but its private key is not at "
                f"{path}",
                f"restore the key to {path}, or set another key_pair in the profile",
            )
        try:
            ok = matches(public_key_of(path), str(pairs[0].get("KeyFingerprint", "")))
        except KeyFileError as exc:
            return Check("key pair", False, str(exc), f"restore {path} from a backup")
        if not ok:
            return Check(
                "key pair",
                False,
                f"{path} does not match key pair {profile.key_pair}",
                f"restore the matching key to {path}, or set another key_pair",
            )
        return Check("key pair", True, f"{profile.key_pair} matches {path}")

    async def quota() -> Check:
        try:
            found = await aws.run(
                (await aws.service_quotas()).get_service_quota,
                ServiceCode="ec2",
                QuotaCode=STANDARD_VCPU_QUOTA,
            )
        except (AwsError, KeyError) as exc:
            return Check("vCPU quota", None, f"not checked ({exc})")
        value = float(found["Quota"]["Value"])
        if value < 2:
            return Check(
                "vCPU quota",
                False,
                f"{value:g} On-Demand standard vCPUs allowed",
                "request a quota increase for EC2 Running On-Demand Standard instances",
            )
        return Check("vCPU quota", True, f"{value:g} On-Demand standard vCPUs")

    async def permissions() -> Check:
        try:
            result = await aws.run(
                (await aws.iam()).simulate_principal_policy,
                PolicySourceArn=identity["Arn"],
                ActionNames=list(DEPLOY_ACTIONS),
            )
        except AwsError as exc:
            return Check("permissions", None, f"not checked ({exc.code}: {exc.aws_message})")
        denied = [
            r["EvalActionName"]
            for r in result.get("EvaluationResults", [])
            if r.get("EvalDecision") != "allowed"
        ]
        if denied:
            return Check(
                "permissions",
                False,
                "denied: " + ", ".join(denied),
                "attach docs/iam-policy.json (in Toast's repository) to your user or role",
            )
        return Check("permissions", True, f"{len(DEPLOY_ACTIONS)} deploy actions allowed")

    for name, work in (
        ("region", region),
        ("hosted zone", zone),
        ("subnet", subnet),
        ("AMI", ami),
        ("key pair", key_pair),
        ("vCPU quota", quota),
        ("permissions", permissions),
    ):
        await attempt(name, work)
    return checks
