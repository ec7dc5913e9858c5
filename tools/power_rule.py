"""The tiny design's power rule, computed from the tracked records: test-set sizes, seeds per table, power, cost.

    python -m tools power-rule [--results-dir DIR] [--json FILE]

Every number of the rule (docs/tiny_regime_design.md, amendment 9) comes from the records under ``--results-dir``
(default: the tracked ``reports/results/``), so a reader reruns it on the records the amendment names:
``git archive COMMIT reports/results | tar -x -C /tmp/at`` then ``--results-dir /tmp/at/reports/results``.

- **Test sets.** Per generated stand-in set, the mean over seeds of every cell (a table's row and column, one
  top-1 metric: EPIC's verb, noun and action each) that its tracked tiny records fill; the cell nearest 50% decides,
  so that every cell's binomial standard error sqrt(p(1 - p) / N) is at most ``SE_POINTS`` at the accuracy the
  records show: N = ceil(p(1 - p) / SE²).
- **Seeds.** Per table, the pairs of cells its reports test: every two rows of a column (the report's "which pairs
  differ") and every comparison its paper's claims plan (``experiments.harness.claims``: a figure's columns of
  one row), two cells that are one run left out. Two cells on the same data pair their seeds in the amended design
  (every row runs the same seeds): their spread is the standard deviation of the per-seed differences over the
  seeds both ran, pooled over the table's pairs (each weighted by its n - 1); two cells on different data are
  tested by Welch's test: their spread is the within-cell standard deviation over seeds, pooled over the cells of
  such pairs. The seeds are the fewest n in [``MIN_SEEDS``, ``MAX_SEEDS``] at which ``reports.statistics.power``
  detects ``DIFFERENCE`` points with ``POWER`` (``MAX_SEEDS`` where none does), the larger of the two kinds'.
- **Cost.** A seed's runs at the wall times of their tracked seed-0 records (``reports.readme.seed_runs``, as the
  cost table counts them), plus the test videos the larger set adds (``added_test_seconds``), ``SIDE_BY_SIDE`` at
  a time. Where the rule's n costs more than ``BUDGET_MIN``, the table trains the most seeds that fit, and its
  power at that n is stated.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import subprocess
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tabulate import tabulate

from data.command_line import OneLineParser, path
from experiments.harness.claims import all_claims
from experiments.harness.spec import TableSpec, implemented_tables, table_spec
from experiments.presets import TABLE_BUDGET_MIN
from reports.cells import Cell, aggregate, metric_values
from reports.readme import EXPERIMENTS, SIDE_BY_SIDE, seed_runs
from reports.records import RESULTS_DIR, all_records, one_scan, table_records
from reports.statistics import ALPHA, power

REPO = Path(__file__).resolve().parent.parent
DESIGN = REPO / "docs" / "tiny_regime_design.md"
AMENDMENT_MARKER = "**The power rule, fixed before any run of it**"  # the amendment's heading in ``DESIGN``
SE_POINTS = 0.75  # one cell's binomial standard error, in points, at most
DIFFERENCE, POWER = 2.0, 0.80  # the difference to detect (points) and the power to detect it with, at ALPHA
MIN_SEEDS, MAX_SEEDS = 5, 20
BUDGET_MIN = TABLE_BUDGET_MIN  # a table's default on 2 idle cores
QUICK_START_TABLE = "mformer_table4"  # the README's first command
QUICK_START_BUDGET_MIN = 15.0  # on the slow machine: a 2-vCPU AMD EPYC with AVX2 only
# The slow machine against the one the tracked records ran on: the quick start's `--seeds 3` took 28 min 42 s
# there and 11 min 29 s here (docs/time_on_two_cores.md).
SLOW_MACHINE = 2.5
# The test split each generated set is evaluated on at the end of training, as the design fixed it before the
# amendment: the configuration field that sizes it and its size. A record whose field holds another size is a run
# of the amended design.
DESIGN_TEST_SPLITS = {"synth_objects": ("num_val", 400), "synth_motion_pairs": ("num_val", 400),
                      "synth_verbnoun": ("num_val", 240), "synth_pose": ("num_val", 240),
                      "lra_listops": ("num_test", 500)}
# One test clip's time against a training clip's share of a run, from the profile of the quick start's trajectory
# row (docs/time_on_two_cores.md: 10 epochs of 1,200 training clips, 5 validation passes of 400, a test of 400
# videos x 2 views): the test pass takes 1% of the run, and the loader processes 16%, spread over every clip they
# load.
PROFILE_TRAIN_CLIPS, PROFILE_VALIDATION_CLIPS, PROFILE_TEST_CLIPS = 12_000, 2_000, 800
PROFILE_TEST_SHARE, PROFILE_LOADER_SHARE = 0.01, 0.16
TEST_CLIP_COST = (PROFILE_TEST_SHARE + PROFILE_LOADER_SHARE * PROFILE_TEST_CLIPS
                  / (PROFILE_TRAIN_CLIPS + PROFILE_VALIDATION_CLIPS + PROFILE_TEST_CLIPS)) \
    / (PROFILE_TEST_CLIPS / PROFILE_TRAIN_CLIPS)


def is_top1(metric: str) -> bool:
    """The metrics a test set is sized for: top-1 (a top-5 cell is not read at tiny scale: amendment 5)."""
    return metric == "top1" or metric.endswith("_top1")


def test_split(record: dict[str, Any]) -> tuple[str, int] | None:
    """The configuration field that sizes the split a record of a generated set was tested on, and its size; None
    for a set the design does not size."""
    field = DESIGN_TEST_SPLITS.get(record.get("dataset"), (None,))[0]
    params = ((record.get("config") or {}).get("data") or {}).get("synthetic_params") or {}
    return None if field is None or field not in params else (field, int(params[field]))


def amended(record: dict[str, Any]) -> bool:
    """Whether a record ran at the amended design: a tiny run of a generated set whose test split is not the size
    the design fixed before the amendment."""
    split = test_split(record)
    return record.get("scale") == "tiny" and split is not None and split[1] != DESIGN_TEST_SPLITS[
        record["dataset"]][1]


def test_size(accuracy: float) -> int:
    """The test samples at which a cell of ``accuracy`` (percent) has a binomial standard error of at most
    ``SE_POINTS``."""
    p = accuracy / 100
    return math.ceil(p * (1 - p) / (SE_POINTS / 100) ** 2)


@dataclass(frozen=True)
class SetSize:
    dataset: str
    field: str  # the configuration field that sizes the test split
    today: int
    cells: int
    mean: float  # over every record's top-1 metrics
    low: float  # the cells' range
    high: float
    decisive: float  # the cell nearest 50%
    decisive_metric: str
    size: int


def set_sizes(records: Iterable[dict[str, Any]]) -> list[SetSize]:
    """Per generated set the design sizes: its records' cells (mean over seeds per table, row, column and top-1
    metric), and the test size at the cell nearest 50% (``test_size``)."""
    cells: dict[tuple, list[float]] = defaultdict(list)
    splits: dict[str, set[tuple[str, int]]] = defaultdict(set)
    for r in records:
        split = test_split(r)
        if r["scale"] != "tiny" or split is None:
            continue
        splits[r["dataset"]].add(split)
        for metric, value in r["metrics"].items():
            if is_top1(metric):
                cells[(r["dataset"], r["table"], r["row"], r["column"], metric)].append(float(value))
    out = []
    for dataset in sorted(splits):
        if len(splits[dataset]) != 1:
            raise ValueError(f"{dataset}: its records were tested on splits of several sizes "
                             f"({sorted(splits[dataset])}): the rule reads one design's records")
        ((field, today),) = splits[dataset]
        means = {key[1:]: float(np.mean(v)) for key, v in cells.items() if key[0] == dataset}
        if not means:
            raise ValueError(f"{dataset}: its tracked records hold no top-1 metric")
        every = [v for key, vs in cells.items() if key[0] == dataset for v in vs]
        nearest = min(means, key=lambda key: (abs(means[key] - 50), key))
        out.append(SetSize(dataset, field, today, len(means), float(np.mean(every)), min(means.values()),
                           max(means.values()), means[nearest], nearest[-1], test_size(means[nearest])))
    return out


@dataclass(frozen=True)
class Pool:
    """A pooled standard deviation over seeds: the estimate, its degrees of freedom, the pairs or cells in it."""

    spread: float | None
    df: int
    count: int

    @classmethod
    def of(cls, parts: Sequence[np.ndarray]) -> Pool:
        df = sum(len(p) - 1 for p in parts)
        if df == 0:
            return cls(None, 0, len(parts))
        return cls(math.sqrt(sum((len(p) - 1) * p.var(ddof=1) for p in parts) / df), df, len(parts))


def seeds_for(spread: float | None, paired: bool) -> int | None:
    """The fewest seeds in [MIN_SEEDS, MAX_SEEDS] at which the two-cell test detects ``DIFFERENCE`` with ``POWER``;
    ``MAX_SEEDS`` where none does; None without a spread."""
    if spread is None:
        return None
    if spread == 0:
        return MIN_SEEDS
    return next((n for n in range(MIN_SEEDS, MAX_SEEDS + 1) if power(DIFFERENCE, spread, n, paired) >= POWER),
                MAX_SEEDS)


def power_at(spread: float | None, seeds: int, paired: bool) -> float | None:
    if spread is None or seeds < 2:
        return None
    return 1.0 if spread == 0 else power(DIFFERENCE, spread, seeds, paired)


def tested_pairs(spec: TableSpec, values: dict[str, dict[str, Any]]) -> list[tuple[tuple[str, str], ...]]:
    """The (row, column) pairs of cells the table's reports test: two rows of one column, and each comparison its
    paper's claims plan on it; each pair once."""
    pairs = {}
    for column in dict.fromkeys(c.column for c in spec.metric_columns):
        for a, b in itertools.combinations([row.key for row in spec.rows], 2):
            pairs[frozenset({(a, column), (b, column)})] = ((a, column), (b, column))
    for claim in _claims():
        for test in claim.tests:
            if test.table == spec.table_id:
                for c in test.comparisons():
                    key = frozenset({(c.row, c.column), (c.than_row, c.than_column)})
                    pairs.setdefault(key, ((c.row, c.column), (c.than_row, c.than_column)))
    return [pair for pair in pairs.values() if len(set(pair)) == 2
            and all(isinstance(values.get(row, {}).get(column), Cell) for row, column in pair)]


