"""The instance as a host: reach it over SSH, prepare it, and build releases on it."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import posixpath
import time
from dataclasses import dataclass

from core.cloud.aws import AwsError
from core.cloud.log_groups import LOG_SOURCES, log_group
from core.commands import mkdirs, render
from core.commands.agent import agent_config
from core.commands.files import (
    ensure_private_json,
    preparation_status,
    read_file,
    tail_file,
    then,
)
from core.commands.git import adopt_release, fetch_failed_in_transit, fetch_source
from core.commands.runner import (
    RUNNER_JS,
    as_build_process,
    env_json,
    run_in_release,
    start_log,
    stop_earlier_build,
)
from core.commands.toolchain import (
    build_env,
    deps_fingerprint,
    enable_package_managers,
    ensure_bun,
    node_exe,
    reuse_node_modules,
)
from core.host.ssh import Remote, RunResult
from core.profile.installation import TAG, installation_id
from core.repo.github import GitHub, GitHubError, token_for
from core.repo.heads import is_git_url
from core.runs.context import RunContext
from core.runs.excerpt import failure_excerpt, known_cause
from core.runs.failures import StepFailed
from core.runs.waiting import backoff_delays
from core.steps.outputs import BuildOutput, LaunchOutput, SshOutput
from storage.records import Release


@dataclass(frozen=True)
class Installed:
    """What an install and build left: the release's attributes, and how the install went."""

    attributes: dict[str, str]
    seconds: float
    reused_from: str | None


async def ssh(ctx: RunContext) -> SshOutput:
    """Verify the host key, wait for host preparation, install Toast's runner and log config."""
    instance_id = ctx.output("launch", LaunchOutput).instance_id
    keys = await ctx.host_keys(instance_id, step="ssh")
    await ctx.record("instance", instance_id, attributes={"host_keys": keys})
    remote = await ctx.remote()
    await wait_for_preparation(ctx, remote, instance_id)
    app = ctx.app
    await remote.run(
        render(
            mkdirs(
                app.app_dir, app.releases, app.run_dir, app.log_dir, app.runner.rsplit("/", 1)[0]
            )
        ),
        what="create app directories",
    )
    await remote.write_file(app.runner, RUNNER_JS.encode(), mode=0o644)
    await remote.run(enable_package_managers(ctx.host), what="enable pnpm and yarn (corepack)")
    await install_agent_config(ctx, remote, instance_id)
    await create_log_groups(ctx)
    return SshOutput(instance_id=instance_id, detail=f"{remote.where}, host key verified")


async def wait_for_preparation(ctx: RunContext, remote: Remote, instance_id: str) -> None:
    """Follow UserData's stages through the host's boot status file: each stage is reported
    as it starts, and a failed one ends the step at once with its output."""
    marker = ctx.host.ready_marker(instance_id)
    status_dir = ctx.host.boot_status_dir(instance_id)
    status_file = posixpath.join(status_dir, "status")
    seen: list[str] = []

    async def prepared() -> bool | None:
        if ctx.settings.faults.preparing(instance_id):
            return None  # a rehearsed boot: UserData is still running
        result = await remote.run(
            preparation_status(status_file, marker),
            what="check host preparation",
            check=False,
        )
        state = result.output[0].split() if result.output else []
        if state and state[0] == "running" and len(state) > 1 and state[1] not in seen:
            seen.append(state[1])
            ctx.say(f"host preparation: {state[1]}", step="ssh")
        if state and state[0] == "failed" and len(state) > 1:
            stage = state[1]
            log = posixpath.join(status_dir, f"{stage}.log")
            tail = await remote.run(tail_file(log, 15), what="read the stage log")
            output = " | ".join(line for line in tail.output if line.strip())
            status = state[2] if len(state) > 2 else "?"
            raise StepFailed(
                f"host preparation failed at stage {stage!r} (exit {status})"
                + (f": {output}" if output else ""),
                hint=f"the whole output is in {log} on the instance; fix the cause and deploy "
                "again (this instance is rolled back)",
            )
        return True if result.status == 0 else None

    await ctx.wait(
        prepared,
        step="ssh",
        what=f"host preparation on {instance_id} ({marker})",
        report="host preparation (UserData) to finish",
        timeout=900,
        hint="see the instance's console output for UserData errors",
    )


