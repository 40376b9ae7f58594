"""Pure parts of the engine: spec rules, remote commands as rendered text, UserData."""

from __future__ import annotations

import dataclasses
import itertools
import os
import shutil
import signal
import subprocess
import threading
from pathlib import Path

import pytest

from core.cloud.userdata import render_userdata
from core.commands import chain, render
from core.commands.certbot import cert_enddate, certbot_certonly, certbot_delete, has_certificate
from core.commands.git import fetch_failed_in_transit, fetch_source
from core.commands.nginx import nginx_site
from core.commands.node import prepare_app_files, start_node_app, stop_node_app
from core.commands.releases import prune_releases, switch_current
from core.commands.runner import (
    as_build_process,
    run_in_release,
    start_log,
    stop_earlier_build,
)
from core.commands.toolchain import (
    build_env,
    deps_fingerprint,
    enable_package_managers,
    ensure_bun,
    node_exe,
    reuse_node_modules,
)
from core.host.layout import AppPaths
from core.host.profiles import ec2_host_profile
from core.repo.github import token_for
from core.repo.spec import DeploySpec, EnvSetting, SpecError, parse_env, validate
from core.runs.redact import Redactor

from .helpers.waiting import wait_for

EC2 = ec2_host_profile()
APP = AppPaths(EC2, "blog")


def spec(**overrides: object) -> DeploySpec:
    return DeploySpec(**{"repo": "acme/site", "subdomain": "blog", **overrides})  # type: ignore[arg-type]


def test_a_good_spec_passes() -> None:
    assert validate(spec()) == spec()
    assert validate(
        spec(
            repo="https://git.example.com/a/b.git",
            build_type="node",
            start_cmd="pnpm start",
            install_cmd="pnpm install",
        )
    )


@pytest.mark.parametrize(
    ("field", "value", "rule"),
    [
        ("repo", "not a repo", "GitHub owner/name or a git URL"),
        ("subdomain", "Blog_1", "DNS label"),
        ("subdomain", "-blog", "DNS label"),
        ("branch", "feature/../x", "git branch name"),
        ("build_type", "php", "'static' or 'node'"),
        ("node_version", "18", "not packaged for Amazon Linux 2023; use one of 20, 22, 24"),
        ("node_version", "26", "not packaged for Amazon Linux 2023"),
        ("install_cmd", "curl x | sh", "'curl' is not allowed"),
        ("build_cmd", "npm run build && rm -rf /", "single command"),
        ("build_cmd", "", "must not be empty"),
        ("output_dir", "../etc", "relative path inside the repository"),
        ("instance_type", "huge", "EC2 instance type"),
        ("health_path", "health", "starting with '/'"),
    ],
)
def test_each_bad_field_is_named_with_its_rule(field: str, value: str, rule: str) -> None:
    with pytest.raises(SpecError) as caught:
        validate(spec(**{field: value}))
    assert field in caught.value.problems
    assert rule in caught.value.problems[field]


def test_node_specific_rules_and_env_names() -> None:
    with pytest.raises(SpecError) as caught:
        validate(
            spec(
                build_type="node",
                start_cmd="python app.py",
                port=80,
                env=(
                    EnvSetting("1BAD", "x"),
                    EnvSetting("PORT", "1"),
                    EnvSetting("OK", "a"),
                    EnvSetting("OK", "b"),
                ),
            )
        )
    problems = caught.value.problems
    assert "'python' is not allowed" in problems["start_cmd"]
    assert "between 1024 and 65000" in problems["port"]
    assert "do not start with a digit" in problems["env.1BAD"]
    assert "set by Toast" in problems["env.PORT"]
    assert problems["env.OK"] == "is given twice"


def test_parse_env_reads_secrets_from_the_environment_and_hides_them() -> None:
    settings = parse_env(["A=1=2"], ["TOKEN", "KEY=v"], {"TOKEN": "from-env"})
    assert settings == [
        EnvSetting("A", "1=2"),
        EnvSetting("TOKEN", "from-env", True),
        EnvSetting("KEY", "v", True),
    ]
    assert "from-env" not in repr(settings)
    with pytest.raises(SpecError, match="not set"):
        parse_env([], ["MISSING"], {})


