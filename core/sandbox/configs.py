"""Configuration files for the sandbox's daemons, rendered by pure functions."""

from __future__ import annotations

import json
import os

from core.sandbox.layout import Layout, Ports


def sshd_config(layout: Layout, ports: Ports) -> str:
    return "\n".join(
        [
            f"Port {ports.ssh}",
            "ListenAddress 127.0.0.1",
            f"HostKey {layout.ssh_host_key}",
            f"PidFile {layout.ssh_dir / 'sshd.pid'}",
            f"AuthorizedKeysFile {layout.authorized_keys}",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "HostbasedAuthentication no",
            "UsePAM no",
            "PermitRootLogin prohibit-password",
            # The sandbox dir may sit under a world-writable parent (e.g. /tmp in tests).
            "StrictModes no",
            "AllowAgentForwarding no",
            "AllowTcpForwarding no",
            "X11Forwarding no",
            "PrintMotd no",
            "LogLevel VERBOSE",
            "Subsystem sftp internal-sftp",
            "",
        ]
    )


def nginx_config(layout: Layout, ports: Ports) -> str:
    d = layout.nginx_dir
    # Workers must read the sandbox dir, which lives in root's home when run as root.
    user = "user root;\n" if os.geteuid() == 0 else ""
    return f"""{user}daemon off;
worker_processes 1;
pid {layout.nginx_pid};
error_log {layout.logs / "nginx-error.log"} warn;
events {{ worker_connections 512; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log {layout.logs / "nginx-access.log"};
    client_body_temp_path {d / "tmp" / "body"};
    proxy_temp_path {d / "tmp" / "proxy"};
    fastcgi_temp_path {d / "tmp" / "fastcgi"};
    uwsgi_temp_path {d / "tmp" / "uwsgi"};
    scgi_temp_path {d / "tmp" / "scgi"};
    server_names_hash_bucket_size 128;

    # Unknown names: ACME challenges only, as on a fresh instance.
    server {{
        listen 127.0.0.1:{ports.http} default_server;
        server_name _;
        location /.well-known/acme-challenge/ {{ root {layout.acme_webroot}; }}
        location / {{ return 404; }}
    }}
    server {{
        listen 127.0.0.1:{ports.https} ssl default_server;
        ssl_reject_handshake on;
    }}
    include {layout.nginx_sites}/*.conf;
}}
"""


def pebble_config(layout: Layout, ports: Ports) -> str:
    return json.dumps(
        {
            "pebble": {
                "listenAddress": f"127.0.0.1:{ports.acme}",
                "managementListenAddress": f"127.0.0.1:{ports.acme_mgmt}",
                "certificate": str(layout.pebble_dir / "listener.pem"),
                "privateKey": str(layout.pebble_dir / "listener.key"),
                "httpPort": ports.http,
                "tlsPort": ports.https,
                "ocspResponderURL": "",
                "externalAccountBindingRequired": False,
            }
        },
        indent=2,
    )


PEBBLE_ENV = {
    "PEBBLE_VA_NOSLEEP": "1",  # no random 0-15 s before each validation
    "PEBBLE_WFE_NONCEREJECT": "0",  # no deliberate badNonce errors
    "PEBBLE_AUTHZREUSE": "0",  # every order validates for real
}
