"""The papers' claims against our tracked records: ``python -m reports claims`` writes ``reports/generated/claims.md``.

A claim (``experiments.harness.claims``) rests on orderings of table cells. Each ordering of two trained cells is a
planned comparison, chosen before its verdict, tested alone (``reports.statistics``: the paired t-test where both
cells ran the same seeds on the same data, Welch's otherwise, two-sided at α = 0.05): it *agrees* beyond noise, is
*reversed* beyond noise, or is *within noise*, its difference shown with its 95% confidence interval and p. A
computed cell (GFLOPs, parameters, a measured memory) has no seeds: its ordering agrees or is reversed. A timed cell
(``StaticColumn.timed``: a rate measured once, which varies from run to run) is one sample, as a row of one seed: its
ordering is within noise. A claim is

- **reproduced beyond noise** when every one of its orderings agrees beyond noise;
- **contradicted beyond noise** when any is reversed beyond noise;
- **not distinguishable** otherwise (some within noise, or a cell of one seed);
- **not run** when no ordering has both of its cells; a claim with some orderings not run says how many.

A ``not_worse`` ordering (parity, margin m: A ≥ B − m) tests A − B + m: it agrees when that is above 0 beyond noise
and is reversed when it is below. The page also counts, over every table, the row pairs the paper orders and how ours
order them (the false discovery rate over those pairs held at q = 0.05 by Benjamini-Hochberg), and lists the trained
accuracy columns that cannot order their rows (every row saturated, or none distinguishable from chance).
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from experiments.harness.claims import Claim, Comparison, all_claims
from experiments.harness.records import experiment_key
from experiments.harness.spec import RowSpec, TableSpec, table_spec
from experiments.paper_tables import paper_table, paper_tables, papers

from .build import GENERATED_DIR, REPORTS_DIR, short_commit, static_values
from .cells import Cell, aggregate, metric_values
from .chance import chance
from .records import RESULTS_DIR, one_scan, table_records
from .statistics import ALPHA, Q, Test, adjusted, against_chance, difference

AGREES, REVERSED, WITHIN, NOT_RUN = "agrees", "reversed", "within noise", "not run"
REPRODUCED, CONTRADICTED, UNDECIDED = "reproduced beyond noise", "contradicted beyond noise", "not distinguishable"
SCALE = "tiny"


@dataclass(frozen=True)
class Side:
    """One cell of an ordering: a trained cell's mean ± std over n seeds (its per-seed values, seeds and data for
    the test), a computed value (n = 0), or a value timed once (n = 1)."""

    mean: float
    std: float
    n: int
    text: str
    values: tuple[float, ...] = ()
    seeds: tuple[int, ...] = ()
    data: str = ""


@dataclass(frozen=True)
class Reading:
    comparison: Comparison
    outcome: str  # AGREES / REVERSED / WITHIN / NOT_RUN
    a: Side | None
    b: Side | None
    why: str = ""  # for NOT_RUN
    test: Test | None = None  # the ordering's test, as the claim says it (> 0: the claim's direction)


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
            return Side(value.mean, value.std, value.n, _shown(value.mean, value.std, value.n), value.values,
                        value.seeds, value.data), ""
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
    if comparison.kind == "lower":
        test = difference(b, a)
    else:
        test = difference(a, b, shift=comparison.margin if comparison.kind == "not_worse" else 0.0)
    outcome = WITHIN if test is None or not test.beyond else AGREES if test.estimate > 0 else REVERSED
    return Reading(comparison, outcome, a, b, test=test)


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
    not_comparable: int = 0  # a cell of one seed, or no spread over seeds
    same_run: int = 0  # two rows that are one run at tiny scale (Table 4's 4, 8 and 16 token rows): not read


@dataclass(frozen=True)
class OrderedPair:
    """Two rows of a trained column whose printed values differ: the paper's order, ours, and the test."""

    table: str
    column: str
    a: str  # row keys
    b: str
    paper_a_higher: bool
    test: Test | None  # a − b over seeds; None: a cell of one seed
    same_run: bool = False  # one run at tiny scale: not tested


def ordered_pairs(results_root: str | Path | None = RESULTS_DIR) -> list[OrderedPair]:
    """Every pair of rows of a trained column whose printed values differ, with both of ours trained, over every
    table; tested (``reports.statistics.difference``) and read as one family at false discovery rate q
    (``adjusted``). Two rows that resolve to one run at tiny scale are kept apart, untested: their cells cannot
    differ."""
    out = []
    for table_id in paper_tables():
        spec, table = table_spec(table_id), paper_table(table_id)
        if spec is None or not table.rows:
            continue
        cells = TableCells(table_id, results_root)
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
                    same = runs[row_a.key] == runs[row_b.key]
                    out.append(OrderedPair(table_id, mc, row_a.key, row_b.key, paper_a > paper_b,
                                           None if same else difference(a, b), same))
    tests = adjusted([pair.test for pair in out])
    return [replace(pair, test=test) for pair, test in zip(out, tests)]


