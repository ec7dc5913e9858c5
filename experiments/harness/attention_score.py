"""``python -m experiments attention-score TABLE``: a measure of the papers' attention figures over a table's trained
runs, one record for the table. Each measure is its paper's (``experiments/<paper>/figures.py``, registered with its
figures: ``attention.register_figures``), fixed in its page before any result was read: Motionformer's Table 4
(Figures 1 and 4), CAST's Table 1(e) (Figure 3(c)), 3D-Deformable's Figure A1 runs (Figures A3-A5).

Each scored run must be finished in the runs folder (``RunDir.check``: its record written, for this run and this
configuration); its last checkpoint is loaded into the row's model. The record keeps each run's values, the commit
and the definition; ``reports build`` renders it (reports/attention_tracking.py, reports/attention_measures.py) once
it is tracked under ``reports/results/<table>/`` (``--out``).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, StrictInt, StrictStr, ValidationError

from data.command_line import count
from data.schemas import describe

from .attention import Measure, registered_figures
from .spec import SCALES


class NotScoredError(ValueError):
    """A table with no scored column, or a run that is not finished: nothing to score."""


def measures() -> list[Measure]:
    """Every paper's measure, in the order its figures are registered."""
    return [figures.measure for figures in registered_figures() if figures.measure is not None]


def measure_of(table: str, scale: str, rows: list[str] | None, seeds: int) -> tuple[Measure, list[Any]]:
    """The measure a table's runs take and the runs it scores, rows in the paper's order."""
    from .plan import resolve_runs

    configs = resolve_runs(table, scale, rows, seeds)
    for measure in measures():
        chosen = [cfg for cfg in configs if measure.selects(cfg)]
        if chosen:
            return measure, chosen
    raise NotScoredError(f"{table}: no run a measure of the papers' figures reads "
                         f"({'; '.join(measure.reads for measure in measures())})")


def trained_model(cfg: Any, runs_root: Path) -> tuple[Any, Any]:
    """(the row's model with the run's last checkpoint, in eval mode; its ``RunDir``); a run that is not finished
    for this configuration is refused."""
    from .row_model import data_classes, load_state_file
    from .run_dir import RunDir
    from .tasks import build_model

    run = RunDir.of(cfg, runs_root)
    if run.check(cfg, runs_root).state != "finished":
        raise NotScoredError(f"{run.path}: not a finished run of {cfg.table}/{cfg.row}/{cfg.column} seed {cfg.seed}; "
                             f"train it first (`python -m experiments run {cfg.table} --rows {cfg.row}`)")
    model = build_model(cfg, data_classes(cfg))
    load_state_file(model, run.checkpoint_inside(runs_root))  # never a link out of the runs folder
    return model.eval(), run


def pipeline_inputs(cfg: Any, model: Any, limit: int | None) -> Iterator[tuple[Any, int]]:
    """The model inputs of the row's test pipeline, batch by batch, the views folded into the batch as the test
    folds them (the task's own data module and LightningModule): yields (inputs, videos in the batch), at most
    ``limit`` videos. The data module is ``row_model.pipeline_data``'s (read in this process, scratch files in a
    temporary folder, never the run's)."""
    from .row_model import pipeline_data
    from .tasks import get_task

    with pipeline_data(cfg) as dm:
        system = get_task(cfg.task).system(cfg, model, dm)
        seen = 0
        for batch in dm.test_dataloader():
            x, views = system.fold_views(system.model_input(batch))
            videos = len(batch["label"]) if not isinstance(batch["label"], dict) else \
                len(next(iter(batch["label"].values())))
            if limit is not None and seen + videos > limit:
                keep = (limit - seen) * (views or 1)
                x = {k: v[:keep] for k, v in x.items()} if isinstance(x, dict) else x[:keep]
                videos = limit - seen
            yield x, videos
            seen += videos
            if limit is not None and seen >= limit:
                return


def score_run(cfg: Any, runs_root: Path, measure: Measure, limit: int | None = None,
              prepared: dict[tuple, list] | None = None) -> dict[str, Any]:
    """``measure`` of one finished run, with the run's row, column, seed, folder and CPU kernels."""
    import torch

    model, run = trained_model(cfg, runs_root)
    provenance = run.finished_record(cfg, runs_root).get("provenance") or {}
    with torch.inference_mode():
        values = measure.score(cfg, model, limit, {} if prepared is None else prepared)
    # the CPU kernels the run trained with: the same seed trains to other weights on other kernels
    kernels = str((provenance.get("cpu_kernels") or {}).get("capability", "not recorded"))
    return {"row": cfg.row, "column": cfg.column, "seed": cfg.seed, "run": run.relative_to(runs_root),
            "kernels": kernels, **values}


