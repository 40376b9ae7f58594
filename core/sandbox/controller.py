"""`toast sandbox up|status|down|reset|doctor`: start, inspect and stop the local cloud.

`up` is idempotent and only starts what is not running; `down` stops exactly the
processes `up` started, by PID, after checking each PID is still ours.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import json
import os
import secrets
import shutil
import signal as signals
import ssl
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from core.host.profiles import HostProfile
from core.runs.waiting import WaitTimeout, poll_sync
from core.sandbox import configs, githost, processes
from core.sandbox.hostprofile import sandbox_host_profile
from core.sandbox.hostuser import HostUserError, as_root, ensure_login_user, login_user
from core.sandbox.layout import BASE_DOMAIN, REGION, Layout, Ports

COMPONENTS = ("aws", "sshd", "nginx", "acme")
DEBIAN_PACKAGES = (
    "openssh-server",
    "nginx",
    "certbot",
    "python3-certbot-nginx",
    "pebble",
    "git",
    "sudo",
)
_REQUIRED = {
    "sudo": "sudo",
    "/usr/sbin/sshd": "openssh-server",
    "/usr/sbin/nginx": "nginx",
    "certbot": "certbot",
    "pebble": "pebble",
    "ssh-keygen": "openssh-client",
    "git": "git",
}


class SandboxError(Exception):
    """The sandbox could not be started or used; the message says what to do."""


@dataclass(frozen=True)
class SandboxInfo:
    dir: str
    aws_endpoint: str
    region: str
    base_domain: str
    http_port: int
    https_port: int
    ca_bundle: str
    dns: str
    ssh: dict[str, Any]
    github_api: str
    github_token_file: str
    acme_directory: str
    components: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def running(self) -> bool:
        return bool(self.components) and all(c["running"] for c in self.components.values())

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["running"] = self.running
        return data


@dataclass(frozen=True)
class Problem:
    what: str
    fix: str


def host_login() -> str:
    """How the instance host is logged in to, against EC2's ec2-user with sudo."""
    if as_root():
        return f"instance host: logs in as {login_user()} with sudo, as EC2's ec2-user"
    return (
        f"instance host: logs in as {login_user()} without sudo (the sandbox is not run as "
        "root); privileged commands run unprefixed, unlike on EC2"
    )


def doctor() -> list[Problem]:
    """What the sandbox needs and this machine lacks, each with the command that fixes it."""
    missing = sorted({pkg for binary, pkg in _REQUIRED.items() if not _which(binary)})
    problems = []
    if missing:
        prefix = "" if os.geteuid() == 0 else "sudo "
        problems.append(
            Problem(
                f"missing programs from Debian packages: {', '.join(missing)}",
                f"{prefix}apt-get update && {prefix}apt-get install -y {' '.join(DEBIAN_PACKAGES)}",
            )
        )
    # Asked whether they are installed, not imported: importing moto alone takes most of a
    # second, and every command against a running sandbox passes here.
    if any(importlib.util.find_spec(name) is None for name in ("dnslib", "moto")):
        problems.append(
            Problem("the sandbox extra is not installed (moto, dnslib)", "uv sync --extra sandbox")
        )
    return problems


def _which(binary: str) -> bool:
    return Path(binary).exists() if binary.startswith("/") else shutil.which(binary) is not None


