"""Where Toast keeps its files. Every location can be moved with an environment variable."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "toast"


def data_dir() -> Path:
    override = os.environ.get("TOAST_DATA_DIR")
    return Path(override) if override else Path(platformdirs.user_data_dir(APP_NAME))


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
