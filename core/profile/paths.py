"""Where Toast keeps its files. Every location can be moved with an environment variable."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "toast"


def data_dir() -> Path:
    override = os.environ.get("TOAST_DATA_DIR")
    return Path(override) if override else Path(platformdirs.user_data_dir(APP_NAME))


def private_dir(path: Path) -> Path:
    """`path` as a directory only its owner may enter (0700): made if missing, tightened
    if an older Toast left it open. The data dir holds env values, repository URLs, the
    audit trail and build output."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if path.stat().st_mode & 0o077:
        path.chmod(0o700)
    return path


def ensure_data_dir() -> Path:
    return private_dir(data_dir())


def open_private(path: Path, flags: int = os.O_WRONLY | os.O_CREAT | os.O_APPEND) -> int:
    """A file descriptor on `path`, created 0600 (and tightened if it was looser)."""
    fd = os.open(path, flags, 0o600)
    if os.fstat(fd).st_mode & 0o077:
        os.fchmod(fd, 0o600)
    return fd


def database_path() -> Path:
    override = os.environ.get("TOAST_DB")
    return Path(override) if override else data_dir() / "toast.db"


def config_path() -> Path:
    override = os.environ.get("TOAST_CONFIG")
    if override:
        return Path(override)
    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


def sandbox_dir() -> Path:
    override = os.environ.get("TOAST_SANDBOX_DIR")
    return Path(override) if override else data_dir() / "sandbox"
