"""certbot on the host. /etc/letsencrypt is root's on EC2: every certbot command and every
read of a certificate goes through the host profile's sudo."""

from __future__ import annotations

import posixpath

from core.commands import Argv, render
from core.host.profiles import HostProfile


def _dirs(host: HostProfile, fqdn: str) -> Argv:
    """Where certbot keeps fqdn's state: the host's certbot home for all three."""
    home = host.certbot_home(fqdn)
    return (
        "--config-dir",
        home,
        "--work-dir",
        posixpath.join(home, "work"),
        "--logs-dir",
        posixpath.join(home, "logs"),
    )


def _serialised(host: HostProfile, fqdn: str, argv: Argv, *, with_env: bool = True) -> str:
    """certbot through sudo, one at a time per certbot state (two runs at once fail)."""
    env: Argv = ("env", *(f"{k}={v}" for k, v in sorted(host.certbot_env.items())))
    lock = host.certbot_lock(fqdn)
    return render((*host.sudo, *(env if with_env else ()), "flock", lock, *argv))


def certbot_certonly(host: HostProfile, fqdn: str, acme_server: str | None = None) -> str:
    """Issue (or keep) a certificate through HTTP-01 on the webroot; serialised per host,
    because two certbot runs at once fail."""
    argv: Argv = (
        "certbot",
        "certonly",
        "--webroot",
        "-w",
        host.acme_webroot,
        "-d",
        fqdn,
        "--non-interactive",
        "--agree-tos",
        "--register-unsafely-without-email",
        "--keep-until-expiring",
        "--no-random-sleep-on-renew",
        *_dirs(host, fqdn),
        "--deploy-hook",
        render(host.nginx_reload),
    )
    server = acme_server or host.acme_server
    if server:
        argv = (*argv, "--server", server)
    return _serialised(host, fqdn, argv)


def certbot_renew_dry_run(host: HostProfile, fqdn: str) -> str:
    """Rehearse renewing fqdn's certificate (nothing is replaced), as the renewal timer will."""
    argv: Argv = (
        "certbot",
        "renew",
        "--dry-run",
        "--non-interactive",
        "--no-random-sleep-on-renew",
        "--cert-name",
        fqdn,
        *_dirs(host, fqdn),
    )
    # Without --server a dry run goes to Let's Encrypt's staging CA (right for production:
    # its limits are spared); another CA (staging itself, the sandbox's) is named.
    if host.acme_server:
        argv = (*argv, "--server", host.acme_server)
    return _serialised(host, fqdn, argv)


def renewal_timer_enabled(host: HostProfile) -> Argv | None:
    """Exit 0 when the host's renewal timer is enabled (None: the host has no timer)."""
    if host.renewal_timer is None:
        return None
    return ("systemctl", "is-enabled", "--quiet", host.renewal_timer)


def certbot_delete(host: HostProfile, fqdn: str) -> str:
    argv: Argv = (
        "certbot",
        "delete",
        "--non-interactive",
        "--cert-name",
        fqdn,
        *_dirs(host, fqdn),
    )
    return _serialised(host, fqdn, argv, with_env=False) + " || true"


def cert_enddate(host: HostProfile, fqdn: str) -> Argv:
    cert = posixpath.join(host.certbot_home(fqdn), "live", fqdn, "cert.pem")
    return (*host.sudo, "openssl", "x509", "-enddate", "-noout", "-in", cert)


def has_certificate(host: HostProfile, fqdn: str) -> Argv:
    """Exit 0 when a certificate for fqdn exists (live/ is readable by root only)."""
    chain_file = posixpath.join(host.certbot_home(fqdn), "live", fqdn, "fullchain.pem")
    return (*host.sudo, "test", "-f", chain_file)
