"""What a step hands to the steps after it, typed: each step returns a StepOutput of its
own kind (declared next to it), saved to SQLite as JSON and read back as the same kind
when a run resumes. `detail` is the line shown beside the step; `skipped` marks a step
that had nothing to do."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Self


@dataclass(frozen=True, kw_only=True)
class StepOutput:
    detail: str | None = None
    skipped: bool = False

    def to_json(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_json(cls, saved: Mapping[str, object]) -> Self:
        """The output a step saved (an older Toast's `_detail` and `_skipped` included)."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in saved.items() if k in known}
        if "_detail" in saved:
            values.setdefault("detail", saved["_detail"])
        if "_skipped" in saved:
            values.setdefault("skipped", saved["_skipped"])
        return cls(**values)  # type: ignore[arg-type]  # JSON values, checked by the dataclass's users
