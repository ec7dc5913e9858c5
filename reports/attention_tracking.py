"""The tracking score of Motionformer's Figures 1 and 4 (docs/attention_tracking.md), rendered from its tracked
record (``reports/results/<table>/attention_tracking.json``, written by ``python -m experiments attention-score``):
each row's excess over chance, mean ± std over seeds, whether it tracks beyond chance, and which rows differ
beyond noise (``reports/noise.py``)."""

from __future__ import annotations

import json
import math
import statistics
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from data.root_files import read_regular_bytes, unreadable_value
from experiments.harness.attention_score import RECORD_NAME
from experiments.harness.records import DamagedRecordError

from .noise import RULE, column_line
from .records import RESULTS_DIR

TABLE = "mformer_table4"
REPO = Path(__file__).resolve().parents[1]
FIGURES = REPO / "reports" / "generated" / "attention"  # <table>/<row>/<figure>.png, drawn from the tiny runs
RUN_FIELDS = {"row": str, "seed": int, "share": float, "chance": float, "excess": float, "samples": int,
              "queries": int}


@dataclass(frozen=True)
class RowScore:
    """One row's score over its seeds, in percent of the attention (``mean``, ``std``, ``n``: the excess, what
    ``reports.noise`` reads)."""

    row: str
    mean: float
    std: float
    n: int
    share: float
    chance: float
    samples: int

    @property
    def fixed(self) -> bool:
        """The same score for every seed: the map does not depend on the weights (divided attention's temporal
        stage attends to the query's own location only: docs/attention_tracking.md), so nothing was learned."""
        return self.n >= 2 and self.std == 0

    @property
    def beyond_chance(self) -> bool | None:
        """The excess above 0 by two standard errors over seeds; None with one seed or a ``fixed`` score."""
        return None if self.n < 2 or self.fixed else self.mean > 2 * self.std / math.sqrt(self.n)

    @property
    def verdict(self) -> str:
        if self.fixed:
            return "not learned (the same for every seed)"
        return {True: "yes", False: "no", None: "one seed"}[self.beyond_chance]


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
    """Each row's score in percent, rows in the record's order."""
    rows: dict[str, list[dict[str, Any]]] = {}
    for run in record["runs"]:
        rows.setdefault(run["row"], []).append(run)
    scores = []
    for row, runs in rows.items():
        excess = [100 * run["excess"] for run in runs]
        scores.append(RowScore(row, statistics.fmean(excess), statistics.stdev(excess) if len(excess) > 1 else 0.0,
                               len(excess), 100 * statistics.fmean(run["share"] for run in runs),
                               100 * statistics.fmean(run["chance"] for run in runs),
                               sum(run["samples"] for run in runs)))
    return scores


def render(record: dict[str, Any]) -> str:
    """The page's text below its title (``reports.readme`` writes the page): the rows' scores and verdicts."""
    scores = row_scores(record)
    lines = [
        f"Written by `python -m experiments attention-score {record['table']} --seeds N` at commit "
        f"{record['commit']}; the measure is fixed in [{record['definition']}](../../{record['definition']}) before "
        "any result was read.", "",
        f"For queries on the moving thing in the first token step of each validation clip of `{record['dataset']}` "
        f"(the {record['column']} column's stand-in), the share of the last block's head-averaged attention in each "
        "later step that falls on the patches overlapping the thing's true box there, against chance (those "
        "patches' share of the step). Excess = share − chance: 0 is no tracking.", "",
        "| row | excess over chance, % (mean ± std) | seeds | share, % | chance, % | scored clips | beyond chance |",
        "|---|---|---|---|---|---|---|"]
    for score in scores:
        lines.append(f"| {score.row} | {score.mean:+.2f} ± {score.std:.2f} | {score.n} | {score.share:.2f} | "
                     f"{score.chance:.2f} | {score.samples} | {score.verdict} |")
    lines += ["", f"Beyond chance: the mean excess above two standard errors over seeds. Rows compared by {RULE}."]
    fixed = [score.row for score in scores if score.fixed]
    if fixed:
        lines += ["", f"Not learned: {', '.join(fixed)}, whose map is the same whatever the weights (divided "
                  "attention's temporal stage attends to the query's own location in every frame), so its score is "
                  "how often the thing stays on the query's patch; left out of the comparisons."]
    compared = column_line("excess over chance (points)", [(s.row, s) for s in scores if not s.fixed])
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
FIGURE_MARKS = {"mformer_table4": "the cross marks the query, the white outline the patches the score counts as the "
                                  "moving thing"}


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
                  f"{FIGURE_MARKS.get(table, 'the cross marks the query')}).", ""]
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


__all__ = ["FIGURE_SOURCES", "RowScore", "figure_lines", "read_attention_record", "read_tracking", "render",
           "row_scores", "tracked_record", "tracking_text"]
