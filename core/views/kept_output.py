"""A deployment's build output as the engine recorded it in SQLite: what `toast logs
--source build` shows when CloudWatch no longer has it (a failed first deploy is rolled
back, its log groups with it)."""

from __future__ import annotations

from dataclasses import dataclass

from storage import Queries
from storage.records import Deployment


@dataclass(frozen=True)
class KeptOutput:
    run_id: int
    run_kind: str
    run_state: str
    #: (unix seconds, line), redacted as every recorded event is.
    lines: list[tuple[float, str]]


async def kept_build_output(queries: Queries, deployment: Deployment) -> KeptOutput | None:
    """The build output of the newest run that recorded any, or None."""
    for run in await queries.runs_for(deployment.id, limit=20):
        lines = [
            (event.at, event.message)
            for event in await queries.events_for(run.id)
            if event.step == "build" and event.level == "output"
        ]
        if lines:
            return KeptOutput(run.id, run.kind, run.state, lines)
    return None