def paper_pairs(pairs: list[OrderedPair]) -> dict[str, PairCounts]:
    """Per table: how ours order the pairs the paper orders (same sign beyond noise, opposite sign beyond noise,
    within noise, one seed, one run), each pair's verdict by its q over the whole family."""
    counts: dict[str, Counter[str]] = {}
    for pair in pairs:
        c = counts.setdefault(pair.table, Counter())
        c["ordered"] += 1
        if pair.same_run:
            c["same_run"] += 1
        elif pair.test is None or not pair.test.tested:
            c["not_comparable"] += 1
        elif not pair.test.beyond:
            c["within"] += 1
        elif (pair.test.estimate > 0) == pair.paper_a_higher:
            c["agreeing"] += 1
        else:
            c["reversed"] += 1
    return {table: PairCounts(**c) for table, c in counts.items()}


SATURATED = 99.0  # percent: a column whose every row is at or above it cannot order them


@dataclass(frozen=True)
class FlatColumn:
    """A trained tiny accuracy column that cannot order its rows: every row at or above ``SATURATED``, or no row
    distinguishable from chance (``at_chance``)."""

    table: str
    column: str
    dataset: str
    saturated: bool  # False: at chance
    low: float
    high: float
    chance: tuple[float, ...]  # percent, of each data set its rows read


def at_chance(rows: list[tuple[Cell, float, int]]) -> bool:
    """Whether no row of a column is distinguishable from chance: each (cell, chance %, test videos) tested against
    chance (``reports.statistics.against_chance``: over seeds, or the binomial test of the test set where seeds do not
    spread), the column's rows one family at false discovery rate q; a row that cannot be tested counts as at
    chance only when its mean is chance itself."""
    tests = adjusted([against_chance(cell, level, videos) for cell, level, videos in rows])
    return not any(test is None or test.beyond for test in tests)


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
            if saturated or at_chance(rows):
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
           f"Rule: each ordering of two trained cells is a planned comparison, chosen before its verdict and tested "
           f"alone: it agrees or is reversed *beyond noise* when its two-sided t-test over seeds rejects at α = "
           f"{ALPHA:g} (the paired t-test on the per-seed differences where both cells ran the same seeds on the "
           f"same data, Welch's t-test otherwise; `reports/statistics.py`), and every reading shows the difference "
           f"as the claim orders it, its 95% confidence interval and p. A computed cell (GFLOPs, parameters, a "
           f"measured memory) has no seeds and is compared as it is; a cell timed once (a speed) is one sample, as a "
           f"row of one seed, and cannot be compared beyond noise. A claim is *{REPRODUCED}* when every ordering it "
           f"rests on agrees beyond noise, *{CONTRADICTED}* when any is reversed beyond noise, *{UNDECIDED}* "
           f"otherwise, *{NOT_RUN}* when no ordering has both of its cells. A `≥ … − m` ordering (parity) tests "
           f"A − B + m.",
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
    tested = total.agreeing + total.reversed + total.within
    rows = [[f"[{t}]({t}.md)", c.ordered, c.agreeing, c.reversed, c.within, c.not_comparable, c.same_run]
            for t, c in pairs.items()]
    rows.append(["all", total.ordered, total.agreeing, total.reversed, total.within, total.not_comparable,
                 total.same_run])
    return ["## Every row pair the papers order", "",
            f"Over every table, the pairs of rows whose printed values differ in a column we trained: "
            f"{total.ordered} pairs. Each of the {tested} that can be tested is tested as two rows are in the "
            f"reports, and the {tested} are read as one family: a pair is beyond noise when its Benjamini-Hochberg q "
            f"is below {Q:g}, so that of the pairs called beyond noise at most a share {Q:g} is expected to be "
            f"false discoveries (at p < {ALPHA:g} alone, {tested} pairs with no difference at all would give about "
            f"{round(ALPHA * tested)}). Ours differ beyond noise in {beyond}: {total.agreeing} in the paper's "
            f"order, {total.reversed} reversed; {total.within} are within noise, {total.not_comparable} cannot be "
            f"tested (a cell of one seed, or no spread over seeds) and {total.same_run} are two rows that are one "
            f"run at tiny scale (the tiny model cannot tell them apart, as Table 4's 4, 8 and 16 token rows). Each "
            f"pair's difference, interval, p and q: `reports/generated/index.json` (`pairs` of each table).", "",
            tabulate(rows, headers=["table", "pairs", "in the paper's order", "reversed", "within noise",
                                    "one seed", "one run"], tablefmt="github"), ""]


