"""Every read and write Toast makes to the state database. No business rules live here."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from typing import Any

from storage.db import Database
from storage.records import Deployment, Job, NewDeployment, Resource, Run, Step

_DEPLOYMENT_COLUMNS = (
    "name, profile, repo, branch, subdomain, fqdn, build_type, node_version, install_cmd, "
    "build_cmd, output_dir, start_cmd, port, instance_type, env_json, created_at, updated_at"
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
        env_json = json.dumps([asdict(var) for var in new.env])
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                f"INSERT INTO deployments ({_DEPLOYMENT_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
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
                    now,
                    now,
                ),
            )
            await _audit(conn, now, actor, "deployment.create", new.name)
            deployment_id = cur.lastrowid
        found = await self.get_deployment(new.name)
        assert found is not None and found.id == deployment_id
        return found

    async def list_deployments(self, *, include_destroyed: bool = False) -> list[Deployment]:
        where = "" if include_destroyed else "WHERE state != 'destroyed'"
        rows = await self.db.fetchall(f"SELECT * FROM deployments {where} ORDER BY name")
        return [Deployment.from_row(row) for row in rows]

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
        now: float | None = None,
    ) -> Run:
        """Create a run, its pending steps and its job in one transaction."""
        now = time.time() if now is None else now
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "INSERT INTO runs (deployment_id, kind, trigger, commit_sha, commit_message, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (deployment_id, kind, trigger, commit_sha, commit_message, now),
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
            await _audit(conn, now, actor, f"run.{kind}", str(deployment_id), f"run {run_id}")
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
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO events (run_id, at, step, level, message) VALUES (?, ?, ?, ?, ?)",
                (run_id, now, step, level, message),
            )

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
        """Enter a cloud resource into the ledger (idempotent: a resumed run may record twice)."""
        now = time.time() if now is None else now
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO resources (deployment_id, run_id, profile, kind, resource_id, region,"
                " created_at, attributes_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (kind, resource_id, region) DO UPDATE SET deleted_at = NULL",
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

    # -- audit --------------------------------------------------------------------------

    async def audit_trail(self, *, limit: int = 100) -> list[dict[str, Any]]:
        rows = await self.db.fetchall("SELECT * FROM audit ORDER BY id DESC LIMIT ?", (limit,))
        return [dict(row) for row in rows]


async def _audit(
    conn: Any, now: float, actor: str, action: str, target: str, detail: str | None = None
) -> None:
    await conn.execute(
        "INSERT INTO audit (at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)",
        (now, actor, action, target, detail),
    )
