"""Fault injection at the network edge, for tests and rehearsals.

TOAST_FAULTS is a comma-separated list of rules:
  aws:<service>.<Operation>:<ErrorCode>[:<times>[:<text>]]
                                                    answer that call with an AWS error
                                                    (only requests whose body holds <text>;
                                                    ErrorCode Timeout: no answer in time)
  github:<path regex>:<answer>[:<times>]            answer GitHub API requests whose path
                                                    matches with an HTTP status (500, 404...),
                                                    a rate limit (RateLimit: 403, none left,
                                                    reset 2 s on) or no answer (Timeout)
  kill-after:<step>                                 SIGKILL the engine after a step succeeds
  ssh:refuse                                        SSH to instances is refused
  ssh:<drop|hang|fail>:<step>:<n|*|words>           at the step's n-th host command this
                                                    run, at every one (*), or at the first
                                                    whose purpose has the words (once): the
                                                    connection is cut as it runs (drop; with
                                                    *, before it is sent: the network is
                                                    down), the host stops answering so only
                                                    SSH keepalives can tell (hang), or the
                                                    command runs and reports failure (fail)
  git:<refuse|stall:<port>>[:<times>]               the build's fetch goes to a git server
                                                    that refuses connections (127.0.0.1:1)
                                                    or to one at <port> that never answers
  certbot:fail                                      certbot talks to an ACME server that is down
  kill-during:<step>                                SIGKILL the engine as a step starts
  raise-in:<step>                                   the step raises an unexpected exception
  stall:<step>                                      the step hangs until cancelled
  delay:<step>:<seconds>                            the step starts that much later (a slow
                                                    edge, as a rehearsal of latency)
  userdata:fail:<stage>                             that UserData stage fails on the host
  latency:<edge>:<seconds>                          a realistic latency profile at the edges
                                                    (instance: pending -> running after
                                                    RunInstances; dns: Route53 PENDING ->
                                                    INSYNC; sshd: refused until that long
                                                    after running; prepare: UserData done
                                                    that long after running; certbot: the
                                                    certificate takes that long)
  latency:scale:<factor>                            every latency and every poll interval
                                                    of the engine's waits, times factor (a
                                                    run in seconds, shaped like a real one)
The AWS rule replaces the HTTP exchange through botocore's before-send hook, so
botocore parses, retries and raises exactly as it would for AWS; the GitHub rule is an
httpx transport around the real one, so the GitHub client sees GitHub's answers; the latency profile
rewrites moto's answers (a state, a status) through the after-call hook, so the engine
polls them as it would AWS's. A process's boto3 clients are shared by every run it makes
calls for: their hooks (hook_client) ask the faults of the run making the call (CURRENT,
which Aws sets around each call), so faults stay the run's own.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from botocore.client import BaseClient

#: AWS's own wording, where the engine tells errors apart by it.
_MESSAGE = {
    "InvalidParameterValue": "Value (toast-instance) for parameter iamInstanceProfile.name is "
    "invalid. Invalid IAM Instance Profile name (injected fault)",
    "InvalidInstanceID.NotFound": "The instance ID does not exist (injected fault)",
}

_STATUS = {
    "Throttling": 400,
    "ThrottlingException": 400,
    "RequestLimitExceeded": 503,
    "PriorRequestNotComplete": 400,
    "InsufficientInstanceCapacity": 500,
}


class Faults:
    """A parsed TOAST_FAULTS list. A run carries the faults given when it was queued (so they
    apply to that run only); an engine started by hand adds the ones in its own environment."""

    def __init__(self, spec: str = "") -> None:
        self.spec = spec
        self._rules = [raw.strip().split(":") for raw in spec.split(",") if raw.strip()]
        #: When each instance was launched, and each DNS change made (this process's clock).
        self._launched: dict[str, float] = {}
        self._changed: dict[str, float] = {}
        #: Host commands each step has sent this run, and git fetches redirected.
        self._commands: dict[str, int] = {}
        self._named_struck: set[tuple[str, str, str]] = set()
        self._git_struck = 0
        #: How many more times each aws rule (by its place in the list) answers.
        self._aws_left: dict[int, int] = {}

    @property
    def time_scale(self) -> float:
        for rule in self.rules("latency"):
            if rule[0] == "scale" and len(rule) > 1:
                return float(rule[1])
        return 1.0

    def latency(self, edge: str) -> float:
        """Seconds of injected latency at an edge (scaled), 0 when none is set."""
        for rule in self.rules("latency"):
            if rule[0] == edge and len(rule) > 1:
                return float(rule[1]) * self.time_scale
        return 0.0

    def _until_ready(self, instance_id: str, edge: str) -> float | None:
        """Seconds until `edge` is ready on an instance this process launched, else None."""
        launched = self._launched.get(instance_id)
        if launched is None or not self.latency(edge):
            return None
        ready = launched + self.latency("instance") + self.latency(edge)
        return max(0.0, ready - time.monotonic())

    def sshd_wait(self, instance_id: str) -> float:
        """How long sshd on the instance still refuses connections (0: it accepts)."""
        return self._until_ready(instance_id, "sshd") or 0.0

    def preparing(self, instance_id: str) -> bool:
        """The instance's UserData is still running (by the latency profile)."""
        return bool(self._until_ready(instance_id, "prepare"))

    @classmethod
    def from_env(cls) -> Faults:
        return cls(os.environ.get("TOAST_FAULTS", ""))

    def __add__(self, other: Faults) -> Faults:
        return Faults(",".join(s for s in (self.spec, other.spec) if s))

    def rules(self, kind: str) -> Iterator[list[str]]:
        for parts in self._rules:
            if parts[0] == kind:
                yield parts[1:]

    def active(self, kind: str, value: str) -> bool:
        return any(r and r[0] == value for r in self.rules(kind))

    def before_send(self, service: str, operation: str, request: Any, protocol: str) -> Any:
        """An AWS rule's answer to this call (an error reply, or a read timeout raised), or
        None to let it reach AWS. Rules strike in the order given, each its number of times."""
        from botocore.awsrequest import AWSResponse, HTTPHeaders

        for index, rule in enumerate(self.rules("aws")):
            if rule[0] != f"{service}.{operation}":
                continue
            code = rule[1]
            left = self._aws_left.setdefault(index, int(rule[2]) if len(rule) > 2 else 10**9)
            if left <= 0:
                continue
            body = request.body or b""
            if isinstance(body, str):
                body = body.encode()
            if len(rule) > 3 and rule[3].encode() not in body:
                continue
            self._aws_left[index] = left - 1
            print(
                f"toast fault: injected {code} into {service}.{operation}",
                file=sys.stderr,
                flush=True,
            )
            if code == "Timeout":  # the answer never came: botocore's read timeout
                from botocore.exceptions import ReadTimeoutError

                raise ReadTimeoutError(endpoint_url=request.url)
            reply = _error_body(protocol, code)
            return AWSResponse(request.url, _STATUS.get(code, 400), HTTPHeaders(), _Raw(reply))
        return None

    def after_call(self, service: str, operation: str, parsed: Any) -> None:
        """The latency profile: rewrite moto's answer as AWS's would look this soon after."""
        if not any(self.rules("latency")):
            return
        if (service, operation) == ("ec2", "RunInstances"):
            for instance in parsed.get("Instances", []):
                self._launched.setdefault(instance["InstanceId"], time.monotonic())
        elif (service, operation) == ("ec2", "DescribeInstances"):
            for reservation in parsed.get("Reservations", []):
                for instance in reservation.get("Instances", []):
                    started = self._launched.get(instance.get("InstanceId", ""))
                    running = instance.get("State", {}).get("Name") == "running"
                    pending = started and time.monotonic() - started < self.latency("instance")
                    if running and pending:
                        instance["State"] = {"Code": 0, "Name": "pending"}
                        instance.pop("PublicIpAddress", None)
        elif (service, operation) == ("route53", "ChangeResourceRecordSets"):
            info = parsed.get("ChangeInfo", {})
            if info.get("Id"):
                self._changed.setdefault(info["Id"], time.monotonic())
                if self.latency("dns"):
                    info["Status"] = "PENDING"  # as Route53 answers a change it just took
        elif (service, operation) == ("route53", "GetChange"):
            info = parsed.get("ChangeInfo", {})
            made = self._changed.get(info.get("Id", ""))
            if made is not None and time.monotonic() - made < self.latency("dns"):
                info["Status"] = "PENDING"

    def ssh_fault(self, step: str, what: str) -> str | None:
        """What befalls the step's next host command (`what` it does): "drop" (the
        connection is cut once it runs: did it finish?), "down" (cut before it is sent: the
        network is down), "hang", "fail" (it ran, and says it failed), or nothing. Called
        once per command: counts them."""
        sent = self._commands[step] = self._commands.get(step, 0) + 1
        for kind in ("drop", "hang", "fail"):
            for rule in self.rules("ssh"):
                if rule[0] != kind or rule[1:2] != [step] or len(rule) < 3:
                    continue
                at = rule[2]
                named = not at.isdigit() and at != "*" and at in what
                if named and (kind, step, at) in self._named_struck:
                    continue
                if at in ("*", str(sent)) or named:
                    if named:
                        self._named_struck.add((kind, step, at))
                    return "down" if (kind, at) == ("drop", "*") else kind
        return None

    def git_url(self, url: str) -> str:
        """The URL the build's fetch uses: `url`, or a broken git server's under a git rule."""
        for rule in self.rules("git"):
            if rule[0] == "refuse":
                target, times = "127.0.0.1:1", rule[1:2]
            elif rule[0] == "stall" and len(rule) > 1:
                target, times = f"127.0.0.1:{int(rule[1])}", rule[2:3]
            else:
                continue
            if times and self._git_struck >= int(times[0]):
                return url
            self._git_struck += 1
            return f"http://{target}/{url.rstrip('/').rsplit('/', 1)[-1]}"
        return url

    def kill_after(self, step: str) -> None:
        if self.active("kill-after", step):
            os.kill(os.getpid(), signal.SIGKILL)

    async def at_step_start(self, step: str) -> None:
        """Faults that strike inside a step: the engine dies, the step raises something no
        handler expects, or it hangs (so a lost lease or a stop finds it mid-step)."""
        if self.active("kill-during", step):
            os.kill(os.getpid(), signal.SIGKILL)
        if self.active("raise-in", step):
            raise RuntimeError(f"injected unexpected error in step {step}")
        if self.active("stall", step):
            await asyncio.Event().wait()
        for rule in self.rules("delay"):
            if rule[0] == step and len(rule) > 1:
                # An injected slow edge, not a wait of the engine's own.
                await asyncio.sleep(float(rule[1]))
        if step == "https" and self.latency("certbot"):
            await asyncio.sleep(self.latency("certbot"))  # the ACME exchange, as on the internet


