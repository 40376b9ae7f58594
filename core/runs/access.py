"""Who asks the engine for something, and what they may ask for.

Every actor has a role (a person at their own machine is an admin; over SSH, the role their
key was given). A viewer, or a console opened with --read-only, looks and never changes; a
deployer deploys, redeploys and rolls back; an admin also destroys, collects garbage and
runs the sandbox. The role is enforced where runs are queued and resources changed, not
only at the keys of the console, so no path around the UI changes anything."""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from enum import StrEnum

from core.runs.states import Trigger


class Role(StrEnum):
    VIEWER = "viewer"
    DEPLOYER = "deployer"
    ADMIN = "admin"


#: What each role may do beyond looking: run kinds, and the admin operations by name.
MAY: dict[Role, frozenset[str]] = {
    Role.VIEWER: frozenset(),
    Role.DEPLOYER: frozenset({"deploy", "redeploy", "rollback"}),
    Role.ADMIN: frozenset(
        {"deploy", "redeploy", "rollback", "destroy", "gc --delete", "sandbox", "profiles"}
    ),
}


@dataclass(frozen=True)
class Actor:
    #: For the audit trail: the person and the interface, e.g. "ana@console", "ana@ssh".
    name: str
    read_only: bool = False
    #: The interface the actor uses: what a run it queues records as its trigger.
    via: Trigger = Trigger.CLI
    role: Role = Role.ADMIN

    def __str__(self) -> str:
        return self.name

    def may(self, what: str) -> bool:
        """Whether this actor may `what` (a run kind, or "gc --delete", "sandbox ...")."""
        if self.read_only:
            return False
        allowed = MAY[self.role]
        return what in allowed or what.split(" ", 1)[0] in allowed


class ReadOnlyError(PermissionError):
    """A change refused: the actor only looks (--read-only, a viewer) or their role does
    not allow this one (a deployer destroying)."""

    def __init__(self, actor: Actor, what: str) -> None:
        if actor.role != Role.ADMIN:  # a role given to a person (over ssh)
            allowed = sorted(MAY[actor.role])
            may = ", ".join(allowed) if allowed else "look, and change nothing"
            why = f"is a {actor.role} (a {actor.role} may: {may}); ask an admin"
        else:
            why = "is read-only (started with --read-only; run without it to change deployments)"
        super().__init__(f"{what} refused: {actor.name} {why}")


def actor(
    via: Trigger, *, read_only: bool = False, name: str | None = None, role: Role = Role.ADMIN
) -> Actor:
    person = name or getpass.getuser()
    return Actor(f"{person}@{via}", read_only=read_only or role == Role.VIEWER, via=via, role=role)


def as_actor(who: Actor | str) -> Actor:
    return who if isinstance(who, Actor) else Actor(who)
