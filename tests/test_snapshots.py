"""Every screen of the console at 80x24 and 160x50, against fixed data and a fixed clock
(Textual is pinned in pyproject.toml, so a changed picture is a changed screen).

Update after an intended change: scripts/test tests/test_snapshots.py --snapshot-update
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from core.cloud.log_groups import LOG_SOURCES
from core.profile.config import sandbox_profile
from core.repo.github import Repo
from core.runs.step_names import STEP_NAMES
from core.views.tail import LogLine
from storage import Queries, open_database
from tui.app import ToastApp

from .helpers.builders import new_deployment
from .helpers.waiting import settled
from .helpers.waiting import until as wait_until

NOW = 1_790_000_000.0  # 2026-09-21 14:13:20 UTC
SIZES = [(80, 24), (160, 50)]
CONFIG = """
default_profile = "work"

[profiles.work]
aws_profile = "work"
region = "eu-west-1"
hosted_zone_id = "Z0123456789ABC"
base_domain = "apps.example.com"
instance_type = "t3.small"
"""


async def _seed(path: Path) -> None:
    db = await open_database(path)
    q = Queries(db)
    deploy = STEP_NAMES["deploy"]
    try:
        # old: destroyed long ago (hidden from the list)
        old = await q.create_deployment(new_deployment("old"), actor="ana@console", now=NOW - 90000)
        await q.update_deployment(old.id, state="destroyed")
        # blog: live, two releases, a finished deploy with every step and its calls
        blog = await q.create_deployment(
            new_deployment("blog"), actor="ana@console", now=NOW - 7200
        )
        run = await q.queue_run(
            blog.id, "deploy", trigger="console", actor="ana@console", steps=deploy, now=NOW - 7200
        )
        await q.run_started(run.id, now=NOW - 7199)
        at = NOW - 7199
        for i, step in enumerate(deploy):
            took = (3, 4, 6, 9, 2, 25, 48, 14, 1, 2, 3)[i]
            await q.step_started(run.id, step, now=at)
            at += took
            await q.step_ended(run.id, step, "succeeded", detail=f"{step} done", now=at)
        await q.add_events(
            run.id,
            [
                (NOW - 7198, "launch", "aws", "aws ec2 run_instances (us-east-1)"),
                (NOW - 7190, "address", "aws", "aws ec2 describe_instances (us-east-1)"),
                (NOW - 7189, "address", "aws", "aws ec2 describe_instances (us-east-1)"),
                (NOW - 7180, "dns", "aws", "aws route53 change_resource_record_sets (us-east-1)"),
                (NOW - 7170, "build", "command", "$ sudo -n -- git -C /srv/toast/blog fetch"),
                (NOW - 7169, "build", "info", "$ npm ci"),
                (NOW - 7160, "build", "output", "added 212 packages in 9s"),
                (NOW - 7150, "build", "output", "vite v6.3.5 building for production..."),
                (NOW - 7140, "build", "output", "✓ built in 1.42s"),
            ],
        )
        await q.run_ended(run.id, "succeeded", now=at)
        first = await q.add_release(
            blog.id, "a1b2c3d4e5f6a7b8", "/srv/a", run_id=run.id, now=NOW - 7100
        )
        second = await q.add_release(
            blog.id, "0f9e8d7c6b5a4f3e", "/srv/b", run_id=run.id, now=NOW - 3600
        )
        assert first and second
        await q.update_deployment(
            blog.id, state="live", current_release_id=second.id, cert_expires_at=NOW + 80 * 86400
        )
        for kind, rid in (
            ("instance", "i-0abc123def4567890"),
            ("dns-record", "blog.sandbox.test A"),
            ("log-group", "/toast/blog/app"),
        ):
            await q.record_resource(
                profile="sandbox",
                kind=kind,
                resource_id=rid,
                region="us-east-1",
                deployment_id=blog.id,
                run_id=run.id,
                now=NOW - 7190,
            )
        # shop: failed at https; docs: deploying, at build for 42 s
        shop = await q.create_deployment(
            new_deployment("shop", repo="acme/shop", build_type="node"),
            actor="ben@cli",
            now=NOW - 600,
        )
        run = await q.queue_run(
            shop.id, "deploy", trigger="cli", actor="ben@cli", steps=deploy, now=NOW - 600
        )
        await q.run_started(run.id, now=NOW - 599)
        await q.step_started(run.id, "https", now=NOW - 500)
        await q.step_ended(
            run.id, "https", "failed", error="certbot: too many certificates", now=NOW - 480
        )
        await q.run_ended(run.id, "failed", error="https failed", now=NOW - 470)
        await q.update_deployment(shop.id, state="failed")
        docs = await q.create_deployment(
            new_deployment("docs", instance_type="t3.small"), actor="ana@console", now=NOW - 120
        )
        run = await q.queue_run(
            docs.id, "deploy", trigger="console", actor="ana@console", steps=deploy, now=NOW - 120
        )
        await q.run_started(run.id, now=NOW - 119)
        await q.step_started(run.id, "build", now=NOW - 42)
        await q.update_deployment(docs.id, state="deploying")
    finally:
        await db.close()


@pytest.fixture
def snapshot_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[], ToastApp]:
    config = Path("/tmp/toast-snapshots/config.toml")  # shown on the Profiles screen
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(CONFIG)
    monkeypatch.setenv("TOAST_CONFIG", str(config))
    db = tmp_path / "toast.db"
    asyncio.run(_seed(db))
    return lambda: ToastApp(sandbox_profile(), db, start_sandbox=False, clock=lambda: NOW)


async def _settle(pilot: Any) -> None:
    for _ in range(3):
        await settled(pilot.app)
        await pilot.pause()


def _then(*steps: Callable[[Any], Awaitable[None]]) -> Callable[[Any], Awaitable[None]]:
    async def run(pilot: Any) -> None:
        await _settle(pilot)
        for step in steps:
            await step(pilot)
            await _settle(pilot)

    return run


def keys(*pressed: str) -> Callable[[Any], Awaitable[None]]:
    async def press(pilot: Any) -> None:
        await pilot.press(*pressed)

    return press


def until(check: Callable[[Any], bool]) -> Callable[[Any], Awaitable[None]]:
    """Wait (10 s at most) for what the screen must show before it is pictured."""

    async def wait(pilot: Any) -> None:
        await wait_until(pilot, lambda: check(pilot.app.screen), "the screen's picture", 10)

    return wait


def _detail_loaded(screen: Any) -> bool:
    return "loading" not in str(screen.query_one("#detail-summary").render()) and bool(
        screen.query_one("#steps").row_count
    )


async def _logs_with_lines(pilot: Any) -> None:
    screen = pilot.app.screen
    for n, source in enumerate(LOG_SOURCES):
        pane = screen.pane(source)
        pane.state = "streaming"
        pane.write_lines(
            [
                LogLine(int((NOW - 60 + i) * 1000), source, f"{source} line {i}", f"{n}-{i}", "i-1")
                for i in range(12)
            ]
        )
        pane.view.flush()


async def _repos_listed(pilot: Any) -> None:
    from tui.screens.repos import ReposPage

    screen = pilot.app.screen
    screen.query_one("#repos-status").update("")
    screen.post_message(
        ReposPage(
            [
                Repo("toast-samples/static-site", "file:///git/static-site.git", "main", False),
                Repo("toast-samples/node-server", "file:///git/node-server.git", "main", False),
                Repo("acme/shop", "https://github.com/acme/shop.git", "trunk", True),
            ],
            True,
        )
    )


SCREENS: dict[str, Callable[[Any], Awaitable[None]]] = {
    "deployments": _then(),
    "deployment-detail": _then(keys("enter"), until(_detail_loaded)),
    "deployment-ledger": _then(keys("enter"), until(_detail_loaded), keys("g")),
    "confirm-destroy": _then(keys("D")),
    "wizard": _then(keys("n")),
    "logs": _then(keys("l"), _logs_with_lines),
    "log-line": _then(keys("l"), _logs_with_lines, keys("enter")),
    "repos": _then(keys("2"), _repos_listed),
    "activity": _then(
        keys("3"),
        until(lambda screen: screen.query_one("#audit").row_count == 7),
        keys("down", "down", "down", "down"),
        until(lambda screen: screen.query_one("#calls").row_count > 0),
    ),
    "profiles": _then(keys("4")),
    "command-bar": _then(keys("colon", "l", "o")),
    "help": _then(keys("question_mark")),
}


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("screen", list(SCREENS))
def test_screen(
    snap_compare: Any, snapshot_app: Callable[[], ToastApp], screen: str, size: tuple[int, int]
) -> None:
    assert snap_compare(snapshot_app(), terminal_size=size, run_before=SCREENS[screen])
