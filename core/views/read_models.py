"""What the CLI's `show` and `ls` print and the console's screens show, read once here so
both say the same thing about a deployment."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from core.cloud.pricing import describe_cost

if TYPE_CHECKING:  # the console's list imports this before it opens the database
    from storage import Queries
    from storage.records import Deployment, DeploymentSummary


class NotFound(LookupError):
    pass


def deployment_row(d: Deployment) -> dict[str, Any]:
    """One deployment as a list shows it."""
    return {
        "name": d.name,
        "state": d.state,
        "url": f"https://{d.fqdn}/",
        "repo": d.repo,
        "branch": d.branch,
        "profile": d.profile,
        "build_type": d.build_type,
    }


#: The list's columns: (title, width). Name, state and URL come first.
LIST_COLUMNS = (
    ("Name", 16),
    ("State", 26),
    ("URL", 34),
    ("Commit", 8),
    ("Age", 8),
    ("Type", 10),
    ("Cost", 10),
    ("Repository", 30),
)


def list_cells(s: DeploymentSummary, now: float, *, sandbox: bool = False) -> tuple[str, ...]:
    """A deployment as a row of the list: deploying shows its step and elapsed time,
    failed the step it failed at."""
    commit = s.release_sha or s.run_commit or ""
    return (
        s.name,
        list_state(s, now),
        # A destroyed deployment whose name was reused keeps its fqdn as "name~id".
        f"https://{s.fqdn.partition('~')[0]}/",
        commit[:7],
        age(now - s.updated_at),
        s.instance_type,
        "-" if s.state == "destroyed" else describe_cost(s.instance_type, sandbox=sandbox),
        f"{s.repo}@{s.branch}",
    )


def list_state(s: DeploymentSummary, now: float) -> str:
    running = s.run_state in ("queued", "running")
    if running and s.run_state == "queued":
        return f"{s.run_kind} queued"
    if running:
        since = s.step_started_at or s.run_started_at or now
        step = f" {s.step}" if s.step else ""
        return f"{s.state}{step} {clock(now - since)}"
    if s.state == "failed" and s.step_state == "failed":
        return f"failed at {s.step}"
    return s.state


def is_moving(s: DeploymentSummary) -> bool:
    """A run works on it: its elapsed time changes every second."""
    return s.run_state == "running"


def clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


def age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


async def list_table(
    queries: Queries, *, include_destroyed: bool, sandbox: bool, now: float | None = None
) -> list[tuple[str, ...]]:
    """The list as the console shows it, row by row (`toast ls` prints the same)."""
    at = time.time() if now is None else now
    rows = await queries.deployment_summaries(include_destroyed=include_destroyed)
    return [list_cells(s, at, sandbox=sandbox) for s in rows]


async def list_deployments(queries: Queries, *, include_destroyed: bool) -> list[dict[str, Any]]:
    rows = await queries.list_deployments(include_destroyed=include_destroyed)
    return [deployment_row(d) for d in rows]


async def describe(queries: Queries, name: str) -> dict[str, Any]:
    """A deployment in full: state, URL, instance, releases, certificate, build plan and
    its sources, env (secret values never), the last run and its steps."""
    d = await queries.get_deployment(name)
    if d is None:
        raise NotFound(f"no deployment named {name!r}; see `toast ls`")
    instance = next((r for r in await queries.open_resources(d.id) if r.kind == "instance"), None)
    releases = await queries.releases_for(d.id)
    current = next((r for r in releases if r.id == d.current_release_id), None)
    last = await queries.latest_run(d.id)
    steps = await queries.steps_for(last.id) if last else []
    return {
        **deployment_row(d),
        "root_dir": d.root_dir,
        # The values built with and where each came from (a file, a default or a flag).
        "plan": (d.plan or {}).get("chosen"),
        "instance": instance.resource_id if instance else None,
        "ip": instance.attributes.get("public_ip") if instance else None,
        "current_release": current.sha if current else None,
        "releases": [
            {
                "sha": r.sha,
                "built_at": r.built_at,
                "live": r.id == d.current_release_id,
                "node": r.attributes.get("node"),
            }
            for r in releases
        ],
        "certificate_expires_at": d.cert_expires_at,
        "env": [
            {"name": e.name, "secret": e.secret, "value": "[REDACTED]" if e.secret else e.value}
            for e in d.env
        ],
        "last_run": None
        if last is None
        else {
            "id": last.id,
            "kind": last.kind,
            "trigger": last.trigger,
            "state": last.state,
            "commit": last.commit_sha,
            "error": last.error,
            "started_at": last.started_at,
            "ended_at": last.ended_at,
            "steps": [
                {
                    "name": s.name,
                    "state": s.state,
                    "detail": s.detail,
                    "error": s.error,
                    "seconds": _seconds(s.started_at, s.ended_at),
                }
                for s in steps
            ],
        },
    }


async def ledger(queries: Queries, name: str) -> list[dict[str, Any]]:
    """A deployment's cloud resources as the ledger has them: created, deleted, by which run."""
    d = await queries.get_deployment(name)
    if d is None:
        raise NotFound(f"no deployment named {name!r}; see `toast ls`")
    return [
        {
            "kind": r.kind,
            "id": r.resource_id,
            "region": r.region,
            "created_at": r.created_at,
            "deleted_at": r.deleted_at,
            "run_id": r.run_id,
        }
        for r in await queries.ledger_for(d.id)
    ]


