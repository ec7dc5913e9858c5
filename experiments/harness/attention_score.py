"""``python -m experiments attention-score TABLE``: a measure of the papers' attention figures over a table's trained
runs, one record for the table. Three measures, each fixed in its page before any result was read:

- Motionformer Table 4 (Figures 1 and 4): the tracking score of docs/attention_tracking.md, on the column whose set
  records its moving thing's boxes (``synth_motion_pairs``);
- CAST Table 1(e) (Figure 3(c)): where T2S and S2T put their mass, docs/attention_windows_and_points.md;
- 3D-Deformable Figure A1's 12-frame runs (Figures A3-A5): the sampling points on the person, same page.

Each scored run must be finished in the runs folder (``RunDir.check``: its record written, for this run and this
configuration); its last checkpoint is loaded into the row's model. The record keeps each run's values, the commit
and the definition; ``reports build`` renders it (reports/attention_tracking.py, reports/attention_measures.py) once
it is tracked under ``reports/results/<table>/`` (``--out``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from data.command_line import count

from .spec import SCALES

DEFINITION = "docs/attention_tracking.md"
BOXED_SETS = ("synth_motion_pairs",)  # generated sets whose generator gives the moving thing's box per frame
RECORD_NAME = "attention_tracking.json"  # under <runs-dir>/reports/<table>/ (default) or reports/results/<table>/
FIGURE_A1_TRAIN_COLUMN = "12 frames"  # the model Figure A1 trains (d3da tables.py); its other columns test it


class NotScoredError(ValueError):
    """A table with no scored column, or a run that is not finished: nothing to score."""


@dataclasses.dataclass(frozen=True)
class Measure:
    """One measure: the record it writes (``kind``, file name), its definition page, which of a table's runs it
    scores, and how it scores one run's model (config, model in eval mode, sample limit, a cache the runs of one
    table share) -> values."""

    kind: str
    record_name: str
    definition: str
    selects: Callable[[Any], bool]
    score: Callable[[Any, Any, int | None, dict], dict[str, Any]]
    headline: Callable[[dict[str, Any]], str]


def _tracking(cfg: Any, model: Any, limit: int | None, prepared: dict) -> dict[str, Any]:
    return score_tracking(cfg, model, limit, prepared)


def _windows(cfg: Any, model: Any, limit: int | None, prepared: dict) -> dict[str, Any]:
    from .attention_measures import score_windows

    return score_windows(cfg, model, limit)


def _points(cfg: Any, model: Any, limit: int | None, prepared: dict) -> dict[str, Any]:
    from .attention_measures import score_points

    return score_points(cfg, model, limit)


def _window_headline(run: dict[str, Any]) -> str:
    t2s, s2t = run.get("t2s"), run.get("s2t")
    parts = [f"T2S ({t2s['window']}) along time {t2s['share']['time'] - t2s['chance']['time']:+.4f}" if t2s else "",
             f"S2T ({s2t['window']}) along space {s2t['share']['space'] - s2t['chance']['space']:+.4f}" if s2t else ""]
    return "; ".join(p for p in parts if p) + " over chance"


WINDOWS_AND_POINTS = "docs/attention_windows_and_points.md"
MEASURES = (
    Measure("attention_tracking", RECORD_NAME, DEFINITION, lambda cfg: cfg.data.dataset in BOXED_SETS, _tracking,
            lambda run: f"excess over the {run['baseline']} baseline {run['excess_over_baseline']:+.4f}, over "
                        f"uniform {run['excess']:+.4f}"),
    Measure("attention_windows", "attention_windows.json", WINDOWS_AND_POINTS,
            lambda cfg: cfg.model.name.startswith("cast_") and cfg.data.dataset == "synth_verbnoun", _windows,
            _window_headline),
    Measure("attention_points", "attention_points.json", WINDOWS_AND_POINTS,
            lambda cfg: cfg.model.name.startswith("d3da_") and cfg.data.dataset == "synth_pose"
            and cfg.column == FIGURE_A1_TRAIN_COLUMN, _points,
            lambda run: f"excess {run['excess']:+.4f}, offsets' gain {run['offsets_gain']:+.4f}"),
)
TRACKING = MEASURES[0]


def measure_of(table: str, scale: str, rows: list[str] | None, seeds: int) -> tuple[Measure, list[Any]]:
    """The measure a table's runs take and the runs it scores, rows in the paper's order."""
    from .plan import resolve_runs

    configs = resolve_runs(table, scale, rows, seeds)
    for measure in MEASURES:
        chosen = [cfg for cfg in configs if measure.selects(cfg)]
        if chosen:
            return measure, chosen
    raise NotScoredError(f"{table}: no run a measure of the papers' figures reads (Motionformer's Table 4 on "
                         f"{', '.join(BOXED_SETS)}; CAST's Table 1(e) on synth_verbnoun; 3D-Deformable's Figure A1, "
                         f"its {FIGURE_A1_TRAIN_COLUMN} column)")


def trained_model(cfg: Any, runs_root: Path) -> tuple[Any, Any]:
    """(the row's model with the run's last checkpoint, in eval mode; its ``RunDir``); a run that is not finished
    for this configuration is refused."""
    from .attention import data_classes, load_state_file
    from .run_dir import RunDir
    from .tasks import build_model

    run = RunDir.of(cfg, runs_root)
    if run.check(cfg, runs_root).state != "finished":
        raise NotScoredError(f"{run.path}: not a finished run of {cfg.table}/{cfg.row}/{cfg.column} seed {cfg.seed}; "
                             f"train it first (`python -m experiments run {cfg.table} --rows {cfg.row}`)")
    model = build_model(cfg, data_classes(cfg))
    load_state_file(model, run.last_checkpoint)
    return model.eval(), run


def prepared_sample(model: Any, cfg: Any, index: int) -> tuple[Any, Any]:
    """(the model's input clip, the patches inside the moving thing's box at each token step) of one generated
    validation sample of ``cfg``'s row: the sample's test clip, its moving thing's boxes mapped to the model input's
    pixels and patch grid (docs/attention_tracking.md). Depends on the data options and the patch grid only, so the
    rows and seeds of a column share it."""
    from .attention import generated_frames, make_clip

    clip = make_clip(cfg, generated_frames(cfg, index))
    if clip.thing is None:
        raise ValueError(f"{cfg.table}/{cfg.row}: its data {cfg.data.dataset} records no boxes of a moving thing; the "
                         f"tracking score reads synth_motion_pairs (Table 4's SSv2 column)")
    embed = model.patch_embed
    return clip.video, clip.thing.patches(embed.tubelet_size, tuple(embed.grid_size[1:]), embed.patch_size)


def clip_tracking(model: Any, video: Any, inside: Any) -> dict[str, float]:
    """``tracking_score`` of one prepared clip (``prepared_sample``) through ``model`` (a Motionformer video ViT in
    eval mode): the queries of step 0 and their maps from the last block."""
    import numpy as np
    import torch

    from models.attention.capture import capture_attention

    from .attention import motionformer_maps
    from .attention_tracking import query_cells, scores_with_baselines

    with torch.no_grad(), capture_attention(model, [f"blocks.{len(model.blocks) - 1}.attn"]) as records:
        model(video)
    queries = query_cells(inside, 0)
    maps = np.stack([motionformer_maps(records[0], q) for q in queries]) if queries else np.zeros((0, *inside.shape))
    return scores_with_baselines(maps, queries, inside)


def sample_tracking(model: Any, cfg: Any, index: int) -> dict[str, float]:
    """``tracking_score`` of one generated validation sample of ``cfg``'s row through ``model``."""
    return clip_tracking(model, *prepared_sample(model, cfg, index))


