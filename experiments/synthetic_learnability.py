"""Is every synthetic set of the embedded default learnable by the tiny model in minutes on CPU?

    python -m experiments.synthetic_learnability [--sets NAME ...] [--seeds N] [--epochs N] [--force]

Runs the registered experiment ``synthetic_learnability`` (``experiments.learnability``: the tiny Motionformer on
each synthetic set, 40 epochs on ``synth_verbnoun`` as Table 6c) and prints test top-1 beside chance. Runs are
logged like table runs, under ``runs/synthetic_learnability/<set>/``; a run identical to a table's is reused.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tabulate import tabulate

from experiments.runner import execute, resolve_runs
from experiments.spec import RunConfig, table_spec

EXPERIMENT = "synthetic_learnability"


def synthetic_sets() -> list[str]:
    return [row.key for row in table_spec(EXPERIMENT).rows]


def run_config(name: str, seed: int = 0, epochs: int | None = None) -> RunConfig:
    """The tiny Motionformer on one synthetic set, configured exactly as the tables' rows are."""
    if name not in synthetic_sets():
        raise KeyError(f"unknown synthetic set {name!r}; choose from {', '.join(synthetic_sets())}")
    (cfg,) = resolve_runs(EXPERIMENT, "tiny", [name], seeds=seed + 1, overrides={"optim": {"epochs": epochs}})[seed:]
    return cfg


def summary_rows(record: dict) -> list[list]:
    """[set, metric, top-1, chance, epochs, run] per head (verb, noun and action for a verb-noun set)."""
    classes = record["data"]["num_classes"]
    heads = {"top1": classes} if isinstance(classes, int) else {
        "verb_top1": classes["verb"], "noun_top1": classes["noun"], "action_top1": classes["verb"] * classes["noun"]}
    source = record.get("reused_from") or f"{EXPERIMENT}/{record['row']}"
    return [[record["row"], metric, f"{record['metrics'][metric]:.1f}", f"{100 / k:.1f}",
             record["config"]["optim"]["epochs"], source] for metric, k in heads.items()]


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(prog="python -m experiments.synthetic_learnability",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", choices=synthetic_sets(), default=synthetic_sets())
    parser.add_argument("--seeds", type=int, default=1, help="seeds 0..N-1 per set (default 1)")
    parser.add_argument("--epochs", type=int, help="override the preset's schedule length")
    parser.add_argument("--runs-dir", default="runs")
    parser.add_argument("--force", action="store_true", help="retrain runs that already exist")
    args = parser.parse_args(argv)
    records, rows = [], []
    for name in args.sets:
        for seed in range(args.seeds):
            cfg = run_config(name, seed, args.epochs)
            print(f"{name} seed={seed} -> {cfg.run_dir(args.runs_dir)}", flush=True)
            record = execute(cfg, Path(args.runs_dir), force=args.force, progress_bar=False)
            records.append(record)
            rows += [[*row[:1], seed, *row[1:]] for row in summary_rows(record)]
    print(tabulate(rows, headers=["set", "seed", "metric", "top-1 (%)", "chance (%)", "epochs", "run"],
                   tablefmt="github"))
    return records


if __name__ == "__main__":
    main()
