"""Run by a sample repo's post-receive hook: deliver GitHub `push` webhooks.

Usage (from the hook): python -m core.sandbox.push_hook SANDBOX_DIR OWNER/NAME < ref updates
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx

from core.sandbox import githost
from core.sandbox.layout import Layout

ZERO_SHA = "0" * 40


def sign(secret: str, body: bytes) -> str:
    """GitHub's X-Hub-Signature-256 value for `body`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def clone_url_base(layout: Layout) -> str:
    # The instance host is this machine, so repos are cloned straight from disk.
    return "file://" + str(layout.git_root)


def push_payload(
    layout: Layout, full_name: str, before: str, after: str, ref: str, clone_base: str
) -> dict[str, Any]:
    owner, name = full_name.split("/", 1)
    head = githost.head_commit(layout, full_name, after) if after != ZERO_SHA else None
    commit = (
        {
            "id": head.sha,
            "message": head.message,
            "timestamp": head.timestamp,
            "author": {"name": head.author_name, "email": head.author_email},
        }
        if head
        else None
    )
    return {
        "ref": ref,
        "before": before,
        "after": after,
        "created": before == ZERO_SHA,
        "deleted": after == ZERO_SHA,
        "repository": {
            "name": name,
            "full_name": full_name,
            "owner": {"login": owner, "name": owner},
            "clone_url": f"{clone_base}/{full_name}.git",
            "default_branch": "main",
        },
        "pusher": {"name": owner},
        "head_commit": commit,
        "commits": [commit] if commit else [],
    }


def deliver(layout: Layout, full_name: str, payload: dict[str, Any]) -> list[int | str]:
    """POST `payload` to every active push hook of the repo; returns each delivery's status."""
    with githost.hooks_locked(layout) as store:
        hooks = [dict(h) for h in store["hooks"].get(full_name, [])]
    body = json.dumps(payload).encode()
    results: list[int | str] = []
    for hook in hooks:
        if not hook.get("active", True) or "push" not in hook.get("events", ["push"]):
            continue
        config = hook["config"]
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "GitHub-Hookshot/toast-sandbox",
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": str(uuid.uuid4()),
            "X-GitHub-Hook-ID": str(hook["id"]),
        }
        if config.get("secret"):
            headers["X-Hub-Signature-256"] = sign(config["secret"], body)
        try:
            response = httpx.post(config["url"], content=body, headers=headers, timeout=10.0)
            status: int | str = response.status_code
        except httpx.HTTPError as exc:
            status = f"error: {exc}"
        results.append(status)
        with githost.hooks_locked(layout) as store:
            for stored in store["hooks"].get(full_name, []):
                if stored["id"] == hook["id"]:
                    stored["last_response"] = {
                        "status": status,
                        "delivery": headers["X-GitHub-Delivery"],
                    }
    return results


def main(argv: list[str]) -> int:
    layout = Layout(Path(argv[1]))
    full_name = argv[2]
    clone_base = clone_url_base(layout)
    for line in sys.stdin:
        parts = line.split()
        if len(parts) != 3:
            continue
        before, after, ref = parts
        payload = push_payload(layout, full_name, before, after, ref, clone_base)
        for status in deliver(layout, full_name, payload):
            print(f"toast sandbox: push webhook for {full_name} {ref}: {status}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
