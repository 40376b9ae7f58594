"""The sandbox builds and runs with the Node line the plan names, as EC2 does with its
`nodejs{N}` packages: the line comes from the npm registry, is kept on the host, and the
release records the exact version that built it."""

from __future__ import annotations

import json
import re
from typing import Any

from core.sandbox import githost
from core.sandbox.controller import SandboxInfo

from .deploy_helpers import https_get, show, toast

NEEDS_22 = """const major = Number(process.versions.node.split(".")[0]);
if (major < 22) {
  console.error(`Error: this app needs Node 22 or later, not ${process.version}`);
  process.exit(1);
}
const fs = require("fs");
fs.mkdirSync("dist", { recursive: true });
fs.writeFileSync("dist/index.html", `<h1>built with Node ${process.version}</h1>\\n`);
"""


def test_an_app_that_needs_node_22_builds_with_the_line_its_plan_names(
    sandbox: SandboxInfo, session_sandbox: Any
) -> None:
    githost.create_repo(
        session_sandbox.layout,
        "someone/modern",
        {
            "package.json": json.dumps(
                {
                    "name": "modern",
                    "engines": {"node": ">=22"},
                    "scripts": {"build": "node build.js"},
                }
            ),
            "build.js": NEEDS_22,
            "toast.toml": 'build_type = "static"\noutput_dir = "dist"\n',
        },
    )
    deployed = toast("--sandbox", "deploy", "someone/modern", "--subdomain", "modern", "--wait")
    assert deployed.returncode == 0, deployed.stderr[-2000:]
    details = show("modern")
    assert details["plan"]["node_version"]["value"] == "24"  # the newest line >=22 allows
    assert details["plan"]["node_version"]["source"] == "package.json: engines.node '>=22'"
    page = https_get(sandbox, "modern.sandbox.test").text
    built_with = re.search(r"built with Node (v\d+\.\d+\.\d+)", page)
    assert built_with and built_with.group(1).startswith("v24."), page
    live = next(r for r in details["releases"] if r["live"])
    assert live["node"] == built_with.group(1)
    human = toast("show", "modern")
    assert f"built with Node {built_with.group(1)}" in human.stdout