def test_commands_render_each_user_value_quoted_once() -> None:
    assert switch_current(APP, "/opt/toast/apps/blog/releases/abc/dist") == (
        "ln -sfn /opt/toast/apps/blog/releases/abc/dist /opt/toast/apps/blog/current.new && "
        "mv -T /opt/toast/apps/blog/current.new /opt/toast/apps/blog/current"
    )
    assert run_in_release(
        APP,
        "/r",
        "npm run 'build:prod'",
        env_file="/e.json",
        log="/b.log",
        extra_env={"CI": "true"},
    ) == ("env CI=true node /opt/toast/bin/toast-run.js /e.json /b.log /r - -- npm run build:prod")
    assert run_in_release(
        APP, "/r", "npm run env", env_file="/e.json", log="/b.log", redact=["API_KEY", "TOKEN"]
    ).endswith("/r API_KEY,TOKEN -- npm run env")
    evil = "main; rm -rf /"
    fetched = fetch_source("https://x/$(id).git", evil, "/in")
    assert "'refs/heads/main; rm -rf /'" in fetched
    assert "'https://x/$(id).git'" in fetched
    assert chain(("echo", "a b"), ("true",)) == "echo 'a b' && true"


def test_token_reaches_git_through_stdin_and_environment_only() -> None:
    command = fetch_source("https://github.com/a/b.git", "main", "/in")
    assert command.startswith("IFS= read -r TOAST_TOKEN")
    assert 'GIT_CONFIG_VALUE_0="Authorization: Basic $TOAST_BASIC"' in command
    assert 'printf "x-access-token:%s" "$TOAST_TOKEN"' in command
    assert "unset TOAST_TOKEN" in command


def test_a_later_try_of_a_build_stops_the_one_a_lost_connection_left_running(
    tmp_path: Path,
) -> None:
    """Run as sshd runs a command (a session of its own): the recorded process group is
    stopped, children included, before the next try touches its directories."""
    app = AppPaths(dataclasses.replace(EC2, root=str(tmp_path)), "blog")
    Path(app.app_dir).mkdir(parents=True)
    marker = tmp_path / "still-building"
    # The build's child writes a file every 0.05 s while it lives.
    writer = f"while true; do date +%s%N > {marker}; sleep 0.05; done"
    earlier = subprocess.Popen(
        ["sh", "-c", as_build_process(app, f"sh -c '{writer}' & wait")],
        start_new_session=True,
    )
    try:
        wait_for(lambda: marker.exists() or None, "the earlier build to run")
        threading.Thread(target=earlier.wait, daemon=True).start()  # reaped, as sshd does
        stopped = subprocess.run(
            ["sh", "-c", stop_earlier_build(app)], capture_output=True, text=True, check=True
        )
        assert f"process group {earlier.pid}" in stopped.stdout
        earlier.wait(timeout=10)
        marker.unlink()
        # Nothing of it writes any more: a fresh write would come within 0.05 s; the next
        # try's own command (run here) finishes after 0.5 s of silence from it.
        quiet = subprocess.run(["sh", "-c", f"sleep 0.5; test ! -e {marker}"], check=False)
        assert quiet.returncode == 0, "a child of the stopped build still writes"
        assert not Path(app.build_pid).exists()
        # With no build running, the stop says nothing and succeeds.
        again = subprocess.run(
            ["sh", "-c", stop_earlier_build(app)], capture_output=True, text=True, check=True
        )
        assert again.stdout == ""
    finally:
        if earlier.poll() is None:
            os.killpg(earlier.pid, signal.SIGKILL)


def test_a_finished_build_command_leaves_no_record_and_keeps_its_status(tmp_path: Path) -> None:
    app = AppPaths(dataclasses.replace(EC2, root=str(tmp_path)), "blog")
    Path(app.app_dir).mkdir(parents=True)
    done = subprocess.run(
        ["sh", "-c", as_build_process(app, "echo built; exit 3")],
        text=True,
        capture_output=True,
        check=False,
    )
    assert (done.returncode, done.stdout) == (3, "built\n")
    assert not Path(app.build_pid).exists()


@pytest.mark.parametrize(
    ("said", "in_transit"),
    [
        (
            "fatal: unable to access 'https://github.com/a/b.git/': Failed to connect to "
            "github.com port 443 after 130 ms: Couldn't connect to server",
            True,
        ),
        (
            "fatal: unable to access 'https://github.com/a/b.git/': Operation too slow. Less "
            "than 1 bytes/sec transferred the last 60 seconds",
            True,
        ),
        (
            "fatal: unable to access 'https://github.com/a/b.git/': The requested URL returned "
            "error: 502",
            True,
        ),
        (
            "error: RPC failed; curl 56 GnuTLS recv error (-9): Error decoding the received "
            "TLS packet.",
            True,
        ),
        ("fatal: couldn't find remote ref refs/heads/nope", False),
        ("remote: Repository not found.", False),
        ("fatal: Authentication failed for 'https://github.com/a/b.git/'", False),
        (
            "fatal: unable to access 'https://github.com/a/b.git/': The requested URL returned "
            "error: 403",
            False,
        ),
    ],
)
def test_a_fetch_is_tried_again_only_when_the_way_to_the_server_failed(
    said: str, in_transit: bool
) -> None:
    assert fetch_failed_in_transit(["", said]) is in_transit


