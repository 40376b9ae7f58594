"""Repository snapshots for detection tests, from {path: text}."""

from __future__ import annotations

import json

from core.repo.detect import RepoFiles


def files(tree: dict[str, str | None], **kw: str) -> RepoFiles:
    """A snapshot from {path: text}; None marks a file that exists but is not read."""
    names: dict[str, set[str]] = {"": set()}
    for path in tree:
        directory, _, name = path.rpartition("/")
        names.setdefault(directory, set()).add(name)
        while directory:
            parent, _, child = directory.rpartition("/")
            names.setdefault(parent, set()).add(child)
            directory = parent
    return RepoFiles(
        names={k: frozenset(v) for k, v in names.items()},
        texts={k: v for k, v in tree.items() if v is not None},
        **kw,
    )


def pkg(**fields: object) -> str:
    return json.dumps({"name": "app", **fields})
