"""Which step the current task works for, so calls made deep inside (an AWS API call, an
SSH command) are recorded against the step that made them."""

from __future__ import annotations

from contextvars import ContextVar

CURRENT_STEP: ContextVar[str | None] = ContextVar("toast_current_step", default=None)
