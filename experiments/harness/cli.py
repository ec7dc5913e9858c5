"""The command line of ``python -m experiments list | show ID [--json] | run ID [...] | static ID`` (and the
subcommands that papers' folders register: ``commands``): its parser, and the commands that plan, run and compute.

What reads or writes the reports floor (``show``, the report ``run`` ends with, the checks that report needs) sits
above this one: the entry point (``experiments/__main__.py``) hands it in as a ``ReportSide``. Heavy libraries
(torch, Lightning, the report builder) are imported by the commands that use them, so ``list`` and ``--help`` answer
at once. The measurement tools (the paper-scale smoke, loader rates, the cost of each row) are ``python -m tools``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

from data.command_line import LOADER_WORKERS, POSITIVE, OneLineParser, count, count_or, printable
from data.root_files import shown

from ..paper_tables import UnknownTableError, paper_tables
from .attention import add_command as add_attention_command
from .attention_score import add_command as add_attention_score_command
from .checks import check_writable, stdout_closed, write_refused
from .cluster.cli import add_command as add_cluster_commands
from .cluster.cli import submit_table, uses_a_scheduler
from .commands import registered_commands
from .evaluate_cli import add_command as add_evaluate_commands
from .interruption import Interrupted, requeue_slurm_job, stop_on_signals
from .overrides import add_lightning_options, lightning_options, parse_setting
from .plan import (
    MAX_SEEDS,
    MissingDataError,
    TableNotImplementedError,
    check_resolved,
    dataset_shown,
    describe_runs,
    missing_datasets,
    planned_steps,
    require_spec,
    resolve_runs,
)
from .predict import add_command as add_predict_command
from .provenance import git_commit
from .run_dir import RunDir, RunsTree
from .runner import compute_static
from .sizes import ALLOW_FLAG, MAX_EPOCHS, allowing_large
from .spec import SCALES, registered_specs, table_status
from .static import static_record_path


class ReportSide(NamedTuple):
    """The commands' parts that read or write the reports floor, handed in by the entry point."""

    show: Callable[[argparse.Namespace], int]  # the ``show`` command: a table, the paper's numbers beside ours
    check_report_step: Callable[[str, str | Path, str | Path | None], None]  # before anything trains
    run_and_report: Callable[..., list[dict]]  # ``run``: train what is missing, then compare and report
    # the comparison and report ``run`` ends with, alone (``run --submit``: also the last job of a table); its path
    report_runs: Callable[..., Path | None]


