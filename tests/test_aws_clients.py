"""AWS clients are made when first needed, one per service, and the console's log panes
share one Aws (the Logs screen used to build 4 x 6 clients)."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import replace
from pathlib import Path

import pytest

from core.cloud.aws import Aws, _session
from core.profile.config import sandbox_profile
from core.profile.targets import Target, ec2_host_profile
from core.sandbox.controller import SandboxInfo


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


async def test_runs_share_a_session_and_rotated_keys_are_used_without_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A long-running `toast serve` makes one boto3 session per set of credentials (a new
    one per run re-read botocore's models on the engine's loop), and keys rotated in the
    credentials file are the ones the next run uses."""
    credentials = tmp_path / "credentials"
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    profile = replace(sandbox_profile(endpoint_url="http://127.0.0.1:9"), aws_profile="team")
    chain = Target(profile, ec2_host_profile(), None, Path("/nonexistent"), None)

    async def access_key() -> str:
        aws = await Aws.connect(chain)
        sts = await aws.client("sts")
        return str(sts._request_signer._credentials.access_key)  # what it signs with

    credentials.write_text("[team]\naws_access_key_id = AKIAFIRST\naws_secret_access_key = x\n")
    assert await access_key() == "AKIAFIRST"
    assert _session(chain) is _session(chain)
    before = _session(chain)
    credentials.write_text("[team]\naws_access_key_id = AKIASECOND\naws_secret_access_key = y\n")
    os.utime(credentials, ns=(time.time_ns(), time.time_ns() + 1_000_000_000))
    assert await access_key() == "AKIASECOND"
    assert _session(chain) is not before


async def test_runs_share_clients_and_each_meets_only_its_own_faults(
    sandbox: SandboxInfo,
) -> None:
    """Every run's Aws uses this process's clients (a client per run made 20 deploys at once
    build 120, and their garbage collections stalled the engine's loop), while a run's
    injected faults strike its own calls only, however the calls interleave."""
    from core.cloud.aws import AwsError
    from core.cloud.faults import Faults
    from core.profile.targets import resolve_target

    where = resolve_target(sandbox_profile())
    faulty = await Aws.connect(where, faults=Faults("aws:sts.GetCallerIdentity:AccessDenied:2"))
    clean = await Aws.connect(where, faults=Faults(""))
    assert await faulty.sts() is await clean.sts()  # one client for both runs
    sts = await clean.sts()

    async def ask(aws: Aws) -> str:
        try:
            return (await aws.run(sts.get_caller_identity))["Account"]
        except AwsError as exc:
            return exc.code

    answers = await asyncio.gather(ask(faulty), ask(clean), ask(faulty), ask(clean), ask(faulty))
    account = answers[1]
    assert account != "AccessDenied" and answers[3] == account  # the clean run's calls pass
    # The faulty run's calls (at once, in any order): two fail, the third gets through.
    assert sorted(answers[0::2]) == sorted(["AccessDenied", "AccessDenied", account])