def score_table(table: str, scale: str, rows: list[str] | None, seeds: int, runs_root: Path,
                limit: int | None = None) -> dict[str, Any]:
    """The record of a table: its measure (``measure_of``) over every scored run, the commit and the definition."""
    from .provenance import git_commit

    measure, configs = measure_of(table, scale, rows, seeds)
    runs, prepared = [], {}
    for cfg in configs:
        start = time.perf_counter()
        runs.append(score_run(cfg, runs_root, measure, limit, prepared))
        print(f"  {cfg.row} seed {cfg.seed}: {measure.headline(runs[-1])} over {runs[-1]['samples']} samples "
              f"({time.perf_counter() - start:.0f} s)", flush=True)
    return {"kind": measure.kind, "table": table, "scale": scale, "column": configs[0].column,
            "dataset": configs[0].data.dataset, "definition": measure.definition, "commit": git_commit(),
            "sample_limit": limit, "runs": runs}


SAME_SCORE = ("kind", "table", "scale", "column", "dataset", "definition", "sample_limit")


class ScoredRun(BaseModel):
    model_config = ConfigDict(extra="allow")
    row: StrictStr


class ScoredRecord(BaseModel):
    """What ``updated`` reads of a record, each of its type, strictly; keys it does not read pass."""

    model_config = ConfigDict(extra="allow")
    kind: StrictStr
    table: StrictStr
    scale: StrictStr
    column: StrictStr
    dataset: StrictStr
    definition: StrictStr
    commit: StrictStr | None = None
    sample_limit: StrictInt | None = None
    runs: list[ScoredRun]


def read_scored(path: Path) -> dict[str, Any]:
    """A record this command wrote, to update: every field ``updated`` reads of its type (``ScoredRecord``), else
    ``NotScoredError`` naming the file and the field (read before anything is scored)."""
    from .records import read_json

    old = read_json(path, "delete it or write to another --out")
    try:
        ScoredRecord.model_validate(old)
    except ValidationError as err:
        raise NotScoredError(f"{path}: not a record of attention-score ({describe(err)}); --update adds only to one; "
                             f"delete it or write to another --out") from None
    return old


def updated(record: dict[str, Any], old: dict[str, Any], old_path: Path) -> dict[str, Any]:
    """``record`` with the runs of the record ``old`` (read from ``old_path`` by ``read_scored``) that it does not
    score again (rows scored with another seed count: Table 4 tracks 5 seeds of some rows, 3 of others); a record of
    another table, column, scale, definition or sample limit is refused, not mixed in."""
    if any(old.get(key) != record[key] for key in SAME_SCORE):
        raise NotScoredError(f"{old_path}: not a record of the same score ({', '.join(SAME_SCORE)}); --update adds "
                             f"only to one")
    scored = {run["row"] for run in record["runs"]}
    kept = [run for run in old["runs"] if not (isinstance(run, dict) and run.get("row") in scored)]
    commits = sorted({old.get("commit"), record["commit"]} - {None})
    return {**record, "commit": ", ".join(commits), "runs": kept + record["runs"]}


def cmd_attention_score(args: argparse.Namespace) -> int:
    from data.atomic_write import atomic_write_text, check_target, shown

    runs_root = Path(args.runs_dir)
    measure, _ = measure_of(args.table, args.scale, args.rows, 1)
    out = check_target(args.out if args.out else runs_root / "reports" / args.table / measure.record_name)
    if args.update and not out.is_file():
        raise NotScoredError(f"--update: {shown(out)} is not a record to update")
    old = read_scored(out) if args.update else None  # before anything is scored
    record = score_table(args.table, args.scale, args.rows, args.seeds, runs_root, args.limit)
    if old is not None:
        record = updated(record, old, out)
    atomic_write_text(out, json.dumps(record, indent=1) + "\n")
    print(shown(out))
    return 0


def add_command(sub: Any) -> None:
    """Adds ``attention-score`` to ``python -m experiments``."""
    reads = "; ".join(measure.reads for measure in measures())
    parser = sub.add_parser("attention-score", help=f"measure the papers' attention figures over a table's trained "
                                                    f"runs: {reads}")
    parser.add_argument("table")
    parser.add_argument("--rows", nargs="+", metavar="ROW", help="the rows scored (default: all)")
    parser.add_argument("--scale", choices=SCALES, default="tiny")
    parser.add_argument("--seeds", type=count(1, 100, "a seed count"), default=1, help="seeds 0 to N-1 (default 1)")
    parser.add_argument("--runs-dir", default="runs")
    parser.add_argument("--limit", type=count(1, 100_000, "a sample count"),
                        help="score only the first N validation samples of each run (a quick look; the record says so)")
    names = "/".join(measure.record_name for measure in measures())
    parser.add_argument("--out", metavar="FILE", help=f"the record (default <runs-dir>/reports/<table>/{names}, by "
                                                      f"table; tracked: reports/results/<table>/ the same name)")
    parser.add_argument("--update", action="store_true",
                        help="keep the other rows of the record at --out (rows scored over another seed count)")
    parser.set_defaults(fn=cmd_attention_score)


__all__ = ["Measure", "NotScoredError", "add_command", "measure_of", "measures", "score_run", "score_table",
           "pipeline_inputs"]
