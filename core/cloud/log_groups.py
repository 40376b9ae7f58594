"""The CloudWatch log groups of a deployment: one per source, under /toast/<name>/ (the
only prefix its instance role may write, and what the log panes read)."""

from __future__ import annotations

LOG_SOURCES = ("build", "access", "error", "app")


def log_group(name: str, source: str) -> str:
    return f"/toast/{name}/{source}"
