"""The sandbox's instance host: SSH with verified host keys, ACME over real HTTP-01, HTTPS."""

from __future__ import annotations

import asyncio
import ssl
import uuid
from pathlib import Path

import asyncssh
import httpx
import pytest

from core.host.profiles import HostProfile
from core.host.ssh import Remote, RemoteError
from core.runs.waiting import poll
from core.sandbox.controller import Sandbox, SandboxInfo

from .sandbox_helpers import (
    Clients,
    certbot,
    host_key_from_console,
    launch,
    new_key,
    upsert_a,
    wait_booted,
    write_site,
)


def booted_instance(aws: Clients, host: HostProfile, tmp_path: Path) -> tuple[str, int, Path, str]:
    """Launch an instance and wait for it to boot: its SSH address and port, the client key,
    and the host key it printed to its console."""
    key_path, public_key = new_key(tmp_path)
    instance = launch(aws, key_name=f"toast-{uuid.uuid4().hex[:8]}", public_key=public_key)
    wait_booted(aws, instance["InstanceId"])
    console = aws("ec2").get_console_output(InstanceId=instance["InstanceId"])["Output"]
    address, port = host.ssh_address(instance["PublicIpAddress"])
    return address, port, key_path, host_key_from_console(console)


async def test_ssh_to_a_launched_instance_with_the_host_key_from_its_console(
    aws: Clients, session_sandbox: Sandbox, tmp_path: Path
) -> None:
    host = session_sandbox.host_profile()
    address, port, key_path, host_key_text = booted_instance(aws, host, tmp_path)
    host_key = asyncssh.import_public_key(host_key_text)
    async with asyncssh.connect(
        address,
        port=port,
        username=host.ssh_user,
        client_keys=[str(key_path)],
        known_hosts=([host_key], [], []),
        agent_path=None,
        config=None,
    ) as conn:
        result = await conn.run("printf '%s' \"$((6 * 7))\"", check=True)
    assert result.stdout == "42"


async def test_writes_of_one_file_at_once_each_land_whole(
    aws: Clients, session_sandbox: Sandbox, tmp_path: Path
) -> None:
    """Runs that share a host (every sandbox deployment) write its host-wide runner at the
    same time: each write must succeed, and the file must be one of them, whole."""
    host = session_sandbox.host_profile()
    address, port, key_path, host_key = booted_instance(aws, host, tmp_path)
    remote = await Remote.connect(
        address, port, user=host.ssh_user, client_key=key_path, host_keys=[host_key]
    )
    async with remote:
        folder = (await remote.run("mktemp -d", what="make a folder")).output[-1].strip()
        target = f"{folder}/toast-run.js"
        bodies = [f"runner {i}\n".encode() * 2000 for i in range(8)]
        await asyncio.gather(*(remote.write_file(target, b, mode=0o644) for b in bodies))
        listing = await remote.run(f"ls -A {folder}", what="list the folder")
        assert [line.strip() for line in listing.output if line.strip()] == ["toast-run.js"]
        async with remote.conn.start_sftp_client() as sftp, sftp.open(target, "rb") as handle:
            written = await handle.read()
        await remote.run(f"rm -rf {folder}", what="remove the folder")
        assert written in bodies


async def test_a_command_past_its_time_limit_is_stopped_on_the_host(
    aws: Clients, session_sandbox: Sandbox, tmp_path: Path
) -> None:
    """A command that overruns fails the step, and does not go on running on the host."""
    host = session_sandbox.host_profile()
    address, port, key_path, host_key = booted_instance(aws, host, tmp_path)
    remote = await Remote.connect(
        address, port, user=host.ssh_user, client_key=key_path, host_keys=[host_key]
    )
    marker = f"overrun-{uuid.uuid4().hex[:8]}"
    async with remote:
        with pytest.raises(RemoteError, match="timed out after 1 s"):
            await remote.run(f"echo started; exec sleep 300 # {marker}", what="overrun", timeout=1)

        async def gone() -> bool | None:
            # [o]: the pattern does not match this pgrep's own command line.
            left = await remote.run(f"pgrep -f '[o]{marker[1:]}'", what="look for it", check=False)
            return True if left.status != 0 else None

        await poll(gone, what="the overrun command to be stopped", timeout=10)


