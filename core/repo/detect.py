"""Read a repository's build plan from its files, as Amplify, Vercel or Railpack do.

Pure: it sees a `RepoFiles` snapshot (file names per directory, and the text of the few
files it asks for) and returns a `BuildPlan` in which every value names the file it came
from. The CLI (`toast detect`, `toast deploy`) and the console's wizard both use it; what
reads the files lives in `core.repo.files`.

A repository it cannot read a plan from raises `DetectionError` with the flags to pass:
it never guesses silently.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml
from semantic_version import NpmSpec, Version

from core.repo.node_versions import AL2023_NODE, DEFAULT_NODE
from core.repo.plan_file import PLAN_FILE, PlanFileError, parse_plan_file
from core.repo.spec import MAX_ROOT_DEPTH, has_control

#: Files the detector may read, relative to a directory it looks in.
CONFIG_STEMS = ("next.config", "astro.config", "svelte.config", "nuxt.config", "vite.config")
CONFIG_EXTS = (".js", ".mjs", ".cjs", ".ts", ".mts")
READ_NAMES = (
    PLAN_FILE,
    "package.json",
    ".nvmrc",
    ".node-version",
    ".yarnrc.yml",
    "pnpm-workspace.yaml",
    *(stem + ext for stem in CONFIG_STEMS for ext in CONFIG_EXTS),
)
#: Lockfiles, in the order a directory's own package manager is decided.
LOCKFILES = (
    "pnpm-lock.yaml",
    "bun.lock",
    "bun.lockb",
    "yarn.lock",
    "package-lock.json",
    "npm-shrinkwrap.json",
)
#: yarn.lock is read only for its first lines (berry's starts with __metadata).
PEEK_NAMES = ("yarn.lock",)

#: Node release names nvm accepts for `lts/<name>`.
LTS_NAMES = {"iron": "20", "jod": "22", "krypton": "24"}
SERVER_FRAMEWORKS = ("express", "fastify", "koa", "hono", "@hono/node-server", "@nestjs/core")
_INSTALL_SCRIPTS = ("preinstall", "install", "postinstall", "prepare")


class DetectionError(ValueError):
    """No plan can be read: `field` is what is missing, the message says what to pass."""

    def __init__(self, field_name: str, message: str) -> None:
        self.field = field_name
        super().__init__(message)


@dataclass(frozen=True)
class Sourced:
    """A plan value and where it came from (a file and key, or "default")."""

    value: str
    source: str


@dataclass(frozen=True)
class RepoFiles:
    """What the detector sees of one commit: the file names in each directory it looked
    at ("" is the repository root) and the text of the files it read."""

    names: Mapping[str, frozenset[str]]
    texts: Mapping[str, str]
    commit: str | None = None

    def has(self, path: str) -> bool:
        directory, name = posixpath.split(path)
        return name in self.names.get(directory, frozenset())

    def text(self, path: str) -> str | None:
        return self.texts.get(path)


#: Plan fields, the flag that sets each, and what it means.
FIELDS = {
    "build_type": "--build-type",
    "install_cmd": "--install",
    "build_cmd": "--build",
    "output_dir": "--output-dir",
    "start_cmd": "--start",
    "node_version": "--node",
    "port": "--port",
    "health_path": "--health-path",
}
#: Fields whose values are commands and paths of the build (port and health path are not).
BUILD_FIELDS = tuple(name for name in FIELDS if name not in ("port", "health_path"))


@dataclass(frozen=True)
class BuildPlan:
    """What detection found. A value it could not find is None, with the reason (and the
    flag to pass) in `problems`."""

    framework: Sourced | None
    build_type: Sourced | None
    package_manager: Sourced
    install_cmd: Sourced
    build_cmd: Sourced | None
    node_version: Sourced | None
    root_dir: str = ""
    #: Where the install runs, relative to the repository: the workspace root for an app
    #: in a monorepo, else the app's own directory.
    install_dir: str = ""
    output_dir: Sourced | None = None
    start_cmd: Sourced | None = None
    #: The lockfile whose hash decides whether the previous release's node_modules may be
    #: reused, and whether that is safe (no install-time scripts of the project's own).
    lockfile: str | None = None
    reuse_node_modules: bool = False
    warnings: tuple[str, ...] = field(default=())
    problems: Mapping[str, str] = field(default_factory=dict)
    commit: str | None = None
    #: From toast.toml only (detection has no opinion on them).
    port: Sourced | None = None
    health_path: Sourced | None = None
    #: At a workspace's root that is not an app itself: its apps Toast can deploy (--root).
    workspace_apps: tuple[str, ...] = ()

    def values(self) -> dict[str, Sourced]:
        shown = {
            "framework": self.framework,
            "build_type": self.build_type,
            "package_manager": self.package_manager,
            "install_cmd": self.install_cmd,
            "build_cmd": self.build_cmd,
            "node_version": self.node_version,
            "output_dir": self.output_dir,
            "start_cmd": self.start_cmd,
            "port": self.port,
            "health_path": self.health_path,
        }
        return {k: v for k, v in shown.items() if v is not None}

    def to_json(self) -> dict[str, Any]:
        return {
            **{k: {"value": v.value, "source": v.source} for k, v in self.values().items()},
            "root_dir": self.root_dir,
            "install_dir": self.install_dir,
            "lockfile": self.lockfile,
            "reuse_node_modules": self.reuse_node_modules,
            "warnings": list(self.warnings),
            "problems": dict(self.problems),
            "commit": self.commit,
            "workspace_apps": list(self.workspace_apps),
        }


def resolve(
    plan: BuildPlan, given: Mapping[str, str | None], *, given_as: str | None = None
) -> dict[str, Sourced]:
    """The values to deploy with: each value given wins over detection (source: the flag,
    or `given_as`, e.g. the wizard's "edited"). DetectionError for the first value still
    missing, with detection's reason."""
    chosen: dict[str, Sourced] = {}
    detected = plan.values()
    build_type = given.get("build_type") or (plan.build_type.value if plan.build_type else None)
    for name, flag in FIELDS.items():
        value = given.get(name)
        if value is not None:
            chosen[name] = Sourced(value, given_as or flag)
            continue
        found = detected.get(name)
        # A value detected for the other build type does not apply to this one.
        other_type = plan.build_type is not None and plan.build_type.value != build_type
        if name in ("output_dir", "start_cmd") and other_type:
            found = None
        if found is not None:
            chosen[name] = found
    needed = ["build_type", "install_cmd", "node_version"]
    if build_type == "static":
        needed += ["build_cmd", "output_dir"]
    elif build_type == "node":
        needed += ["start_cmd"]
    for name in needed:
        if name not in chosen:
            reason = plan.problems.get(name) or plan.problems.get("build_type")
            raise DetectionError(
                name, reason or f"Toast could not detect {name}; pass {FIELDS[name]}"
            )
    if "build_cmd" not in chosen:
        chosen["build_cmd"] = Sourced("", "no build script (a node server may have none)")
    return chosen


def search_dirs(root_dir: str) -> list[str]:
    """The directories whose names the detector needs: the app's and every parent up to
    the repository root (where a monorepo keeps its lockfile and workspace list)."""
    parts = [part for part in root_dir.split("/") if part]
    return ["/".join(parts[:depth]) for depth in range(len(parts), -1, -1)]


def files_to_read(names: Mapping[str, frozenset[str]]) -> list[str]:
    """Of the files present, the ones the detector reads."""
    out = []
    for directory, present in names.items():
        for name in (*READ_NAMES, *PEEK_NAMES):
            if name in present:
                out.append(posixpath.join(directory, name) if directory else name)
    return out


def detect(files: RepoFiles, root_dir: str = "") -> BuildPlan:
    """The build plan of the app at `root_dir` ("" for the repository root)."""
    root_dir = normalise_root(root_dir)
    pkg_path = _join(root_dir, "package.json")
    problems: dict[str, str] = {}
    warnings: list[str] = []
    try:
        package = _package_json(files, pkg_path)
    except DetectionError as exc:
        problems[exc.field] = str(exc)
        package = {}
    deps = {**package.get("devDependencies", {}), **package.get("dependencies", {})}
    scripts: dict[str, str] = {
        k: v for k, v in (package.get("scripts") or {}).items() if isinstance(v, str)
    }
    pm, install_dir, lockfile = _package_manager(files, root_dir, package, warnings)
    install = _install_command(files, pm, install_dir, lockfile, package)
    node: Sourced | None = None
    try:
        node = _node_version(files, root_dir, install_dir, package)
    except DetectionError as exc:
        problems[exc.field] = str(exc)

    def dep_source(name: str) -> str:
        where = "dependencies" if name in package.get("dependencies", {}) else "devDependencies"
        return f"{pkg_path}: {where}.{name}"

    def run(script: str) -> Sourced | None:
        if script not in scripts:
            return None
        return Sourced(f"{pm.value} run {script}", f"{pkg_path}: scripts.{script}")

    framework = build_type = output = start = None
    if not problems.get("build_type"):
        try:
            framework, build_type, output, start = _framework(
                files, root_dir, deps, scripts, dep_source, pm.value
            )
        except DetectionError as exc:
            problems[exc.field] = str(exc)
    apps: tuple[str, ...] = ()
    if not root_dir and build_type is None and "build_type" in problems:
        workspace = workspace_of(files)
        if workspace is not None:
            apps = deployable_apps(files, workspace)
            problems["build_type"] = workspace_refusal(workspace, apps)
    build = run("build")
    declared = plan_file_values(files, root_dir)
    if "build_type" in declared:
        if build_type is None or build_type.value != declared["build_type"].value:
            output = start = None  # detected for the other build type
        build_type = declared["build_type"]
        problems.pop("build_type", None)
    if declared and "install_cmd" in declared:
        install = declared["install_cmd"]
    build = declared.get("build_cmd", build)
    if build is None and (build_type is None or build_type.value == "static"):
        problems["build_cmd"] = (
            f"{pkg_path} has no 'build' script; add one, set build in {PLAN_FILE} or pass --build"
        )
    if build_type is not None and build_type.value == "node" and start is None:
        start = declared.get("start_cmd") or run("start")
        if start is None:
            problems["start_cmd"] = (
                f"{pkg_path} has no 'start' script; add one, set start in {PLAN_FILE} "
                "or pass --start"
            )
    output = declared.get("output_dir", output)
    start = declared.get("start_cmd", start)
    if build_type is not None and build_type.value == "static" and output is None:
        problems["output_dir"] = (
            f"Toast cannot tell which directory the build writes; set output_dir in "
            f"{PLAN_FILE} or pass --output-dir"
        )
    if "node_version" in declared:
        node = declared["node_version"]
        problems.pop("node_version", None)
    scripts_run = [s for s in _INSTALL_SCRIPTS if s in scripts]
    reuse = lockfile is not None and not scripts_run and install_dir == root_dir
    return BuildPlan(
        framework=framework,
        build_type=build_type,
        package_manager=pm,
        install_cmd=install,
        build_cmd=build,
        node_version=node,
        root_dir=root_dir,
        install_dir=install_dir,
        output_dir=output if build_type and build_type.value == "static" else None,
        start_cmd=start if build_type and build_type.value == "node" else None,
        lockfile=lockfile,
        reuse_node_modules=reuse,
        warnings=tuple(warnings),
        problems=problems,
        commit=files.commit,
        port=declared.get("port"),
        health_path=declared.get("health_path"),
        workspace_apps=apps,
    )


#: A workspace's member apps read when its root is not an app (each costs a request).
MAX_WORKSPACE_APPS = 24


@dataclass(frozen=True)
class Workspace:
    kind: str  # "pnpm", "npm" or "yarn"
    source: str  # the file that declares it
    patterns: tuple[str, ...]

    def bases(self) -> list[str]:
        """The directories whose entries may be members ("apps" for "apps/*")."""
        out = []
        for pattern in self.patterns:
            base, _, last = pattern.rstrip("/").rpartition("/")
            if last == "*" and base and "*" not in base:
                out.append(base)
        return list(dict.fromkeys(out))

    def members(self, listed: Mapping[str, frozenset[str]]) -> list[str]:
        """Member directories: `base/*` entries as listed, and exact paths as written."""
        found: list[str] = []
        for pattern in self.patterns:
            clean = pattern.rstrip("/")
            base, _, last = clean.rpartition("/")
            if last == "*" and base in listed:
                found += [f"{base}/{name}" for name in sorted(listed[base])]
            elif "*" not in clean and clean:
                found.append(clean)
        return list(dict.fromkeys(found))[:MAX_WORKSPACE_APPS]


def workspace_of(files: RepoFiles) -> Workspace | None:
    """The workspace the repository root declares (pnpm-workspace.yaml, or package.json's
    `workspaces` for npm and yarn), or None."""
    text = files.text("pnpm-workspace.yaml")
    if text is not None:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError:
            data = None
        listed = data.get("packages") if isinstance(data, dict) else None
        patterns = [p for p in listed or [] if isinstance(p, str) and not p.startswith("!")]
        return Workspace("pnpm", "pnpm-workspace.yaml", tuple(patterns))
    try:
        package = json.loads(files.text("package.json") or "{}")
    except ValueError:
        return None
    declared = package.get("workspaces") if isinstance(package, dict) else None
    if isinstance(declared, dict):
        declared = declared.get("packages")
    if not isinstance(declared, list):
        return None
    kind = "yarn" if files.has("yarn.lock") else "npm"
    patterns = [p for p in declared if isinstance(p, str) and not p.startswith("!")]
    return Workspace(kind, "package.json: workspaces", tuple(patterns))


def deployable_apps(files: RepoFiles, workspace: Workspace) -> tuple[str, ...]:
    """The members whose own plan has a build type (libraries and tools are left out)."""
    apps = []
    for member in workspace.members(files.names):
        if not files.has(_join(member, "package.json")):
            continue
        try:
            plan = detect(files, member)
        except DetectionError:
            continue
        if plan.build_type is not None:
            apps.append(member)
    return tuple(apps)


def workspace_refusal(workspace: Workspace, apps: tuple[str, ...]) -> str:
    article = "an" if workspace.kind == "npm" else "a"
    if not apps:
        return (
            f"this is {article} {workspace.kind} workspace ({workspace.source}) and none of its "
            "members is an app Toast can tell how to build; pass --root with the app's "
            "directory, and --build-type with --output-dir or --start"
        )
    choices = " or ".join(f"--root {app}" for app in apps[:4])
    more = f" (and {len(apps) - 4} more)" if len(apps) > 4 else ""
    return (
        f"this is {article} {workspace.kind} workspace ({workspace.source}), not an app; "
        f"deploy one of its apps with {choices}{more}, or set root in a toast.toml at the "
        "repository root"
    )


def plan_file_at(files: RepoFiles, directory: str) -> dict[str, str] | None:
    """The values of `directory`'s toast.toml (None when it has none); DetectionError
    naming the file, the key and the rule when it cannot be used."""
    path = _join(directory, PLAN_FILE)
    text = files.text(path)
    if text is None:
        return None
    try:
        return parse_plan_file(text)
    except PlanFileError as exc:
        raise DetectionError(path, str(exc)) from exc


def plan_file_values(files: RepoFiles, root_dir: str) -> dict[str, Sourced]:
    """What toast.toml sets for the app at `root_dir`: the app's own file, else the
    repository root's when its `root` names this app. Node values become a line."""
    path = _join(root_dir, PLAN_FILE)
    values = plan_file_at(files, root_dir)
    if values is None and root_dir:
        outer = plan_file_at(files, "")
        if outer is not None and normalise_root(outer.get("root_dir", "")) == root_dir:
            path, values = PLAN_FILE, outer
    if values is None:
        return {}
    key_of = {"install_cmd": "install", "build_cmd": "build", "start_cmd": "start"}
    key_of |= {"node_version": "node", "root_dir": "root"}
    found = {
        name: Sourced(value, f"{path}: {key_of.get(name, name)}")
        for name, value in values.items()
        if name != "root_dir"
    }
    if "node_version" in found:
        where = found["node_version"].source
        found["node_version"] = Sourced(_line_for(values["node_version"], where), where)
    return found


def normalise_root(root_dir: str) -> str:
    """`--root` as a clean relative path ("" for the repository root), or DetectionError
    naming the rule: never absolute, never above the repository, never absurdly deep."""
    rule = (
        f"must be a directory inside the repository, like apps/web (no leading '/', no '..', "
        f"no control characters, at most {MAX_ROOT_DEPTH} levels)"
    )
    raw = root_dir.strip()
    if raw.startswith("/") or ".." in raw.split("/") or has_control(root_dir):
        raise DetectionError("root_dir", f"{rule}; got {root_dir!r}")
    cleaned = posixpath.normpath(raw or ".").strip("/")
    if cleaned in ("", "."):
        return ""
    if len(cleaned.split("/")) > MAX_ROOT_DEPTH:
        raise DetectionError("root_dir", f"{rule}; got {root_dir!r}")
    return cleaned


def _join(directory: str, name: str) -> str:
    return posixpath.join(directory, name) if directory else name


def _package_json(files: RepoFiles, path: str) -> dict[str, Any]:
    text = files.text(path)
    if text is None:
        raise DetectionError(
            "build_type",
            f"no {path} in the repository, so Toast cannot tell how to build it; pass "
            "--build-type with --install/--build and --output-dir (static) or --start (node), "
            "or --root for an app in a subdirectory",
        )
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise DetectionError("build_type", f"{path} is not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise DetectionError("build_type", f"{path} is not a JSON object")
    return data


def _config(files: RepoFiles, root_dir: str, stem: str) -> tuple[str, str] | None:
    for ext in CONFIG_EXTS:
        path = _join(root_dir, stem + ext)
        text = files.text(path)
        if text is not None:
            return path, text
    return None


def _framework(
    files: RepoFiles,
    root_dir: str,
    deps: dict[str, Any],
    scripts: dict[str, str],
    dep_source: Any,
    pm: str,
) -> tuple[Sourced, Sourced, Sourced | None, Sourced | None]:
    """framework, build type, output dir, start command (None: the `start` script)."""
    if "next" in deps:
        src = dep_source("next")
        config = _config(files, root_dir, "next.config")
        if config and re.search(r"""output\s*:\s*['"]export['"]""", config[1]):
            return (
                Sourced("nextjs", src),
                Sourced("static", f"{config[0]}: output: 'export'"),
                Sourced("out", f"{config[0]}: Next.js exports to out/"),
                None,
            )
        start = (
            Sourced(f"{pm} run start", f"{_join(root_dir, 'package.json')}: scripts.start")
            if scripts.get("start", "").startswith("next start")
            else Sourced(_exec(pm, "next start"), f"{src} (next start serves on $PORT)")
        )
        return (
            Sourced("nextjs", src),
            Sourced("node", f"{src}: no output: 'export' in next.config, so next start"),
            None,
            start,
        )
    if "nuxt" in deps:
        src = dep_source("nuxt")
        config = _config(files, root_dir, "nuxt.config")
        static = config and (
            re.search(r"\bssr\s*:\s*false", config[1])
            or re.search(r"""preset\s*:\s*['"]static['"]""", config[1])
        )
        if static and config:
            if "generate" not in scripts:
                raise DetectionError(
                    "build_cmd", f"{config[0]} turns SSR off but package.json has no 'generate'"
                )
            return (
                Sourced("nuxt", src),
                Sourced("static", f"{config[0]}: ssr: false"),
                Sourced(".output/public", "Nuxt's generate output"),
                None,
            )
        return (
            Sourced("nuxt", src),
            Sourced("node", f"{src}: server rendering (Nuxt's default)"),
            None,
            Sourced("node .output/server/index.mjs", "Nuxt's server build (.output/server)"),
        )
    if "@sveltejs/kit" in deps:
        return _sveltekit(files, root_dir, deps, dep_source)
    if "astro" in deps:
        src = dep_source("astro")
        config = _config(files, root_dir, "astro.config")
        text = config[1] if config else ""
        if "@astrojs/node" in deps or "@astrojs/node" in text:
            return (
                Sourced("astro", src),
                Sourced("node", f"{config[0] if config else src}: @astrojs/node adapter"),
                None,
                Sourced("node ./dist/server/entry.mjs", "@astrojs/node standalone entry"),
            )
        return (
            Sourced("astro", src),
            Sourced("static", f"{src}: no server adapter"),
            Sourced("dist", "Astro's default outDir"),
            None,
        )
    if "react-scripts" in deps:
        src = dep_source("react-scripts")
        return (
            Sourced("create-react-app", src),
            Sourced("static", src),
            Sourced("build", "Create React App builds to build/"),
            None,
        )
    if "vite" in deps:
        src = dep_source("vite")
        config = _config(files, root_dir, "vite.config")
        out = re.search(r"""outDir\s*:\s*['"]([^'"]+)['"]""", config[1]) if config else None
        flavour = next(
            (
                name
                for dep, name in (
                    ("@vitejs/plugin-react", "vite-react"),
                    ("@vitejs/plugin-react-swc", "vite-react"),
                    ("@vitejs/plugin-vue", "vite-vue"),
                    ("@sveltejs/vite-plugin-svelte", "vite-svelte"),
                )
                if dep in deps
            ),
            "vite",
        )
        return (
            Sourced(flavour, src),
            Sourced("static", f"{src}: Vite builds a static site"),
            Sourced(out.group(1), f"{config[0]}: build.outDir")
            if out and config
            else Sourced("dist", "Vite's default build.outDir"),
            None,
        )
    server = next((name for name in SERVER_FRAMEWORKS if name in deps), None)
    if "start" in scripts:
        pkg = _join(root_dir, "package.json")
        return (
            Sourced(server or "node", dep_source(server) if server else f"{pkg}: scripts.start"),
            Sourced("node", f"{pkg}: scripts.start"),
            None,
            None,
        )
    raise DetectionError(
        "build_type",
        f"{_join(root_dir, 'package.json')} names no framework Toast knows (Next.js, Nuxt, "
        "SvelteKit, Astro, Vite, Create React App) and has no start script; pass "
        "--build-type static with --build and --output-dir, or --build-type node with --start",
    )


def _sveltekit(
    files: RepoFiles, root_dir: str, deps: dict[str, Any], dep_source: Any
) -> tuple[Sourced, Sourced, Sourced | None, Sourced | None]:
    """SvelteKit's adapter decides the build type. It is configured in svelte.config.*, or
    (sv 0.17 and later) inside `sveltekit({ adapter })` in vite.config.*; failing both, the
    one adapter package installed names it."""
    framework = Sourced("sveltekit", dep_source("@sveltejs/kit"))
    configs = [
        found
        for found in (
            _config(files, root_dir, "svelte.config"),
            _config(files, root_dir, "vite.config"),
        )
        if found is not None
    ]
    where, text = next(
        ((path, body) for path, body in configs if "@sveltejs/adapter-" in body),
        (None, ""),
    )
    installed = [name for name in ("static", "node") if f"@sveltejs/adapter-{name}" in deps]
    if where is None and len(installed) == 1:
        adapter = installed[0]
        source = dep_source(f"@sveltejs/adapter-{adapter}")
    elif where is not None and "@sveltejs/adapter-static" in text:
        adapter, source = "static", f"{where}: adapter-static"
    elif where is not None and "@sveltejs/adapter-node" in text:
        adapter, source = "node", f"{where}: adapter-node"
    else:
        named = where or " and ".join(path for path, _ in configs) or None
        said = f"{named} configures neither" if named else "no config file names"
        raise DetectionError(
            "build_type",
            f"{said} adapter-static nor adapter-node (adapter-auto picks nothing for a plain "
            "server); install and configure one of them (`npx sv add sveltekit-adapter`), "
            "or pass --build-type with --output-dir or --start",
        )
    if adapter == "static":
        out = re.search(r"""pages\s*:\s*['"]([^'"]+)['"]""", text)
        return (
            framework,
            Sourced("static", source),
            Sourced(out.group(1) if out else "build", f"{source} pages"),
            None,
        )
    out = re.search(r"""out\s*:\s*['"]([^'"]+)['"]""", text)
    return (
        framework,
        Sourced("node", source),
        None,
        Sourced(f"node {out.group(1) if out else 'build'}", source),
    )


def _exec(pm: str, command: str) -> str:
    return {
        "npm": f"npm exec -- {command}",
        "pnpm": f"pnpm exec {command}",
        "yarn": f"yarn {command}",
        "bun": f"bun x {command}",
    }[pm]


def _package_manager(
    files: RepoFiles, root_dir: str, package: dict[str, Any], warnings: list[str]
) -> tuple[Sourced, str, str | None]:
    """The package manager, the directory the install runs in, and its lockfile."""
    declared = str(package.get("packageManager") or "")
    declared_name = declared.split("@", 1)[0] if declared else ""
    for directory in search_dirs(root_dir):
        for lockfile in LOCKFILES:
            path = _join(directory, lockfile)
            if not files.has(path):
                continue
            pm = {
                "pnpm-lock.yaml": "pnpm",
                "bun.lock": "bun",
                "bun.lockb": "bun",
                "yarn.lock": "yarn",
                "package-lock.json": "npm",
                "npm-shrinkwrap.json": "npm",
            }[lockfile]
            if declared_name and declared_name != pm:
                warnings.append(
                    f"package.json says packageManager {declared} but the lockfile is "
                    f"{path}; Toast follows the lockfile"
                )
            return Sourced(pm, path), directory, path
    if declared_name in ("npm", "pnpm", "yarn", "bun"):
        warnings.append(
            f"no lockfile: installs are not reproducible (add the lockfile {declared_name} writes)"
        )
        return Sourced(declared_name, "package.json: packageManager"), root_dir, None
    warnings.append("no lockfile: `npm install` resolves versions afresh on every build")
    return Sourced("npm", "default (no lockfile)"), root_dir, None


def _yarn_berry(files: RepoFiles, install_dir: str, package: dict[str, Any]) -> str | None:
    declared = str(package.get("packageManager") or "")
    match = re.match(r"yarn@(\d+)", declared)
    if match:
        return "package.json: packageManager" if int(match.group(1)) >= 2 else None
    lock = files.text(_join(install_dir, "yarn.lock")) or ""
    if "__metadata:" in lock[:2000]:
        return f"{_join(install_dir, 'yarn.lock')}: __metadata (Yarn 2+)"
    if files.has(_join(install_dir, ".yarnrc.yml")):
        return f"{_join(install_dir, '.yarnrc.yml')} (Yarn 2+)"
    return None


def _install_command(
    files: RepoFiles,
    pm: Sourced,
    install_dir: str,
    lockfile: str | None,
    package: dict[str, Any],
) -> Sourced:
    if lockfile is None:
        return Sourced(f"{pm.value} install", pm.source)
    if pm.value == "npm":
        return Sourced("npm ci", lockfile)
    if pm.value == "pnpm":
        return Sourced("pnpm install --frozen-lockfile", lockfile)
    if pm.value == "bun":
        return Sourced("bun install --frozen-lockfile", lockfile)
    berry = _yarn_berry(files, install_dir, package)
    if berry:
        return Sourced("yarn install --immutable", berry)
    return Sourced("yarn install --frozen-lockfile", f"{lockfile} (Yarn 1)")


def _node_version(
    files: RepoFiles, root_dir: str, install_dir: str, package: dict[str, Any]
) -> Sourced:
    offered = list(AL2023_NODE)
    for directory in dict.fromkeys((root_dir, install_dir, "")):
        for name in (".nvmrc", ".node-version"):
            path = _join(directory, name)
            text = files.text(path)
            if text is not None and text.strip():
                return Sourced(_line_for(text.strip().splitlines()[0].strip(), path), path)
    pkg = _join(root_dir, "package.json")
    volta = (package.get("volta") or {}).get("node")
    if isinstance(volta, str) and volta.strip():
        return Sourced(_line_for(volta.strip(), f"{pkg}: volta.node"), f"{pkg}: volta.node")
    engines = (package.get("engines") or {}).get("node")
    if isinstance(engines, str) and engines.strip():
        where = f"{pkg}: engines.node"
        return Sourced(_line_for(engines.strip(), where), f"{where} {engines.strip()!r}")
    return Sourced(DEFAULT_NODE, f"default (newest line Amazon Linux 2023 packages: {offered[-1]})")


def _line_for(wanted: str, where: str) -> str:
    """The newest offered Node major that satisfies `wanted` (an nvm alias, a version or
    an npm range); DetectionError naming `where` if none does."""
    offered = sorted(AL2023_NODE, key=int)
    value = wanted.strip().lower()
    if value in ("node", "latest", "current", "stable", "lts/*", "lts"):
        return offered[-1]
    if value.startswith("lts/"):
        line = LTS_NAMES.get(value[4:])
        if line in AL2023_NODE:
            return line
        raise DetectionError(
            "node_version",
            f"{where} asks for Node {wanted}, which Amazon Linux 2023 does not package "
            f"(available: {', '.join(offered)})",
        )
    bare = value[1:] if value.startswith("v") else value
    if re.fullmatch(r"\d+(\.\d+){0,2}", bare):
        major = bare.split(".")[0]
        if major in AL2023_NODE:
            return major
        raise DetectionError(
            "node_version",
            f"{where} pins Node {wanted}; Amazon Linux 2023 packages only "
            f"{', '.join(offered)} (change it to one of those lines)",
        )

    try:
        spec = NpmSpec(re.sub(r"(?<![\w.])v(?=\d)", "", wanted))
    except ValueError as exc:
        raise DetectionError(
            "node_version", f"{where} has a Node version Toast cannot read: {wanted!r} ({exc})"
        ) from exc
    fitting = [
        line
        for line in offered
        if any(spec.match(Version(f"{line}.{m}.{p}")) for m in range(41) for p in (0, 99))
    ]
    if not fitting:
        raise DetectionError(
            "node_version",
            f"{where} {wanted!r} is satisfied by no Node line Amazon Linux 2023 packages "
            f"({', '.join(offered)}); widen the range or pass --node",
        )
    return fitting[-1]
