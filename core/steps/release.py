"""Make a release live (switch) and prove it serves (health), keeping the old one on failure."""

from __future__ import annotations

import asyncio
import posixpath
import ssl
from typing import Any

import httpx

from core.commands import mkdirs, render
from core.commands.files import tail_file
from core.commands.nginx import nginx_site
from core.commands.node import local_http_ok, prepare_app_files, start_node_app, stop_app
from core.commands.releases import prune_releases, switch_current
from core.commands.systemd import install_unit, render_unit, unit_name
from core.commands.toolchain import build_env, node_exe
from core.host.ssh import Remote, RunResult
from core.runs.context import RunContext
from core.runs.failures import StepFailed
from core.runs.outputs import StepOutput
from core.runs.waiting import WaitTimeout, poll
from core.steps.outputs import BuildOutput, HealthOutput, PickOutput, SwitchOutput
from core.steps.web import FRESH_CONNECTIONS, write_site
from storage.records import Release


def target_release_id(ctx: RunContext) -> int:
    built = ctx.output_if("build", BuildOutput)
    if built is not None and built.release_id is not None:
        return built.release_id
    picked = ctx.output_if("pick", PickOutput)
    if picked is not None:
        return picked.release_id
    raise StepFailed("no release to switch to")


def unchanged(ctx: RunContext) -> bool:
    """The redeploy found its commit already live: there is nothing to switch or check."""
    built = ctx.output_if("build", BuildOutput)
    return built is not None and built.unchanged


async def switch(ctx: RunContext) -> StepOutput:
    if unchanged(ctx):
        return StepOutput(skipped=True, detail="the live release stays")
    release = await ctx.queries.get_release(target_release_id(ctx))
    assert release is not None
    previous = ctx.deployment.current_release_id
    fresh = await ctx.queries.get_deployment_by_id(ctx.deployment.id)
    if fresh is not None:
        previous = fresh.current_release_id
    await switch_to(ctx, release)
    return SwitchOutput(
        release_id=release.id,
        previous_release_id=previous,
        sha=release.sha,
        detail=f"serving {release.sha[:12]}",
    )


async def put_back(ctx: RunContext) -> str:
    """The undo of a switch that failed: the release live before it serves again. A switch
    can fail half done (the new release linked and nginx not yet told, or a new process
    started and the old one stopped), so this switches again rather than assume."""
    fresh = await ctx.queries.get_deployment_by_id(ctx.deployment.id)
    live_id = fresh.current_release_id if fresh is not None else None
    previous = await ctx.queries.get_release(live_id) if live_id is not None else None
    if previous is None:
        return "nothing was live before it"
    said = f"{previous.sha[:12]}, live before it, serves again"
    port = previous.attributes.get("port")
    if ctx.deployment.build_type != "static" and port is not None:
        # A node app's old process keeps running until the very end of a switch: when it
        # still answers, point current and nginx back at it and stop the new one, rather
        # than start the old release again.
        remote = await ctx.remote()
        answers = await remote.run(
            render(local_http_ok(int(port))), what="probe the live process", check=False
        )
        if answers.status == 0:
            await remote.run(
                switch_current(ctx.app, previous.path), what="point current at the release"
            )
            site = nginx_site(
                ctx.app, ctx.deployment.fqdn, https=True, static_root=None, upstream_port=int(port)
            )
            await write_site(ctx, remote, site)
            other = _other_port(ctx, int(port))
            await remote.run(
                stop_app(ctx.host, ctx.app, other), what=f"stop the new process (port {other})"
            )
            return said
    await switch_to(ctx, previous, again=True)
    return said


async def switch_to(ctx: RunContext, release: Release, *, again: bool = False) -> None:
    """Make `release` the one served. `again`: even if the record says it already is."""
    remote = await ctx.remote()
    d = ctx.deployment
    if d.build_type == "static":
        await remote.run(
            switch_current(ctx.app, posixpath.join(release.path, d.root_dir, d.output_dir or "")),
            what="point current at the release",
        )
        await write_site(
            ctx,
            remote,
            nginx_site(
                ctx.app, d.fqdn, https=True, static_root=ctx.app.current, upstream_port=None
            ),
        )
        attributes = dict(release.attributes)
    else:
        attributes = await _switch_node(ctx, remote, release, again=again)
    await ctx.queries.set_release_attributes(release.id, attributes)
    await ctx.queries.update_deployment(d.id, current_release_id=release.id)
    ctx.say(f"{d.fqdn} now serves {release.sha[:12]}", step="switch")


def _other_port(ctx: RunContext, port: int | None) -> int:
    """Blue/green: of the deployment's two app ports, the one `port` is not (the first when
    no process runs)."""
    base = ctx.host.app_port(ctx.deployment.port or 3000, ctx.deployment.id)
    return base + 1 if port == base else base


