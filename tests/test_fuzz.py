"""Fuzzing what users and the network hand Toast: deploy specs, `toast.toml`, env settings,
and webhook deliveries (bodies, headers, signatures) against the real receiver over HTTP.

No input crashes anything; every rejection names its field and rule; accepted values come
out byte for byte. TOAST_FUZZ=long runs 10,000 examples of each; CI runs fewer."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import json
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from core.repo.plan_file import KEYS, PlanFileError, parse_plan_file, render_plan_file
from core.repo.spec import DeploySpec, SpecError, parse_env, validate
from core.serve import hook_secrets
from core.serve.pushes import decide_push
from core.serve.receiver import Receiver
from storage import Queries, open_database

EXAMPLES = 10_000 if os.environ.get("TOAST_FUZZ") == "long" else 300
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
SPEC_FIELDS = {f.name for f in dataclasses.fields(DeploySpec)}

#: Text as users paste it: printable, control characters, shell metacharacters, unicode.
wild_text = st.one_of(
    st.text(max_size=80),
    st.sampled_from(["", " ", "dist", "../etc", "/abs", "a;b", "$(id)", "`id`", "x\ny", "ü"]),
)


@FUZZ
@given(
    subdomain=wild_text,
    branch=wild_text,
    build_type=st.sampled_from(["static", "node", "", "docker", "STATIC"]),
    install=wild_text,
    build=wild_text,
    output_dir=wild_text,
    start=wild_text,
    port=st.integers(min_value=-10, max_value=70_000),
    health=wild_text,
    root=wild_text,
    node=wild_text,
)
def test_any_deploy_spec_is_accepted_or_refused_naming_its_fields(
    subdomain: str,
    branch: str,
    build_type: str,
    install: str,
    build: str,
    output_dir: str,
    start: str,
    port: int,
    health: str,
    root: str,
    node: str,
) -> None:
    spec = DeploySpec(
        repo="someone/app",
        subdomain=subdomain,
        branch=branch,
        build_type=build_type,
        install_cmd=install,
        build_cmd=build,
        output_dir=output_dir,
        start_cmd=start,
        port=port,
        health_path=health,
        root_dir=root,
        node_version=node,
    )
    try:
        accepted = validate(spec)
    except SpecError as exc:
        assert exc.problems, "a refusal with no field"
        for name, rule in exc.problems.items():
            assert name.split(".")[0] in SPEC_FIELDS | {"env", "node"}, name
            assert rule.strip(), f"{name}: no rule given"
        return
    # Accepted: every value is the one given, untouched.
    assert (accepted.subdomain, accepted.branch, accepted.build_cmd) == (subdomain, branch, build)
    assert accepted.install_cmd == install and accepted.output_dir == output_dir


plan_values = st.dictionaries(
    st.sampled_from([*KEYS, "unknown", "Build"]),
    st.one_of(wild_text, st.integers(-5, 70_000), st.booleans(), st.lists(st.text(max_size=5))),
    max_size=6,
)


def _toml(values: dict[str, object]) -> str:
    lines = []
    for key, value in values.items():
        shown = json.dumps(value) if not isinstance(value, bool) else str(value).lower()
        lines.append(f"{key} = {shown}")
    return "\n".join(lines) + "\n"


@FUZZ
@given(values=plan_values)
@example(values={"node": "0\x1f0"})  # found by the fuzzer: taken, then written as bad TOML
@example(values={"output_dir": " "})  # found by the fuzzer: a blank directory was taken
def test_any_toast_toml_is_read_or_refused_naming_its_key(values: dict[str, object]) -> None:
    text = _toml(values)
    try:
        fields = parse_plan_file(text)
    except PlanFileError as exc:
        message = str(exc)
        assert message.startswith("not valid TOML") or any(
            message.startswith(f"{key} ") or f"unknown key {key!r}" in message for key in values
        ), message
        return
    # Accepted: rendering and reading again gives the same values, byte for byte (an empty
    # root is the repository's root, which the rendered file leaves unsaid).
    meant = {field: value for field, value in fields.items() if value or field != "root_dir"}
    assert parse_plan_file(render_plan_file(fields)) == meant
    for key, value in values.items():
        assert fields[KEYS[key].field] == str(value).strip()


@FUZZ
@given(text=st.text(max_size=200))
def test_any_text_as_toast_toml_never_crashes(text: str) -> None:
    try:
        parse_plan_file(text)
    except PlanFileError as exc:
        assert str(exc)


@FUZZ
@given(
    pairs=st.lists(st.text(max_size=30), max_size=5),
    secret=st.lists(st.text(max_size=30), max_size=3),
)
def test_env_settings_keep_their_values_byte_for_byte(pairs: list[str], secret: list[str]) -> None:
    try:
        settings_ = parse_env(pairs, secret, environ={"FROM_ENV": "v\x00al ue"})
    except SpecError as exc:
        assert all(name.startswith("env.") and rule for name, rule in exc.problems.items())
        return
    given_values = [p.partition("=") for p in [*pairs, *secret]]
    assert [(s.name, s.value) for s in settings_] == [(n, v) for n, _, v in given_values]
    try:
        validate(DeploySpec(repo="someone/app", subdomain="fuzz", env=tuple(settings_)))
    except SpecError as exc:
        assert all(rule for rule in exc.problems.values())


push_payloads = st.fixed_dictionaries(
    {},
    optional={
        "ref": st.one_of(
            st.text(max_size=30), st.sampled_from(["refs/heads/main", "refs/tags/v1"])
        ),
        "after": st.one_of(st.text(max_size=45), st.just("a" * 40), st.just("0" * 40)),
        "deleted": st.one_of(st.booleans(), st.none(), st.integers()),
        "forced": st.one_of(st.booleans(), st.text(max_size=3)),
        "head_commit": st.one_of(
            st.none(), st.text(max_size=5), st.fixed_dictionaries({"message": st.text(max_size=40)})
        ),
    },
)


@FUZZ
@given(payload=push_payloads)
def test_any_push_payload_gets_a_decision_with_a_reason(payload: dict[str, object]) -> None:
    decision = decide_push(payload, "main")
    assert decision.reason
    if decision.deploy:
        assert payload.get("ref") == "refs/heads/main"
        assert decision.sha is not None and re.fullmatch(r"[0-9a-f]{40}", decision.sha)


@pytest.fixture
async def receiver(tmp_path: Path, isolated_toast: Path) -> AsyncIterator[tuple[str, str]]:
    """The real webhook receiver on 127.0.0.1, with a hook secret for deployment `site`."""
    db = await open_database(tmp_path / "toast.db")
    secret = hook_secrets.create("site")
    runner = web.AppRunner(Receiver(Queries(db), lambda _m: None).app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # aiohttp keeps its bound socket private
    try:
        yield f"http://127.0.0.1:{port}", secret
    finally:
        await runner.cleanup()
        await db.close()


async def raw_post(
    url: str, path: str, headers: dict[str, str], body: bytes
) -> tuple[int, str, str]:
    """POST with whatever bytes the headers hold (an HTTP client refuses to send some):
    the answer's status, content type and body."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    target = bytes(b if 0x21 <= b < 0x7F else ord("_") for b in path.encode("utf-8", "replace"))
    lines = [b"POST " + target + b" HTTP/1.1", f"Host: {host}:{port}".encode()]
    for name, value in headers.items():
        raw = value.encode("utf-8", "replace").replace(b"\r", b"").replace(b"\n", b"")
        lines.append(name.encode() + b": " + raw)
    lines += [f"Content-Length: {len(body)}".encode(), b"Connection: close", b"", b""]
    writer.write(b"\r\n".join(lines) + body)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), timeout=10)
    writer.close()
    head, _, content = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    found = {h.split(": ", 1)[0].lower(): h.split(": ", 1)[1] for h in header_lines if ": " in h}
    return (
        int(status_line.split()[1]),
        found.get("content-type", ""),
        content.decode("utf-8", "replace"),
    )


