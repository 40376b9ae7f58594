"""The sandbox's instance host: this machine, reached through the sandbox's sshd."""

from __future__ import annotations

import os

from core.host.profiles import HostProfile
from core.sandbox import node_lines
from core.sandbox.hostuser import as_root, login_user
from core.sandbox.layout import APP_SLOTS, Layout, Ports

#: Where Debian (this machine, the sandbox's instance host) keeps the system's CAs.
DEBIAN_CA_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt",)


def sandbox_host_profile(layout: Layout, ports: Ports) -> HostProfile:
    nginx_conf = layout.nginx_dir / "nginx.conf"
    # As on EC2: an unprivileged login whose privileged commands go through sudo (when the
    # sandbox runs as root; otherwise the login is the sandbox's own user, without sudo).
    sudo: tuple[str, ...] = ("sudo",) if as_root() else ()
    return HostProfile(
        ssh_user=login_user(),
        ssh_host="127.0.0.1",
        ssh_port=ports.ssh,
        root=str(layout.host_root / "toast"),
        nginx_sites_dir=str(layout.nginx_sites),
        http_listen=f"127.0.0.1:{ports.http}",
        https_listen=f"127.0.0.1:{ports.https}",
        nginx_reload=(
            *sudo,
            "nginx",
            "-p",
            str(layout.nginx_dir),
            "-c",
            str(nginx_conf),
            "-e",
            str(layout.logs / "nginx-error.log"),
            "-s",
            "reload",
        ),
        nginx_pid_file=str(layout.nginx_pid),
        acme_webroot=str(layout.acme_webroot),
        certbot_dir=str(layout.certbot_dir),
        certbot_per_site=True,
        acme_server=f"https://127.0.0.1:{ports.acme}/dir",
        certbot_env={"REQUESTS_CA_BUNDLE": str(layout.listener_ca)},
        log_dir=str(layout.host_logs),
        agent_config_dir=str(layout.agent_configs),
        app_port_block=ports.apps,
        app_port_slots=APP_SLOTS,
        ready_marker_template=str(layout.instances / "{instance_id}" / "ready"),
        sudo=sudo,
        app_user="toast-app" if as_root() else None,
        local_reader=("sudo", "-n", "-H", "-u", login_user(), "--") if as_root() else (),
        node_dir=node_lines.bin_template(),
        ca_bundle_file=next((path for path in DEBIAN_CA_BUNDLES if os.path.exists(path)), None),
    )
