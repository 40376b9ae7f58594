"""The shape the tree promises: the import contracts hold, no module imports itself back
through others, and SQL is written only in storage/."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import grimp

from .conftest import PROJECT_ROOT

PACKAGES = ("core", "storage", "cli", "tui")
SQL_WORDS = ("SELECT ", "INSERT INTO", "DELETE FROM", "CREATE TABLE", "PRAGMA ", "ALTER TABLE")


def test_the_import_contracts_hold() -> None:
    result = subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports"))],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:]
    assert "0 broken" in result.stdout


def cycles(adjacency: dict[str, list[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in adjacency[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(adjacency):
        if node not in index:
            visit(node)
    return found


def test_cycles_are_found_when_there_are_some() -> None:
    assert cycles({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}) == [["a", "b", "c"]]
    assert cycles({"a": ["b"], "b": []}) == []


def test_no_import_cycle_anywhere() -> None:
    """Function-local imports count too: a cycle hidden in a function is still a cycle.
    (Imports for type checking only are not run, so they cannot make one.)"""
    graph = grimp.build_graph(
        *PACKAGES, include_external_packages=False, exclude_type_checking_imports=True
    )
    adjacency = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    assert cycles(adjacency) == []


def test_sql_is_written_only_in_storage() -> None:
    """No string literal outside storage/ (tests aside) holds a SQL statement."""
    offenders = []
    for package in ("core", "cli", "tui"):
        for path in sorted((PROJECT_ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    text = node.value  # Toast writes SQL keywords in capitals
                    if any(word in text for word in SQL_WORDS):
                        offenders.append(f"{path.relative_to(PROJECT_ROOT)}:{node.lineno}")
    assert offenders == []


#: Waiting for a fixed time, or asserting how long something took: neither belongs in the
#: tests (waits are for a condition, through tests/helpers/waiting.py; timings are measured
#: and printed by tests/bench, never asserted here).
FIXED_WAIT = re.compile(
    r"pilot\.pause\(\s*[^)\s]|time\.sleep\(|asyncio\.sleep\(|"
    r"assert[^\n]*(?:elapsed|monotonic\(\)|perf_counter\(\))"
)


def test_no_fixed_pause_or_timing_assertion_in_the_tests() -> None:
    offenders = []
    for path in sorted((PROJECT_ROOT / "tests").rglob("*.py")):
        if path == Path(__file__).resolve():
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if FIXED_WAIT.search(line):
                offenders.append(f"{path.relative_to(PROJECT_ROOT)}:{number}: {line.strip()}")
    assert offenders == []


def test_the_fixed_wait_pattern_catches_what_it_should() -> None:
    # Written in pieces, so a search of tests/ for fixed waits finds only real ones.
    pause, sleep = "pause" + "(0.1)", "sleep" + "(2)"
    for bad in (f"await pilot.{pause}", f"time.{sleep}", "assert elapsed < 2.0"):
        assert FIXED_WAIT.search(bad), bad
    for fine in ("await pilot.pause()", "await until(pilot, check, 'x')"):
        assert not FIXED_WAIT.search(fine), fine


def test_no_test_module_is_imported_as_a_library() -> None:
    """Shared builders and waits live in tests/helpers (and tests/*_helpers.py)."""
    importing = re.compile(r"^\s*from (?:\.|tests\.)test_\w+ import", re.M)
    offenders = [
        str(path.relative_to(PROJECT_ROOT))
        for path in sorted((PROJECT_ROOT / "tests").rglob("*.py"))
        if importing.search(path.read_text())
    ]
    assert offenders == []


def test_every_type_ignore_says_why() -> None:
    """mypy runs strict; where it is told to look away, a comment says why."""
    bare = re.compile(r"# type: ignore\[[\w,-]+\](?!\s+#)")
    offenders = [
        f"{path.relative_to(PROJECT_ROOT)}:{number}"
        for package in PACKAGES
        for path in sorted((PROJECT_ROOT / package).rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if bare.search(line)
    ]
    assert offenders == []
