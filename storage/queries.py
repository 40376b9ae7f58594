"""Every read and write Toast makes to the state database. No business rules live here."""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import asdict
from typing import Any

from storage.db import Database
from storage.records import (
    Deployment,
    DeploymentSummary,
    Event,
    Job,
    NewDeployment,
    Release,
    Resource,
    Run,
    Step,
)

_DEPLOYMENT_COLUMNS = (
    "name, profile, repo, branch, subdomain, fqdn, build_type, node_version, install_cmd, "
    "build_cmd, output_dir, start_cmd, port, instance_type, env_json, health_path, "
    "root_dir, install_dir, plan_json, created_at, updated_at"
)


class Queries:
    """Typed access to the state database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- deployments -------------------------------------------------------------------

    async def create_deployment(
        self, new: NewDeployment, *, actor: str, now: float | None = None
    ) -> Deployment:
        now = time.time() if now is None else now
        values = _deployment_values(new, now)
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                f"INSERT INTO deployments ({_DEPLOYMENT_COLUMNS}) "
                f"VALUES ({', '.join('?' * len(values))})",
                values,
            )
            await _audit(conn, now, actor, "deployment.create", new.name)
            deployment_id = cur.lastrowid
        found = await self.get_deployment(new.name)
        assert found is not None and found.id == deployment_id
        return found

    async def create_deployment_and_run(
        self,
        new: NewDeployment,
        *,
        steps: list[str],
        actor: str,
        trigger: str,
        replace_destroyed: bool = False,
        settings: dict[str, str] | None = None,
        secrets_spool: str | None = None,
        now: float | None = None,
    ) -> tuple[Deployment, Run]:
        """Create (or re-create a destroyed or failed) deployment and queue its first run,
        in one transaction."""
        now = time.time() if now is None else now
        values = _deployment_values(new, now)
        async with self.db.transaction() as conn:
            if replace_destroyed:
                await conn.execute(
                    "UPDATE deployments SET name = name || '~' || id, fqdn = fqdn || '~' || id "
                    "WHERE name = ? AND state IN ('destroyed', 'failed')",
                    (new.name,),
                )
            cur = await conn.execute(
                f"INSERT INTO deployments ({_DEPLOYMENT_COLUMNS}) VALUES "
                f"({', '.join('?' * len(values))})",
                values,
            )
            deployment_id = cur.lastrowid
            cur = await conn.execute(
                "INSERT INTO runs (deployment_id, kind, trigger, created_at, settings_json, "
                "secrets_spool) VALUES (?, 'deploy', ?, ?, ?, ?)",
                (deployment_id, trigger, now, json.dumps(settings or {}), secrets_spool),
            )
            run_id = cur.lastrowid
            assert run_id is not None
            await conn.executemany(
                "INSERT INTO steps (run_id, name) VALUES (?, ?)", [(run_id, s) for s in steps]
            )
            await conn.execute(
                "INSERT INTO jobs (run_id, deployment_id, created_at) VALUES (?, ?, ?)",
                (run_id, deployment_id, now),
            )
            await _audit(conn, now, actor, "run.deploy", new.name, f"run {run_id}")
        deployment = await self.get_deployment(new.name)
        run = await self.get_run(run_id)
        assert deployment is not None and run is not None
        return deployment, run

    async def list_deployments(self, *, include_destroyed: bool = False) -> list[Deployment]:
        where = "" if include_destroyed else "WHERE state != 'destroyed'"
        rows = await self.db.fetchall(f"SELECT * FROM deployments {where} ORDER BY name")
        return [Deployment.from_row(row) for row in rows]

    async def deployment_summaries(
        self,
        *,
        changed_since: float | None = None,
        include_destroyed: bool = True,
        limit: int | None = None,
    ) -> list[DeploymentSummary]:
        """Every deployment with its latest run and that run's running or failed step, in
        name order; with `changed_since`, only rows where something changed after it."""
        # Columns in DeploymentSummary's field order: rows become records positionally.
        rows = await self.db.fetchall(
            f"""
            SELECT d.name, d.state, d.fqdn, d.repo, d.branch, d.profile, d.instance_type,
                d.updated_at, rel.sha, r.kind, r.state, r.commit_sha, r.started_at, r.error,
                s.name, s.state, s.started_at,
                MAX(d.updated_at, COALESCE(r.created_at, 0), COALESCE(r.started_at, 0),
                    COALESCE(r.ended_at, 0), COALESCE(s.started_at, 0),
                    COALESCE(s.ended_at, 0)) AS changed_at
            FROM deployments d
            LEFT JOIN (SELECT deployment_id, MAX(id) AS id FROM runs GROUP BY deployment_id) lr
                ON lr.deployment_id = d.id
            LEFT JOIN runs r ON r.id = lr.id
            LEFT JOIN releases rel ON rel.id = d.current_release_id
            -- the step worth showing: only a queued, running or failed run has one. The
            -- first step that failed, never one cancelled because of it; else the latest
            -- started.
            LEFT JOIN steps s ON r.state IN ('queued', 'running', 'failed') AND s.id = COALESCE(
                (SELECT id FROM steps WHERE run_id = r.id AND state = 'failed'
                    ORDER BY COALESCE(error, '') LIKE 'cancelled:%',
                        COALESCE(ended_at, started_at), id
                    LIMIT 1),
                (SELECT MAX(id) FROM steps WHERE run_id = r.id AND started_at IS NOT NULL))
            WHERE changed_at > ? {"" if include_destroyed else "AND d.state != 'destroyed'"}
            ORDER BY d.name LIMIT ?
            """,
            (changed_since if changed_since is not None else -1.0, -1 if limit is None else limit),
        )
        return [DeploymentSummary(*row) for row in rows]

    async def data_version(self) -> int:
        """SQLite's counter of commits by other connections: unchanged, nothing to re-read."""
        row = await self.db.fetchone("PRAGMA data_version")
        assert row is not None
        return int(row[0])

    async def get_deployment(self, name: str) -> Deployment | None:
        row = await self.db.fetchone("SELECT * FROM deployments WHERE name = ?", (name,))
        return Deployment.from_row(row) if row else None

    async def set_deployment_state(
        self, deployment_id: int, state: str, *, now: float | None = None
    ) -> None:
        now = time.time() if now is None else now
        async with self.db.transaction() as conn:
            await conn.execute(
                "UPDATE deployments SET state = ?, updated_at = ? WHERE id = ?",
                (state, now, deployment_id),
            )

    # -- runs, steps, events -------------------------------------------------------------

    async def queue_run(
        self,
        deployment_id: int,
        kind: str,
        *,
        trigger: str,
        actor: str,
        steps: list[str],
        commit_sha: str | None = None,
        commit_message: str | None = None,
        settings: dict[str, str] | None = None,
        force: bool = False,
        now: float | None = None,
    ) -> Run:
        """Create a run, its pending steps and its job in one transaction."""
        now = time.time() if now is None else now
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "INSERT INTO runs (deployment_id, kind, trigger, commit_sha, commit_message, "
                "created_at, settings_json, force) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    deployment_id,
                    kind,
                    trigger,
                    commit_sha,
                    commit_message,
                    now,
                    json.dumps(settings or {}),
                    int(force),
                ),
            )
            run_id = cur.lastrowid
            assert run_id is not None
            await conn.executemany(
                "INSERT INTO steps (run_id, name) VALUES (?, ?)", [(run_id, s) for s in steps]
            )
            await conn.execute(
                "INSERT INTO jobs (run_id, deployment_id, created_at) VALUES (?, ?, ?)",
                (run_id, deployment_id, now),
            )
            async with conn.execute(
                "SELECT name FROM deployments WHERE id = ?", (deployment_id,)
            ) as cur:
                found = await cur.fetchone()
            target = found[0] if found else str(deployment_id)
            await _audit(conn, now, actor, f"run.{kind}", target, f"run {run_id}")
        run = await self.get_run(run_id)
        assert run is not None
        return run

    async def get_run(self, run_id: int) -> Run | None:
        row = await self.db.fetchone("SELECT * FROM runs WHERE id = ?", (run_id,))
        return Run.from_row(row) if row else None

    async def runs_for(self, deployment_id: int, *, limit: int = 20) -> list[Run]:
        rows = await self.db.fetchall(
            "SELECT * FROM runs WHERE deployment_id = ? ORDER BY id DESC LIMIT ?",
            (deployment_id, limit),
        )
        return [Run.from_row(row) for row in rows]

    async def steps_for(self, run_id: int) -> list[Step]:
        rows = await self.db.fetchall("SELECT * FROM steps WHERE run_id = ? ORDER BY id", (run_id,))
        return [Step.from_row(row) for row in rows]

    async def add_event(
        self,
        run_id: int,
        message: str,
        *,
        step: str | None = None,
        level: str = "info",
        now: float | None = None,
    ) -> None:
        now = time.time() if now is None else now
        await self.add_events(run_id, [(now, step, level, message)])

    async def add_events(
        self, run_id: int, batch: list[tuple[float, str | None, str, str]]
    ) -> None:
        """Many (at, step, level, message) lines of one run in one transaction."""
        async with self.db.transaction() as conn:
            await conn.executemany(
                "INSERT INTO events (run_id, at, step, level, message) VALUES (?, ?, ?, ?, ?)",
                [(run_id, at, step, level, message) for at, step, level, message in batch],
            )

    async def get_deployment_by_id(self, deployment_id: int) -> Deployment | None:
        row = await self.db.fetchone("SELECT * FROM deployments WHERE id = ?", (deployment_id,))
        return Deployment.from_row(row) if row else None

    async def update_deployment(self, deployment_id: int, **values: Any) -> None:
        """Set columns of a deployment (names are checked against the table's columns)."""
        allowed = {
            "state",
            "current_release_id",
            "cert_expires_at",
            "branch",
            "env_json",
            # a redeploy --redetect replaces the build plan
            "build_type",
            "node_version",
            "install_cmd",
            "build_cmd",
            "output_dir",
            "start_cmd",
            "port",
            "root_dir",
            "install_dir",
            "plan_json",
        }
        unknown = set(values) - allowed
        if unknown:
            raise ValueError(f"cannot update deployment columns {sorted(unknown)}")
        assignments = ", ".join(f"{name} = ?" for name in values)
        async with self.db.transaction() as conn:
            await conn.execute(
                f"UPDATE deployments SET {assignments}, updated_at = ? WHERE id = ?",
                (*values.values(), time.time(), deployment_id),
            )

    async def run_started(self, run_id: int, *, now: float | None = None) -> None:
        now = time.time() if now is None else now
        async with self.db.transaction() as conn:
            await conn.execute(
                "UPDATE runs SET state = 'running', started_at = COALESCE(started_at, ?) "
                "WHERE id = ?",
                (now, run_id),
            )

    async def run_ended(
        self, run_id: int, state: str, *, error: str | None = None, now: float | None = None
    ) -> None:
        now = time.time() if now is None else now
        async with self.db.transaction() as conn:
            await conn.execute(
                "UPDATE runs SET state = ?, ended_at = ?, error = ? WHERE id = ?",
                (state, now, error, run_id),
            )

    async def run_interrupted(self, run_id: int) -> None:
        """The engine stopped mid-run: the run waits, queued, for the next engine to resume."""
        async with self.db.transaction() as conn:
            await conn.execute(
                "UPDATE runs SET state = 'queued' WHERE id = ? AND state = 'running'", (run_id,)
            )

    async def set_run_commit(self, run_id: int, sha: str, message: str | None) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                "UPDATE runs SET commit_sha = ?, commit_message = ? WHERE id = ?",
                (sha, message, run_id),
            )

    async def step_started(self, run_id: int, name: str, *, now: float | None = None) -> None:
        now = time.time() if now is None else now
        async with self.db.transaction() as conn:
            await conn.execute(
                "UPDATE steps SET state = 'running', started_at = ?, ended_at = NULL, "
                "error = NULL WHERE run_id = ? AND name = ?",
                (now, run_id, name),
            )

    async def step_ended(
        self,
        run_id: int,
        name: str,
        state: str,
        *,
        output: dict[str, Any] | None = None,
        detail: str | None = None,
        error: str | None = None,
        now: float | None = None,
    ) -> None:
        now = time.time() if now is None else now
        async with self.db.transaction() as conn:
            await conn.execute(
                "UPDATE steps SET state = ?, ended_at = ?, output_json = ?, detail = ?, "
                "error = ? WHERE run_id = ? AND name = ?",
                (
                    state,
                    now,
                    json.dumps(output) if output is not None else None,
                    detail,
                    error,
                    run_id,
                    name,
                ),
            )

    async def events_for(self, run_id: int, *, after_id: int = 0) -> list[Event]:
        rows = await self.db.fetchall(
            "SELECT * FROM events WHERE run_id = ? AND id > ? ORDER BY id", (run_id, after_id)
        )
        return [Event.from_row(row) for row in rows]

    async def latest_run(self, deployment_id: int) -> Run | None:
        row = await self.db.fetchone(
            "SELECT * FROM runs WHERE deployment_id = ? ORDER BY id DESC LIMIT 1", (deployment_id,)
        )
        return Run.from_row(row) if row else None

    async def active_run(self, deployment_id: int) -> Run | None:
        row = await self.db.fetchone(
            "SELECT * FROM runs WHERE deployment_id = ? AND state IN ('queued', 'running') "
            "ORDER BY id LIMIT 1",
            (deployment_id,),
        )
        return Run.from_row(row) if row else None

    # -- releases -----------------------------------------------------------------------

    async def add_release(
        self,
        deployment_id: int,
        sha: str,
        path: str,
        *,
        run_id: int | None,
        attributes: dict[str, Any] | None = None,
        now: float | None = None,
    ) -> Release:
        now = time.time() if now is None else now
        async with self.db.transaction() as conn:
            # A resumed build of the same run records the same directory again.
            await conn.execute(
                "INSERT INTO releases (deployment_id, sha, path, built_at, run_id, attributes_json)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (deployment_id, path) DO UPDATE SET "
                "built_at = excluded.built_at, run_id = excluded.run_id, "
                "attributes_json = excluded.attributes_json",
                (deployment_id, sha, path, now, run_id, json.dumps(attributes or {})),
            )
        row = await self.db.fetchone(
            "SELECT * FROM releases WHERE deployment_id = ? AND path = ?", (deployment_id, path)
        )
        assert row is not None
        return Release.from_row(row)

    async def releases_for(self, deployment_id: int) -> list[Release]:
        rows = await self.db.fetchall(
            "SELECT * FROM releases WHERE deployment_id = ? ORDER BY built_at DESC, id DESC",
            (deployment_id,),
        )
        return [Release.from_row(row) for row in rows]

    async def get_release(self, release_id: int) -> Release | None:
        row = await self.db.fetchone("SELECT * FROM releases WHERE id = ?", (release_id,))
        return Release.from_row(row) if row else None

    async def delete_releases(self, release_ids: list[int]) -> None:
        async with self.db.transaction() as conn:
            await conn.executemany(
                "DELETE FROM releases WHERE id = ?", [(rid,) for rid in release_ids]
            )

    async def set_release_attributes(self, release_id: int, attributes: dict[str, Any]) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                "UPDATE releases SET attributes_json = ? WHERE id = ?",
                (json.dumps(attributes), release_id),
            )

    # -- certificates asked of a CA -----------------------------------------------------

    async def add_certificate_request(
        self,
        fqdn: str,
        ca: str,
        *,
        deployment_id: int | None,
        run_id: int | None,
        now: float | None = None,
    ) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO certificate_requests (fqdn, ca, requested_at, deployment_id, run_id)"
                " VALUES (?, ?, ?, ?, ?)",
                (fqdn, ca, time.time() if now is None else now, deployment_id, run_id),
            )

    async def certificate_requests_since(self, fqdn: str, ca: str, since: float) -> list[float]:
        """When certificates for exactly `fqdn` were requested of `ca` since `since`."""
        rows = await self.db.fetchall(
            "SELECT requested_at FROM certificate_requests WHERE fqdn = ? AND ca = ? "
            "AND requested_at >= ? ORDER BY requested_at",
            (fqdn, ca, since),
        )
        return [float(row[0]) for row in rows]

    # -- the resource ledger ----------------------------------------------------------

    async def record_resource(
        self,
        *,
        profile: str,
        kind: str,
        resource_id: str,
        region: str,
        deployment_id: int | None = None,
        run_id: int | None = None,
        attributes: dict[str, Any] | None = None,
        now: float | None = None,
    ) -> None:
        """Enter a cloud resource into the ledger (idempotent: a resumed run may record twice).

        A resource recorded again belongs to the deployment and run that recorded it last: a
        name deployed, destroyed and deployed again owns its new DNS record and log groups.
        A row that was closed (deleted) starts afresh: its old attributes describe something
        that no longer exists."""
        now = time.time() if now is None else now
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO resources (deployment_id, run_id, profile, kind, resource_id, region,"
                " created_at, attributes_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (kind, resource_id, region) DO UPDATE SET "
                "deployment_id = excluded.deployment_id, run_id = excluded.run_id, "
                "profile = excluded.profile, "
                "created_at = CASE WHEN resources.deleted_at IS NULL THEN resources.created_at "
                "ELSE excluded.created_at END, "
                "attributes_json = CASE WHEN resources.deleted_at IS NULL "
                "THEN json_patch(resources.attributes_json, excluded.attributes_json) "
                "ELSE excluded.attributes_json END, "
                "deleted_at = NULL",
                (
                    deployment_id,
                    run_id,
                    profile,
                    kind,
                    resource_id,
                    region,
                    now,
                    json.dumps(attributes or {}, sort_keys=True),
                ),
            )

    async def mark_resource_deleted(
        self, kind: str, resource_id: str, region: str, *, now: float | None = None
    ) -> None:
        now = time.time() if now is None else now
        async with self.db.transaction() as conn:
            await conn.execute(
                "UPDATE resources SET deleted_at = ? WHERE kind = ? AND resource_id = ? "
                "AND region = ? AND deleted_at IS NULL",
                (now, kind, resource_id, region),
            )

    async def all_resources(self, *, profile: str | None = None) -> list[Resource]:
        if profile is None:
            rows = await self.db.fetchall("SELECT * FROM resources ORDER BY id")
        else:
            rows = await self.db.fetchall(
                "SELECT * FROM resources WHERE profile = ? ORDER BY id", (profile,)
            )
        return [Resource.from_row(row) for row in rows]

    async def ledger_for(self, deployment_id: int) -> list[Resource]:
        """Every resource a deployment's runs created, deleted ones too, oldest first."""
        rows = await self.db.fetchall(
            "SELECT * FROM resources WHERE deployment_id = ? ORDER BY id", (deployment_id,)
        )
        return [Resource.from_row(row) for row in rows]

    async def open_resources(self, deployment_id: int | None = None) -> list[Resource]:
        if deployment_id is None:
            rows = await self.db.fetchall(
                "SELECT * FROM resources WHERE deleted_at IS NULL ORDER BY id"
            )
        else:
            rows = await self.db.fetchall(
                "SELECT * FROM resources WHERE deleted_at IS NULL AND deployment_id = ? "
                "ORDER BY id",
                (deployment_id,),
            )
        return [Resource.from_row(row) for row in rows]

    # -- jobs: runs claimed with a lease ---------------------------------------------

    async def claim_job(
        self, owner: str, *, lease_s: float, now: float | None = None
    ) -> Job | None:
        """Claim the oldest runnable job: queued, or claimed by an owner whose lease ran out.

        A deployment whose other job holds a live lease is skipped: one run per
        deployment at a time.
        """
        now = time.time() if now is None else now
        async with self.db.transaction() as conn:
            async with conn.execute(
                """
                SELECT * FROM jobs AS j
                WHERE (j.state = 'queued' OR (j.state = 'claimed' AND j.lease_expires_at < ?))
                  AND NOT EXISTS (
                    SELECT 1 FROM jobs AS other
                    WHERE other.deployment_id = j.deployment_id AND other.run_id != j.run_id
                      AND other.state = 'claimed' AND other.lease_expires_at >= ?)
                  AND NOT EXISTS (
                    SELECT 1 FROM jobs AS earlier
                    WHERE earlier.deployment_id = j.deployment_id AND earlier.run_id < j.run_id
                      AND earlier.state != 'done')
                ORDER BY j.created_at, j.run_id LIMIT 1
                """,
                (now, now),
            ) as cur:
                row = await cur.fetchone()
            if row is None:
                return None
            await conn.execute(
                "UPDATE jobs SET state = 'claimed', owner = ?, lease_expires_at = ?, "
                "heartbeat_at = ?, attempts = attempts + 1 WHERE run_id = ?",
                (owner, now + lease_s, now, row["run_id"]),
            )
        claimed = await self.db.fetchone("SELECT * FROM jobs WHERE run_id = ?", (row["run_id"],))
        assert claimed is not None
        return Job.from_row(claimed)

    async def heartbeat(
        self, run_id: int, owner: str, *, lease_s: float, now: float | None = None
    ) -> bool:
        """Extend a lease we hold; False means another process has taken the job over."""
        now = time.time() if now is None else now
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "UPDATE jobs SET lease_expires_at = ?, heartbeat_at = ? "
                "WHERE run_id = ? AND owner = ? AND state = 'claimed'",
                (now + lease_s, now, run_id, owner),
            )
            return cur.rowcount == 1

    async def finish_job(self, run_id: int, owner: str) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                "UPDATE jobs SET state = 'done', lease_expires_at = NULL "
                "WHERE run_id = ? AND owner = ?",
                (run_id, owner),
            )

    async def release_job(self, run_id: int, owner: str, *, note: str) -> bool:
        """Give a claimed job back (the engine is stopping): queued again, free for the next
        engine at once. The interrupted attempt does not count against the job."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "UPDATE jobs SET state = 'queued', owner = NULL, lease_expires_at = NULL, "
                "attempts = MAX(attempts - 1, 0), last_error = ? "
                "WHERE run_id = ? AND owner = ? AND state = 'claimed'",
                (note, run_id, owner),
            )
            return cur.rowcount == 1

    async def job_progressed(self, run_id: int, owner: str) -> None:
        """A step finished: the attempts so far were not futile, so the count starts over."""
        async with self.db.transaction() as conn:
            await conn.execute(
                "UPDATE jobs SET attempts = 1, last_error = NULL "
                "WHERE run_id = ? AND owner = ? AND state = 'claimed'",
                (run_id, owner),
            )

    async def live_claims(self, *, now: float | None = None) -> list[tuple[int, str]]:
        """(run_id, owner) of every job held under a lease that has not run out."""
        now = time.time() if now is None else now
        rows = await self.db.fetchall(
            "SELECT run_id, owner FROM jobs WHERE state = 'claimed' AND lease_expires_at > ?",
            (now,),
        )
        return [(int(row["run_id"]), str(row["owner"])) for row in rows]

    async def expire_lease(self, run_id: int, owner: str, *, note: str) -> None:
        """End the lease of an owner known to be dead, so the job can be taken over now."""
        async with self.db.transaction() as conn:
            await conn.execute(
                "UPDATE jobs SET lease_expires_at = 0, last_error = ? "
                "WHERE run_id = ? AND owner = ? AND state = 'claimed'",
                (note, run_id, owner),
            )

    async def unfinished_runs(self) -> list[Run]:
        """Runs whose job is not done: queued, running, or left by an engine that stopped."""
        rows = await self.db.fetchall(
            "SELECT r.* FROM runs AS r JOIN jobs AS j ON j.run_id = r.id "
            "WHERE j.state != 'done' ORDER BY r.id"
        )
        return [Run.from_row(row) for row in rows]

    async def get_job(self, run_id: int) -> Job | None:
        row = await self.db.fetchone("SELECT * FROM jobs WHERE run_id = ?", (run_id,))
        return Job.from_row(row) if row else None

    # -- audit --------------------------------------------------------------------------

    async def add_audit(
        self, actor: str, action: str, target: str, detail: str | None = None
    ) -> None:
        async with self.db.transaction() as conn:
            await _audit(conn, time.time(), actor, action, target, detail)

    async def audit_trail(self, *, limit: int = 100) -> list[dict[str, Any]]:
        """Newest first. Runs audited before names were written there name a deployment id."""
        rows = await self.db.fetchall(
            "SELECT a.id, a.at, a.actor, a.action, COALESCE(d.name, a.target) AS target, "
            "a.detail FROM audit a LEFT JOIN deployments d ON a.action LIKE 'run.%' "
            "AND a.target GLOB '[0-9]*' AND d.id = CAST(a.target AS INTEGER) "
            "ORDER BY a.id DESC LIMIT ?",
            (limit,),
        )
        return [dict(row) for row in rows]

    async def calls_for(self, run_id: int) -> list[Event]:
        """The AWS calls and host commands a run made, in order."""
        rows = await self.db.fetchall(
            "SELECT * FROM events WHERE run_id = ? AND level IN ('aws', 'command') ORDER BY id",
            (run_id,),
        )
        return [Event.from_row(row) for row in rows]


def unfinished_jobs(path: str) -> list[tuple[str | None, float | None]]:
    """(owner, lease_expires_at) of every job not done in the database at `path`.

    Synchronous and read-only: every Toast command asks this at start-up (to resume work a
    dead engine left), so it must cost a millisecond and never create the file."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1)
    except sqlite3.Error:
        return []
    try:
        rows = conn.execute(
            "SELECT owner, lease_expires_at FROM jobs WHERE state != 'done'"
        ).fetchall()
    except sqlite3.Error:  # no jobs table yet, or busy: nothing to resume now
        return []
    finally:
        conn.close()
    return [(row[0], row[1]) for row in rows]


def _deployment_values(new: NewDeployment, now: float) -> tuple[Any, ...]:
    """A new deployment's row, in the order of _DEPLOYMENT_COLUMNS."""
    env_json = json.dumps([asdict(var) for var in new.env])
    return (
        new.name,
        new.profile,
        new.repo,
        new.branch,
        new.subdomain,
        new.fqdn,
        new.build_type,
        new.node_version,
        new.install_cmd,
        new.build_cmd,
        new.output_dir,
        new.start_cmd,
        new.port,
        new.instance_type,
        env_json,
        new.health_path,
        new.root_dir,
        new.install_dir,
        json.dumps(new.plan) if new.plan is not None else None,
        now,
        now,
    )


async def _audit(
    conn: Any, now: float, actor: str, action: str, target: str, detail: str | None = None
) -> None:
    await conn.execute(
        "INSERT INTO audit (at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)",
        (now, actor, action, target, detail),
    )
