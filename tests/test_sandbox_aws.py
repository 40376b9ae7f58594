"""AWS in the sandbox: boto3 round trips for every service Toast uses."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from core.profile.config import AL2023_PARAMETER
from core.sandbox.controller import SandboxInfo

Clients = Callable[[str], Any]


def test_sts_and_iam(aws: Clients) -> None:
    identity = aws("sts").get_caller_identity()
    assert identity["Account"].isdigit()
    iam = aws("iam")
    iam.create_role(RoleName="toast-instance", AssumeRolePolicyDocument="{}")
    iam.create_instance_profile(InstanceProfileName="toast-instance")
    iam.add_role_to_instance_profile(
        InstanceProfileName="toast-instance", RoleName="toast-instance"
    )
    profile = iam.get_instance_profile(InstanceProfileName="toast-instance")["InstanceProfile"]
    assert [r["RoleName"] for r in profile["Roles"]] == ["toast-instance"]


def test_ssm_resolves_the_al2023_ami_and_ec2_launches_it(aws: Clients) -> None:
    ami = aws("ssm").get_parameter(Name=AL2023_PARAMETER)["Parameter"]["Value"]
    ec2 = aws("ec2")
    assert ec2.describe_images(ImageIds=[ami])["Images"][0]["ImageId"] == ami
    group = ec2.create_security_group(GroupName="toast-web", Description="toast")["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=group,
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 443,
                "ToPort": 443,
                "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
            }
        ],
    )
    reservation = ec2.run_instances(
        ImageId=ami,
        InstanceType="t3.micro",
        MinCount=1,
        MaxCount=1,
        SecurityGroupIds=[group],
        UserData="#!/bin/bash\necho hi\n",
        ClientToken="run-1-launch",
        MetadataOptions={"HttpTokens": "required", "HttpEndpoint": "enabled"},
        TagSpecifications=[
            {"ResourceType": "instance", "Tags": [{"Key": "toast:managed-by", "Value": "toast"}]}
        ],
    )
    instance_id = reservation["Instances"][0]["InstanceId"]
    found = ec2.describe_instances(Filters=[{"Name": "tag:toast:managed-by", "Values": ["toast"]}])
    assert [i["InstanceId"] for r in found["Reservations"] for i in r["Instances"]] == [instance_id]
    ec2.terminate_instances(InstanceIds=[instance_id])
    state = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    assert state["State"]["Name"] in ("shutting-down", "terminated")


def test_route53_has_the_sandbox_zone_and_takes_upserts(aws: Clients, sandbox: SandboxInfo) -> None:
    route53 = aws("route53")
    zones = route53.list_hosted_zones_by_name(DNSName=sandbox.base_domain + ".")["HostedZones"]
    zone = next(z for z in zones if z["Name"] == sandbox.base_domain + ".")
    change = route53.change_resource_record_sets(
        HostedZoneId=zone["Id"],
        ChangeBatch={
            "Changes": [
                {
                    "Action": "UPSERT",
                    "ResourceRecordSet": {
                        "Name": f"app.{sandbox.base_domain}",
                        "Type": "A",
                        "TTL": 60,
                        "ResourceRecords": [{"Value": "127.0.0.1"}],
                    },
                }
            ]
        },
    )
    assert route53.get_change(Id=change["ChangeInfo"]["Id"])["ChangeInfo"]["Status"] == "INSYNC"
    records = route53.list_resource_record_sets(HostedZoneId=zone["Id"])["ResourceRecordSets"]
    assert any(r["Name"] == f"app.{sandbox.base_domain}." for r in records)


def test_cloudwatch_logs_put_and_filter(aws: Clients) -> None:
    logs = aws("logs")
    logs.create_log_group(logGroupName="toast/app/build")
    logs.create_log_stream(logGroupName="toast/app/build", logStreamName="i-1")
    now = int(time.time() * 1000)
    logs.put_log_events(
        logGroupName="toast/app/build",
        logStreamName="i-1",
        logEvents=[{"timestamp": now, "message": f"line {n}"} for n in range(3)],
    )
    events = logs.filter_log_events(logGroupName="toast/app/build")["events"]
    assert [e["message"] for e in events] == ["line 0", "line 1", "line 2"]


def test_moto_reset_between_tests_keeps_the_zone(aws: Clients, sandbox: SandboxInfo) -> None:
    # The `sandbox` fixture reset AWS: no instance from another test survives.
    reservations = aws("ec2").describe_instances()["Reservations"]
    assert reservations == []
    zones = aws("route53").list_hosted_zones()["HostedZones"]
    assert [z["Name"] for z in zones] == [sandbox.base_domain + "."]