async def _switch_node(
    ctx: RunContext, remote: Remote, release: Release, *, again: bool = False
) -> dict[str, Any]:
    """Blue/green on two ports: start the new process, check it, move nginx, stop the old."""
    d = ctx.deployment
    fresh = await ctx.queries.get_deployment_by_id(d.id)
    current_id = fresh.current_release_id if fresh else None
    current = await ctx.queries.get_release(current_id) if current_id else None
    old_port = int(current.attributes["port"]) if current and "port" in current.attributes else None
    if current is not None and current.id == release.id and old_port is not None and not again:
        return dict(release.attributes)  # already live (a resumed run)
    port = _other_port(ctx, old_port)
    await remote.run(stop_app(ctx.host, ctx.app, port), what=f"clear port {port}")
    started = await start_app(ctx, remote, release, port)
    pid = started.output[-1].strip() if started.output else ""

    async def answers() -> bool | None:
        result = await remote.run(
            render(local_http_ok(port)), what="probe the new process", check=False
        )
        return True if result.status == 0 else None

    try:
        await ctx.wait(
            answers,
            step="switch",
            what=f"the app to answer on port {port}",
            report=f"the new process to answer on port {port}",
            timeout=90,
            initial=0.2,
            maximum=2,
        )
    except StepFailed as exc:
        tail = await remote.run(
            tail_file(ctx.app.app_log, 20),
            what="read the app log",
        )
        await remote.run(stop_app(ctx.host, ctx.app, port), what="stop the failed process")
        raise StepFailed(
            f"{exc}; app output: " + " | ".join(tail.output[-5:]),
            hint="the app must listen on the port given in $PORT",
        ) from exc
    await remote.run(switch_current(ctx.app, release.path), what="point current at the release")
    await write_site(
        ctx, remote, nginx_site(ctx.app, d.fqdn, https=True, static_root=None, upstream_port=port)
    )
    if old_port is not None and old_port != port:
        await remote.run(
            stop_app(ctx.host, ctx.app, old_port), what=f"stop the old process (port {old_port})"
        )
    return {**release.attributes, "port": port, "pid": pid}


async def start_app(ctx: RunContext, remote: Remote, release: Release, port: int) -> RunResult:
    """Start the release's app on `port`, supervised; prints its PID last."""
    d = ctx.deployment
    cwd = posixpath.join(release.path, d.root_dir)
    redact = sorted(e.name for e in d.env if e.secret)
    start_cmd = d.start_cmd or "npm start"
    await remote.run(
        prepare_app_files(ctx.app, release.path), what="give the app its release and env file"
    )
    if ctx.host.supervisor == "systemd":
        unit = unit_name(ctx.app, port)
        staged = posixpath.join(ctx.app.run_dir, unit)
        await remote.run(render(mkdirs(ctx.app.run_dir)), what="create the run directory")
        text = render_unit(
            ctx.app,
            user=ctx.host.app_user or ctx.host.ssh_user,
            cwd=cwd,
            start_cmd=start_cmd,
            port=port,
            env=build_env(ctx.host, ctx.deployment.install_cmd, ctx.deployment.node_version),
            redact=redact,
            node=node_exe(ctx.host, ctx.deployment.node_version),
        )
        await remote.write_file(staged, text.encode(), mode=0o644)
        return await remote.run(install_unit(ctx.host, staged, unit), what=f"start {unit}")
    return await remote.run(
        start_node_app(
            ctx.app,
            cwd,
            start_cmd,
            port,
            redact=redact,
            extra_env={
                **build_env(ctx.host, ctx.deployment.install_cmd, ctx.deployment.node_version),
                "TOAST_RESTART": "1",
            },
            node=node_exe(ctx.host, ctx.deployment.node_version),
        ),
        what=f"start {start_cmd}",
    )


async def check_health(ctx: RunContext, *, timeout: float) -> httpx.Response:
    instance = await ctx.instance()
    host, port = ctx.host.https_address(instance.attributes["public_ip"])
    fqdn = ctx.deployment.fqdn
    # The TLS context and client are made once, off the event loop: loading a CA bundle
    # costs tens of ms of CPU, which every other run's steps would feel as lag.
    verify = await asyncio.to_thread(ssl.create_default_context, cafile=ctx.target.ca_bundle)
    client = await asyncio.to_thread(
        httpx.AsyncClient, verify=verify, timeout=10, limits=FRESH_CONNECTIONS
    )
    url = f"https://{host}:{port}{ctx.deployment.health_path}"
    last: list[str] = ["no answer"]

    async def healthy() -> httpx.Response | None:
        try:
            response = await client.get(
                url, headers={"Host": fqdn}, extensions={"sni_hostname": fqdn}
            )
        except httpx.HTTPError as exc:
            last[0] = str(exc) or type(exc).__name__
            return None
        last[0] = f"HTTP {response.status_code}"
        return response if 200 <= response.status_code < 300 else None

    try:
        async with client:
            return await poll(
                healthy,
                what=f"https://{fqdn}{ctx.deployment.health_path} to answer 2xx",
                timeout=timeout,
                initial=0.2,
                maximum=3,
                progress=ctx.progress("health", f"https://{fqdn} to answer 2xx"),
            )
    except WaitTimeout as exc:
        raise StepFailed(f"health check failed: {exc.what} (last: {last[0]})") from exc


