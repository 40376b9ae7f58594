"""`toast gc`: the ledger against what is really there."""

from __future__ import annotations

from typing import Any

import click

from cli.common import ensure_sandbox, refuse_unless_allowed, with_queries
from cli.output import emit_json, fail
from core.cloud.aws import Aws
from core.cloud.gc import collect_garbage, find_garbage
from core.profile.targets import TargetError, resolve_target
from core.serve.hooks import collect_hook_garbage, find_hook_garbage


@click.command()
@click.option("--delete", "delete", is_flag=True, help="Delete orphans and close stale entries.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def gc(obj: Any, delete: bool, as_json: bool) -> None:
    """Find Toast-tagged resources missing from the ledger, and ledger entries already gone."""
    profile = obj.profile()
    if delete:
        refuse_unless_allowed("gc --delete", profile.name)
    if profile.is_sandbox:
        ensure_sandbox()
    try:
        target = resolve_target(profile)
    except TargetError as exc:
        fail(str(exc))

    async def work(queries: Any) -> dict[str, Any]:
        aws = await Aws.connect(target)
        findings = await find_garbage(aws, queries, target.profile)
        hooks = await find_hook_garbage(queries, target.profile, target)
        done = await collect_garbage(aws, queries, target.profile, findings) if delete else []
        done += await collect_hook_garbage(queries, target, hooks) if delete else []
        return {"findings": [f.to_json() for f in findings + hooks], "done": done}

    result = with_queries(work)
    if as_json:
        emit_json(result)
        return
    if not result["findings"]:
        click.echo("Nothing to collect: the ledger matches the cloud.")
    for finding in result["findings"]:
        click.echo(f"{finding['problem']:<7} {finding['kind']:<15} {finding['id']}")
    for line in result["done"]:
        click.echo(line)
    if result["findings"] and not delete:
        click.echo("Run `toast gc --delete` to remove orphans and close stale entries.")
