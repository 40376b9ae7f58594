"""How a user reaches a deployed site: its URL on AWS; in the sandbox, where nothing is in
public DNS, the one curl command that reaches it (the sandbox's HTTPS port and CA)."""

from __future__ import annotations

import shlex

from core.profile import paths
from core.profile.config import Profile
from core.sandbox.controller import Sandbox


def reach(profile: Profile, fqdn: str) -> tuple[str, str | None]:
    """(URL, None) for a browser; in the sandbox (URL, a curl command line that works)."""
    url = f"https://{fqdn}/"
    if not profile.is_sandbox:
        return url, None

    info = Sandbox(paths.sandbox_dir()).status()
    if info is None or not info.running:
        return url, None
    port = info.https_port
    argv = [
        "curl",
        "--cacert",
        info.ca_bundle,
        "--resolve",
        f"{fqdn}:{port}:127.0.0.1",
        f"https://{fqdn}:{port}/",
    ]
    return url, shlex.join(argv)
