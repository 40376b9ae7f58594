"""`toast serve` end to end on the sandbox: the real process, the GitHub stand-in over HTTP,
the git host's post-receive hook delivering signed pushes, and HTTPS to the sites.

A push redeploys through the webhook the deploy registered; without a webhook_url, the
poller finds it with conditional reads; a push made while serve was down is deployed when
it starts; destroy deletes the hook; a second serve refuses to start."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import httpx

from core.sandbox import githost
from core.sandbox.controller import SandboxInfo

from .deploy_helpers import deploy, serves, show, toast
from .helpers.serve import free_port, serving, slow_build_repo, write_config
from .helpers.waiting import wait_for
from .sandbox_helpers import live_instances

SAMPLE = "toast-samples/static-site"


def hooks(sandbox: SandboxInfo) -> list[dict[str, Any]]:
    token = Path(sandbox.github_token_file).read_text().strip()
    answer = httpx.get(
        f"{sandbox.github_api}/repos/{SAMPLE}/hooks",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    answer.raise_for_status()
    return list(answer.json())


def push_greeting(session_sandbox: Any, text: str, message: str = "Change the greeting") -> str:
    return githost.commit_files(
        session_sandbox.layout, SAMPLE, {"message.txt": f"{text}\n"}, message
    )


def test_a_push_redeploys_through_the_webhook_and_destroy_deletes_the_hook(
    sandbox: SandboxInfo, session_sandbox: Any, tmp_path: Path
) -> None:
    port = free_port()
    write_config(f'[sandbox]\nwebhook_url = "http://127.0.0.1:{port}"\n')
    with serving(tmp_path, "--webhook-listen", f"127.0.0.1:{port}", "--no-poll") as serve:
        assert deploy("static-site", "pushed")["state"] == "live"
        url = f"http://127.0.0.1:{port}/github/pushed"
        wait_for(
            lambda: True if [h for h in hooks(sandbox) if h["config"]["url"] == url] else None,
            "the deploy's webhook on the stand-in",
            30,
        )
        hook = next(h for h in hooks(sandbox) if h["config"]["url"] == url)
        assert hook["events"] == ["push", "pull_request"]
        assert hook["config"]["content_type"] == "json"
        secret_file = Path(os.environ["TOAST_DATA_DIR"]) / "webhooks" / "pushed.secret"
        assert secret_file.stat().st_mode & 0o777 == 0o600

        sha = push_greeting(session_sandbox, "Hello after a push")
        wait_for(
            lambda: serves(sandbox, "pushed.sandbox.test", "Hello after a push"),
            "the pushed commit to be served",
            180,
        )
        last = show("pushed")["last_run"]
        assert (last["kind"], last["trigger"], last["commit"]) == ("redeploy", "webhook", sha)
        serve.wait_for_line(f"push to main: {sha[:12]}")

        skipped = push_greeting(session_sandbox, "Not deployed", "Docs [skip deploy]")
        serve.wait_for_line(f"the head commit {skipped[:12]} says [skip deploy]")
        assert show("pushed")["last_run"]["commit"] == sha  # nothing was queued for it
        activity = toast("activity").stdout
        assert f"the head commit {skipped[:12]} says [skip deploy]" in activity
        assert "push: queued" in activity and "github (127.0.0.1)" in activity

        destroyed = toast("destroy", "pushed", "--yes", "--wait")
        assert destroyed.returncode == 0, destroyed.stderr
        assert [h for h in hooks(sandbox) if h["config"]["url"] == url] == []
        assert not secret_file.exists()
    assert serve.proc.returncode == 0


def test_without_a_webhook_url_pushes_are_found_by_polling_with_conditional_reads(
    sandbox: SandboxInfo, session_sandbox: Any, tmp_path: Path
) -> None:
    write_config("")
    with serving(tmp_path, "--no-webhooks", "--poll-interval", "1"):
        assert deploy("static-site", "polled")["state"] == "live"

        def reads() -> dict[str, int]:
            answer = httpx.get(f"{sandbox.github_api}/_toast/head-reads", timeout=10)
            return dict(answer.json())

        # Nothing changed: after the first read, each poll is a 304.
        start = reads()
        wait_for(
            lambda: True if reads()["304"] >= start["304"] + 3 else None,
            "three conditional reads answered 304",
            30,
        )
        assert reads()["200"] <= start["200"] + 1  # only the first read of the new head
        sha = push_greeting(session_sandbox, "Hello, polled")
        wait_for(
            lambda: serves(sandbox, "polled.sandbox.test", "Hello, polled"),
            "the pushed commit to be found and served",
            180,
        )
        last = show("polled")["last_run"]
        assert (last["kind"], last["trigger"], last["commit"]) == ("redeploy", "poll", sha)

    # Pushed while toast serve was down: deployed when it starts again (the catch-up).
    later = push_greeting(session_sandbox, "Hello, while serve was down")
    with serving(tmp_path, "--no-webhooks", "--no-poll", name="serve-again"):
        wait_for(
            lambda: serves(sandbox, "polled.sandbox.test", "Hello, while serve was down"),
            "the push made while serve was down",
            180,
        )
    assert show("polled")["last_run"]["commit"] == later


def test_one_serve_per_data_directory(sandbox: SandboxInfo, tmp_path: Path) -> None:
    write_config("")
    with serving(tmp_path, "--no-webhooks", "--no-poll") as first:
        second = toast("serve", "--no-webhooks", "--no-poll", timeout=60)
        assert second.returncode == 1
        assert f"already running for this data directory (pid {first.proc.pid})" in (second.stderr)
    assert first.proc.returncode == 0
    assert "toast serve stopped" in first.text()
    assert json.loads(toast("ls", "--json").stdout) == []


def test_sigterm_mid_build_hands_the_run_back_and_the_next_serve_finishes_it(
    sandbox: SandboxInfo, session_sandbox: Any, tmp_path: Path, aws: Any
) -> None:
    flags, flag = slow_build_repo(session_sandbox.layout, "someone/slow")
    write_config("")
    try:
        with serving(tmp_path, "--no-webhooks", "--no-poll") as first:
            queued = toast(
                "--sandbox",
                "deploy",
                "someone/slow",
                "--subdomain",
                "slow",
                "--env",
                f"GO_FLAG={flag}",
            )
            assert queued.returncode == 0, queued.stderr

            def building() -> bool | None:
                steps = {s["name"]: s["state"] for s in show("slow")["last_run"]["steps"]}
                return True if steps.get("build") == "running" else None

            wait_for(building, "the build to start", 120)
            assert first.stop() == 0
        assert "handed back" in first.text() and "toast serve stopped" in first.text()
        assert show("slow")["last_run"]["state"] in ("queued", "running")
        flag.write_text("go")
        with serving(tmp_path, "--no-webhooks", "--no-poll", name="serve-again"):
            wait_for(
                lambda: True if show("slow")["state"] == "live" else None,
                "the resumed run to go live",
                180,
            )
        assert serves(sandbox, "slow.sandbox.test", "built after a restart")
        assert len(live_instances(aws)) == 1
    finally:
        shutil.rmtree(flags, ignore_errors=True)


def test_gc_finds_webhooks_gone_and_webhooks_the_ledger_lost_and_leaves_others_alone(
    sandbox: SandboxInfo, tmp_path: Path
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    write_config(f'[sandbox]\nwebhook_url = "{base}"\n')
    with serving(tmp_path, "--webhook-listen", f"127.0.0.1:{port}", "--no-poll"):
        assert deploy("static-site", "hooked")["state"] == "live"
        wait_for(
            lambda: (
                True
                if [h for h in hooks(sandbox) if h["config"]["url"].endswith("/hooked")]
                else None
            ),
            "the deploy's webhook",
            30,
        )
    token = Path(sandbox.github_token_file).read_text().strip()
    api = httpx.Client(
        base_url=sandbox.github_api, headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    made = next(h for h in hooks(sandbox) if h["config"]["url"].endswith("/hooked"))
    api.delete(f"/repos/{SAMPLE}/hooks/{made['id']}").raise_for_status()  # gone behind Toast

    def hook(url: str) -> int:
        body = {"name": "web", "events": ["push"], "config": {"url": url, "content_type": "json"}}
        answer = api.post(f"/repos/{SAMPLE}/hooks", json=body)
        answer.raise_for_status()
        return int(answer.json()["id"])

    lost = hook(f"{base}/github/hooked")  # Toast's URL, but no ledger entry
    foreign = hook("https://ci.example.com/hook")  # someone else's: never touched
    found = json.loads(toast("--sandbox", "gc", "--json").stdout)["findings"]
    webhook_findings = {(f["problem"], f["id"]) for f in found if f["kind"] == "github_webhook"}
    assert webhook_findings == {
        ("stale", f"{SAMPLE}#{made['id']}"),
        ("orphan", f"{SAMPLE}#{lost}"),
    }
    collected = toast("--sandbox", "gc", "--delete")
    assert collected.returncode == 0, collected.stderr
    left = {h["id"] for h in hooks(sandbox)}
    assert lost not in left and foreign in left
