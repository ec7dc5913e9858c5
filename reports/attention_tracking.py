"""The tracking score of Motionformer's Figures 1 and 4 (docs/attention_tracking.md), rendered from its tracked
record (``reports/results/<table>/attention_tracking.json``, written by ``python -m experiments attention-score``):
each row's excess over its stronger no-motion baseline and over uniform, mean ± std over seeds, whether it tracks
beyond the baseline (the one-sample t-test of ``reports.statistics``), and which rows differ beyond noise (the
two-row test, Benjamini-Hochberg over the rows' pairs)."""

from __future__ import annotations

import json
import math
import statistics
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from data.root_files import read_regular_bytes, unreadable_value
from experiments.harness.records import DamagedRecordError
from experiments.mformer.figures import RECORD_NAME

from .records import RESULTS_DIR
from .statistics import RULE, Sample, Test, against, column_line, table_pairs

TABLE = "mformer_table4"
REPO = Path(__file__).resolve().parents[1]
FIGURES = REPO / "reports" / "generated" / "attention"  # <table>/<row>/<figure>.png, drawn from the tiny runs
RUN_FIELDS = {"row": str, "seed": int, "share": float, "chance": float, "excess": float, "samples": int,
              "queries": int, "static_share": float, "locality_share": float, "baseline": str,
              "baseline_share": float, "excess_over_baseline": float}


@dataclass(frozen=True)
class RowScore:
    """One row's score over its seeds, in points of the attention: ``over_baseline`` the excess over each run's
    stronger no-motion baseline (the headline), ``over_uniform`` the excess over chance; ``test`` the one-sample
    t-test of ``over_baseline`` against 0 (None with one seed)."""

    row: str
    over_baseline: Sample
    over_uniform: Sample
    share: float
    chance: float
    baselines: dict[str, float] = field(default_factory=dict)  # name -> mean share, of the baselines its runs took
    samples: int = 0
    locality_map: bool = False  # every run's map is the locality map (divided attention's temporal stage)
    test: Test | None = None

    @property
    def verdict(self) -> str:
        if self.locality_map:
            return "is the locality map (by construction; not tested)"
        if self.test is None:
            return "one seed"
        if not self.test.tested:
            return "no spread over seeds (untested)"
        return "yes" if self.test.beyond and self.test.estimate > 0 else "no"


def _field(run: Any, dotted: str) -> Any:
    for name in dotted.split("."):
        run = run.get(name) if isinstance(run, dict) else None
    return run


