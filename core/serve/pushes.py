"""What a GitHub `push` means for a deployment: deploy its head, or ignore it and say why.
Pure: the receiver and the tests call it with the parsed payload."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: A head commit whose message carries one of these is not deployed.
SKIP_MARKERS = ("[skip deploy]", "[deploy skip]", "[skip ci]", "[ci skip]")
ZERO_SHA = "0" * 40


@dataclass(frozen=True)
class PushDecision:
    deploy: bool
    reason: str
    sha: str | None = None


def decide_push(payload: Mapping[str, Any], branch: str) -> PushDecision:
    ref = str(payload.get("ref") or "")
    after = str(payload.get("after") or "")
    if ref.startswith("refs/tags/"):
        return PushDecision(False, f"a tag ({ref.removeprefix('refs/tags/')}), not a branch")
    pushed = ref.removeprefix("refs/heads/")
    if not ref.startswith("refs/heads/") or pushed != branch:
        return PushDecision(False, f"a push to {pushed or ref or '?'}, not to {branch}")
    if payload.get("deleted") or after == ZERO_SHA:
        return PushDecision(False, f"branch {branch} was deleted")
    if len(after) != 40 or any(c not in "0123456789abcdef" for c in after):
        return PushDecision(False, "the push names no commit")
    head = payload.get("head_commit") or {}
    message = str(head.get("message") or "") if isinstance(head, Mapping) else ""
    marker = next((m for m in SKIP_MARKERS if m in message.lower()), None)
    if marker is not None:
        return PushDecision(False, f"the head commit {after[:12]} says {marker}")
    forced = " (forced)" if payload.get("forced") else ""
    return PushDecision(True, f"push to {branch}{forced}: {after[:12]}", after)
