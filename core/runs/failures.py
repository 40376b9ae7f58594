"""How a step says it cannot finish: a message and what the user can do about it. A leaf
module, so the cloud and host layers can raise it without depending on the engine."""

from __future__ import annotations


class StepFailed(Exception):
    """A step could not finish. `hint` says what the user can do about it."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.hint = hint
        super().__init__(message)


__all__ = ["StepFailed"]
