"""The instance host's login user. On EC2 Toast logs in as ec2-user, an unprivileged user
with passwordless sudo. When the sandbox runs as root (as in CI), its instance host does the
same: it logs in as `toast-host`, made here, with sudo, and every privileged command goes
through the host profile's sudo as it would on EC2. Run as another user, the sandbox logs
in as that user without sudo (`toast sandbox doctor` says so)."""

from __future__ import annotations

import fcntl
import os
import pwd
import shutil
import subprocess
from pathlib import Path

LOGIN_USER = "toast-host"
SUDOERS = Path("/etc/sudoers.d/toast-sandbox")
#: Host-facing files live here when root: a place the login user can reach (the sandbox dir
#: itself may sit in root's 0700 home or pytest's 0700 temp dir).
HOST_BASE = Path("/var/lib/toast-sandbox")


class HostUserError(Exception):
    pass


def as_root() -> bool:
    return os.geteuid() == 0


def login_user() -> str:
    if as_root():
        return LOGIN_USER
    return pwd.getpwuid(os.geteuid()).pw_name


def ensure_login_user() -> None:
    """Make `toast-host` as AL2023 has ec2-user: a shell, no password, sudo without one."""
    if not as_root():
        return
    # Machine-wide, not per sandbox: two sandboxes starting at once (parallel test workers)
    # would both run useradd and both stage the sudoers file.
    HOST_BASE.mkdir(parents=True, exist_ok=True)
    with open(HOST_BASE / ".login-user.lock", "w") as lock:  # closing it unlocks
        fcntl.flock(lock, fcntl.LOCK_EX)
        _ensure_login_user()


def _ensure_login_user() -> None:
    if shutil.which("sudo") is None:
        raise HostUserError(
            "the sandbox logs in as an unprivileged user with sudo, and sudo is missing: "
            "apt-get install -y sudo"
        )
    try:
        pwd.getpwnam(LOGIN_USER)
    except KeyError:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--create-home",
                "--shell",
                "/bin/bash",
                "--comment",
                "Toast sandbox instance host (as ec2-user on EC2)",
                LOGIN_USER,
            ],
            check=True,
            capture_output=True,
        )
    # A locked account ("!") may not log in even with a key; "*" has no password at all.
    subprocess.run(["usermod", "-p", "*", LOGIN_USER], check=True, capture_output=True)
    rule = f"{LOGIN_USER} ALL=(ALL) NOPASSWD:ALL\nDefaults:{LOGIN_USER} !requiretty\n"
    if not SUDOERS.exists() or SUDOERS.read_text() != rule:
        staged = SUDOERS.with_suffix(".new")
        staged.write_text(rule)
        staged.chmod(0o440)
        subprocess.run(["visudo", "-cf", str(staged)], check=True, capture_output=True)
        staged.replace(SUDOERS)
    home = Path(pwd.getpwnam(LOGIN_USER).pw_dir)
    gitconfig = home / ".gitconfig"
    # The sandbox's git host is this machine's disk, its repos owned by root: git would
    # refuse them as of "dubious ownership" (a GitHub clone over HTTPS has no such owner).
    wanted = "[safe]\n\tdirectory = *\n"
    if not gitconfig.exists() or gitconfig.read_text() != wanted:
        gitconfig.write_text(wanted)
        shutil.chown(gitconfig, LOGIN_USER, LOGIN_USER)