class Sandbox:
    def __init__(self, root: Path) -> None:
        self.layout = Layout(root)
        self.marker = str(self.layout.root)

    # -- public -------------------------------------------------------------------------

    def up(self, progress: Callable[[str], None] | None = None) -> SandboxInfo:
        say = progress or (lambda _msg: None)
        problems = doctor()
        if problems:
            raise SandboxError("; ".join(f"{p.what} (fix: {p.fix})" for p in problems))
        with self._locked():
            pids = self._live_pids()
            if all(name in pids for name in COMPONENTS):
                ports = self.layout.load_ports()
                assert ports is not None
                return self._info(ports, pids)
            # Keep the running part's ports; choose ports only when nothing is running.
            ports = self.layout.load_ports() if pids else None
            if ports is None:
                ports = self.layout.allocate_ports()
            say("preparing keys, sample repos and configs")
            self._prepare(ports)
            started: dict[str, int] = {}
            try:
                for name in COMPONENTS:
                    if name not in pids:
                        say(f"starting {name}")
                        started[name] = self._start(name, ports)
                        pids[name] = started[name]
                        self._save_pids(pids)
                for name in COMPONENTS:
                    self._wait_ready(name, ports, pids[name])
                say("trusting the ACME server's root")
                self._trust_acme_root(ports)
            except BaseException:
                for name, pid in reversed(started.items()):
                    processes.stop(pid, self.marker)
                    pids.pop(name, None)
                self._save_pids(pids)
                raise
            return self._info(ports, pids)

    def status(self) -> SandboxInfo | None:
        ports = self.layout.load_ports()
        if ports is None:
            return None
        return self._info(ports, self._live_pids(), include_stopped=True)

    def down(self) -> list[str]:
        """Stop what `up` started, and every app the instance host runs; returns the names
        of the components stopped (apps as "app <name>:<port>"). AWS state is kept."""
        with self._locked():
            pids = self._saved_pids()
            stopped = self.stop_host_apps()
            for name in reversed(COMPONENTS):
                pid = pids.get(name)
                if pid is not None and processes.alive(pid, self.marker):
                    processes.stop(pid, self.marker)
                    stopped.append(name)
            self.layout.pids_file.unlink(missing_ok=True)
            return stopped

    def reset(self) -> None:
        """Stop everything and delete all sandbox state (deployments in it become orphans)."""
        self.down()
        if self.layout.host_base != self.layout.root:
            shutil.rmtree(self.layout.host_base, ignore_errors=True)
        shutil.rmtree(self.layout.root, ignore_errors=True)

    def reset_aws(self) -> None:
        """Wipe moto's state (every AWS resource) and recreate the hosted zone. For tests."""
        ports = self._require_ports()
        # Generous: moto resets every backend of every region, slow on a loaded machine.
        httpx.post(f"http://127.0.0.1:{ports.aws}/moto-api/reset", timeout=30).raise_for_status()
        from core.sandbox.daemon import seed_aws  # boto3 at its adapter: the console never needs it

        seed_aws(f"http://127.0.0.1:{ports.aws}")

    def stop_host_apps(self) -> list[str]:
        """Stop every app the instance host runs (each in a session of its own, named by
        its pid file), as a machine shutting down would; returns "app <name>:<port>" each."""
        stopped = []
        for pid_file in sorted(self.layout.host_root.glob("toast/apps/*/run/*.pid")):
            with contextlib.suppress(ValueError, ProcessLookupError, PermissionError, OSError):
                os.killpg(int(pid_file.read_text().strip()), signals.SIGKILL)
                stopped.append(f"app {pid_file.parents[1].name}:{pid_file.stem}")
            # Never signalled again: the number may belong to another process by then.
            pid_file.unlink(missing_ok=True)
        return stopped

    def reset_host(self) -> None:
        """Return the shared instance host to a fresh boot's state: stop every app process,
        drop Toast's sites, app files and agent configs, and reload nginx. For tests."""
        lay = self.layout
        self.stop_host_apps()
        shutil.rmtree(lay.host_root / "toast" / "apps", ignore_errors=True)
        for app_logs in lay.host_logs.glob("*"):
            shutil.rmtree(app_logs, ignore_errors=True)
        for path in [*lay.nginx_sites.glob("*.conf"), *lay.agent_configs.glob("*.json")]:
            path.unlink(missing_ok=True)
        processes.reload_nginx_locally(self.host_profile())

    def reset_git(self) -> None:
        """Put the sample repos back to their first commit and forget webhooks. For tests."""
        lay = self.layout
        for owner in lay.git_root.iterdir() if lay.git_root.exists() else []:
            shutil.rmtree(owner, ignore_errors=True)
        lay.hooks_file.unlink(missing_ok=True)
        lay.renames_file.unlink(missing_ok=True)
        githost.seed_samples(lay)

    def host_profile(self) -> HostProfile:
        return sandbox_host_profile(self.layout, self._require_ports())

    def pids(self) -> dict[str, int]:
        return self._live_pids()

    # -- internals ----------------------------------------------------------------------

    def _require_ports(self) -> Ports:
        ports = self.layout.load_ports()
        if ports is None:
            raise SandboxError("the sandbox has never been started: run `toast sandbox up`")
        return ports

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.layout.root.mkdir(parents=True, exist_ok=True)
        with open(self.layout.root / ".lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    def _saved_pids(self) -> dict[str, int]:
        try:
            return {k: int(v) for k, v in json.loads(self.layout.pids_file.read_text()).items()}
        except (OSError, ValueError, AttributeError):
            return {}

    def _live_pids(self) -> dict[str, int]:
        return {n: p for n, p in self._saved_pids().items() if processes.alive(p, self.marker)}

    def _save_pids(self, pids: dict[str, int]) -> None:
        tmp = self.layout.pids_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(pids, indent=2))
        os.replace(tmp, self.layout.pids_file)

    def _prepare(self, ports: Ports) -> None:
        lay = self.layout
        try:
            ensure_login_user()
        except (HostUserError, subprocess.CalledProcessError) as exc:
            raise SandboxError(f"cannot set up the instance host's login user: {exc}") from exc
        if lay.host_base != lay.root:
            # Reachable by the login user (0755 down to here), as / is on an instance.
            for parent in (lay.host_base.parent, lay.host_base):
                parent.mkdir(mode=0o755, exist_ok=True)
                parent.chmod(0o755)
        for directory in (
            lay.authorized_keys.parent,
            lay.nginx_pid.parent,
            lay.logs,
            lay.ssh_dir,
            lay.nginx_dir / "tmp",
            lay.nginx_sites,
            lay.acme_webroot,
            lay.certbot_dir,
            lay.host_logs,
            lay.agent_configs,
            lay.instances,
            lay.pebble_dir,
            lay.git_root,
            lay.github_dir,
            lay.host_root / "toast",
        ):
            directory.mkdir(parents=True, exist_ok=True)
        for key in (lay.ssh_host_key, lay.client_key):
            if not key.exists():
                subprocess.run(
                    [
                        "ssh-keygen",
                        "-q",
                        "-t",
                        "ed25519",
                        "-N",
                        "",
                        "-C",
                        f"toast-sandbox-{key.name}",
                        "-f",
                        str(key),
                    ],
                    check=True,
                )
        client_pub = lay.client_key.with_suffix(".pub").read_text().strip()
        existing = lay.authorized_keys.read_text() if lay.authorized_keys.exists() else ""
        if client_pub.split()[1] not in existing:
            with open(lay.authorized_keys, "a") as handle:
                handle.write(client_pub + "\n")
        host_pub = " ".join(lay.ssh_host_key.with_suffix(".pub").read_text().split()[:2])
        lay.known_hosts.write_text(f"[127.0.0.1]:{ports.ssh} {host_pub}\n")
        if not lay.github_token.exists():
            lay.github_token.write_text("ghs_sandbox_" + secrets.token_hex(16) + "\n")
            lay.github_token.chmod(0o600)
        githost.seed_samples(lay)
        if not (lay.pebble_dir / "listener.pem").exists():
            from core.sandbox.certs import write_listener_certificate  # only when it starts

            write_listener_certificate(
                lay.listener_ca, lay.pebble_dir / "listener.pem", lay.pebble_dir / "listener.key"
            )
        (lay.ssh_dir / "sshd_config").write_text(configs.sshd_config(lay, ports))
        (lay.nginx_dir / "nginx.conf").write_text(configs.nginx_config(lay, ports))
        (lay.pebble_dir / "pebble.json").write_text(configs.pebble_config(lay, ports))

    def _start(self, name: str, ports: Ports) -> int:
        lay = self.layout
        log = lay.logs / f"{name}.log"
        if name == "aws":
            project_root = Path(__file__).resolve().parents[2]
            env = {**os.environ, "PYTHONPATH": str(project_root)}
            return processes.spawn(
                [sys.executable, "-m", "core.sandbox.daemon", str(lay.root)], log=log, env=env
            )
        if name == "sshd":
            if os.geteuid() == 0:
                Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
            return processes.spawn(
                ["/usr/sbin/sshd", "-D", "-e", "-f", str(lay.ssh_dir / "sshd_config")], log=log
            )
        if name == "nginx":
            return processes.spawn(
                [
                    "/usr/sbin/nginx",
                    "-p",
                    str(lay.nginx_dir),
                    "-e",
                    str(lay.logs / "nginx-error.log"),
                    "-c",
                    str(lay.nginx_dir / "nginx.conf"),
                ],
                log=log,
            )
        if name == "acme":
            # A new pebble forgets every ACME account: certbot must register again.
            for state in [lay.certbot_dir, *lay.certbot_dir.glob("sites/*")]:
                shutil.rmtree(state / "accounts", ignore_errors=True)
            env = {**os.environ, **configs.PEBBLE_ENV}
            return processes.spawn(
                [
                    "pebble",
                    "-config",
                    str(lay.pebble_dir / "pebble.json"),
                    "-dnsserver",
                    f"127.0.0.1:{ports.dns}",
                ],
                log=log,
                env=env,
            )
        raise ValueError(name)

    def _wait_ready(self, name: str, ports: Ports, pid: int) -> None:
        port = {
            "aws": ports.github,
            "sshd": ports.ssh,
            "nginx": ports.https,
            "acme": ports.acme_mgmt,
        }[name]
        log = self.layout.logs / f"{name}.log"

        def ready() -> bool | None:
            if not processes.alive(pid, self.marker):
                tail = (
                    log.read_text(errors="replace").strip().splitlines()[-5:]
                    if log.exists()
                    else []
                )
                raise SandboxError(
                    f"sandbox component {name} exited during start-up; "
                    f"last lines of {log}: " + " | ".join(tail)
                )
            ok = processes.port_open(port)
            if name == "aws":
                ok = ok and processes.port_open(ports.aws) and processes.port_open(ports.dns)
            return True if ok else None

        try:
            poll_sync(ready, what=f"sandbox {name} to listen", timeout=30.0)
        except WaitTimeout as exc:
            raise SandboxError(f"{exc}; see {log}") from None

    def _trust_acme_root(self, ports: Ports) -> None:
        context = ssl.create_default_context(cafile=str(self.layout.listener_ca))

        def fetch() -> str | None:
            try:
                response = httpx.get(
                    f"https://127.0.0.1:{ports.acme_mgmt}/roots/0", verify=context, timeout=2
                )
            except httpx.HTTPError:
                return None
            return response.text if response.status_code == 200 else None

        root = poll_sync(fetch, what="the ACME server's root certificate", timeout=15.0).strip()
        bundle = self.layout.ca_bundle
        existing = bundle.read_text() if bundle.exists() else ""
        if root not in existing:
            with open(bundle, "a") as handle:
                handle.write(root + "\n")

    def _info(
        self, ports: Ports, pids: dict[str, int], include_stopped: bool = False
    ) -> SandboxInfo:
        lay = self.layout
        components = {n: {"pid": pids.get(n), "running": n in pids} for n in COMPONENTS}
        return SandboxInfo(
            dir=str(lay.root),
            aws_endpoint=f"http://127.0.0.1:{ports.aws}",
            region=REGION,
            base_domain=BASE_DOMAIN,
            http_port=ports.http,
            https_port=ports.https,
            ca_bundle=str(lay.ca_bundle),
            dns=f"127.0.0.1:{ports.dns}",
            ssh={
                "host": "127.0.0.1",
                "port": ports.ssh,
                "known_hosts": str(lay.known_hosts),
                "operator_key": str(lay.client_key),
            },
            github_api=f"http://127.0.0.1:{ports.github}",
            github_token_file=str(lay.github_token),
            acme_directory=f"https://127.0.0.1:{ports.acme}/dir",
            components=components,
        )
