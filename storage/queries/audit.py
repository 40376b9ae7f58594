"""The audit trail: who did what, from which interface. No business rules live here."""

from __future__ import annotations

import time
from typing import Any

from storage.queries.base import QueriesBase
from storage.queries.shared import _audit


class AuditQueries(QueriesBase):
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
