"""A first deploy whose build fails keeps its story: the error names the line that says why
(not the noise printed after it), and after the rollback has deleted the log groups,
`toast logs NAME --source build` still shows that build's output, saying where it is from."""

from __future__ import annotations

import json
from typing import Any

from core.runs.excerpt import failure_excerpt, known_cause
from core.sandbox import githost
from core.sandbox.controller import SandboxInfo

from .deploy_helpers import show, toast

FAILS_EARLY = """console.log("compiling 12 modules");
console.error("Error: Failed to fetch font `Inter` from Google Fonts.");
for (let i = 1; i <= 20; i++) console.log(`  retry summary line ${i}`);
process.exit(1);
"""


def test_the_excerpt_names_the_cause_before_the_noise_after_it() -> None:
    output = [
        "> app@1.0.0 build",
        "> next build",
        "Creating an optimized production build ...",
        "Failed to compile.",
        "./app/layout.tsx",
        "Error: Cannot find module 'left-pad'",
        *[f"    at Module._resolve (node:internal/{i})" for i in range(10)],
        "npm error Lifecycle script `build` failed with error:",
        "npm error A complete log of this run can be found in: /root/.npm/_logs/x.log",
        "npm error",
    ]
    excerpt = failure_excerpt(output)
    assert excerpt[0] == "Failed to compile."
    assert "Error: Cannot find module 'left-pad'" in excerpt
    assert not any(line.startswith("at Module") for line in excerpt)
    assert (
        excerpt[-1]
        == "npm error A complete log of this run can be found in: /root/.npm/_logs/x.log"
    )
    assert len(excerpt) <= 7
    # With nothing naming a failure, the last lines are what there is.
    assert failure_excerpt(["a", "b", "c"]) == ["b", "c"]


def test_a_failed_first_build_names_its_cause_and_its_output_survives_the_rollback(
    sandbox: SandboxInfo, session_sandbox: Any
) -> None:
    repo = "someone/fails-early"
    githost.create_repo(
        session_sandbox.layout,
        repo,
        {
            "package.json": json.dumps({"name": "fails", "scripts": {"build": "node build.js"}}),
            "build.js": FAILS_EARLY,
            "toast.toml": 'build_type = "static"\noutput_dir = "dist"\n',
        },
    )
    failed = toast("--sandbox", "deploy", repo, "--subdomain", "fails", "--wait")
    assert failed.returncode == 1, failed.stdout
    assert "deploy of fails failed at step build" in failed.stderr
    first_line = failed.stderr.split("\n", 1)[0]
    assert "Error: Failed to fetch font `Inter` from Google Fonts." in first_line
    assert "Rolled back:" in failed.stderr and "log_group" in failed.stderr
    assert show("fails")["state"] == "failed"

    logs = toast("logs", "fails", "--source", "build")
    assert logs.returncode == 0, logs.stderr
    assert "is gone" in logs.stderr and "as Toast recorded it" in logs.stderr
    assert "Error: Failed to fetch font `Inter`" in logs.stdout
    assert "retry summary line 20" in logs.stdout


def test_a_corepack_signature_failure_is_one_sentence_with_what_to_do() -> None:
    output = [
        "/usr/lib/node_modules/corepack/dist/lib/corepack.cjs:21535",
        "  if (key == null || signature == null) throw new Error(`Cannot find matching keyid: "
        "${JSON.stringify({ signatures, keys })}`);",
        "Error: Cannot find matching keyid: "
        '{"signatures":[{"sig":"MEYC","keyid":"SHA256:DhQ8"}],"keys":[]}',
        "    at verifySignature (/usr/lib/node_modules/corepack/dist/lib/corepack.cjs:21535:47)",
        "Node.js v20.20.2",
    ]
    cause = known_cause(output)
    assert cause is not None
    assert "corepack could not verify" in cause and "COREPACK_INTEGRITY_KEYS=0" in cause
    assert known_cause(["Error: Cannot find module 'x'"]) is None
    kit = known_cause(["error during build:", "Error: Encountered dynamic routes"])
    assert kit is not None and "export const prerender = true;" in kit
