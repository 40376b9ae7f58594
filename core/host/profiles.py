"""Where things live on the machine that serves an app, and how Toast reaches it.

The engine's steps read everything host-specific from a HostProfile and never ask
whether they run against AWS or the sandbox: the sandbox supplies its own profile.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field


@dataclass(frozen=True)
class HostProfile:
    #: Login user for SSH.
    ssh_user: str
    #: Fixed SSH address, or None to use the instance's public IP.
    ssh_host: str | None
    ssh_port: int
    #: Toast's own directory on the host: apps, releases, env files.
    root: str
    #: nginx includes every *.conf here; Toast writes one file per deployment.
    nginx_sites_dir: str
    #: Address:port nginx listens on for HTTP and HTTPS ("80", "443" on EC2).
    http_listen: str
    https_listen: str
    #: argv that makes nginx reread its configuration.
    nginx_reload: tuple[str, ...]
    #: nginx's master PID file: a reload is done when the master's old workers are gone.
    nginx_pid_file: str
    #: Document root for ACME HTTP-01 challenges.
    acme_webroot: str
    #: certbot's --config-dir/--work-dir/--logs-dir.
    certbot_dir: str
    #: ACME directory URL; None is Let's Encrypt production.
    acme_server: str | None
    #: Extra environment for certbot (the sandbox's CA for its ACME server).
    certbot_env: dict[str, str] = field(default_factory=dict)
    #: Where build and app logs are written (shipped to CloudWatch).
    log_dir: str = "/var/log/toast"
    #: Where CloudWatch agent configs go, one per instance.
    agent_config_dir: str = "/opt/aws/amazon-cloudwatch-agent/etc/amazon-cloudwatch-agent.d"
    #: Host preparation writes this file when done; {instance_id} is filled in.
    ready_marker_template: str = "/var/lib/toast/ready"
    #: Prefix for commands that need root (installing nginx/agent configs, certbot).
    sudo: tuple[str, ...] = ()
    #: argv that makes the CloudWatch agent reread its configs (None: it rereads by itself).
    agent_reload: tuple[str, ...] | None = None
    #: How node apps are kept running: "systemd" (a unit with Restart=always), or
    #: "pidfile" (the runner supervises the app in a detached process group, restarting it).
    supervisor: str = "pidfile"
    #: The host's system CA bundle: Node tools (corepack, install scripts that download)
    #: trust what the host's curl and git trust (NODE_EXTRA_CA_CERTS), as npm does.
    ca_bundle_file: str | None = None
    #: The user node apps run as, owning only their release, env file and log (None: the
    #: login user, where no user of its own can be made).
    app_user: str | None = None
    #: The systemd timer that renews certificates (None: the host has no systemd; the
    #: sandbox's certificates are checked by a renewal rehearsal only).
    renewal_timer: str | None = None
    #: certbot's state kept per site under certbot_dir/sites/<fqdn> (the sandbox: its
    #: "instances" share one machine, where EC2 gives each its own /etc/letsencrypt; one
    #: certbot state for all would queue every deployment's certificate behind the others').
    certbot_per_site: bool = False
    #: None on a host of its own (an app listens on its own port and the next). On a host
    #: shared by many deployments (the sandbox) the first of a block of ports kept for this
    #: host's apps alone, two per deployment, so no other sandbox's app can answer for ours.
    app_port_block: int | None = None
    #: argv prefix that runs a command on this machine as the host's login user, when the
    #: host is this machine (the sandbox) and can clone a file:// repository; None when the
    #: host is an instance elsewhere, which can never read a path on the operator's machine.
    local_reader: tuple[str, ...] | None = None
    #: The bin directory of Node.js line `{line}` where the host keeps lines side by side
    #: (the sandbox: one machine for every instance, each with its plan's line); None when
    #: `node` on PATH is the line UserData chose for this instance (EC2's alternatives).
    node_dir: str | None = None
    app_port_slots: int = 100

    def certbot_lock(self, fqdn: str) -> str:
        """The lock that runs certbot one at a time over one certbot state."""
        if self.certbot_per_site:
            return posixpath.join(self.certbot_dir, f"toast-certbot-{fqdn}.lock")
        return posixpath.join(self.certbot_dir, "toast-certbot.lock")

    def certbot_home(self, fqdn: str) -> str:
        """The certbot state (config, work, logs, lock) that holds fqdn's certificate."""
        if self.certbot_per_site:
            return posixpath.join(self.certbot_dir, "sites", fqdn)
        return self.certbot_dir

    def app_port(self, base: int, deployment_id: int) -> int:
        """The first of the two ports (blue/green) a node app uses on this host."""
        if self.app_port_block is None:
            return base
        return self.app_port_block + (deployment_id % self.app_port_slots) * 2

    def ssh_address(self, public_ip: str) -> tuple[str, int]:
        return (self.ssh_host or public_ip, self.ssh_port)

    def http_address(self, public_ip: str) -> tuple[str, int]:
        return _address(self.http_listen, public_ip)

    def https_address(self, public_ip: str) -> tuple[str, int]:
        return _address(self.https_listen, public_ip)

    def ready_marker(self, instance_id: str) -> str:
        return self.ready_marker_template.format(instance_id=instance_id)

    def boot_status_dir(self, instance_id: str) -> str:
        """Where host preparation writes its stage status and each stage's output."""
        return posixpath.join(posixpath.dirname(self.ready_marker(instance_id)), "boot")


def _address(listen: str, public_ip: str) -> tuple[str, int]:
    """Where a client reaches a listener: its own address if it names one (the sandbox binds
    127.0.0.1), else the instance's public IP."""
    host, sep, port = listen.rpartition(":")
    return (host if sep else public_ip, int(port))


def ec2_host_profile() -> HostProfile:
    """An Amazon Linux 2023 instance prepared by Toast's UserData."""
    return HostProfile(
        ssh_user="ec2-user",
        ssh_host=None,
        ssh_port=22,
        root="/opt/toast",
        nginx_sites_dir="/etc/nginx/conf.d",
        http_listen="80",
        https_listen="443",
        nginx_reload=("sudo", "systemctl", "reload", "nginx"),
        nginx_pid_file="/run/nginx.pid",
        acme_webroot="/var/lib/toast/acme",
        certbot_dir="/etc/letsencrypt",
        acme_server=None,
        sudo=("sudo",),
        agent_reload=(
            "sudo",
            "/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl",
            "-a",
            "append-config",
            "-m",
            "ec2",
            "-s",
            "-c",
            "file:/opt/aws/amazon-cloudwatch-agent/etc/amazon-cloudwatch-agent.d",
        ),
        supervisor="systemd",
        app_user="toast-app",
        renewal_timer="certbot-renew.timer",
        ca_bundle_file="/etc/pki/tls/certs/ca-bundle.crt",
    )