deliveries = st.fixed_dictionaries(
    {
        "body": st.one_of(
            st.binary(max_size=300),
            st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=4).map(
                lambda d: json.dumps(d).encode()
            ),
            push_payloads.map(lambda d: json.dumps(d).encode()),
        ),
        "event": st.one_of(
            st.sampled_from(["push", "ping", "pull_request", ""]), st.text(max_size=20)
        ),
        "delivery": st.one_of(st.uuids().map(str), st.text(max_size=40)),
        "signed": st.sampled_from(["right", "wrong", "none", "garbage"]),
        "name": st.one_of(st.just("site"), st.text(alphabet="abcxyz-_.%", min_size=1, max_size=20)),
    }
)


@settings(
    max_examples=max(EXAMPLES // 10, 50),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(delivery=deliveries)
async def test_any_webhook_delivery_is_answered_and_never_crashes_the_receiver(
    receiver: tuple[str, str], delivery: dict[str, object]
) -> None:
    url, secret = receiver
    body = delivery["body"]
    assert isinstance(body, bytes)
    good = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    signature = {
        "right": good,
        "wrong": "sha256=" + "0" * 64,
        "none": None,
        "garbage": "sha1=" + "zz" * 20,
    }[str(delivery["signed"])]
    headers = {
        "X-GitHub-Event": str(delivery["event"]),
        "X-GitHub-Delivery": str(delivery["delivery"]),
    }
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature
    answer = await raw_post(url, f"/github/{delivery['name']}", headers, body)
    status, content_type, text = answer
    assert status < 500, text
    assert text.strip()  # every answer says something
    if status == 400 and "json" not in content_type:
        return  # a malformed request (a control character in a header), refused by the parser
    authentic = delivery["signed"] == "right" and delivery["name"] == "site"
    if not authentic:
        assert status in (401, 404, 429), text
    assert json.loads(text)
