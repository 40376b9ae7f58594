"""`toast doctor`: what would fail on this profile, and the fix for each."""

from __future__ import annotations

import asyncio
from typing import Any

import click

from cli.deploy_cmd import _target
from cli.output import EXIT_FAILED, emit_json
from core.cloud.doctor import run_checks


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.pass_obj
def doctor(obj: Any, as_json: bool) -> None:
    """Check credentials, region, hosted zone, subnet, AMI, key pair, vCPU quota and IAM
    permissions for the profile, and print the fix for each problem. Changes nothing.
    Exits 1 when a check fails."""
    target = _target(obj)
    checks = asyncio.run(run_checks(target))
    if as_json:
        emit_json({"profile": target.profile.name, "checks": [c.to_json() for c in checks]})
    else:
        click.echo(f"Profile {target.profile.name} ({target.profile.region}):")
        for check in checks:
            mark = {True: "ok  ", False: "FAIL", None: "skip"}[check.ok]
            click.echo(f"  {mark}  {check.name:<12} {check.detail}")
            if check.fix and check.ok is False:
                click.echo(f"        fix: {check.fix}")
    if any(c.ok is False for c in checks):
        raise SystemExit(EXIT_FAILED)