def cmd_list(args: argparse.Namespace) -> int:
    for table in paper_tables().values():
        print(f"{table.id:<18} {table.paper_short:<14} {table.label:<12} {table.kind:<10} {table_status(table.id)}")
    own = [t for t in registered_specs() if t not in paper_tables()]
    if own:
        print(f"\nThis repository's own experiments (not paper tables; `run` them by name): {', '.join(own)}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    return args.reports.show(args)


def cmd_run(args: argparse.Namespace) -> int:
    with allowing_large(args.allow_large):  # the bounds of experiments.harness.sizes, checked as the runs resolve
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    if args.seeds is None:
        args.seeds = require_spec(args.table).default_seeds(args.scale)
    overrides = {
        "model": {"pretrained": args.pretrained},
        "optim": {"epochs": args.epochs},
        "data": {"batch_size": args.batch_size, "num_workers": args.num_workers},
        "trainer": {**lightning_options(args), "accumulate_grad_batches": args.accumulate_grad_batches},
    }
    if uses_a_scheduler(args):  # each run a job (experiments.harness.cluster); the report once every run is done
        args.reports.check_report_step(args.table, args.runs_dir, args.reports_dir)
        # picklable: the table's last job writes the report with it (experiments.harness.cluster.job)
        report = partial(args.reports.report_runs, args.table, str(Path(args.runs_dir).absolute()),
                         None if args.reports_dir is None else str(Path(args.reports_dir).absolute()),
                         [args.scale])
        try:
            return submit_table(args, overrides, report)
        except Interrupted as stop:  # --submit local: each job saved its run at its batch boundary and ended
            return _interrupted(args, stop)
    if args.dry_run:
        return dry_run(args, overrides)
    if args.verbose or args.json:
        raise ValueError("--verbose and --json describe a --dry-run; add --dry-run")
    try:
        with stop_on_signals():
            args.reports.run_and_report(
                args.table, runs_root=args.runs_dir, reports_dir=args.reports_dir, scale=args.scale, rows=args.rows,
                seeds=args.seeds, data_root=args.data_root, overrides=overrides, settings=args.set or (),
                force=args.force, progress_bar=not args.no_progress_bar, jobs=args.jobs)
    except Interrupted as stop:  # every worker has ended by now (experiments.harness.jobs)
        return _interrupted(args, stop)
    return 0


def _interrupted(args: argparse.Namespace, stop: Interrupted) -> int:
    """The one line a stopped ``run`` ends with (and, inside a SLURM batch job after a time-limit signal, the
    requeue's), and its exit status: 128 + the signal's number."""
    command = shlex.join(["python", "-m", "experiments", *args.argv])
    print(f"{stop}: finished runs keep their records and a cut run its last checkpoint; `{command}` resumes",
          file=sys.stderr)
    requeued = requeue_slurm_job(stop.signum)  # a time-limit signal inside a SLURM batch job
    if requeued:
        print(requeued, file=sys.stderr)
    return stop.exit_code


def dry_run(args: argparse.Namespace, overrides: dict[str, dict[str, Any]]) -> int:
    """``run --dry-run``: make every check ``run`` makes before it trains (``check_report_step``,
    ``plan.check_resolved``), build every distinct model on the meta device, say what each run would do, and end
    with a summary (how many runs would train, which are skipped for missing data and which datasets are missing,
    each once, and what this machine lacks for them). ``--verbose`` adds every resolved configuration; ``--json``
    prints all of it as one object."""
    args.reports.check_report_step(args.table, args.runs_dir, args.reports_dir)
    configs = resolve_runs(args.table, args.scale, args.rows, args.seeds, args.data_root, overrides, args.set or ())
    not_here = check_resolved(configs, args.runs_dir, dry_run=True)  # every model built on the meta device too
    steps = [step.unless_refused() for step in planned_steps(configs, args.runs_dir, args.force)]  # as `run` stops
    actions = [step.line(args.runs_dir) for step in steps]
    counts = dict.fromkeys(("train", "skip", "done", "reuse", "resume", "busy"), 0)
    for step in steps:
        counts[step.action] += 1
    missing = missing_datasets(configs)
    if args.json:
        print(json.dumps({
            "table": args.table, "scale": args.scale,
            "runs": [{"run_dir": str(RunDir.of(cfg, args.runs_dir).path), "action": action, "config": cfg.to_dict()}
                     for cfg, action in zip(configs, actions)],
            "summary": {"runs": len(configs), **counts}, "missing_data": missing, "not_on_this_machine": not_here},
            indent=1))
        return 0
    if args.verbose:
        print(describe_runs(configs, args.runs_dir))
    else:
        for i, (cfg, action) in enumerate(zip(configs, actions), 1):
            print(f"[{i}/{len(configs)}] {cfg.row} / {cfg.column} ({dataset_shown(cfg)}) seed {cfg.seed} -> "
                  f"{shown(RunDir.of(cfg, args.runs_dir).path)}: {printable(action)}")
    _dry_run_summary(args, len(configs), counts, missing, not_here)
    return 0


def _dry_run_summary(args: argparse.Namespace, runs: int, counts: dict[str, int], missing: dict[str, str],
                     not_here: list[str]) -> None:
    done = ", ".join(f"{counts[kind]} {what}" for kind, what in (
        ("done", "already done"), ("reuse", "would reuse an identical run"), ("resume", "would resume"),
        ("busy", "held by another command"))
        if counts[kind])
    print(f"# {runs} run(s): {counts['train']} would train, {counts['skip']} would be skipped for missing data"
          + (f", {done}" if done else ""))
    if missing:
        print("# missing data: " + "; ".join(f"{dataset} ({printable(where)})" for dataset, where in missing.items()))
    for note in not_here:
        print(f"# not on this machine: {note}; `run` here stops before anything trains, a machine with it runs it")
    print("# every model built on the meta device; nothing trained (--dry-run)"
          + ("" if args.verbose else "; --verbose prints each full configuration, --json all of it"))


def cmd_static(args: argparse.Namespace) -> int:
    """Compute the static columns of a table into runs/<table>/static.json (GFLOPs, parameters, memory)."""
    spec = require_spec(args.table)
    check_writable(RunsTree(args.runs_dir).table(args.table), "--runs-dir")
    record = compute_static(spec, args.runs_dir, commit=git_commit())
    if record is None:
        print(f"{args.table} has no static columns")
        return 0
    for row, cells in record["cells"].items():
        for column, cell in cells.items():
            print(f"{row:<20} {column:<24} {cell['text']}  [{cell['source']}]")
    print(f"-> {shown(static_record_path(args.runs_dir, args.table))} (device: {record['device']})")
    return 0


_seed_count = count(1, MAX_SEEDS, "a count of seeds per row")
MAX_JOBS = 1024  # runs side by side, a process each: more than any machine's cores
parse_jobs = count_or({"auto": None}, 1, MAX_JOBS, "a count of runs side by side")  # auto: None


USAGE = """\
Reproduce a paper's table by name: train and test each of its rows, then rebuild its report in the paper's layout.
"""

EXAMPLES = """\
examples:
  python -m experiments list                     every table, with what runs today
  python -m experiments show mformer_table4      its rows, the paper's numbers and ours
  python -m experiments run mformer_table4       tiny scale: generated videos, tiny models, minutes on a CPU
  python -m experiments run mformer_table4 --scale paper --dry-run --data-root /data
                                                 what paper scale would train, and which data it still needs
  python -m experiments run mformer_table4 --scale paper --data-root /data --devices 8
                                                 8 GPUs with the preset's strategy (its DDP keeps unused
                                                 parameters: plain --strategy ddp stops on them)
  python -m experiments run mformer_table4 --scale paper --data-root /data --submit slurm --partition gpu
                                                 each run a SLURM job (requeued after a preemption, resumed
                                                 exactly); `status mformer_table4 --scale paper` follows them
  tensorboard --logdir runs/mformer_table4       watch and compare the runs
  python -m reports build mformer_table4         rebuild the report from what the runs logged
"""


def add_list_parser(sub: Any) -> None:
    sub.add_parser("list", help="one line per table: id, paper, label, kind, status").set_defaults(fn=cmd_list)


def add_show_parser(sub: Any) -> None:
    show = sub.add_parser("show", help="a table's layout, rows, the paper's numbers and ours (the repository's "
                                       "own experiments: rows and ours)")
    show.add_argument("table")
    show.add_argument("--json", action="store_true", help="one JSON object: id, status, columns, rows")
    show.add_argument("--scale", choices=SCALES, default="tiny", help="which runs fill 'ours' (default: tiny)")
    show.add_argument("--runs-dir", default="runs")
    show.add_argument("--results-dir", default="reports/results",
                      help="tracked records read beside --runs-dir (default: the repository's; '' for none)")
    show.set_defaults(fn=cmd_show)


def add_run_parser(sub: Any) -> None:
    run = sub.add_parser("run", help="train and test each row (each seed), then rebuild the report")
    run.add_argument("table")
    run.add_argument("--scale", choices=SCALES, default="tiny", help="tiny = embedded default (CPU, minutes)")
    run.add_argument("--rows", nargs="+", metavar="ROW", help="row keys (see `show`); default: all")
    run.add_argument("--seeds", type=_seed_count, default=None,
                     help=f"seeds 0..N-1 per row, N at most {MAX_SEEDS} (default: the table's at tiny scale, by the "
                          f"design's rule in docs/tiny_regime_design.md; 1 at paper scale)")
    run.add_argument("--data-root", help="folder holding one sub-folder per dataset (kinetics400/, ssv2/, ...)")
    run.add_argument("--dry-run", action="store_true",
                     help="build every model on the meta device, say what each run would do, train nothing")
    run.add_argument("--verbose", action="store_true", help="with --dry-run: print every resolved configuration")
    run.add_argument("--json", action="store_true", help="with --dry-run: one JSON object (runs, configurations, "
                                                         "actions, summary, missing data)")
    run.add_argument("--runs-dir", default="runs", help="where runs are logged (default: runs/)")
    run.add_argument("--reports-dir", default=None,
                     help="where your report of these runs is written (default: <runs-dir>/reports/; the committed "
                          "reports/ change only through `python -m reports track`)")
    run.add_argument("--force", action="store_true",
                     help=f"train again from scratch, moving the old run to <runs-dir>/{RunsTree.REPLACED}/ (a run "
                          f"whose {RunDir.RECORD} or checkpoint was written with other options is refused without it)")
    run.add_argument("--pretrained", help="initial weights: a local checkpoint file, timm:<model name>, "
                                          "official:<file> (an official Motionformer checkpoint) or "
                                          "run:<table>/<row>/<column> (a run's last checkpoint); "
                                          "torchscript:<file> reads a TorchScript archive's tensors, never its code")
    add_training_options(run)
    run.add_argument(ALLOW_FLAG, action="store_true",
                     help="plan and run past the size bounds (a model of 4 billion parameters, a training batch "
                          "of 380 million pixels, 2,000 epochs, a million steps: 10x the largest paper "
                          "configuration), on hardware that has room")
    run.add_argument("--jobs", type=parse_jobs, default=None, metavar="N|auto",
                     help="CPU runs trained side by side, each on cores/N threads (default auto: one per core, at "
                          "most 4, when every run is one CPU process; else 1)")
    run.add_argument("--no-progress-bar", action="store_true")
    run.set_defaults(fn=cmd_run)


def add_training_options(run: argparse.ArgumentParser) -> None:
    """``run``'s options that replace a field of the runs' configuration: the schedule, the data loader, Lightning's
    hardware flags and any field through ``--set``."""
    run.add_argument("--epochs", type=count(1, what="an epoch count"),
                     help=f"override the schedule length, at most {MAX_EPOCHS:,} without {ALLOW_FLAG} (a step "
                          f"schedule's milestones then have to be below it: --set 'optim.milestones=[...]')")
    run.add_argument("--batch-size", type=POSITIVE)
    run.add_argument("--num-workers", type=LOADER_WORKERS)
    add_lightning_options(run)
    run.add_argument("--accumulate-grad-batches", type=POSITIVE,
                     help="Lightning gradient accumulation (batches per step)")
    run.add_argument("--set", action="append", type=parse_setting, metavar="SECTION.FIELD=VALUE",
                     help="any config field, VALUE as JSON (else a string), e.g. --set trainer.max_steps=20 "
                          "--set 'data.synthetic_params={\"num_train\": 32, \"num_val\": 16, \"seed\": 0}'")


def add_static_parser(sub: Any) -> None:
    static = sub.add_parser("static", help="compute a table's static columns (GFLOPs, parameters, memory) into "
                                           "runs/<id>/static.json, which the reports read")
    static.add_argument("table")
    static.add_argument("--runs-dir", default="runs")
    static.set_defaults(fn=cmd_static)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m experiments", description=USAGE, epilog=EXAMPLES,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for add_parser in (add_list_parser, add_show_parser, add_run_parser, add_cluster_commands, add_static_parser,
                       partial(add_evaluate_commands, setting=parse_setting), add_attention_command,
                       add_attention_score_command, add_predict_command, *registered_commands()):
        add_parser(sub)
    return parser


