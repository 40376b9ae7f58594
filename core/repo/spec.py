"""What a user asks to deploy, validated before anything is created.

Every rule names its field, so a bad spec is refused with a message that says exactly
what to change.
"""

from __future__ import annotations

import posixpath
import re
import shlex
import unicodedata
from dataclasses import dataclass, field

from core.profile.config import is_dns_label
from core.repo.node_versions import AL2023_NODE, DEFAULT_NODE

NODE_LTS = tuple(AL2023_NODE)
PACKAGE_MANAGERS = ("npm", "yarn", "pnpm", "bun")
BUILD_TYPES = ("static", "node")

# Every pattern is applied with fullmatch: `$` alone would accept a trailing newline.
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_GITHUB_REPO = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}")
_GIT_URL = re.compile(r"(https://|ssh://|git@|file://)[^\s\x00-\x1f\x7f]+")
_BRANCH = re.compile(r"(?!/)(?!.*\.\.)(?!.*//)[A-Za-z0-9._/-]{1,200}(?<![/.])")
_INSTANCE_TYPE = re.compile(r"[a-z][a-z0-9-]*\.[a-z0-9]+")
_RESERVED_ENV = {"PORT", "NODE_ENV"}
#: Shorter secret values cannot be told apart from ordinary output, so they could not be
#: kept out of logs: they are refused rather than printed.
MIN_SECRET = 8
#: A root directory deeper than this is not an app's directory.
MAX_ROOT_DEPTH = 16


