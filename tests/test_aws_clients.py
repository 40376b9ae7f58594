"""AWS clients are made when first needed, one per service, and the console's log panes
share one Aws (the Logs screen used to build 4 x 6 clients)."""

from __future__ import annotations

from pathlib import Path

from core.aws import Aws
from core.config import sandbox_profile
from core.targets import Target, ec2_host_profile


def target(region: str = "us-east-1") -> Target:
    profile = sandbox_profile(endpoint_url="http://127.0.0.1:9")  # never called here
    return Target(profile, ec2_host_profile(), None, Path("/nonexistent"), ("testing", "testing"))


async def test_clients_are_made_on_first_use_one_per_service() -> None:
    aws = await Aws.connect(target())
    assert aws.clients == {}
    logs = await aws.client("logs")
    assert await aws.client("logs") is logs
    assert set(aws.clients) == {"logs"}
    assert aws.region == "us-east-1"


async def test_the_console_shares_one_aws_per_account_and_region() -> None:
    first = await Aws.shared(target())
    again = await Aws.shared(target())
    assert first is again
    await first.client("logs")
    assert set(again.clients) == {"logs"}
