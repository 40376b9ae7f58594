"""Helpers for tests that act like the engine against the sandbox (launch, DNS, nginx)."""

from __future__ import annotations

import re
import socket
import ssl
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncssh
import httpx

from core.host.profiles import HostProfile
from core.profile.config import AL2023_PARAMETER
from core.runs.waiting import poll_sync
from core.sandbox.controller import SandboxInfo
from core.sandbox.processes import reload_nginx_locally

Clients = Callable[[str], Any]


def new_key(tmp_path: Path, name: str = "deploy") -> tuple[Path, str]:
    key = asyncssh.generate_private_key("ssh-ed25519")
    path = tmp_path / name
    key.write_private_key(str(path))
    return path, key.export_public_key().decode()


def launch(
    aws: Clients, *, key_name: str | None = None, public_key: str | None = None
) -> dict[str, Any]:
    ec2 = aws("ec2")
    if key_name and public_key:
        ec2.import_key_pair(KeyName=key_name, PublicKeyMaterial=public_key.encode())
    ami = aws("ssm").get_parameter(Name=AL2023_PARAMETER)["Parameter"]["Value"]
    kwargs: dict[str, Any] = {"KeyName": key_name} if key_name else {}
    instance = ec2.run_instances(
        ImageId=ami, InstanceType="t3.micro", MinCount=1, MaxCount=1, **kwargs
    )["Instances"][0]
    return ec2.describe_instances(InstanceIds=[instance["InstanceId"]])["Reservations"][0][
        "Instances"
    ][0]  # type: ignore[no-any-return]


def wait_booted(aws: Clients, instance_id: str, timeout: float = 10) -> None:
    """Until the stand-in for cloud-init has booted the instance (its console shows the
    SSH host keys)."""

    def booted() -> bool | None:
        output = aws("ec2").get_console_output(InstanceId=instance_id).get("Output") or ""
        return True if "BEGIN SSH HOST KEY KEYS" in output else None

    poll_sync(booted, what="the instance to boot", timeout=timeout)


def zone_id(aws: Clients, base_domain: str) -> str:
    zones = aws("route53").list_hosted_zones_by_name(DNSName=base_domain + ".")["HostedZones"]
    return str(next(z["Id"] for z in zones if z["Name"] == base_domain + "."))


def upsert_record(aws: Clients, sandbox: SandboxInfo, name: str, kind: str, value: str) -> None:
    """A record made behind Toast's back, as a user or another tool would."""
    aws("route53").change_resource_record_sets(
        HostedZoneId=zone_id(aws, sandbox.base_domain),
        ChangeBatch={
            "Changes": [
                {
                    "Action": "UPSERT",
                    "ResourceRecordSet": {
                        "Name": name,
                        "Type": kind,
                        "TTL": 60,
                        "ResourceRecords": [{"Value": value}],
                    },
                }
            ]
        },
    )


def upsert_a(aws: Clients, sandbox: SandboxInfo, name: str, ip: str) -> None:
    upsert_record(aws, sandbox, name, "A", ip)


def host_key_from_console(text: str) -> str:
    """The SSH host key as cloud-init prints it to the console (how Toast learns it on AWS)."""
    match = re.search(r"-----BEGIN SSH HOST KEY KEYS-----\n(.*?)\n-----END", text, re.S)
    assert match, "no host key block in the console output"
    return match.group(1).splitlines()[0]


