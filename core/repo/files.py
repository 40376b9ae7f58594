"""Read the few files detection needs from a repository at a branch head, without a
checkout: GitHub's contents API for owner/name, a shallow blob-less fetch for a git URL."""

from __future__ import annotations

import asyncio
import base64
import os
import tempfile
from collections.abc import Awaitable, Callable

from core.repo.detect import RepoFiles, files_to_read, normalise_root, search_dirs, workspace_of
from core.repo.github import GitHub, GitHubError, token_for
from core.repo.heads import (
    RepoCheckError,
    branch_head,
    git_reason,
    github_branch_head,
    is_git_url,
)

#: Detection reads configuration, not code: anything larger is not a config file.
MAX_FILE = 512 * 1024


async def read_repo_files(
    repo: str,
    branch: str,
    root_dir: str,
    *,
    github_api: str,
    github_token: str | None,
    timeout: float = 120,
) -> RepoFiles:
    """The files detection reads, at the branch head. A missing repository or branch raises
    RepoCheckError with the same words as the deploy's check step; a root dir outside the
    repository raises DetectionError before anything is asked."""
    root_dir = normalise_root(root_dir)
    if is_git_url(repo):
        token = token_for(repo, github_api, github_token)
        if token is None:  # ls-remote first for its clear missing-repo/branch messages
            await branch_head(repo, branch, github_api=github_api, github_token=None)
        return await _from_git(repo, branch, root_dir, token=token, timeout=timeout)
    return await _from_github(repo, branch, root_dir, github_api, github_token)


async def _from_github(
    repo: str, branch: str, root_dir: str, api: str, token: str | None
) -> RepoFiles:
    async with GitHub(api, token) as github:
        dirs = search_dirs(root_dir)
        # Round trips, not requests, are what a deploy waits for: the repository, the
        # branch head and the directory listings are asked for together (listings by
        # branch name, as the head is not known yet), then the files, at the head's commit.
        head_asked = asyncio.ensure_future(github_branch_head(github, repo, branch))
        listed_asked = asyncio.gather(
            *(github.list_dir(repo, d, branch) for d in dirs), return_exceptions=True
        )
        try:
            head = await head_asked
        finally:
            listed = await listed_asked
        try:
            names: dict[str, frozenset[str]] = {}
            for directory, found in zip(dirs, listed, strict=True):
                if isinstance(found, BaseException):
                    raise found
                names[directory] = frozenset(found)
            paths = list(files_to_read(names))
            read = await asyncio.gather(*(github.file_text(repo, p, head.sha) for p in paths))
            texts = {p: text for p, text in zip(paths, read, strict=True) if text is not None}
            if not root_dir:

                async def ls(directory: str) -> list[str]:
                    return await github.list_dir(repo, directory, head.sha)

                async def cat(path: str) -> str | None:
                    return await github.file_text(repo, path, head.sha)

                await _read_workspace(names, texts, ls, cat)
        except GitHubError as exc:
            raise RepoCheckError(
                f"cannot read {repo}@{head.sha[:12]} to detect its build: {exc}",
                hint="check the repository and branch; a private repo needs GITHUB_TOKEN",
            ) from exc
    return RepoFiles(names=names, texts=texts, commit=head.sha)


async def _git(
    *args: str, cwd: str | None, env: dict[str, str], timeout: float
) -> tuple[int, bytes, bytes]:
    process = await asyncio.create_subprocess_exec(
        "git",
        *args,
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout=timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    return process.returncode or 0, out, err


async def _from_git(
    url: str, branch: str, root_dir: str, *, token: str | None, timeout: float
) -> RepoFiles:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "/bin/false"}
    if token:
        # Through git's environment, as on the host: never argv, never disk.
        basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
        env.update(
            GIT_CONFIG_COUNT="1",
            GIT_CONFIG_KEY_0="http.extraHeader",
            GIT_CONFIG_VALUE_0=f"Authorization: Basic {basic}",
        )
    with tempfile.TemporaryDirectory(prefix="toast-detect-") as work:
        try:
            steps: list[tuple[str, ...]] = [
                ("init", "--quiet", "--bare", "."),
                ("remote", "add", "origin", "--", url),
                # Trees only: blobs are fetched one by one when read (where the server
                # allows filters; otherwise the whole shallow commit comes, still one).
                (
                    "fetch",
                    "--quiet",
                    "--depth",
                    "1",
                    "--filter=blob:none",
                    "origin",
                    f"refs/heads/{branch}",
                ),
            ]
            for args in steps:
                status, _, err = await _git(*args, cwd=work, env=env, timeout=timeout)
                if status != 0:
                    raise RepoCheckError(
                        f"cannot read {url}@{branch} to detect its build: {git_reason(err)}",
                        hint="check the URL and branch, and that it is reachable without a "
                        "password prompt",
                    )
            _, out, _ = await _git("rev-parse", "FETCH_HEAD", cwd=work, env=env, timeout=timeout)
            sha = out.decode().strip()
            names: dict[str, frozenset[str]] = {}
            for directory in search_dirs(root_dir):
                spec = f"{sha}:{directory}" if directory else f"{sha}:"
                status, out, _ = await _git(
                    "ls-tree", "--name-only", spec, cwd=work, env=env, timeout=timeout
                )
                listed = out.decode().splitlines() if status == 0 else []
                names[directory] = frozenset(listed)
            texts: dict[str, str] = {}

            async def ls(directory: str) -> list[str]:
                spec = f"{sha}:{directory}" if directory else f"{sha}:"
                status, out, _ = await _git(
                    "ls-tree", "--name-only", spec, cwd=work, env=env, timeout=timeout
                )
                return out.decode().splitlines() if status == 0 else []

            async def cat(path: str) -> str | None:
                status, out, _ = await _git(
                    "cat-file", "blob", f"{sha}:{path}", cwd=work, env=env, timeout=timeout
                )
                if status == 0 and len(out) <= MAX_FILE:
                    return out.decode("utf-8", errors="replace")
                return None

            for path in files_to_read(names):
                text = await cat(path)
                if text is not None:
                    texts[path] = text
            if not root_dir:
                await _read_workspace(names, texts, ls, cat)
        except TimeoutError as exc:
            raise RepoCheckError(
                f"reading {url}@{branch} took more than {timeout:.0f} s",
                hint="check the URL and your network",
            ) from exc
    return RepoFiles(names=names, texts=texts, commit=sha)


async def _read_workspace(
    names: dict[str, frozenset[str]],
    texts: dict[str, str],
    ls: Callable[[str], Awaitable[list[str]]],
    cat: Callable[[str], Awaitable[str | None]],
) -> None:
    """At a workspace's root, its members' files too, so a root that is not an app can be
    refused with the apps it holds (`--root apps/web`). Adds to `names` and `texts`."""
    workspace = workspace_of(RepoFiles(names=names, texts=texts))
    if workspace is None:
        return
    bases = workspace.bases()
    for base, listed in zip(bases, await asyncio.gather(*(ls(b) for b in bases)), strict=True):
        names[base] = frozenset(listed)
    members = workspace.members(names)
    for member, listed in zip(
        members, await asyncio.gather(*(ls(m) for m in members)), strict=True
    ):
        names[member] = frozenset(listed)
    member_names = {m: names[m] for m in members}
    paths = files_to_read(member_names)
    for path, text in zip(paths, await asyncio.gather(*(cat(p) for p in paths)), strict=True):
        if text is not None:
            texts[path] = text
