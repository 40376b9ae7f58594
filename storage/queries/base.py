"""What every group of queries shares: the database it reads and writes."""

from __future__ import annotations

from storage.db import Database


class QueriesBase:
    def __init__(self, db: Database) -> None:
        self.db = db