_claims = functools.cache(all_claims)  # one reading of the claims files for every table


@dataclass(frozen=True)
class TableSeeds:
    table: str
    paired: Pool  # the per-seed differences of pairs on the same data
    welch: Pool  # the cells of pairs on different data
    rule_seeds: int
    seconds: float | None  # a seed's runs, summed, at the records' wall times
    added_seconds: float  # a seed's larger test sets
    budget_seeds: int | None  # the most seeds the budget allows
    seeds: int
    power: float  # the smaller of the two kinds' at ``seeds``
    minutes: float | None  # `run ID --seeds <seeds>`, SIDE_BY_SIDE at a time


def spreads(spec: TableSpec, records: list[dict[str, Any]]) -> tuple[Pool, Pool]:
    """The table's paired and Welch spreads (module docstring), from its tiny records."""
    tiny = [r for r in records if r["scale"] == "tiny"]
    values = metric_values(spec, aggregate(tiny, "tiny"))
    metric = {c.column: c for c in spec.metric_columns}
    runs = defaultdict(set)  # (row, column) -> the experiment keys of the runs that fill it
    for r in tiny:
        runs[(r["row"], r["column"])].add(r.get("_key"))
    differences, welch_cells = [], {}
    for (ra, ca), (rb, cb) in tested_pairs(spec, values):
        a, b = values[ra][ca], values[rb][cb]
        if runs[(ra, metric[ca].run_name)] == runs[(rb, metric[cb].run_name)]:
            continue  # one run in both cells: they cannot differ
        if a.data and a.data == b.data:
            by_a, by_b = dict(zip(a.seeds, a.values)), dict(zip(b.seeds, b.values))
            both = sorted(set(by_a) & set(by_b))
            if len(both) >= 2:
                differences.append(np.array([by_a[s] - by_b[s] for s in both]))
            continue
        for key, cell in (((ra, ca), a), ((rb, cb), b)):
            if cell.n >= 2:
                welch_cells[key] = np.asarray(cell.values, dtype=np.float64)
    return Pool.of(differences), Pool.of(list(welch_cells.values()))


