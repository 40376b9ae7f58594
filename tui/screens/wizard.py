"""The deploy wizard: repository -> detected build plan (each field prefilled with where it
came from, and editable) -> environment -> subdomain (checked live) -> review -> deploy.
Every field is validated by core's spec, with the CLI's rules and words. Leaving it keeps
what was typed; `n` comes back to it."""

from __future__ import annotations

import asyncio
import io
import re
from typing import Any

from dotenv import dotenv_values
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.suggester import SuggestFromList
from textual.timer import Timer
from textual.widgets import Header, Input, Label, Select, Static, TextArea

from core.cloud.name_check import name_problem
from core.cloud.pricing import describe_cost
from core.host.operator_address import OperatorAddressError, operator_cidr
from core.profile.targets import TargetError, resolve_target
from core.repo.detect import BuildPlan, DetectionError
from core.repo.github import GitHub, GitHubError
from core.repo.heads import RepoCheckError
from core.repo.listing import FULL_NAME
from core.repo.node_versions import AL2023_NODE
from core.repo.plans import apply_plan, cannot_deploy, detect_repo
from core.repo.spec import DeploySpec, EnvSetting, SpecError, parse_env, validate
from core.runs.access import ReadOnlyError
from core.runs.launcher import ensure_engine
from core.runs.queue import OperationError, queue_deploy
from storage import Queries
from tui.base import ToastNode
from tui.messages import RunQueued, WizardDone
from tui.widgets.footer import Footer

#: Quiet time after the last keystroke in the subdomain before Route53 is asked.
NAME_CHECK_AFTER_S = 0.3
PLAN_FIELDS = ("build_type", "install_cmd", "build_cmd", "output_dir", "start_cmd", "node_version")
LABELS = {
    "repo": "Repository",
    "branch": "Branch",
    "root_dir": "App directory",
    "build_type": "Build type",
    "install_cmd": "Install",
    "build_cmd": "Build",
    "output_dir": "Output dir (static)",
    "start_cmd": "Start (node)",
    "node_version": "Node.js",
    "env": "Environment (.env)",
    "secrets": "Secrets (never stored)",
    "subdomain": "Subdomain",
}


class PlanRead(Message):
    def __init__(self, plan: Any, error: str | None) -> None:
        super().__init__()
        self.plan = plan
        self.error = error


class BranchesListed(Message):
    def __init__(self, repo: str, names: list[str]) -> None:
        super().__init__()
        self.repo = repo
        self.names = names


class NameChecked(Message):
    def __init__(self, subdomain: str, problem: str | None) -> None:
        super().__init__()
        self.subdomain = subdomain
        self.problem = problem


