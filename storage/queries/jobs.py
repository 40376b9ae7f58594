"""Jobs: runs claimed by an engine with a lease, renewed, handed back, expired. No business
rules live here."""

from __future__ import annotations

import time

from storage.queries.base import QueriesBase
from storage.records import (
    Job,
    Run,
)


class JobQueries(QueriesBase):
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