async def health(ctx: RunContext) -> StepOutput:
    if unchanged(ctx):
        return StepOutput(skipped=True, detail="nothing new to check")
    try:
        response = await check_health(ctx, timeout=ctx.settings.health_timeout)
    except StepFailed as exc:
        switched = ctx.output_if("switch", SwitchOutput)
        previous_id = switched.previous_release_id if switched is not None else None
        previous = await ctx.queries.get_release(previous_id) if previous_id else None
        if ctx.run.kind in ("redeploy", "rollback") and previous is not None:
            await switch_to(ctx, previous)
            raise StepFailed(
                f"{exc}; kept the previous release {previous.sha[:12]} live",
                hint="fix the app and redeploy",
            ) from exc
        raise
    pruned = await prune(ctx)
    return HealthOutput(
        status=response.status_code,
        pruned=pruned,
        detail=f"HTTP {response.status_code} from https://{ctx.deployment.fqdn}"
        f"{ctx.deployment.health_path}"
        + (f"; pruned {len(pruned)} old release(s)" if pruned else ""),
    )


def releases_to_prune(releases: list[Release], *, live_id: int | None, keep: int) -> list[Release]:
    """The releases beyond the newest `keep`, never the live one nor the newest release
    before it (the rollback target). `releases` is newest first."""
    live = next((r for r in releases if r.id == live_id), None)
    protected = {live_id}
    if live is not None:
        older = [r for r in releases if (r.built_at, r.id) < (live.built_at, live.id)]
        if older:
            protected.add(older[0].id)
    kept = {r.id for r in releases[: max(keep, 1)]} | protected
    return [r for r in releases if r.id not in kept]


async def prune(ctx: RunContext) -> list[str]:
    """After a successful switch: remove old release directories so a long-lived instance's
    disk does not fill (profile setting keep_releases, default 5)."""
    fresh = await ctx.queries.get_deployment_by_id(ctx.deployment.id)
    if fresh is None:
        return []
    releases = await ctx.queries.releases_for(fresh.id)
    old = releases_to_prune(
        releases, live_id=fresh.current_release_id, keep=ctx.target.profile.keep_releases
    )
    if not old:
        return []
    remote = await ctx.remote()
    await remote.run(
        # sudo: a node app's releases belong to its own user
        render((*ctx.host.sudo, *prune_releases(ctx.app, [r.path for r in old]))),
        what="remove old releases",
    )
    await ctx.queries.delete_releases([r.id for r in old])
    ctx.say(f"pruned {', '.join(r.sha[:12] for r in old)}", step="health")
    return [r.sha for r in old]


async def pick(ctx: RunContext) -> PickOutput:
    """For a rollback: the release to return to (--to SHA, or the one before the current)."""
    d = await ctx.queries.get_deployment_by_id(ctx.deployment.id)
    assert d is not None
    releases = await ctx.queries.releases_for(d.id)
    wanted = ctx.run.commit_sha
    current = next((r for r in releases if r.id == d.current_release_id), None)
    if wanted:
        # A commit built more than once (redeploy --force) means its newest build.
        matches = [r for r in releases if r.sha.startswith(wanted)]
        if len({r.sha for r in matches}) != 1:
            known = ", ".join(dict.fromkeys(r.sha[:12] for r in releases)) or "none"
            raise StepFailed(f"no single release matches {wanted!r} (releases: {known})")
        chosen = matches[0]
    else:
        older = [r for r in releases if r.id != d.current_release_id]
        if current is not None:
            older = [
                r
                for r in older
                if (r.built_at, r.id) < (current.built_at, current.id) and r.sha != current.sha
            ]
        if not older:
            raise StepFailed(f"{d.name} has no earlier release to roll back to")
        chosen = older[0]
    if chosen.id == d.current_release_id:
        raise StepFailed(f"{chosen.sha[:12]} is already live")
    return PickOutput(release_id=chosen.id, sha=chosen.sha, detail=f"back to {chosen.sha[:12]}")
