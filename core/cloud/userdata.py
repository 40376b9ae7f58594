"""The small first-boot script for an instance: prepares the host, carries no secrets.

It runs in named stages. Each stage writes its state to the host's boot status file
(`running <stage>`, `failed <stage> <status>`, `done`) and its output to `<stage>.log`
beside it, so the engine, polling over SSH, reports a failing package install within
seconds, with the command's own words, instead of waiting out a timeout for a marker.
"""

from __future__ import annotations

import shlex

from core.host.profiles import HostProfile
from core.repo.node_versions import packages

USERDATA_LIMIT = 16 * 1024
HEADER = "# Toast host preparation"
STAGES = ("packages", "node", "directories", "services")


def render_userdata(
    host: HostProfile, *, node_version: str, instance_tag: str, fail_stage: str | None = None
) -> str:
    """Install nginx, certbot, Node and the CloudWatch agent, create Toast's directories,
    start the services; then write the completion marker. Deployment-specific files (env,
    site config, agent config) arrive later over SSH, never through UserData.
    `fail_stage` (fault injection) makes that stage fail as a broken package would."""
    q = shlex.quote
    if fail_stage is not None and fail_stage not in STAGES:
        raise ValueError(f"no UserData stage {fail_stage!r} (stages: {', '.join(STAGES)})")
    marker = host.ready_marker("$INSTANCE_ID")
    status_dir = host.boot_status_dir("$INSTANCE_ID")
    dirs = " ".join(
        q(d)
        for d in (
            host.root,
            host.acme_webroot,
            host.log_dir,
            host.nginx_sites_dir,
            host.agent_config_dir,
        )
    )
    owned = " ".join(q(d) for d in (host.root, host.log_dir, host.acme_webroot))
    node_packages = " ".join(q(p) for p in packages(node_version))
    bodies = {
        "packages": f"dnf install -y nginx certbot {node_packages} amazon-cloudwatch-agent git "
        "cronie",
        "node": f"{{ alternatives --set node /usr/bin/node-{q(node_version)} 2>/dev/null || true; "
        "} && node --version && npm --version",
        "directories": f"mkdir -p {dirs} && chown {q(host.ssh_user)}: {owned}"
        + (
            f" && {{ id -u {q(host.app_user)} >/dev/null 2>&1 || useradd --system "
            f"--no-create-home --home-dir / --shell /sbin/nologin {q(host.app_user)} || "
            f"id -u {q(host.app_user)}; }}"
            if host.app_user
            else ""
        ),
        "services": "systemctl enable --now nginx crond && "
        "{ systemctl enable --now certbot-renew.timer || true; }",
    }
    if fail_stage is not None:
        bodies[fail_stage] = f"echo 'toast: injected failure in stage {fail_stage}' >&2 && exit 1"
    stages = "\n".join(f"stage {name} {q(bodies[name])}" for name in STAGES)
    script = f"""#!/bin/bash
{HEADER} ({instance_tag}). No secrets here: UserData is readable by anyone
# who may describe the instance and by every process on it.
set -uo pipefail
if [ -z "${{INSTANCE_ID:-}}" ]; then  # IMDSv2: a session token first
  TOKEN=$(curl -sX PUT http://169.254.169.254/latest/api/token \\
    -H 'X-aws-ec2-metadata-token-ttl-seconds: 300')
  INSTANCE_ID=$(curl -s -H "X-aws-ec2-metadata-token: $TOKEN" \\
    http://169.254.169.254/latest/meta-data/instance-id)
fi
STATUS_DIR="{status_dir}"
mkdir -p "$STATUS_DIR"
stage() {{  # NAME COMMAND: run it, its output to NAME.log; stop at the first failure
  echo "running $1" > "$STATUS_DIR/status"
  if bash -c "$2" > "$STATUS_DIR/$1.log" 2>&1; then
    return 0
  else
    echo "failed $1 $?" > "$STATUS_DIR/status"
    exit 1
  fi
}}
{stages}
mkdir -p "$(dirname "{marker}")"
date -u +%FT%TZ > "{marker}"
echo "done" > "$STATUS_DIR/status"
"""
    if len(script.encode()) > USERDATA_LIMIT:
        raise ValueError(f"UserData is {len(script.encode())} bytes; EC2 allows {USERDATA_LIMIT}")
    return script
