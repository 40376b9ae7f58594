"""The small first-boot script for an instance: prepares the host, carries no secrets."""

from __future__ import annotations

import shlex

from core.hosts import HostProfile
from core.node_versions import packages

USERDATA_LIMIT = 16 * 1024


def render_userdata(host: HostProfile, *, node_version: str, instance_tag: str) -> str:
    """Install nginx, certbot, Node and the CloudWatch agent, create Toast's directories,
    then write the completion marker the engine waits for. Deployment-specific files
    (env, site config, agent config) arrive later over SSH, never through UserData."""
    q = shlex.quote
    marker = host.ready_marker("$INSTANCE_ID")
    imds = ""
    if "{instance_id}" in host.ready_marker_template:  # IMDSv2: a session token first
        imds = (
            "TOKEN=$(curl -sX PUT http://169.254.169.254/latest/api/token \\\n"
            "  -H 'X-aws-ec2-metadata-token-ttl-seconds: 300')\n"
            'INSTANCE_ID=$(curl -s -H "X-aws-ec2-metadata-token: $TOKEN" \\\n'
            "  http://169.254.169.254/latest/meta-data/instance-id)\n"
        )
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
    script = f"""#!/bin/bash
# Toast host preparation ({instance_tag}). No secrets here: UserData is readable by anyone
# who may describe the instance and by every process on it.
set -euo pipefail
dnf install -y nginx certbot {" ".join(q(p) for p in packages(node_version))} \\
  amazon-cloudwatch-agent git cronie
alternatives --set node /usr/bin/node-{q(node_version)} 2>/dev/null || true
mkdir -p {dirs}
chown -R ec2-user: {q(host.root)} {q(host.log_dir)} {q(host.acme_webroot)}
systemctl enable --now nginx crond
systemctl enable --now certbot-renew.timer 2>/dev/null || true
{imds}mkdir -p "$(dirname "{marker}")"
date -u +%FT%TZ > "{marker}"
"""
    if len(script.encode()) > USERDATA_LIMIT:
        raise ValueError(f"UserData is {len(script.encode())} bytes; EC2 allows {USERDATA_LIMIT}")
    return script
