"""The instance as a host: reach it over SSH, prepare it, and build releases on it."""

from __future__ import annotations

import contextlib
import json
import shlex
from typing import Any

from core.commands import mkdirs, render
from core.commands.agent import LOG_SOURCES, agent_config, log_group
from core.commands.git import adopt_release, fetch_source, token_for
from core.commands.runner import RUNNER_JS, env_json, run_in_release, start_log
from core.context import RunContext, StepFailed
from core.installation import TAG, installation_id
from core.repo_check import is_git_url
from core.ssh import Remote
from storage.records import Release


async def ssh(ctx: RunContext) -> dict[str, Any]:
    """Verify the host key, wait for host preparation, install Toast's runner and log config."""
    instance_id = ctx.outputs["launch"]["instance_id"]
    keys = await ctx.host_keys(instance_id, step="ssh")
    await ctx.record("instance", instance_id, attributes={"host_keys": keys})
    remote = await ctx.remote()
    marker = ctx.host.ready_marker(instance_id)

    async def prepared() -> bool | None:
        result = await remote.run(
            render(("test", "-f", marker)), what="check host preparation", check=False
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
            await ctx.aws.call(
                "logs",
                "create_log_group",
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
        await ctx.aws.call("logs", "put_retention_policy", logGroupName=group, retentionInDays=30)
        await ctx.record("log_group", group)


async def repo_url(ctx: RunContext, repo: str) -> str:
    """A git URL as given, or the clone URL GitHub reports for owner/name."""
    if is_git_url(repo):
        return repo
    from core.github import GitHub, GitHubError

    async with GitHub(ctx.target.github_api, ctx.target.github_token) as github:
        try:
            return (await github.repo(repo)).clone_url
        except GitHubError as exc:
            raise StepFailed(str(exc), hint="check the repository name and GITHUB_TOKEN") from exc


def secret_names(ctx: RunContext) -> list[str]:
    return sorted(e.name for e in ctx.deployment.env if e.secret)


async def learn_secrets(ctx: RunContext, remote: Remote) -> None:
    """Read the deployment's secret values back from the host's 0600 env file, into memory
    only, so that nothing this run says can show them."""
    names = secret_names(ctx)
    if not names:
        return
    result = await remote.run(
        f"cat {shlex.quote(ctx.app.env_file)} 2>/dev/null || echo '{{}}'",
        what="read the env file",
    )
    try:
        values = json.loads("\n".join(result.output) or "{}")
    except ValueError:
        return
    for name in names:
        if isinstance(values.get(name), str):
            ctx.redact.add(values[name])


async def build(ctx: RunContext) -> dict[str, Any]:
    """Fetch the branch head into a fresh release directory, install and build there.

    Releases are immutable: a build never touches the live release or any other; the
    switch step makes it live only after it built and passed its checks."""
    remote = await ctx.remote()
    app, d = ctx.app, ctx.deployment
    incoming = app.incoming(ctx.run.id)
    url = await repo_url(ctx, d.repo)
    # The token goes only to GitHub's own host; it reaches git on stdin, never argv or disk.
    token = token_for(url, ctx.target.github_api, ctx.target.github_token)
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
    live = await live_release(ctx)
    if ctx.run.kind == "redeploy" and not ctx.run.force and live is not None and live.sha == sha:
        await remote.run(render(("rm", "-rf", incoming)), what="drop the fetched tree")
        note = f"{sha[:12]} is already live; nothing to do (redeploy --force rebuilds it)"
        ctx.outcome["summary"] = f"redeploy of {d.name}: {note}"
        return {"sha": sha, "unchanged": True, "_skipped": True, "_detail": note}
    release = app.release(sha, ctx.run.id)
    await remote.run(adopt_release(incoming, release), what="move the source into place")
    if ctx.run.kind == "deploy":
        values = {e.name: e.value for e in d.env if e.value is not None and not e.secret}
        values.update(ctx.secret_env or {})
        await remote.write_file(app.env_file, env_json(values), mode=0o600)
    else:
        await remote.run(
            f"test -f {shlex.quote(app.env_file)} || "
            f"{{ umask 077; echo '{{}}' > {shlex.quote(app.env_file)}; }}",
            what="check the env file",
        )
        await learn_secrets(ctx, remote)
    try:
        await _install_and_build(ctx, remote, release, sha, subject)
    except Exception:
        # A failed build leaves nothing behind: its directory was never live.
        with contextlib.suppress(Exception):
            await remote.run(render(("rm", "-rf", "--", release)), what="remove the failed build")
        raise
    rel = await ctx.queries.add_release(d.id, sha, release, run_id=ctx.run.id)
    return {
        "sha": sha,
        "message": subject,
        "release_id": rel.id,
        "path": release,
        "_detail": f"{sha[:12]} {subject}",
    }


async def live_release(ctx: RunContext) -> Release | None:
    fresh = await ctx.queries.get_deployment_by_id(ctx.deployment.id)
    if fresh is None or fresh.current_release_id is None:
        return None
    return await ctx.queries.get_release(fresh.current_release_id)


async def _install_and_build(
    ctx: RunContext, remote: Remote, release: str, sha: str, subject: str
) -> None:
    app, d = ctx.app, ctx.deployment
    header = f"==> toast: building {d.repo}@{sha[:12]} ({subject}) for {d.fqdn}"
    await remote.run(start_log(app.build_log, header), what="start the build log")
    for label, command in (("install", d.install_cmd), ("build", d.build_cmd)):
        ctx.say(f"$ {command}", step="build")
        await remote.run(
            run_in_release(
                app,
                release,
                command,
                env_file=app.env_file,
                log=app.build_log,
                redact=secret_names(ctx),
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
