"""Notifications through Apprise to a receiver on loopback (Apprise's json:// target): a
deploy's success and a failure each arrive with what a team needs; a receiver that hangs
holds nothing up; the URL, which carries a secret, is in no log, no screen and no SQLite
file."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.sandbox.controller import SandboxInfo

from .deploy_helpers import deploy, toast
from .helpers.notify_receiver import SECRET, Receiver, receiving
from .helpers.serve import serving, write_config
from .helpers.waiting import wait_for


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as server:
        yield server


def no_secret_anywhere(*logs: str) -> None:
    for text in logs:
        assert SECRET not in text
    data = Path(os.environ["TOAST_DATA_DIR"])
    for path in data.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


def test_success_and_failure_reach_the_team_and_the_url_stays_secret(
    sandbox: SandboxInfo, receiver: Receiver, tmp_path: Path
) -> None:
    write_config(f'[sandbox]\nnotify = ["{receiver.url}"]\n')
    with serving(tmp_path, "--no-webhooks", "--no-poll") as serve:
        assert deploy("static-site", "told")["state"] == "live"
        wait_for(lambda: receiver.messages or None, "the success message", 30)
        success = receiver.messages[0]
        assert success["title"] == "told: deploy succeeded"
        assert "https://told.sandbox.test/ serves" in success["message"]

        failed = toast(
            "--sandbox",
            "deploy",
            "toast-samples/static-site",
            "--subdomain",
            "nocap",
            "--wait",
            env={"TOAST_FAULTS": "aws:ec2.RunInstances:InsufficientInstanceCapacity"},
        )
        assert failed.returncode == 1
        wait_for(lambda: len(receiver.messages) >= 2 or None, "the failure message", 30)
        failure = receiver.messages[1]
        assert failure["title"] == "nocap: deploy failed"
        assert "failed at step launch" in failure["message"]
        assert "EC2 has no capacity" in failure["message"]
        log = serve.text()
    no_secret_anywhere(log, failed.stdout, failed.stderr)
    shown = toast("--sandbox", "notify", "test")
    assert shown.returncode == 0, shown.stderr
    assert "sent to json://toast:****@127.0.0.1" in shown.stdout
    assert SECRET not in shown.stdout + shown.stderr
    assert receiver.messages[-1]["title"] == "Toast: test from profile sandbox"


def test_a_receiver_that_hangs_holds_no_deploy(
    sandbox: SandboxInfo, receiver: Receiver, tmp_path: Path
) -> None:
    write_config(f'[sandbox]\nnotify = ["{receiver.url}"]\n')
    receiver.hang.set()
    with serving(tmp_path, "--no-webhooks", "--no-poll"):
        first = deploy("static-site", "first")
        assert first["state"] == "live"
        wait_for(lambda: receiver.arrived.is_set() or None, "the first message to arrive", 30)
        # The receiver still holds that request open: the next deploy runs and ends anyway.
        second = deploy("static-site", "second")
        assert second["state"] == "live"
        assert not receiver.release.is_set()
        receiver.release.set()
