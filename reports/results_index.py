"""The results as data: ``reports/generated/index.json``, one machine-readable index of every cell of every paper
table and of the repository's own experiments (``experiments``: no paper layout, the same cells), and the reruns
under ``reports/reproducibility/`` against the tracked cells (their page, ``reports/generated/reproducibility.md``).
``python -m reports readme`` writes both from the tracked records, the static records, the released-weights
catalogues and the claims (``reports.readme``); a figure a hand-written page states is one the index holds
(``tests/test_paper_pages.py``), and the tests read the index, never numbers in prose.

A cell is one (row, column, scale) of a table's spec: a *metric* column at each scale the table has data for, a
*derived* column (computed from the metric columns' means) at each scale, a *static* column (GFLOPs, parameters,
memory: one record for all scales, ``scale`` null). Its ``status``:

- metric: ``tracked`` (trained records under ``reports/results/`` fill it: mean, std and n over seeds, the seeds,
  the record files and their commits), ``not read`` (its records hold a top-k number that guessing nearly fills on
  their classes: ``why``), ``released evaluated`` (no trained record; a tracked evaluation of the authors' released
  weights fills it), ``released available`` (nothing tracked; a released checkpoint of the catalogue fills it,
  ``python -m experiments evaluate``), ``not run``;
- derived: ``derived`` or ``not run``; static: ``computed``, ``stale`` (made for another configuration than the
  row's today: its text says which) or ``not computed``.

Every cell names the paper's number as printed (null: blank, or a row of ours) and the claims its tiny or static
value feeds (``<paper>:<claim id>``, ``experiments/<paper>/claims.yaml``). Numbers are rounded to ``DIGITS``
decimals, keys sorted, one cell a line: a fresh clone writes the file byte for byte. ``read_index`` reads it back
against its declared schema (``ResultsIndex``)."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from tabulate import tabulate

from experiments.harness.spec import implemented_tables, registered_specs, table_spec
from experiments.paper_tables import paper_table, papers, printed

from .build import GENERATED_DIR, REPORTS_DIR, short_commit, static_values
from .cells import Cell, aggregate, metric_values
from .chance import unread_top_k
from .records import RESULTS_DIR, table_records

REPO = REPORTS_DIR.parent
INDEX = GENERATED_DIR / "index.json"
REPRODUCIBILITY = REPORTS_DIR / "reproducibility"  # <rerun>/<table>/...: records in the tracked layout
REPRODUCIBILITY_PAGE = GENERATED_DIR / "reproducibility.md"
SCHEMA_VERSION = 2
DIGITS = 4  # decimals of every number the index holds
GENERATED_BY = "python -m reports readme"

# ---- the declared schema ---------------------------------------------------------------------------------------

Count = Annotated[int, Field(ge=1)]
Number = Annotated[float, Field(allow_inf_nan=False)]
Spread = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class _Part(BaseModel):
    # the index is this module's own output: a key it does not declare is a writer and a reader that disagree
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Tracked(_Part):
    """A cell's trained records: mean and sample standard deviation over the seeds (``std`` 0 for one seed)."""

    mean: Number
    std: Spread
    n: Count
    seeds: list[int]
    dataset: str
    device: str
    records: list[str]  # the record files, relative to the repository, in the order of ``seeds``
    commits: list[str]


class Released(_Part):
    """A tracked evaluation of the authors' released weights in this cell."""

    value: Number
    checkpoint: str
    record: str


class IndexCell(_Part):
    row: str
    row_label: str
    column: str
    kind: Literal["metric", "derived", "static"]
    scale: Literal["tiny", "paper"] | None  # None: a static cell, one for all scales
    status: Literal["tracked", "not read", "released evaluated", "released available", "not run", "derived",
                    "computed", "stale", "not computed"]
    paper: str | None  # the paper's number as printed
    claims: list[str] = []
    metric: str | None = None  # metric cells: the key in the records' metrics
    tracked: Tracked | None = None
    why: str | None = None  # "not read": why
    released: Released | None = None
    checkpoints: list[str] = []  # released checkpoints of the catalogue that fill it (paper scale)
    value: Number | None = None  # derived and static cells
    text: str | None = None  # static cells: as the report shows them
    source: str | None = None  # static cells: computed, measured on ..., rendered


