"""`toast.toml`: the build plan a repository carries, as fly.toml or railpack.json do.

It sits at the app's root (or at the repository root, where `root` may point at the app).
Every key is optional; what it sets wins over detection and loses to a flag. An unknown
key or a bad value refuses the deploy, naming the key and the rule, before anything is
created.

    build_type = "static"        # or "node"
    install = "npm ci"
    build = "npm run build"
    output_dir = "dist"          # static sites: the directory nginx serves
    start = "node server.js"     # node apps: serves on $PORT
    node = "22"                  # a line (20, 22, 24), a version or an npm range
    port = 3000                  # node apps: the base port
    health_path = "/healthz"
    root = "apps/web"            # only in the repository root's toast.toml
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from core.repo.spec import has_control, output_dir_rule

PLAN_FILE = "toast.toml"


class PlanFileError(ValueError):
    """toast.toml cannot be used: the message names the key and the rule."""


@dataclass(frozen=True)
class Key:
    field: str  # the plan (and DeploySpec) field it sets
    rule: str
    valid: Callable[[object], bool]


def _command(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip()) and not has_control(value)


def _path(value: object) -> bool:
    return isinstance(value, str) and value.startswith("/") and not re.search(r"\s", value)


KEYS: Mapping[str, Key] = {
    "build_type": Key(
        "build_type", 'must be "static" or "node"', lambda v: v in ("static", "node")
    ),
    "install": Key("install_cmd", "must be a non-empty command", _command),
    "build": Key("build_cmd", "must be a non-empty command", _command),
    "output_dir": Key(
        "output_dir",
        "must be a directory inside the app, like dist",
        lambda v: isinstance(v, str) and output_dir_rule(v) is None,
    ),
    "start": Key("start_cmd", "must be a non-empty command", _command),
    "node": Key(
        "node_version",
        'must be a Node line, version or range, like "22" or ">=22"',
        lambda v: (
            isinstance(v, str | int)
            and not isinstance(v, bool)
            and bool(str(v).strip())
            and not has_control(str(v))
        ),
    ),
    "port": Key(
        "port",
        "must be a whole number between 1024 and 65000",
        lambda v: isinstance(v, int) and not isinstance(v, bool) and 1024 <= v <= 65000,
    ),
    "health_path": Key("health_path", "must be a URL path starting with '/'", _path),
    "root": Key(
        "root_dir",
        "must be a directory inside the repository, like apps/web",
        lambda v: isinstance(v, str) and not has_control(v),
    ),
}


def parse_plan_file(text: str) -> dict[str, str]:
    """field -> value for every key the file sets; PlanFileError naming the first bad one."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PlanFileError(f"not valid TOML ({exc})") from exc
    values: dict[str, str] = {}
    for key, value in data.items():
        spec = KEYS.get(key)
        if spec is None:
            raise PlanFileError(f"unknown key {key!r} (known keys: {', '.join(KEYS)})")
        # Judged as it will be used: without the spaces around it (" " is no directory).
        used = value.strip() if isinstance(value, str) else value
        if not spec.valid(used):
            raise PlanFileError(f"{key} {spec.rule}; got {value!r}")
        values[spec.field] = str(used)
    return values


def render_plan_file(values: Mapping[str, str]) -> str:
    """The toast.toml that sets `values` (field -> value), keys in the documented order."""
    lines = ["# Toast's build plan for this app (toast.toml); flags given to toast deploy win."]
    for key, spec in KEYS.items():
        if spec.field not in values or values[spec.field] == "":
            continue
        value = values[spec.field]
        if key == "port":
            lines.append(f"{key} = {int(value)}")
        else:
            lines.append(f"{key} = {_toml_string(value)}")
    return "\n".join(lines) + "\n"


def _toml_string(value: str) -> str:
    """A TOML basic string: backslash, quote and control characters escaped (TOML refuses
    them raw)."""
    out = []
    for char in value:
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'
