"""docs/iam-policy.json allows exactly the AWS calls Toast makes: every call in core/ (read
from the code itself, so a new call without a policy change fails here), the permissions
its parameters imply (tags, passing the instance role), and nothing more."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PREFIX = {"service-quotas": "servicequotas"}
#: Permissions a call needs beyond its own action, because of the parameters Toast sends.
IMPLIED = {
    "ec2:CreateTags",  # TagSpecifications on RunInstances, ImportKeyPair, CreateSecurityGroup
    "iam:TagRole",  # Tags on CreateRole
    "iam:TagInstanceProfile",  # Tags on CreateInstanceProfile
    "iam:PassRole",  # RunInstances with an instance profile
    "logs:TagResource",  # tags on CreateLogGroup
}


#: Aws's typed accessors, by the service each returns a client for.
ACCESSORS = {
    "ec2": "ec2",
    "iam": "iam",
    "logs": "logs",
    "route53": "route53",
    "service_quotas": "service-quotas",
    "ssm": "ssm",
    "sts": "sts",
}


def _service(client: ast.expr) -> str:
    """The service of the client in `aws.run(CLIENT.operation, ...)`: either the accessor
    awaited in place (`(await aws.ec2()).op`) or a variable named after it (`ec2.op`)."""
    if isinstance(client, ast.Await) and isinstance(client.value, ast.Call):
        func = client.value.func
        if isinstance(func, ast.Attribute) and func.attr in ACCESSORS:
            return ACCESSORS[func.attr]
    if isinstance(client, ast.Name) and client.id in ACCESSORS:
        return ACCESSORS[client.id]
    raise AssertionError(
        f"line {client.lineno}: call AWS through a client named after its service "
        f"(ec2 = await aws.ec2()), so the policy check can read it"
    )


def calls_in_core() -> set[str]:
    actions = set()
    for path in (ROOT / "core").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("run", "pages")
                and isinstance(node.func.value, ast.Attribute | ast.Name)
                and "aws" in ast.unparse(node.func.value)
                and node.args
                and isinstance(node.args[0], ast.Attribute)
            ):
                continue
            operation = node.args[0]
            service = _service(operation.value)
            camel = "".join(part.capitalize() for part in operation.attr.split("_"))
            actions.add(f"{PREFIX.get(service, service)}:{camel}")
    return actions


def allowed() -> set[str]:
    policy = json.loads((ROOT / "docs" / "iam-policy.json").read_text())
    actions: set[str] = set()
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        listed = statement["Action"]
        actions |= {listed} if isinstance(listed, str) else set(listed)
    return actions


def test_the_policy_allows_every_call_toast_makes_and_nothing_else() -> None:
    needed = calls_in_core() | IMPLIED
    assert "ec2:RunInstances" in needed and "iam:PutRolePolicy" in needed  # the scan works
    assert not any("*" in a for a in allowed()), "no wildcard actions"
    assert sorted(needed - allowed()) == [], "calls the policy does not allow"
    assert sorted(allowed() - needed) == [], "allowed but never called"


def test_role_and_log_permissions_are_scoped_to_toasts_own_names() -> None:
    policy = json.loads((ROOT / "docs" / "iam-policy.json").read_text())
    for statement in policy["Statement"]:
        listed = statement["Action"]
        actions = [listed] if isinstance(listed, str) else listed
        resources = statement["Resource"]
        resources = [resources] if isinstance(resources, str) else resources
        writes_iam = any(
            re.match(r"iam:(Create|Delete|Put|Add|Remove|Pass|Tag)", a) for a in actions
        )
        if writes_iam:
            assert all(r.split(":")[-1].split("/", 1)[1].startswith("toast-") for r in resources)
        if any(a.startswith("logs:") and a != "logs:DescribeLogGroups" for a in actions):
            assert resources == ["arn:aws:logs:*:*:log-group:/toast/*"]
    pass_role = next(s for s in policy["Statement"] if s["Action"] == "iam:PassRole")
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}
