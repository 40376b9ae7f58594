"""Stands in for cloud-init on each instance launched in the sandbox.

All instances share this machine as their host. For each new running instance it does
what a real first boot does: install the launch key pair's public key for SSH, print the
SSH host keys to the console output (where Toast learns them on AWS), and run the
instance's UserData, the very script EC2 runs. Only the system tools it calls that
would change this machine (dnf, systemctl, alternatives) are shims that check instead:
dnf confirms this machine has what it would install. Its stages, status file and
completion marker are the real ones.
"""

from __future__ import annotations

import base64
import os
import shlex
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.cloud.userdata import HEADER
from core.host.profiles import HostProfile

#: The system tools UserData calls that would change this machine, as checks.
SHIMS = {
    "dnf": """#!/bin/sh
# Toast sandbox: the instance host is this machine, so dnf checks that what it would
# install is here, and fails as dnf does when it is not. A Node line (nodejs22) is
# installed as on EC2, side by side with the others (core/sandbox/node_lines.py).
[ "$1" = install ] || exit 0
shift
status=0
for pkg in "$@"; do
  case "$pkg" in
    -*) continue ;;
    nodejs*-npm) echo "sandbox: $pkg comes with ${pkg%-npm}"; continue ;;
    nodejs[0-9]*)
      PYTHONPATH=@PROJECT@ @PYTHON@ -m core.sandbox.node_lines "${pkg#nodejs}" || status=1
      continue ;;
    nginx) bin=nginx ;;
    amazon-cloudwatch-agent | cronie) echo "sandbox: $pkg is the sandbox's own"; continue ;;
    *) bin="$pkg" ;;
  esac
  if command -v "$bin" >/dev/null 2>&1 || [ -x "/usr/sbin/$bin" ]; then
    echo "sandbox: $pkg is provided by this machine ($bin)"
  else
    echo "Error: Unable to find a match: $pkg (no $bin on this machine)" >&2
    status=1
  fi
done
exit $status
""",
    "systemctl": """#!/bin/sh
# Toast sandbox: its services (nginx, the log shipper) are run by `toast sandbox`.
echo "sandbox: systemctl $*: run by toast sandbox"
""",
    "alternatives": """#!/bin/sh
# Toast sandbox: every instance shares this machine, so lines are not switched; each
# deployment's commands run with its own line (the host profile's node_dir).
echo "sandbox: alternatives $*: each deployment runs its own line"
""",
}


def write_shims(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    project = Path(__file__).resolve().parents[2]
    for name, text in SHIMS.items():
        path = directory / name
        path.write_text(
            text.replace("@PROJECT@", shlex.quote(str(project))).replace(
                "@PYTHON@", shlex.quote(sys.executable)
            )
        )
        path.chmod(0o755)


def console_output(instance_id: str, host_public_key: str, fingerprint: str) -> str:
    """Console text in cloud-init's format, with the host key blocks Toast parses."""
    key_type = host_public_key.split()[0]
    return (
        f"[    0.000000] Linux version 6.1.0 (toast-sandbox) #1 SMP\n"
        f"cloud-init[1]: Cloud-init v. 23.4 running 'init' for {instance_id}\n"
        "ec2: #############################################################\n"
        "-----BEGIN SSH HOST KEY FINGERPRINTS-----\n"
        f"256 {fingerprint} root@{instance_id} ({key_type.removeprefix('ssh-').upper()})\n"
        "-----END SSH HOST KEY FINGERPRINTS-----\n"
        "ec2: #############################################################\n"
        "-----BEGIN SSH HOST KEY KEYS-----\n"
        f"{' '.join(host_public_key.split()[:2])}\n"
        "-----END SSH HOST KEY KEYS-----\n"
        f"cloud-init[1]: Cloud-init v. 23.4 finished. Datasource DataSourceEc2.\n"
    )


class CloudInitStandIn:
    def __init__(
        self,
        ec2: Any,
        host: HostProfile,
        authorized_keys: Path,
        host_public_key: str,
        host_fingerprint: str,
        publish_console: Callable[[str, str], None],
        shims: Path,
        interval: float = 0.25,
        booted: tuple[str, ...] = (),
    ) -> None:
        self.shims = shims
        #: Instances restored from a saved state: they booted before the sandbox stopped,
        #: and UserData runs on an instance's first boot only.
        self.booted = frozenset(booted)
        self.ec2 = ec2
        self.host = host
        self.authorized_keys = authorized_keys
        self.host_public_key = host_public_key
        self.host_fingerprint = host_fingerprint
        self.publish_console = publish_console
        self.interval = interval
        self.prepared: set[str] = set()
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="cloud-init", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.pass_once()
            except Exception as exc:  # moto restarting or reset: try again next pass
                print(f"cloud-init stand-in: {exc}", flush=True)

    def pass_once(self) -> list[str]:
        done = []
        filters = [{"Name": "instance-state-name", "Values": ["running"]}]
        for page in self.ec2.get_paginator("describe_instances").paginate(Filters=filters):
            for reservation in page["Reservations"]:
                for instance in reservation["Instances"]:
                    instance_id = instance["InstanceId"]
                    if instance_id not in self.prepared:
                        self.boot(instance)
                        self.prepared.add(instance_id)
                        done.append(instance_id)
        return done

    def boot(self, instance: dict[str, Any]) -> None:
        instance_id = instance["InstanceId"]
        key_name = instance.get("KeyName")
        if key_name:
            self._authorize(key_name, instance_id)
        # On AL2023 the certbot package creates /etc/letsencrypt; here it is the sandbox's.
        Path(self.host.certbot_dir).mkdir(parents=True, exist_ok=True)
        self.publish_console(
            instance_id, console_output(instance_id, self.host_public_key, self.host_fingerprint)
        )
        if instance_id in self.booted:
            return
        user_data = self._user_data(instance_id)
        if not user_data.startswith(b"#!/bin/bash\n" + HEADER.encode()):
            return  # not Toast's: nothing of it runs on this machine
        threading.Thread(
            target=self._run_user_data,
            args=(instance_id, user_data),
            name=f"user-data-{instance_id}",
            daemon=True,
        ).start()

    def _run_user_data(self, instance_id: str, script: bytes) -> None:
        log = Path(self.host.boot_status_dir(instance_id)).parent / "cloud-init-output.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "INSTANCE_ID": instance_id,
            "PATH": f"{self.shims}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        }
        with open(log, "wb") as out:
            subprocess.run(
                ["bash", "-s"],
                input=script,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                check=False,
                timeout=600,
            )

    def _user_data(self, instance_id: str) -> bytes:
        attr = self.ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="userData")
        value = attr.get("UserData", {}).get("Value")
        return base64.b64decode(value) if value else b""

    def _authorize(self, key_name: str, instance_id: str) -> None:
        pairs = self.ec2.describe_key_pairs(KeyNames=[key_name], IncludePublicKey=True)["KeyPairs"]
        if not pairs or not pairs[0].get("PublicKey"):
            return
        key = " ".join(pairs[0]["PublicKey"].split()[:2])
        existing = self.authorized_keys.read_text() if self.authorized_keys.exists() else ""
        if key not in existing:
            with open(self.authorized_keys, "a") as handle:
                handle.write(f"{key} toast-sandbox:{key_name}:{instance_id}\n")
