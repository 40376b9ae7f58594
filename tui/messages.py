"""Messages workers post to the UI; widgets change only in their handlers."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual.message import Message

if TYPE_CHECKING:  # storage (aiosqlite) is imported once the first frame is up
    from storage.records import DeploymentSummary


@dataclass
class DeploymentsLoaded(Message):
    """Rows read from SQLite: every one (`full`) or only those that changed."""

    deployments: list[DeploymentSummary]
    full: bool
    #: Set once these rows are on screen (the first screenful, read ahead of the rest).
    shown: asyncio.Event | None = None


@dataclass
class DeploymentsFailed(Message):
    error: str


@dataclass
class SandboxState(Message):
    """The sandbox's state changed: starting, running (with its AWS endpoint), or failed."""

    state: str
    detail: str


@dataclass
class RunQueued(Message):
    """A run was queued from the console (the engine picks it up)."""

    name: str
    kind: str
    run_id: int


@dataclass
class WizardDone(Message):
    """The wizard queued a deploy of `name`: show its detail."""

    name: str
