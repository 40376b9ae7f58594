"""Helpers the query groups share: a deployment's row, an audit entry, and the read-only
probe every command makes at start-up."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict
from typing import Any

from storage.records import (
    NewDeployment,
)

_DEPLOYMENT_COLUMNS = (
    "name, profile, repo, branch, subdomain, fqdn, build_type, node_version, install_cmd, "
    "build_cmd, output_dir, start_cmd, port, instance_type, env_json, health_path, "
    "root_dir, install_dir, plan_json, created_at, updated_at"
)


def unfinished_jobs(path: str) -> list[tuple[str | None, float | None]]:
    """(owner, lease_expires_at) of every job not done in the database at `path`.

    Synchronous and read-only: every Toast command asks this at start-up (to resume work a
    dead engine left), so it must cost a millisecond and never create the file."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1)
    except sqlite3.Error:
        return []
    try:
        rows = conn.execute(
            "SELECT owner, lease_expires_at FROM jobs WHERE state != 'done'"
        ).fetchall()
    except sqlite3.Error:  # no jobs table yet, or busy: nothing to resume now
        return []
    finally:
        conn.close()
    return [(row[0], row[1]) for row in rows]


def _deployment_values(new: NewDeployment, now: float) -> tuple[Any, ...]:
    """A new deployment's row, in the order of _DEPLOYMENT_COLUMNS."""
    env_json = json.dumps([asdict(var) for var in new.env])
    return (
        new.name,
        new.profile,
        new.repo,
        new.branch,
        new.subdomain,
        new.fqdn,
        new.build_type,
        new.node_version,
        new.install_cmd,
        new.build_cmd,
        new.output_dir,
        new.start_cmd,
        new.port,
        new.instance_type,
        env_json,
        new.health_path,
        new.root_dir,
        new.install_dir,
        json.dumps(new.plan) if new.plan is not None else None,
        now,
        now,
    )


async def _audit(
    conn: Any, now: float, actor: str, action: str, target: str, detail: str | None = None
) -> None:
    await conn.execute(
        "INSERT INTO audit (at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)",
        (now, actor, action, target, detail),
    )
