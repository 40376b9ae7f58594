"""The steps each kind of run lists when it is queued, by name: light on purpose (no step
code), so queuing a run and following it import nothing of the engine. core.runs.graphs
checks at import that its graphs have exactly these steps, in this order."""

from __future__ import annotations

STEP_NAMES: dict[str, list[str]] = {
    "deploy": [
        "check",
        "shared",
        "launch",
        "address",
        "dns",
        "ssh",
        "build",
        "https",
        "switch",
        "health",
        "renewal",
    ],
    "redeploy": ["build", "switch", "health"],
    "rollback": ["pick", "switch", "health"],
    "destroy": ["host-cleanup", "teardown"],
}
#: Checks that finish after the site is live and report their own result.
AFTER_LIVE: dict[str, tuple[str, ...]] = {"deploy": ("renewal",)}
#: The steps whose success makes the site live (`--wait` returns then).
DECIDING_STEPS = {
    kind: [name for name in names if name not in AFTER_LIVE.get(kind, ())]
    for kind, names in STEP_NAMES.items()
}