def _seconds(started: float | None, ended: float | None) -> float | None:
    """How long a step took, or has taken so far."""
    if started is None:
        return None
    return round((ended if ended is not None else time.time()) - started, 2)


async def activity(queries: Queries, *, limit: int = 200) -> list[dict[str, Any]]:
    """The audit trail, newest first: who did what to which deployment, when, from where
    (the interface after the @), and the run it queued if any."""
    rows = await queries.audit_trail(limit=limit)
    for row in rows:
        detail = row.get("detail") or ""
        row["run_id"] = (
            int(detail[4:]) if detail.startswith("run ") and detail[4:].isdigit() else None
        )
        actor = str(row["actor"])
        row["via"] = actor.rsplit("@", 1)[1] if "@" in actor else ""
    # Every webhook delivery too, with what became of it and why (ignored pushes included).
    names = {d.id: d.name for d in await queries.list_deployments(include_destroyed=True)}
    for delivery in await queries.deliveries(limit=limit):
        rows.append(
            {
                "id": f"delivery-{delivery.delivery_id}",
                "at": delivery.received_at,
                "actor": f"github ({delivery.remote or '?'})@webhook",
                "action": f"{delivery.event}: {delivery.outcome}",
                "target": names.get(delivery.deployment_id or 0, "?"),
                "detail": delivery.reason,
                "run_id": delivery.run_id,
                "via": "webhook",
            }
        )
    for session in await queries.ssh_sessions(limit=limit):
        ended = "connected now" if session.ended_at is None else "ended"
        rows.append(
            {
                "id": f"ssh-{session.id}",
                "at": session.started_at,
                "actor": f"{session.name}@ssh",
                "action": f"ssh {session.kind}",
                "target": "-",
                "detail": f"{session.role} from {session.address}, key {session.fingerprint}; "
                f"{ended}; {session.bytes_out} bytes sent",
                "run_id": None,
                "via": "ssh",
            }
        )
    rows.sort(key=lambda row: row["at"], reverse=True)
    return rows[:limit]


async def connected_now(queries: Queries) -> list[dict[str, Any]]:
    """Who is in the console over SSH right now, and since when."""
    return [
        {
            "name": s.name,
            "role": s.role,
            "address": s.address,
            "since": s.started_at,
            "kind": s.kind,
        }
        for s in await queries.ssh_sessions(open_only=True)
    ]


async def run_calls(queries: Queries, run_id: int) -> list[dict[str, Any]]:
    """What a run asked of AWS and ran on the host, in order; repeats in a row (a wait
    polling the same call) are folded into one line with a count."""
    calls: list[dict[str, Any]] = []
    for event in await queries.calls_for(run_id):
        last = calls[-1] if calls else None
        if last and last["what"] == event.message and last["step"] == event.step:
            last["times"] += 1
            continue
        calls.append(
            {
                "at": event.at,
                "step": event.step,
                "kind": event.level,
                "what": event.message,
                "times": 1,
            }
        )
    return calls