def main(argv: list[str] | None, reports: ReportSide) -> int:
    args = build_parser().parse_args(argv)
    args.reports = reports
    args.argv = list(sys.argv[1:] if argv is None else argv)  # to say which command resumes an interrupted run
    return exit_status(lambda: args.fn(args))


def exit_status(command: Callable[[], int]) -> int:
    """``command``'s exit status. An error that names what is wrong (a file, a row, a table, an option) is one line
    and exit status 2; anything else is a bug and keeps its traceback. ``python -m tools`` runs its tools so too."""
    try:
        return command()
    except BrokenPipeError:  # the reader of stdout went away (`| head`): nothing is wrong, nothing to say
        return stdout_closed()
    except (UnknownTableError, TableNotImplementedError, MissingDataError, KeyError, ValueError,
            FileNotFoundError) as err:
        message = str(err.args[0] if isinstance(err, KeyError) and err.args else err)
        # a path in it may hold a newline or an ESC: escaped, but for the lines of the missing datasets' list
        lines = message.split("\n") if isinstance(err, MissingDataError) else [message]
        print("error: " + "\n".join(map(printable, lines)), file=sys.stderr)
        return 2
    except OSError as err:  # a folder or file that cannot be written (read-only, full); any other OSError is a bug
        if write_refused(err) is None:
            raise
        print(f"error: {printable(write_refused(err))}", file=sys.stderr)
        return 2
