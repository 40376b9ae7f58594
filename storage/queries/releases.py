"""Releases of a deployment, and the certificates asked of a CA for its name. No business rules
live here."""

from __future__ import annotations

import json
import time
from typing import Any

from storage.queries.base import QueriesBase
from storage.records import (
    Release,
)


class ReleaseQueries(QueriesBase):
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
