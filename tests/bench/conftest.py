"""The bench's report: each test adds figures through the `bench` fixture, which fails the
test on a missed goal (full runs only); the table and JSON come at the end of the session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..conftest import PROJECT_ROOT
from .report import QUICK, REPORT, Report


@pytest.fixture
def bench() -> Iterator[Report]:
    start = len(REPORT.figures)
    yield REPORT
    missed = REPORT.failed(start)
    assert not missed, "goals missed: " + "; ".join(
        f"{f.name} = {f.value:g} {f.unit} (goal {f.goal})" for f in missed
    )


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not REPORT.figures:
        return
    title = "bench (quick: goals not judged)" if QUICK else "bench"
    terminalreporter.section(title)
    terminalreporter.write_line(REPORT.table())
    target = Path(os.environ.get("TOAST_BENCH_JSON") or PROJECT_ROOT / "bench-results.json")
    REPORT.write(target)
    terminalreporter.write_line(f"\nwritten to {target}")
