"""Certificates: Let's Encrypt's duplicate-certificate limit is known before a request
would pass it, requests are counted, staging is a profile setting, and renewal is
rehearsed on the host through sudo."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from core.profile import paths
from core.profile.config import load_config
from core.profile.targets import LETS_ENCRYPT_STAGING, resolve_target
from core.sandbox.controller import SandboxInfo
from core.steps.https import DUPLICATE_WINDOW, next_allowed
from storage import Queries, open_database

from .deploy_helpers import deploy, settled, toast


def test_the_limit_is_five_per_seven_days_and_says_when_it_lifts() -> None:
    now = 1_000_000_000.0
    four = [now - 3600 * k for k in range(4)]
    assert next_allowed(four, now) is None
    five = [*four, now - DUPLICATE_WINDOW + 60]
    assert next_allowed(five, now) == now + 60  # the oldest of the five ages out first
    stale = [now - DUPLICATE_WINDOW - 1] * 10
    assert next_allowed(stale, now) is None


def test_staging_is_a_profile_setting(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        '[profiles.rehearse]\nbase_domain = "apps.example.com"\nacme = "staging"\n'
        '[profiles.live]\nbase_domain = "apps.example.com"\n'
    )
    loaded = load_config(config)
    assert resolve_target(loaded.profile("rehearse")).host.acme_server == LETS_ENCRYPT_STAGING
    assert resolve_target(loaded.profile("live")).host.acme_server is None  # production
    config.write_text('[profiles.x]\nbase_domain = "a.com"\nacme = "prod"\n')
    result = toast("--profile", "x", "ls", env={"TOAST_CONFIG": str(config)})
    assert result.returncode == 2
    assert 'profiles.x.acme: must be "production" or "staging"' in result.stderr


async def _requests(fqdn: str, since: float) -> list[float]:
    db = await open_database(paths.database_path())
    try:
        return await Queries(db).certificate_requests_since(fqdn, _ca(), since)
    finally:
        await db.close()


def _ca() -> str:
    from core.profile.config import sandbox_profile

    server = resolve_target(sandbox_profile()).host.acme_server
    assert server
    return server


def test_a_sixth_certificate_in_a_week_is_refused_before_certbot_runs(
    sandbox: SandboxInfo,
) -> None:
    # A first deploy asks for one certificate, counted; renewal is rehearsed through sudo.
    deploy("static-site", "counted")
    assert len(asyncio.run(_requests("counted.sandbox.test", 0))) == 1
    steps = {s["name"]: s for s in settled("counted")["last_run"]["steps"]}
    assert steps["renewal"]["state"] == "succeeded", steps["renewal"]
    assert "renewal rehearsed" in steps["renewal"]["detail"]

    async def fill() -> None:
        db = await open_database(paths.database_path())
        try:
            queries = Queries(db)
            now = time.time()
            for hours in range(5):
                await queries.add_certificate_request(
                    "limited.sandbox.test",
                    _ca(),
                    deployment_id=None,
                    run_id=None,
                    now=now - 3600 * (hours + 1),
                )
        finally:
            await db.close()

    asyncio.run(fill())
    result = toast(
        "--sandbox",
        "deploy",
        "toast-samples/static-site",
        "--subdomain",
        "limited",
        "--wait",
    )
    assert result.returncode == 1
    assert "deploy of limited failed at step https" in result.stderr
    assert "at most 5 certificates for exactly limited.sandbox.test per 7 days" in result.stderr
    assert 'acme = "staging"' in result.stderr
    assert len(asyncio.run(_requests("limited.sandbox.test", 0))) == 5  # none was added
