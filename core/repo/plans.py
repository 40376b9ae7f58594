"""From a repository and what the user said to a complete DeploySpec: detection merged with
the values given. Shared by the CLI (`toast detect`, `toast deploy`, `redeploy
--redetect`) and the console's wizard, so both say the same thing about the same repo."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from core.profile.targets import Target
from core.repo.detect import (
    FIELDS,
    BuildPlan,
    DetectionError,
    RepoFiles,
    Sourced,
    detect,
    normalise_root,
    plan_file_at,
    resolve,
)
from core.repo.files import read_repo_files
from core.repo.heads import local_repo_refusal
from core.repo.spec import DeploySpec


async def detect_repo(target: Target, repo: str, branch: str, root_dir: str = "") -> BuildPlan:
    """The plan of `repo`@`branch` (RepoCheckError when it cannot be read, DetectionError
    for a bad root dir, before anything is read)."""
    root_dir = normalise_root(root_dir)
    refusal = local_repo_refusal(repo, target.host.local_reader)
    if refusal is not None:
        raise refusal

    async def read(root: str) -> RepoFiles:
        return await read_repo_files(
            repo, branch, root, github_api=target.github_api, github_token=target.github_token
        )

    files = await read(root_dir)
    if not root_dir:
        # The repository root's toast.toml may say where the app is (a monorepo's app).
        pointed = normalise_root((plan_file_at(files, "") or {}).get("root_dir", ""))
        if pointed:
            root_dir = pointed
            files = await read(root_dir)
    return detect(files, root_dir)


def plan_record(plan: BuildPlan, chosen: Mapping[str, Sourced]) -> dict[str, Any]:
    """What the deployment keeps: the values deployed with and where each came from (a
    file, a default, or the flag the user gave), and what detection saw."""
    return {
        "chosen": {k: {"value": v.value, "source": v.source} for k, v in chosen.items()},
        "detected": plan.to_json(),
    }


def apply_plan(
    spec: DeploySpec,
    plan: BuildPlan,
    given: Mapping[str, str | None],
    *,
    given_as: str | None = None,
) -> tuple[DeploySpec, dict[str, Sourced]]:
    """`spec` with every build value not given taken from the plan; DetectionError naming
    the first value that is neither given nor detected. `toast deploy` (flags) and the
    wizard (fields typed or edited, `given_as="edited"`) both build their spec here."""
    chosen = resolve(plan, given, given_as=given_as)
    values = {name: chosen[name].value for name in FIELDS if name in chosen}
    filled = dataclasses.replace(
        spec,
        build_type=values["build_type"],
        node_version=values["node_version"],
        install_cmd=values["install_cmd"],
        build_cmd=values.get("build_cmd", ""),
        output_dir=values.get("output_dir", spec.output_dir),
        start_cmd=values.get("start_cmd", spec.start_cmd),
        port=int(values["port"]) if "port" in values else spec.port,
        health_path=values.get("health_path", spec.health_path),
        root_dir=plan.root_dir,
        install_dir=plan.install_dir,
        plan=plan_record(plan, chosen),
    )
    return filled, chosen


def cannot_deploy(repo: str, exc: DetectionError) -> str:
    """The refusal of a repository whose plan misses a value: the same words from the CLI
    and the console."""
    return f"cannot deploy {repo}: {exc.field}: {exc}"


def flags_given(record: Mapping[str, Any] | None) -> dict[str, str | None]:
    """The values a deployment was given by flag (kept on a --redetect)."""
    chosen = (record or {}).get("chosen", {})
    return {
        name: item["value"]
        for name, item in chosen.items()
        if name in FIELDS and str(item.get("source", "")).startswith("--")
    }


def redetected_columns(
    plan: BuildPlan, record: Mapping[str, Any] | None
) -> tuple[dict[str, Any], dict[str, Sourced]]:
    """The deployment columns a redeploy --redetect sets: detection again, with the values
    that were given by flag kept as they were."""
    chosen = resolve(plan, flags_given(record))
    columns: dict[str, Any] = {
        "build_type": chosen["build_type"].value,
        "node_version": chosen["node_version"].value,
        "install_cmd": chosen["install_cmd"].value,
        "build_cmd": chosen["build_cmd"].value,
        "output_dir": chosen["output_dir"].value if "output_dir" in chosen else None,
        "start_cmd": chosen["start_cmd"].value if "start_cmd" in chosen else None,
        "root_dir": plan.root_dir,
        "install_dir": plan.install_dir,
        "plan_json": json.dumps(plan_record(plan, chosen)),
    }
    if "port" in chosen:
        columns["port"] = int(chosen["port"].value)
    if "health_path" in chosen:
        columns["health_path"] = chosen["health_path"].value
    if columns["build_type"] == "static":
        columns["start_cmd"] = None
    else:
        columns["output_dir"] = None
    return columns, chosen


def describe_plan(chosen: Mapping[str, Sourced], plan: BuildPlan) -> list[str]:
    """The plan as lines for a terminal: each value and where it came from."""
    rows: list[tuple[str, str, str]] = []
    if plan.framework is not None:
        rows.append(("framework", plan.framework.value, plan.framework.source))
    rows.append(("package manager", plan.package_manager.value, plan.package_manager.source))
    labels = {
        "build_type": "build type",
        "install_cmd": "install",
        "build_cmd": "build",
        "output_dir": "output dir",
        "start_cmd": "start",
        "node_version": "node",
        "port": "port",
        "health_path": "health path",
    }
    for name, label in labels.items():
        if name in chosen:
            rows.append((label, chosen[name].value or "(none)", chosen[name].source))
    if plan.root_dir:
        rows.append(("root dir", plan.root_dir, "--root"))
    if plan.install_dir != plan.root_dir:
        rows.append(("install in", plan.install_dir or "(repository root)", "the workspace root"))
    width = max(len(r[0]) for r in rows)
    vwidth = max(len(r[1]) for r in rows)
    lines = [f"  {k:<{width}}  {v:<{vwidth}}  ({src})" for k, v, src in rows]
    lines += [f"  warning: {w}" for w in plan.warnings]
    return lines


async def redetect(queries: Any, target: Target, deployment: Any) -> list[str]:
    """Read the plan again for a redeploy --redetect and store it on the deployment (flags
    given at deploy time are kept). Returns what changed, as `name: old -> new` lines."""
    plan = await detect_repo(target, deployment.repo, deployment.branch, deployment.root_dir)
    columns, _ = redetected_columns(plan, deployment.plan)
    changed = [
        f"{name}: {getattr(deployment, name)!r} -> {value!r}"
        for name, value in columns.items()
        if name != "plan_json" and getattr(deployment, name) != value
    ]
    await queries.update_deployment(deployment.id, **columns)
    return changed


__all__ = [
    "DetectionError",
    "apply_plan",
    "cannot_deploy",
    "describe_plan",
    "detect_repo",
    "flags_given",
    "plan_record",
    "redetect",
    "redetected_columns",
]
