"""``python -m experiments attention-score TABLE``: the tracking score of docs/attention_tracking.md over a table's
trained runs, one record for the table.

Each run of the scored column (the one on a set that records its moving thing's boxes: ``synth_motion_pairs``) must
be finished in the runs folder (``RunDir.check``: its record written, for this run and this configuration); its last
checkpoint is loaded into the row's model, and every validation sample of the column's generated set is scored
(``attention_tracking.sample_tracking``). The record keeps each run's share, chance, excess and counts, the commit
and the definition; ``reports build`` renders it (reports/attention_tracking.py) once it is tracked under
``reports/results/<table>/`` (``--out``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time
from pathlib import Path
from typing import Any

from data.command_line import count

from .spec import SCALES

DEFINITION = "docs/attention_tracking.md"
BOXED_SETS = ("synth_motion_pairs",)  # generated sets whose generator gives the moving thing's box per frame
RECORD_NAME = "attention_tracking.json"  # under <runs-dir>/reports/<table>/ (default) or reports/results/<table>/


class NotScoredError(ValueError):
    """A table without a column on a boxed set, or a run that is not finished: nothing to score."""


def scored_runs(table: str, scale: str, rows: list[str] | None, seeds: int) -> list[Any]:
    """The table's runs on a boxed set (``BOXED_SETS``), rows in the paper's order."""
    from .plan import resolve_runs

    configs = [cfg for cfg in resolve_runs(table, scale, rows, seeds) if cfg.data.dataset in BOXED_SETS]
    if not configs:
        raise NotScoredError(f"{table}: no column on a set that records its moving thing's boxes "
                             f"({', '.join(BOXED_SETS)}); the tracking score reads Motionformer's Table 4")
    return configs


def score_run(cfg: Any, runs_root: Path, limit: int | None = None,
              prepared: dict[tuple, list] | None = None) -> dict[str, Any]:
    """The tracking score of one finished run: the means over its validation samples that have queries.
    ``prepared``: the clips and boxes already made for other runs, by the data options and patch grid that make
    them (``attention_tracking.prepared_sample``: rendering a sample costs far more than a tiny model's forward)."""
    import torch

    from data.synthetic import synthetic_params

    from .attention import data_classes, load_state_file
    from .attention_tracking import clip_tracking, prepared_sample
    from .run_dir import RunDir
    from .tasks import build_model

    run = RunDir.of(cfg, runs_root)
    if run.check(cfg, runs_root).state != "finished":
        raise NotScoredError(f"{run.path}: not a finished run of {cfg.table}/{cfg.row}/{cfg.column} seed {cfg.seed}; "
                             f"train it first (`python -m experiments run {cfg.table} --rows {cfg.row}`)")
    model = build_model(cfg, data_classes(cfg))
    load_state_file(model, run.last_checkpoint)
    model.eval()
    samples = synthetic_params(**(cfg.data.synthetic_params or {}))["num_val"]
    samples = min(samples, limit) if limit else samples
    embed = model.patch_embed
    key = (json.dumps(dataclasses.asdict(cfg.data), sort_keys=True, default=str), embed.tubelet_size,
           tuple(embed.grid_size), embed.patch_size)
    prepared = {} if prepared is None else prepared
    with torch.inference_mode():
        clips = prepared.setdefault(key, [])
        clips += [prepared_sample(model, cfg, index) for index in range(len(clips), samples)]
        scores = [clip_tracking(model, *clip) for clip in clips[:samples]]
    kept = [s for s in scores if s["queries"]]
    mean = {name: statistics.fmean(s[name] for s in kept) if kept else None for name in ("share", "chance", "excess")}
    return {"row": cfg.row, "column": cfg.column, "seed": cfg.seed, "run": run.relative_to(runs_root), **mean,
            "samples": len(kept), "samples_without_queries": len(scores) - len(kept),
            "queries": sum(s["queries"] for s in kept)}


def score_table(table: str, scale: str, rows: list[str] | None, seeds: int, runs_root: Path,
                limit: int | None = None) -> dict[str, Any]:
    """The record of a table: every scored run (``score_run``), the commit and the definition."""
    from .provenance import git_commit

    configs = scored_runs(table, scale, rows, seeds)
    runs, prepared = [], {}
    for cfg in configs:
        start = time.perf_counter()
        runs.append(score_run(cfg, runs_root, limit, prepared))
        print(f"  {cfg.row} seed {cfg.seed}: excess {runs[-1]['excess']:+.4f} over {runs[-1]['samples']} samples "
              f"({time.perf_counter() - start:.0f} s)", flush=True)
    return {"kind": "attention_tracking", "table": table, "scale": scale, "column": configs[0].column,
            "dataset": configs[0].data.dataset, "definition": DEFINITION, "commit": git_commit(), "sample_limit": limit,
            "runs": runs}


def updated(record: dict[str, Any], old_path: Path) -> dict[str, Any]:
    """``record`` with the runs of ``old_path``'s record that it does not score again (rows scored with another
    seed count: Table 4 tracks 5 seeds of some rows, 3 of others); a record of another table, column, scale,
    definition or sample limit is refused, not mixed in."""
    from .records import read_json

    old = read_json(old_path, "delete it or write to another --out")
    same = ("kind", "table", "scale", "column", "dataset", "definition", "sample_limit")
    if not isinstance(old, dict) or any(old.get(key) != record[key] for key in same) or \
            not isinstance(old.get("runs"), list):
        raise NotScoredError(f"{old_path}: not a record of the same score ({', '.join(same)}); --update adds only "
                             f"to one")
    scored = {run["row"] for run in record["runs"]}
    kept = [run for run in old["runs"] if not (isinstance(run, dict) and run.get("row") in scored)]
    commits = sorted({old.get("commit"), record["commit"]} - {None})
    return {**record, "commit": ", ".join(commits), "runs": kept + record["runs"]}


def cmd_attention_score(args: argparse.Namespace) -> int:
    from data.atomic_write import atomic_write_text

    runs_root = Path(args.runs_dir)
    out = Path(args.out) if args.out else runs_root / "reports" / args.table / RECORD_NAME
    if args.update and not out.is_file():
        raise NotScoredError(f"--update: {out} is not a record to update")
    record = score_table(args.table, args.scale, args.rows, args.seeds, runs_root, args.limit)
    if args.update:
        record = updated(record, out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, json.dumps(record, indent=1) + "\n")
    print(out)
    return 0


def add_command(sub: Any) -> None:
    """Adds ``attention-score`` to ``python -m experiments``."""
    parser = sub.add_parser("attention-score", help="the tracking score of Motionformer's Figures 1 and 4 over a "
                                                    "table's trained runs (docs/attention_tracking.md)")
    parser.add_argument("table")
    parser.add_argument("--rows", nargs="+", metavar="ROW", help="the rows scored (default: all)")
    parser.add_argument("--scale", choices=SCALES, default="tiny")
    parser.add_argument("--seeds", type=count(1, 100, "a seed count"), default=1, help="seeds 0 to N-1 (default 1)")
    parser.add_argument("--runs-dir", default="runs")
    parser.add_argument("--limit", type=count(1, 100_000, "a sample count"),
                        help="score only the first N validation samples of each run (a quick look; the record says so)")
    parser.add_argument("--out", metavar="FILE", help=f"the record (default <runs-dir>/reports/<table>/{RECORD_NAME}; "
                                                      f"tracked: reports/results/<table>/{RECORD_NAME})")
    parser.add_argument("--update", action="store_true",
                        help="keep the other rows of the record at --out (rows scored over another seed count)")
    parser.set_defaults(fn=cmd_attention_score)


__all__ = ["NotScoredError", "add_command", "score_run", "score_table"]
