"""The runs Toast knows: the graph of steps each kind runs (queuing them: core.runs.queue)."""

from __future__ import annotations

from core.runs.graph import StepDef
from core.runs.queue import STEP_NAMES
from core.steps import dns, host, https, preflight, provision, release, teardown

DEPLOY = [
    StepDef("check", (), preflight.check, "Check the repository, branch and DNS name"),
    StepDef(
        "shared", ("check",), provision.shared, "Key pair, security group and instance profile"
    ),
    StepDef("launch", ("shared",), provision.launch, "Launch the instance"),
    StepDef("address", ("launch",), provision.address, "Wait for a public IP"),
    StepDef("dns", ("address",), dns.dns, "Point DNS at the instance"),
    StepDef("ssh", ("address",), host.ssh, "Connect over SSH and prepare the host"),
    StepDef("build", ("ssh",), host.build, "Fetch and build"),
    StepDef("https", ("dns", "ssh"), https.https, "Get a certificate"),
    StepDef("switch", ("build", "https"), release.switch, "Switch to the new release"),
    StepDef("health", ("switch",), release.health, "Check the site over HTTPS"),
    StepDef("renewal", ("https",), https.renewal, "Check that the certificate renews"),
]
REDEPLOY = [
    StepDef("build", (), host.build, "Fetch and build"),
    StepDef("switch", ("build",), release.switch, "Switch to the new release"),
    StepDef("health", ("switch",), release.health, "Check the site over HTTPS"),
]
ROLLBACK = [
    StepDef("pick", (), release.pick, "Choose the release"),
    StepDef("switch", ("pick",), release.switch, "Switch back"),
    StepDef("health", ("switch",), release.health, "Check the site over HTTPS"),
]
DESTROY = [
    StepDef("host-cleanup", (), teardown.host_cleanup, "Clean up the host"),
    StepDef("teardown", ("host-cleanup",), teardown.release_resources, "Delete cloud resources"),
]
GRAPHS = {"deploy": DEPLOY, "redeploy": REDEPLOY, "rollback": ROLLBACK, "destroy": DESTROY}


# The queuing side names the steps without importing them: the two must agree.
if {kind: [s.name for s in graph] for kind, graph in GRAPHS.items()} != STEP_NAMES:
    raise RuntimeError("core.runs.queue.STEP_NAMES differs from core.runs.graphs.GRAPHS")
