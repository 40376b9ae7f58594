"""Release directories: the atomic `current` switch and pruning."""

from __future__ import annotations

import posixpath

from core.commands import Argv, chain
from core.host.layout import AppPaths


def switch_current(paths: AppPaths, target: str) -> str:
    """Point `current` at `target` atomically (rename over the old link)."""
    tmp = paths.current + ".new"
    return chain(("ln", "-sfn", target, tmp), ("mv", "-T", tmp, paths.current))


def prune_releases(paths: AppPaths, release_dirs: list[str]) -> Argv:
    """Remove old release directories (each checked to lie inside the releases dir)."""
    for directory in release_dirs:
        if posixpath.dirname(directory) != paths.releases or posixpath.basename(directory) in (
            "",
            ".",
            "..",
        ):
            raise ValueError(f"not a release directory of {paths.name}: {directory!r}")
    return ("rm", "-rf", "--", *release_dirs)
