"""The runs Toast knows: the graph of steps each kind runs (queuing them: core.runs.queue)."""

from __future__ import annotations

from core.runs.context import RunContext
from core.runs.graph import StepDef
from core.runs.outputs import StepOutput
from core.runs.step_names import AFTER_LIVE, STEP_NAMES
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
        "switch",
        ("build",),
        release.switch,
        "Switch to the new release",
        outputs.SwitchOutput,
        undo=release.put_back,
    ),
    StepDef(
        "health", ("switch",), release.health, "Check the site over HTTPS", outputs.HealthOutput
    ),
]
ROLLBACK = [
    StepDef("pick", (), release.pick, "Choose the release", outputs.PickOutput),
    StepDef(
        "switch",
        ("pick",),
        release.switch,
        "Switch back",
        outputs.SwitchOutput,
        undo=release.put_back,
    ),
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


# The light list the queue uses must be these graphs' steps, in order.
for _kind, _graph in GRAPHS.items():
    if [step.name for step in _graph] != STEP_NAMES[_kind] or [
        step.name for step in _graph if step.after_live
    ] != list(AFTER_LIVE.get(_kind, ())):
        raise RuntimeError(f"core/runs/step_names.py is out of step with the {_kind} graph")


async def clean_host(ctx: RunContext) -> StepOutput:
    """A failed first deploy's host cleanup (stop the app, drop its site and files)."""
    return await teardown.host_cleanup(ctx)


async def release_resources(ctx: RunContext) -> StepOutput:
    """A failed first deploy's cloud resources, deleted as destroy deletes them."""
    return await teardown.release_resources(ctx)
