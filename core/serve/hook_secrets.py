"""Each deployment's webhook secret: random, in a 0600 file of its own in the data dir,
never in SQLite or the config (the receiver reads it to verify a delivery)."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from pathlib import Path

from core.profile import paths

_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


def secrets_dir() -> Path:
    return paths.private_dir(paths.ensure_data_dir() / "webhooks")


def _path(name: str) -> Path:
    if not _NAME.fullmatch(name):  # a deployment name is a DNS label: no path tricks
        raise ValueError(f"not a deployment name: {name!r}")
    return secrets_dir() / f"{name}.secret"


def create(name: str) -> str:
    """A new secret for `name`'s hook (replacing any earlier one)."""
    value = secrets.token_hex(32)
    path = _path(name)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(value)
    return value


def read(name: str) -> str | None:
    try:
        return _path(name).read_text().strip() or None
    except (OSError, ValueError):
        return None


def drop(name: str) -> None:
    with contextlib.suppress(ValueError):
        _path(name).unlink(missing_ok=True)
