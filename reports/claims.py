"""The papers' claims against our tracked records: ``python -m reports claims`` writes ``reports/generated/claims.md``.

A claim (``experiments.harness.claims``) rests on orderings of table cells. Each ordering of two trained cells is read
with the reports' noise rule (``reports.noise``: two standard errors over seeds): it *agrees* beyond noise, is
*reversed*
beyond noise, or is *within noise*. A computed cell (GFLOPs, parameters, a measured memory) has no seeds: its
ordering agrees or is reversed. A timed cell (``StaticColumn.timed``: a rate measured once, which varies from run to
run) is one sample, as a row of one seed: its ordering is within noise. A claim is

- **reproduced beyond noise** when every one of its orderings agrees beyond noise;
- **contradicted beyond noise** when any is reversed beyond noise;
- **not distinguishable** otherwise (some within noise, or a cell of one seed);
- **not run** when no ordering has both of its cells; a claim with some orderings not run says how many.

A ``not_worse`` ordering (parity, margin m: A ≥ B − m) agrees when A − B + m exceeds the noise bound and is
reversed when B − A − m does. The page also counts, over every table, the row pairs the paper orders and how ours
order them, and lists the trained accuracy columns that cannot order their rows (every row saturated, or at chance).
"""

from __future__ import annotations

import math
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from experiments.harness.claims import Claim, Comparison, all_claims
from experiments.harness.records import experiment_key
from experiments.harness.spec import RowSpec, TableSpec, table_spec
from experiments.paper_tables import paper_table, paper_tables, papers

from . import noise
from .build import GENERATED_DIR, REPORTS_DIR, Cell, aggregate, metric_values, short_commit, static_values
from .chance import chance
from .records import RESULTS_DIR, one_scan, table_records

AGREES, REVERSED, WITHIN, NOT_RUN = "agrees", "reversed", "within noise", "not run"
REPRODUCED, CONTRADICTED, UNDECIDED = "reproduced beyond noise", "contradicted beyond noise", "not distinguishable"
SCALE = "tiny"


@dataclass(frozen=True)
class Side:
    """One cell of an ordering: a trained cell's mean ± std over n seeds, a computed value (n = 0), or a value timed
    once (n = 1)."""

    mean: float
    std: float
    n: int
    text: str


@dataclass(frozen=True)
class Reading:
    comparison: Comparison
    outcome: str  # AGREES / REVERSED / WITHIN / NOT_RUN
    a: Side | None
    b: Side | None
    why: str = ""  # for NOT_RUN


class TableCells:
    """A table's cells at tiny scale from the tracked records: trained (Cell), derived (float), computed."""

    def __init__(self, table_id: str, results_root: str | Path | None):
        spec = table_spec(table_id)
        self.records = [r for r in table_records(spec, None, results_root).records if r["scale"] == SCALE]
        self.values = metric_values(spec, aggregate(self.records, SCALE))
        self.static = static_values(spec, None, results_root)
        self.timed = {c.column for c in spec.static_columns if c.timed}

    def side(self, row: str, column: str) -> tuple[Side | None, str]:
        computed = self.static.get((row, column))
        if computed is not None:
            if computed.value is None or "⚠" in computed.text:
                return None, f"{row} · {column}: {computed.text}"
            if column in self.timed:  # one measurement: a sample without spread
                return Side(float(computed.value), 0.0, 1, f"{computed.text}; timed once"), ""
            return Side(float(computed.value), 0.0, 0, computed.text), ""
        value = self.values.get(row, {}).get(column)
        if isinstance(value, Cell):
            return Side(value.mean, value.std, value.n, _shown(value.mean, value.std, value.n)), ""
        if value is not None:  # derived from the means of other columns: no spread of its own
            return Side(float(value), 0.0, 1, f"{value:.2f} (derived)"), ""
        return None, f"{row} · {column}: no tracked run"

    def commits(self) -> set[str]:
        return {short_commit(r.get("git_commit", "unknown")) for r in self.records}


def _shown(mean: float, std: float, n: int) -> str:
    return f"{mean:.1f}" + (f" ± {std:.1f}" if n > 1 else "") + f" (n={n})"


