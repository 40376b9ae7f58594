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


def calls_in_core() -> set[str]:
    actions = set()
    for path in (ROOT / "core").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("call", "paginate")
                and len(node.args) >= 2
                and all(
                    isinstance(a, ast.Constant) and isinstance(a.value, str) for a in node.args[:2]
                )
            ):
                continue
            service, operation = node.args[0].value, node.args[1].value  # type: ignore[attr-defined]
            camel = "".join(part.capitalize() for part in operation.split("_"))
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
