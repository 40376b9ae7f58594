"""GitHub's webhooks, received by aiohttp inside `toast serve`'s event loop.

Every byte is hostile until the signature says otherwise: the body is read (at most
GitHub's 25 MB), its HMAC checked against the deployment's secret in constant time, and
only then parsed. A delivery id is kept once, so a redelivery is answered and ignored. A
push is queued (202) or ignored with its reason (200); a push is never answered 2xx and
dropped.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from core.runs.access import Actor
from core.runs.queue import OperationError, PushOutcome, queue_push
from core.runs.states import Trigger
from core.serve import hook_secrets
from core.serve.pushes import decide_push
from storage import Queries

#: GitHub never sends a payload larger than this.
MAX_BODY = 25 * 1024 * 1024
_DELIVERY = re.compile(r"[A-Za-z0-9-]{1,64}")
_EVENT = re.compile(r"[a-z_]{1,40}")


def signature_ok(secret: str, body: bytes, header: str) -> bool:
    """X-Hub-Signature-256 over the raw body, compared in constant time."""
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), header.encode())


@dataclass
class Bucket:
    """Requests per remote address: a burst, then a steady rate (a flood is refused
    before any work is done for it)."""

    burst: float = 60.0
    per_second: float = 2.0
    tokens: dict[str, tuple[float, float]] = field(default_factory=dict)

    def take(self, who: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        level, then = self.tokens.get(who, (self.burst, now))
        level = min(self.burst, level + (now - then) * self.per_second)
        if len(self.tokens) > 10_000:  # bounded memory under a spray of addresses
            self.tokens.clear()
        if level < 1:
            self.tokens[who] = (level, now)
            return False
        self.tokens[who] = (level - 1, now)
        return True


class Receiver:
    def __init__(self, queries: Queries, say: Callable[[str], None]) -> None:
        self.queries = queries
        self.say = say
        self.bucket = Bucket()

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_post("/github/{name}", self.github)
        app.router.add_get("/", self.hello)
        return app

    async def hello(self, request: web.Request) -> web.Response:
        return web.json_response({"service": "toast serve", "webhooks": "/github/NAME"})

    async def github(self, request: web.Request) -> web.Response:
        remote = request.remote or "?"
        if not self.bucket.take(remote):
            return web.json_response({"error": "too many requests"}, status=429)
        if request.content_length is not None and request.content_length > MAX_BODY:
            return web.json_response({"error": "payload too large"}, status=413)
        name = request.match_info["name"]
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return web.json_response({"error": "payload too large"}, status=413)
        secret = hook_secrets.read(name)
        signature = request.headers.get("X-Hub-Signature-256", "")
        if secret is None or not signature_ok(secret, body, signature):
            # One answer for an unknown name and a bad signature: nothing is learnt.
            self.say(f"webhook from {remote} for {name[:63]!r}: refused (bad signature)")
            return web.json_response({"error": "bad or missing signature"}, status=401)
        delivery = request.headers.get("X-GitHub-Delivery", "")
        event = request.headers.get("X-GitHub-Event", "")
        if not _DELIVERY.fullmatch(delivery) or not _EVENT.fullmatch(event):
            return web.json_response({"error": "missing delivery id or event"}, status=400)
        answer = await self._handle(name, delivery, event, body, remote)
        self.say(
            f"webhook {delivery} from {remote}: {event} for {name}: {answer.outcome} "
            f"({answer.reason})"
        )
        return web.json_response(
            {"outcome": answer.outcome, "reason": answer.reason, "run": answer.run_id},
            status=answer.status,
        )

    async def _handle(
        self, name: str, delivery: str, event: str, body: bytes, remote: str
    ) -> Answer:
        deployment = await self.queries.get_deployment(name)
        deployment_id = deployment.id if deployment is not None else None
        first = await self.queries.record_delivery(
            delivery,
            deployment_id=deployment_id,
            event=event,
            remote=remote,
            outcome="received",
            reason="",
        )
        if not first:
            return Answer(200, "duplicate", "a redelivery of a delivery already handled")

        async def ignore(reason: str, status: int = 200) -> Answer:
            await self.queries.finish_delivery(
                delivery, outcome="ignored", reason=reason, run_id=None
            )
            return Answer(status, "ignored", reason)

        if event == "ping":
            return await ignore("pong: the hook reaches toast serve")
        if event == "pull_request":
            return await ignore(
                "pull requests are recorded, never built (a merge arrives as a push)"
            )
        if event != "push":
            return await ignore(f"{event} events are not used")
        if deployment is None or deployment.state in ("destroyed", "destroying"):
            return await ignore(f"{name} is not deployed")
        try:
            payload = json.loads(body)
        except ValueError:
            return await ignore("the body is not JSON", 400)
        if not isinstance(payload, dict):
            return await ignore("the body is not a JSON object", 400)
        decision = decide_push(payload, deployment.branch)
        if not decision.deploy or decision.sha is None:
            return await ignore(decision.reason)
        pusher = payload.get("pusher") or {}
        who = str(pusher.get("name") or "?")[:100] if isinstance(pusher, dict) else "?"
        actor = Actor(f"{who} via webhook {delivery}", via=Trigger.WEBHOOK)
        try:
            run, outcome = await queue_push(self.queries, name, decision.sha, actor=actor)
        except OperationError as exc:
            await self.queries.finish_delivery(
                delivery, outcome="refused", reason=str(exc), run_id=None
            )
            return Answer(409, "refused", str(exc))
        reason = {
            PushOutcome.QUEUED: f"{decision.reason}; redeploy queued",
            PushOutcome.COALESCED: f"{decision.reason}; joins the redeploy already waiting",
            PushOutcome.LIVE: f"{decision.reason}; already live",
        }[outcome]
        run_id = run.id if run is not None else None
        await self.queries.finish_delivery(
            delivery, outcome=str(outcome), reason=reason, run_id=run_id
        )
        return Answer(200 if outcome == PushOutcome.LIVE else 202, str(outcome), reason, run_id)


@dataclass(frozen=True)
class Answer:
    status: int
    outcome: str
    reason: str
    run_id: int | None = None
