"""Is every synthetic set of the embedded default learnable by the tiny model in minutes on CPU?

    python -m experiments.synthetic_learnability [--sets NAME ...] [--seeds N] [--epochs N] [--force]

Runs the registered experiment ``synthetic_learnability`` (``specs`` beside this file: the tiny Motionformer on
each synthetic set, 40 epochs on ``synth_verbnoun`` as Table 6c) and prints test top-1 beside chance. Runs are
logged like table runs, under ``runs/synthetic_learnability/<set>/``; a run identical to a table's is reused.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tabulate import tabulate

from data.command_line import OneLineParser, count
from data.root_files import shown
from experiments.harness.execute import execute
from experiments.harness.plan import MAX_SEEDS
from experiments.harness.run_dir import RunDir
from experiments.harness.sizes import MAX_EPOCHS
from experiments.synthetic_learnability.summary import run_config, summary_rows, synthetic_sets


def main(argv: list[str] | None = None) -> list[dict]:
    parser = OneLineParser(prog="python -m experiments.synthetic_learnability", description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", choices=synthetic_sets(), default=synthetic_sets())
    parser.add_argument("--seeds", type=count(1, MAX_SEEDS, "a seed count"), default=1,
                        help=f"seeds 0..N-1 per set (default 1, at most {MAX_SEEDS})")
    parser.add_argument("--epochs", type=count(1, MAX_EPOCHS, "an epoch count"),
                        help=f"override the preset's schedule length (at most {MAX_EPOCHS:,})")
    parser.add_argument("--runs-dir", default="runs")
    parser.add_argument("--force", action="store_true", help="retrain runs that already exist")
    args = parser.parse_args(argv)
    records, rows = [], []
    for name in args.sets:
        for seed in range(args.seeds):
            cfg = run_config(name, seed, args.epochs)
            print(f"{name} seed={seed} -> {shown(RunDir.of(cfg, args.runs_dir).path)}", flush=True)
            record = execute(cfg, Path(args.runs_dir), force=args.force, progress_bar=False)
            records.append(record)
            rows += [[*row[:1], seed, *row[1:]] for row in summary_rows(record)]
    print(tabulate(rows, headers=["set", "seed", "metric", "top-1 (%)", "chance (%)", "epochs", "run"],
                   tablefmt="github"))
    return records


def run_from_command_line() -> int:
    """``python -m experiments.synthetic_learnability``: its exit status (the records are printed by ``main``)."""
    main()
    return 0


if __name__ == "__main__":
    from experiments.harness.cli import exit_status  # an error that names what is wrong: one line, status 2

    sys.exit(exit_status(run_from_command_line))
