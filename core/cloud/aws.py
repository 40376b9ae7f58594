"""AWS calls from asyncio: boto3 clients made once (in a thread), each call run in a thread.

Clients use botocore's "standard" retry mode, so throttling (Throttling,
RequestLimitExceeded, PriorRequestNotComplete) is retried with backoff by botocore itself.
"""

from __future__ import annotations

import asyncio
import os
import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, ParamSpec, TypeVar, cast

from core.cloud.faults import CURRENT, Faults, hook_client
from core.profile.targets import Target

if TYPE_CHECKING:
    import boto3
    from botocore.client import BaseClient

    # Types only: boto3-stubs describe every operation's parameters and reply, so a typo in
    # a field or a reply key is a mypy error, not a KeyError on a live account.
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_route53 import Route53Client
    from mypy_boto3_service_quotas import ServiceQuotasClient
    from mypy_boto3_ssm import SSMClient
    from mypy_boto3_sts import STSClient

P = ParamSpec("P")
T = TypeVar("T")

#: Aws.shared's cache: per event loop, one per account and region.
_SHARED: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[object, ...], asyncio.Future[Aws]]
] = weakref.WeakKeyDictionary()


#: boto3 sessions made in this process, by credentials and the AWS files' state: a new
#: session loads botocore's service models again (about 0.15 s of CPU holding the GIL,
#: which stalled the engine's event loop with many runs starting at once).
_SESSIONS: dict[tuple[object, ...], boto3.session.Session] = {}
#: boto3 sessions are not thread-safe: sessions and clients are made one at a time.
_SESSION_LOCK = threading.Lock()
#: Clients made in this process, by session, service, region, endpoint and retry attempts,
#: shared by every run (botocore clients are thread-safe). A client per run cost 20
#: deployments at once 120 clients: seconds of CPU holding the GIL as they started, and a
#: heap whose garbage collections stalled the engine's event loop for 0.1-0.4 s.
_CLIENTS: dict[tuple[object, ...], BaseClient] = {}


class AwsError(Exception):
    """An AWS call failed; says which call, the AWS error code and message."""

    def __init__(self, operation: str, code: str, message: str) -> None:
        self.operation = operation
        self.code = code
        self.aws_message = message
        super().__init__(f"AWS {operation} failed: {code}: {message}")


