"""Least privilege at the edge: SSH only from the operator (a /32 of their own address when
operator_cidr is not set, never the world), following a changed operator_cidr; and an
instance role that may ship this deployment's logs and do nothing else."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from core.cloud.aws import Aws
from core.cloud.iam import LOG_ACTIONS, POLICY_NAME, role_name
from core.profile import paths
from core.profile.config import sandbox_profile
from core.profile.targets import resolve_target
from core.repo.spec import DeploySpec
from core.runs.context import EventSink, RunContext
from core.runs.failures import StepFailed
from core.runs.queue import queue_deploy
from core.runs.redact import Redactor
from core.sandbox.controller import SandboxInfo
from core.steps.provision import shared
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


@pytest.fixture
def checkip() -> Iterator[tuple[str, list[str]]]:
    """A checkip stand-in on loopback: answers with whatever the test puts in the list."""
    answer = ["198.51.100.23\n"]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = answer[0].encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", answer
    finally:
        server.shutdown()


async def test_ssh_is_open_only_to_the_operator_and_follows_a_change(
    sandbox: SandboxInfo,
    aws: Clients,
    isolated_toast: Path,
    checkip: tuple[str, list[str]],
) -> None:
    url, answer = checkip
    db = await open_database(paths.database_path())
    try:
        queries = Queries(db)
        profile = sandbox_profile()
        spec = DeploySpec(
            repo="toast-samples/static-site", subdomain="cidr", instance_type="t3.micro"
        )
        deployment, run = await queue_deploy(queries, profile, spec, actor="test")
        target = resolve_target(profile)

        async def shared_with(**changes: Any) -> dict[str, Any]:
            changed = dataclasses.replace(
                target, profile=dataclasses.replace(target.profile, **changes)
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
                return await shared(ctx)
            finally:
                await ctx.close()

        first = await shared_with()
        group = first.security_group
        assert ssh_cidrs(aws, group) == {"127.0.0.1/32"}
        assert "(the sandbox" in (first.detail or "")
        await shared_with(operator_cidr="203.0.113.7/32")
        assert ssh_cidrs(aws, group) == {"203.0.113.7/32"}
        events = [e.message for e in await queries.events_for(run.id)]
        assert any("SSH now from 203.0.113.7/32 only (removed 127.0.0.1/32)" in m for m in events)
        # Not configured on a real profile: the operator's own address, as a /32.
        detected = await shared_with(name="work", checkip_url=url)
        assert detected.ssh_from == "198.51.100.23/32"
        assert f"your public address, from {url}" in (detected.detail or "")
        assert ssh_cidrs(aws, group) == {"198.51.100.23/32"}
        answer[0] = "<html>captive portal</html>"
        with pytest.raises(StepFailed, match=r"not an IPv4 address; set operator_cidr"):
            await shared_with(name="work", checkip_url=url)
        assert ssh_cidrs(aws, group) == {"198.51.100.23/32"}  # nothing opened meanwhile
    finally:
        await db.close()


async def test_the_instance_role_may_only_ship_its_own_logs(
    sandbox: SandboxInfo, aws: Clients, isolated_toast: Path
) -> None:
    db = await open_database(paths.database_path())
    try:
        queries = Queries(db)
        profile = sandbox_profile()
        spec = DeploySpec(repo="toast-samples/static-site", subdomain="role")
        deployment, run = await queue_deploy(queries, profile, spec, actor="test")
        target = resolve_target(profile)
        redact = Redactor()
        ctx = RunContext(
            queries,
            run,
            deployment,
            target,
            await Aws.connect(target),
            redact,
            EventSink(queries, run.id, redact),
        )
        try:
            out = await shared(ctx)
        finally:
            await ctx.close()
        name = role_name("role")
        assert out.instance_profile == name
        iam = aws("iam")
        profile_roles = iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]
        assert [r["RoleName"] for r in profile_roles["Roles"]] == [name]
        assert iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"] == []
        assert iam.list_role_policies(RoleName=name)["PolicyNames"] == [POLICY_NAME]
        document = iam.get_role_policy(RoleName=name, PolicyName=POLICY_NAME)["PolicyDocument"]
        if isinstance(document, str):
            document = json.loads(document)
        (statement,) = document["Statement"]
        assert statement["Effect"] == "Allow"
        assert sorted(statement["Action"]) == sorted(LOG_ACTIONS)
        assert statement["Resource"] == [
            "arn:aws:logs:us-east-1:123456789012:log-group:/toast/role/*"
        ]
        ledger = {(r.kind, r.resource_id) for r in await queries.open_resources(deployment.id)}
        assert {("iam_role", name), ("instance_profile", name)} <= ledger
    finally:
        await db.close()


def test_long_deployment_names_get_distinct_role_names_within_iams_limit() -> None:
    a, b = role_name("a" * 60 + "x"), role_name("a" * 60 + "y")
    assert len(a) <= 64 and len(b) <= 64 and a != b
