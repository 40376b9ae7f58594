"""The SSH rule follows the profile: a changed operator_cidr replaces the old rule."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core import paths
from core.aws import Aws
from core.config import sandbox_profile
from core.context import EventSink, RunContext
from core.operations import queue_deploy
from core.redact import Redactor
from core.sandbox import SandboxInfo
from core.spec import DeploySpec
from core.steps.provision import ensure_security_group
from core.targets import resolve_target
from storage import Queries, open_database

Clients = Callable[[str], Any]


def ssh_cidrs(aws: Clients, group_id: str) -> set[str]:
    group = aws("ec2").describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
    return {
        r["CidrIp"]
        for p in group["IpPermissions"]
        if p.get("FromPort") == 22
        for r in p.get("IpRanges", [])
    }


async def test_a_changed_operator_cidr_replaces_the_ssh_rule(
    sandbox: SandboxInfo, aws: Clients, isolated_toast: Path
) -> None:
    db = await open_database(paths.database_path())
    try:
        queries = Queries(db)
        profile = sandbox_profile()
        spec = DeploySpec(
            repo="toast-samples/static-site", subdomain="cidr", instance_type="t3.micro"
        )
        deployment, run = await queue_deploy(queries, profile, spec, actor="test")
        target = resolve_target(profile)

        async def group_for(cidr: str) -> str:
            changed = dataclasses.replace(
                target, profile=dataclasses.replace(target.profile, operator_cidr=cidr)
            )
            redact = Redactor()
            ctx = RunContext(
                queries,
                run,
                deployment,
                changed,
                await Aws.connect(changed),
                redact,
                EventSink(queries, run.id, redact),
            )
            try:
                return await ensure_security_group(ctx)
            finally:
                await ctx.close()

        first = await group_for("127.0.0.1/32")
        assert ssh_cidrs(aws, first) == {"127.0.0.1/32"}
        second = await group_for("203.0.113.7/32")
        assert second == first
        assert ssh_cidrs(aws, first) == {"203.0.113.7/32"}
        events = [e.message for e in await queries.events_for(run.id)]
        assert any("SSH now from 203.0.113.7/32 only (removed 127.0.0.1/32)" in m for m in events)
    finally:
        await db.close()
