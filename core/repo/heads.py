"""Where a deployment's code comes from, checked before anything is spent: the repository
exists, the branch exists, and which commit its head is."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.cloud.faults import Faults
from core.repo.github import GitHub, GitHubError

if TYPE_CHECKING:
    from core.repo.github import GitHub


class RepoCheckError(Exception):
    """The repository or branch cannot be used; says which and why."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.hint = hint
        super().__init__(message)


@dataclass(frozen=True)
class BranchHead:
    sha: str
    subject: str | None
    clone_url: str


def is_git_url(repo: str) -> bool:
    return "://" in repo or repo.startswith("git@")


def is_local_repo(repo: str) -> bool:
    """A repository on this machine's disk (only a host that is this machine can clone it)."""
    return repo.startswith("file://")


def local_repo_refusal(repo: str, local_reader: tuple[str, ...] | None) -> RepoCheckError | None:
    """Why a file:// repository cannot be deployed to this host, or None when it can be
    tried: an instance elsewhere never sees a path on the operator's machine."""
    if not is_local_repo(repo) or local_reader is not None:
        return None
    return RepoCheckError(
        f"{repo} is a path on this machine, and the instance cannot read a path on this "
        "machine (it clones the repository itself)",
        hint="push it to a git host (GitHub, or any URL the instance can reach) and deploy "
        "that URL",
    )


async def branch_head(
    repo: str,
    branch: str,
    *,
    github_api: str,
    github_token: str | None,
    timeout: float = 30,
    as_user: tuple[str, ...] = (),
    faults: Faults | None = None,
) -> BranchHead:
    """The branch head; `as_user` runs git as another user (the sandbox host's login, to
    learn whether it can read a file:// repository before anything is launched)."""
    if is_git_url(repo):
        return await _ls_remote(repo, branch, timeout=timeout, as_user=as_user)

    async with GitHub(github_api, github_token, faults=faults) as github:
        return await github_branch_head(github, repo, branch)


async def github_branch_head(github: GitHub, repo: str, branch: str) -> BranchHead:
    """The repository and the branch head asked for at once (one round trip, not two); a
    missing repository is reported as such before a missing branch."""
    found, head = await asyncio.gather(
        github.repo(repo), github.head(repo, branch), return_exceptions=True
    )
    if isinstance(found, BaseException):
        if isinstance(found, GitHubError) and found.status == 404:
            raise RepoCheckError(
                f"repository {repo} was not found on GitHub",
                hint="check the owner/name; a private repo needs GITHUB_TOKEN",
            ) from found
        if isinstance(found, GitHubError):
            raise RepoCheckError(str(found)) from found
        raise found
    if isinstance(head, BaseException):
        if isinstance(head, GitHubError) and head.status in (404, 409, 422):
            raise RepoCheckError(
                f"branch {branch!r} does not exist in {repo}",
                hint=f"pass --branch with one of its branches (default branch: "
                f"{found.default_branch})",
            ) from head
        if isinstance(head, GitHubError):
            raise RepoCheckError(str(head)) from head
        raise head
    sha, subject = head
    return BranchHead(sha, subject, found.clone_url)


async def _ls_remote(
    url: str, branch: str, *, timeout: float, as_user: tuple[str, ...] = ()
) -> BranchHead:
    # No credentials here: a URL that needs them must carry its own (ssh keys, a helper).
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "/bin/false"}
    try:
        process = await asyncio.create_subprocess_exec(
            *as_user,
            "git",
            "ls-remote",
            "--heads",
            "--",
            url,
            f"refs/heads/{branch}",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
    except OSError as exc:
        raise RepoCheckError(f"cannot run git to check {url}: {exc}") from exc
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout=timeout)
    except TimeoutError as exc:
        process.kill()
        await process.wait()
        raise RepoCheckError(
            f"git ls-remote {url} did not answer within {timeout:.0f} s",
            hint="check the URL and your network",
        ) from exc
    if process.returncode != 0:
        raise RepoCheckError(
            f"repository {url} cannot be read: {git_reason(err)}",
            hint="check the URL, and that it is reachable without a password prompt",
        )
    for line in out.decode().splitlines():
        sha, _, ref = line.partition("\t")
        if ref == f"refs/heads/{branch}":
            return BranchHead(sha, None, url)
    raise RepoCheckError(
        f"branch {branch!r} does not exist in {url}", hint="pass --branch with an existing branch"
    )


def git_reason(stderr: bytes) -> str:
    """The line of git's complaint that says why (its first), without git's boilerplate
    ("Please make sure you have the correct access rights and the repository exists.")."""
    lines = [line.strip() for line in stderr.decode(errors="replace").splitlines() if line.strip()]
    boilerplate = ("Please make sure", "and the repository exists", "fatal: Could not read from")
    useful = [line for line in lines if not line.startswith(boilerplate)]
    if not useful:
        return lines[0].removeprefix("fatal: ") if lines else "git failed"
    return useful[0].removeprefix("fatal: ")
