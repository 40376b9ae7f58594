"""Reading and creating small files on the host: a file's text (empty when missing), a
log's last lines, the host preparation's status, the env file."""

from __future__ import annotations

from core.commands import render


def read_file(path: str, *, missing: str = "") -> str:
    """Print the file, or `missing` (as given) when there is none."""
    fallback = render(("printf", "%s", missing)) if missing else "true"
    return f"{render(('cat', path))} 2>/dev/null || {fallback}"


def tail_file(path: str, lines: int) -> str:
    """The last `lines` lines of a log; nothing (and success) when it does not exist."""
    return f"{render(('tail', '-n', str(lines), path))} 2>/dev/null || true"


def preparation_status(status_file: str, ready_marker: str) -> str:
    """Print the UserData stage status, and exit 0 only once the ready marker exists."""
    return f"{render(('cat', status_file))} 2>/dev/null; {render(('test', '-f', ready_marker))}"


def ensure_private_json(path: str) -> str:
    """Create `path` as an empty JSON object, mode 0600, unless it exists."""
    return (
        f"{render(('test', '-f', path))} || "
        f"{{ umask 077; {render(('printf', '%s', '{}'))} > {render((path,))}; }}"
    )


def then(first: str, second: str) -> str:
    """Run `second` once `first` succeeded (both already rendered)."""
    return f"{first} && {second}"
