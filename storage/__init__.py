"""Toast's state: one SQLite file, shared by every Toast process. No business logic here."""

from storage.db import Database, StorageError, migrate_to, open_database
from storage.queries import Queries

__all__ = ["Database", "Queries", "StorageError", "migrate_to", "open_database"]
