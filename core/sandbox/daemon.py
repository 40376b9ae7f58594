"""The sandbox's Python services in one process: moto (AWS), DNS, the GitHub stand-in,
the log shipper and the cloud-init stand-in.

Run as: python -m core.sandbox.daemon SANDBOX_DIR
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from core.sandbox.layout import BASE_DOMAIN, REGION, Layout

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_EC2_METADATA_DISABLED": "true",
}

_console: dict[str, str] = {}


def _patch_console_output() -> None:
    """moto prints one fixed text for every instance; serve what cloud-init 'printed'."""
    from moto.core.responses import ActionResult
    from moto.core.utils import utcnow
    from moto.ec2.responses import general
    from moto.ec2.utils import Base64EncodedString  # type: ignore[attr-defined]

    def get_console_output(self: Any) -> Any:
        instance = self.ec2_backend.get_instance(self._get_param("InstanceId"))
        text = _console.get(instance.id, "")
        return ActionResult(
            {
                "InstanceId": instance.id,
                "Timestamp": utcnow(),
                "Output": Base64EncodedString.from_raw_string(text),
            }
        )

    general.General.get_console_output = get_console_output  # type: ignore[method-assign]


def aws_client(service: str, endpoint: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(  # type: ignore[call-overload]
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"mode": "standard"}),
    )


def seed_aws(endpoint: str, snapshot: Path | None = None) -> str:
    """Create the sandbox hosted zone (and restore saved records). Returns the zone id."""
    route53 = aws_client("route53", endpoint)
    zones = route53.list_hosted_zones_by_name(DNSName=BASE_DOMAIN + ".")["HostedZones"]
    existing = [z for z in zones if z["Name"].rstrip(".") == BASE_DOMAIN]
    if existing:
        return str(existing[0]["Id"])
    zone_id = str(
        route53.create_hosted_zone(
            Name=BASE_DOMAIN, CallerReference=f"toast-sandbox-{os.getpid()}-{id(route53)}"
        )["HostedZone"]["Id"]
    )
    if snapshot is not None and snapshot.exists():
        records = json.loads(snapshot.read_text())
        changes = [{"Action": "UPSERT", "ResourceRecordSet": r} for r in records]
        if changes:
            route53.change_resource_record_sets(
                HostedZoneId=zone_id, ChangeBatch={"Changes": changes}
            )
    return zone_id


def save_records(endpoint: str, snapshot: Path) -> None:
    route53 = aws_client("route53", endpoint)
    zones = route53.list_hosted_zones_by_name(DNSName=BASE_DOMAIN + ".")["HostedZones"]
    records = []
    for zone in zones:
        if zone["Name"].rstrip(".") != BASE_DOMAIN:
            continue
        for page in route53.get_paginator("list_resource_record_sets").paginate(
            HostedZoneId=zone["Id"]
        ):
            records += [r for r in page["ResourceRecordSets"] if r["Type"] not in ("NS", "SOA")]
    snapshot.parent.mkdir(parents=True, exist_ok=True)
    snapshot.write_text(json.dumps(records, indent=2))


def main(argv: list[str]) -> int:
    layout = Layout(Path(argv[1]))
    ports = layout.load_ports()
    if ports is None:
        print(
            "sandbox daemon: ports.json is missing; start with `toast sandbox up`", file=sys.stderr
        )
        return 2
    os.environ.update(FAKE_CREDENTIALS)
    # AWS managed policies (CloudWatchAgentServerPolicy) exist in real accounts.
    os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")

    from moto.server import ThreadedMotoServer

    from core.sandbox.cloudinit import CloudInitStandIn, write_shims
    from core.sandbox.dns import ZoneResolver, ec2_public_ips, route53_lookup, start_dns
    from core.sandbox.github_api import GitHubStandIn
    from core.sandbox.hostprofile import sandbox_host_profile
    from core.sandbox.shipper import LogShipper

    _patch_console_output()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=ports.aws, verbose=False)
    moto.start()
    endpoint = f"http://127.0.0.1:{ports.aws}"
    seed_aws(endpoint, layout.aws_snapshot)

    dns_servers = start_dns(
        ports.dns,
        ZoneResolver(
            route53_lookup(aws_client("route53", endpoint), BASE_DOMAIN),
            ec2_public_ips(aws_client("ec2", endpoint)),
        ),
    )

    github = GitHubStandIn(ports.github, layout, layout.github_token.read_text().strip())
    threading.Thread(target=github.serve_forever, name="github", daemon=True).start()

    shipper = LogShipper(
        aws_client("logs", endpoint), layout.agent_configs, layout.root / "shipper-offsets.json"
    )
    shipper.start()

    host_key = (layout.ssh_host_key.with_suffix(".pub")).read_text().strip()
    fingerprint = subprocess.run(
        ["ssh-keygen", "-l", "-f", str(layout.ssh_host_key.with_suffix(".pub"))],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()[1]
    cloud_init = CloudInitStandIn(
        aws_client("ec2", endpoint),
        sandbox_host_profile(layout, ports),
        layout.authorized_keys,
        host_key,
        fingerprint,
        _console.__setitem__,
        shims=layout.root / "shims",
    )
    write_shims(layout.root / "shims")
    cloud_init.start()

    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    print(f"sandbox daemon up: aws={endpoint} dns={ports.dns} github={ports.github}", flush=True)
    while not stopping.wait(0.5):
        pass

    try:
        save_records(endpoint, layout.aws_snapshot)
    except Exception as exc:
        print(f"sandbox daemon: could not save Route53 records: {exc}", flush=True)
    cloud_init.stop()
    shipper.stop()
    github.shutdown()
    for server in dns_servers:
        server.stop()
    moto.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
