"""Deployments: created (with their first run), listed, summarised for the list, updated. No
business rules live here."""

from __future__ import annotations

import json
import time
from typing import Any

from storage.queries.base import QueriesBase
from storage.queries.shared import _DEPLOYMENT_COLUMNS, _audit, _deployment_values
from storage.records import (
    Deployment,
    DeploymentSummary,
    NewDeployment,
    Run,
)


class DeploymentQueries(QueriesBase):
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
        row = await self.db.fetchone("SELECT * FROM runs WHERE id = ?", (run_id,))
        assert deployment is not None and row is not None
        return deployment, Run.from_row(row)

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
