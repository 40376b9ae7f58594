"""Env values reach the app byte for byte, whatever they hold (property test)."""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from core.sandbox.controller import SandboxInfo

from .deploy_helpers import deploy, https_get, toast

VALUES = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    min_size=0,
    max_size=60,
)
TRICKY = [
    "say \"hi\" and 'bye'",
    "$HOME ${PATH} $(id)",
    "`uname -a`",
    "line one\nline two\n",
    "100% %s %d %%",
    "ünïcödé ✓ 日本語 🚀",
    "back\\slash \\n",
    " leading and trailing ",
    "a=b=c",
    "",
]


@settings(
    max_examples=2, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(values=st.lists(VALUES, min_size=1, max_size=8))
@example(values=TRICKY)
def test_env_values_reach_the_app_byte_for_byte(sandbox: SandboxInfo, values: list[str]) -> None:
    names = [f"V{i}" for i in range(len(values))]
    args: list[str] = []
    for name, value in zip(names, values, strict=True):
        args += ["--env", f"{name}={value}"]
    args += ["--secret", "SECRET_TOKEN=s3cr3t-" + "x" * 8]
    name = f"env{abs(hash(tuple(values))) % 10**8}"
    deploy("node-server", name, *args)
    try:
        for env_name, value in zip(names, values, strict=True):
            response = https_get(sandbox, f"{name}.sandbox.test", f"/env/{env_name}")
            assert response.status_code == 200
            assert response.content == value.encode("utf-8"), env_name
        secret = https_get(sandbox, f"{name}.sandbox.test", "/env/SECRET_TOKEN")
        assert secret.content == b"s3cr3t-xxxxxxxx"
        shown = toast("show", name, "--json").stdout
        assert "s3cr3t" not in shown and "[REDACTED]" in shown
        data_dir = Path(os.environ["TOAST_DATA_DIR"])
        for stored in data_dir.glob("toast.db*"):
            assert b"s3cr3t" not in stored.read_bytes(), f"secret found in {stored.name}"
        assert not list((data_dir / "spool").glob("*.json")), "the secret spool was not emptied"
    finally:
        toast("destroy", name, "--yes", "--wait")