def test_node_app_start_and_stop_commands() -> None:
    # Where the host has no app user of its own: the login user's detached session.
    plain = AppPaths(dataclasses.replace(EC2, app_user=None), "blog")
    start = start_node_app(plain, "/opt/toast/apps/blog/releases/abc", "npm start", 3001)
    assert start == (
        "mkdir -p /opt/toast/apps/blog/run && { env PORT=3001 NODE_ENV=production setsid node "
        "/opt/toast/bin/toast-run.js /opt/toast/apps/blog/env.json /var/log/toast/blog/app.log "
        "/opt/toast/apps/blog/releases/abc - -- npm start </dev/null >/dev/null 2>&1 & "
        "echo $! > /opt/toast/apps/blog/run/3001.pid; cat /opt/toast/apps/blog/run/3001.pid; }"
    )
    assert stop_node_app(plain, 3001) == (
        "if [ -f /opt/toast/apps/blog/run/3001.pid ]; then kill -TERM -- "
        '-"$(cat /opt/toast/apps/blog/run/3001.pid)" 2>/dev/null; '
        "rm -f /opt/toast/apps/blog/run/3001.pid; fi; true"
    )
    # With one (EC2, the sandbox as root): started and signalled as that user, reading its
    # own 0600 copy of the env file.
    start = start_node_app(APP, "/opt/toast/apps/blog/releases/abc", "npm start", 3001)
    assert "pid=$(sudo -u toast-app -- setsid -w sh -c 'env PORT=3001" in start
    assert "/opt/toast/apps/blog/app-env.json" in start and "/blog/env.json" not in start
    assert "sudo kill -TERM" in stop_node_app(APP, 3001)
    given = prepare_app_files(APP, "/opt/toast/apps/blog/releases/abc")
    assert "sudo install -o toast-app -g toast-app -m 0600 /opt/toast/apps/blog/env.json " in given
    assert given.endswith("sudo chown -R toast-app:toast-app -- /opt/toast/apps/blog/releases/abc")
    assert prepare_app_files(plain, "/x") == "true"


def test_certbot_is_serialised_and_keeps_renewal_reloading_nginx() -> None:
    command = certbot_certonly(EC2, "blog.apps.example.com")
    # /etc/letsencrypt is root's on Amazon Linux: certbot and every certificate read use sudo.
    assert command.startswith("sudo env flock /etc/letsencrypt/toast-certbot.lock certbot certonly")
    assert certbot_delete(EC2, "blog.x.com").startswith("sudo flock /etc/letsencrypt/")
    assert cert_enddate(EC2, "blog.x.com")[:2] == ("sudo", "openssl")
    assert has_certificate(EC2, "blog.x.com") == (
        "sudo",
        "test",
        "-f",
        "/etc/letsencrypt/live/blog.x.com/fullchain.pem",
    )
    assert "--webroot -w /var/lib/toast/acme -d blog.apps.example.com" in command
    assert "--deploy-hook 'sudo systemctl reload nginx'" in command
    assert "--server" not in command  # production Let's Encrypt on AWS


def test_nginx_site_serves_acme_then_https() -> None:
    http_only = nginx_site(APP, "blog.x.com", https=False, static_root=None, upstream_port=None)
    assert "listen 80;" in http_only and "ssl" not in http_only
    assert "location /.well-known/acme-challenge/" in http_only
    full = nginx_site(APP, "blog.x.com", https=True, static_root=APP.current, upstream_port=None)
    assert "listen 443 ssl;" in full and 'root "/opt/toast/apps/blog/current";' in full
    assert "return 301 https://$host$request_uri;" in full
    node = nginx_site(APP, "blog.x.com", https=True, static_root=None, upstream_port=3001)
    assert "proxy_pass http://127.0.0.1:3001;" in node
    with pytest.raises(ValueError):
        nginx_site(
            AppPaths(EC2, 'x";evil'), "a.b", https=False, static_root=None, upstream_port=None
        )