class DeployWizard(ToastNode, Screen[None]):
    BINDINGS = [
        # priority: they work from inside any field (Input keeps ctrl+d for delete-right)
        Binding("ctrl+r", "detect", "Read plan", priority=True),
        Binding("ctrl+s", "deploy", "Deploy", priority=True),
        Binding("escape", "leave", "Back (kept)"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.sources: dict[str, str] = {}
        self.name_problem: str | None = None
        self.name_timer: Timer | None = None
        self.ssh_rule = ""
        #: What detection put in each plan field: a field that differs was edited.
        self.detected: dict[str, str] = {}
        #: The plan is being read: "Ready" would be premature.
        self.reading = False
        #: The plan read from the repository; the spec is built from it as `toast deploy`
        #: builds it from its flags.
        self.plan: BuildPlan | None = None
        #: Why the fields cannot make a deploy (a build value neither detected nor typed), in
        #: the words `toast deploy` uses.
        self.refusal: str | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="wizard"):
            yield Static("1 · Repository", classes="wizard-step")
            yield from self._field("repo", Input(placeholder="owner/name or a git URL"))
            yield from self._field("branch", Input(value="main"))
            yield from self._field(
                "root_dir", Input(placeholder="(repository root; a monorepo's app: apps/web)")
            )
            yield Static(
                "2 · Build plan (ctrl+r reads it from the repository)", classes="wizard-step"
            )
            yield from self._field(
                "build_type",
                Select([("static", "static"), ("node", "node")], allow_blank=True, prompt="detect"),
            )
            for name in ("install_cmd", "build_cmd", "output_dir", "start_cmd"):
                yield from self._field(name, Input())
            yield from self._field(
                "node_version",
                Select([(n, n) for n in AL2023_NODE], allow_blank=True, prompt="detect"),
            )
            yield Static("3 · Environment", classes="wizard-step")
            yield from self._field("env", TextArea(soft_wrap=False))
            yield from self._field(
                "secrets", Input(password=True, placeholder="NAME=value ... (masked)")
            )
            yield Static("4 · Subdomain", classes="wizard-step")
            yield from self._field("subdomain", Input(placeholder="my-app"))
            yield Static("5 · Review (ctrl+s deploys)", classes="wizard-step")
            yield Static("", id="review")
        # Outside the scrolling fields: whether it is ready, and what went wrong, are always
        # in view, whatever field is being edited.
        with Vertical(id="wizard-bottom"):
            yield Static("", id="wizard-status")
            yield Static("", id="wizard-error")
        yield Footer()

    def _field(self, name: str, widget: Any) -> ComposeResult:
        widget.id = name
        with Horizontal(classes="wizard-row"):
            yield Label(LABELS[name], classes="wizard-label")
            yield widget
            yield Label("", id=f"{name}-source", classes="wizard-source")
        yield Label("", id=f"{name}-problem", classes="wizard-problem")

    def on_mount(self) -> None:
        self.query_one("#repo", Input).focus()
        self.ssh_review()

    def start_with(self, repo: str, branch: str | None) -> None:
        """Begin on a repository chosen elsewhere (the Repos screen): its plan is read at once."""
        self.pending_start: tuple[str, str | None] | None = (repo, branch)

    def on_screen_resume(self) -> None:
        pending = getattr(self, "pending_start", None)
        if pending is None:
            return
        self.pending_start = None
        repo, branch = pending
        self.query_one("#repo", Input).value = repo
        if branch:
            self.query_one("#branch", Input).value = branch
        if not self.value("subdomain"):
            suggested = _subdomain_for(repo)
            if suggested:
                self.query_one("#subdomain", Input).value = suggested
        self.query_one("#install_cmd", Input).focus()
        self.action_detect()

    # -- values --------------------------------------------------------------------

    def value(self, name: str) -> str:
        widget = self.query_one(f"#{name}")
        if isinstance(widget, Select):
            return "" if widget.is_blank() else str(widget.value)
        if isinstance(widget, TextArea):
            return widget.text
        assert isinstance(widget, Input)
        return widget.value.strip()

    def set_value(self, name: str, value: str, source: str) -> None:
        widget = self.query_one(f"#{name}")
        if isinstance(widget, Select):
            if value:
                widget.value = value
            else:
                widget.clear()
        elif isinstance(widget, Input):
            widget.value = value
        self.sources[name] = source
        self.detected[name] = value
        self.query_one(f"#{name}-source", Label).update(f"from {source}" if source else "")

    def spec(self) -> DeploySpec:
        """The DeploySpec the fields say, built by the same function as `toast deploy`'s:
        a field typed or edited is a flag given, one left as detected comes from the plan,
        and one the user cleared stays cleared (validation then names it). SpecError names
        each bad field; DetectionError a build value neither detected nor typed."""
        env = [
            EnvSetting(k, v or "")
            for k, v in dotenv_values(stream=io.StringIO(self.value("env"))).items()
        ]
        secrets = parse_env([], self.value("secrets").split(), {})
        profile = self.toast.profile
        base = DeploySpec(
            repo=self.value("repo"),
            subdomain=self.value("subdomain"),
            branch=self.value("branch") or "main",
            env=tuple(env + secrets),
            instance_type=profile.instance_type,
        )
        if self.plan is None:
            raise SpecError({"repo": "the build plan is not read yet (ctrl+r reads it)"})
        given = {
            name: None if self.value(name) == self.detected.get(name, "") else self.value(name)
            for name in PLAN_FIELDS
        }
        spec, _ = apply_plan(base, self.plan, given, given_as="edited")
        return spec

    # -- validation, as the CLI does it --------------------------------------------

    @on(Input.Changed)
    @on(Select.Changed)
    @on(TextArea.Changed)
    def changed(self, event: Any) -> None:
        name = getattr(event.control, "id", None) or ""
        if name in PLAN_FIELDS and name in self.detected:
            source = self.sources.get(name, "")
            edited = self.value(name) != self.detected[name]
            self.query_one(f"#{name}-source", Label).update(
                "edited" if edited else (f"from {source}" if source else "")
            )
        if name == "subdomain":
            # Asked of Route53 once typing pauses, not on every keystroke.
            if self.name_timer is not None:
                self.name_timer.stop()
            subdomain = self.value("subdomain")
            self.name_timer = self.set_timer(NAME_CHECK_AFTER_S, lambda: self.check_name(subdomain))
        self.validate_fields()

    def validate_fields(self) -> dict[str, str]:
        problems: dict[str, str] = {}
        self.refusal = None
        try:
            validate(self.spec())
        except SpecError as exc:
            problems = dict(exc.problems)
        except DetectionError as exc:
            problems = {exc.field: str(exc)}
            self.refusal = cannot_deploy(self.value("repo"), exc)
        if self.name_problem and "subdomain" not in problems:
            problems["subdomain"] = self.name_problem
        shown = {k.split(".")[0] if k.startswith("env.") else k: v for k, v in problems.items()}
        for name in LABELS:
            label = self.query_one(f"#{name}-problem", Label)
            typed = bool(self.value(name)) or (name in PLAN_FIELDS and bool(self.sources))
            label.update(shown.get(name, "") if typed else "")
        self.review(problems)
        return problems

    def review(self, problems: dict[str, str]) -> None:
        profile = self.toast.profile
        sub = self.value("subdomain") or "<subdomain>"
        lines = [
            f"Creates: an EC2 instance ({profile.instance_type}, {profile.region}), "
            f"{sub}.{profile.base_domain} (A record + ownership TXT), four log groups, an IAM "
            "role that may only ship them; a Let's Encrypt certificate.",
            f"SSH: {self.ssh_rule or 'checking...'}; HTTP and HTTPS open.",
        ]

        cost = describe_cost(profile.instance_type, sandbox=profile.is_sandbox)
        lines.append(
            "Cost: nothing, in the sandbox."
            if profile.is_sandbox
            else f"Cost: about {cost} for the {profile.instance_type} on demand, plus storage."
        )
        if self.reading:
            status = "Reading the build plan from the repository..."
        elif problems:
            status = f"To fix first: {', '.join(sorted(problems))}"
        else:
            status = "Ready: ctrl+s deploys."
        self.query_one("#review", Static).update("\n".join([*lines, status]))
        self.query_one("#wizard-status", Static).update(status)

    # -- workers -------------------------------------------------------------------

    @work(exclusive=True, group="ssh-rule", exit_on_error=False)
    async def ssh_review(self) -> None:
        try:
            cidr, source = await operator_cidr(self.toast.profile)
            self.ssh_rule = f"from {cidr} ({source})"
        except OperatorAddressError as exc:
            self.ssh_rule = str(exc)
        self.validate_fields()

    def action_detect(self) -> None:
        if not self.value("repo"):
            self.query_one("#repo-problem", Label).update("type a repository first")
            return
        self.query_one("#wizard-error", Static).update("reading the repository...")
        self.reading = True
        self.plan = None
        self.validate_fields()
        self.read_plan(self.value("repo"), self.value("branch") or "main", self.value("root_dir"))
        self.list_branches(self.value("repo"))

    @work(exclusive=True, group="branches", exit_on_error=False, description="Listing branches")
    async def list_branches(self, repo: str) -> None:
        """Offer the repository's branches as the branch field's completions."""
        if not FULL_NAME.fullmatch(repo):
            return
        try:
            target = resolve_target(self.toast.profile)
            async with GitHub(target.github_api, target.github_token) as api:
                names = await api.branches(repo)
        except (GitHubError, TargetError):
            return  # the plan read says what is wrong with the repository
        self.post_message(BranchesListed(repo, names))

    @on(BranchesListed)
    def branches_listed(self, message: BranchesListed) -> None:
        if message.repo != self.value("repo"):
            return
        self.query_one("#branch", Input).suggester = SuggestFromList(message.names)
        shown = ", ".join(message.names[:6]) + (" ..." if len(message.names) > 6 else "")
        self.query_one("#branch-source", Label).update(f"branches: {shown}")

    @work(exclusive=True, group="detect", exit_on_error=False, description="Reading the plan")
    async def read_plan(self, repo: str, branch: str, root: str) -> None:
        try:
            target = resolve_target(self.toast.profile)
            plan = await detect_repo(target, repo, branch, root)
        except (RepoCheckError, DetectionError, TargetError) as exc:
            self.post_message(PlanRead(None, str(exc)))
            return
        self.post_message(PlanRead(plan, None))

    @on(PlanRead)
    def plan_read(self, message: PlanRead) -> None:
        self.reading = False
        error = self.query_one("#wizard-error", Static)
        if message.plan is None:
            self.validate_fields()
            error.update(message.error or "")
            return
        plan = message.plan
        values = plan.values()
        for name in PLAN_FIELDS:
            found = values.get(name)
            self.set_value(name, found.value if found else "", found.source if found else "")
        self.plan = plan
        if plan.workspace_apps:
            # A workspace's root is not an app: its apps are the root dir's completions.
            self.query_one("#root_dir", Input).suggester = SuggestFromList(plan.workspace_apps)
            self.query_one("#root_dir-source", Label).update(
                f"apps: {', '.join(plan.workspace_apps[:6])} (type one, then ctrl+r)"
            )
        missing = "; ".join(plan.problems.values())
        error.update(
            (f"framework: {plan.framework.value}. " if plan.framework else "")
            + (f"Needs you: {missing}" if missing else "Plan read; check it and go on.")
        )
        self.validate_fields()

    @work(exclusive=True, group="name", exit_on_error=False, description="Checking the name")
    async def check_name(self, subdomain: str) -> None:
        try:
            target = resolve_target(self.toast.profile)
            db = await self.toast.database()
            problem = await name_problem(Queries(db), target, subdomain)
        except TargetError as exc:
            problem = str(exc)
        self.post_message(NameChecked(subdomain, problem))

    @on(NameChecked)
    def name_checked(self, message: NameChecked) -> None:
        if message.subdomain == self.value("subdomain"):
            self.name_problem = message.problem
            self.validate_fields()

    # -- leaving and deploying -----------------------------------------------------

    def action_leave(self) -> None:
        self.toast.wizard_mode = None
        self.app.pop_screen()  # the app keeps this screen: `n` resumes it

    def action_deploy(self) -> None:
        if self.reading:
            self.query_one("#wizard-error", Static).update(
                "still reading the build plan; ctrl+s again once it is in"
            )
            return
        problems = self.validate_fields()
        if self.refusal is not None:
            self.query_one("#wizard-error", Static).update(self.refusal)
            return
        if problems:
            self.query_one("#wizard-error", Static).update(
                "cannot deploy yet: " + "; ".join(f"{k}: {v}" for k, v in problems.items())
            )
            return
        self.queue(self.spec())

    @work(exclusive=True, group="deploy", exit_on_error=False, description="Queuing the deploy")
    async def queue(self, spec: Any) -> None:
        db = await self.toast.database()
        try:
            profile = self.toast.profile
            deployment, run = await queue_deploy(
                Queries(db),
                profile,
                spec,
                actor=self.toast.actor,
            )
        except (OperationError, ReadOnlyError) as exc:
            self.query_one("#wizard-error", Static).update(str(exc))
            return
        await asyncio.to_thread(ensure_engine)
        self.app.post_message(RunQueued(deployment.name, "deploy", run.id))
        self.app.post_message(WizardDone(deployment.name))


def _subdomain_for(repo: str) -> str:
    """A DNS label from a repository's name ("acme/My_Site.git" -> "my-site")."""
    name = repo.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git").lower()
    return re.sub(r"[^a-z0-9-]+", "-", name).strip("-")[:63]
