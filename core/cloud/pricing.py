"""Estimated on-demand prices of the instance types Toast is used with, so the console and
the wizard can say what a deployment costs while it runs.

Linux on-demand hourly prices in us-east-1 from AWS's EC2 pricing page (other regions
differ by a few percent); EBS storage and data transfer are extra. An estimate, never a bill.
"""

from __future__ import annotations

HOURLY_USD = {
    "t2.micro": 0.0116,
    "t2.small": 0.023,
    "t2.medium": 0.0464,
    "t3.nano": 0.0052,
    "t3.micro": 0.0104,
    "t3.small": 0.0208,
    "t3.medium": 0.0416,
    "t3.large": 0.0832,
    "t3a.micro": 0.0094,
    "t3a.small": 0.0188,
    "t3a.medium": 0.0376,
    "t4g.nano": 0.0042,
    "t4g.micro": 0.0084,
    "t4g.small": 0.0168,
    "t4g.medium": 0.0336,
    "m5.large": 0.096,
    "m6i.large": 0.096,
    "m7g.large": 0.0816,
    "c5.large": 0.085,
    "c6i.large": 0.085,
    "c7g.large": 0.0725,
}


def hourly_cost(instance_type: str) -> float | None:
    """The estimated USD per hour, or None for a type not in the table."""
    return HOURLY_USD.get(instance_type)


def describe_cost(instance_type: str, *, sandbox: bool = False) -> str:
    """'$0.0208/h' (about $15 a month), 'free' in the sandbox, '?' when unknown."""
    if sandbox:
        return "free"
    price = hourly_cost(instance_type)
    return "?" if price is None else f"${price:.4f}/h"