class TestResult(_Part):
    """A test of ``reports.statistics``: the estimate (a difference, in the metric's points), its 95% confidence
    interval, p (null: no spread over seeds, untested), the degrees of freedom (null: an exact binomial test) and
    q, where the test was one of a family read by Benjamini-Hochberg."""

    kind: Literal["paired t", "Welch t", "one-sample t", "prediction t", "binomial"]
    estimate: Number
    low: Number
    high: Number
    p: Number | None
    df: Number | None
    q: Number | None = None


class IndexPair(_Part):
    """Two rows of a metric column, as the table's report tests them (``reports.build.row_pairs``): a − b over
    seeds; ``test`` null when a row has one seed."""

    scale: Literal["tiny", "paper"]
    column: str
    a: str
    b: str
    outcome: Literal["beyond", "within", "untested", "one seed"]
    test: TestResult | None = None


class IndexTable(_Part):
    paper: str  # the paper's code: experiments/<paper>/
    paper_short: str
    label: str
    kind: str
    report: str  # beside the index
    default_seeds: dict[str, Count]  # per scale: what `python -m experiments run ID` trains
    cells: list[IndexCell]
    pairs: list[IndexPair] = []


class IndexExperiment(_Part):
    """One of the repository's own experiments (``@register_experiment``): its cells as a table's, with no paper
    number; ``paper``: the paper whose folder holds it (null: none)."""

    paper: str | None
    default_seeds: dict[str, Count]
    cells: list[IndexCell]


class ClaimReading(_Part):
    """One ordering of a claim: ``row · column`` against ``than_row · than_column`` as the claim orders them, its
    outcome and test (the difference as the claim says it: > 0 agrees)."""

    table: str
    ordering: str
    outcome: Literal["agrees", "reversed", "within noise", "not run"]
    test: TestResult | None = None


class IndexClaim(_Part):
    paper: str
    id: str
    verdict: Literal["reproduced beyond noise", "contradicted beyond noise", "not distinguishable", "not run"]
    readings: list[ClaimReading]


class SideSummary(_Part):
    mean: Number
    std: Spread
    n: Count


class RerunCell(_Part):
    row: str
    column: str  # "<column> <metric>"
    rerun: SideSummary
    tracked: SideSummary | None
    paper: str | None
    mark: Literal["same", "within", "beyond", "alone"]  # reports.compare.MARKS
    test: TestResult | None = None  # rerun − tracked, where one could be made


class Comparison(_Part):
    """The rerun's records of ``seeds`` against every tracked seed, cell by cell (``reports.compare``)."""

    seeds: list[int]
    cells: list[RerunCell]
    counts: dict[str, int]  # per mark
    largest_gap: Number | None  # points, between the means of a cell not equal bit for bit
    largest_gap_cell: str | None


class Rerun(_Part):
    """A table retrained with other CPU kernels forced: its records folder, kernels and comparisons."""

    name: str
    table: str
    records: str
    scale: str
    kernels: list[str]
    tracked_kernels: list[str]
    comparisons: list[Comparison]


class ResultsIndex(_Part):
    schema_version: Literal[2]
    generated_by: str
    tables: dict[str, IndexTable]
    experiments: dict[str, IndexExperiment] = {}
    claims: list[IndexClaim]
    reruns: list[Rerun]

    def cells(self, table_id: str, scale: str | None = "tiny") -> list[IndexCell]:
        """A table's cells at ``scale`` (None: its static cells)."""
        return [c for c in self.tables[table_id].cells if c.scale == scale]

    def cell(self, table_id: str, row: str, column: str, scale: str | None = "tiny") -> IndexCell:
        """One cell by row key and column name; ``KeyError`` when the table has no such cell."""
        for c in self.tables[table_id].cells:
            if (c.row, c.column, c.scale) == (row, column, scale):
                return c
        raise KeyError(f"{table_id}: no cell {row} / {column} at scale {scale}")


def read_index(path: str | Path = INDEX) -> ResultsIndex:
    """The index, checked against ``ResultsIndex``; a file that cannot be read or does not meet it raises
    ``ValueError``, one line naming the file and the field."""
    from .benchmark_schemas import read_benchmark

    document = read_benchmark(path, ResultsIndex, "the results index", f"write it again with `{GENERATED_BY}`")
    return ResultsIndex.model_validate(document)


# ---- the cells -------------------------------------------------------------------------------------------------


