"""The console's one table of actions. The footer's keys, the `?` help, the command palette
and the `:` bar are all made from it, and all run an action through the same place
(ToastApp.perform), so an action offered anywhere works from every screen."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from textual.binding import Binding, BindingType


class Scope(StrEnum):
    #: Needs nothing: a section, the wizard, a setting.
    APP = "app"
    #: Acts on one deployment: the selected row on a list, the one a screen shows, or the
    #: NAME given to the palette or the `:` bar.
    DEPLOYMENT = "deployment"


@dataclass(frozen=True)
class Action:
    #: The action's name: `action_<name>` on the screen that binds its key, and what
    #: ToastApp.perform takes.
    name: str
    title: str
    #: One line for the palette, the help and the `:` bar.
    help: str
    scope: Scope
    #: The key that runs it (None: palette and `:` bar only).
    key: str | None = None
    #: The `:` bar's word for it (None: not on the bar).
    word: str | None = None
    #: Changes something: refused (and never offered) on a read-only console.
    mutating: bool = False
    #: Shown in the footer (keys that are obvious, or many, stay in the help only).
    show: bool = True
    #: The `:` word takes an argument other than a deployment's name (e.g. a theme).
    argument: str | None = None


ACTIONS: tuple[Action, ...] = (
    Action(
        "section_deployments",
        "Deployments",
        "the Deployments list",
        Scope.APP,
        "1",
        "deploys",
        show=False,
    ),
    Action(
        "section_repos",
        "Repositories",
        "your repositories, to deploy one",
        Scope.APP,
        "2",
        "repos",
        show=False,
    ),
    Action(
        "section_activity",
        "Activity",
        "the audit trail and each run's calls",
        Scope.APP,
        "3",
        "activity",
        show=False,
    ),
    Action(
        "section_profiles",
        "Profiles",
        "which account new deploys use",
        Scope.APP,
        "4",
        "profiles",
        show=False,
    ),
    Action(
        "new_deploy", "New deploy", "the deploy wizard", Scope.APP, "n", "deploy", mutating=True
    ),
    Action(
        "open",
        "Open",
        "a deployment's detail: its runs, releases and ledger",
        Scope.DEPLOYMENT,
        "enter",
        "open",
    ),
    Action("logs", "Logs", "live logs of a deployment", Scope.DEPLOYMENT, "l", "logs"),
    Action(
        "redeploy",
        "Redeploy",
        "build the branch head as a new release",
        Scope.DEPLOYMENT,
        "R",
        "redeploy",
        mutating=True,
    ),
    Action(
        "rollback",
        "Roll back",
        "serve the release before the live one again",
        Scope.DEPLOYMENT,
        "b",
        "rollback",
        mutating=True,
    ),
    Action(
        "destroy",
        "Destroy",
        "delete everything it created (asks for its name)",
        Scope.DEPLOYMENT,
        "D",
        "destroy",
        mutating=True,
    ),
    Action(
        "open_url",
        "Open site",
        "the site's address (in the sandbox, the curl that reaches it)",
        Scope.DEPLOYMENT,
        "o",
        "site",
    ),
    Action(
        "copy_url",
        "Copy URL",
        "the site's URL, to the clipboard (works over SSH)",
        Scope.DEPLOYMENT,
        "c",
        "copy",
    ),
    Action(
        "theme",
        "Theme",
        "dark, light or high-contrast",
        Scope.APP,
        None,
        "theme",
        argument="dark|light|high-contrast",
    ),
    Action("help", "Help", "the keys of this view", Scope.APP, "question_mark", "help"),
    Action("command_bar", "Command", "the : command bar", Scope.APP, "colon", None, show=False),
    Action(
        "quit", "Quit", "leave the console (deploys go on in the engine)", Scope.APP, "q", "quit"
    ),
)

BY_NAME = {action.name: action for action in ACTIONS}
BY_WORD = {action.word: action for action in ACTIONS if action.word}
MUTATING = frozenset(action.name for action in ACTIONS if action.mutating)


def bindings(scope: Scope, *, without: frozenset[str] = frozenset()) -> list[BindingType]:
    """The keys of every action of `scope` (but those named in `without`), for a BINDINGS
    list: each runs `perform('<name>')` on whoever binds it (the app, or a screen that knows
    the selected deployment)."""
    return [
        Binding(a.key, f"perform('{a.name}')", a.title, show=a.show, tooltip=a.help)
        for a in ACTIONS
        if a.scope is scope and a.key is not None and a.name not in without
    ]


#: The run kind (what the engine checks against the actor's role) of each mutating action.
KIND_OF = {"new_deploy": "deploy", "redeploy": "redeploy", "rollback": "rollback"}
KIND_OF |= {"destroy": "destroy"}


def bar_help(*, allowed: Callable[[Action], bool] = lambda _a: True) -> str:
    """The `:` bar's words, as its help line shows them (only what the actor may do)."""
    words = []
    for a in ACTIONS:
        if a.word is None or not allowed(a):
            continue
        arg = " NAME" if a.scope is Scope.DEPLOYMENT else f" {a.argument}" if a.argument else ""
        words.append(f":{a.word}{arg}")
    return ", ".join(words)