def read(comparison: Comparison, cells: TableCells) -> Reading:
    a, why_a = cells.side(comparison.row, comparison.column)
    b, why_b = cells.side(comparison.than_row, comparison.than_column)
    if a is None or b is None:
        return Reading(comparison, NOT_RUN, a, b, "; ".join(w for w in (why_a, why_b) if w))
    gap = a.mean - b.mean if comparison.kind != "lower" else b.mean - a.mean  # > 0: as the claim says
    if comparison.kind == "not_worse":
        gap += comparison.margin
    if a.n == 0 and b.n == 0:  # computed: exact
        holds = gap >= 0 if comparison.kind == "not_worse" else gap > 0
        return Reading(comparison, AGREES if holds else REVERSED, a, b)
    if min(a.n, b.n) < 2:
        return Reading(comparison, WITHIN, a, b)
    bound = 2 * math.sqrt(a.std ** 2 / a.n + b.std ** 2 / b.n)
    outcome = AGREES if gap > bound else REVERSED if gap < -bound else WITHIN
    return Reading(comparison, outcome, a, b)


def verdict(readings: list[Reading]) -> str:
    run = [r for r in readings if r.outcome != NOT_RUN]
    if not run:
        return NOT_RUN
    if any(r.outcome == REVERSED for r in run):
        return CONTRADICTED
    if all(r.outcome == AGREES for r in run):
        return REPRODUCED
    return UNDECIDED


@dataclass(frozen=True)
class ClaimResult:
    claim: Claim
    readings: list[Reading]
    verdict: str
    commits: set[str]

    @property
    def not_run(self) -> int:
        return sum(r.outcome == NOT_RUN for r in self.readings)


def evaluate(claims: list[Claim], results_root: str | Path | None = RESULTS_DIR) -> list[ClaimResult]:
    tables: dict[str, TableCells] = {}
    out = []
    for claim in claims:
        readings, commits = [], set()
        for test in claim.tests:
            cells = tables.setdefault(test.table, TableCells(test.table, results_root))
            commits |= cells.commits()
            readings += [read(c, cells) for c in test.comparisons()]
        out.append(ClaimResult(claim, readings, verdict(readings), commits))
    return out


@dataclass(frozen=True)
class PairCounts:
    ordered: int = 0  # row pairs whose printed values differ, both of ours trained
    agreeing: int = 0
    reversed: int = 0
    within: int = 0
    not_comparable: int = 0  # a cell of one seed
    same_run: int = 0  # two rows that are one run at tiny scale (Table 4's 4, 8 and 16 token rows): not read


def paper_pairs(results_root: str | Path | None = RESULTS_DIR) -> dict[str, PairCounts]:
    """Per table: every pair of rows of a trained column whose printed values differ, against how ours order them
    (same sign beyond noise, opposite sign beyond noise, within noise); two rows that resolve to one run at tiny
    scale are counted apart, since their cells cannot differ."""
    out = {}
    for table_id in paper_tables():
        spec, table = table_spec(table_id), paper_table(table_id)
        if spec is None or not table.rows:
            continue
        cells = TableCells(table_id, results_root)
        counts: Counter[str] = Counter()
        for mc in dict.fromkeys(c.column for c in spec.metric_columns):
            rows = [(row, table.rows[row.paper_row].cells.get(mc)) for row in spec.rows
                    if row.paper_row < len(table.rows)]
            ours = {row.key: cells.values[row.key].get(mc) for row, _ in rows}
            runs = _run_keys(spec, [row for row, _ in rows if isinstance(ours[row.key], Cell)], mc)
            for i, (row_a, paper_a) in enumerate(rows):
                for row_b, paper_b in rows[i + 1:]:
                    if not (_number(paper_a) and _number(paper_b)) or paper_a == paper_b:
                        continue
                    a, b = ours[row_a.key], ours[row_b.key]
                    if not (isinstance(a, Cell) and isinstance(b, Cell)):
                        continue
                    counts["ordered"] += 1
                    if runs[row_a.key] == runs[row_b.key]:
                        counts["same_run"] += 1
                        continue
                    beyond = noise.beyond_noise(a, b)
                    if beyond is None:
                        counts["not_comparable"] += 1
                    elif not beyond:
                        counts["within"] += 1
                    elif (a.mean > b.mean) == (paper_a > paper_b):
                        counts["agreeing"] += 1
                    else:
                        counts["reversed"] += 1
        if counts["ordered"]:
            out[table_id] = PairCounts(**counts)
    return out


SATURATED = 99.0  # percent: a column whose every row is at or above it cannot order them


@dataclass(frozen=True)
class FlatColumn:
    """A trained tiny accuracy column that cannot order its rows: every row at or above ``SATURATED``, or every row
    within noise of chance (``at_chance``)."""

    table: str
    column: str
    dataset: str
    saturated: bool  # False: at chance
    low: float
    high: float
    chance: tuple[float, ...]  # percent, of each data set its rows read


