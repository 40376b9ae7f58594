"""Where an instance goes: the profile's subnet, or a subnet of the default VPC that gives
instances public addresses. Chosen before anything is created; with neither, the deploy
stops and says what to configure."""

from __future__ import annotations

from dataclasses import dataclass

from core.cloud.aws import Aws, AwsError
from core.profile.config import Profile


class NetworkError(Exception):
    """No usable subnet; says what to set in the profile."""


@dataclass(frozen=True)
class Placement:
    subnet_id: str
    vpc_id: str
    availability_zone: str
    #: Whether the subnet gives instances a public IP by itself (else Toast asks for one).
    public_ips: bool
    source: str


async def choose_subnet(aws: Aws, profile: Profile) -> Placement:
    where = f"[profiles.{profile.name}]"
    if profile.subnet_id:
        try:
            found = await aws.run((await aws.ec2()).describe_subnets, SubnetIds=[profile.subnet_id])
        except AwsError as exc:
            if exc.code in ("InvalidSubnetID.NotFound", "InvalidSubnetID.Malformed"):
                raise NetworkError(
                    f"subnet_id {profile.subnet_id} does not exist in {profile.region}; set "
                    f"subnet_id in {where} to a public subnet of that region"
                ) from exc
            raise
        subnet = found["Subnets"][0]
        return Placement(
            str(subnet["SubnetId"]),
            str(subnet["VpcId"]),
            str(subnet["AvailabilityZone"]),
            bool(subnet.get("MapPublicIpOnLaunch")),
            f"subnet_id in {where}",
        )
    vpcs = await aws.run(
        (await aws.ec2()).describe_vpcs, Filters=[{"Name": "isDefault", "Values": ["true"]}]
    )
    if not vpcs["Vpcs"]:
        raise NetworkError(
            f'{profile.region} has no default VPC; set subnet_id = "subnet-..." in {where} '
            "(a subnet with a route to an internet gateway)"
        )
    vpc_id = str(vpcs["Vpcs"][0]["VpcId"])
    subnets = await aws.run(
        (await aws.ec2()).describe_subnets,
        Filters=[
            {"Name": "vpc-id", "Values": [vpc_id]},
            {"Name": "map-public-ip-on-launch", "Values": ["true"]},
            {"Name": "state", "Values": ["available"]},
        ],
    )
    usable = sorted(subnets["Subnets"], key=lambda s: (s["AvailabilityZone"], s["SubnetId"]))
    if not usable:
        raise NetworkError(
            f"the default VPC {vpc_id} in {profile.region} has no subnet that gives instances "
            f'public IPs; set subnet_id = "subnet-..." in {where}'
        )
    subnet = usable[0]
    return Placement(
        str(subnet["SubnetId"]),
        vpc_id,
        str(subnet["AvailabilityZone"]),
        True,
        f"the default VPC {vpc_id}, {subnet['AvailabilityZone']}",
    )
