"""What each step hands to the steps after it: one typed output per step (saved as JSON,
read back as the same kind when a run resumes; see core.runs.outputs)."""

from __future__ import annotations

from dataclasses import dataclass, field

from core.runs.outputs import StepOutput


@dataclass(frozen=True, kw_only=True)
class CheckOutput(StepOutput):
    sha: str
    zone_id: str
    subnet_id: str | None
    vpc_id: str | None
    public_ips: bool


@dataclass(frozen=True, kw_only=True)
class SharedOutput(StepOutput):
    key_name: str
    security_group: str
    instance_profile: str
    ssh_from: str


@dataclass(frozen=True, kw_only=True)
class LaunchOutput(StepOutput):
    instance_id: str
    adopted: bool


@dataclass(frozen=True, kw_only=True)
class AddressOutput(StepOutput):
    public_ip: str


@dataclass(frozen=True, kw_only=True)
class DnsOutput(StepOutput):
    fqdn: str
    zone_id: str
    ip: str


@dataclass(frozen=True, kw_only=True)
class SshOutput(StepOutput):
    instance_id: str


@dataclass(frozen=True, kw_only=True)
class BuildOutput(StepOutput):
    sha: str
    #: The commit is live already (a redeploy without --force): nothing was built.
    unchanged: bool = False
    message: str = ""
    release_id: int | None = None
    path: str = ""
    install_seconds: float | None = None
    #: The release whose node_modules were reused instead of installing, if any.
    install_reused_from: str | None = None


@dataclass(frozen=True, kw_only=True)
class HttpsOutput(StepOutput):
    cert_expires_at: float


@dataclass(frozen=True, kw_only=True)
class PickOutput(StepOutput):
    release_id: int
    sha: str


@dataclass(frozen=True, kw_only=True)
class SwitchOutput(StepOutput):
    release_id: int
    previous_release_id: int | None
    sha: str


@dataclass(frozen=True, kw_only=True)
class HealthOutput(StepOutput):
    status: int
    pruned: list[str]


@dataclass(frozen=True, kw_only=True)
class HostCleanupOutput(StepOutput):
    #: What could not be removed from the host (it was unreachable, or refused).
    left_on_host: list[str] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class TeardownOutput(StepOutput):
    deleted: list[str]
    kept_shared: list[str]
