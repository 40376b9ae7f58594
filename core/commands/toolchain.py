"""Package managers on the host: pnpm and yarn through corepack, bun from the npm registry,
and one download cache per host that every build shares."""

from __future__ import annotations

import posixpath
import shlex

from core.commands import chain, render
from core.host.profiles import HostProfile

COREPACK_MANAGERS = ("pnpm", "yarn")


def tools_bin(host: HostProfile) -> str:
    return posixpath.join(host.root, "tools", "bin")


def cache_dir(host: HostProfile) -> str:
    return posixpath.join(host.root, "cache")


def node_bin(host: HostProfile, line: str) -> str | None:
    """Where the plan's Node line is, when the host keeps lines side by side."""
    return host.node_dir.format(line=line) if host.node_dir else None


def node_exe(host: HostProfile, line: str) -> str:
    """The node that runs Toast's runner and the app: the plan's line."""
    found = node_bin(host, line)
    return posixpath.join(found, "node") if found else "node"


def build_env(host: HostProfile, install_cmd: str, node_line: str) -> dict[str, str]:
    """Environment for every install, build and app command: Toast's tools first on PATH
    (the runner prepends TOAST_PATH_PREFIX), and caches that outlive releases, so a rebuild
    with an unchanged lockfile downloads nothing."""
    cache = cache_dir(host)
    trust = {"NODE_EXTRA_CA_CERTS": host.ca_bundle_file} if host.ca_bundle_file else {}
    # pnpm reads its store from npm_config_store_dir, which npm itself warns
    # about in every build ("Unknown env config"): set only where pnpm installs.
    pnpm = {"npm_config_store_dir": posixpath.join(cache, "pnpm-store")}
    return {
        **(pnpm if install_cmd.split(maxsplit=1)[:1] == ["pnpm"] else {}),
        **trust,
        "TOAST_PATH_PREFIX": ":".join(p for p in (node_bin(host, node_line), tools_bin(host)) if p),
        "COREPACK_HOME": posixpath.join(cache, "corepack"),
        "COREPACK_ENABLE_DOWNLOAD_PROMPT": "0",
        # Without a packageManager field, the version corepack itself pins, not "latest".
        "COREPACK_DEFAULT_TO_LATEST": "0",
        "npm_config_cache": posixpath.join(cache, "npm"),
        "npm_config_update_notifier": "false",
        "pnpm_config_store_dir": posixpath.join(cache, "pnpm-store"),
        "YARN_CACHE_FOLDER": posixpath.join(cache, "yarn"),
        "BUN_INSTALL_CACHE_DIR": posixpath.join(cache, "bun"),
    }


def enable_package_managers(host: HostProfile) -> str:
    """Shims for pnpm and yarn in Toast's tools dir (corepack picks the version a project's
    `packageManager` names). Where the Node install has no corepack, it comes from the npm
    registry into the same dir. Nothing outside Toast's own directory is touched."""
    bin_dir = tools_bin(host)
    prefix = posixpath.dirname(bin_dir)
    q = shlex.quote
    install_corepack = render(
        ("npm", "install", "--global", "--prefix", prefix, "--no-audit", "--no-fund", "corepack")
    )
    enable = render(("corepack", "enable", "--install-directory", bin_dir, *COREPACK_MANAGERS))
    return (
        f'mkdir -p {q(bin_dir)} {q(cache_dir(host))} && export PATH={q(bin_dir)}:"$PATH" && '
        f"{{ command -v corepack >/dev/null 2>&1 || {install_corepack}; }} && {enable}"
    )


def ensure_bun(host: HostProfile) -> str:
    """bun, when a project chose it: the npm registry's `bun` package (its binary comes as
    an optional dependency from the same registry)."""
    bin_dir = tools_bin(host)
    q = shlex.quote
    install = render(
        (
            "npm",
            "install",
            "--global",
            "--prefix",
            posixpath.dirname(bin_dir),
            "--no-audit",
            "--no-fund",
            "bun",
        )
    )
    return f"test -x {q(posixpath.join(bin_dir, 'bun'))} || {install}"


def deps_fingerprint(install_dir: str, lockfile: str, node: str = "node") -> str:
    """Print a hash of what decides node_modules: the Node version, the lockfile and the
    package.json of the directory the install runs in."""
    q = shlex.quote
    package_json = posixpath.join(install_dir, "package.json")
    return f"{{ {q(node)} --version && cat -- {q(lockfile)} {q(package_json)}; }} | sha256sum"


def reuse_node_modules(previous_dir: str, install_dir: str, *, link: bool) -> str:
    """Bring the previous release's node_modules into the new build.

    `link` (static sites): hard links, which take a tenth of a copy's time. A static
    release serves only its build output, which is never linked, so whatever the new build
    writes into node_modules cannot change what the live site serves. Node apps run from
    their node_modules, so theirs are copied: the live process's code stays untouched."""
    src = posixpath.join(previous_dir, "node_modules")
    flags = ("-al",) if link else ("-a", "--reflink=auto")
    return chain(("test", "-d", src), ("cp", *flags, "--", src, install_dir + "/"))
