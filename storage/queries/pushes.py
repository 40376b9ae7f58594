"""Pushes: webhook deliveries, the poller's branch heads, and the one queued redeploy a
push may join. No business rules live here."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass

from storage.queries.base import QueriesBase
from storage.queries.shared import _audit
from storage.records import Run


@dataclass(frozen=True)
class Delivery:
    delivery_id: str
    deployment_id: int | None
    event: str
    received_at: float
    remote: str | None
    outcome: str
    reason: str
    run_id: int | None


@dataclass(frozen=True)
class BranchHead:
    deployment_id: int
    sha: str | None
    etag: str | None
    checked_at: float


class PushQueries(QueriesBase):
    async def record_delivery(
        self,
        delivery_id: str,
        *,
        deployment_id: int | None,
        event: str,
        remote: str | None,
        outcome: str,
        reason: str,
        run_id: int | None = None,
        now: float | None = None,
    ) -> bool:
        """Keep a delivery; False when its id was seen before (a redelivery)."""
        try:
            async with self.db.transaction() as conn:
                await conn.execute(
                    "INSERT INTO webhook_deliveries (delivery_id, deployment_id, event, "
                    "received_at, remote, outcome, reason, run_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        delivery_id,
                        deployment_id,
                        event,
                        time.time() if now is None else now,
                        remote,
                        outcome,
                        reason,
                        run_id,
                    ),
                )
        except sqlite3.IntegrityError:
            return False
        return True

    async def finish_delivery(
        self, delivery_id: str, *, outcome: str, reason: str, run_id: int | None
    ) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                "UPDATE webhook_deliveries SET outcome = ?, reason = ?, run_id = ? "
                "WHERE delivery_id = ?",
                (outcome, reason, run_id, delivery_id),
            )

    async def deliveries(self, *, limit: int = 100) -> list[Delivery]:
        rows = await self.db.fetchall(
            "SELECT * FROM webhook_deliveries ORDER BY received_at DESC LIMIT ?", (limit,)
        )
        return [Delivery(**dict(row)) for row in rows]

    async def branch_head(self, deployment_id: int) -> BranchHead | None:
        row = await self.db.fetchone(
            "SELECT * FROM branch_heads WHERE deployment_id = ?", (deployment_id,)
        )
        return BranchHead(**dict(row)) if row else None

    async def set_branch_head(
        self, deployment_id: int, *, sha: str | None, etag: str | None, now: float | None = None
    ) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO branch_heads (deployment_id, sha, etag, checked_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT(deployment_id) DO UPDATE SET "
                "sha = excluded.sha, etag = excluded.etag, checked_at = excluded.checked_at",
                (deployment_id, sha, etag, time.time() if now is None else now),
            )

    async def waiting_redeploy(self, deployment_id: int) -> Run | None:
        """A redeploy of the deployment that is queued and not yet claimed by an engine:
        the run a newer push joins instead of queueing another."""
        row = await self.db.fetchone(
            "SELECT r.* FROM runs r JOIN jobs j ON j.run_id = r.id "
            "WHERE r.deployment_id = ? AND r.kind = 'redeploy' AND r.state = 'queued' "
            "AND j.state = 'queued' ORDER BY r.id DESC LIMIT 1",
            (deployment_id,),
        )
        return Run.from_row(row) if row else None

    async def retarget_run(self, run_id: int, sha: str, actor: str) -> bool:
        """Point a still-queued run at a newer commit; False if an engine claimed it since."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "UPDATE runs SET commit_sha = ? WHERE id = ? AND state = 'queued' "
                "AND EXISTS (SELECT 1 FROM jobs WHERE run_id = ? AND state = 'queued')",
                (sha, run_id, run_id),
            )
            if cur.rowcount != 1:
                return False
            await _audit(conn, time.time(), actor, "run.retargeted", str(run_id), sha)
            return True
