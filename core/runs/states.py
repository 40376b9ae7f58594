"""The states and kinds the design is made of, as enums (StrEnum: stored in SQLite as the
same words, and equal to them, so the read side and the schema's CHECKs keep their text)."""

from __future__ import annotations

from enum import StrEnum


class RunKind(StrEnum):
    DEPLOY = "deploy"
    REDEPLOY = "redeploy"
    ROLLBACK = "rollback"
    DESTROY = "destroy"


class RunState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class StepState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"


class DeploymentState(StrEnum):
    NEW = "new"
    DEPLOYING = "deploying"
    LIVE = "live"
    FAILED = "failed"
    DESTROYING = "destroying"
    DESTROY_FAILED = "destroy-failed"
    DESTROYED = "destroyed"


class Trigger(StrEnum):
    """What queued a run: the interface a person used, or (with `toast serve`) a push."""

    CLI = "cli"
    CONSOLE = "console"
    WEBHOOK = "webhook"
    POLL = "poll"
    SSH = "ssh"  # the console or an allowed command, through `toast serve`'s SSH server


#: The state a deployment is left in when a run of this kind fails.
STATE_AFTER_FAILURE = {
    RunKind.DEPLOY: DeploymentState.FAILED,
    RunKind.REDEPLOY: DeploymentState.LIVE,
    RunKind.ROLLBACK: DeploymentState.LIVE,
    RunKind.DESTROY: DeploymentState.DESTROY_FAILED,
}
#: ... and when it succeeds.
STATE_AFTER_SUCCESS = {
    RunKind.DEPLOY: DeploymentState.LIVE,
    RunKind.REDEPLOY: DeploymentState.LIVE,
    RunKind.ROLLBACK: DeploymentState.LIVE,
    RunKind.DESTROY: DeploymentState.DESTROYED,
}
