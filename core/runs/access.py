"""Who asks the engine for something, and what they may ask for.

A read-only actor (a console opened with --read-only, later a viewer over SSH) is refused
every mutation where runs are queued, not only at the keys of the console, so no path
around the UI can change anything."""

from __future__ import annotations

import getpass
from dataclasses import dataclass

from core.runs.states import Trigger


@dataclass(frozen=True)
class Actor:
    #: For the audit trail: the OS user and the interface, e.g. "ana@console".
    name: str
    read_only: bool = False
    #: The interface the actor uses: what a run it queues records as its trigger.
    via: Trigger = Trigger.CLI

    def __str__(self) -> str:
        return self.name


class ReadOnlyError(PermissionError):
    def __init__(self, actor: Actor, what: str) -> None:
        super().__init__(
            f"{what} refused: {actor.name} is read-only (started with --read-only; run "
            "without it to change deployments)"
        )


def actor(via: Trigger, *, read_only: bool = False) -> Actor:
    return Actor(f"{getpass.getuser()}@{via}", read_only=read_only, via=via)


def as_actor(who: Actor | str) -> Actor:
    return who if isinstance(who, Actor) else Actor(who)
