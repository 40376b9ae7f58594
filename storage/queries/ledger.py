"""The resource ledger: every cloud resource as it was created, and when it was deleted. No
business rules live here."""

from __future__ import annotations

import json
import time
from typing import Any

from storage.queries.base import QueriesBase
from storage.records import (
    Resource,
)


class LedgerQueries(QueriesBase):
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