def write_site(host: HostProfile, name: str, body: str, *, https: bool) -> None:
    """An nginx site as the engine renders it: ACME webroot on HTTP, the app on HTTPS."""
    sites = Path(host.nginx_sites_dir)
    docroot = Path(host.root) / "sites" / name
    docroot.mkdir(parents=True, exist_ok=True)
    (docroot / "index.html").write_text(body)
    conf = f"""server {{
    listen {host.http_listen};
    server_name {name};
    location /.well-known/acme-challenge/ {{ root {host.acme_webroot}; }}
    location / {{ return 301 https://$host$request_uri; }}
}}
"""
    if https:
        live = Path(host.certbot_dir) / "live" / name
        conf += f"""server {{
    listen {host.https_listen} ssl;
    server_name {name};
    ssl_certificate {live / "fullchain.pem"};
    ssl_certificate_key {live / "privkey.pem"};
    root {docroot};
}}
"""
    (sites / f"{name}.conf").write_text(conf)
    reload_nginx_locally(host)
    wait_served(host, name, https=https)


def wait_served(host: HostProfile, name: str, *, https: bool = False) -> None:
    """`nginx -s reload` returns before new workers serve: wait until the name's block answers."""
    port = host.http_listen.rsplit(":", 1)[-1]

    def redirected() -> bool | None:
        try:
            response = httpx.get(f"http://127.0.0.1:{port}/", headers={"Host": name}, timeout=2)
        except httpx.HTTPError:
            return None
        return True if response.status_code == 301 else None

    poll_sync(redirected, what=f"nginx to serve {name}", timeout=10)
    if not https:
        return
    tls_port = int(host.https_listen.rsplit(":", 1)[-1])

    def handshakes() -> bool | None:
        # Any handshake that gets past SNI (even an untrusted one) means the block is live.
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        try:
            with (
                socket.create_connection(("127.0.0.1", tls_port), timeout=2) as raw,
                context.wrap_socket(raw, server_hostname=name),
            ):
                return True
        except (OSError, ssl.SSLError):
            return None

    poll_sync(handshakes, what=f"nginx to serve {name} over TLS", timeout=10)


def certbot(host: HostProfile, name: str) -> subprocess.CompletedProcess[str]:
    argv = [
        "certbot",
        "certonly",
        "--webroot",
        "-w",
        host.acme_webroot,
        "-d",
        name,
        "--non-interactive",
        "--agree-tos",
        "--register-unsafely-without-email",
        "--config-dir",
        host.certbot_dir,
        "--work-dir",
        f"{host.certbot_dir}/work",
        "--logs-dir",
        f"{host.certbot_dir}/logs",
        "--no-random-sleep-on-renew",
    ]
    if host.acme_server:
        argv += ["--server", host.acme_server]
    import os

    return subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **host.certbot_env},
        check=False,
    )


def live_instances(aws: Clients) -> list[str]:
    reservations = aws("ec2").describe_instances(
        Filters=[
            {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]}
        ]
    )["Reservations"]
    return [i["InstanceId"] for r in reservations for i in r["Instances"]]


def deployment_instances(aws: Clients, name: str) -> list[str]:
    """The pending or running instances tagged as the deployment's."""
    reservations = aws("ec2").describe_instances(
        Filters=[
            {"Name": "tag:toast:deployment", "Values": [name]},
            {"Name": "instance-state-name", "Values": ["pending", "running"]},
        ]
    )["Reservations"]
    return [i["InstanceId"] for r in reservations for i in r["Instances"]]


def record_sets(aws: Clients, sandbox: SandboxInfo) -> dict[tuple[str, str], list[str]]:
    """(name, type) -> values for every record in the sandbox zone."""
    sets = aws("route53").list_resource_record_sets(HostedZoneId=zone_id(aws, sandbox.base_domain))
    return {
        (r["Name"], r["Type"]): [v["Value"] for v in r.get("ResourceRecords", [])]
        for r in sets["ResourceRecordSets"]
    }


def planless_repo(layout: Any) -> str:
    """A repository like the static sample but without its toast.toml: a plain build script,
    no framework Toast knows, so nothing says how to serve it."""
    from core.sandbox import githost

    name = "someone/plain-script"
    files = {k: v for k, v in githost.STATIC_SITE_FILES.items() if k != "toast.toml"}
    githost.create_repo(layout, name, files)
    return name
