"""The instance as a host: reach it over SSH, prepare it, and build releases on it."""

from __future__ import annotations

import os
import shlex
from typing import Any

from core import faults
from core.context import RunContext, StepFailed
from core.remote import (
    LOG_SOURCES,
    RUNNER_JS,
    adopt_release,
    agent_config,
    chain,
    env_json,
    fetch_source,
    log_group,
    mkdirs,
    render,
    run_in_release,
)
from core.ssh import Remote, SshError, host_keys_from_console
from core.steps.provision import decode_console
from core.waiting import WaitTimeout, poll


async def instance_host_keys(ctx: RunContext, instance_id: str) -> list[str]:
    """The host keys the instance printed to its console at boot (how EC2 tells them)."""

    async def printed() -> list[str] | None:
        output = await ctx.aws.call(
            "ec2", "get_console_output", InstanceId=instance_id, Latest=True
        )
        return host_keys_from_console(decode_console(output)) or None

    try:
        return await poll(
            printed,
            what=f"{instance_id} to print its SSH host keys",
            timeout=600,
            initial=1,
            maximum=5,
            progress=ctx.progress("ssh", "the instance to print its host keys"),
        )
    except WaitTimeout as exc:
        raise StepFailed(
            str(exc), hint="the instance may still be booting; rerun to resume"
        ) from exc


async def connect_to_instance(ctx: RunContext) -> Remote:
    instance = await ctx.instance()
    ip = instance.attributes.get("public_ip")
    if not ip:
        raise StepFailed(f"instance {instance.resource_id} has no known public IP")
    host_keys = instance.attributes.get("host_keys") or await instance_host_keys(
        ctx, instance.resource_id
    )
    host, port = ctx.host.ssh_address(ip)
    if faults.active("ssh", "refuse"):
        port = 1  # nothing listens there: the connection is refused
    try:
        return await Remote.connect(
            host,
            port,
            user=ctx.host.ssh_user,
            client_key=ctx.target.key_file,
            host_keys=host_keys,
            timeout=float(os.environ.get("TOAST_SSH_TIMEOUT", "300")),
        )
    except WaitTimeout as exc:
        raise StepFailed(
            f"cannot reach {instance.resource_id} over SSH: {exc}",
            hint=f"check that {ctx.target.profile.operator_cidr} (operator_cidr) "
            f"is your address and the instance is running",
        ) from exc
    except SshError as exc:
        raise StepFailed(str(exc)) from exc


async def ssh(ctx: RunContext) -> dict[str, Any]:
    """Verify the host key, wait for host preparation, install Toast's runner and log config."""
    instance_id = ctx.outputs["launch"]["instance_id"]
    keys = await instance_host_keys(ctx, instance_id)
    await ctx.record("instance", instance_id, attributes={"host_keys": keys})
    remote = await ctx.remote()
    marker = ctx.host.ready_marker(instance_id)

    async def prepared() -> bool | None:
        result = await remote.run(
            render(("test", "-f", marker)), what="check host preparation", check=False
        )
        return True if result.status == 0 else None

    try:
        await poll(
            prepared,
            what=f"host preparation on {instance_id} ({marker})",
            timeout=900,
            initial=0.5,
            maximum=5,
            progress=ctx.progress("ssh", "host preparation (UserData) to finish"),
        )
    except WaitTimeout as exc:
        raise StepFailed(
            str(exc), hint="see the instance's console output for UserData errors"
        ) from exc
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
    await install_agent_config(ctx, remote, instance_id)
    await create_log_groups(ctx)
    return {"instance_id": instance_id, "_detail": f"{remote.where}, host key verified"}


async def install_agent_config(ctx: RunContext, remote: Remote, instance_id: str) -> None:
    app = ctx.app
    staged = f"{app.app_dir}/cloudwatch-agent.json"
    await remote.write_file(staged, agent_config([app]), mode=0o644)
    target = f"{ctx.host.agent_config_dir}/{instance_id}.json"
    command = render((*ctx.host.sudo, "install", "-m", "0644", staged, target))
    if ctx.host.agent_reload:
        command = f"{command} && {render(ctx.host.agent_reload)}"
    await remote.run(command, what="install the CloudWatch agent config")


