"""The state database on real SQLite files: migrations, several processes, crashes."""

from __future__ import annotations

import asyncio
import random
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from core.runs.waiting import poll
from storage import Queries, StorageError, migrate_to, open_database
from storage.migrations import LATEST_VERSION
from storage.records import EnvVar

from .conftest import PROJECT_ROOT
from .helpers.builders import new_deployment


def table_names(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


async def test_fresh_database_has_every_table_wal_and_foreign_keys(tmp_path: Path) -> None:
    db = await open_database(tmp_path / "toast.db")
    try:
        assert await db.schema_version() == LATEST_VERSION
        mode = await db.fetchone("PRAGMA journal_mode")
        fks = await db.fetchone("PRAGMA foreign_keys")
        assert mode is not None and mode[0] == "wal"
        assert fks is not None and fks[0] == 1
    finally:
        await db.close()
    assert {
        "deployments",
        "runs",
        "steps",
        "resources",
        "releases",
        "audit",
        "jobs",
        "events",
    } <= table_names(tmp_path / "toast.db")


@pytest.mark.parametrize("start_version", range(0, LATEST_VERSION))
async def test_migrates_from_every_earlier_version_keeping_data(
    tmp_path: Path, start_version: int
) -> None:
    path = tmp_path / "old.db"
    old = await open_database(path, migrate=False)
    await migrate_to(old, start_version)
    if start_version >= 1:  # version 1 already holds deployments: they must survive
        await old.conn.execute(
            "INSERT INTO deployments (name, profile, repo, branch, subdomain, fqdn, build_type, "
            "node_version, install_cmd, build_cmd, instance_type, created_at, updated_at) "
            "VALUES ('kept', 'p', 'o/r', 'main', 'kept', 'kept.x.test', 'static', '22', "
            "'npm ci', 'npm run build', 't3.micro', 1, 1)"
        )
    await old.close()

    db = await open_database(path)
    try:
        assert await db.schema_version() == LATEST_VERSION
        queries = Queries(db)
        if start_version >= 1:
            kept = await queries.get_deployment("kept")
            assert kept is not None and kept.fqdn == "kept.x.test"
        deployment = await queries.create_deployment(new_deployment(), actor="test")
        run = await queries.queue_run(
            deployment.id, "deploy", trigger="cli", actor="test", steps=["launch", "dns"]
        )
        assert [s.name for s in await queries.steps_for(run.id)] == ["launch", "dns"]
        check = await db.fetchone("PRAGMA integrity_check")
        assert check is not None and check[0] == "ok"
    finally:
        await db.close()


async def test_refuses_a_database_from_a_newer_toast(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {LATEST_VERSION + 1}")
    with pytest.raises(StorageError, match="newer Toast"):
        await open_database(path)


async def test_a_failed_transaction_leaves_nothing_behind(tmp_path: Path) -> None:
    db = await open_database(tmp_path / "toast.db")
    queries = Queries(db)
    try:
        deployment = await queries.create_deployment(new_deployment(), actor="test")
        with pytest.raises(sqlite3.IntegrityError):
            # the duplicate step name fails after the run row was inserted
            await queries.queue_run(
                deployment.id, "deploy", trigger="cli", actor="test", steps=["launch", "launch"]
            )
        assert await queries.runs_for(deployment.id) == []
        assert await db.fetchall("SELECT * FROM jobs") == []
    finally:
        await db.close()


async def test_a_write_cancelled_while_it_waits_for_the_lock_leaves_no_transaction_open(
    tmp_path: Path,
) -> None:
    """A step cancelled (another failed) while its write waited for the write lock: the
    transaction its BEGIN opened once the lock came is ended, so the engine's next write
    works and other processes can write again."""
    path = tmp_path / "toast.db"
    db = await open_database(path)
    queries = Queries(db)
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        write = asyncio.create_task(
            queries.create_deployment(new_deployment("cancelled"), actor="test")
        )
        await poll(lambda: _true(db._write_lock.locked()), what="the write to wait", timeout=10)
        write.cancel()
        other.execute("COMMIT")
        with pytest.raises(asyncio.CancelledError):
            await write
        await queries.create_deployment(new_deployment("next"), actor="test")
        other.execute("BEGIN IMMEDIATE")  # no lock left behind by the cancelled write
        other.execute("COMMIT")
        assert [d.name for d in await queries.list_deployments()] == ["next"]
    finally:
        other.close()
        await db.close()


async def _true(value: bool) -> bool | None:
    return True if value else None


async def test_secrets_are_stored_only_as_references(tmp_path: Path) -> None:
    db = await open_database(tmp_path / "toast.db")
    try:
        env = (EnvVar("PUBLIC_URL", value="https://x"), EnvVar("API_KEY", secret_ref="keyring:a"))
        await Queries(db).create_deployment(new_deployment(env=env), actor="test")
        loaded = await Queries(db).get_deployment("blog")
        assert loaded is not None and loaded.env == env
        assert loaded.env[1].secret and loaded.env[1].value is None
    finally:
        await db.close()


async def test_jobs_are_claimed_once_per_deployment_and_leases_expire(tmp_path: Path) -> None:
    db = await open_database(tmp_path / "toast.db")
    q = Queries(db)
    try:
        a = await q.create_deployment(new_deployment("a"), actor="t")
        b = await q.create_deployment(new_deployment("b"), actor="t")
        run_a1 = await q.queue_run(a.id, "deploy", trigger="t", actor="t", steps=[], now=1)
        run_a2 = await q.queue_run(a.id, "redeploy", trigger="t", actor="t", steps=[], now=2)
        run_b = await q.queue_run(b.id, "deploy", trigger="t", actor="t", steps=[], now=3)
        first = await q.claim_job("engine-1", lease_s=30, now=100)
        second = await q.claim_job("engine-1", lease_s=30, now=100)
        assert first is not None and first.run_id == run_a1.id
        # a's second run waits for its first; b runs in parallel
        assert second is not None and second.run_id == run_b.id
        assert await q.claim_job("engine-2", lease_s=30, now=101) is None
        # engine-1 dies; after its lease runs out engine-2 takes the run over
        taken = await q.claim_job("engine-2", lease_s=30, now=200)
        assert taken is not None and taken.run_id in (run_a1.id, run_b.id)
        assert taken.attempts == 2
        assert not await q.heartbeat(taken.run_id, "engine-1", lease_s=30, now=201)
        await q.finish_job(run_a1.id, "engine-2" if taken.run_id == run_a1.id else "engine-1")
    finally:
        await db.close()
    del run_a2


def _worker(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.helpers.storage_worker", *args],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_writer_processes_and_a_reader_lose_nothing(tmp_path: Path) -> None:
    db = str(tmp_path / "shared.db")
    count, steps = 150, 8
    procs = [
        _worker("write", db, "one", str(count), str(steps)),
        _worker("write", db, "two", str(count), str(steps)),
        _worker("read", db, "4"),
    ]
    outputs = [p.communicate(timeout=180) for p in procs]
    for proc, (_out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        assert "locked" not in err and "Traceback" not in err
    assert outputs[0][0].splitlines()[-1] == f"committed {count}"
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 2 * count
        assert conn.execute("SELECT count(*) FROM steps").fetchone()[0] == 2 * count * steps
        assert conn.execute("SELECT count(*) FROM jobs").fetchone()[0] == 2 * count
        per_writer = dict(
            conn.execute(
                "SELECT actor, count(*) FROM audit WHERE action = 'run.deploy' GROUP BY actor"
            ).fetchall()
        )
    assert per_writer == {"writer-one": count, "writer-two": count}


def test_sigkill_mid_transaction_never_leaves_half_a_change(tmp_path: Path) -> None:
    db = str(tmp_path / "crash.db")
    rng = random.Random(1234)
    kills = 0
    for _ in range(200):
        steps = rng.randint(5, 60)
        proc = _worker("write", db, "crash", "0", str(steps))
        assert proc.stdout is not None
        # Kill right after the k-th commit is announced: the writer is then inside its next
        # transaction (or between two), at a point that varies from run to run.
        for _ in range(rng.randint(1, 3)):
            line = proc.stdout.readline()
            assert line.startswith("committed"), proc.stderr.read() if proc.stderr else line
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        kills += 1
    assert kills >= 200
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        runs = conn.execute(
            "SELECT r.id, r.commit_message, (SELECT count(*) FROM steps s WHERE s.run_id = r.id),"
            " (SELECT count(*) FROM jobs j WHERE j.run_id = r.id) FROM runs r"
        ).fetchall()
        audits = conn.execute("SELECT count(*) FROM audit WHERE action = 'run.deploy'").fetchone()
    assert len(runs) >= 200
    for run_id, message, step_count, job_count in runs:
        assert message == f"steps={step_count}", f"run {run_id} is half-written"
        assert job_count == 1, f"run {run_id} has no job"
    assert audits[0] == len(runs)


async def test_the_list_names_the_step_that_failed_not_one_cancelled_by_it(
    tmp_path: Path,
) -> None:
    """build fails while https (started after it, in parallel) is cancelled because of it:
    the list says "failed at build", as `toast show` does."""
    from core.views.read_models import list_state

    db = await open_database(tmp_path / "toast.db")
    try:
        q = Queries(db)
        d = await q.create_deployment(new_deployment("blog"), actor="test")
        run = await q.queue_run(
            d.id, "deploy", trigger="cli", actor="test", steps=["check", "build", "https"]
        )
        await q.run_started(run.id, now=100)
        await q.step_started(run.id, "check", now=100)
        await q.step_ended(run.id, "check", "succeeded", now=101)
        await q.step_started(run.id, "build", now=102)
        await q.step_started(run.id, "https", now=103)
        await q.step_ended(run.id, "build", "failed", error="npm ERR! missing script", now=110)
        await q.step_ended(run.id, "https", "failed", error="cancelled: step build failed", now=111)
        await q.run_ended(run.id, "failed", error="deploy failed at step build", now=112)
        await q.set_deployment_state(d.id, "failed", now=112)
        [summary] = await q.deployment_summaries()
        assert list_state(summary, now=120) == "failed at build"
    finally:
        await db.close()


async def test_a_reused_name_lists_its_destroyed_predecessor_with_a_real_url(
    tmp_path: Path,
) -> None:
    from core.views.read_models import list_cells

    db = await open_database(tmp_path / "toast.db")
    try:
        q = Queries(db)
        first = await q.create_deployment(new_deployment("c1"), actor="test")
        await q.set_deployment_state(first.id, "destroyed")
        await q.create_deployment_and_run(
            new_deployment("c1"),
            steps=["check"],
            actor="test",
            trigger="cli",
            replace_destroyed=True,
        )
        rows = {s.name: list_cells(s, now=0) for s in await q.deployment_summaries()}
        assert set(rows) == {"c1", f"c1~{first.id}"}
        assert {r[2] for r in rows.values()} == {"https://c1.sandbox.test/"}
    finally:
        await db.close()


def _elsewhere(path: Path, code: str) -> str:
    """Run `code` (with `db`, a connection to `path`) in another process, as a CLI command."""
    prelude = "import sqlite3, sys; db = sqlite3.connect(sys.argv[1]); "
    return subprocess.run(
        [sys.executable, "-c", prelude + code, str(path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout


async def test_a_second_connection_in_one_process_keeps_the_first_ones_writes_visible(
    tmp_path: Path,
) -> None:
    """`toast serve` holds two connections (engine, receiver). Opening the second must not
    drop the first one's POSIX locks (closing any descriptor of the file does): after
    another process wrote, both connections' writes vanished from every other view."""
    path = tmp_path / "toast.db"
    first = await open_database(path)
    await Queries(first).create_deployment(new_deployment("one"), actor="test")
    second = await open_database(path)
    try:
        await Queries(second).create_deployment(new_deployment("two"), actor="test")
        await asyncio.to_thread(
            _elsewhere,
            path,
            "db.execute(\"UPDATE deployments SET branch = 'dev' WHERE name = 'one'\"); db.commit()",
        )
        await Queries(first).create_deployment(new_deployment("three"), actor="test")
        await Queries(second).create_deployment(new_deployment("four"), actor="test")
        seen = await asyncio.to_thread(
            _elsewhere,
            path,
            "print(sorted(r[0] for r in db.execute('SELECT name FROM deployments')))",
        )
        assert seen.strip() == "['four', 'one', 'three', 'two']"
    finally:
        await second.close()
        await first.close()