def at_chance(cell: Cell, chance_pct: float, test_videos: int) -> bool:
    """Whether a cell's mean is within two standard errors of chance: the larger of its seeds' (s/√n) and that of
    guessing on its test set (√(p(1−p)/N), which a cell whose seeds all guessed alike still has)."""
    p = chance_pct / 100
    seeds = cell.std / math.sqrt(cell.n) if cell.n > 1 else 0.0
    return abs(cell.mean - chance_pct) <= 2 * max(seeds, 100 * math.sqrt(p * (1 - p) / test_videos))


def flat_columns(results_root: str | Path | None = RESULTS_DIR) -> tuple[int, list[FlatColumn]]:
    """Over every trained tiny accuracy column with at least two rows: how many there are, and those whose rows
    are all saturated or all at chance (the classes and test videos each run recorded set chance and its noise)."""
    checked, flat = 0, []
    for table_id in paper_tables():
        spec = table_spec(table_id)
        if spec is None:
            continue
        cells = TableCells(table_id, results_root)
        for mc in {c.column: c for c in spec.metric_columns}.values():
            rows = []
            for row in spec.rows:
                cell = cells.values[row.key].get(mc.column)
                record = next((r for r in cells.records if r["row"] == row.key and r["column"] == mc.run_name), None)
                data = (record or {}).get("data") or {}
                level = chance(mc.metric, data.get("num_classes"))
                if isinstance(cell, Cell) and level is not None and data.get("num_val_videos"):
                    rows.append((cell, 100 * level, data["num_val_videos"]))
            if len(rows) < 2:
                continue
            checked += 1
            means = [cell.mean for cell, _, _ in rows]
            saturated = min(means) >= SATURATED
            if saturated or all(at_chance(*row) for row in rows):
                flat.append(FlatColumn(table_id, mc.column, " / ".join(sorted({c.dataset for c, _, _ in rows})),
                                       saturated, min(means), max(means), tuple(sorted({c for _, c, _ in rows}))))
    return checked, flat


def _run_keys(spec: TableSpec, rows: list[RowSpec], column: str) -> dict[str, str]:
    """row key -> the experiment key of its run in ``column`` at tiny scale: two rows with one key are one run."""
    metric = next(c for c in spec.metric_columns if c.column == column)
    return {row.key: experiment_key(spec.resolve(row, metric, SCALE, seed=0).to_dict()) for row in rows}


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


CLAIMS_PAGE = GENERATED_DIR / "claims.md"
ROOT = Path(os.path.relpath(REPORTS_DIR.parent, CLAIMS_PAGE.parent)).as_posix()  # the repository, from the page
VERDICTS = (REPRODUCED, UNDECIDED, CONTRADICTED, NOT_RUN)


def render(results: list[ClaimResult], pairs: dict[str, PairCounts], flat: tuple[int, list[FlatColumn]],
           figures: list[str] = ()) -> str:
    from tabulate import tabulate

    out = ["# The papers' claims, tested by our tiny runs", "",
           "Each paper's headline claims (`experiments/<paper>/claims.yaml`: the sentence, the table cells it rests "
           "on, "
           "what a stand-in can and cannot test), chosen from the papers' text before any of our numbers were "
           f"compared with them ([how they were chosen]({ROOT}/docs/claims_selection.md)), read against the "
           "tracked tiny-scale records under `reports/results/`. Regenerate: `python -m reports claims`.", "",
           "A verdict says whether our **tiny** stand-in runs show the ordering the paper claims, not whether the "
           "paper is right: tiny models trained for minutes on generated videos are not the paper's setting, even "
           "though they start from a tiny image stand-in as the papers start from ImageNet ([the tiny scale's "
           f"design]({ROOT}/docs/tiny_regime_design.md)).", "",
           f"Rule: an ordering of two trained cells agrees or is reversed *beyond noise* by the reports' rule "
           f"({noise.RULE}); a computed cell (GFLOPs, parameters, a measured memory) has no seeds and is compared "
           f"as it is; a cell timed once (a speed) is one sample, as a row of one seed, and cannot be compared beyond "
           f"noise. A claim is *{REPRODUCED}* when every ordering it rests on agrees beyond noise, "
           f"*{CONTRADICTED}* when any is reversed beyond noise, *{UNDECIDED}* otherwise, *{NOT_RUN}* when no "
           f"ordering has both of its cells. A `≥ … − m` ordering (parity) agrees when A − B + m exceeds the bound.",
           "", "## Summary", ""]
    body = []
    for paper in papers():
        mine = [r for r in results if r.claim.paper == paper]
        counts = Counter(r.verdict for r in mine)
        body.append([papers()[paper].short_name, len(mine), *(counts[v] for v in VERDICTS)])
    counts = Counter(r.verdict for r in results)
    body.append(["all", len(results), *(counts[v] for v in VERDICTS)])
    out += [tabulate(body, headers=["paper", "claims", *VERDICTS], tablefmt="github"), ""]
    out += _pairs_section(pairs)
    out += _flat_section(*flat)
    out += list(figures)
    for paper in papers():
        mine = [r for r in results if r.claim.paper == paper]
        if mine:
            out += [f"## {papers()[paper].short_name}", ""]
            for result in mine:
                out += _claim_section(result)
    return "\n".join(out).rstrip() + "\n"