async def install_agent_config(ctx: RunContext, remote: Remote, instance_id: str) -> None:
    app = ctx.app
    staged = f"{app.app_dir}/cloudwatch-agent.json"
    await remote.write_file(staged, agent_config([app]), mode=0o644)
    target = f"{ctx.host.agent_config_dir}/{instance_id}.json"
    command = render((*ctx.host.sudo, "install", "-m", "0644", staged, target))
    if ctx.host.agent_reload:
        command = then(command, render(ctx.host.agent_reload))
    await remote.run(command, what="install the CloudWatch agent config")


async def create_log_groups(ctx: RunContext) -> None:
    for source in LOG_SOURCES:
        group = log_group(ctx.deployment.name, source)
        try:
            await ctx.aws.run(
                (await ctx.aws.logs()).create_log_group,
                logGroupName=group,
                tags={
                    "toast:managed-by": "toast",
                    "toast:profile": ctx.profile_name,
                    "toast:deployment": ctx.deployment.name,
                    TAG: installation_id(),
                },
            )
        except AwsError as exc:
            if exc.code != "ResourceAlreadyExistsException":
                raise
        await ctx.aws.run(
            (await ctx.aws.logs()).put_retention_policy, logGroupName=group, retentionInDays=30
        )
        await ctx.record("log_group", group)


async def repo_url(ctx: RunContext, repo: str) -> str:
    """A git URL as given, or the clone URL GitHub reports for owner/name."""
    if is_git_url(repo):
        return repo

    async with GitHub(
        ctx.target.github_api, ctx.target.github_token, faults=ctx.settings.faults
    ) as github:
        try:
            return (await github.repo(repo)).clone_url
        except GitHubError as exc:
            raise StepFailed(str(exc), hint="check the repository name and GITHUB_TOKEN") from exc


#: Tries of a fetch that failed in transit (see core.commands.git.TRANSIENT).
FETCH_ATTEMPTS = 3


async def _fetch(
    ctx: RunContext, remote: Remote, url: str, token: str | None, incoming: str
) -> RunResult:
    """Fetch the branch head, trying again (after 2 s, then 4 s) when git says the way to
    its server failed; a missing repository or branch fails at once."""
    d = ctx.deployment
    delays = backoff_delays(initial=2 * ctx.settings.faults.time_scale, maximum=10)
    for attempt in range(1, FETCH_ATTEMPTS + 1):
        fetched = await remote.run(
            as_build_process(
                ctx.app,
                fetch_source(
                    ctx.settings.faults.git_url(url),
                    d.branch,
                    incoming,
                    stall_s=ctx.settings.git_stall,
                ),
            ),
            what=f"fetch {d.repo}@{d.branch}",
            input=(token or "") + "\n",
            on_line=lambda line: ctx.say(line, step="build", level="output"),
            check=False,
        )
        if fetched.status == 0:
            return fetched
        reason = next((line for line in reversed(fetched.output) if line.strip()), "no output")
        if not fetch_failed_in_transit(fetched.output):
            raise StepFailed(
                f"git could not fetch {d.repo}@{d.branch} on the host: {reason}",
                hint="check that the repository and the branch exist and that the token "
                "(GITHUB_TOKEN) may read them",
            )
        if attempt == FETCH_ATTEMPTS:
            raise StepFailed(
                f"git could not fetch {d.repo}@{d.branch} on the host after {attempt} "
                f"attempts: {reason}",
                hint="the git server or the instance's network failed; run the deploy "
                "again when it answers",
            )
        delay = next(delays)
        ctx.say(
            f"fetching {d.repo}@{d.branch} failed in transit ({reason}); trying again in "
            f"{delay:.0f} s (attempt {attempt + 1} of {FETCH_ATTEMPTS})",
            step="build",
            level="warning",
        )
        await asyncio.sleep(delay)  # the backoff between attempts
    raise AssertionError("unreachable")


def secret_names(ctx: RunContext) -> list[str]:
    return sorted(e.name for e in ctx.deployment.env if e.secret)


async def learn_secrets(ctx: RunContext, remote: Remote) -> None:
    """Read the deployment's secret values back from the host's 0600 env file, into memory
    only, so that nothing this run says can show them."""
    names = secret_names(ctx)
    if not names:
        return
    result = await remote.run(
        read_file(ctx.app.env_file, missing="{}"),
        what="read the env file",
    )
    try:
        values = json.loads("\n".join(result.output) or "{}")
    except ValueError:
        return
    for name in names:
        if isinstance(values.get(name), str):
            ctx.redact.add(values[name])


