"""AWS clients are made when first needed, one per service, and the console's log panes
share one Aws (the Logs screen used to build 4 x 6 clients)."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.cloud.aws import Aws
from core.profile.config import sandbox_profile
from core.profile.targets import Target, ec2_host_profile


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


async def test_a_failed_connection_is_not_kept_for_the_next_try(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = []

    def failing(*args: object) -> Aws:
        calls.append(args)
        raise RuntimeError("no credentials yet")

    monkeypatch.setattr(Aws, "connect_sync", classmethod(lambda cls, *a: failing(*a)))
    for _ in range(2):
        with pytest.raises(RuntimeError, match="no credentials yet"):
            await Aws.shared(target("eu-west-1"))
    assert len(calls) == 2  # tried again, not the first failure replayed
