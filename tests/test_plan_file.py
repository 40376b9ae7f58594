"""toast.toml: a build plan the repository carries. Its values win over detection and lose
to flags, each shows `toast.toml` as its source, a bad key or value is refused naming the
key and the rule, and `toast detect --write` writes a file that reads back the same."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.repo.detect import DetectionError, detect, resolve
from core.repo.plan_file import KEYS, PlanFileError, parse_plan_file, render_plan_file
from core.sandbox.controller import SandboxInfo

from .conftest import PROJECT_ROOT, run_toast
from .helpers.scaffolds import push_change, scaffold_repo
from .helpers.trees import files, pkg

PLAIN = {"package.json": pkg(scripts={"build": "node build.js"})}


def test_a_plan_file_completes_a_repo_detection_cannot_read_and_names_itself() -> None:
    with pytest.raises(DetectionError):
        resolve(detect(files(PLAIN)), {})
    plan = detect(
        files({**PLAIN, "toast.toml": 'build_type = "static"\noutput_dir = "public"\nnode = "22"'})
    )
    chosen = resolve(plan, {})
    assert chosen["build_type"].value == "static"
    assert chosen["build_type"].source == "toast.toml: build_type"
    assert (chosen["output_dir"].value, chosen["output_dir"].source) == (
        "public",
        "toast.toml: output_dir",
    )
    assert chosen["node_version"].source == "toast.toml: node"
    assert chosen["build_cmd"].source == "package.json: scripts.build"  # detection fills in
    # A flag wins over the file.
    flagged = resolve(plan, {"output_dir": "dist"})
    assert (flagged["output_dir"].value, flagged["output_dir"].source) == ("dist", "--output-dir")


def test_the_file_overrides_what_detection_found_for_a_framework() -> None:
    vite = {"package.json": pkg(devDependencies={"vite": "^7"}, scripts={"build": "vite build"})}
    plan = detect(files({**vite, "toast.toml": "output_dir = 'site'\nport = 4000\n"}))
    assert plan.output_dir is not None and plan.output_dir.value == "site"
    assert plan.framework is not None and plan.framework.value == "vite"
    node = detect(
        files({**vite, "toast.toml": 'build_type = "node"\nstart = "node srv.js"\nport = 4000'})
    )
    chosen = resolve(node, {})
    assert (chosen["build_type"].value, chosen["start_cmd"].value) == ("node", "node srv.js")
    assert "output_dir" not in chosen  # Vite's dist belonged to the static plan
    assert chosen["port"].value == "4000"


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ('bild = "npm run build"', "unknown key 'bild'"),
        ('build_type = "ssr"', 'build_type must be "static" or "node"'),
        ("port = 80", "port must be a whole number between 1024 and 65000"),
        ('output_dir = "."', "output_dir must be a directory inside the app"),
        ('health_path = "healthz"', "health_path must be a URL path starting with '/'"),
        ('start = ""', "start must be a non-empty command"),
        ('node = "16"', "pins Node 16"),
        ("build_type = [", "not valid TOML"),
    ],
)
def test_a_bad_key_or_value_is_refused_naming_the_key_and_the_rule(text: str, said: str) -> None:
    with pytest.raises(DetectionError) as raised:
        detect(files({**PLAIN, "toast.toml": text}))
    shown = f"{raised.value.field}: {raised.value}"  # as the CLI prints it
    assert shown.startswith(("toast.toml", "node_version: toast.toml: node")), shown
    assert said in shown


def test_the_repository_roots_file_may_point_at_the_app() -> None:
    tree = {
        "toast.toml": 'root = "apps/web"\nbuild_type = "static"\noutput_dir = "out"',
        "apps/web/package.json": pkg(scripts={"build": "node build.js"}),
    }
    plan = detect(files(tree), "apps/web")
    assert plan.output_dir is not None and plan.output_dir.source == "toast.toml: output_dir"


commands = st.text(
    st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=40
).filter(str.strip)


@given(install=commands, build=commands, start=commands)
def test_rendered_files_read_back_the_same(install: str, build: str, start: str) -> None:
    values = {
        "build_type": "node",
        "install_cmd": install.strip(),
        "build_cmd": build.strip(),
        "start_cmd": start.strip(),
        "node_version": "22",
        "port": "3100",
        "health_path": "/up",
    }
    assert parse_plan_file(render_plan_file(values)) == values


def test_every_key_has_a_rule_that_refuses_something() -> None:
    for key in KEYS:
        with pytest.raises(PlanFileError, match=key):
            parse_plan_file(f"{key} = true")


def test_toast_detect_write_round_trips_through_a_deploy_plan(
    sandbox: SandboxInfo, tmp_path: Path
) -> None:
    """The written file, committed to a repository detection cannot read, makes its plan
    complete with the same values."""
    bare = tmp_path / "app.git"
    url = scaffold_repo("vite-vue", bare)
    work = tmp_path / "checkout"
    work.mkdir()
    written = subprocess.run(
        [sys.executable, "-m", "cli", "--sandbox", "detect", url, "--write", "--yes"],
        cwd=work,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert written.returncode == 0, written.stderr
    text = (work / "toast.toml").read_text()
    assert text in written.stdout  # printed as written
    assert 'build_type = "static"' in text and 'output_dir = "dist"' in text
    # Commit it to a repository whose package.json names no framework: the plan is the same.
    push_change(bare, "package.json", pkg(scripts={"build": "vite build"}), "no framework")
    push_change(bare, "toast.toml", text, "Toast's plan")
    read = run_toast("--sandbox", "detect", url, "--json")
    assert read.returncode == 0, read.stderr
    plan = json.loads(read.stdout)
    assert plan["output_dir"] == {"value": "dist", "source": "toast.toml: output_dir"}
    assert plan["build_type"] == {"value": "static", "source": "toast.toml: build_type"}
    assert plan["install_cmd"] == {"value": "npm ci", "source": "toast.toml: install"}


def test_a_bad_plan_file_refuses_the_deploy_before_anything_is_created(
    sandbox: SandboxInfo, tmp_path: Path
) -> None:
    bare = tmp_path / "bad.git"
    url = scaffold_repo("vite-vue", bare)
    push_change(bare, "toast.toml", 'build_type = "static"\noutputdir = "dist"\n', "typo")
    refused = run_toast("--sandbox", "deploy", url, "--subdomain", "typo")
    assert refused.returncode == 2
    assert "toast.toml: unknown key 'outputdir' (known keys: build_type," in refused.stderr
    assert json.loads(run_toast("ls", "--all", "--json").stdout) == []