def rules(kind: str) -> Iterator[list[str]]:
    return Faults.from_env().rules(kind)


def active(kind: str, value: str) -> bool:
    return Faults.from_env().active(kind, value)


#: The faults of the run whose AWS call this is: Aws sets it around each call, and
#: asyncio.to_thread carries it into the thread that makes the call.
CURRENT: ContextVar[Faults | None] = ContextVar("toast_faults", default=None)


def hook_client(client: BaseClient, service: str) -> None:
    """Give a new client the hooks through which the calling run's faults strike (once per
    client: they do nothing for a run without faults)."""
    name = client.meta.service_model.service_id.hyphenize()
    protocol = client.meta.service_model.protocol

    def before_send(request: Any, event_name: str, **_: Any) -> Any:
        faults = CURRENT.get()
        if faults is None:
            return None
        return faults.before_send(service, event_name.rsplit(".", 1)[-1], request, protocol)

    def after_call(parsed: Any, event_name: str, **_: Any) -> None:
        faults = CURRENT.get()
        if faults is not None:
            faults.after_call(service, event_name.rsplit(".", 1)[-1], parsed)

    client.meta.events.register(f"before-send.{name}", before_send)
    client.meta.events.register(f"after-call.{name}", after_call)


def _error_body(protocol: str, code: str) -> bytes:
    """An AWS error reply in the service's protocol, as botocore parses it."""
    message = _MESSAGE.get(code, "injected fault")
    if protocol == "ec2":
        return (
            f"<Response><Errors><Error><Code>{code}</Code><Message>{message}"
            f"</Message></Error></Errors><RequestID>fault</RequestID></Response>"
        ).encode()
    if protocol in ("query", "rest-xml"):  # iam, sts, route53
        return (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>"
            f"<Message>injected fault</Message></Error></ErrorResponse>"
        ).encode()
    return f'{{"__type": "{code}", "message": "injected fault"}}'.encode()


class _Raw:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.data
