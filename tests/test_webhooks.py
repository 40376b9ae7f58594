"""The webhook receiver over real HTTP on loopback (aiohttp serving, httpx asking), against
a real SQLite file: it authenticates every byte before reading it, keeps each delivery once,
queues a push to the deployment's branch and ignores the rest with the reason, and pushes
that arrive during a run coalesce into one follow-up of the newest commit."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from core.profile import paths
from core.runs.access import Actor
from core.runs.queue import PushOutcome, queue_push
from core.runs.states import Trigger
from core.serve import hook_secrets
from core.serve.pushes import decide_push
from core.serve.receiver import MAX_BODY, Receiver, signature_ok
from storage import Queries, open_database

from .helpers.builders import live_deployment

SHA = "b" * 40


def test_githubs_documented_test_vector_verifies() -> None:
    secret = "It's a Secret to Everybody"
    good = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert signature_ok(secret, b"Hello, World!", good)
    assert not signature_ok(secret, b"Hello, World?", good)
    assert not signature_ok(secret, b"Hello, World!", "")
    assert not signature_ok("another secret", b"Hello, World!", good)


def push(ref: str = "refs/heads/main", after: str = SHA, **extra: Any) -> dict[str, Any]:
    return {
        "ref": ref,
        "before": "a" * 40,
        "after": after,
        "deleted": False,
        "forced": False,
        "head_commit": {"id": after, "message": "Change the greeting"},
        "pusher": {"name": "ana"},
        **extra,
    }


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (push(ref="refs/heads/dev"), "a push to dev, not to main"),
        (push(ref="refs/tags/v1.0"), "a tag (v1.0), not a branch"),
        (push(after="0" * 40, deleted=True), "branch main was deleted"),
        (
            push(head_commit={"message": "Docs only [skip deploy]"}),
            "says [skip deploy]",
        ),
        (push(head_commit={"message": "WIP [skip ci]"}), "says [skip ci]"),
    ],
)
def test_pushes_that_are_not_deployed_say_why(payload: dict[str, Any], reason: str) -> None:
    decision = decide_push(payload, "main")
    assert not decision.deploy and reason in decision.reason


def test_a_force_push_deploys_the_new_head() -> None:
    decision = decide_push(push(forced=True), "main")
    assert decision.deploy and decision.sha == SHA and "(forced)" in decision.reason


@pytest.fixture
async def queries(tmp_path: Path) -> AsyncIterator[Queries]:
    await live_deployment(paths.database_path(), "blog")
    db = await open_database(paths.database_path())
    try:
        yield Queries(db)
    finally:
        await db.close()


@pytest.fixture
async def receiver(queries: Queries) -> AsyncIterator[tuple[str, list[str]]]:
    said: list[str] = []
    runner = web.AppRunner(Receiver(queries, said.append).app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}", said
    finally:
        await runner.cleanup()


def signed(secret: str, body: bytes, event: str, delivery: str) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": "sha256="
        + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
    }


async def runs_of(queries: Queries) -> list[Any]:
    deployment = await queries.get_deployment("blog")
    assert deployment is not None
    return await queries.runs_for(deployment.id)


async def test_every_delivery_is_authenticated_before_anything_is_read_or_queued(
    queries: Queries, receiver: tuple[str, list[str]]
) -> None:
    base, said = receiver
    secret = hook_secrets.create("blog")
    body = json.dumps(push()).encode()
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        missing = await client.post(
            "/github/blog", content=body, headers={"X-GitHub-Event": "push"}
        )
        assert missing.status_code == 401
        forged = await client.post(
            "/github/blog", content=body, headers=signed("guessed", body, "push", "d-forged")
        )
        assert forged.status_code == 401
        unknown = await client.post(
            "/github/nobody", content=body, headers=signed(secret, body, "push", "d-unknown")
        )
        assert unknown.status_code == 401  # an unknown name is refused as a bad signature
        assert await runs_of(queries) == [] and await queries.deliveries() == []
        assert any("refused (bad signature)" in line and "127.0.0.1" in line for line in said)

        too_big = await client.post(
            "/github/blog",
            content=b"x" * (MAX_BODY + 1),
            headers=signed(secret, b"", "push", "d-big"),
        )
        assert too_big.status_code == 413

        ping = await client.post(
            "/github/blog", content=b"{}", headers=signed(secret, b"{}", "ping", "d-ping")
        )
        assert ping.status_code == 200 and ping.json()["outcome"] == "ignored"

        queued = await client.post(
            "/github/blog", content=body, headers=signed(secret, body, "push", "d-1")
        )
        assert queued.status_code == 202, queued.text
        again = await client.post(
            "/github/blog", content=body, headers=signed(secret, body, "push", "d-1")
        )
        assert again.status_code == 200 and again.json()["outcome"] == "duplicate"

        other = json.dumps(push(ref="refs/heads/dev")).encode()
        ignored = await client.post(
            "/github/blog", content=other, headers=signed(secret, other, "push", "d-2")
        )
        assert ignored.status_code == 200
        assert ignored.json()["reason"] == "a push to dev, not to main"

        pr = json.dumps({"action": "opened", "number": 7}).encode()
        pull = await client.post(
            "/github/blog", content=pr, headers=signed(secret, pr, "pull_request", "d-pr")
        )
        assert pull.status_code == 200 and "never built" in pull.json()["reason"]

    runs = await runs_of(queries)
    assert len(runs) == 1  # the one push; the redelivery, the branch and the PR queued nothing
    assert (runs[0].kind, runs[0].trigger, runs[0].commit_sha) == ("redeploy", "webhook", SHA)
    kept = {d.delivery_id: d for d in await queries.deliveries()}
    assert kept["d-1"].outcome == "queued" and kept["d-1"].run_id == runs[0].id
    assert kept["d-2"].reason == "a push to dev, not to main"
    assert kept["d-pr"].outcome == "ignored"
    audit = await queries.audit_trail()
    assert any("ana via webhook d-1" in str(row["actor"]) for row in audit)


async def test_pushes_during_a_run_coalesce_into_one_follow_up_of_the_newest(
    queries: Queries,
) -> None:
    actor = Actor("ana via webhook", via=Trigger.WEBHOOK)
    first, outcome = await queue_push(queries, "blog", "1" * 40, actor=actor)
    assert outcome == PushOutcome.QUEUED and first is not None
    job = await queries.claim_job("engine-a", lease_s=60)  # the first redeploy starts
    assert job is not None and job.run_id == first.id
    await queries.run_started(first.id)
    outcomes = []
    for sha in ("2" * 40, "3" * 40, "4" * 40):
        _, outcome = await queue_push(queries, "blog", sha, actor=actor)
        outcomes.append(outcome)
    assert outcomes == [PushOutcome.QUEUED, PushOutcome.COALESCED, PushOutcome.COALESCED]
    runs = await runs_of(queries)
    waiting = [r for r in runs if r.state == "queued"]
    assert len(waiting) == 1 and waiting[0].commit_sha == "4" * 40
    # The same commit as the run in progress is not queued twice.
    _, same = await queue_push(queries, "blog", "1" * 40, actor=actor)
    assert same == PushOutcome.COALESCED
    assert len(await runs_of(queries)) == 2
