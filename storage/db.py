"""One SQLite file shared by every Toast process: opening, pragmas, migrations, transactions."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from storage.migrations import LATEST_VERSION, MIGRATIONS

# How long one statement waits for another process's write lock inside SQLite.
BUSY_TIMEOUT_MS = 5_000
# How long we keep retrying BEGIN IMMEDIATE before giving up with a clear error.
LOCK_GIVE_UP_S = 60.0


class StorageError(Exception):
    """The state database could not be opened or used."""


class Database:
    """An open state database. Writes go through `transaction()`; reads may use `fetch*`."""

    def __init__(self, conn: aiosqlite.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path
        self._write_lock = asyncio.Lock()

    async def close(self) -> None:
        await self.conn.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """A write transaction: every statement inside commits together or not at all.

        BEGIN IMMEDIATE takes the write lock up front, so a transaction never has to
        upgrade a read snapshot into a write (the case SQLite cannot wait out and
        reports as "database is locked"). Contention beyond the busy timeout is retried
        with jittered backoff.
        """
        async with self._write_lock:
            # BEGIN runs on aiosqlite's thread whatever befalls the task awaiting it: a task
            # cancelled there (a step cancelled because another failed) must still end the
            # transaction it began, or every later write on this connection fails with
            # "cannot start a transaction within a transaction".
            begin = asyncio.ensure_future(_begin_immediate(self.conn))
            try:
                await asyncio.shield(begin)
            except asyncio.CancelledError:
                with contextlib.suppress(Exception):
                    await begin
                    await self.conn.rollback()
                raise
            try:
                yield self.conn
            except BaseException:
                await self.conn.rollback()
                raise
            else:
                await self.conn.commit()

    async def fetchall(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        async with self.conn.execute(sql, params) as cur:
            return list(await cur.fetchall())

    async def fetchone(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Row | None:
        async with self.conn.execute(sql, params) as cur:
            row: sqlite3.Row | None = await cur.fetchone()
            return row

    async def schema_version(self) -> int:
        row = await self.fetchone("PRAGMA user_version")
        assert row is not None
        return int(row[0])


async def _begin_immediate(conn: aiosqlite.Connection) -> None:
    deadline = time.monotonic() + LOCK_GIVE_UP_S
    delay = 0.005
    while True:
        try:
            await conn.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if time.monotonic() > deadline:
                raise StorageError(
                    f"the state database stayed locked by another process for "
                    f"{LOCK_GIVE_UP_S:.0f} s; check for a stuck toast process"
                ) from exc
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 0.25)


def _private(db_path: Path) -> None:
    """The database holds env values, repository URLs, the audit trail and build output:
    0600 from its first byte. SQLite gives its -wal and -shm files the database's mode.

    The file is opened here only to create it: closing any descriptor of a database file
    drops every POSIX lock this process holds on it, so a second connection in one
    process (`toast serve`: the engine and the webhook receiver) must never do that to
    the first one's locks (SQLite's WAL index would then be rebuilt under it)."""
    if not db_path.exists():
        with contextlib.suppress(FileExistsError):
            os.close(os.open(db_path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
    for path in (
        db_path,
        db_path.with_name(db_path.name + "-wal"),
        db_path.with_name(db_path.name + "-shm"),
    ):
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_mode & 0o077:
                path.chmod(0o600)


async def open_database(path: str | os.PathLike[str], *, migrate: bool = True) -> Database:
    """Open (creating if needed) the database at `path` and bring its schema up to date."""
    db_path = Path(path)
    try:
        db_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        _private(db_path)
        conn = await aiosqlite.connect(db_path, isolation_level=None)
    except (OSError, sqlite3.Error) as exc:
        raise StorageError(f"cannot open the state database {db_path}: {exc}") from exc
    conn.row_factory = sqlite3.Row
    try:
        await conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        await _set_wal(conn)
        await conn.execute("PRAGMA foreign_keys = ON")
        await conn.execute("PRAGMA synchronous = NORMAL")
        db = Database(conn, db_path)
        if migrate:
            await migrate_to(db, LATEST_VERSION)
    except BaseException:
        await conn.close()
        raise
    return db


async def _set_wal(conn: aiosqlite.Connection) -> None:
    # Switching to WAL needs a moment of exclusive access; another opener may hold it.
    deadline = time.monotonic() + LOCK_GIVE_UP_S
    while True:
        try:
            async with conn.execute("PRAGMA journal_mode = WAL") as cur:
                row = await cur.fetchone()
            if row is None or str(row[0]).lower() != "wal":
                raise StorageError(f"the state database cannot use WAL mode (got {row!r})")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.02)


async def migrate_to(db: Database, target: int) -> int:
    """Apply migrations up to `target`, each in its own transaction; returns the new version.

    Safe when several processes open a fresh file at once: the version is re-read
    under the write lock, so each migration runs exactly once.
    """
    if target > LATEST_VERSION:
        raise StorageError(f"no migration {target}; latest is {LATEST_VERSION}")
    current = await db.schema_version()
    if current > LATEST_VERSION:
        raise StorageError(
            f"{db.path} was written by a newer Toast (schema {current}, this one knows "
            f"{LATEST_VERSION}); upgrade Toast"
        )
    while current < target:
        async with db.transaction() as conn:
            async with conn.execute("PRAGMA user_version") as cur:
                row = await cur.fetchone()
            current = int(row[0]) if row else 0
            if current >= target:
                break
            for statement in MIGRATIONS[current]:
                await conn.execute(statement)
            current += 1
            await conn.execute(f"PRAGMA user_version = {current}")
    return current
