"""The latency profile the orchestration and concurrency benchmarks rehearse (core/cloud/
faults.py `latency:`): what a deploy waits for on AWS, scaled down by one factor."""

from __future__ import annotations

SCALE = 0.1
#: Seconds: instance pending -> running, Route53 PENDING -> INSYNC, sshd up after running,
#: UserData done after running, certbot's exchange with the CA.
PROFILE = {"instance": 20, "dns": 40, "sshd": 5, "prepare": 30, "certbot": 7}
#: The original service's fixed waits (../shared/reference/origin.md), before certbot and logs.
ORIGINAL_WAITS_S = 120 + 60


def latency_faults(scale: float = SCALE) -> str:
    rules = [f"latency:{edge}:{seconds}" for edge, seconds in PROFILE.items()]
    return ",".join([f"latency:scale:{scale}", *rules])
