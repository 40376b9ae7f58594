"""The benchmarks' one table: every figure with its unit, baseline, goal and a pass/fail mark,
printed at the end of `scripts/bench` and written as JSON (TOAST_BENCH_JSON, default
bench-results.json in the project root).

TOAST_BENCH=quick (what `.ci/run` uses) runs each benchmark once on a smaller load to show it
still runs and reports; goals are then shown but not judged, so noise on a busy CI machine
fails nothing while the README's figures cannot rot silently."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

QUICK = os.environ.get("TOAST_BENCH") == "quick"


def quick(full: int, small: int) -> int:
    """A load size: `full` in scripts/bench, `small` in the quick run."""
    return small if QUICK else full


@dataclass
class Figure:
    section: str
    name: str
    value: float
    unit: str
    goal: str = ""
    #: None: a figure reported without a goal (or not judged in the quick run).
    passed: bool | None = None
    baseline: str = ""

    def cells(self) -> list[str]:
        mark = {True: "pass", False: "FAIL", None: "-"}[self.passed]
        value = f"{self.value:,.0f}" if abs(self.value) >= 100 else f"{self.value:,.3g}"
        baseline = self.baseline if len(self.baseline) <= 48 else self.baseline[:47] + "…"
        return [self.section, self.name, f"{value} {self.unit}".strip(), baseline, self.goal, mark]


@dataclass
class Report:
    figures: list[Figure] = field(default_factory=list)

    def add(
        self,
        section: str,
        name: str,
        value: float,
        unit: str = "",
        *,
        goal: str = "",
        ok: bool | None = None,
        baseline: str = "",
    ) -> Figure:
        figure = Figure(section, name, float(value), unit, goal, None if QUICK else ok, baseline)
        self.figures.append(figure)
        print(
            f"\n[bench] {section}: {name} = {figure.cells()[2]}"
            + (f" (goal {goal}: {figure.cells()[5]})" if goal else "")
        )
        return figure

    def failed(self, since: int = 0) -> list[Figure]:
        return [f for f in self.figures[since:] if f.passed is False]

    def table(self) -> str:
        rows = [["section", "figure", "value", "baseline", "goal", "result"]]
        rows += [f.cells() for f in self.figures]
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines = [
            "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows
        ]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def write(self, path: Path) -> None:
        path.write_text(
            json.dumps({"quick": QUICK, "figures": [asdict(f) for f in self.figures]}, indent=2)
            + "\n"
        )


#: The session's figures (one process: scripts/bench runs pytest without workers).
REPORT = Report()
