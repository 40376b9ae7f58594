"""The SSH console's connection log. No business rules live here."""

from __future__ import annotations

import time
from dataclasses import dataclass

from storage.queries.base import QueriesBase


@dataclass(frozen=True)
class SshSession:
    id: int
    name: str
    role: str
    fingerprint: str
    address: str
    kind: str
    started_at: float
    ended_at: float | None
    bytes_in: int
    bytes_out: int


class SessionQueries(QueriesBase):
    async def session_started(
        self, *, name: str, role: str, fingerprint: str, address: str, kind: str
    ) -> int:
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "INSERT INTO ssh_sessions (name, role, fingerprint, address, kind, started_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (name, role, fingerprint, address, kind, time.time()),
            )
            return int(cur.lastrowid or 0)

    async def session_ended(self, session_id: int, *, bytes_in: int, bytes_out: int) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                "UPDATE ssh_sessions SET ended_at = ?, bytes_in = ?, bytes_out = ? "
                "WHERE id = ? AND ended_at IS NULL",
                (time.time(), bytes_in, bytes_out, session_id),
            )

    async def ssh_sessions(self, *, open_only: bool = False, limit: int = 100) -> list[SshSession]:
        where = "WHERE ended_at IS NULL" if open_only else ""
        rows = await self.db.fetchall(
            f"SELECT * FROM ssh_sessions {where} ORDER BY started_at DESC LIMIT ?", (limit,)
        )
        return [SshSession(**dict(row)) for row in rows]

    async def close_open_sessions(self) -> None:
        """Sessions a stopped server left open end now (they ended with it)."""
        async with self.db.transaction() as conn:
            await conn.execute(
                "UPDATE ssh_sessions SET ended_at = ? WHERE ended_at IS NULL", (time.time(),)
            )
