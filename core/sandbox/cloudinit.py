"""Stands in for cloud-init on each instance launched in the sandbox.

All instances share this machine as their host. For each new running instance it does
what would happen on a real first boot and makes sense here: install the launch key
pair's public key for SSH, prepare Toast's host directories, print the SSH host keys
to the console output (where Toast learns them on AWS), and write the completion
marker the engine waits for.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.hosts import HostProfile


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
        interval: float = 0.25,
    ) -> None:
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
        for directory in (
            self.host.root,
            self.host.nginx_sites_dir,
            self.host.acme_webroot,
            self.host.log_dir,
            self.host.agent_config_dir,
            self.host.certbot_dir,
        ):
            Path(directory).mkdir(parents=True, exist_ok=True)
        self.publish_console(
            instance_id, console_output(instance_id, self.host_public_key, self.host_fingerprint)
        )
        marker = Path(self.host.ready_marker(instance_id))
        marker.parent.mkdir(parents=True, exist_ok=True)
        user_data = self._user_data(instance_id)
        marker.write_text(
            f"instance {instance_id} prepared at "
            f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}"
            f" (user data: {len(user_data)} bytes)\n"
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
