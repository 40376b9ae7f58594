"""Bare git repositories on disk standing in for GitHub-hosted repos, with sample apps."""

from __future__ import annotations

import fcntl
import json
import os
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.sandbox.layout import SAMPLES_OWNER, Layout

_GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Toast Samples",
    "GIT_AUTHOR_EMAIL": "samples@toast.invalid",
    "GIT_COMMITTER_NAME": "Toast Samples",
    "GIT_COMMITTER_EMAIL": "samples@toast.invalid",
}

STATIC_SITE_FILES = {
    "package.json": json.dumps(
        {
            "name": "static-site",
            "version": "1.0.0",
            "private": True,
            "scripts": {"build": "node build.js"},
        },
        indent=2,
    )
    + "\n",
    "message.txt": "Hello from the Toast static sample\n",
    # Its build is a plain script, not a framework Toast knows: the repository says how it
    # is served, as a user's would.
    "toast.toml": 'build_type = "static"\noutput_dir = "dist"\n',
    "build.js": """const fs = require("fs");
const message = fs.readFileSync("message.txt", "utf8").trim();
fs.mkdirSync("dist", { recursive: true });
const html = `<!doctype html><html><head><meta charset="utf-8"><title>static-site</title></head>
<body><h1>${message}</h1></body></html>\\n`;
fs.writeFileSync("dist/index.html", html);
console.log(`built dist/index.html (${html.length} bytes)`);
""",
}

NODE_SERVER_FILES = {
    "package.json": json.dumps(
        {
            "name": "node-server",
            "version": "1.0.0",
            "private": True,
            "scripts": {
                "start": "node server.js",
                "build": "node -e \"console.log('nothing to build')\"",
            },
        },
        indent=2,
    )
    + "\n",
    "message.txt": "Hello from the Toast node sample\n",
    "server.js": """const fs = require("fs");
const http = require("http");
const message = fs.readFileSync("message.txt", "utf8").trim();
const port = Number(process.env.PORT || 3000);
http.createServer((req, res) => {
  // /env/NAME answers the raw value of one environment variable (for env round-trip checks).
  if (req.url.startsWith("/env/")) {
    const name = decodeURIComponent(req.url.slice(5));
    if (!(name in process.env)) { res.writeHead(404); res.end(); return; }
    res.writeHead(200, { "content-type": "application/octet-stream" });
    res.end(Buffer.from(process.env[name], "utf8"));
    return;
  }
  res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
  const body = `<h1>${message}</h1><p>pid ${process.pid}</p>`;
  res.end(`<!doctype html><html><body>${body}</body></html>\\n`);
}).listen(port, "127.0.0.1", () => console.log(`listening on 127.0.0.1:${port}`));
""",
}

SAMPLES = {"static-site": STATIC_SITE_FILES, "node-server": NODE_SERVER_FILES}


@dataclass(frozen=True)
class Commit:
    sha: str
    message: str
    timestamp: str
    author_name: str
    author_email: str