async def test_an_unknown_host_key_is_refused(sandbox: SandboxInfo, tmp_path: Path) -> None:
    other_host_key = asyncssh.generate_private_key("ssh-ed25519").convert_to_public()
    with pytest.raises(asyncssh.HostKeyNotVerifiable):
        await asyncssh.connect(
            "127.0.0.1",
            port=sandbox.ssh["port"],
            client_keys=[sandbox.ssh["operator_key"]],
            known_hosts=([other_host_key], [], []),
            agent_path=None,
            config=None,
        )


async def test_an_unauthorised_client_key_is_refused(sandbox: SandboxInfo, tmp_path: Path) -> None:
    stranger, _ = new_key(tmp_path, "stranger")
    with pytest.raises(asyncssh.PermissionDenied):
        await asyncssh.connect(
            "127.0.0.1",
            port=sandbox.ssh["port"],
            client_keys=[str(stranger)],
            known_hosts=sandbox.ssh["known_hosts"],
            agent_path=None,
            config=None,
        )


def https_get(sandbox: SandboxInfo, name: str, verify: ssl.SSLContext | bool) -> httpx.Response:
    # A new client per call: a pooled connection would skip the TLS handshake being tested.
    with httpx.Client(verify=verify, timeout=10) as client:
        return client.get(
            f"https://127.0.0.1:{sandbox.https_port}/",
            headers={"Host": name},
            extensions={"sni_hostname": name},
        )


def test_certbot_gets_a_certificate_when_the_record_exists_and_https_is_trusted_only_via_bundle(
    aws: Clients, sandbox: SandboxInfo, session_sandbox: Sandbox
) -> None:
    host = session_sandbox.host_profile()
    name = f"cert-{uuid.uuid4().hex[:8]}.{sandbox.base_domain}"
    instance = launch(aws)
    upsert_a(aws, sandbox, name, instance["PublicIpAddress"])
    write_site(host, name, "<h1>hello over https</h1>", https=False)

    issued = certbot(host, name)
    assert issued.returncode == 0, issued.stderr
    assert (Path(host.certbot_dir) / "live" / name / "fullchain.pem").exists()

    write_site(host, name, "<h1>hello over https</h1>", https=True)
    trusted = ssl.create_default_context(cafile=sandbox.ca_bundle)
    response = https_get(sandbox, name, trusted)
    assert response.status_code == 200 and "hello over https" in response.text
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        https_get(sandbox, name, True)  # the default trust store does not know the sandbox CA


def test_certbot_fails_when_the_dns_record_is_missing(
    aws: Clients, sandbox: SandboxInfo, session_sandbox: Sandbox
) -> None:
    host = session_sandbox.host_profile()
    name = f"nodns-{uuid.uuid4().hex[:8]}.{sandbox.base_domain}"
    write_site(host, name, "no record", https=False)
    failed = certbot(host, name)
    assert failed.returncode != 0
    assert not (Path(host.certbot_dir) / "live" / name).exists()
    assert "could not resolve" in failed.stdout + failed.stderr


def test_a_record_pointing_elsewhere_fails_validation(
    aws: Clients, sandbox: SandboxInfo, session_sandbox: Sandbox
) -> None:
    host = session_sandbox.host_profile()
    name = f"wrongip-{uuid.uuid4().hex[:8]}.{sandbox.base_domain}"
    upsert_a(aws, sandbox, name, "203.0.113.9")  # no sandbox instance has this address
    write_site(host, name, "wrong ip", https=False)
    failed = certbot(host, name)
    assert failed.returncode != 0
    assert "could not resolve" in failed.stdout + failed.stderr
