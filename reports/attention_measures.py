"""CAST Figure 3(c) and 3D-Deformable Figures A3-A5, measured (docs/attention_windows_and_points.md), rendered from
their tracked records (``reports/results/cast_table1e/attention_windows.json`` and
``reports/results/d3da_figureA1/attention_points.json``, written by ``python -m experiments attention-score``):
each row's excess over chance, mean ± std over seeds, and whether it is beyond chance by the reports' rule."""

from __future__ import annotations

import math
import statistics
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from experiments.harness.attention_measures import PARTS
from experiments.harness.attention_score import MEASURES

from .attention_tracking import figure_lines, read_attention_record
from .records import RESULTS_DIR

WINDOWS, POINTS = (next(m for m in MEASURES if m.kind == kind) for kind in ("attention_windows", "attention_points"))
WINDOWS_TABLE, POINTS_TABLE = "cast_table1e", "d3da_figureA1"
# What Figure 3(c) says each direction looks along, and the window shape that fixes it whatever the weights.
LOOKS_ALONG = {"t2s": "time", "s2t": "space"}
FIXED_WINDOWS = ("time", "space")
WINDOW_FIELDS = {"row": str, "seed": int, "samples": int,
                 **{f"{d}.{kind}.{part}": float for d in LOOKS_ALONG for kind in ("share", "chance") for part in PARTS},
                 **{f"{d}.window": str for d in LOOKS_ALONG}}
POINT_FIELDS = {"row": str, "seed": int, "samples": int, "share": float, "chance": float, "excess": float,
                "reference_share": float, "reference_chance": float, "reference_excess": float, "offsets_gain": float}


@dataclass(frozen=True)
class Spread:
    """A value over seeds, in points (``mean``, ``std``, ``n``: what ``reports.noise`` reads)."""

    mean: float
    std: float
    n: int

    @classmethod
    def of(cls, values: list[float]) -> Spread:
        points = [100 * v for v in values]
        return cls(statistics.fmean(points), statistics.stdev(points) if len(points) > 1 else 0.0, len(points))

    @property
    def beyond_zero(self) -> bool | None:
        """Above 0 by two standard errors over seeds; None with one seed."""
        return None if self.n < 2 else self.mean > 2 * self.std / math.sqrt(self.n)

    def text(self, digits: int = 2) -> str:
        return f"{self.mean:+.{digits}f} ± {self.std:.{digits}f}"


VERDICT = {True: "yes", False: "no", None: "one seed"}


