"""CAST Figure 3(c) and 3D-Deformable Figures A3-A5, measured (docs/attention_windows_and_points.md), rendered from
their tracked records (``reports/results/cast_table1e/attention_windows.json`` and
``reports/results/d3da_figureA1/attention_points.json``, written by ``python -m experiments attention-score``):
each row's excess over chance, mean ± std over seeds, and whether it is beyond chance by the one-sample t-test of
``reports.statistics`` (its difference, 95% interval and p beside the word)."""

from __future__ import annotations

import statistics
import textwrap
from pathlib import Path
from typing import Any

from experiments.cast.figures import PARTS, WINDOWS
from experiments.d3da.figures import POINTS

from .attention_tracking import figure_lines, kernels_line, read_attention_record
from .records import RESULTS_DIR
from .statistics import Sample, Test, against

WINDOWS_TABLE, POINTS_TABLE = "cast_table1e", "d3da_figureA1"
# What Figure 3(c) says each direction looks along, and the window shape that fixes it whatever the weights.
LOOKS_ALONG = {"t2s": "time", "s2t": "space"}
FIXED_WINDOWS = ("time", "space")
WINDOW_FIELDS = {"row": str, "seed": int, "samples": int,
                 **{f"{d}.{kind}.{part}": float for d in LOOKS_ALONG for kind in ("share", "chance") for part in PARTS},
                 **{f"{d}.window": str for d in LOOKS_ALONG}, **{f"{d}.exchange": int for d in LOOKS_ALONG}}
POINT_FIELDS = {"row": str, "seed": int, "samples": int, "share": float, "chance": float, "excess": float,
                "reference_share": float, "reference_chance": float, "reference_excess": float, "offsets_gain": float}


def points(runs: list[dict[str, Any]], *path: str, minus: tuple[str, ...] = ()) -> Sample:
    """The value at ``path`` of each run (less the value at ``minus``), in points, by seed."""
    def at(run: dict[str, Any], keys: tuple[str, ...]) -> float:
        for key in keys:
            run = run[key]
        return float(run)

    runs = sorted(runs, key=lambda run: run["seed"])
    return Sample.of([100 * (at(run, path) - (at(run, minus) if minus else 0.0)) for run in runs],
                     [run["seed"] for run in runs])


def spread_text(sample: Sample, digits: int = 2) -> str:
    return f"{sample.mean:+.{digits}f} ± {sample.std:.{digits}f}"


def verdict(test: Test | None, digits: int = 2) -> str:
    """"yes" / "no" beyond chance by the one-sample t-test, with its difference, interval and p."""
    if test is None:
        return "one seed"
    if not test.tested:
        return "no spread over seeds (untested)"
    return f"{'yes' if test.beyond and test.estimate > 0 else 'no'} ({test.text(digits)})"


def runs_by_row(record: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    rows: dict[str, list[dict[str, Any]]] = {}
    for run in record["runs"]:
        rows.setdefault(run["row"], []).append(run)
    return rows


def window_lines(record: dict[str, Any]) -> list[str]:
    """CAST: each row's T2S share along time and S2T share along space against chance, every seed's share where a
    window fixes the answer, then every part's share."""
    lines = ["| row | seeds | direction | exchange | window | share along its axis, % (each seed) | chance, % | "
             "excess, points (mean ± std) | beyond chance |", "|---|---|---|---|---|---|---|---|---|"]
    parts = ["| row | direction | window | " + " | ".join(f"{p}, % (chance)" for p in PARTS) + " |",
             "|---|---|---|" + "---|" * len(PARTS)]
    for row, runs in runs_by_row(record).items():
        for direction, along in LOOKS_ALONG.items():
            window = runs[0][direction]["window"]
            share = points(runs, direction, "share", along)
            chance = 100 * runs[0][direction]["chance"][along]
            excess = points(runs, direction, "share", along, minus=(direction, "chance", along))
            shown = "by construction (not tested)" if window in FIXED_WINDOWS else verdict(against(excess, 0.0), 3)
            lines.append(f"| {row} | {len(runs)} | {direction.upper()} along {along} | "
                         f"{runs[0][direction]['exchange']} | `{window}` | "
                         f"{' / '.join(f'{v:.2f}' for v in share.values)} | {chance:.2f} | {spread_text(excess, 3)} | "
                         f"{shown} |")
            shares = [f"{points(runs, direction, 'share', p).mean:.2f} "
                      f"({100 * runs[0][direction]['chance'][p]:.2f})" for p in PARTS]
            parts.append(f"| {row} | {direction.upper()} | `{window}` | " + " | ".join(shares) + " |")
    return lines + ["", "Every part of each direction's weights (own token, along time, along space, elsewhere), "
                        "mean over seeds, beside the uniform map's:", "", *parts]


def point_lines(record: dict[str, Any]) -> list[str]:
    """3D-Deformable: each row's sampling points on the person against chance, and the offsets' own gain."""
    lines = ["| row | seeds | share on the person, % | chance, % | excess, points | beyond chance | reference "
             "points' excess | offsets' gain, points | gain beyond 0 |", "|---|---|---|---|---|---|---|---|---|"]
    for row, runs in runs_by_row(record).items():
        excess, gain, reference = (points(runs, name) for name in ("excess", "offsets_gain", "reference_excess"))
        lines.append(f"| {row} | {len(runs)} | {100 * statistics.fmean(r['share'] for r in runs):.2f} | "
                     f"{100 * statistics.fmean(r['chance'] for r in runs):.2f} | {spread_text(excess)} | "
                     f"{verdict(against(excess, 0.0))} | {spread_text(reference)} | {spread_text(gain)} | "
                     f"{verdict(against(gain, 0.0))} |")
    return lines


def _section(title: str, record: dict[str, Any] | None, missing: str, intro: str, body: list[str]) -> list[str]:
    if record is None:
        return [f"## {title}", "", missing, ""]
    limit = [f"Only the first {record['sample_limit']} test videos of each run were scored."] \
        if record.get("sample_limit") else []
    return [f"## {title}", "", f"Written by `python -m experiments attention-score {record['table']}` at commit "
            f"{record['commit']}, on `{record['dataset']}` (column {record['column']}). {kernels_line(record)} "
            f"{intro}", "",
            *body, "", *limit, *figure_lines(record["table"])]


WINDOWS_INTRO = ("For every query of T2S and S2T, the share of its weights on keys along time (its patch at other "
                 "steps) or along space (its step at other patches), against the uniform map's share; each direction "
                 "at the last exchange whose output of it is read. A `time` or `space` window fixes which keys a "
                 "query can reach whatever the weights (by construction; every seed's share shown); a `space_time` "
                 "window leaves it to training.")
# Kept true by tests/experiments/harness/test_attention_measures.py
# (test_the_last_blocks_t2s_receives_no_gradient_with_ek100s_heads).
LAST_T2S_NOTE = ("T2S is measured at the exchange before the last: the last exchange's T2S output goes to the spatial "
                 "expert's patch tokens, and with EPIC-KITCHENS-100's heads (noun from the spatial CLS token, verb "
                 "from the mean of the temporal tokens) nothing after it reads them, so it receives no gradient and "
                 "keeps its initial weights, by the authors' design too.")
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
             f"read. Beyond chance: the one-sample t-test over seeds of the excess against 0, two-sided at α = 0.05, "
             f"with a positive mean (`reports/statistics.py`); beside each verdict its difference in points, 95% "
             f"confidence interval and p.", ""]
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


__all__ = ["measures_text", "point_lines", "points", "runs_by_row", "spread_text", "tracked_records", "verdict",
           "window_lines"]
