"""Node.js lines for the sandbox host, as `dnf install nodejs22` gives them on EC2.

Every sandbox instance is this one machine, so the lines live side by side, one directory
each, and the host profile points each deployment at its plan's line (on EC2 the instance
has one line, chosen by `alternatives`). Node comes from the npm registry, which this
machine reaches: `node-linux-<arch>` carries the official binary, `npm` the npm that line
ships with. Fetched with the machine's own npm (`npm pack`: its registry, proxy and
integrity checks), once per line, and kept in a cache every sandbox on the machine shares.

Usage (the sandbox's dnf shim): python -m core.sandbox.node_lines LINE
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import platformdirs

from core.repo.node_versions import AL2023_NODE

#: The npm major each line ships with (Node's own release notes), so builds see the npm
#: they would see on EC2's nodejs{N}-npm.
NPM_FOR_LINE = {"20": "10", "22": "10", "24": "11"}
_ARCH = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}


class NodeLineError(RuntimeError):
    pass


def cache_root() -> Path:
    """Shared by every sandbox on this machine; readable by the sandbox host's users (root
    keeps it outside its own home, which they cannot enter)."""
    override = os.environ.get("TOAST_NODE_LINES_DIR")
    if override:
        return Path(override)
    if os.geteuid() == 0:
        return Path("/var/cache/toast/node")
    return Path(platformdirs.user_cache_dir("toast")) / "node"


def bin_template() -> str:
    """The host profile's `node_dir`: `{line}` is filled in per deployment."""
    return str(cache_root() / "{line}" / "bin")


def ensure_line(line: str, root: Path | None = None) -> Path:
    """The bin dir of Node `line` (node, npm, npx), fetched the first time it is asked for.
    One process fetches while others wait on a lock; a half-fetched line is never seen."""
    if line not in AL2023_NODE:
        raise NodeLineError(
            f"Node {line} is not a line Amazon Linux 2023 packages ({', '.join(AL2023_NODE)})"
        )
    base = root or cache_root()
    done = base / line / "bin"
    if _complete(done):
        return done
    base.mkdir(parents=True, exist_ok=True)
    base.chmod(0o755)
    with open(base / f".{line}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _complete(done):
            return done
        staging = Path(tempfile.mkdtemp(prefix=f".{line}-", dir=base))
        try:
            _fetch(line, staging)
            staging.chmod(0o755)
            shutil.rmtree(base / line, ignore_errors=True)
            staging.rename(base / line)
        finally:
            with contextlib.suppress(FileNotFoundError):
                shutil.rmtree(staging)
    return done


def _complete(bin_dir: Path) -> bool:
    return all((bin_dir / name).exists() for name in ("node", "npm", "npx"))


def _fetch(line: str, into: Path) -> None:
    arch = _ARCH.get(platform.machine().lower())
    if arch is None:
        raise NodeLineError(f"no Node binary package for this machine ({platform.machine()})")
    with tempfile.TemporaryDirectory() as packs:
        node_pack = _pack(f"node-linux-{arch}@{line}", Path(packs))
        npm_pack = _pack(f"npm@{NPM_FOR_LINE[line]}", Path(packs))
        bin_dir = into / "bin"
        bin_dir.mkdir(parents=True)
        npm_dir = into / "lib" / "node_modules" / "npm"
        npm_dir.mkdir(parents=True)
        with tarfile.open(node_pack) as archive:
            member = archive.getmember("package/bin/node")
            extracted = archive.extractfile(member)
            if extracted is None:
                raise NodeLineError(f"{node_pack.name} holds no bin/node")
            with extracted, open(bin_dir / "node", "wb") as out:
                shutil.copyfileobj(extracted, out)
        (bin_dir / "node").chmod(0o755)
        with tarfile.open(npm_pack) as archive:
            for member in archive.getmembers():
                if not member.name.startswith("package/") or not (
                    member.isfile() or member.isdir()
                ):
                    continue
                member.name = member.name.removeprefix("package/")
                archive.extract(member, npm_dir, filter="data")
    for tool in ("npm", "npx"):
        (bin_dir / tool).symlink_to(f"../lib/node_modules/npm/bin/{tool}-cli.js")
        (npm_dir / "bin" / f"{tool}-cli.js").chmod(0o755)
    for path in into.rglob("*"):
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o755)


def _pack(spec: str, into: Path) -> Path:
    """`npm pack SPEC`: the newest version the spec allows, as the registry's tarball."""
    result = subprocess.run(
        ["npm", "pack", "--silent", "--pack-destination", str(into), spec],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    name = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    if result.returncode != 0 or not (into / name).is_file():
        raise NodeLineError(f"npm pack {spec} failed: {result.stderr.strip()[-500:]}")
    return into / name


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m core.sandbox.node_lines LINE", file=sys.stderr)
        return 2
    try:
        found = ensure_line(argv[0])
    except (NodeLineError, OSError, subprocess.TimeoutExpired) as exc:
        print(f"Error: cannot install Node {argv[0]}: {exc}", file=sys.stderr)
        return 1
    version = subprocess.run(
        [str(found / "node"), "--version"], capture_output=True, text=True, check=False
    )
    print(f"sandbox: Node {argv[0]} is {version.stdout.strip()} in {found}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