def git(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    full_env = {**os.environ, **_GIT_IDENTITY, **(env or {})}
    result = subprocess.run(
        ["git", *args], cwd=cwd, env=full_env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def create_repo(layout: Layout, full_name: str, files: dict[str, str] | None = None) -> Path:
    """Create a bare repo (with an initial commit on main when `files` is given)."""
    bare = layout.bare_repo(full_name)
    if bare.exists():
        return bare
    bare.parent.mkdir(parents=True, exist_ok=True)
    git("init", "--quiet", "--bare", "--initial-branch=main", str(bare))
    install_post_receive(layout, full_name)
    if files:
        with tempfile.TemporaryDirectory() as work:
            commit_files(layout, full_name, files, "Initial commit", work=Path(work), fresh=True)
    return bare


def commit_files(
    layout: Layout,
    full_name: str,
    files: dict[str, str],
    message: str,
    *,
    work: Path | None = None,
    fresh: bool = False,
    branch: str = "main",
) -> str:
    """Commit `files` on top of `branch` and push: the push runs the post-receive hook."""
    bare = layout.bare_repo(full_name)
    with tempfile.TemporaryDirectory() as tmp:
        wt = work or Path(tmp)
        if fresh:
            git("init", "--quiet", f"--initial-branch={branch}", str(wt))
        else:
            git("clone", "--quiet", "--branch", branch, str(bare), str(wt))
        for rel, text in files.items():
            path = wt / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        git("add", "--all", cwd=wt)
        git("commit", "--quiet", "-m", message, cwd=wt)
        git("push", "--quiet", str(bare), f"HEAD:refs/heads/{branch}", cwd=wt)
        return git("rev-parse", "HEAD", cwd=wt).strip()


def seed_samples(layout: Layout) -> None:
    for name, files in SAMPLES.items():
        full_name = f"{SAMPLES_OWNER}/{name}"
        if not layout.bare_repo(full_name).exists():
            create_repo(layout, full_name, files)
            continue
        # A sandbox made by an older Toast gets the plan files its samples now carry.
        missing = {
            rel: text
            for rel, text in files.items()
            if rel == "toast.toml" and tree_entry(layout, full_name, "main", rel) is None
        }
        if missing:
            commit_files(layout, full_name, missing, "Add toast.toml (Toast's build plan)")


def list_repos(layout: Layout) -> list[str]:
    """Full names (owner/name) of every repo, sorted."""
    if not layout.git_root.exists():
        return []
    found = []
    for owner in sorted(p for p in layout.git_root.iterdir() if p.is_dir()):
        for repo in sorted(owner.glob("*.git")):
            found.append(f"{owner.name}/{repo.name[:-4]}")
    return found


def branches(layout: Layout, full_name: str) -> dict[str, str]:
    out = git(
        "for-each-ref",
        "--format=%(refname:short) %(objectname)",
        "refs/heads",
        cwd=layout.bare_repo(full_name),
    )
    return dict(line.split(" ", 1) for line in out.splitlines() if line)


def head_commit(layout: Layout, full_name: str, ref: str) -> Commit | None:
    try:
        out = git(
            "log",
            "-1",
            "--format=%H%x00%aI%x00%an%x00%ae%x00%B",
            ref,
            "--",
            cwd=layout.bare_repo(full_name),
        )
    except RuntimeError:
        return None
    sha, timestamp, name, email, message = out.split("\0", 4)
    return Commit(sha, message.strip(), timestamp, name, email)


def tree_entry(layout: Layout, full_name: str, ref: str, path: str) -> Any:
    """GitHub's view of `path` at `ref`: a list of (name, type) for a directory, the bytes of
    a file, or None when it does not exist."""
    spec = f"{ref}:{path}" if path else f"{ref}:"
    if "\n" in spec:
        return None  # --batch reads one name per line
    # One git process per request (the stand-in answers while a deploy waits): --batch says
    # what the object is and gives its content together.
    result = subprocess.run(
        ["git", "cat-file", "--batch"],
        cwd=layout.bare_repo(full_name),
        input=spec.encode() + b"\n",
        capture_output=True,
        check=False,
    )
    header, _, content = result.stdout.partition(b"\n")
    fields = header.split()
    if result.returncode != 0 or len(fields) != 3 or fields[1] not in (b"tree", b"blob"):
        return None  # "<spec> missing", or a commit (a submodule) GitHub would not list
    content = content[: int(fields[2])]
    if fields[1] == b"blob":
        return content
    return _tree_names(content, oid_size=len(fields[0]) // 2)


def _tree_names(raw: bytes, *, oid_size: int) -> list[tuple[str, str]]:
    """(name, "dir" | "file") of each entry of a raw tree object: "<mode> <name>\\0<oid>"."""
    entries = []
    at = 0
    while at < len(raw):
        space = raw.index(b" ", at)
        nul = raw.index(b"\0", space)
        mode, name = raw[at:space], raw[space + 1 : nul].decode("utf-8", errors="replace")
        entries.append((name, "dir" if mode == b"40000" else "file"))
        at = nul + 1 + oid_size
    return entries


def install_post_receive(layout: Layout, full_name: str) -> None:
    hook = layout.bare_repo(full_name) / "hooks" / "post-receive"
    argv = [sys.executable, "-m", "core.sandbox.push_hook", str(layout.root), full_name]
    project_root = Path(__file__).resolve().parents[2]
    hook.write_text(
        "#!/bin/sh\n"
        "# Deliver GitHub-style push webhooks for this repository (Toast sandbox).\n"
        f"PYTHONPATH={shlex.quote(str(project_root))}${{PYTHONPATH:+:$PYTHONPATH}}\n"
        "export PYTHONPATH\n"
        f"exec {shlex.join(argv)}\n"
    )
    hook.chmod(0o755)


# -- webhooks registered through the GitHub stand-in ----------------------------------


@contextmanager
def hooks_locked(layout: Layout) -> Iterator[dict[str, Any]]:
    """The hooks store ({"next_id": n, "hooks": {full_name: [hook, ...]}}), locked for update."""
    layout.github_dir.mkdir(parents=True, exist_ok=True)
    lock_path = layout.github_dir / "hooks.lock"
    with open(lock_path, "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            data = json.loads(layout.hooks_file.read_text()) if layout.hooks_file.exists() else {}
        except ValueError:
            data = {}
        data.setdefault("next_id", 1)
        data.setdefault("hooks", {})
        before = json.dumps(data, sort_keys=True)
        yield data
        if json.dumps(data, sort_keys=True) != before:
            tmp = layout.hooks_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(data, indent=2))
            tmp.chmod(0o600)
            os.replace(tmp, layout.hooks_file)
