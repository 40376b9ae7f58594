"""AWS calls from asyncio: boto3 clients made once (in a thread), each call run in a thread.

Clients use botocore's "standard" retry mode, so throttling (Throttling,
RequestLimitExceeded, PriorRequestNotComplete) is retried with backoff by botocore itself.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from core.targets import Target

SERVICES = ("ec2", "route53", "logs", "ssm", "iam", "sts")


class AwsError(Exception):
    """An AWS call failed; says which call, the AWS error code and message."""

    def __init__(self, operation: str, code: str, message: str) -> None:
        self.operation = operation
        self.code = code
        self.aws_message = message
        super().__init__(f"AWS {operation} failed: {code}: {message}")


class Aws:
    def __init__(self, clients: dict[str, Any]) -> None:
        self.clients = clients

    @classmethod
    async def connect(cls, target: Target) -> Aws:
        return await asyncio.to_thread(cls.connect_sync, target)

    @classmethod
    def connect_sync(cls, target: Target) -> Aws:
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
        attempts = int(os.environ.get("TOAST_AWS_MAX_ATTEMPTS", "8"))
        config = Config(
            retries={"mode": "standard", "total_max_attempts": attempts},
            connect_timeout=10,
            read_timeout=60,
        )
        clients = {
            service: session.client(
                service,
                endpoint_url=profile.endpoint_url,  # type: ignore[call-overload]
                config=config,
            )
            for service in SERVICES
        }
        from core import faults

        faults.install(clients)
        return cls(clients)

    async def call(self, service: str, operation: str, **params: Any) -> Any:
        """Run one API call in a thread; botocore errors become AwsError with the code."""
        method = getattr(self.clients[service], operation)
        return await _in_thread(f"{service}.{operation}", lambda: method(**params))

    async def paginate(self, service: str, operation: str, key: str, **params: Any) -> list[Any]:
        """Every item under `key` across all pages of a paginated call."""

        def collect() -> list[Any]:
            items: list[Any] = []
            for page in self.clients[service].get_paginator(operation).paginate(**params):
                items.extend(page.get(key, []))
            return items

        result: list[Any] = await _in_thread(f"{service}.{operation}", collect)
        return result


async def _in_thread(label: str, work: Any) -> Any:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return await asyncio.to_thread(work)
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