def _number(value: float) -> float:
    return round(float(value), DIGITS) + 0.0  # + 0.0: no -0.0


def _shown(path: str | Path) -> str:
    path = Path(path).resolve()
    return (path.relative_to(REPO) if path.is_relative_to(REPO) else path).as_posix()


def _paper_cell(table_id: str, paper_row: int, column: str) -> str | None:
    rows = paper_table(table_id).rows
    value = rows[paper_row].cells.get(column) if paper_row < len(rows) else None
    return None if value is None else printed(value)


def claims_by_cell() -> dict[tuple[str, str, str], list[str]]:
    """(table, row, column) -> the claims an ordering of that cell feeds, ``<paper>:<id>``, sorted."""
    from experiments.harness.claims import all_claims

    out: dict[tuple[str, str, str], set[str]] = {}
    for claim in all_claims():
        for test in claim.tests:
            for c in test.comparisons():
                for key in ((c.table, c.row, c.column), (c.table, c.than_row, c.than_column)):
                    out.setdefault(key, set()).add(f"{claim.paper}:{claim.id}")
    return {key: sorted(ids) for key, ids in out.items()}


def test_entry(test: Any) -> dict[str, Any] | None:
    """A ``reports.statistics.Test`` as the index holds it."""
    if test is None:
        return None

    def number(value: float) -> float | None:
        return None if value != value else _number(value)  # NaN: untested (p) or an exact test (df)

    return {"kind": test.kind, "estimate": _number(test.estimate), "low": _number(test.low),
            "high": _number(test.high), "p": number(test.p), "df": number(test.df),
            "q": None if test.q is None else _number(test.q)}


