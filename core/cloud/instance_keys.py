"""What an instance prints to its console at boot: its SSH host keys (how EC2 tells them)."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

from core.cloud.aws import Aws
from core.host.ssh import host_keys_from_console

if TYPE_CHECKING:
    from mypy_boto3_ec2.type_defs import GetConsoleOutputResultTypeDef


def decode_console(output: GetConsoleOutputResultTypeDef) -> str:
    text = output.get("Output") or ""
    try:  # botocore decodes it already; older clients did not
        return base64.b64decode(text, validate=True).decode("utf-8", "replace")
    except (ValueError, TypeError):
        return str(text)


async def printed_host_keys(aws: Aws, instance_id: str) -> list[str] | None:
    """The host keys in the console output, or None while the instance has not printed them."""
    output = await aws.run(
        (await aws.ec2()).get_console_output, InstanceId=instance_id, Latest=True
    )
    return host_keys_from_console(decode_console(output)) or None