async def build(ctx: RunContext) -> BuildOutput:
    """Fetch the branch head into a fresh release directory, install and build there.

    Releases are immutable: a build never touches the live release or any other; the
    switch step makes it live only after it built and passed its checks."""
    remote = await ctx.remote()
    app, d = ctx.app, ctx.deployment
    incoming = app.incoming(ctx.run.id)
    # A try of this build before (a lost connection, a killed engine) may still be running
    # on the host, in the directories this one is about to use.
    stopped = await remote.run(stop_earlier_build(app), what="stop an earlier build")
    for line in stopped.output:
        ctx.say(line, step="build", level="warning")
    url = await repo_url(ctx, d.repo)
    # The token goes only to GitHub's own host; it reaches git on stdin, never argv or disk.
    token = token_for(url, ctx.target.github_api, ctx.target.github_token)
    fetched = await _fetch(ctx, remote, url, token, incoming)
    sha, subject = fetched.output[-2:] if len(fetched.output) >= 2 else ("", "")
    if len(sha) != 40:
        raise StepFailed(f"could not read the commit of {d.repo}@{d.branch}: {fetched.output}")
    await ctx.queries.set_run_commit(ctx.run.id, sha, subject)
    live = await live_release(ctx)
    if ctx.run.kind == "redeploy" and not ctx.run.force and live is not None and live.sha == sha:
        await remote.run(render(("rm", "-rf", incoming)), what="drop the fetched tree")
        note = f"{sha[:12]} is already live; nothing to do (redeploy --force rebuilds it)"
        ctx.outcome["summary"] = f"redeploy of {d.name}: {note}"
        return BuildOutput(sha=sha, unchanged=True, skipped=True, detail=note)
    release = app.release(sha, ctx.run.id)
    await remote.run(adopt_release(incoming, release), what="move the source into place")
    if ctx.run.kind == "deploy":
        values = {e.name: e.value for e in d.env if e.value is not None and not e.secret}
        values.update(ctx.secret_env or {})
        await remote.write_file(app.env_file, env_json(values), mode=0o600)
    else:
        await remote.run(
            ensure_private_json(app.env_file),
            what="check the env file",
        )
        await learn_secrets(ctx, remote)
    try:
        built = await _install_and_build(ctx, remote, release, sha, subject)
    except Exception:
        # A failed build leaves nothing behind: its directory was never live.
        with contextlib.suppress(Exception):
            await remote.run(render(("rm", "-rf", "--", release)), what="remove the failed build")
        raise
    rel = await ctx.queries.add_release(d.id, sha, release, run_id=ctx.run.id)
    if built.attributes:
        await ctx.queries.set_release_attributes(rel.id, built.attributes)
    how = (
        f"node_modules reused from {built.reused_from[:12]} in {built.seconds:.1f} s"
        if built.reused_from
        else f"installed in {built.seconds:.1f} s"
    )
    return BuildOutput(
        sha=sha,
        message=subject,
        release_id=rel.id,
        path=release,
        install_seconds=built.seconds,
        install_reused_from=built.reused_from,
        detail=f"{sha[:12]} {subject}; {how}",
    )


async def live_release(ctx: RunContext) -> Release | None:
    fresh = await ctx.queries.get_deployment_by_id(ctx.deployment.id)
    if fresh is None or fresh.current_release_id is None:
        return None
    return await ctx.queries.get_release(fresh.current_release_id)


