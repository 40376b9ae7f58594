"""AWS calls from asyncio: boto3 clients made once (in a thread), each call run in a thread.

Clients use botocore's "standard" retry mode, so throttling (Throttling,
RequestLimitExceeded, PriorRequestNotComplete) is retried with backoff by botocore itself.
"""

from __future__ import annotations

import asyncio
import os
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from core.cloud.faults import Faults
from core.profile.targets import Target

if TYPE_CHECKING:
    from core.cloud.faults import Faults

#: Aws.shared's cache: per event loop, one per account and region.
_SHARED: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[Any, ...], asyncio.Future[Aws]]
] = weakref.WeakKeyDictionary()


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

    def __init__(self, make_client: Any, region: str, make: Any = None) -> None:
        self.clients: dict[str, Any] = {}
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
        import boto3
        from botocore.config import Config

        profile = target.profile
        if target.credentials:
            key, secret = target.credentials
            session = boto3.session.Session(
                aws_access_key_id=key, aws_secret_access_key=secret, region_name=profile.region
            )
        else:
            session = boto3.session.Session(
                profile_name=profile.aws_profile, region_name=profile.region
            )
        attempts = max_attempts or int(os.environ.get("TOAST_AWS_MAX_ATTEMPTS", "8"))
        config = Config(
            retries={"mode": "standard", "total_max_attempts": attempts},
            connect_timeout=10,
            read_timeout=60,
        )
        active = faults if faults is not None else Faults.from_env()

        def make(region: str) -> Aws:
            def client(service: str) -> Any:
                made = {
                    service: session.client(
                        service,
                        region_name=region,
                        endpoint_url=profile.endpoint_url,  # type: ignore[call-overload]  # service is a runtime string
                        config=config,
                    )
                }
                active.install(made)
                return made[service]

            return cls(client, region, make)

        return make(profile.region)

    async def client(self, service: str) -> Any:
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

    async def call(self, service: str, operation: str, **params: Any) -> Any:
        """Run one API call in a thread; botocore errors become AwsError with the code."""
        method = getattr(await self.client(service), operation)
        if self.on_call is not None:
            self.on_call(f"aws {service} {operation} ({self.region})")
        return await _in_thread(f"{service}.{operation}", lambda: method(**params))

    async def paginate(self, service: str, operation: str, key: str, **params: Any) -> list[Any]:
        """Every item under `key` across all pages of a paginated call."""
        client = await self.client(service)

        def collect() -> list[Any]:
            items: list[Any] = []
            for page in client.get_paginator(operation).paginate(**params):
                items.extend(page.get(key, []))
            return items

        if self.on_call is not None:
            self.on_call(f"aws {service} {operation} ({self.region}, every page)")
        result: list[Any] = await _in_thread(f"{service}.{operation}", collect)
        return result


async def _in_thread(label: str, work: Any) -> Any:
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
