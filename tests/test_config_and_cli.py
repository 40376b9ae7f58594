"""Config validation and the CLI's conventions, through the real `toast` command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.profile.config import ConfigError, choose_profile, load_config

from .conftest import run_toast

GOOD = """
default_profile = "work"

[profiles.work]
aws_profile = "work"
region = "eu-west-1"
base_domain = "apps.example.com"
hosted_zone_id = "Z0123456789ABCDEFGHIJ"
instance_type = "t3.small"
key_pair = "toast"
operator_cidr = "203.0.113.7/32"
notify = ["env:TOAST_SLACK_URL", "jsons://hooks.example.com/toast"]
webhook_url = "https://toast.example.com/hooks"

[serve]
webhook_listen = "127.0.0.1:9000"
poll_interval = 30

[sandbox]
webhook_url = "http://127.0.0.1:9000"
"""


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_a_valid_config_gives_its_profiles(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, GOOD))
    profile = choose_profile(config, requested=None, sandbox=False, environ={})
    assert profile.name == "work" and profile.region == "eu-west-1"
    assert profile.notify == ("env:TOAST_SLACK_URL", "jsons://hooks.example.com/toast")
    assert profile.webhook_url == "https://toast.example.com/hooks"
    assert (config.serve.webhook_listen, config.serve.poll_interval) == ("127.0.0.1:9000", 30)
    sandbox = choose_profile(config, requested=None, sandbox=True, environ={})
    assert sandbox.is_sandbox and sandbox.webhook_url == "http://127.0.0.1:9000"
    assert choose_profile(config, requested="sandbox", sandbox=False, environ={}).is_sandbox


@pytest.mark.parametrize(
    ("text", "key", "rule"),
    [
        (
            "[profiles.w]\nbase_domain = 'a.com'\nregion = 'moon-1'",
            "profiles.w.region",
            "AWS region",
        ),
        (
            "[profiles.w]\nbase_domain = 'a.com'\noperator_cidr = '1.2.3.4/99'",
            "profiles.w.operator_cidr",
            "CIDR",
        ),
        ("[profiles.w]\nregion = 'us-east-1'", "profiles.w.base_domain", "required"),
        ("[profiles.w]\nbase_domain = 'Not A Domain'", "profiles.w.base_domain", "DNS name"),
        (
            "[profiles.w]\nbase_domain = 'a.com'\nregoin = 'us-east-1'",
            "profiles.w.regoin",
            "unknown key",
        ),
        (
            "[profiles.w]\nbase_domain = 'a.com'\ninstance_type = 3",
            "profiles.w.instance_type",
            "must be a string",
        ),
        ("[profiles.sandbox]\nbase_domain = 'a.com'", "profiles.sandbox", "built in"),
        (
            "default_profile = 'nope'\n[profiles.w]\nbase_domain = 'a.com'",
            "default_profile",
            "names no profile",
        ),
        (
            "[profiles.w]\nbase_domain = 'a.com'\nnotify_webhook = 'https://x'",
            "profiles.w.notify_webhook",
            "replaced by notify",
        ),
        (
            "[profiles.w]\nbase_domain = 'a.com'\nnotify = ['hooks.slack.com/T0/SECRET']",
            "profiles.w.notify[0]",
            "Apprise URL",
        ),
        (
            "[profiles.w]\nbase_domain = 'a.com'\nwebhook_url = 'toast.example.com'",
            "profiles.w.webhook_url",
            "http(s)://",
        ),
        ("[serve]\nwebhook_listen = 'everywhere'", "serve.webhook_listen", "HOST:PORT"),
        ("[serve]\npoll_interval = 0.5", "serve.poll_interval", "1 or more"),
        ("[sandbox]\nbase_domain = 'a.com'", "sandbox.base_domain", "unknown key"),
    ],
)
def test_each_bad_field_is_named_with_its_rule(
    tmp_path: Path, text: str, key: str, rule: str
) -> None:
    path = write_config(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.key == key
    assert rule in caught.value.problem
    assert str(path) in str(caught.value)


def test_bad_config_on_the_cli_is_one_clear_line_exit_2_and_writes_nothing(
    tmp_path: Path, isolated_toast: Path
) -> None:
    path = write_config(tmp_path, "[profiles.w]\nbase_domain = 'a.com'\nregion = 'moon-1'\n")
    before = path.read_bytes()
    result = run_toast("ls")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert str(path) in lines[0] and "profiles.w.region" in lines[0] and "moon-1" in lines[0]
    assert path.read_bytes() == before
    assert not isolated_toast.exists(), "nothing may be written when the config is invalid"


def test_broken_toml_names_the_file(tmp_path: Path) -> None:
    path = write_config(tmp_path, "[profiles.w\n")
    result = run_toast("ls")
    assert result.returncode == 2
    assert f"invalid config {path}" in result.stderr and "not valid TOML" in result.stderr


def test_unknown_profile_is_a_usage_error() -> None:
    result = run_toast("--profile", "nope", "ls")
    assert result.returncode == 2
    assert "no profile named 'nope'" in result.stderr


def test_bad_usage_exits_2_with_a_message() -> None:
    result = run_toast("ls", "--no-such-flag")
    assert result.returncode == 2
    assert result.stderr == (
        "toast: error: no such option '--no-such-flag' (see 'toast ls --help')\n"
    )
    result = run_toast("no-such-command")
    assert result.returncode == 2
    assert result.stderr.startswith("toast: error: no such command 'no-such-command'")
    assert len(result.stderr.strip().splitlines()) == 1


def test_version_and_help_list_only_working_commands() -> None:
    version = run_toast("--version")
    assert version.returncode == 0 and version.stdout.startswith("toast, version ")
    help_text = run_toast("--help").stdout
    commands = help_text.split("Commands:")[1].split()
    listed = {word for word in commands if word.islower() and word.isalpha()}
    assert {"ls", "sandbox"} <= listed
    # Every listed command answers its own --help: nothing is advertised that is not there.
    for command in ("ls", "sandbox"):
        assert run_toast(command, "--help").returncode == 0
    sandbox_help = run_toast("sandbox", "--help").stdout
    for sub in ("up", "status", "down", "reset", "doctor"):
        assert f"  {sub} " in sandbox_help


def test_ls_reads_the_state_database(tmp_path: Path, isolated_toast: Path) -> None:
    empty = run_toast("--sandbox", "ls", "--json")
    assert empty.returncode == 0 and json.loads(empty.stdout) == []
    assert run_toast("--sandbox", "ls").stdout.strip() == "No deployments yet."

    import asyncio

    from storage import Queries, open_database

    from .helpers.builders import new_deployment

    async def seed() -> None:
        db = await open_database(isolated_toast / "toast.db")
        await Queries(db).create_deployment(new_deployment("shop"), actor="test")
        await db.close()

    asyncio.run(seed())
    table = run_toast("--sandbox", "ls").stdout.splitlines()
    titles = ["NAME", "STATE", "URL", "COMMIT", "AGE", "TYPE", "COST", "REPOSITORY"]
    assert table[0].split() == titles  # the console's columns
    assert table[1].split()[:3] == ["shop", "new", "https://shop.sandbox.test/"]
    assert table[1].split()[-2:] == ["free", "toast-samples/static-site@main"]
    listed = json.loads(run_toast("--sandbox", "ls", "--json").stdout)
    assert listed == [
        {
            "name": "shop",
            "state": "new",
            "url": "https://shop.sandbox.test/",
            "repo": "toast-samples/static-site",
            "branch": "main",
            "profile": "sandbox",
            "build_type": "static",
        }
    ]


def test_no_config_and_no_credentials_means_the_sandbox(tmp_path: Path) -> None:
    config = load_config(tmp_path / "missing.toml")
    assert choose_profile(
        config, requested=None, sandbox=False, environ={"HOME": str(tmp_path)}
    ).is_sandbox
    with pytest.raises(ConfigError, match="no profile is configured"):
        choose_profile(
            config,
            requested=None,
            sandbox=False,
            environ={"HOME": str(tmp_path), "AWS_ACCESS_KEY_ID": "x"},
        )


def test_console_theme_is_read_from_the_config_and_checked(tmp_path: Path) -> None:
    from core.profile.config import ConfigError, load_config

    path = tmp_path / "config.toml"
    path.write_text('[console]\ntheme = "high-contrast"\n')
    assert load_config(path).console.theme == "high-contrast"
    path.write_text('[console]\ntheme = "neon"\n')
    with pytest.raises(ConfigError, match=r"console\.theme: must be one of dark, light"):
        load_config(path)
    path.write_text('[console]\ncolour = "dark"\n')
    with pytest.raises(ConfigError, match=r"console\.colour: unknown key"):
        load_config(path)


async def test_wait_calls_a_deploy_live_only_once_the_deployment_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--wait` returns as soon as the site is live. The engine records the last deciding
    step's success a moment before the deployment's new state: a follower reading between
    the two must not report a deploy live that `toast show` still calls deploying."""
    from cli.follow import LIVE, follow
    from core.runs.step_names import AFTER_LIVE, STEP_NAMES
    from storage import Queries, open_database

    from .helpers.builders import new_deployment

    db = await open_database(tmp_path / "toast.db")
    try:
        q = Queries(db)
        d = await q.create_deployment(new_deployment("race"), actor="test")
        run = await q.queue_run(
            d.id, "deploy", trigger="cli", actor="t", steps=STEP_NAMES["deploy"]
        )
        await q.run_started(run.id)
        await q.update_deployment(d.id, state="deploying")
        for name in STEP_NAMES["deploy"]:
            if name not in AFTER_LIVE["deploy"]:
                await q.step_ended(run.id, name, "succeeded", output={})
        assert await follow(q, run.id, as_json=False, timeout=0.3) == "running"

        await q.update_deployment(d.id, state="live")
        await q.add_event(run.id, "deployed race: https://race.sandbox.test/")
        assert await follow(q, run.id, as_json=False, timeout=30) == LIVE
        assert "deployed race: https://race.sandbox.test/" in capsys.readouterr().out
    finally:
        await db.close()