async def _install_and_build(
    ctx: RunContext, remote: Remote, release: str, sha: str, subject: str
) -> Installed:
    """Install (or reuse the live release's node_modules when nothing that decides them
    changed) and build; returns what the build output and the release keep."""
    app, d = ctx.app, ctx.deployment
    install_cwd = posixpath.join(release, d.install_dir)
    build_cwd = posixpath.join(release, d.root_dir)
    header = f"==> toast: building {d.repo}@{sha[:12]} ({subject}) for {d.fqdn}"
    await remote.run(start_log(app.build_log, header), what="start the build log")
    if d.install_cmd.split()[0] == "bun":
        await remote.run(ensure_bun(ctx.host), what="install bun")
    started = time.monotonic()
    key = await _deps_key(ctx, remote, release)
    kept = {"deps_key": key} if key else {}
    # Which Node builds (and will run) this release: the plan names a line, this is the
    # exact version the host has for it.
    version = await remote.run(
        render((node_exe(ctx.host, d.node_version), "--version")),
        what=f"find Node {d.node_version} on the host",
    )
    if version.output:
        kept["node"] = version.output[-1].strip()
        ctx.say(f"Node {kept['node']} (line {d.node_version})", step="build")
    reused = await _reuse_deps(ctx, remote, install_cwd, key)
    if reused is None:
        await _run_logged(ctx, remote, "install", d.install_cmd, install_cwd, production=False)
    install_seconds = round(time.monotonic() - started, 2)
    if d.build_cmd:
        await _run_logged(ctx, remote, "build", d.build_cmd, build_cwd, production=True)
    if d.build_type == "static":
        served = posixpath.join(build_cwd, d.output_dir or "dist")
        check = await remote.run(
            render(("test", "-f", f"{served}/index.html")),
            what="check the build output",
            check=False,
        )
        if check.status != 0:
            raise StepFailed(
                f"the build did not produce {posixpath.join(d.root_dir, d.output_dir or '')}"
                "/index.html".lstrip("/"),
                hint="check the output dir (--output-dir) and the build command",
            )
    return Installed(attributes=kept, seconds=install_seconds, reused_from=reused)


async def _run_logged(
    ctx: RunContext, remote: Remote, label: str, command: str, cwd: str, *, production: bool
) -> None:
    env = {
        **build_env(ctx.host, ctx.deployment.install_cmd, ctx.deployment.node_version),
        "CI": "true",
    }
    if production:
        env["NODE_ENV"] = "production"
    ctx.say(f"$ {command}", step="build")
    result = await remote.run(
        as_build_process(
            ctx.app,
            run_in_release(
                ctx.app,
                cwd,
                command,
                env_file=ctx.app.env_file,
                log=ctx.app.build_log,
                redact=secret_names(ctx),
                extra_env=env,
                node=node_exe(ctx.host, ctx.deployment.node_version),
            ),
        ),
        what=f"{label} ({command})",
        on_line=lambda line: ctx.say(line, step="build", level="output"),
        timeout=1800,
        check=False,
    )
    if result.status != 0:
        cause = known_cause(result.output)
        excerpt = " | ".join(failure_excerpt(result.output))
        said = f"; {cause}" if cause else (f"; the output says: {excerpt}" if excerpt else "")
        raise StepFailed(
            f"{label} failed: `{command}` exited with {result.status}{said}",
            hint=f"the whole output: `toast logs {ctx.deployment.name} --source build`",
        )


async def _deps_key(ctx: RunContext, remote: Remote, release: str) -> str | None:
    """What decides node_modules (Node version, lockfile, package.json, install command),
    hashed; None when the plan says reuse is unsafe (no lockfile, install-time scripts, a
    workspace) or the deployment has no detected plan."""
    d = ctx.deployment
    detected = (d.plan or {}).get("detected", {})
    lockfile = detected.get("lockfile")
    if not detected.get("reuse_node_modules") or not lockfile:
        return None
    result = await remote.run(
        deps_fingerprint(
            posixpath.join(release, d.install_dir),
            posixpath.join(release, lockfile),
            node_exe(ctx.host, d.node_version),
        ),
        what="hash the lockfile",
        check=False,
    )
    if result.status != 0 or not result.output:
        return None
    digest = result.output[-1].split()[0]
    return hashlib.sha256(f"{digest}\0{d.install_cmd}\0{d.install_dir}".encode()).hexdigest()


async def _reuse_deps(
    ctx: RunContext, remote: Remote, install_cwd: str, key: str | None
) -> str | None:
    """Copy node_modules from the live release when its key matches; the sha reused from."""
    if key is None or ctx.run.force:
        return None
    live = await live_release(ctx)
    if live is None or live.attributes.get("deps_key") != key:
        return None
    previous = posixpath.join(live.path, ctx.deployment.install_dir)
    result = await remote.run(
        reuse_node_modules(previous, install_cwd, link=ctx.deployment.build_type == "static"),
        what="reuse node_modules",
        check=False,
    )
    if result.status != 0:
        return None
    ctx.say(
        f"install: reused node_modules of {live.sha[:12]} (lockfile, package.json and Node "
        "unchanged)",
        step="build",
    )
    return live.sha
