"""How commands report: JSON on stdout for machines, one clear sentence on stderr for errors."""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

import click

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def one_line(text: str) -> str:
    """`text` with every control character shown escaped, so a value a user typed (a
    trailing newline, an escape sequence) can neither break the line nor drive the terminal."""
    return "".join(
        ch if ch.isprintable() or ch == " " else ch.encode("unicode_escape").decode("ascii")
        for ch in text
    )


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    """Print `toast: error: ...` on stderr, as one line, and exit with `code`."""
    click.echo(f"toast: error: {one_line(message)}", err=True)
    sys.exit(code)


def emit_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=True, default=str))
