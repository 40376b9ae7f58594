"""This installation of Toast: a random id made once and kept in the data dir.

Every cloud resource Toast creates carries it (as a tag, and in the DNS ownership record),
so `toast gc` and the DNS checks can tell this installation's resources from those of
another installation sharing the AWS account, and from resources made by hand.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from core.profile import paths

TAG = "toast:installation"
#: On every resource Toast creates, beside TAG: how gc tells Toast's resources apart.
MANAGED_BY = ("toast:managed-by", "toast")


def id_path() -> Path:
    return paths.data_dir() / "installation-id"


def installation_id() -> str:
    """The id, created on first use. Two processes racing to create it agree on one."""
    path = id_path()
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    paths.private_dir(path.parent)
    tmp = path.with_name(f".installation-id.{os.getpid()}")
    with os.fdopen(paths.open_private(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), "w") as out:
        out.write(secrets.token_hex(8) + "\n")
    try:
        os.link(tmp, path)  # atomic, and fails if another process got there first
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return _read(path)


def _read(path: Path) -> str:
    value = path.read_text().strip()
    if not value:
        raise FileNotFoundError(path)
    return value
