"""The lines of a failed command's output that say why it failed.

A build's last lines are often noise printed after the cause (npm's "A complete log of
this run can be found in", a stack of `at ...` frames, a framework's retry summary), so the
error shows the lines that name the failure first, then the very last ones."""

from __future__ import annotations

import re
from collections.abc import Sequence

#: Lines that name a failure, in the words package managers, Node and frameworks use.
FAILURE = re.compile(
    r"npm ERR!|npm error|\bERR_[A-Z0-9_]+|\b[A-Z][A-Za-z]*Error\b|\bError:|\berror\b|"
    r"ELIFECYCLE|Command failed|[Ff]ailed to|Cannot find|[Nn]ot found|exit(ed)? (code|with)",
)
#: npm's boilerplate that matches FAILURE without saying anything about this failure.
NOISE = re.compile(r"A complete log of this run|^\s*at ")
#: Lines with nothing in them but a prefix.
EMPTY = re.compile(r"^\s*(npm (ERR!|error))?\s*$")
MAX_LINE = 300


def failure_excerpt(lines: Sequence[str], *, named: int = 5, last: int = 2) -> list[str]:
    """Up to `named` lines that name the failure (the first ones: a cause comes before its
    consequences) and the `last` lines, in output order, each cut to a readable length."""
    useful = [(i, line.strip()) for i, line in enumerate(lines) if not EMPTY.match(line)]
    naming = [(i, line) for i, line in useful if FAILURE.search(line) and not NOISE.search(line)]
    picked = dict(naming[:named])
    picked.update(useful[-last:] if last else [])
    return [_cut(picked[i]) for i in sorted(picked)]


def _cut(line: str) -> str:
    return line if len(line) <= MAX_LINE else line[: MAX_LINE - 1] + "…"


#: Failures whose output is a stack trace, said in one sentence with what to do.
KNOWN_CAUSES = (
    (
        re.compile(r"Cannot find matching keyid|Signature does not match"),
        "corepack could not verify the signature of the package manager it downloaded (the "
        "npm registry it used serves no signatures or keys corepack knows); set "
        "COREPACK_INTEGRITY_KEYS=0 with --env to skip that check, or pin packageManager in "
        "package.json to a version with its hash (`corepack use pnpm@<version>` writes one)",
    ),
    (
        re.compile(r"Encountered dynamic routes"),
        "SvelteKit's adapter-static found routes it cannot prerender (a new sv project has "
        "none marked); add `export const prerender = true;` to src/routes/+layout.ts, or "
        "switch to adapter-node to serve them",
    ),
)


def known_cause(lines: Sequence[str]) -> str | None:
    """One sentence for a failure Toast recognises, or None."""
    for pattern, sentence in KNOWN_CAUSES:
        if any(pattern.search(line) for line in lines):
            return sentence
    return None