def read_attention_record(path: Path, kind: str, fields: dict[str, type]) -> dict[str, Any]:
    """A record of ``python -m experiments attention-score`` of ``kind``, each run's ``fields`` (dotted names for
    nested ones) checked; a damaged one is one line naming the file and the field."""
    try:
        record = json.loads(read_regular_bytes(path).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DamagedRecordError(f"{path}: not readable JSON ({err})") from None
    except ValueError as err:  # a special file, one too large, or a number past the parser's digit limit
        raise DamagedRecordError(f"{path}: {unreadable_value(err)}") from None
    if not isinstance(record, dict) or record.get("kind") != kind or \
            not isinstance(record.get("runs"), list) or not record["runs"]:
        raise DamagedRecordError(f"{path}: not an {kind.replace('_', '-')} record (expected `kind` and a list of "
                                 f"`runs`)")
    for name in ("table", "dataset", "column", "commit", "definition"):
        if not isinstance(record.get(name), str):
            raise DamagedRecordError(f"{path}: {name} must be a string, got {record.get(name)!r:.40}")
    for index, run in enumerate(record["runs"]):
        for name, expected in fields.items():
            value = _field(run, name)
            fits = isinstance(value, (int, float) if expected is float else expected) and not isinstance(value, bool)
            if not fits or (expected is float and not math.isfinite(value)):
                raise DamagedRecordError(f"{path}: runs[{index}].{name} must be a finite {expected.__name__}, "
                                         f"got {value!r:.40}")
    return record


def read_tracking(path: Path) -> dict[str, Any]:
    """The tracking record, each run's fields checked; a damaged one is one line naming the file and the field."""
    return read_attention_record(path, "attention_tracking", RUN_FIELDS)


def row_scores(record: dict[str, Any]) -> list[RowScore]:
    """Each row's score in points, rows in the record's order."""
    rows: dict[str, list[dict[str, Any]]] = {}
    for run in record["runs"]:
        rows.setdefault(run["row"], []).append(run)
    scores = []
    for row, runs in rows.items():
        runs = sorted(runs, key=lambda run: run["seed"])
        seeds, data = [run["seed"] for run in runs], f"{record['dataset']}:{record['column']}"
        over_baseline = Sample.of([100 * run["excess_over_baseline"] for run in runs], seeds, data)
        locality_map = all(run["share"] == run["locality_share"] for run in runs)
        baselines: dict[str, list[float]] = {}
        for run in runs:
            baselines.setdefault(run["baseline"], []).append(100 * run["baseline_share"])
        scores.append(RowScore(row, over_baseline, Sample.of([100 * run["excess"] for run in runs], seeds, data),
                               100 * statistics.fmean(run["share"] for run in runs),
                               100 * statistics.fmean(run["chance"] for run in runs),
                               {name: statistics.fmean(v) for name, v in baselines.items()},
                               sum(run["samples"] for run in runs), locality_map,
                               None if locality_map else against(over_baseline, 0.0)))
    return scores


def kernels_line(record: dict[str, Any]) -> str:
    """Which CPU kernels the scored runs trained with: the same seed trains to other weights on other kernels, so
    the scored runs are the tracked accuracy records' runs only where both name the same kernels."""
    kernels = sorted({str(run["kernels"]) for run in record["runs"] if run.get("kernels", "not recorded")
                      != "not recorded"})
    if not kernels:
        return "The record does not name the CPU kernels its runs trained with."
    return (f"The scored runs trained with {' / '.join(kernels)} CPU kernels (each run's `kernels` in the record); "
            "a seed retrained on other kernels gives other weights.")


def _spread(sample: Sample, digits: int = 2) -> str:
    return f"{sample.mean:+.{digits}f} ± {sample.std:.{digits}f}"


def render(record: dict[str, Any]) -> str:
    """The page's text below its title (``reports.readme`` writes the page): the rows' scores and verdicts."""
    scores = row_scores(record)
    lines = [
        f"Written by `python -m experiments attention-score {record['table']} --seeds N` at commit "
        f"{record['commit']}; the measure is fixed in [{record['definition']}](../../{record['definition']}) before "
        f"any result was read. {kernels_line(record)}", "",
        f"For queries on the moving thing in the first token step of each validation clip of `{record['dataset']}` "
        f"(the {record['column']} column's stand-in), the share of the last block's head-averaged attention in each "
        "later step that falls on the patches overlapping the thing's true box there. Against two maps with no "
        "motion information, scored on the same samples, queries and steps: *static* (the box at the query's step, "
        "held still) and *locality* (all the mass on the query's own location); the stronger of the two is the "
        "run's baseline. Excess over the baseline = share − the baseline's share: above 0, the map follows the "
        "thing better than a map that stays where it was. The excess over uniform (share − chance) is beside it.",
        "",
        "| row | seeds | excess over the baseline, points (mean ± std) | tracks beyond the baseline: difference "
        "[95% CI], p | share, % | baseline, % | excess over uniform | chance, % | scored clips |",
        "|---|---|---|---|---|---|---|---|---|"]
    for score in scores:
        baseline = "; ".join(f"{name} {share:.2f}" for name, share in score.baselines.items())
        test = f" ({score.test.text(2)})" if score.test and score.test.tested else ""
        lines.append(f"| {score.row} | {score.over_baseline.n} | {_spread(score.over_baseline)} | "
                     f"{score.verdict}{test} | {score.share:.2f} | {baseline} | {_spread(score.over_uniform)} | "
                     f"{score.chance:.2f} | {score.samples} |")
    lines += ["", "Tracks beyond the baseline: the one-sample t-test over seeds of the excess over the baseline, "
              f"two-sided at α = 0.05, with a positive mean. Rows compared by {RULE}."]
    fixed = [score.row for score in scores if score.locality_map]
    if fixed:
        lines += ["", f"By construction: {', '.join(fixed)}, whose map is the locality map whatever the weights "
                  "(divided attention's temporal stage attends to the query's own location in every frame), so its "
                  "excess over the locality map is 0 for every seed; left out of the comparisons."]
    column = "excess over the baseline (points)"
    pairs = table_pairs({column: [(s.row, s.over_baseline) for s in scores if not s.locality_map]})
    compared = column_line(column, pairs, digits=2)
    if compared:
        lines += ["", compared]
    if record.get("sample_limit"):
        lines += ["", f"Only the first {record['sample_limit']} validation clips of each run were scored."]
    return "\n".join(textwrap.fill(line, 120, break_long_words=False, break_on_hyphens=False)
                     if not line.startswith("|") else line for line in lines)


def tracking_text(results_root: str | Path = RESULTS_DIR) -> str:
    """The page's text from the tracked record of ``TABLE``, or a line saying how to make one."""
    source = tracked_record(results_root)
    if not source.exists():
        return (f"No tracked record yet: `python -m experiments attention-score {TABLE} --seeds 3 --out "
                f"{source.as_posix()}` on the table's finished runs writes it.")
    return render(read_tracking(source)) + figures_text()


# How each table's committed figures were drawn: the `attention` command's options after the row, from the tiny
# run of seed 0 in the default runs folder (the figures' folder is --out).
FIGURE_SOURCES = {
    "mformer_table4": "--column SSv2 --run runs/mformer_table4/{row}/seed0/tiny-ssv2",
    "cast_table1e": "--run runs/cast_table1e/{row}/seed0/tiny-ek_100",
    "d3da_figureA1": "--column '12 frames' --run runs/d3da_figureA1/{row}/seed0/tiny-12_frames",
}
# What each table's figures mark: Motionformer's generated samples know their moving thing
FIGURE_MARKS = {"mformer_table4": "the cyan cross marks the query, the white outline the patches the score counts as "
                                  "the moving thing",
                "d3da_figureA1": "the cyan cross marks the query; A2's grey joints lie outside the query's windows, "
                                 "A3-A5's points are drawn on the frame each samples"}
# How every figure colours attention (experiments/harness/attention_figures.py)
SCALE_NOTE = ("each weight divided by the uniform map's, on one diverging scale a figure, its colour bar beside it: "
              "white is uniform, red above, blue below")


def figure_lines(table: str) -> list[str]:
    """The committed figures of ``table``'s tiny runs (``FIGURES/<table>/<row>/*.png``), each row's with the command
    that drew them; [] without any."""
    lines = []
    for folder in sorted({png.parent for png in FIGURES.glob(f"{table}/*/*.png")}):
        row = folder.name
        lines += [f"![{row}]({png.relative_to(FIGURES.parent).as_posix()})\n" for png in sorted(folder.glob("*.png"))]
        source = FIGURE_SOURCES[table].format(row=row)
        lines += [f"`python -m experiments attention {table} --rows {row} {source} --out "
                  f"{folder.relative_to(REPO).as_posix()}` (validation sample 0; "
                  f"{FIGURE_MARKS.get(table, 'the cyan cross marks the query')}; {SCALE_NOTE}).", ""]
    return lines


def figures_text() -> str:
    """The committed figures of Table 4's tiny runs, each with the command that drew it."""
    lines = figure_lines(TABLE)
    if not lines:
        return ""
    heading = "## Figures 1 and 4 in their layout (seed 0, last block, mean over heads)"
    return f"\n\n{heading}\n\n" + "\n".join(lines).rstrip()


def tracked_record(results_root: str | Path = RESULTS_DIR) -> Path:
    return Path(results_root) / TABLE / RECORD_NAME


__all__ = ["FIGURE_SOURCES", "RowScore", "figure_lines", "kernels_line", "read_attention_record", "read_tracking",
           "render", "row_scores", "tracked_record", "tracking_text"]
