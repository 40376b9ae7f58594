"""Connecting to an instance over SSH, from plain values: where it is, which host keys it
printed at boot, which key logs in. Knows nothing of runs, steps or the ledger."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.host.ssh import Remote, SshError
from core.runs.waiting import WaitTimeout


class ConnectError(Exception):
    """The instance could not be reached; `hint` says what the user can check."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.hint = hint
        super().__init__(message)


@dataclass(frozen=True)
class InstanceAddress:
    instance_id: str
    host: str
    port: int
    user: str
    host_keys: tuple[str, ...]
    key_file: Path


async def connect_instance(
    where: InstanceAddress,
    *,
    timeout: float,
    operator_cidr: str | None = None,
    refused_for: float = 0.0,
    keepalive: float = 15.0,
) -> Remote:
    try:
        return await Remote.connect(
            where.host,
            where.port,
            user=where.user,
            client_key=where.key_file,
            host_keys=list(where.host_keys),
            timeout=timeout,
            refused_for=refused_for,
            keepalive=keepalive,
        )
    except WaitTimeout as exc:
        hint = "check that the instance is running"
        if operator_cidr:
            hint = (
                f"check that {operator_cidr} (operator_cidr) is your address and the "
                "instance is running"
            )
        raise ConnectError(f"cannot reach {where.instance_id} over SSH: {exc}", hint=hint) from exc
    except SshError as exc:
        raise ConnectError(str(exc)) from exc
