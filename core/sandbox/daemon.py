"""The sandbox's Python services in one process: moto (AWS), DNS, the GitHub stand-in,
the log shipper and the cloud-init stand-in.

Run as: python -m core.sandbox.daemon SANDBOX_DIR
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from core.sandbox.cloudinit import CloudInitStandIn, write_shims
from core.sandbox.dns import ZoneResolver, instance_public_ips, start_dns, zone_lookup
from core.sandbox.github_api import GitHubStandIn
from core.sandbox.hostprofile import sandbox_host_profile
from core.sandbox.layout import BASE_DOMAIN, REGION, Layout
from core.sandbox.shipper import LogShipper

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
    from moto.ec2.utils import Base64EncodedString  # type: ignore[attr-defined]  # not in moto's __all__

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

    general.General.get_console_output = get_console_output  # type: ignore[method-assign]  # the patch is the point


def _patch_route53_like_aws() -> None:
    """moto accepts a CREATE over an existing record and a DELETE of a record that is not
    there (or has other values); Route53 refuses the whole batch in both cases, and Toast
    relies on that to never touch a record it did not expect. So does the sandbox."""
    from moto.route53.exceptions import ResourceRecordAlreadyExists, Route53ClientError
    from moto.route53.models import Route53Backend

    original = Route53Backend.change_resource_record_sets

    def key(name: str, kind: str) -> tuple[str, str]:
        return name.rstrip(".").lower(), kind

    def values(records: list[Any]) -> list[str]:
        return sorted(r["Value"] if isinstance(r, dict) else str(r) for r in records)

    def strict(self: Any, zoneid: str, change_list: list[dict[str, Any]]) -> None:
        zone = self.get_hosted_zone(zoneid)
        present = {key(r.name, r.type): values(r.records) for r in zone.rrsets}
        for change in change_list:
            record = change["ResourceRecordSet"]
            at = key(record["Name"], record["Type"])
            if change["Action"] == "CREATE":
                if at in present:
                    raise ResourceRecordAlreadyExists(name=record["Name"], _type=record["Type"])
                present[at] = values(record.get("ResourceRecords", []))
            elif change["Action"] == "DELETE":
                wanted = values(record.get("ResourceRecords", []))
                if present.get(at) != wanted:
                    raise Route53ClientError(
                        "InvalidChangeBatch",
                        f"Tried to delete resource record set [name='{record['Name']}', "
                        f"type='{record['Type']}'] but it was not found",
                    )
                del present[at]
            else:
                present[at] = values(record.get("ResourceRecords", []))
        original(self, zoneid, change_list)

    Route53Backend.change_resource_record_sets = strict  # type: ignore[method-assign]  # the patch is the point


def aws_client(service: str, endpoint: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(  # type: ignore[call-overload]  # service is a runtime string
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"mode": "standard"}),
    )


def seed_aws(endpoint: str) -> str:
    """Create the sandbox hosted zone unless it exists. Returns the zone id."""
    route53 = aws_client("route53", endpoint)
    zones = route53.list_hosted_zones_by_name(DNSName=BASE_DOMAIN + ".")["HostedZones"]
    existing = [z for z in zones if z["Name"].rstrip(".") == BASE_DOMAIN]
    if existing:
        return str(existing[0]["Id"])
    return str(
        route53.create_hosted_zone(
            Name=BASE_DOMAIN, CallerReference=f"toast-sandbox-{os.getpid()}-{id(route53)}"
        )["HostedZone"]["Id"]
    )


#: The services whose state the sandbox keeps across `down` and `up`, as an account would.
#: (SSM holds only AWS's public parameters, which moto makes afresh.)
KEPT_SERVICES = ("ec2", "route53", "logs", "iam")


def save_aws_state(path: Path) -> None:
    """moto's backends, pickled (0600): instances, zones, log groups and roles come back
    with the same ids at the next `up`, so the state database still matches them."""
    from moto.backends import get_backend

    state = {name: dict(get_backend(name)) for name in KEPT_SERVICES}  # type: ignore[call-overload]  # runtime names
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as out:
        pickle.dump(state, out, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, path)


def load_aws_state(path: Path) -> list[str]:
    """Put saved state back before moto serves; returns the instance ids it holds. A file
    that cannot be read (another moto version) is set aside and the sandbox starts empty."""
    from moto.backends import get_backend

    if not path.exists():
        return []
    try:
        with path.open("rb") as saved:
            state = pickle.load(saved)  # written by this daemon, 0600, in the user's own dir
        for name in KEPT_SERVICES:
            backend = get_backend(name)  # type: ignore[call-overload]  # a runtime name
            for account, regions in state.get(name, {}).items():
                backend[account] = regions
    except Exception as exc:
        aside = path.with_suffix(".unreadable")
        os.replace(path, aside)
        print(f"sandbox daemon: AWS state not restored ({exc}); kept as {aside}", flush=True)
        return []
    # Restored once: a daemon that dies without saving must not bring back this older state
    # over what happened since (it starts empty instead, as before state was kept).
    path.unlink(missing_ok=True)
    ids = []
    for regions in state.get("ec2", {}).values():
        for backend in regions.values():
            ids += list(getattr(backend, "all_instances", lambda: [])())
    return [getattr(i, "id", str(i)) for i in ids]


def _moto_zones() -> list[Any]:
    """The hosted zones in moto's models, for the sandbox DNS (read in this process)."""
    from moto.backends import get_backend
    from moto.core.models import DEFAULT_ACCOUNT_ID

    return list(get_backend("route53")[DEFAULT_ACCOUNT_ID]["global"].zones.values())


def _moto_instances() -> list[Any]:
    from moto.backends import get_backend
    from moto.core.models import DEFAULT_ACCOUNT_ID

    found: list[Any] = []
    for backend in list(get_backend("ec2")[DEFAULT_ACCOUNT_ID].values()):
        found += backend.all_instances()
    return found


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

    _patch_console_output()
    _patch_route53_like_aws()
    restored = load_aws_state(layout.aws_state)
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=ports.aws, verbose=False)
    moto.start()
    endpoint = f"http://127.0.0.1:{ports.aws}"
    seed_aws(endpoint)

    dns_servers = start_dns(
        ports.dns,
        ZoneResolver(zone_lookup(_moto_zones, BASE_DOMAIN), instance_public_ips(_moto_instances)),
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
        booted=tuple(restored),
    )
    write_shims(layout.root / "shims")
    cloud_init.start()

    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    print(f"sandbox daemon up: aws={endpoint} dns={ports.dns} github={ports.github}", flush=True)
    while not stopping.wait(0.5):
        pass

    cloud_init.stop()
    shipper.stop()
    github.shutdown()
    for server in dns_servers:
        server.stop()
    moto.stop()
    try:
        save_aws_state(layout.aws_state)
    except Exception as exc:
        print(f"sandbox daemon: could not save the AWS state: {exc}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
