"""The pure parts of a deployment's life: pruning, DNS ownership markers, key fingerprints,
run settings, the runner's redaction, the installation id."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from core.cloud.dns_owner import (
    NameRecords,
    marker_name,
    marker_value,
    parse_marker,
    refuse_foreign,
)
from core.commands.releases import prune_releases
from core.commands.runner import RUNNER_JS
from core.host.keyfiles import create_private_key, fingerprints, matches, public_key_of
from core.host.layout import AppPaths
from core.host.profiles import ec2_host_profile
from core.profile.installation import installation_id
from core.runs.failures import StepFailed
from core.runs.settings import RunSettings, capture_overrides, engine_environment
from core.steps.release import releases_to_prune
from storage.records import Release

APP = AppPaths(ec2_host_profile(), "blog")


def releases(n: int) -> list[Release]:
    """n releases, newest first (ids and build times grow with age reversed)."""
    return [
        Release(i, 1, f"{i:040x}", APP.release(f"{i:040x}", i), float(i), i)
        for i in range(n, 0, -1)
    ]


def test_pruning_keeps_the_newest_the_live_one_and_its_rollback_target() -> None:
    rels = releases(9)
    pruned = releases_to_prune(rels, live_id=9, keep=5)
    assert [r.id for r in pruned] == [4, 3, 2, 1]
    # Rolled back to an old release: it and the release before it stay, whatever their age.
    pruned = releases_to_prune(rels, live_id=2, keep=5)
    assert [r.id for r in pruned] == [4, 3]
    assert releases_to_prune(releases(5), live_id=5, keep=5) == []


def test_prune_command_refuses_anything_outside_the_releases_dir() -> None:
    assert prune_releases(APP, [APP.release("a" * 40, 1)])[:3] == ("rm", "-rf", "--")
    for bad in ("/", APP.app_dir, APP.releases + "/../env.json", "/tmp/x"):
        with pytest.raises(ValueError, match="not a release directory"):
            prune_releases(APP, [bad])


def test_a_release_directory_is_new_for_every_build_of_a_commit() -> None:
    sha = "c" * 40
    assert APP.release(sha, 7) != APP.release(sha, 8)
    assert APP.release(sha, 7).startswith(APP.releases + "/")


def test_ownership_marker_round_trip_and_foreign_records_are_refused() -> None:
    value = marker_value("abc123", "www")
    assert value == '"toast-owner=abc123,deployment=www"'
    assert parse_marker(value) == {"toast-owner": "abc123", "deployment": "www"}
    assert parse_marker('"v=spf1 -all"') == {}
    assert marker_name("www.example.com") == "_toast.www.example.com."
    a_record = {
        "Name": "www.example.com.",
        "Type": "A",
        "ResourceRecords": [{"Value": "203.0.113.9"}],
    }
    ours = {"Type": "TXT", "ResourceRecords": [{"Value": value}]}
    theirs = {"Type": "TXT", "ResourceRecords": [{"Value": marker_value("other", "www")}]}
    refuse_foreign(NameRecords("www.example.com", [], None), "abc123")  # free
    refuse_foreign(NameRecords("www.example.com", [a_record], ours), "abc123")  # ours
    with pytest.raises(
        StepFailed,
        match=r"www.example.com already points at 203.0.113.9 "
        r"\(A record\) and was not made by Toast",
    ):
        refuse_foreign(NameRecords("www.example.com", [a_record], None), "abc123")
    with pytest.raises(StepFailed, match="another Toast installation"):
        refuse_foreign(NameRecords("www.example.com", [a_record], theirs), "abc123")
    # A marker alone is still someone's: another installation's, or a TXT Toast never wrote.
    with pytest.raises(StepFailed, match="another Toast installation"):
        refuse_foreign(NameRecords("www.example.com", [], theirs), "abc123")
    foreign_txt = {"Type": "TXT", "ResourceRecords": [{"Value": '"v=spf1 -all"'}]}
    with pytest.raises(StepFailed, match=r"_toast.www.example.com already has a TXT record"):
        refuse_foreign(NameRecords("www.example.com", [], foreign_txt), "abc123")


def test_key_file_is_never_overwritten_and_matches_its_fingerprints(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "k.pem"
    public = create_private_key(path, comment="t")
    assert path.stat().st_mode & 0o777 == 0o600
    with pytest.raises(FileExistsError):
        create_private_key(path, comment="t")
    assert public_key_of(path) == public
    import base64
    import hashlib

    from cryptography.hazmat.primitives import serialization

    der = serialization.load_ssh_public_key(public).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    moto_style = ":".join(f"{b:02x}" for b in hashlib.sha256(der).digest())
    aws_style = base64.b64encode(hashlib.sha256(base64.b64decode(public.split()[1])).digest())
    assert matches(public, moto_style) and matches(public, aws_style.decode())
    other = create_private_key(tmp_path / "other.pem", comment="t")
    assert not matches(other, moto_style)
    assert fingerprints(public).isdisjoint(fingerprints(other))


def test_run_settings_come_from_the_queuing_command_not_the_engine() -> None:
    captured = capture_overrides(
        {"TOAST_SSH_TIMEOUT": "20", "TOAST_FAULTS": "ssh:refuse", "AWS_PROFILE": "x", "HOME": "/h"}
    )
    assert captured == {"TOAST_SSH_TIMEOUT": "20", "TOAST_FAULTS": "ssh:refuse"}
    settings = RunSettings.from_run(captured)
    assert settings.ssh_timeout == 20 and settings.health_timeout == 120
    assert settings.faults.active("ssh", "refuse")
    assert not RunSettings.from_run({}).faults.active("ssh", "refuse")
    env = engine_environment(
        {"PATH": "/bin", "AWS_PROFILE": "x", "TOAST_SSH_TIMEOUT": "1", "TOAST_DB": "/d"}
    )
    assert env == {"PATH": "/bin", "TOAST_DB": "/d"}


def test_installation_id_is_made_once_and_kept(isolated_toast: Path) -> None:
    first = installation_id()
    assert len(first) == 16 and installation_id() == first
    assert (isolated_toast / "installation-id").read_text().strip() == first


def test_runner_keeps_secret_values_out_of_output_and_log(tmp_path: Path) -> None:
    runner = tmp_path / "toast-run.js"
    runner.write_text(RUNNER_JS)
    env = tmp_path / "env.json"
    env.write_text(json.dumps({"S": "zz-canary-8842", "M": "line-one\nline-two", "P": "plain"}))
    log = tmp_path / "build.log"
    script = (
        'echo "s=$S p=$P"; printf "zz-can"; sleep 0.05; printf "ary-8842 split\\n"; '
        'echo "$M" >&2; printf "no newline $S"'
    )
    result = subprocess.run(
        ["node", str(runner), str(env), str(log), str(tmp_path), "S,M", "--", "sh", "-c", script],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    for text in (result.stdout, log.read_text()):
        assert "zz-canary-8842" not in text and "line-one" not in text
        assert "s=[REDACTED] p=plain" in text and "[REDACTED] split" in text
        assert text.rstrip().endswith("no newline [REDACTED]")
    assert log.stat().st_mode & 0o777 == 0o640


# Each piece is its own write(2), so the runner sees the chunks the test chose.
WRITER = r"""
import json, os, sys
for chunk in json.load(open(sys.argv[1])):
    os.write(1, chunk.encode())