async def create_log_groups(ctx: RunContext) -> None:
    from core.aws import AwsError

    for source in LOG_SOURCES:
        group = log_group(ctx.deployment.name, source)
        try:
            await ctx.aws.call("logs", "create_log_group", logGroupName=group)
        except AwsError as exc:
            if exc.code != "ResourceAlreadyExistsException":
                raise
        await ctx.aws.call("logs", "put_retention_policy", logGroupName=group, retentionInDays=30)
        await ctx.record("log_group", group)


async def repo_url(ctx: RunContext, repo: str) -> str:
    """A git URL as given, or the clone URL GitHub reports for owner/name."""
    if "://" in repo or repo.startswith("git@"):
        return repo
    from core.github import GitHub, GitHubError

    async with GitHub(ctx.target.github_api, ctx.target.github_token) as github:
        try:
            return (await github.repo(repo)).clone_url
        except GitHubError as exc:
            raise StepFailed(str(exc), hint="check the repository name and GITHUB_TOKEN") from exc


async def build(ctx: RunContext) -> dict[str, Any]:
    """Fetch the branch head into releases/<sha>, write the env file, install and build."""
    remote = await ctx.remote()
    app, d = ctx.app, ctx.deployment
    incoming = app.incoming(ctx.run.id)
    url = await repo_url(ctx, d.repo)
    # The token only helps GitHub over HTTPS; it reaches git on stdin, never argv or disk.
    token = ctx.target.github_token if url.startswith("https://") else None
    fetched = await remote.run(
        fetch_source(url, d.branch, incoming),
        what=f"fetch {d.repo}@{d.branch}",
        input=(token or "") + "\n",
        on_line=lambda line: ctx.say(line, step="build", level="output"),
    )
    sha, subject = fetched.output[-2:] if len(fetched.output) >= 2 else ("", "")
    if len(sha) != 40:
        raise StepFailed(f"could not read the commit of {d.repo}@{d.branch}: {fetched.output}")
    await ctx.queries.set_run_commit(ctx.run.id, sha, subject)
    release = app.release(sha)
    await remote.run(adopt_release(incoming, release), what="move the source into place")
    if ctx.run.kind == "deploy" and ctx.secret_env is not None:
        values = {e.name: e.value for e in d.env if e.value is not None and not e.secret}
        values.update({k: v for k, v in ctx.secret_env.items() if not k.startswith("__")})
        await remote.write_file(app.env_file, env_json(values), mode=0o600)
    else:
        await remote.run(
            f"test -f {shlex.quote(app.env_file)} || "
            f"{{ umask 077; echo '{{}}' > {shlex.quote(app.env_file)}; }}",
            what="check the env file",
        )
    header = f"==> toast: building {d.repo}@{sha[:12]} ({subject}) for {d.fqdn}"
    await remote.run(
        chain(("mkdir", "-p", app.log_dir))
        + " && "
        + f"echo {shlex.quote(header)} >> {shlex.quote(app.build_log)}",
        what="start the build log",
    )
    for label, command in (("install", d.install_cmd), ("build", d.build_cmd)):
        ctx.say(f"$ {command}", step="build")
        await remote.run(
            run_in_release(
                app,
                release,
                command,
                env_file=app.env_file,
                log=app.build_log,
                extra_env={"CI": "true", "NODE_ENV": "production"}
                if label == "build"
                else {"CI": "true"},
            ),
            what=f"{label} ({command})",
            on_line=lambda line: ctx.say(line, step="build", level="output"),
            timeout=1800,
        )
    if d.build_type == "static":
        served = f"{release}/{d.output_dir}"
        check = await remote.run(
            render(("test", "-f", f"{served}/index.html")),
            what="check the build output",
            check=False,
        )
        if check.status != 0:
            raise StepFailed(
                f"the build did not produce {d.output_dir}/index.html",
                hint="check the output dir (--output-dir) and the build command",
            )
    rel = await ctx.queries.add_release(d.id, sha, release, run_id=ctx.run.id)
    return {
        "sha": sha,
        "message": subject,
        "release_id": rel.id,
        "path": release,
        "_detail": f"{sha[:12]} {subject}",
    }
