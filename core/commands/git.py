"""Fetching a branch head onto the host."""

from __future__ import annotations

from core.commands import chain

#: What git says when the way to the git server failed, not the repository or the branch:
#: worth another try (a refused or reset connection, a stall, a server error, a rate limit).
TRANSIENT = (
    "Failed to connect",
    "Couldn't connect",
    "Could not resolve host",
    "Connection reset",
    "Connection refused",
    "Connection timed out",
    "Operation too slow",
    "Operation timed out",
    "RPC failed",
    "early EOF",
    "unexpected disconnect",
    "remote end hung up unexpectedly",
    "The requested URL returned error: 5",
    "The requested URL returned error: 429",
)


def fetch_failed_in_transit(output: list[str]) -> bool:
    """Whether a failed fetch's output says the network or the server failed it (another
    try may succeed), rather than the repository or branch being missing or refused."""
    return any(marker in line for line in output for marker in TRANSIENT)


def fetch_source(repo_url: str, branch: str, into: str, *, stall_s: float = 60.0) -> str:
    """Shallow-fetch the branch head into a fresh directory and print its sha and subject.
    A fetch that receives nothing for `stall_s` seconds is given up (git's low-speed limit):
    a git server that accepts and then says nothing would otherwise hold the build for
    as long as the build may take.

    A token, when there is one, arrives on stdin and is handed to git through its
    environment (GIT_CONFIG_*): never on a command line, on disk or in a log. It goes as
    HTTP Basic auth with the user `x-access-token`, as GitHub documents for git over HTTPS.
    """
    token_env = (
        'IFS= read -r TOAST_TOKEN || true; if [ -n "$TOAST_TOKEN" ]; then '
        'TOAST_BASIC=$(printf "x-access-token:%s" "$TOAST_TOKEN" | base64 | tr -d "\\n"); '
        "export GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=http.extraHeader "
        'GIT_CONFIG_VALUE_0="Authorization: Basic $TOAST_BASIC"; fi; '
        "unset TOAST_TOKEN TOAST_BASIC"
    )
    return "; ".join(
        [
            token_env,
            chain(
                ("rm", "-rf", into),
                ("git", "init", "--quiet", into),
                (
                    "env",
                    "GIT_HTTP_LOW_SPEED_LIMIT=1",
                    f"GIT_HTTP_LOW_SPEED_TIME={max(1, round(stall_s))}",
                    "git",
                    "-C",
                    into,
                    "fetch",
                    "--quiet",
                    "--depth",
                    "1",
                    repo_url,
                    f"refs/heads/{branch}",
                ),
                ("git", "-C", into, "checkout", "--quiet", "FETCH_HEAD"),
                ("git", "-C", into, "log", "-1", "--format=%H%n%s"),
            ),
        ]
    )


def adopt_release(incoming: str, release: str) -> str:
    """Move a fetched tree to releases/<sha>, replacing an unfinished build of the same sha."""
    return chain(("rm", "-rf", release), ("mv", "-T", incoming, release))