def _pairs_section(pairs: dict[str, PairCounts]) -> list[str]:
    from tabulate import tabulate

    total = PairCounts(*(sum(getattr(c, f) for c in pairs.values()) for f in PairCounts.__dataclass_fields__))
    beyond = total.agreeing + total.reversed
    rows = [[f"[{t}]({t}.md)", c.ordered, c.agreeing, c.reversed, c.within, c.not_comparable, c.same_run]
            for t, c in pairs.items()]
    rows.append(["all", total.ordered, total.agreeing, total.reversed, total.within, total.not_comparable,
                 total.same_run])
    return ["## Every row pair the papers order", "",
            f"Over every table, the pairs of rows whose printed values differ in a column we trained: "
            f"{total.ordered} pairs. Ours differ beyond noise in {beyond}: {total.agreeing} in the paper's order, "
            f"{total.reversed} reversed; {total.within} are within noise, {total.not_comparable} cannot be "
            f"compared (a cell of one seed) and {total.same_run} are two rows that are one run at tiny scale (the "
            f"tiny model cannot tell them apart, as Table 4's 4, 8 and 16 token rows).", "",
            tabulate(rows, headers=["table", "pairs", "in the paper's order", "reversed", "within noise",
                                    "one seed", "one run"], tablefmt="github"), ""]


def _flat_section(checked: int, flat: list[FlatColumn]) -> list[str]:
    from tabulate import tabulate

    saturated = sum(f.saturated for f in flat)
    out = ["## Columns that cannot order their rows", "",
           f"Of the {checked} trained accuracy columns at tiny scale with two rows or more, {saturated} have every row "
           f"at or above {SATURATED:g}% and {len(flat) - saturated} have every row within noise of chance (two "
           f"standard errors: the larger of the seeds' and that of guessing on the test set). Top-5 cells over few "
           f"classes are not read, so they are not counted.", ""]
    if flat:
        rows = [[f"[{f.table}]({f.table}.md)", f.column, f"`{f.dataset}`",
                 f"every row ≥ {SATURATED:g}%" if f.saturated else "every row at chance",
                 f"{f.low:.1f}–{f.high:.1f}", " / ".join(f"{c:.1f}" for c in f.chance)] for f in flat]
        out += [tabulate(rows, headers=["table", "column", "data", "what", "rows (%)", "chance (%)"],
                         tablefmt="github"), ""]
    return out


def _claim_section(result: ClaimResult) -> list[str]:
    from tabulate import tabulate

    claim = result.claim
    partly = f" ({result.not_run} of {len(result.readings)} orderings not run)" if result.not_run and \
        result.verdict != NOT_RUN else ""
    runs = f"runs at commit(s) {', '.join(sorted(result.commits))}" if result.commits else "no trained cell"
    lines = [f"### {claim.statement}", "", f"**{result.verdict}**{partly} · `{claim.id}` · {runs}", "",
             f"> {claim.quote}", ">",
             f"> — {claim.where}", ""]
    body = []
    for r in result.readings:
        c = r.comparison
        sign = {"higher": ">", "lower": "<", "not_worse": "≥"}[c.kind] + (
            f" (− {c.margin:g})" if c.kind == "not_worse" and c.margin else "")
        left = f"{c.row} · {c.column}" if c.column != c.than_column or c.row == c.than_row else f"{c.row}"
        right = f"{c.than_row} · {c.than_column}" if c.column != c.than_column or c.row == c.than_row \
            else f"{c.than_row}"
        column = "" if c.column != c.than_column else c.column
        body.append([f"[{c.table}]({c.table}.md)", column, f"{left} {sign} {right}",
                     r.a.text if r.a else "—", r.b.text if r.b else "—", r.outcome + (f": {r.why}" if r.why else "")])
    lines += [tabulate(body, headers=["table", "column", "ordering", "ours (left)", "ours (right)", "reading"],
                       tablefmt="github"), "", f"*What a stand-in can test:* {claim.stand_in}", ""]
    if claim.discussed_in:
        lines += [f"*Our runs' verdict, discussed:* [{claim.discussed_in}]({ROOT}/{claim.discussed_in})", ""]
    return lines


