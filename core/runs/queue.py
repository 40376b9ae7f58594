"""Queuing runs for the engine: what the CLI and the console call to deploy, redeploy, roll
back or destroy. Light on purpose (no step code, no SSH or AWS library is imported), so a
command that queues a run returns about as fast as `toast ls`."""

from __future__ import annotations

import getpass
import json
import os
import secrets
from enum import StrEnum
from pathlib import Path

from core.profile import paths
from core.profile.config import ConfigError, Profile, choose_profile, load_config
from core.profile.targets import TargetError, resolve_target
from core.repo.heads import RepoCheckError, branch_head
from core.repo.spec import DeploySpec, validate
from core.runs.access import Actor, ReadOnlyError, as_actor
from core.runs.settings import capture_overrides
from core.runs.states import RunKind
from core.runs.step_names import STEP_NAMES
from storage import Queries
from storage.records import Deployment, EnvVar, NewDeployment, Run


def actor_name(via: str) -> str:
    """Who did it, for the audit trail: the OS user and the interface (cli, console)."""
    return f"{getpass.getuser()}@{via}"


class OperationError(Exception):
    """The request cannot be queued; says why and what to do instead."""


def spool_dir() -> Path:
    return paths.data_dir() / "spool"


def spool_secrets(values: dict[str, str]) -> str:
    """Hand secret values to the engine without SQLite: a 0600 file, named at random, that
    exists before the run does (so no engine can claim the run before its secrets are in
    place) and that the engine deletes when the run ends."""
    directory = paths.private_dir(spool_dir())
    name = f"secrets-{secrets.token_hex(8)}"
    fd = os.open(directory / f"{name}.json", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(values, handle)
    return name


def take_secrets(name: str) -> dict[str, str] | None:
    try:
        return dict(json.loads((spool_dir() / f"{name}.json").read_text()))
    except (OSError, ValueError):
        return None


def drop_secrets(name: str | None) -> None:
    if name:
        (spool_dir() / f"{name}.json").unlink(missing_ok=True)


async def queue_deploy(
    queries: Queries, profile: Profile, spec: DeploySpec, *, actor: Actor | str
) -> tuple[Deployment, Run]:
    who = as_actor(actor)
    await require_write(queries, who, RunKind.DEPLOY, spec.subdomain)
    by = str(who)
    validate(spec)
    fqdn = f"{spec.subdomain}.{profile.base_domain}"
    existing = await queries.get_deployment(spec.subdomain)
    if existing is not None and existing.state not in ("destroyed", "failed"):
        raise OperationError(
            f"{spec.subdomain} is already deployed ({existing.state}); use "
            f"`toast redeploy {spec.subdomain}` or destroy it first"
        )
    env = tuple(
        EnvVar(e.name, value=None, secret_ref="host:env.json")
        if e.secret
        else EnvVar(e.name, value=e.value)
        for e in spec.env
    )
    new = NewDeployment(
        name=spec.subdomain,
        profile=profile.name,
        repo=spec.repo,
        branch=spec.branch,
        subdomain=spec.subdomain,
        fqdn=fqdn,
        build_type=spec.build_type,
        node_version=spec.node_version,
        install_cmd=spec.install_cmd,
        build_cmd=spec.build_cmd,
        output_dir=spec.output_dir if spec.build_type == "static" else None,
        start_cmd=spec.start_cmd if spec.build_type == "node" else None,
        port=spec.port if spec.build_type == "node" else None,
        instance_type=spec.instance_type,
        env=env,
        health_path=spec.health_path,
        root_dir=spec.root_dir,
        install_dir=spec.install_dir,
        plan=dict(spec.plan) if spec.plan is not None else None,
    )
    secret_values = {e.name: e.value for e in spec.env if e.secret}
    spool = spool_secrets(secret_values) if secret_values else None
    try:
        deployment, run = await queries.create_deployment_and_run(
            new,
            steps=STEP_NAMES[RunKind.DEPLOY],
            actor=by,
            trigger=who.via,
            replace_destroyed=existing is not None,
            settings=capture_overrides(),
            secrets_spool=spool,
        )
    except BaseException:
        drop_secrets(spool)
        raise
    return deployment, run


async def queue_run(
    queries: Queries,
    name: str,
    kind: str,
    *,
    actor: Actor | str,
    sha: str | None = None,
    force: bool = False,
    behind_active: bool = False,
) -> tuple[Deployment, Run]:
    """Queue a run of `kind` for deployment `name`; its trigger is the interface the actor
    uses (a person at the console or the CLI; `toast serve` for a push). `behind_active`:
    a redeploy may wait behind a first deploy still running (a push made meanwhile)."""
    who = as_actor(actor)
    await require_write(queries, who, kind, name)
    by = str(who)
    deployment = await queries.get_deployment(name)
    if deployment is None:
        raise OperationError(f"no deployment named {name!r}; see `toast ls`")
    if deployment.state == "destroyed":
        raise OperationError(f"{name} was destroyed; deploy it again with `toast deploy`")
    waits = behind_active and await queries.active_run(deployment.id) is not None
    if kind in ("redeploy", "rollback") and deployment.current_release_id is None and not waits:
        raise OperationError(
            f"{name} has no live release yet; wait for its deploy or run `toast deploy` again"
        )
    run = await queries.queue_run(
        deployment.id,
        kind,
        trigger=who.via,
        actor=by,
        steps=STEP_NAMES[kind],
        commit_sha=sha,
        settings=capture_overrides(),
        force=force,
    )
    return deployment, run


async def require_write(queries: Queries, who: Actor, kind: str, name: str) -> None:
    """Refuse (and record the attempt in the audit trail) when `who` may not `kind`: a
    viewer or a read-only console, or a role that does not allow it."""
    if not who.may(kind):
        why = "read-only" if who.read_only else f"role {who.role}"
        await queries.add_audit(who.name, f"refused {kind}", name, why)
        raise ReadOnlyError(who, f"{kind} of {name}")


async def head_is_live(queries: Queries, d: Deployment) -> str | None:
    """The live sha when it is the branch head already (a redeploy would change nothing).
    When the head cannot be read here, None: the engine decides (it checks again after
    fetching)."""
    if d.current_release_id is None:
        return None
    release = await queries.get_release(d.current_release_id)
    if release is None:
        return None
    try:
        profile = choose_profile(
            load_config(paths.config_path()), requested=d.profile, sandbox=False
        )
        target = resolve_target(profile)
        head = await branch_head(
            d.repo, d.branch, github_api=target.github_api, github_token=target.github_token
        )
    except (RepoCheckError, TargetError, ConfigError, OSError, ValueError):
        return None
    return str(release.sha) if head.sha == release.sha else None


class PushOutcome(StrEnum):
    QUEUED = "queued"  # a new redeploy, behind any run in progress
    COALESCED = "coalesced"  # joined the redeploy already waiting: latest wins
    LIVE = "live"  # that commit is already served and nothing is in progress


async def queue_push(
    queries: Queries, name: str, sha: str, *, actor: Actor
) -> tuple[Run | None, PushOutcome]:
    """A pushed commit to deploy. While a run of the deployment is queued or running,
    pushes coalesce: the one redeploy still waiting is pointed at the newest commit, so
    after the run in progress exactly one redeploy follows, of the latest push."""
    await require_write(queries, actor, "redeploy", name)
    deployment = await queries.get_deployment(name)
    if deployment is None:
        raise OperationError(f"no deployment named {name!r}")
    waiting = await queries.waiting_redeploy(deployment.id)
    if waiting is not None and await queries.retarget_run(waiting.id, sha, str(actor)):
        return waiting, PushOutcome.COALESCED
    active = await queries.active_run(deployment.id)
    if active is not None and active.commit_sha == sha:
        return active, PushOutcome.COALESCED  # the run in progress builds that very commit
    if await queries.active_run(deployment.id) is None and deployment.current_release_id:
        release = await queries.get_release(deployment.current_release_id)
        if release is not None and release.sha == sha:
            return None, PushOutcome.LIVE
    _, run = await queue_run(queries, name, "redeploy", actor=actor, sha=sha, behind_active=True)
    return run, PushOutcome.QUEUED
