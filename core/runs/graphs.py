"""The runs Toast knows: the graph of steps each kind runs (queuing them: core.runs.queue)."""

from __future__ import annotations

from core.runs.context import RunContext
from core.runs.graph import StepDef, live_steps
from core.runs.outputs import StepOutput
from core.steps import dns, host, https, outputs, preflight, provision, release, teardown

DEPLOY = [
    StepDef(
        "check",
        (),
        preflight.check,
        "Check the repository, branch and DNS name",
        outputs.CheckOutput,
    ),
    StepDef(
        "shared",
        ("check",),
        provision.shared,
        "Key pair, security group and instance profile",
        outputs.SharedOutput,
    ),
    StepDef("launch", ("shared",), provision.launch, "Launch the instance", outputs.LaunchOutput),
    StepDef(
        "address", ("launch",), provision.address, "Wait for a public IP", outputs.AddressOutput
    ),
    StepDef("dns", ("address",), dns.dns, "Point DNS at the instance", outputs.DnsOutput),
    StepDef(
        "ssh", ("address",), host.ssh, "Connect over SSH and prepare the host", outputs.SshOutput
    ),
    StepDef("build", ("ssh",), host.build, "Fetch and build", outputs.BuildOutput),
    StepDef("https", ("dns", "ssh"), https.https, "Get a certificate", outputs.HttpsOutput),
    StepDef(
        "switch",
        ("build", "https"),
        release.switch,
        "Switch to the new release",
        outputs.SwitchOutput,
    ),
    StepDef(
        "health", ("switch",), release.health, "Check the site over HTTPS", outputs.HealthOutput
    ),
    StepDef(
        "renewal",
        ("https",),
        https.renewal,
        "Check that the certificate renews",
        after_live=True,
    ),
]
REDEPLOY = [
    StepDef("build", (), host.build, "Fetch and build", outputs.BuildOutput),
    StepDef(
        "switch", ("build",), release.switch, "Switch to the new release", outputs.SwitchOutput
    ),
    StepDef(
        "health", ("switch",), release.health, "Check the site over HTTPS", outputs.HealthOutput
    ),
]
ROLLBACK = [
    StepDef("pick", (), release.pick, "Choose the release", outputs.PickOutput),
    StepDef("switch", ("pick",), release.switch, "Switch back", outputs.SwitchOutput),
    StepDef(
        "health", ("switch",), release.health, "Check the site over HTTPS", outputs.HealthOutput
    ),
]
DESTROY = [
    StepDef(
        "host-cleanup", (), teardown.host_cleanup, "Clean up the host", outputs.HostCleanupOutput
    ),
    StepDef(
        "teardown",
        ("host-cleanup",),
        teardown.release_resources,
        "Delete cloud resources",
        outputs.TeardownOutput,
    ),
]
GRAPHS = {"deploy": DEPLOY, "redeploy": REDEPLOY, "rollback": ROLLBACK, "destroy": DESTROY}


#: The steps of each kind, in graph order: what a queued run lists before it starts.
STEP_NAMES = {kind: [step.name for step in graph] for kind, graph in GRAPHS.items()}
#: The steps whose success makes the site live (`--wait` returns then); the others are
#: checks that finish afterwards and report their own result.
DECIDING_STEPS = {kind: live_steps(graph) for kind, graph in GRAPHS.items()}


async def clean_host(ctx: RunContext) -> StepOutput:
    """A failed first deploy's host cleanup (stop the app, drop its site and files)."""
    return await teardown.host_cleanup(ctx)


async def release_resources(ctx: RunContext) -> StepOutput:
    """A failed first deploy's cloud resources, deleted as destroy deletes them."""
    return await teardown.release_resources(ctx)
