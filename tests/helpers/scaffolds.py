"""Committed scaffolds (tests/fixtures/scaffolds) as git repositories, the way a user's
repository holds them."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from core.sandbox.githost import git

SCAFFOLDS = Path(__file__).resolve().parents[1] / "fixtures" / "scaffolds"


def scaffold_repo(name: str, bare: Path, *, subdir: str = "") -> str:
    """A bare repository at `bare` whose main branch holds the scaffold (under `subdir`);
    returns its file:// URL."""
    bare.parent.mkdir(parents=True, exist_ok=True)
    if not bare.exists():
        git("init", "--quiet", "--bare", "--initial-branch=main", str(bare))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "work"
        git("init", "--quiet", "--initial-branch=main", str(work))
        shutil.copytree(SCAFFOLDS / name, work / subdir if subdir else work, dirs_exist_ok=True)
        git("add", "--all", cwd=work)
        git("commit", "--quiet", "-m", f"{name} as scaffolded", cwd=work)
        git("push", "--quiet", "--force", str(bare), "HEAD:refs/heads/main", cwd=work)
    return f"file://{bare}"


def push_change(bare: Path, path: str, text: str, message: str) -> str:
    """Commit one file on top of main and push; returns the new commit."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "work"
        git("clone", "--quiet", "--branch", "main", str(bare), str(work))
        target = work / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        git("add", "--all", cwd=work)
        git("commit", "--quiet", "-m", message, cwd=work)
        git("push", "--quiet", str(bare), "HEAD:refs/heads/main", cwd=work)
        return git("rev-parse", "HEAD", cwd=work).strip()
