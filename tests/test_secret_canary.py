"""Secret canaries: an env secret, the GitHub token, a webhook secret and a notification URL
are used in a deploy, a push redeploy and a failure under `toast serve`; afterwards none of
them appears in SQLite, the config file, UserData, CloudWatch, the host's files (other than
their 0600 homes), Toast's own files and logs, what the CLI shows, or the notifications."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.sandbox import githost
from core.sandbox.controller import Sandbox, SandboxInfo

from .deploy_helpers import serves, settled, show, toast
from .helpers.notify_receiver import SECRET, receiving
from .helpers.serve import free_port, serving, write_config
from .helpers.waiting import wait_for

Clients = Callable[[str], Any]
ENV_CANARY = "cnry-env-5f1e9a7d"
SAMPLE = "toast-samples/static-site"


def _cloudwatch(aws: Clients) -> str:
    logs = aws("logs")
    text = []
    for group in logs.describe_log_groups()["logGroups"]:
        for event in logs.filter_log_events(logGroupName=group["logGroupName"])["events"]:
            text.append(event["message"])
    return "\n".join(text)


def _user_data(aws: Clients) -> str:
    ec2 = aws("ec2")
    found = []
    for reservation in ec2.describe_instances()["Reservations"]:
        for instance in reservation["Instances"]:
            value = ec2.describe_instance_attribute(
                InstanceId=instance["InstanceId"], Attribute="userData"
            )["UserData"].get("Value", "")
            found.append(base64.b64decode(value).decode(errors="replace") if value else "")
    return "\n".join(found)


def test_four_canaries_never_leave_their_homes(
    sandbox: SandboxInfo,
    session_sandbox: Sandbox,
    aws: Clients,
    isolated_toast: Path,
    tmp_path: Path,
    monkeypatch: Any,
) -> None:
    token = Path(sandbox.github_token_file).read_text().strip()
    port = free_port()
    shown: list[str] = []
    with receiving() as inbox:
        monkeypatch.setenv("CANARY_NOTIFY_URL", inbox.url)
        write_config(
            f'[sandbox]\nwebhook_url = "http://127.0.0.1:{port}"\n'
            'notify = ["env:CANARY_NOTIFY_URL"]\n'
        )
        with serving(tmp_path, "--webhook-listen", f"127.0.0.1:{port}", "--no-poll") as serve:
            deployed = toast(
                "--sandbox",
                "deploy",
                SAMPLE,
                "--subdomain",
                "canary",
                "--secret",
                f"CANARY_ENV={ENV_CANARY}",
                "--install",
                "npm run env",
                "--wait",
            )
            assert deployed.returncode == 0, deployed.stderr
            shown += [deployed.stdout, deployed.stderr]
            secret_file = isolated_toast / "webhooks" / "canary.secret"
            hook_secret = wait_for(
                lambda: secret_file.read_text().strip() if secret_file.exists() else None,
                "the deployment's webhook secret",
                30,
            )
            settled("canary")
            githost.commit_files(
                session_sandbox.layout, SAMPLE, {"message.txt": "Hello canary\n"}, "Canary push"
            )
            wait_for(
                lambda: serves(sandbox, "canary.sandbox.test", "Hello canary"),
                "the pushed commit served",
                180,
            )
            assert settled("canary")["last_run"]["trigger"] == "webhook"
            failed = toast(
                "redeploy",
                "canary",
                "--force",
                "--wait",
                env={"TOAST_FAULTS": "raise-in:build"},
            )
            assert failed.returncode != 0
            shown += [failed.stdout, failed.stderr]
            wait_for(lambda: len(inbox.messages) >= 3 or None, "three notifications", 60)
            for args in (("show", "canary"), ("activity",), ("logs", "canary", "--since", "1h")):
                answer = toast(*args)
                assert answer.returncode == 0, answer.stderr
                shown += [answer.stdout, answer.stderr]
            shown.append(serve.text())
    assert show("canary")["state"] == "live"
    canaries = {
        "env secret": ENV_CANARY,
        "GitHub token": token,
        "webhook secret": hook_secret,
        "notification URL's password": SECRET,
    }
    places: dict[str, bytes] = {
        "CLI and toast serve output": "\n".join(shown).encode(),
        "notifications": repr(inbox.messages).encode(),
        "CloudWatch": _cloudwatch(aws).encode(),
        "UserData": _user_data(aws).encode(),
        "config file": Path(os.environ["TOAST_CONFIG"]).read_bytes(),
    }
    # Toast's own files: SQLite, logs, spool; the webhook secret's 0600 file is its home.
    for path in isolated_toast.rglob("*"):
        if path.is_file() and path != secret_file:
            places[f"Toast's {path.relative_to(isolated_toast)}"] = path.read_bytes()
    homes = []
    for path in session_sandbox.layout.host_root.rglob("*"):
        if not path.is_file() or path.is_symlink():
            continue
        data = path.read_bytes()
        if path.stat().st_mode & 0o077 == 0:  # 0600: a secret's home
            homes.append((path, data))
            continue
        places[f"host {path.relative_to(session_sandbox.layout.host_root)}"] = data
    assert any(ENV_CANARY.encode() in data for _, data in homes), "the env file holds it"
    leaks = [
        f"{what} in {where}"
        for where, data in places.items()
        for what, value in canaries.items()
        if value.encode() in data
    ]
    assert leaks == []