"""


def run_runner(tmp_path: Path, secret: str, pieces: list[str]) -> tuple[str, str]:
    runner = tmp_path / "toast-run.js"
    runner.write_text(RUNNER_JS)
    env = tmp_path / "env.json"
    env.write_text(json.dumps({"S": secret}))
    log = tmp_path / "build.log"
    log.unlink(missing_ok=True)
    chunks = tmp_path / "chunks.json"
    chunks.write_text(json.dumps(pieces))
    command = ["python3", "-c", WRITER, str(chunks)]
    result = subprocess.run(
        ["node", str(runner), str(env), str(log), str(tmp_path), "S", "--", *command],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return result.stdout, log.read_text()


@pytest.mark.parametrize(
    "filler",
    [65533, 65536 - 4, 65536 - 1, 65536, 65536 + 3, 2 * 65536 - 5],
    ids=lambda n: f"{n}-bytes-before",
)
def test_a_secret_straddling_the_64_kib_flush_never_reaches_output_or_log(
    tmp_path: Path, filler: int
) -> None:
    """A line longer than the runner's 64 KiB buffer is written in pieces; a secret that
    crosses a piece boundary (written in one go, or split across writes) stays hidden."""
    secret = "Zq9-canary-7731"
    for pieces in (
        ["x" * filler + secret + " tail\n"],
        ["x" * filler + secret[:5], secret[5:] + " tail"],  # split across writes, no newline
        ["x" * filler, secret, " tail\n"],
    ):
        for text in run_runner(tmp_path, secret, pieces):
            assert secret not in text and secret[:8] not in text.replace("x", "")
            assert text.count("[REDACTED]") == 1 and text.rstrip().endswith(" tail")
            assert text.count("x") == filler


def test_a_secret_at_the_very_end_without_a_newline_is_hidden(tmp_path: Path) -> None:
    secret = "tail-secret-0042"
    for text in run_runner(tmp_path, secret, ["done ", secret[:3], secret[3:]]):
        assert text == "done [REDACTED]"