def score_tracking(cfg: Any, model: Any, limit: int | None, prepared: dict[tuple, list]) -> dict[str, Any]:
    """The tracking score of one run's model: the means over its validation samples that have queries.
    ``prepared``: the clips and boxes already made for other runs, by the data options and patch grid that make
    them (``prepared_sample``: rendering a sample costs far more than a tiny model's forward)."""
    from data.synthetic import synthetic_params

    samples = synthetic_params(**(cfg.data.synthetic_params or {}))["num_val"]
    samples = min(samples, limit) if limit else samples
    embed = model.patch_embed
    key = (json.dumps(dataclasses.asdict(cfg.data), sort_keys=True, default=str), embed.tubelet_size,
           tuple(embed.grid_size), embed.patch_size)
    clips = prepared.setdefault(key, [])
    clips += [prepared_sample(model, cfg, index) for index in range(len(clips), samples)]
    from .attention_tracking import stronger_baseline

    scores = [clip_tracking(model, *clip) for clip in clips[:samples]]
    kept = [s for s in scores if s["queries"]]
    if not kept:
        raise NotScoredError(f"{cfg.table}/{cfg.row}: none of its {len(scores)} validation samples has a query (a "
                             f"patch on the moving thing at step 0)")
    mean = {name: statistics.fmean(s[name] for s in kept)
            for name in ("share", "chance", "excess", "static_share", "locality_share")}
    baseline, baseline_share = stronger_baseline(mean["static_share"], mean["locality_share"])
    return {**mean, "baseline": baseline, "baseline_share": baseline_share,
            "excess_over_baseline": mean["share"] - baseline_share, "samples": len(kept),
            "samples_without_queries": len(scores) - len(kept), "queries": sum(s["queries"] for s in kept)}


def score_run(cfg: Any, runs_root: Path, measure: Measure = TRACKING, limit: int | None = None,
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
    measure, _ = measure_of(args.table, args.scale, args.rows, 1)
    out = Path(args.out) if args.out else runs_root / "reports" / args.table / measure.record_name
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
    parser = sub.add_parser("attention-score", help="measure the papers' attention figures over a table's trained "
                                                    "runs: Motionformer Fig. 1/4 (mformer_table4), CAST Fig. 3c "
                                                    "(cast_table1e), 3D-Deformable A3-A5 (d3da_figureA1)")
    parser.add_argument("table")
    parser.add_argument("--rows", nargs="+", metavar="ROW", help="the rows scored (default: all)")
    parser.add_argument("--scale", choices=SCALES, default="tiny")
    parser.add_argument("--seeds", type=count(1, 100, "a seed count"), default=1, help="seeds 0 to N-1 (default 1)")
    parser.add_argument("--runs-dir", default="runs")
    parser.add_argument("--limit", type=count(1, 100_000, "a sample count"),
                        help="score only the first N validation samples of each run (a quick look; the record says so)")
    names = "/".join(measure.record_name for measure in MEASURES)
    parser.add_argument("--out", metavar="FILE", help=f"the record (default <runs-dir>/reports/<table>/{names}, by "
                                                      f"table; tracked: reports/results/<table>/ the same name)")
    parser.add_argument("--update", action="store_true",
                        help="keep the other rows of the record at --out (rows scored over another seed count)")
    parser.set_defaults(fn=cmd_attention_score)


__all__ = ["MEASURES", "Measure", "NotScoredError", "add_command", "clip_tracking", "measure_of", "prepared_sample",
           "sample_tracking", "score_run", "score_table"]