def figures_section(results_root: str | Path | None = RESULTS_DIR) -> list[str]:
    """The papers' figures measured (issue: a picture no table reproduces): Motionformer's Figures 1 and 4 as the
    tracking score of its tracked record (``reports.attention_tracking``), one line per row; CAST's Figure 3(c) and
    3D-Deformable's Figures A3-A5 from theirs (``reports.attention_measures``); [] without any record."""
    root = RESULTS_DIR if results_root is None else Path(results_root)
    lines = [*_tracking_line(root), *_measure_lines(root)]
    return ["## Figures, measured", "", *lines] if lines else []


def _tracking_line(root: Path) -> list[str]:
    from .attention_tracking import read_tracking, row_scores, tracked_record

    source = tracked_record(root)
    if not source.exists():
        return []
    scores = row_scores(read_tracking(source))
    verdict = {True: "beyond chance", False: "not beyond chance", None: "one seed"}
    rows = "; ".join(f"{s.row} {s.mean:+.2f} ± {s.std:.2f} ({'not learned' if s.fixed else verdict[s.beyond_chance]})"
                     for s in scores)
    return ["Motionformer, Figures 1 and 4 (\"the model learns to implicitly track along motion paths\"): the share of "
            "a query's attention that falls on the moving object's true box in later frames, minus chance, in points "
            f"(mean ± std over seeds), Table 4's rows on the SSv2 stand-in: {rows}. "
            f"[The measure]({ROOT}/docs/attention_tracking.md), [the page]({ROOT}/reports/generated/"
            "attention_tracking.md).", ""]


def _measure_lines(root: Path) -> list[str]:
    """One line each for CAST's window mass and 3D-Deformable's sampling points, from their tracked records."""
    from .attention_measures import (
        LOOKS_ALONG,
        POINT_FIELDS,
        POINTS,
        WINDOW_FIELDS,
        WINDOWS,
        Spread,
        runs_by_row,
        tracked_records,
    )
    from .attention_tracking import read_attention_record

    windows, points = tracked_records(root)
    links = (f"[The measure]({ROOT}/docs/attention_windows_and_points.md), [the page]({ROOT}/reports/generated/"
             "attention_windows_and_points.md).")
    verdict = {True: "beyond chance", False: "not beyond chance", None: "one seed"}
    lines = []
    if windows.exists():
        cells = []
        for row, runs in runs_by_row(read_attention_record(windows, WINDOWS.kind, WINDOW_FIELDS)).items():
            for direction, along in LOOKS_ALONG.items():
                if runs[0][direction]["window"] == "space_time":  # the other windows fix the answer
                    excess = Spread.of([r[direction]["share"][along] - r[direction]["chance"][along] for r in runs])
                    cells.append(f"{row} {direction.upper()} along {along} {excess.text(3)} "
                                 f"({verdict[excess.beyond_zero]})")
        lines += ["CAST, Figure 3(c) (T2S attends along time, S2T along space): with the paper's windows this holds "
                  "by construction; given a space-time window instead (Table 1(e)), the share each direction puts "
                  f"along its axis, minus the uniform map's, in points: {'; '.join(cells)}. The last block's T2S "
                  "receives no gradient (its output reaches no head), so its share is its initialisation's. "
                  f"{links}", ""]
    if points.exists():
        cells = []
        for row, runs in runs_by_row(read_attention_record(points, POINTS.kind, POINT_FIELDS)).items():
            excess, gain = Spread.of([r["excess"] for r in runs]), Spread.of([r["offsets_gain"] for r in runs])
            cells.append(f"{row} {excess.text()} ({verdict[excess.beyond_zero]}; the offsets' own gain "
                         f"{gain.text()}, {verdict[gain.beyond_zero]})")
        lines += ["3D-Deformable, Figures A3-A5 (the deformable attention samples on the person): the share of the "
                  "sampling points inside the person's box, minus the box's share of the frame, in points, Figure "
                  f"A1's 12-frame runs on the PennAction stand-in: {'; '.join(cells)}. {links}", ""]
    return lines


def claims_page_text(results_root: str | Path | None = RESULTS_DIR) -> str:
    """The claims page, from the claims and the records under ``results_root`` (read once: ``one_scan``)."""
    with one_scan():
        return render(evaluate(all_claims(), results_root), paper_pairs(results_root), flat_columns(results_root),
                      figures_section(results_root))


def write_claims_page(results_root: str | Path | None = RESULTS_DIR, path: Path = CLAIMS_PAGE) -> Path:
    from data.atomic_write import atomic_write_text

    atomic_write_text(path, claims_page_text(results_root))
    return path
