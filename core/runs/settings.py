"""A run's settings: its profile's, with the overrides given when the run was queued.

The engine that executes a run is often a detached process started by some other command,
so it must never read tuning from its own environment: a TOAST_SSH_TIMEOUT set for one
command would silently apply to every run that engine picks up. Instead the command that
queues a run captures its overrides into the run (SQLite), and the run reads only those.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from core.cloud.faults import Faults

#: Environment variables a queuing command may set for the runs it queues, and their meaning.
OVERRIDES = {
    "TOAST_SSH_TIMEOUT": "seconds to wait for SSH to an instance (default 300)",
    "TOAST_SSH_KEEPALIVE": "seconds between SSH keepalives; a host silent for four is "
    "given up (default 15)",
    "TOAST_GIT_STALL": "seconds a fetch may receive nothing before it is given up (default 60)",
    "TOAST_HEALTH_TIMEOUT": "seconds the health check may take (default 120)",
    "TOAST_AWS_MAX_ATTEMPTS": "attempts per AWS call, retries included (default 8)",
    "TOAST_FAULTS": "fault injection for rehearsals and tests (see core/cloud/faults.py)",
}


def capture_overrides(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The overrides set in the queuing command's environment (never secrets)."""
    env = os.environ if environ is None else environ
    return {name: env[name] for name in OVERRIDES if env.get(name)}


@dataclass(frozen=True)
class RunSettings:
    ssh_timeout: float = 300.0
    ssh_keepalive: float = 15.0
    git_stall: float = 60.0
    health_timeout: float = 120.0
    aws_max_attempts: int = 8
    faults: Faults = field(default_factory=Faults)

    @classmethod
    def from_run(
        cls, overrides: Mapping[str, str], engine_faults: Faults | None = None
    ) -> RunSettings:
        def number(name: str, default: float) -> float:
            try:
                return float(overrides[name])
            except (KeyError, ValueError):
                return default

        faults = Faults(overrides.get("TOAST_FAULTS", ""))
        if engine_faults is not None:
            faults = faults + engine_faults
        return cls(
            ssh_timeout=number("TOAST_SSH_TIMEOUT", cls.ssh_timeout),
            ssh_keepalive=number("TOAST_SSH_KEEPALIVE", cls.ssh_keepalive),
            git_stall=number("TOAST_GIT_STALL", cls.git_stall),
            health_timeout=number("TOAST_HEALTH_TIMEOUT", cls.health_timeout),
            aws_max_attempts=int(number("TOAST_AWS_MAX_ATTEMPTS", cls.aws_max_attempts)),
            faults=faults,
        )


#: What a detached engine keeps of the environment of the command that started it: where
#: Toast's files are, and what any process needs. Not AWS_PROFILE, not TOAST_* tuning.
ENGINE_ENV_KEEP = (
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LC_ALL",
    "TZ",
    "TMPDIR",
    "XDG_CONFIG_HOME",
    "XDG_DATA_HOME",
    "TOAST_DATA_DIR",
    "TOAST_DB",
    "TOAST_CONFIG",
    "TOAST_SANDBOX_DIR",
    "TOAST_LEASE_S",
    "TOAST_MAX_ATTEMPTS",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_EC2_METADATA_DISABLED",
    "GITHUB_TOKEN",
    "VIRTUAL_ENV",
)


def engine_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    env = os.environ if environ is None else environ
    return {name: env[name] for name in ENGINE_ENV_KEEP if name in env}