class Aws:
    """One account and region's clients, each made the first time a call needs it (the
    console's log panes need only CloudWatch Logs; a deploy needs six services)."""

    def __init__(
        self,
        make_client: Callable[[str], BaseClient],
        region: str,
        make: Callable[[str], Aws] | None = None,
        faults: Faults | None = None,
    ) -> None:
        self.clients: dict[str, BaseClient] = {}
        #: The faults this Aws's calls meet (a run's own; the clients are shared).
        self.faults = faults
        self._make_client = make_client
        self._region = region
        #: Builds the same clients for another region (a ledger entry lives where it was made).
        self._make = make
        self._regions: dict[str, Aws] = {}
        self._lock = asyncio.Lock()
        #: Told "service operation" before each call (a run records what it asked AWS).
        self.on_call: Callable[[str], None] | None = None

    @classmethod
    async def connect(
        cls, target: Target, *, max_attempts: int | None = None, faults: Faults | None = None
    ) -> Aws:
        return await asyncio.to_thread(cls.connect_sync, target, max_attempts, faults)

    @classmethod
    async def shared(cls, target: Target) -> Aws:
        """One Aws per account, region and event loop in this process: every log pane of
        the console shares its clients."""
        key = (
            target.profile.name,
            target.profile.region,
            target.profile.endpoint_url,
            target.credentials,
        )
        # Per event loop: a client's lock and futures belong to the loop that made them.
        cache = _SHARED.setdefault(asyncio.get_running_loop(), {})
        found = cache.get(key)
        if found is None:
            found = cache[key] = asyncio.ensure_future(cls.connect(target))
        try:
            return await found
        except Exception:
            cache.pop(key, None)  # a later try (credentials fixed) connects afresh
            raise

    @classmethod
    def connect_sync(
        cls, target: Target, max_attempts: int | None = None, faults: Faults | None = None
    ) -> Aws:
        from botocore.config import Config

        profile = target.profile
        session = _session(target)
        attempts = max_attempts or int(os.environ.get("TOAST_AWS_MAX_ATTEMPTS", "8"))
        config = Config(
            retries={"mode": "standard", "total_max_attempts": attempts},
            connect_timeout=10,
            read_timeout=60,
        )
        active = faults if faults is not None else Faults.from_env()

        def make(region: str) -> Aws:
            def client(service: str) -> BaseClient:
                key = (session, service, region, profile.endpoint_url, attempts)
                with _SESSION_LOCK:
                    made = _CLIENTS.get(key)
                    if made is None:
                        made = session.client(
                            service,  # type: ignore[call-overload]  # a runtime name; the typed accessors below narrow it
                            region_name=region,
                            endpoint_url=profile.endpoint_url,
                            config=config,
                        )
                        hook_client(made, service)
                        _CLIENTS[key] = made
                return made

            return cls(client, region, make, active)

        return make(profile.region)

    async def client(self, service: str) -> BaseClient:
        """The service's client, made on first use (boto3 sessions are not thread-safe, so
        clients are made one at a time)."""
        if service not in self.clients:
            async with self._lock:
                if service not in self.clients:
                    self.clients[service] = await asyncio.to_thread(self._make_client, service)
        return self.clients[service]

    async def in_region(self, region: str) -> Aws:
        """The same account's clients in `region` ("global" resources use these)."""
        if region == "global" or self._make is None or region == self.region:
            return self
        if region not in self._regions:
            self._regions[region] = await asyncio.to_thread(self._make, region)
        self._regions[region].on_call = self.on_call
        return self._regions[region]

    @property
    def region(self) -> str:
        return self._region

    # One typed accessor per service Toast uses; tests/test_iam_policy.py reads the
    # operations called on them to check docs/iam-policy.json.
    async def ec2(self) -> EC2Client:
        return cast("EC2Client", await self.client("ec2"))

    async def iam(self) -> IAMClient:
        return cast("IAMClient", await self.client("iam"))

    async def logs(self) -> CloudWatchLogsClient:
        return cast("CloudWatchLogsClient", await self.client("logs"))

    async def route53(self) -> Route53Client:
        return cast("Route53Client", await self.client("route53"))

    async def service_quotas(self) -> ServiceQuotasClient:
        return cast("ServiceQuotasClient", await self.client("service-quotas"))

    async def ssm(self) -> SSMClient:
        return cast("SSMClient", await self.client("ssm"))

    async def sts(self) -> STSClient:
        return cast("STSClient", await self.client("sts"))

    async def run(self, operation: Callable[P, T], *args: P.args, **params: P.kwargs) -> T:
        """Run one API call (a client's bound method) in a thread; botocore errors become
        AwsError with the code."""
        label = self._announce(operation, "")
        return await self._call(label, lambda: operation(*args, **params))

    async def pages(self, operation: Callable[P, T], *args: P.args, **params: P.kwargs) -> list[T]:
        """Every page of a paginated call, each shaped like the operation's own reply."""
        label = self._announce(operation, ", every page")
        client: BaseClient = getattr(operation, "__self__")  # noqa: B009  # a bound client method
        paginator = client.get_paginator(operation.__name__)
        return await self._call(label, lambda: list(paginator.paginate(*args, **params)))

    async def _call(self, label: str, work: Callable[[], T]) -> T:
        """`work` in a thread, meeting this Aws's faults (the shared clients' hooks read
        them from CURRENT, which the thread inherits)."""
        token = CURRENT.set(self.faults)
        try:
            return await _in_thread(label, work)
        finally:
            CURRENT.reset(token)

    def _announce(self, operation: Callable[..., object], extra: str) -> str:
        client: BaseClient = getattr(operation, "__self__")  # noqa: B009  # a bound client method
        service = client.meta.service_model.service_name
        if self.on_call is not None:
            self.on_call(f"aws {service} {operation.__name__} ({self.region}{extra})")
        return f"{service}.{operation.__name__}"


def _session(target: Target) -> boto3.session.Session:
    """This process's session for the target's credentials, made again when the AWS config
    or credentials files change (keys rotated under a long-running `toast serve`)."""
    import boto3

    profile = target.profile
    files = (
        os.environ.get("AWS_CONFIG_FILE", "~/.aws/config"),
        os.environ.get("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials"),
    )
    stamps: list[int | None] = []
    for name in files:
        try:
            stamps.append(Path(name).expanduser().stat().st_mtime_ns)
        except OSError:
            stamps.append(None)
    key = (target.credentials, profile.aws_profile, profile.region, *stamps)
    with _SESSION_LOCK:
        found = _SESSIONS.get(key)
        if found is None:
            if target.credentials:
                access, secret = target.credentials
                found = boto3.session.Session(
                    aws_access_key_id=access,
                    aws_secret_access_key=secret,
                    region_name=profile.region,
                )
            else:
                found = boto3.session.Session(
                    profile_name=profile.aws_profile, region_name=profile.region
                )
            _SESSIONS[key] = found
        return found


async def _in_thread(label: str, work: Callable[[], T]) -> T:
    from botocore.exceptions import BotoCoreError, ClientError
    from botocore.parsers import ResponseParserError

    try:
        return await asyncio.to_thread(work)
    except ResponseParserError as exc:  # not AWS answering (a proxy's or server's HTML page)
        raise AwsError(label, "UnreadableResponse", str(exc).splitlines()[0]) from exc
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise AwsError(
            label, str(error.get("Code", "Unknown")), str(error.get("Message", exc))
        ) from exc
    except BotoCoreError as exc:
        raise AwsError(label, type(exc).__name__, str(exc)) from exc


def is_not_found(exc: AwsError) -> bool:
    return exc.code.endswith(".NotFound") or exc.code in {
        "NoSuchHostedZone",
        "InvalidChangeBatch",
        "ResourceNotFoundException",
        "NoSuchEntity",
        "InvalidInstanceID.NotFound",
        "InvalidGroup.NotFound",
        "InvalidKeyPair.NotFound",
    }
