"""Fetching a branch head onto the host."""

from __future__ import annotations

from core.commands import chain


def fetch_source(repo_url: str, branch: str, into: str) -> str:
    """Shallow-fetch the branch head into a fresh directory and print its sha and subject.

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
