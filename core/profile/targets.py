"""Where a profile's deployments run: the AWS endpoint, the host profile, what TLS to trust.

This is the one place that knows the sandbox from AWS; the engine's steps only see a Target.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

from core.host.profiles import HostProfile, ec2_host_profile
from core.profile import paths
from core.profile.config import Profile
from core.sandbox.controller import Sandbox

#: Let's Encrypt's staging directory: the same protocol, untrusted roots, higher limits.
LETS_ENCRYPT_STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory"


class TargetError(Exception):
    pass


@dataclass(frozen=True)
class Target:
    profile: Profile
    host: HostProfile
    #: CA bundle that verifies the deployed sites (None: the system's trust store).
    ca_bundle: str | None
    #: Private key for the profile's EC2 key pair.
    key_file: Path
    #: Fixed credentials (the sandbox's); None means boto3's standard chain.
    credentials: tuple[str, str] | None = None
    #: GitHub's REST API, and the token for it (from GITHUB_TOKEN; never stored by Toast).
    github_api: str = "https://api.github.com"
    github_token: str | None = None


def key_file(profile: Profile) -> Path:
    safe = f"{profile.name}-{profile.region}-{profile.key_pair}".replace("/", "_")
    return paths.data_dir() / "keys" / f"{safe}.pem"


def resolve_target(profile: Profile) -> Target:
    if profile.is_sandbox:
        box = Sandbox(paths.sandbox_dir())
        info = box.status()
        if info is None or not info.running:
            raise TargetError("the sandbox is not running: start it with `toast sandbox up`")
        sandboxed = dataclasses.replace(profile, endpoint_url=info.aws_endpoint)
        token = Path(info.github_token_file).read_text().strip()
        return Target(
            sandboxed,
            box.host_profile(),
            info.ca_bundle,
            key_file(sandboxed),
            credentials=("testing", "testing"),
            github_api=info.github_api,
            github_token=token,
        )
    host = ec2_host_profile()
    if profile.acme == "staging":
        host = dataclasses.replace(host, acme_server=LETS_ENCRYPT_STAGING)
    return Target(
        profile,
        host,
        None,
        key_file(profile),
        github_token=os.environ.get("GITHUB_TOKEN") or None,
    )