class SpecError(ValueError):
    """One or more fields break a rule; `problems` maps field -> rule."""

    def __init__(self, problems: dict[str, str]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{k}: {v}" for k, v in problems.items()))


@dataclass(frozen=True)
class EnvSetting:
    name: str
    value: str
    secret: bool = False

    def __repr__(self) -> str:  # never print a secret value by accident
        shown = "[REDACTED]" if self.secret else repr(self.value)
        return f"EnvSetting({self.name}={shown})"


@dataclass(frozen=True)
class DeploySpec:
    repo: str
    subdomain: str
    branch: str = "main"
    build_type: str = "static"
    node_version: str = DEFAULT_NODE
    install_cmd: str = "npm install"
    build_cmd: str = "npm run build"
    output_dir: str = "dist"
    start_cmd: str = "npm start"
    port: int = 3000
    env: tuple[EnvSetting, ...] = field(default=())
    instance_type: str = "t3.small"
    health_path: str = "/"
    #: The app's directory in the repository, and where its install runs ("" = the root).
    root_dir: str = ""
    install_dir: str = ""
    #: The detected plan this spec was filled from (values and sources), if any.
    plan: dict[str, object] | None = None

    @property
    def secrets(self) -> list[str]:
        return [e.value for e in self.env if e.secret and e.value]


def validate(spec: DeploySpec) -> DeploySpec:
    """Return `spec` if every field is acceptable; raise SpecError naming each bad field."""
    problems: dict[str, str] = {}

    if not (_GITHUB_REPO.fullmatch(spec.repo) or _GIT_URL.fullmatch(spec.repo)):
        problems["repo"] = (
            "must be a GitHub owner/name or a git URL (https://, ssh://, git@, file://)"
        )
    if not _BRANCH.fullmatch(spec.branch):
        problems["branch"] = "must be a git branch name (letters, digits, . _ - /; no '..')"
    if not is_dns_label(spec.subdomain):
        problems["subdomain"] = (
            "must be a DNS label: 1-63 lower-case letters, digits or '-', not starting or "
            "ending with '-'"
        )
    if spec.build_type not in BUILD_TYPES:
        problems["build_type"] = "must be 'static' or 'node' (Next.js is 'node' with next start)"
    if spec.node_version not in NODE_LTS:
        problems["node_version"] = (
            f"Node.js {spec.node_version} is not packaged for Amazon Linux 2023; use one of "
            f"{', '.join(NODE_LTS)}"
        )
    rule = _package_manager_rule(spec.install_cmd)
    if rule:
        problems["install_cmd"] = rule
    # A node server may have nothing to build; a static site is its build's output.
    if spec.build_cmd or spec.build_type == "static":
        rule = _package_manager_rule(spec.build_cmd)
        if rule:
            problems["build_cmd"] = rule
    for name, directory in (("root_dir", spec.root_dir), ("install_dir", spec.install_dir)):
        if directory and not _inside(directory):
            problems[name] = (
                f"must be a relative path inside the repository, like apps/web (no leading "
                f"'/', no '..', at most {MAX_ROOT_DEPTH} levels)"
            )
    if (
        spec.install_dir
        and spec.root_dir
        and not (
            spec.root_dir == spec.install_dir or spec.root_dir.startswith(spec.install_dir + "/")
        )
    ):
        problems["install_dir"] = "must be the app's directory or one of its parents"
    if spec.build_type == "static":
        rule = output_dir_rule(spec.output_dir)
        if rule:
            problems["output_dir"] = rule
    if spec.build_type == "node":
        rule = _package_manager_rule(spec.start_cmd, also=("node",))
        if rule:
            problems["start_cmd"] = rule
        if not 1024 <= spec.port <= 65000:
            problems["port"] = "must be between 1024 and 65000 (the app reads it from $PORT)"
    seen: set[str] = set()
    for setting in spec.env:
        key = f"env.{setting.name}"
        if not _ENV_NAME.fullmatch(setting.name):
            problems[key] = "names use letters, digits and '_', and do not start with a digit"
        elif setting.name in _RESERVED_ENV:
            problems[key] = f"{setting.name} is set by Toast"
        elif setting.name in seen:
            problems[key] = "is given twice"
        elif "\0" in setting.value:
            problems[key] = "values cannot contain NUL bytes"
        elif setting.secret and len(setting.value) < MIN_SECRET:
            problems[key] = (
                f"a secret must be at least {MIN_SECRET} characters: a shorter value cannot be "
                "told apart from ordinary output, so Toast could not keep it out of logs (use "
                "--env for a value that is not secret)"
            )
        seen.add(setting.name)
    if not _INSTANCE_TYPE.fullmatch(spec.instance_type):
        problems["instance_type"] = "must be an EC2 instance type such as t3.small"
    if (
        not spec.health_path.startswith("/")
        or any(c.isspace() for c in spec.health_path)
        or has_control(spec.health_path)
    ):
        problems["health_path"] = "must be a URL path starting with '/'"
    if problems:
        raise SpecError(problems)
    return spec


def has_control(text: str) -> bool:
    """Newlines, tabs, escapes, NUL and every other control character."""
    return any(unicodedata.category(ch) == "Cc" for ch in text)


def _inside(path: str) -> bool:
    parts = path.split("/")
    return not (
        path.startswith("/")
        or ".." in parts
        or has_control(path)
        or len([p for p in parts if p not in ("", ".")]) > MAX_ROOT_DEPTH
    )


def output_dir_rule(output_dir: str) -> str | None:
    """A static site serves exactly its build output: never the repository itself, whose
    .git, .env files, package.json and node_modules would be published."""
    if not output_dir or not _inside(output_dir):
        return "must be a relative path inside the repository, like dist"
    if posixpath.normpath(output_dir) == ".":
        return (
            "must be the directory the build writes (like dist), not the repository root: "
            "serving '.' would publish .git, .env files and package.json; for a plain HTML "
            "site, keep its files in a folder such as public/ and pass --output-dir public"
        )
    return None


def _package_manager_rule(command: str, also: tuple[str, ...] = ()) -> str | None:
    try:
        words = shlex.split(command)
    except ValueError as exc:
        return f"is not a valid command line ({exc})"
    if not words:
        return "must not be empty"
    allowed = (*PACKAGE_MANAGERS, *also)
    if words[0] not in allowed:
        return (
            f"must start with {' or '.join(also) + ' or ' if also else ''}a package manager "
            f"({', '.join(PACKAGE_MANAGERS)}); {words[0]!r} is not allowed, so builds stay "
            "reproducible and reviewable"
        )
    if any(ch in command for ch in (";", "&&", "||", "|", "`", "$(", ">", "<")) or has_control(
        command
    ):
        return "must be a single command: no ; && || | ` $( > <, newlines or control characters"
    return None


def parse_env(
    pairs: list[str], secret_pairs: list[str], environ: dict[str, str]
) -> list[EnvSetting]:
    """`--env K=V` and `--secret K=V` / `--secret K` (value from Toast's own environment)."""
    settings = []
    for raw in pairs:
        name, sep, value = raw.partition("=")
        if not sep:
            raise SpecError({f"env.{name}": "must be given as NAME=VALUE"})
        settings.append(EnvSetting(name, value))
    for raw in secret_pairs:
        name, sep, value = raw.partition("=")
        if not sep:
            if name not in environ:
                raise SpecError(
                    {
                        f"env.{name}": "--secret NAME reads NAME from your environment, "
                        "and it is not set"
                    }
                )
            value = environ[name]
        settings.append(EnvSetting(name, value, secret=True))
    return settings