def _pairs(spec: Any, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every row pair a table's report tests, at each scale with records (``reports.build.row_pairs``)."""
    from .build import row_pairs

    table = paper_table(spec.table_id)
    out = []
    for scale in spec.scales:
        if not table.rows or not any(r["scale"] == scale for r in records):
            continue
        values = metric_values(spec, aggregate(records, scale))
        out += [{"scale": scale, "column": pair.column, "a": pair.a, "b": pair.b, "outcome": pair.outcome,
                 "test": test_entry(pair.test)} for pair in row_pairs(table, spec, values)]
    return out


def claim_entries() -> list[dict[str, Any]]:
    """Every claim's verdict and each ordering's reading and test (``reports.claims``)."""
    from experiments.harness.claims import all_claims

    from .claims import evaluate

    out = []
    for result in evaluate(all_claims(), RESULTS_DIR):
        readings = []
        for reading in result.readings:
            c = reading.comparison
            sign = {"higher": ">", "lower": "<", "not_worse": "≥"}[c.kind] + (
                f" (− {c.margin:g})" if c.kind == "not_worse" and c.margin else "")
            readings.append({"table": c.table, "ordering": f"{c.row} · {c.column} {sign} {c.than_row} · "
                                                           f"{c.than_column}",
                             "outcome": reading.outcome, "test": test_entry(reading.test)})
        out.append({"paper": result.claim.paper, "id": result.claim.id, "verdict": result.verdict,
                    "readings": readings})
    return out


def _tracked(cell: Cell, records: list[dict[str, Any]]) -> dict[str, Any]:
    records = sorted(records, key=lambda r: (r["seed"], r["_path"]))  # seeds and record files in one order
    return {"mean": _number(cell.mean), "std": _number(cell.std), "n": cell.n,
            "seeds": [r["seed"] for r in records], "dataset": cell.dataset, "device": cell.device,
            "records": [_shown(r["_path"]) for r in records],
            "commits": sorted({short_commit(r.get("git_commit", "unknown")) for r in records})}


def _released(spec: Any) -> dict[tuple[str, str, str], dict[str, Any]]:
    """(row, column, scale) -> the tracked evaluation of released weights that fills it."""
    from .released import released_records

    out = {}
    for record in released_records(spec.table_id, None, RESULTS_DIR):
        for mc in spec.metric_columns:
            if mc.run_name == record["column"] and mc.metric in record["metrics"]:
                out[(record["row"], mc.column, record["scale"])] = {
                    "value": _number(record["metrics"][mc.metric]),
                    "checkpoint": str(record["released"].get("name")), "record": _shown(record["_path"])}
    return out


def _checkpoints(table_id: str) -> dict[tuple[str, str], list[str]]:
    """(row, column) -> the released checkpoints of the catalogue that fill it."""
    from experiments.harness.released_weights import catalogue

    out: dict[tuple[str, str], list[str]] = {}
    for entry in catalogue():
        for cell in entry.cells:
            if cell.table == table_id:
                for column in cell.columns:
                    out.setdefault((cell.row, column), []).append(entry.full_name)
    return {key: sorted(names) for key, names in out.items()}


def _metric_cells(spec: Any, records: list[dict[str, Any]], claims: dict) -> Iterator[dict[str, Any]]:
    """The metric and derived cells of every scale the table has data for, rows in order."""
    released, checkpoints = _released(spec), _checkpoints(spec.table_id)
    for scale in spec.scales:
        values = metric_values(spec, aggregate(records, scale))
        unread = unread_top_k(records, scale)
        for row in spec.rows:
            for mc in spec.metric_columns:
                try:
                    spec.resolve(row, mc, scale, seed=0)
                except KeyError:
                    continue  # no data for this column at this scale: no cell
                base = {"row": row.key, "column": mc.column, "kind": "metric", "scale": scale, "metric": mc.metric}
                mine = [r for r in records if (r["scale"], r["row"], r["column"]) == (scale, row.key, mc.run_name)
                        and mc.metric in r["metrics"]]
                cell, why = values[row.key][mc.column], unread.get((row.key, mc.run_name), {}).get(mc.metric)
                entry = {**base, "status": "not run",
                         "released": released.get((row.key, mc.column, scale)),
                         "checkpoints": checkpoints.get((row.key, mc.column), []) if scale == "paper" else []}
                if cell is not None:
                    entry.update(status="tracked", tracked=_tracked(cell, mine))
                elif why is not None:
                    entry.update(status="not read", why=why)
                elif entry["released"] is not None:
                    entry["status"] = "released evaluated"
                elif entry["checkpoints"]:
                    entry["status"] = "released available"
                yield _finished(spec, row, entry, claims)
            for dc in spec.derived_columns:
                value = values[row.key][dc.column]
                entry = {"row": row.key, "column": dc.column, "kind": "derived", "scale": scale,
                         "status": "not run" if value is None else "derived",
                         "value": None if value is None else _number(value)}
                yield _finished(spec, row, entry, claims)


def _static_cells(spec: Any, claims: dict) -> Iterator[dict[str, Any]]:
    static = static_values(spec, None, RESULTS_DIR)
    for row in spec.rows:
        for col in spec.static_columns:
            computed = static.get((row.key, col.column))
            entry: dict[str, Any] = {"row": row.key, "column": col.column, "kind": "static", "scale": None,
                                     "status": "not computed"}
            if computed is not None:
                entry.update(status="stale" if "⚠" in computed.text else "computed", text=computed.text,
                             source=computed.source,
                             value=None if computed.value is None else _number(computed.value))
            yield _finished(spec, row, entry, claims)


def _finished(spec: Any, row: Any, entry: dict[str, Any], claims: dict) -> dict[str, Any]:
    """The cell with its row's label, the paper's number and its claims; absent and empty fields left out."""
    from .claims import SCALE

    feeds = claims.get((spec.table_id, row.key, entry["column"]), []) if entry["scale"] in (None, SCALE) else []
    paper = _paper_cell(spec.table_id, row.paper_row, entry["column"]) if spec.is_paper_table else None
    entry = {**entry, "row_label": row.label, "paper": paper, "claims": feeds}
    return {key: value for key, value in entry.items() if value not in (None, []) or key in ("paper", "scale")}


def table_entry(table_id: str, claims: dict[tuple[str, str, str], list[str]]) -> dict[str, Any]:
    """A paper table's entry of the index: what it is, its default seeds, every cell."""
    spec, table = table_spec(table_id), paper_table(table_id)
    records = table_records(spec, None, RESULTS_DIR).records
    return {"paper": table.paper_code, "paper_short": table.paper_short, "label": table.label, "kind": table.kind,
            "report": f"{table_id}.md", "default_seeds": {scale: spec.default_seeds(scale) for scale in spec.scales},
            "cells": [*_metric_cells(spec, records, claims), *_static_cells(spec, claims)],
            "pairs": _pairs(spec, records)}


def table_cells(table_id: str, claims: dict[tuple[str, str, str], list[str]]) -> list[dict[str, Any]]:
    """Every cell of a table or an own experiment, as the index holds it."""
    spec = table_spec(table_id)
    records = table_records(spec, None, RESULTS_DIR).records
    return [*_metric_cells(spec, records, claims), *_static_cells(spec, claims)]


def experiment_entry(table_id: str, claims: dict[tuple[str, str, str], list[str]]) -> dict[str, Any]:
    """An own experiment's entry of the index: the paper whose folder holds it, its default seeds, every cell."""
    spec, paper = table_spec(table_id), table_id.split("_")[0]
    return {"paper": paper if paper in papers() else None,
            "default_seeds": {scale: spec.default_seeds(scale) for scale in spec.scales},
            "cells": table_cells(table_id, claims)}


# ---- the reruns on other CPU kernels ---------------------------------------------------------------------------


def rerun_folders(root: Path = REPRODUCIBILITY) -> list[tuple[str, str, Path]]:
    """(rerun, table, folder) for each table's records under ``root/<rerun>/<table>/``."""
    registered = set(registered_specs())
    return [(rerun.name, table.name, rerun) for rerun in sorted(p for p in root.iterdir() if p.is_dir())
            for table in sorted(p for p in rerun.iterdir() if p.is_dir() and p.name in registered)] \
        if root.is_dir() else []


def _kernels(records: list[dict[str, Any]]) -> list[str]:
    return sorted({str(((r.get("provenance") or {}).get("cpu_kernels") or {}).get("capability", "not recorded"))
                   for r in records})


def _side(cell: Cell | None) -> dict[str, Any] | None:
    return None if cell is None else {"mean": _number(cell.mean), "std": _number(cell.std), "n": cell.n}


def rerun_entry(name: str, table_id: str, folder: Path) -> dict[str, Any]:
    """A rerun's records against the tracked ones: every seed it has, then the seeds the table trains by default
    (the quick start's, for its table) where those are fewer."""
    from .compare import compare_records

    spec = table_spec(table_id)
    mine = table_records(spec, None, folder).records
    tracked = table_records(spec, None, RESULTS_DIR).records
    scale = "tiny" if any(r["scale"] == "tiny" for r in mine) else next((r["scale"] for r in mine), "tiny")
    seeds = sorted({r["seed"] for r in mine if r["scale"] == scale})
    default = [s for s in seeds if s < spec.default_seeds(scale)]
    subsets = [seeds] + ([default] if default and default != seeds else [])
    comparisons = []
    for subset in subsets:
        cells = compare_records(spec, [r for r in mine if r["seed"] in subset], tracked, scale)
        gaps = [(abs(c.yours.mean - c.tracked.mean), c) for c in cells if c.tracked is not None and c.mark != "same"]
        gap, widest = max(gaps, key=lambda item: item[0]) if gaps else (None, None)
        comparisons.append({
            "seeds": subset, "counts": {mark: sum(c.mark == mark for c in cells) for mark in
                                        ("same", "within", "beyond", "alone")},
            "cells": [{"row": c.row, "column": c.column, "rerun": _side(c.yours), "tracked": _side(c.tracked),
                       "paper": None if c.paper is None else printed(c.paper), "mark": c.mark,
                       "test": test_entry(c.test)} for c in cells],
            "largest_gap": None if gap is None else _number(gap),
            "largest_gap_cell": None if widest is None else f"{widest.row}, {widest.column}"})
    return {"name": name, "table": table_id, "records": _shown(folder / table_id), "scale": scale,
            "kernels": _kernels(mine), "tracked_kernels": _kernels([r for r in tracked if r["scale"] == scale]),
            "comparisons": comparisons}


# ---- writing ---------------------------------------------------------------------------------------------------


def build_index() -> dict[str, Any]:
    """The whole index, as ``index_text`` writes it: every implemented paper table, every own experiment, every
    rerun."""
    claims = claims_by_cell()
    tables = {table_id: table_entry(table_id, claims) for table_id in implemented_tables()}
    experiments = {table_id: experiment_entry(table_id, claims) for table_id in registered_specs()
                   if table_id not in tables}
    reruns = [rerun_entry(name, table_id, folder) for name, table_id, folder in rerun_folders()]
    return ResultsIndex.model_validate({"schema_version": SCHEMA_VERSION, "generated_by": GENERATED_BY,
                                        "tables": tables, "experiments": experiments, "claims": claim_entries(),
                                        "reruns": reruns}).model_dump(mode="json", exclude_defaults=True)


def index_text(document: dict[str, Any] | None = None) -> str:
    """The index as JSON: keys sorted, objects indented down to each table, then one cell (or rerun cell, pair,
    claim's reading) a line, so that a change of one cell is a change of one line."""
    def compact(value: Any) -> str:
        return json.dumps(value, sort_keys=True, ensure_ascii=False, allow_nan=False)

    def block(value: Any, depth: int) -> str:
        pad, end = "  " * (depth + 1), "  " * depth
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            return "[\n" + ",\n".join(pad + block(item, depth + 1) for item in value) + "\n" + end + "]"
        nested = isinstance(value, dict) and "row" not in value and "test" not in value and any(
            isinstance(v, dict) or (isinstance(v, list) and any(isinstance(i, dict) for i in v))
            for v in value.values())
        if nested:
            inner = ",\n".join(f"{pad}{compact(key)}: {block(value[key], depth + 1)}" for key in sorted(value))
            return "{\n" + inner + "\n" + end + "}"
        return compact(value)  # a cell, or a flat object

    return block(build_index() if document is None else document, 0) + "\n"


# ---- the reproducibility page ----------------------------------------------------------------------------------

REPRODUCIBILITY_INTRO = (
    "Runs are deterministic on the same CPU kernels (`tests/experiments/harness/test_determinism.py`), and each "
    "record names its kernels; on other kernels the same seed trains to other numbers. Each section: a table "
    "retrained with other kernels forced (its records under `reports/reproducibility/`, in the tracked layout), "
    "cell by cell against the tracked records, first over every seed it has, then over the seeds the table trains "
    "by default (for the quick start's table, what the quick start trains). The same data: `reruns` in "
    "[index.json](index.json).")


def _side_text(side: dict[str, Any] | None) -> str:
    if side is None:
        return "—"
    return f"{side['mean']:.1f}" + (f" ± {side['std']:.1f}" if side["n"] > 1 else "") + f" (n={side['n']})"


def reproducibility_text(reruns: list[dict[str, Any]] | None = None) -> str:
    """Each rerun of the index as a section: its records and kernels, the command, and each comparison's cells with
    their marks and counts."""
    from .compare import LEGEND, MARKS

    reruns = [rerun_entry(*found) for found in rerun_folders()] if reruns is None else reruns
    out = [_wrap(REPRODUCIBILITY_INTRO)]
    for rerun in reruns:
        out.append(f"## `{rerun['name']}`: {rerun['table']}")
        out.append(_wrap(f"`{rerun['records']}` ({', '.join(rerun['kernels'])} kernels) against the tracked "
                         f"records ({', '.join(rerun['tracked_kernels'])}); `python -m reports compare "
                         f"{rerun['table']} --records {Path(rerun['records']).parent.as_posix()}` prints the "
                         f"first comparison."))
        for comparison in rerun["comparisons"]:
            counts = comparison["counts"]
            seeds = ", ".join(map(str, comparison["seeds"]))
            body = [[c["row"], c["column"], _side_text(c["rerun"]), _side_text(c["tracked"]), c["paper"] or "—",
                     MARKS[c["mark"]]] for c in comparison["cells"]]
            gap = "" if comparison["largest_gap"] is None else (
                f"; the largest gap between means {comparison['largest_gap']:.1f} points "
                f"({comparison['largest_gap_cell']})")
            out += [f"### Seed{'s' * (len(comparison['seeds']) > 1)} {seeds}",
                    tabulate(body, headers=["row", "column", "rerun", "tracked", "paper", ""], tablefmt="github",
                             disable_numparse=True),
                    _wrap(f"{len(body)} cells: {counts['same']} equal bit for bit, {counts['within']} within noise, "
                          f"{counts['beyond']} beyond noise, {counts['alone']} with nothing tracked{gap}.")]
    out.append(_wrap(f"Marks: {LEGEND}."))
    return "\n\n".join(out)


def _wrap(text: str) -> str:
    return textwrap.fill(text, 120, break_long_words=False, break_on_hyphens=False)


__all__ = ["INDEX", "REPRODUCIBILITY_PAGE", "IndexCell", "ResultsIndex", "build_index", "index_text", "read_index",
           "reproducibility_text"]
