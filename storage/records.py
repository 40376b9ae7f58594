"""Plain rows as the rest of Toast sees them. No behaviour beyond conversion."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class EnvVar:
    """An app environment variable. Secret values are never stored: only a reference."""

    name: str
    value: str | None = None
    secret_ref: str | None = None

    @property
    def secret(self) -> bool:
        return self.secret_ref is not None


@dataclass(frozen=True)
class NewDeployment:
    name: str
    profile: str
    repo: str
    branch: str
    subdomain: str
    fqdn: str
    build_type: str
    node_version: str
    install_cmd: str
    build_cmd: str
    instance_type: str
    output_dir: str | None = None
    start_cmd: str | None = None
    port: int | None = None
    env: tuple[EnvVar, ...] = ()
    health_path: str = "/"
    #: The app's directory in the repository ("" is the root), and where its install runs.
    root_dir: str = ""
    install_dir: str = ""
    #: The detected build plan (values and their sources), None when every value was given.
    plan: dict[str, Any] | None = None


@dataclass(frozen=True)
class Deployment(NewDeployment):
    id: int = 0
    state: str = "new"
    current_release_id: int | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    cert_expires_at: float | None = None

    @property
    def has_release(self) -> bool:
        return self.current_release_id is not None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Deployment:
        data = dict(row)
        env = tuple(EnvVar(**item) for item in json.loads(data.pop("env_json")))
        plan = json.loads(data.pop("plan_json", None) or "null")
        return cls(env=env, plan=plan, **data)


@dataclass(frozen=True)
class Run:
    id: int
    deployment_id: int
    kind: str
    trigger: str
    state: str
    created_at: float
    commit_sha: str | None = None
    commit_message: str | None = None
    started_at: float | None = None
    ended_at: float | None = None
    error: str | None = None
    #: Overrides and faults given when the run was queued (never secrets).
    settings: dict[str, str] = field(default_factory=dict)
    #: Rebuild even when the commit is already live.
    force: bool = False
    #: Name of the 0600 file holding this run's secret values until the run ends.
    secrets_spool: str | None = None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Run:
        data = dict(row)
        settings = json.loads(data.pop("settings_json", None) or "{}")
        data["force"] = bool(data.get("force", 0))
        return cls(settings=settings, **data)


@dataclass(frozen=True)
class Step:
    id: int
    run_id: int
    name: str
    state: str
    started_at: float | None = None
    ended_at: float | None = None
    detail: str | None = None
    error: str | None = None
    output: dict[str, Any] | None = None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Step:
        data = dict(row)
        raw = data.pop("output_json", None)
        return cls(output=json.loads(raw) if raw else None, **data)


@dataclass(frozen=True)
class Release:
    id: int
    deployment_id: int
    sha: str
    path: str
    built_at: float
    run_id: int | None
    attributes: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Release:
        data = dict(row)
        attributes = json.loads(data.pop("attributes_json") or "{}")
        return cls(attributes=attributes, **data)


@dataclass(frozen=True)
class Event:
    id: int
    run_id: int
    at: float
    step: str | None
    level: str
    message: str

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Event:
        return cls(**dict(row))


@dataclass(frozen=True)
class Resource:
    id: int
    deployment_id: int | None
    run_id: int | None
    profile: str
    kind: str
    resource_id: str
    region: str
    created_at: float
    deleted_at: float | None
    attributes: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Resource:
        data = dict(row)
        attributes = json.loads(data.pop("attributes_json"))
        return cls(attributes=attributes, **data)


@dataclass(frozen=True)
class Job:
    run_id: int
    deployment_id: int
    state: str
    owner: str | None
    lease_expires_at: float | None
    attempts: int
    last_error: str | None = None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Job:
        data = dict(row)
        return cls(
            run_id=data["run_id"],
            deployment_id=data["deployment_id"],
            state=data["state"],
            owner=data["owner"],
            lease_expires_at=data["lease_expires_at"],
            attempts=data["attempts"],
            last_error=data.get("last_error"),
        )


@dataclass(frozen=True)
class DeploymentSummary:
    """What a list row needs: the deployment and its latest run, with the step that is
    running or that failed."""

    name: str
    state: str
    fqdn: str
    repo: str
    branch: str
    profile: str
    instance_type: str
    updated_at: float
    release_sha: str | None
    run_kind: str | None
    run_state: str | None
    run_commit: str | None
    run_started_at: float | None
    run_error: str | None
    step: str | None
    step_state: str | None
    step_started_at: float | None
    #: The newest time anything in this row changed (for reading only what changed).
    changed_at: float

    @property
    def has_release(self) -> bool:
        return self.release_sha is not None