def test_userdata_is_small_has_no_secrets_and_passes_shellcheck(tmp_path: object) -> None:
    script = render_userdata(EC2, node_version="24", instance_tag="toast-blog")
    assert len(script.encode()) < 16 * 1024
    assert "nodejs24 nodejs24-npm" in script and "/var/lib/toast/ready" in script
    # The only token in it is the instance's own short-lived IMDSv2 session token.
    for word in ("Bearer", "GITHUB", "password", "env.json", "API_KEY"):
        assert word not in script
    assert shutil.which("shellcheck"), "scripts/lib.sh installs shellcheck"
    result = subprocess.run(
        ["shellcheck", "-s", "bash", "-"], input=script, text=True, capture_output=True, check=False
    )
    assert result.returncode == 0, result.stdout


def test_redactor_hides_secrets_and_each_line_of_multiline_ones() -> None:
    redact = Redactor(["hunter22", "line-one\nline-two", "ab"])
    assert redact("pw=hunter22!") == "pw=[REDACTED]!"
    assert redact("got line-two here") == "got [REDACTED] here"
    assert redact("ab stays") == "ab stays"  # too short to redact meaningfully


async def test_waits_poll_with_backoff_and_report_progress() -> None:
    from core.runs.context import RunContext
    from core.runs.waiting import WaitTimeout, poll

    said: list[str] = []

    class Sink:
        def add(self, message: str, *, step: str | None, level: str = "info") -> None:
            said.append(f"[{step}] {message}")

    ctx = RunContext(None, None, None, None, None, Redactor(), Sink())  # type: ignore[arg-type]
    report = ctx.progress("dns", "Route53", every=5)
    for waited in (1, 4.9, 5.2, 7, 10.5):
        report(waited)
    assert said == [
        "[dns] still waiting for Route53 (5 s)",
        "[dns] still waiting for Route53 (10 s)",
    ]

    calls: list[float] = []
    seen: list[float] = []

    async def never() -> None:
        import time

        calls.append(time.monotonic())
        return None

    with pytest.raises(WaitTimeout, match=r"timed out after .* waiting for nothing"):
        await poll(
            never, what="nothing", timeout=0.5, initial=0.02, maximum=0.2, progress=seen.append
        )
    gaps = [b - a for a, b in itertools.pairwise(calls)]
    assert gaps[-1] > gaps[0]  # it backs off
    assert seen and seen == sorted(seen)


def test_build_commands_use_toasts_tools_and_caches_and_copy_never_link() -> None:
    env = build_env(EC2, "npm ci", "24")
    assert env["TOAST_PATH_PREFIX"] == "/opt/toast/tools/bin"
    # npm warns "Unknown env config" for every npm_config_ key it does not know: Toast
    # sets pnpm's store that way only where pnpm installs.
    assert not any(k.startswith("npm_config_") and "store" in k for k in env)
    pnpm = build_env(EC2, "pnpm install --frozen-lockfile", "24")
    assert pnpm["npm_config_store_dir"] == "/opt/toast/cache/pnpm-store"
    # EC2: `node` on PATH is the instance's line (alternatives). A host keeping lines side
    # by side (the sandbox) runs each deployment's commands, and its runner, with its line.
    assert node_exe(EC2, "22") == "node"
    side_by_side = dataclasses.replace(EC2, node_dir="/var/cache/toast/node/{line}/bin")
    assert build_env(side_by_side, "npm ci", "22")["TOAST_PATH_PREFIX"] == (
        "/var/cache/toast/node/22/bin:/opt/toast/tools/bin"
    )
    assert node_exe(side_by_side, "22") == "/var/cache/toast/node/22/bin/node"
    assert env["npm_config_cache"] == "/opt/toast/cache/npm"
    assert env["NODE_EXTRA_CA_CERTS"] == "/etc/pki/tls/certs/ca-bundle.crt"
    enable = enable_package_managers(EC2)
    assert "corepack enable --install-directory /opt/toast/tools/bin pnpm yarn" in enable
    assert "sudo" not in enable  # only Toast's own directory is written
    copy = reuse_node_modules("/r/old", "/r/new", link=False)
    assert "cp -a --reflink=auto -- /r/old/node_modules /r/new/" in copy
    assert "-al" not in copy  # a node app's running code is never shared with a new build
    assert "cp -al -- /r/old/node_modules /r/new/" in reuse_node_modules(
        "/r/old", "/r/new", link=True
    )
    built = run_in_release(APP, "/r/new/apps/web", "pnpm run build", env_file=None, log="/l")
    assert " /r/new/apps/web - -- pnpm run build" in built  # cwd is the app's directory


