"""The CloudWatch agent config that ships an app's logs."""

from __future__ import annotations

import json

from core.cloud.log_groups import log_group
from core.host.layout import AppPaths


def agent_config(paths_list: list[AppPaths]) -> bytes:
    """CloudWatch agent config (the real agent's shape) shipping each app's logs."""
    collect = []
    for paths in paths_list:
        for source, file in (
            ("build", paths.build_log),
            ("app", paths.app_log),
            ("access", paths.access_log),
            ("error", paths.error_log),
        ):
            collect.append(
                {
                    "file_path": file,
                    "log_group_name": log_group(paths.name, source),
                    "log_stream_name": "{instance_id}",
                    "retention_in_days": 30,
                }
            )
    return json.dumps(
        {"logs": {"logs_collected": {"files": {"collect_list": collect}}}}, indent=2
    ).encode()