def runs_by_row(record: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    rows: dict[str, list[dict[str, Any]]] = {}
    for run in record["runs"]:
        rows.setdefault(run["row"], []).append(run)
    return rows


def window_lines(record: dict[str, Any]) -> list[str]:
    """CAST: each row's T2S share along time and S2T share along space against chance, then every part's share."""
    lines = ["| row | seeds | T2S window | T2S along time, % (chance) | excess | S2T window | S2T along space, % "
             "(chance) | excess | beyond chance |", "|---|---|---|---|---|---|---|---|---|"]
    parts = ["| row | direction | window | " + " | ".join(f"{p}, % (chance)" for p in PARTS) + " |",
             "|---|---|---|" + "---|" * len(PARTS)]
    for row, runs in runs_by_row(record).items():
        cells, verdicts = [], []
        for direction, along in LOOKS_ALONG.items():
            window = runs[0][direction]["window"]
            share = Spread.of([run[direction]["share"][along] for run in runs])
            chance = 100 * runs[0][direction]["chance"][along]
            excess = Spread.of([run[direction]["share"][along] - run[direction]["chance"][along] for run in runs])
            cells += [f"`{window}`", f"{share.mean:.2f} ({chance:.2f})", excess.text(3)]  # small: 3 decimals
            verdicts.append(f"{direction.upper()} by construction" if window in FIXED_WINDOWS
                            else f"{direction.upper()} {VERDICT[excess.beyond_zero]}")
            shares = [f"{Spread.of([run[direction]['share'][p] for run in runs]).mean:.2f} "
                      f"({100 * runs[0][direction]['chance'][p]:.2f})" for p in PARTS]
            parts.append(f"| {row} | {direction.upper()} | `{window}` | " + " | ".join(shares) + " |")
        lines.append(f"| {row} | {len(runs)} | " + " | ".join(cells) + f" | {'; '.join(verdicts)} |")
    return lines + ["", "Every part of each direction's weights (own token, along time, along space, elsewhere), "
                        "mean over seeds, beside the uniform map's:", "", *parts]


def point_lines(record: dict[str, Any]) -> list[str]:
    """3D-Deformable: each row's sampling points on the person against chance, and the offsets' own gain."""
    lines = ["| row | seeds | share on the person, % | chance, % | excess | beyond chance | reference points' "
             "excess | offsets' gain | gain beyond 0 |", "|---|---|---|---|---|---|---|---|---|"]
    for row, runs in runs_by_row(record).items():
        excess, gain = (Spread.of([run[name] for run in runs]) for name in ("excess", "offsets_gain"))
        reference = Spread.of([run["reference_excess"] for run in runs])
        lines.append(f"| {row} | {len(runs)} | {100 * statistics.fmean(r['share'] for r in runs):.2f} | "
                     f"{100 * statistics.fmean(r['chance'] for r in runs):.2f} | {excess.text()} | "
                     f"{VERDICT[excess.beyond_zero]} | {reference.text()} | {gain.text()} | "
                     f"{VERDICT[gain.beyond_zero]} |")
    return lines


def _section(title: str, record: dict[str, Any] | None, missing: str, intro: str, body: list[str]) -> list[str]:
    if record is None:
        return [f"## {title}", "", missing, ""]
    limit = [f"Only the first {record['sample_limit']} test videos of each run were scored."] \
        if record.get("sample_limit") else []
    return [f"## {title}", "", f"Written by `python -m experiments attention-score {record['table']}` at commit "
            f"{record['commit']}, on `{record['dataset']}` (column {record['column']}). {intro}", "",
            *body, "", *limit, *figure_lines(record["table"])]


WINDOWS_INTRO = ("For every query of the last block's T2S and S2T, the share of its weights on keys along time (its "
                 "patch at other steps) or along space (its step at other patches), against the uniform map's share. "
                 "A `time` or `space` window fixes the answer whatever the weights (by construction); a `space_time` "
                 "window leaves it to training.")
# Found when the first record was read, and kept true by tests/experiments/harness/test_attention_measures.py
# (test_the_last_blocks_t2s_receives_no_gradient_with_ek100s_heads); the measure itself was not changed.
LAST_T2S_NOTE = ("Untrained: the last block's T2S. Its output goes to the spatial expert's patch tokens, and with "
                 "EPIC-KITCHENS-100's heads (noun from the spatial CLS token, verb from the mean of the temporal "
                 "tokens) nothing after it reads them, so it receives no gradient and keeps its initial weights: its "
                 "shares are those of the initialisation, not learned.")
POINTS_INTRO = ("The share of the last block's 3DTS sampling points that fall inside the person's box in their "
                "frame, against chance (the box's share of the frame); beside it, the undeformed reference grid's "
                "excess and the offsets' own gain (share − the reference grid's share).")


def measures_text(results_root: str | Path = RESULTS_DIR) -> str:
    """The page's text from the two tracked records, or for each a line saying how to make it."""
    records = {}
    for measure, table in ((WINDOWS, WINDOWS_TABLE), (POINTS, POINTS_TABLE)):
        path = Path(results_root) / table / measure.record_name
        records[measure.kind] = read_attention_record(path, measure.kind, WINDOW_FIELDS if measure is WINDOWS
                                                      else POINT_FIELDS) if path.exists() else None
    lines = [f"The measures are fixed in [{WINDOWS.definition}](../../{WINDOWS.definition}) before any result was "
             f"read. Beyond chance: the mean excess above two standard errors over seeds.", ""]
    lines += _section("CAST Figure 3(c): where T2S and S2T look", records[WINDOWS.kind],
                      f"No tracked record yet: `python -m experiments attention-score {WINDOWS_TABLE} --seeds 3 --out "
                      f"reports/results/{WINDOWS_TABLE}/{WINDOWS.record_name}`.", WINDOWS_INTRO,
                      [*window_lines(records[WINDOWS.kind]), "", LAST_T2S_NOTE] if records[WINDOWS.kind] else [])
    lines += _section("3D-Deformable Figures A2-A5: the sampling points on the person", records[POINTS.kind],
                      f"No tracked record yet: `python -m experiments attention-score {POINTS_TABLE} --seeds 5 --out "
                      f"reports/results/{POINTS_TABLE}/{POINTS.record_name}`.", POINTS_INTRO,
                      point_lines(records[POINTS.kind]) if records[POINTS.kind] else [])
    return "\n".join(textwrap.fill(line, 120, break_long_words=False, break_on_hyphens=False)
                     if line and not line.startswith(("|", "!", "`")) else line for line in lines).rstrip()


def tracked_records(results_root: str | Path = RESULTS_DIR) -> list[Path]:
    return [Path(results_root) / WINDOWS_TABLE / WINDOWS.record_name,
            Path(results_root) / POINTS_TABLE / POINTS.record_name]


__all__ = ["Spread", "measures_text", "runs_by_row", "point_lines", "tracked_records", "window_lines"]
