"""nginx on the host: the site config Toast owns, and reloads."""

from __future__ import annotations

import posixpath
import shlex

from core.commands import render
from core.host.layout import AppPaths
from core.host.profiles import HostProfile


def reload_nginx(host: HostProfile) -> str:
    return render(host.nginx_reload)


def nginx_workers(host: HostProfile) -> str:
    """Print the PIDs of nginx's current workers (children of the master)."""
    return f"pgrep -P \"$(cat {shlex.quote(host.nginx_pid_file)})\" | sort -n | tr '\\n' ' '"


def nginx_site(
    paths: AppPaths, fqdn: str, *, https: bool, static_root: str | None, upstream_port: int | None
) -> str:
    """The site config Toast owns. HTTP serves ACME challenges and redirects; HTTPS serves
    the app once a certificate exists."""
    host = paths.host
    q = _nginx_quote
    lines = [
        "# Written by Toast. Changes here are overwritten on the next deploy.",
        "server {",
        f"    listen {host.http_listen};",
        f"    server_name {fqdn};",
        f"    access_log {q(paths.access_log)};",
        f"    error_log {q(paths.error_log)};",
        f"    location /.well-known/acme-challenge/ {{ root {q(host.acme_webroot)}; }}",
        "    location / { return 301 https://$host$request_uri; }"
        if https
        else "    location / { return 503; }",
        "}",
    ]
    if https:
        live = posixpath.join(host.certbot_home(fqdn), "live", fqdn)
        lines += [
            "server {",
            f"    listen {host.https_listen} ssl;",
            f"    server_name {fqdn};",
            f"    ssl_certificate {q(posixpath.join(live, 'fullchain.pem'))};",
            f"    ssl_certificate_key {q(posixpath.join(live, 'privkey.pem'))};",
            f"    access_log {q(paths.access_log)};",
            f"    error_log {q(paths.error_log)};",
        ]
        if static_root is not None:
            lines += [
                f"    root {q(static_root)};",
                # Dot paths (.git, .env, .npmrc) are never served, whatever a build leaves in
                # its output; /.well-known/ stays open for the site's own files there.
                "    location ~ /\\.(?!well-known/) { return 404; }",
                "    location / { try_files $uri $uri/ /index.html; }",
            ]
        elif upstream_port is not None:
            lines += [
                "    location / {",
                f"        proxy_pass http://127.0.0.1:{upstream_port};",
                "        proxy_set_header Host $host;",
                "        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
                "        proxy_set_header X-Forwarded-Proto https;",
                "        proxy_next_upstream error timeout http_502;",
                "    }",
            ]
        lines.append("}")
    return "\n".join(lines) + "\n"


def _nginx_quote(value: str) -> str:
    if any(c in value for c in '"\\\n;{}'):
        raise ValueError(f"path not allowed in nginx config: {value!r}")
    return f'"{value}"'
