"""Every path and port of one sandbox, derived from its directory."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from core.sandbox.hostuser import HOST_BASE, as_root

PORT_NAMES = ("aws", "dns", "github", "ssh", "http", "https", "acme", "acme_mgmt", "webhooks")

#: Deployments a sandbox's app port block holds (two ports each, blue and green).
APP_SLOTS = 100
APP_BLOCK = APP_SLOTS * 2
#: App blocks sit below Linux's ephemeral range (32768 up), where the ports bound to 0
#: above come from, so a service of any sandbox never lands inside an app block.
APP_BLOCKS_FROM = 10_000
APP_BLOCKS_TO = 32_000
#: Which sandbox holds which block, shared by every sandbox on this machine.
APP_BLOCK_CLAIMS = Path(tempfile.gettempdir()) / "toast-sandbox-app-blocks"

SAMPLES_OWNER = "toast-samples"
BASE_DOMAIN = "sandbox.test"
REGION = "us-east-1"


@dataclass(frozen=True)
class Ports:
    aws: int
    dns: int
    github: int
    ssh: int
    http: int
    https: int
    acme: int
    acme_mgmt: int
    webhooks: int
    #: The first of the APP_BLOCK ports this sandbox's node apps use.
    apps: int


class Layout:
    """Paths under the sandbox directory. Creating it is cheap and touches nothing."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    # State of the sandbox itself
    @property
    def ports_file(self) -> Path:
        return self.root / "ports.json"

    @property
    def pids_file(self) -> Path:
        return self.root / "pids.json"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    # AWS
    @property
    def aws_state(self) -> Path:
        """moto's state (EC2, Route53, CloudWatch Logs, IAM) between `down` and `up`."""
        return self.root / "aws" / "state.pickle"

    # SSH
    @property
    def ssh_dir(self) -> Path:
        return self.root / "ssh"

    @property
    def ssh_host_key(self) -> Path:
        return self.ssh_dir / "ssh_host_ed25519_key"

    @property
    def authorized_keys(self) -> Path:
        # sshd reads it as the login user, so it lives where that user can reach.
        return self.host_base / "ssh" / "authorized_keys"

    @property
    def known_hosts(self) -> Path:
        return self.ssh_dir / "known_hosts"

    @property
    def client_key(self) -> Path:
        """A key for operators and tests; Toast's own deploy key comes from its key pair."""
        return self.ssh_dir / "operator_ed25519"

    # The shared instance host
    @property
    def host_base(self) -> Path:
        """What the instance host's login user must reach: the sandbox dir itself, or when
        run as root (the login user is then toast-host) a directory of its own under
        /var/lib/toast-sandbox."""
        if not as_root():
            return self.root
        return HOST_BASE / hashlib.sha256(str(self.root).encode()).hexdigest()[:16]

    @property
    def host_root(self) -> Path:
        return self.host_base / "host"

    @property
    def nginx_pid(self) -> Path:
        return self.host_root / "run" / "nginx.pid"

    @property
    def nginx_dir(self) -> Path:
        return self.root / "nginx"

    @property
    def nginx_sites(self) -> Path:
        return self.host_root / "nginx-sites"

    @property
    def acme_webroot(self) -> Path:
        return self.host_root / "acme"

    @property
    def certbot_dir(self) -> Path:
        return self.host_root / "letsencrypt"

    @property
    def host_logs(self) -> Path:
        return self.host_root / "log"

    @property
    def agent_configs(self) -> Path:
        return self.host_root / "cloudwatch-agent"

    @property
    def instances(self) -> Path:
        return self.host_root / "instances"

    # ACME
    @property
    def pebble_dir(self) -> Path:
        return self.root / "pebble"

    @property
    def ca_bundle(self) -> Path:
        """Every root the sandbox's ACME server has issued from (pebble makes one per start)."""
        return self.root / "ca-bundle.pem"

    @property
    def listener_ca(self) -> Path:
        """The CA of pebble's own HTTPS listener (certbot must trust it to talk ACME)."""
        return self.pebble_dir / "listener-ca.pem"

    # Git and GitHub
    @property
    def git_root(self) -> Path:
        return self.host_base / "git"

    @property
    def github_dir(self) -> Path:
        return self.root / "github"

    @property
    def github_token(self) -> Path:
        return self.github_dir / "token"

    @property
    def hooks_file(self) -> Path:
        return self.github_dir / "hooks.json"

    @property
    def renames_file(self) -> Path:
        """{"old/name": "new/name"}: repositories renamed, which GitHub answers with 301."""
        return self.github_dir / "renames.json"

    def bare_repo(self, full_name: str) -> Path:
        return self.git_root / f"{full_name}.git"

    # Ports
    def recorded_app_block(self) -> int | None:
        """The app block in ports.json, without claiming one."""
        try:
            return int(json.loads(self.ports_file.read_text())["apps"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def load_ports(self) -> Ports | None:
        try:
            data = json.loads(self.ports_file.read_text())
            chosen = {name: int(data[name]) for name in PORT_NAMES}
            apps = int(data["apps"]) if "apps" in data else None
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if apps is None:  # a sandbox from before app blocks: give it one, keep the rest
            apps = self._free_app_block()
            _write_atomic(self.ports_file, json.dumps({**data, "apps": apps}, indent=2))
        return Ports(**chosen, apps=apps)

    def allocate_ports(self) -> Ports:
        """Reuse the ports chosen before (pebble and deployments remember them); pick free
        loopback ports for any that are missing or taken by someone else."""
        previous = self.load_ports()
        chosen: dict[str, int] = {}
        held: list[socket.socket] = []
        try:
            for name in PORT_NAMES:
                old = getattr(previous, name) if previous else None
                if old and _port_free(old):
                    chosen[name] = old
                    continue
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.bind(("127.0.0.1", 0))
                held.append(sock)  # held until all are chosen, so no two names share a port
                chosen[name] = sock.getsockname()[1]
        finally:
            for sock in held:
                sock.close()
        # The block is kept even while in use: its ports are this sandbox's own running apps.
        ports = Ports(**chosen, apps=previous.apps if previous else self._free_app_block())
        self.root.mkdir(parents=True, exist_ok=True)
        _write_atomic(self.ports_file, json.dumps(asdict(ports), indent=2))
        return ports

    def _free_app_block(self) -> int:
        """Claim a block of APP_BLOCK free ports for this sandbox's apps. Claims are files in
        a directory every sandbox on the machine shares, so a block is never given to two
        sandboxes even while neither has an app running; the search starts at a place taken
        from the sandbox's directory, so sandboxes rarely contend for one block."""
        count = (APP_BLOCKS_TO - APP_BLOCKS_FROM) // APP_BLOCK
        start = app_block_start(self.root, count)
        try:  # one directory for every user's sandboxes, as /tmp itself is
            APP_BLOCK_CLAIMS.mkdir()
            APP_BLOCK_CLAIMS.chmod(0o1777)
        except FileExistsError:
            pass
        for step in range(count):
            first = APP_BLOCKS_FROM + ((start + step) % count) * APP_BLOCK
            if not all(_port_free(port) for port in range(first, first + APP_BLOCK)):
                continue
            if _claim(APP_BLOCK_CLAIMS / str(first), self.root, first):
                return first
        raise OSError(
            f"no block of {APP_BLOCK} free loopback ports between {APP_BLOCKS_FROM} and "
            f"{APP_BLOCKS_TO} for the sandbox's apps (claims in {APP_BLOCK_CLAIMS}); stop "
            "other sandboxes (`toast sandbox reset`) or servers on those ports"
        )


def app_block_start(root: Path, count: int) -> int:
    """Which of the `count` blocks a sandbox at `root` tries first."""
    return int(hashlib.sha256(str(root).encode()).hexdigest(), 16) % count


def _claim(path: Path, root: Path, first: int) -> bool:
    """Take the claim file for a block, or take it over from a sandbox that is gone (its
    directory removed) or that moved to another block."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        try:
            owner_text = path.read_text().strip()
        except OSError:
            return False
        if not owner_text:
            return False  # another sandbox is writing its claim this moment
        owner = Path(owner_text)
        if owner == root:
            return True
        if owner.is_dir() and Layout(owner).recorded_app_block() in (None, first):
            return False
        try:
            _write_atomic(path, str(root))
        except OSError:
            return False  # another user's claim, which only they may replace
        return True
    with os.fdopen(fd, "w") as claim:
        claim.write(str(root))
    return True


def _port_free(port: int) -> bool:
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
