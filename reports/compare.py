"""A user's runs beside the tracked records and the paper: what ``python -m experiments run`` prints at its end.

Each cell the user trained is shown with the tracked mean ± std of the same cell and the paper's number, and marked:
``=`` every seed of it equals its tracked record bit for bit; ``≈`` within noise of the tracked cell; ``≠`` beyond
noise (``reports.statistics``: your seeds against the tracked ones, paired seed by seed where both ran the same
seeds on the same data; one seed of yours by the prediction t-test against the tracked seeds' spread; the
false discovery rate over the cells compared held at q = 0.05 by Benjamini-Hochberg).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tabulate import tabulate

from experiments.harness.spec import TableSpec
from experiments.paper_tables import paper_table, printed

from .cells import Cell, aggregate, metric_values
from .records import table_records
from .statistics import Q, Test, adjusted, difference, one_seed_against

MARKS = {"same": "=", "within": "≈", "beyond": "≠", "alone": "·"}
LEGEND = ("= every seed equals its tracked record bit for bit; ≈ within noise of the tracked cell; ≠ beyond noise "
          f"(t-tests over seeds, q < {Q:g} by Benjamini-Hochberg over the cells compared; one seed of yours is read "
          "by the prediction t-test against the tracked seeds' spread); · nothing tracked to compare with")


@dataclass(frozen=True)
class ComparedCell:
    row: str
    column: str
    yours: Cell
    tracked: Cell | None
    paper: Any
    mark: str  # a key of MARKS
    test: Test | None = None  # yours against tracked, where a test could be made


def compare_cells(spec: TableSpec, runs_root: str | Path, results_root: str | Path | None, scale: str
                  ) -> list[ComparedCell]:
    """Every metric cell of ``spec`` at ``scale`` that the runs under ``runs_root`` fill, in the table's order."""
    local = table_records(spec, runs_root, None).records
    tracked = [] if results_root is None else table_records(spec, None, results_root).records
    return compare_records(spec, local, tracked, scale)


def compare_records(spec: TableSpec, mine: list[dict[str, Any]], theirs: list[dict[str, Any]], scale: str
                    ) -> list[ComparedCell]:
    """Each metric cell ``mine`` fills at ``scale``, against the same cell of ``theirs`` (the tracked records)."""
    local = [r for r in mine if r["scale"] == scale]
    tracked = [r for r in theirs if r["scale"] == scale]
    ours, theirs = (metric_values(spec, aggregate(records, scale)) for records in (local, tracked))
    seeds = {source: _per_seed(records) for source, records in (("local", local), ("tracked", tracked))}
    table = paper_table(spec.table_id)
    out = []
    for row in spec.rows:
        paper_row = table.rows[row.paper_row].cells if table.rows and row.paper_row < len(table.rows) else {}
        for mc in spec.metric_columns:
            yours = ours[row.key][mc.column]
            if yours is None:
                continue
            mine = seeds["local"].get((row.key, mc.run_name, mc.metric), {})
            same = mine and mine == {s: v for s, v in seeds["tracked"].get((row.key, mc.run_name, mc.metric),
                                                                          {}).items() if s in mine}
            tracked_cell = theirs[row.key][mc.column]
            test = None if same or tracked_cell is None else _test(yours, tracked_cell)
            out.append(ComparedCell(row.label, f"{mc.column} {mc.metric}", yours, tracked_cell,
                                    paper_row.get(mc.column), "same" if same else "alone", test))
    return [replace(c, test=t, mark=_mark(c.mark, t)) for c, t in zip(out, adjusted([c.test for c in out]))]


def _per_seed(records: list[dict[str, Any]]) -> dict[tuple[str, str, str], dict[int, float]]:
    out: dict[tuple[str, str, str], dict[int, float]] = {}
    for r in records:
        for metric, value in r["metrics"].items():
            out.setdefault((r["row"], r["column"], metric), {})[r["seed"]] = float(value)
    return out


def _test(yours: Cell, tracked: Cell) -> Test | None:
    if yours.n == 1:  # one seed of yours: one more draw of the tracked seeds
        return one_seed_against(yours.mean, tracked)
    return difference(yours, tracked)


def _mark(mark: str, test: Test | None) -> str:
    """"same" and "alone" stand; a tested cell is "beyond" or "within" by its q."""
    if mark == "same" or test is None:
        return mark
    return "beyond" if test.beyond else "within"


def comparison_table(cells: list[ComparedCell]) -> str:
    def shown(cell: Cell | None) -> str:
        if cell is None:
            return "—"
        return f"{cell.mean:.1f}" + (f" ± {cell.std:.1f}" if cell.n > 1 else "") + f" (n={cell.n})"

    body = [[c.row, c.column, shown(c.yours), shown(c.tracked), printed(c.paper), MARKS[c.mark],
             c.test.text() if c.test else ""] for c in cells]
    return tabulate(body, headers=["row", "column", "yours", "tracked", "paper", "", "yours − tracked [95% CI], p"],
                    tablefmt="simple", disable_numparse=True)


def summary(cells: list[ComparedCell]) -> str:
    counts = {mark: sum(c.mark == mark for c in cells) for mark in MARKS}
    text = (f"{len(cells)} cell(s): {counts['same']} equal to the tracked records bit for bit, {counts['within']} "
            f"within noise, {counts['beyond']} beyond noise, {counts['alone']} with nothing tracked")
    gaps = [(abs(c.yours.mean - c.tracked.mean), c) for c in cells if c.tracked is not None and c.mark != "same"]
    if gaps:
        gap, cell = max(gaps, key=lambda item: item[0])
        text += f"; the largest gap between means: {gap:.1f} points ({cell.row}, {cell.column})"
    return text


def tracked_seconds(spec: TableSpec, results_root: str | Path | None) -> dict[tuple[str, str, str], float]:
    """(row, run, scale) -> how long the tracked records of that cell took to train, for the ETA of ``run``: the
    least over seeds, since load beside a run (or the data it generated first) only ever slows it down. A record
    configured otherwise than its row is today (another scale's sets, another schedule) says nothing of the time."""
    out: dict[tuple[str, str, str], float] = {}
    if results_root is None:
        return out
    found = table_records(spec, None, results_root)
    stale = {id(r) for r in found.differing}
    for r in found.records:
        if r.get("wall_time_s") and id(r) not in stale:
            key = (r["row"], r["column"], r["scale"])
            out[key] = min(out.get(key, math.inf), float(r["wall_time_s"]))
    return out