def test_every_rendered_remote_command_passes_shellcheck() -> None:
    assert shutil.which("shellcheck"), "scripts/lib.sh installs shellcheck"
    release = "/opt/toast/apps/blog/releases/abc"
    commands = [
        fetch_source("https://github.com/a/b.git", "main", "/opt/toast/apps/blog/in"),
        run_in_release(APP, release, "npm run build", env_file=APP.env_file, log=APP.build_log),
        start_node_app(APP, release, "npm start", 3000),
        stop_node_app(APP, 3000),
        switch_current(APP, release + "/dist"),
        certbot_certonly(EC2, "blog.example.com"),
        start_log(APP.build_log, "==> toast: building it's main (a b)"),
        render(prune_releases(APP, [APP.release("a" * 40, 3), APP.release("b" * 40, 4)])),
        enable_package_managers(EC2),
        ensure_bun(EC2),
        deps_fingerprint(release + "/apps/web", release + "/pnpm-lock.yaml"),
        reuse_node_modules("/opt/toast/apps/blog/releases/old", release, link=True),
        start_node_app(APP, release + "/apps/web", "pnpm run start", 3000, extra_env={"A": "b c"}),
    ]
    for command in commands:
        script = f"#!/bin/sh\n{command}\n"
        result = subprocess.run(
            ["shellcheck", "-s", "sh", "-"],
            input=script,
            text=True,
            capture_output=True,
            check=False,
        )
        assert result.returncode == 0, f"{command}\n{result.stdout}"


def test_the_github_token_reaches_only_githubs_own_host() -> None:
    api = "https://api.github.com"
    assert token_for("https://github.com/a/b.git", api, "t0k") == "t0k"
    assert token_for("https://GitHub.com/a/b.git", api, "t0k") == "t0k"
    for other in (
        "https://gitlab.com/a/b.git",
        "https://github.com.evil.example/a/b.git",
        "http://github.com/a/b.git",
        "git@github.com:a/b.git",
        "file:///srv/git/a.git",
    ):
        assert token_for(other, api, "t0k") is None, other
    assert token_for("https://ghe.corp/a/b.git", "https://ghe.corp/api/v3", "t0k") == "t0k"
    assert token_for("https://github.com/a/b.git", api, None) is None


def test_the_token_header_is_the_basic_auth_github_documents() -> None:
    command = fetch_source("https://github.com/a/b.git", "main", "/in").split("; git init")[0]
    script = command.split("; rm -rf")[0] + '; printf "%s" "$GIT_CONFIG_VALUE_0"'
    result = subprocess.run(
        ["sh", "-c", script], input="s3cr3t\n", text=True, capture_output=True, check=True
    )
    import base64

    assert (
        result.stdout
        == "Authorization: Basic " + base64.b64encode(b"x-access-token:s3cr3t").decode()
    )


def test_a_step_output_reads_back_as_the_kind_it_was_saved_as() -> None:
    """A resumed run gets each finished step's output typed as the step returned it, also
    from a row an older Toast wrote (with `_detail` and `_skipped`)."""
    from core.steps.outputs import BuildOutput, CheckOutput

    check = CheckOutput(
        sha="a" * 40, zone_id="Z1", subnet_id=None, vpc_id=None, public_ips=True, detail="ok"
    )
    assert CheckOutput.from_json(check.to_json()) == check
    old = {"sha": "b" * 40, "unchanged": True, "_skipped": True, "_detail": "already live"}
    built = BuildOutput.from_json(old)
    assert (built.unchanged, built.skipped, built.detail) == (True, True, "already live")
    assert built.release_id is None


def test_a_check_failing_after_live_is_a_warning_in_the_message_not_a_failure() -> None:
    from core.runs.engine import run_message
    from storage.records import Deployment, Run

    site = Deployment(
        name="shop",
        profile="default",
        repo="o/r",
        branch="main",
        subdomain="shop",
        fqdn="shop.example.com",
        build_type="static",
        node_version="22",
        install_cmd="npm ci",
        build_cmd="npm run build",
        instance_type="t3.micro",
    )
    run = Run(
        1, 1, "deploy", "cli", "succeeded", 0.0, commit_sha="a" * 40, started_at=1.0, ended_at=9.0
    )
    title, body = run_message(run, site)
    assert title == "shop: deploy succeeded" and "failed" not in body
    warned_title, warned = run_message(run, site, late=["renewal: certbot said no"])
    assert warned_title == "shop: deploy succeeded, with a warning"
    assert warned.startswith("https://shop.example.com/ serves aaaaaaaaaaaa in 8 s.")
    assert "A check after it went live failed: renewal: certbot said no." in warned