def _flat_section(checked: int, flat: list[FlatColumn]) -> list[str]:
    from tabulate import tabulate

    saturated = sum(f.saturated for f in flat)
    out = ["## Columns that cannot order their rows", "",
           f"Of the {checked} trained accuracy columns at tiny scale with two rows or more, {saturated} have every row "
           f"at or above {SATURATED:g}% and {len(flat) - saturated} have no row distinguishable from chance (each "
           f"row's one-sample t-test over seeds against chance, or where its seeds do not spread the binomial test "
           f"of its test set, the column's rows read at a false discovery rate of q = {Q:g}). Top-5 cells over few "
           f"classes are not read, so they are not counted.", ""]
    if flat:
        rows = [[f"[{f.table}]({f.table}.md)", f.column, f"`{f.dataset}`",
                 f"every row ≥ {SATURATED:g}%" if f.saturated else "no row beyond chance",
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
                     r.a.text if r.a else "—", r.b.text if r.b else "—", r.test.text() if r.test else "—",
                     r.outcome + (f": {r.why}" if r.why else "")])
    lines += [tabulate(body, headers=["table", "column", "ordering", "ours (left)", "ours (right)",
                                      "difference as claimed [95% CI], p", "reading"],
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
    rows = []
    for score in row_scores(read_tracking(source)):
        if score.locality_map:
            rows.append(f"{score.row}: the locality map by construction")
            continue
        test = score.test
        word = "one seed" if test is None else "untested, no spread" if not test.tested else \
            "beyond the baseline" if test.beyond and test.estimate > 0 else "not beyond the baseline"
        rows.append(f"{score.row} {word} ({test.text(2) if test else f'{score.over_baseline.mean:+.2f}'})")
    return ["Motionformer, Figures 1 and 4 (\"the model learns to implicitly track along motion paths\"): the share of "
            "a query's attention that falls on the moving object's true box in later frames, minus the share of the "
            "stronger of two maps with no motion information (the box held where it was at the query's step, or all "
            "mass on the query's own location), in points, one-sample t-test over seeds, Table 4's rows on the SSv2 "
            f"stand-in: {'; '.join(rows)}. [The measure]({ROOT}/docs/attention_tracking.md), [the page]({ROOT}/"
            "reports/generated/attention_tracking.md).", ""]


def _measure_lines(root: Path) -> list[str]:
    """One line each for CAST's window mass and 3D-Deformable's sampling points, from their tracked records."""
    from .attention_measures import (
        LOOKS_ALONG,
        POINT_FIELDS,
        POINTS,
        WINDOW_FIELDS,
        WINDOWS,
        points,
        runs_by_row,
        tracked_records,
        verdict,
    )
    from .attention_tracking import read_attention_record
    from .statistics import against

    windows, point_record = tracked_records(root)
    links = (f"[The measure]({ROOT}/docs/attention_windows_and_points.md), [the page]({ROOT}/reports/generated/"
             "attention_windows_and_points.md).")
    lines = []
    if windows.exists():
        cells = []
        for row, runs in runs_by_row(read_attention_record(windows, WINDOWS.kind, WINDOW_FIELDS)).items():
            for direction, along in LOOKS_ALONG.items():
                if runs[0][direction]["window"] == "space_time":  # the other windows fix the answer
                    excess = points(runs, direction, "share", along, minus=(direction, "chance", along))
                    cells.append(f"{row} {direction.upper()} along {along}: beyond chance "
                                 f"{verdict(against(excess, 0.0), 3)}")
        lines += ["CAST, Figure 3(c) (T2S attends along time, S2T along space): with the paper's windows this holds "
                  "by construction; given a space-time window instead (Table 1(e)), the share each direction puts "
                  f"along its axis, minus the uniform map's, in points, one-sample t-test over seeds: "
                  f"{'; '.join(cells)}. T2S is read at the exchange before the last, whose output a head reads "
                  f"(the last exchange's T2S output reaches none). {links}", ""]
    if point_record.exists():
        cells = []
        for row, runs in runs_by_row(read_attention_record(point_record, POINTS.kind, POINT_FIELDS)).items():
            excess, gain = points(runs, "excess"), points(runs, "offsets_gain")
            cells.append(f"{row}: beyond chance {verdict(against(excess, 0.0))}; the offsets' own gain beyond 0 "
                         f"{verdict(against(gain, 0.0))}")
        lines += ["3D-Deformable, Figures A3-A5 (the deformable attention samples on the person): the share of the "
                  "sampling points inside the person's box, minus the box's share of the frame, in points, one-sample "
                  f"t-test over seeds, Figure A1's 12-frame runs on the PennAction stand-in: {'; '.join(cells)}. "
                  f"{links}", ""]
    return lines


def claims_page_text(results_root: str | Path | None = RESULTS_DIR) -> str:
    """The claims page, from the claims and the records under ``results_root`` (read once: ``one_scan``)."""
    with one_scan():
        return render(evaluate(all_claims(), results_root), paper_pairs(ordered_pairs(results_root)),
                      flat_columns(results_root),
                      figures_section(results_root))


def write_claims_page(results_root: str | Path | None = RESULTS_DIR, path: Path = CLAIMS_PAGE) -> Path:
    from data.atomic_write import atomic_write_text

    atomic_write_text(path, claims_page_text(results_root))
    return path