def added_test_seconds(record: dict[str, Any], size: int) -> float:
    """What testing on ``size`` samples instead of the record's own test split adds to its run: a run that only
    evaluates scales with its test set; a trained run adds ``TEST_CLIP_COST`` of a training clip's share of its
    wall time for each added test clip (its views per video)."""
    split = test_split(record)
    added = size - split[1] if split else 0
    if added <= 0:
        return 0.0
    wall = float(record["wall_time_s"])
    perf = record.get("perf")
    if not perf:
        return wall * added / split[1]
    config = record["config"]
    views = int(config["data"]["test_clips"]) * int(config["data"]["test_crops"])
    trained_clips = int(perf["train_steps"]) * int(config["data"]["batch_size"])
    return added * views * TEST_CLIP_COST * wall / trained_clips


def table_seeds(spec: TableSpec, results_root: Path, sizes: dict[str, int]) -> TableSeeds | None:
    """The rule applied to one table (module docstring); None for a table without a tested pair of seeds."""
    paired, welch = spreads(spec, table_records(spec, None, results_root).records)
    wanted = [n for n in (seeds_for(paired.spread, True), seeds_for(welch.spread, False)) if n is not None]
    if not wanted:
        return None
    rule = max(wanted)
    runs = seed_runs(spec, results_root)
    seconds = runs.seconds if runs is not None else None
    added = sum(added_test_seconds(r, sizes.get(r["dataset"], 0)) for r in runs.records.values()) if seconds else 0.0
    budget = None if seconds is None else int(BUDGET_MIN * 60 * SIDE_BY_SIDE // (seconds + added))
    seeds = rule if budget is None else min(rule, budget)
    powers = [p for p in (power_at(paired.spread, seeds, True), power_at(welch.spread, seeds, False)) if p is not None]
    minutes = None if seconds is None else (seconds + added) * seeds / SIDE_BY_SIDE / 60
    return TableSeeds(spec.table_id, paired, welch, rule, seconds, added, budget, seeds,
                      min(powers) if powers else math.nan, minutes)


def tiny_tables() -> list[TableSpec]:
    """Every table whose report tests pairs of cells, and every own experiment with a page that does
    (``reports.readme.EXPERIMENTS``), that runs at tiny scale."""
    return [spec for spec in map(table_spec, [*implemented_tables(), *EXPERIMENTS]) if "tiny" in spec.scales]


def records_commit(results_root: Path) -> dict[str, Any]:
    """The last commit that changed the records read, and whether the folder differs from it (git's answer; an
    unknown commit where the folder is not in a git checkout)."""
    def git(*args: str) -> str | None:
        done = subprocess.run(["git", *args], cwd=results_root, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("log", "-1", "--format=%H", "--", ".")
    changed = git("status", "--porcelain", "--", ".")
    return {"commit": commit or "unknown", "changed_since": bool(changed) if commit else None}


def compute(results_root: Path = RESULTS_DIR) -> dict[str, Any]:
    """Every number of the rule, from the records under ``results_root``."""
    with one_scan():
        sets = set_sizes(all_records(None, results_root).records)
        sizes = {s.dataset: s.size for s in sets}
        tables, skipped = [], []
        for spec in tiny_tables():
            found = table_seeds(spec, results_root, sizes)
            (tables if found is not None else skipped).append(found or spec.table_id)
    return {"records": records_commit(results_root), "results_dir": str(results_root),
            "rule": {"se_points": SE_POINTS, "difference": DIFFERENCE, "power": POWER, "alpha": ALPHA,
                     "seeds": [MIN_SEEDS, MAX_SEEDS], "budget_min": BUDGET_MIN, "side_by_side": SIDE_BY_SIDE,
                     "test_clip_cost": TEST_CLIP_COST},
            "sets": [asdict(s) for s in sets],
            "tables": [{**asdict(t), "paired": asdict(t.paired), "welch": asdict(t.welch)} for t in tables],
            "without_pairs": skipped,
            "quick_start": quick_start(tables)}


def quick_start(tables: list[TableSeeds]) -> dict[str, Any] | None:
    """The quick start's seeds: as many as fit ``QUICK_START_BUDGET_MIN`` on the slow machine at its table's cost
    a seed, at least one; None without the table's records."""
    quick = next((t for t in tables if t.table == QUICK_START_TABLE and t.seconds is not None), None)
    if quick is None:
        return None
    one_seed = SLOW_MACHINE * (quick.seconds + quick.added_seconds) / SIDE_BY_SIDE / 60
    return {"table": QUICK_START_TABLE, "slow_machine": SLOW_MACHINE, "one_seed_min_slow": one_seed,
            "budget_min": QUICK_START_BUDGET_MIN, "seeds": max(1, int(QUICK_START_BUDGET_MIN // one_seed))}


def _number(value: float | None, digits: int = 1) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def render(result: dict[str, Any]) -> str:
    """The rule's numbers as two tables and the quick start's line."""
    sets = tabulate([[s["dataset"], s["field"], s["today"], s["cells"], _number(s["mean"]),
                      f"{s['low']:.1f}–{s['high']:.1f}", f"{s['decisive']:.1f} ({s['decisive_metric']})", s["size"]]
                     for s in result["sets"]],
                    headers=["set", "field", "today", "cells", "mean top-1", "cells' range",
                             "nearest 50%", f"N (SE ≤ {SE_POINTS:g})"], tablefmt="github")
    rows = []
    for t in result["tables"]:
        kinds = []
        for kind, pool in (("paired", t["paired"]), ("Welch", t["welch"])):
            if pool["spread"] is not None:
                kinds.append(f"{kind} {pool['spread']:.2f} ({pool['count']}, {pool['df']} df)")
        rows.append([t["table"], "; ".join(kinds), t["rule_seeds"], _number(t["seconds"] and t["seconds"] / 60),
                     _number(t["added_seconds"] / 60), "—" if t["budget_seeds"] is None else t["budget_seeds"],
                     t["seeds"], f"{100 * t['power']:.0f}%", _number(t["minutes"])])
    tables = tabulate(rows, headers=["table", "spread (pairs or cells, df)", "rule", "a seed (min)",
                                     "+ test (min)", "budget allows", "seeds", "power", "min (2 side by side)"],
                      tablefmt="github")
    quick, records = result["quick_start"], result["records"]
    changed = " (the folder differs from it)" if records["changed_since"] else ""
    quick_line = f"Quick start: no records of {QUICK_START_TABLE}" if quick is None else (
        f"Quick start ({quick['table']}): one seed ≈ {quick['one_seed_min_slow']:.1f} min on the slow machine "
        f"(× {quick['slow_machine']:g}); {quick['budget_min']:g} min allow {quick['seeds']} seed(s)")
    return (f"Records: {result['results_dir']} at commit {records['commit']}{changed}\n\n{sets}\n\n{tables}\n\n"
            f"Without a tested pair of seeds: {', '.join(result['without_pairs']) or 'none'}\n{quick_line}")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results-dir", type=path("a folder of tracked records"), default=RESULTS_DIR,
                        help="the records to read (default: reports/results/)")
    parser.add_argument("--json", type=path("a JSON file to write"), default=None,
                        help="also write every number as JSON")
    args = parser.parse_args(argv)
    if not args.results_dir.is_dir():
        raise FileNotFoundError(f"{args.results_dir}: no folder of records")
    result = compute(args.results_dir.resolve())
    print(render(result))
    if args.json is not None:
        from data.atomic_write import atomic_write_text

        atomic_write_text(args.json, json.dumps(result, indent=1) + "\n")
    return result
