"""What the console asks of core beyond reading: queue a run (and make sure an engine takes
it), bring the sandbox up, find how to reach a site. Loaded through tui.lazy the first time
one is used: these pull in the queue's checks, the sandbox controller and httpx, which the
first frame does not need. Each answers in the console's terms (a message to show, or what
was done), so the app need not import the errors of modules it has not loaded."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from textual.notifications import SeverityLevel

from core.profile import paths
from core.profile.config import Profile
from core.runs.access import Actor, ReadOnlyError
from core.runs.launcher import ensure_engine
from core.runs.queue import OperationError, head_is_live, queue_run
from core.sandbox.controller import Sandbox, SandboxError
from core.views.site_address import reach
from storage import Queries


@dataclass(frozen=True)
class Queued:
    """A run queued (`run_id`), or why none was (`refusal`, `severity` as notify takes it)."""

    run_id: int | None = None
    refusal: str = ""
    severity: SeverityLevel = "error"


class Operations:
    async def queue(
        self, queries: Queries, kind: str, name: str, actor: Actor, sha: str | None
    ) -> Queued:
        """Queue a run through core (which refuses, and audits, what `actor` may not do);
        a redeploy of the commit already live is not queued."""
        if kind == "redeploy" and actor.may("redeploy"):
            d = await queries.get_deployment(name)
            live = await head_is_live(queries, d) if d is not None else None
            if live is not None:
                return Queued(
                    refusal=f"{name} already serves {live[:12]}, the head of its branch; "
                    "nothing to do",
                    severity="information",
                )
        try:
            _, run = await queue_run(queries, name, kind, actor=actor, sha=sha)
        except (OperationError, ReadOnlyError) as exc:
            return Queued(refusal=str(exc))
        await asyncio.to_thread(ensure_engine)
        return Queued(run_id=run.id)

    def sandbox_up(self) -> tuple[bool, str]:
        """Start the sandbox (blocking: call from a thread): (started, what to show)."""
        try:
            info = Sandbox(paths.sandbox_dir()).up()
        except SandboxError as exc:
            return False, f"sandbox failed to start: {exc}"
        return True, f"AWS at {info.aws_endpoint}"

    def reach(self, profile: Profile, fqdn: str) -> tuple[str, str | None]:
        """(URL, None) for a browser; in the sandbox (URL, a curl command that works)."""
        return reach(profile, fqdn)
