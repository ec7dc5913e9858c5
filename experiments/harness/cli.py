"""``python -m experiments list | show ID [--json] | run ID [...] | static ID | bench``: paper tables by name.

An entry point: it may use every floor, so ``run`` trains through ``experiments.runner`` and then rebuilds the
table's report through ``reports`` (the runner itself never imports the floor above it). Heavy libraries (torch,
Lightning, the report builder) are imported by the commands that use them, so ``list`` and ``--help`` answer at once.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import typing
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from .cast.probe import add_command as add_probe_experts_parser
from .cast.shipped import add_command as add_pretrain_experts_parser
from .checks import check_writable, write_refused
from .image_pretraining import add_command as add_pretrain_images_parser
from .interruption import Interrupted, stop_on_signals
from .paper_tables import UnknownTableError, paper_table, paper_tables, printed
from .plan import (MAX_SEEDS, MissingDataError, TableNotImplementedError, check_buildable, check_resolved,
                   dataset_shown, describe_runs, missing_datasets, planned_action, require_spec, resolve_runs)
from .provenance import git_commit, launched_as_global_zero
from .runner import compute_static, run_table
from .smoke_cli import add_command as add_smoke_command
from .smoke_cli import add_loader_rate_command
from .spec import SCALES, registered_specs, table_spec, table_status


def cmd_list(args: argparse.Namespace) -> int:
    for table in paper_tables().values():
        print(f"{table.id:<18} {table.paper_short:<14} {table.label:<12} {table.kind:<10} {table_status(table.id)}")
    own = [t for t in registered_specs() if t not in paper_tables()]
    if own:
        print(f"\nThis repository's own experiments (not paper tables; `run` them by name): {', '.join(own)}")
    return 0


def show_json(table_id: str, scale: str, runs_root: str, results_root: str | Path | None = "reports/results"
              ) -> dict:
    """The table as one object; ``ours`` holds measured cells at ``scale`` and static cells in the paper's unit, and
    ``static`` says what each static cell is and where it came from (computed, rendered, measured on a device,
    needs GPU). A ``needs GPU`` memory cell is a ratio of activation bytes, not the paper's gigabytes: its ``ours``
    is null and ``static`` holds the ratio (``value``) and the text that says what it is."""
    from reports.build import ours, static_values
    from reports.records import RESULTS_DIR

    from .static import NEEDS_GPU

    if results_root == "reports/results":
        results_root = RESULTS_DIR  # the tracked records, wherever the command runs from
    if table_id not in paper_tables() and table_id in registered_specs():
        return own_experiment_json(table_id, scale, runs_root, results_root or None)
    table, spec = paper_table(table_id), table_spec(table_id)
    head = {"id": table.id, "status": table_status(table.id), "paper": table.paper, "label": table.label,
            "caption": table.caption, "scale": scale}
    if spec and not table.rows:  # a figure: no printed rows; its rows are the spec's, its columns the runs'
        columns = list(dict.fromkeys(c.column for c in spec.metric_columns))
        means = _row_means(spec, _metric_values(spec, scale, runs_root, results_root or None))
        rows = [{"label": row.label, "key": row.key, "paper": dict.fromkeys(columns), "ours": means[row.key],
                 "static": {}} for row in spec.rows]
        return {**head, "columns": columns, "rows": rows, "default_seeds": spec.default_seeds(scale)}
    our_rows = ours(table_id, scale=scale, runs_root=runs_root, results_root=results_root or None)
    static = static_values(spec, runs_root, results_root or None) if spec else {}
    rows = []
    for prow, our in zip(table.rows, our_rows):
        row_spec = next((r for r in spec.rows if r.paper_row == prow.index), None) if spec else None
        cells = {col: cell for (key, col), cell in static.items() if row_spec and key == row_spec.key}
        rows.append({
            "label": row_spec.label if row_spec else table.row_label(prow),
            "key": row_spec.key if row_spec else None,
            "paper": {c: prow.cells.get(c) for c in table.columns},
            "ours": {c: None if c in cells and cells[c].source == NEEDS_GPU else v for c, v in our.items()},
            "static": {col: {"text": cell.text, "source": cell.source, "value": cell.value}
                       for col, cell in cells.items()},
        })
    return {**head, "columns": list(table.columns), "rows": rows,
            "default_seeds": spec.default_seeds(scale) if spec else None}


def _metric_values(spec, scale: str, runs_root: str, results_root: str | Path | None) -> dict[str, dict[str, Any]]:
    """{row key: {column: Cell or None}} at ``scale`` from the tracked and local records."""
    from reports.build import aggregate, load_records, metric_values

    return metric_values(spec, aggregate(load_records(spec.table_id, runs_root, results_root), scale))


def _row_means(spec, values: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """{row key: {column: mean over seeds (4 digits) or None}}."""
    return {row.key: {c: None if v is None else round(v.mean, 4) for c, v in values[row.key].items()}
            for row in spec.rows}


OWN_EXPERIMENT = "the repository's own experiment, not a paper table"


def own_experiment_json(table_id: str, scale: str, runs_root: str, results_root: str | Path | None) -> dict:
    """``show_json`` for an experiment without a paper layout: its rows and our cells (mean over seeds, and the
    cell as a report renders it), from the tracked and local records that fill them."""
    spec = table_spec(table_id)
    values = _metric_values(spec, scale, runs_root, results_root)
    means = _row_means(spec, values)
    columns = [c.column for c in spec.metric_columns]
    rows = [{"label": row.label, "key": row.key, "ours": {c: means[row.key][c] for c in columns},
             "cells": {c: None if values[row.key][c] is None else values[row.key][c].render() for c in columns}}
            for row in spec.rows]
    return {"id": table_id, "status": OWN_EXPERIMENT, "notes": spec.notes, "scale": scale, "columns": columns,
            "rows": rows, "default_seeds": spec.default_seeds(scale)}


def cmd_show(args: argparse.Namespace) -> int:
    obj = show_json(args.table, args.scale, args.runs_dir, args.results_dir)
    if args.json:
        print(json.dumps(obj, ensure_ascii=False, indent=1))
        return 0
    if obj["status"] == OWN_EXPERIMENT:
        print(f"{obj['id']}: {OWN_EXPERIMENT}\n{obj['notes']}\n")
        columns = table_spec(obj["id"]).metric_columns
        shares_run = {c.column: [o.column for o in columns if o.run_name == c.run_name and o is not c] for c in columns}
        for row in obj["rows"]:
            print(f"- {row['label']} (--rows {row['key']})")
            for column, cell in row["cells"].items():
                if cell is None and any(row["cells"][other] for other in shares_run[column]):
                    continue  # its run finished without logging this metric (synth_verbnoun has no top1)
                print(f"    {column:<28} ours ({args.scale} runs): {cell or '—'}")
        print(f"\n`run` trains {obj['default_seeds']} seed(s) per row at {args.scale} scale unless --seeds says "
              f"otherwise.")
        return 0
    table = paper_table(args.table)
    print(f"{table.id}: {table.paper_short} {table.label} [{obj['status']}]\n{table.caption}\n")
    if not table.rows:  # a figure: the paper draws its values and prints none
        print("The paper plots these values without printing them; each line is ours.\n")
    for row in obj["rows"]:
        key = f" (--rows {row['key']})" if row["key"] else ""
        print(f"- {row['label']}{key}")
        for column in obj["columns"]:
            ours_value = row["ours"][column]
            if column in row["static"]:  # not a run at any scale: say where the cell came from
                cell = row["static"][column]
                ours_text = f"   ours ({cell['source']}): {cell['text']}"
            elif ours_value is None:
                ours_text = ""
            else:
                ours_text = f"   ours ({args.scale} runs): {ours_value:.2f}"
            shown = f"paper: {printed(row['paper'][column]):<12}{ours_text}" if table.rows else ours_text.strip()
            print(f"    {column:<28} {shown}")
    if table.setup:
        print(f"\nPaper setup: {table.setup}")
    if obj["default_seeds"]:
        print(f"\n`run` trains {obj['default_seeds']} seed(s) per row at {args.scale} scale unless --seeds says "
              f"otherwise.")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    if args.seeds is None:
        args.seeds = require_spec(args.table).default_seeds(args.scale)
    overrides = {
        "model": {"pretrained": args.pretrained},
        "optim": {"epochs": args.epochs},
        "data": {"batch_size": args.batch_size, "num_workers": args.num_workers},
        "trainer": {"accelerator": args.accelerator, "devices": args.devices, "num_nodes": args.num_nodes,
                    "strategy": args.strategy, "precision": args.precision,
                    "accumulate_grad_batches": args.accumulate_grad_batches, "num_threads": args.threads},
    }
    if args.dry_run:
        return dry_run(args, overrides)
    if args.verbose or args.json:
        raise ValueError("--verbose and --json describe a --dry-run; add --dry-run")
    try:
        with stop_on_signals():
            run_and_report(args.table, runs_root=args.runs_dir, reports_dir=args.reports_dir, scale=args.scale,
                           rows=args.rows, seeds=args.seeds, data_root=args.data_root, overrides=overrides,
                           settings=args.set or (), force=args.force, progress_bar=not args.no_progress_bar,
                           jobs=args.jobs)
    except Interrupted as stop:  # every worker has ended by now (experiments.jobs)
        command = shlex.join(["python", "-m", "experiments", *args.argv])
        print(f"{stop}: finished runs keep their records and a cut run its last checkpoint; `{command}` resumes",
              file=sys.stderr)
        return stop.exit_code
    return 0


def dry_run(args: argparse.Namespace, overrides: dict[str, dict[str, Any]]) -> int:
    """``run --dry-run``: make every check ``run`` makes before it trains (``check_report_step``,
    ``plan.check_resolved``), build every distinct model on the meta device, say what each run would do, and end
    with a summary (how many runs would train, which are skipped for missing data and which datasets are missing,
    each once, and what this machine lacks for them). ``--verbose`` adds every resolved configuration; ``--json``
    prints all of it as one object."""
    check_report_step(args.table, args.runs_dir, args.reports_dir)
    configs = resolve_runs(args.table, args.scale, args.rows, args.seeds, args.data_root, overrides, args.set or ())
    not_here = check_resolved(configs, args.runs_dir, dry_run=True)
    built = set()
    for cfg in configs:  # every model built on the meta device: a bad option fails here, by name
        model = json.dumps({**cfg.to_dict(), "seed": None}, sort_keys=True, default=str)  # seeds build alike
        if model not in built:
            check_buildable(cfg)
            built.add(model)
    actions = [planned_action(cfg, args.runs_dir, args.force) for cfg in configs]
    counts = dict.fromkeys(("train", "skip", "done", "reuse", "resume"), 0)
    for action in actions:
        kind = action.split()[0].rstrip(":")
        counts[kind] += 1
    missing = missing_datasets(configs)
    if args.json:
        print(json.dumps({
            "table": args.table, "scale": args.scale,
            "runs": [{"run_dir": str(cfg.run_dir(args.runs_dir)), "action": action, "config": cfg.to_dict()}
                     for cfg, action in zip(configs, actions)],
            "summary": {"runs": len(configs), **counts}, "missing_data": missing, "not_on_this_machine": not_here},
            indent=1))
        return 0
    if args.verbose:
        print(describe_runs(configs, args.runs_dir))
    else:
        for i, (cfg, action) in enumerate(zip(configs, actions), 1):
            print(f"[{i}/{len(configs)}] {cfg.row} / {cfg.column} ({dataset_shown(cfg)}) seed {cfg.seed} -> "
                  f"{cfg.run_dir(args.runs_dir)}: {action}")
    _dry_run_summary(args, len(configs), counts, missing, not_here)
    return 0


def _dry_run_summary(args: argparse.Namespace, runs: int, counts: dict[str, int], missing: dict[str, str],
                     not_here: list[str]) -> None:
    done = ", ".join(f"{counts[kind]} {what}" for kind, what in (
        ("done", "already done"), ("reuse", "would reuse an identical run"), ("resume", "would resume"))
        if counts[kind])
    print(f"# {runs} run(s): {counts['train']} would train, {counts['skip']} would be skipped for missing data"
          + (f", {done}" if done else ""))
    if missing:
        print("# missing data: " + "; ".join(f"{dataset} ({where})" for dataset, where in missing.items()))
    for note in not_here:
        print(f"# not on this machine: {note}; `run` here stops before anything trains, a machine with it runs it")
    print("# every model built on the meta device; nothing trained (--dry-run)"
          + ("" if args.verbose else "; --verbose prints each full configuration, --json all of it"))


def reports_out_dir(runs_root: str | Path, reports_dir: str | Path | None) -> Path:
    """Where ``run`` writes the user's report: ``--reports-dir``, else ``<runs_root>/reports``."""
    return Path(reports_dir) if reports_dir is not None else Path(runs_root) / "reports"


def check_report_step(table_id: str, runs_root: str | Path, reports_dir: str | Path | None) -> None:
    """What the report at the end of ``run`` needs, checked before anything trains: a folder other than the
    committed reports/ that takes files, and the table's records (tracked and local) readable, since the report
    and the comparison read them all (a damaged record of another table is no part of this one's report)."""
    from reports.build import REPORTS_DIR
    from reports.records import RESULTS_DIR, table_records

    spec = require_spec(table_id)
    out_dir = reports_out_dir(runs_root, reports_dir)
    if spec.is_paper_table:
        if out_dir.resolve() == REPORTS_DIR:
            raise ValueError(f"--reports-dir {reports_dir}: reports/ holds the committed reports, built from the "
                             f"tracked records; `python -m reports track {table_id}` commits your runs there")
        check_writable(out_dir, "--reports-dir")
    table_records(spec, runs_root, RESULTS_DIR)


def run_and_report(table_id: str, runs_root: str | Path = "runs", reports_dir: str | Path | None = None,
                   echo: Callable[[str], None] = print, **run_options: Any) -> list[dict]:
    """``run``: train what is missing (``runner.run_table`` with ``run_options``), then write the user's report
    from the runs under ``runs_root`` into ``reports_dir`` (default ``<runs_root>/reports/``, created first: a
    report is never lost to a missing folder after hours of training) and print their cells beside the tracked
    records and the paper. The committed reports (``reports/``) are never written here: they change only through
    ``python -m reports track``."""
    from reports.build import build_report
    from reports.compare import LEGEND, compare_cells, comparison_table, summary, tracked_seconds
    from reports.records import RESULTS_DIR

    check_report_step(table_id, runs_root, reports_dir)
    out_dir = reports_out_dir(runs_root, reports_dir)
    spec = table_spec(table_id)
    if spec.is_paper_table:
        out_dir.mkdir(parents=True, exist_ok=True)
    took = tracked_seconds(spec, RESULTS_DIR)
    records = run_table(table_id, runs_root=runs_root, echo=echo,
                        expected_s=lambda cfg: took.get((cfg.row, cfg.column, cfg.scale)), **run_options)
    if spec.is_paper_table and launched_as_global_zero():  # each rank of a distributed run gets here; one writes
        scales = dict.fromkeys(r["scale"] for r in records)
        for scale in scales:
            cells = compare_cells(spec, runs_root, RESULTS_DIR, scale)
            if cells:
                echo(f"\nYour {scale} runs beside the tracked records (reports/results/) and the paper:\n"
                     f"{comparison_table(cells)}\n{summary(cells)}\n{LEGEND}")
        report = build_report(table_id, runs_root=runs_root, out_dir=out_dir, results_root=None, index=False)
        echo(f"\nyour report: {report} (from your runs; reports/{table_id}.md keeps the tracked records: "
             f"`python -m reports track {table_id}` commits yours)")
    return records


def cmd_static(args: argparse.Namespace) -> int:
    """Compute the static columns of a table into runs/<table>/static.json (GFLOPs, parameters, memory)."""
    spec = require_spec(args.table)
    check_writable(Path(args.runs_dir) / args.table, "--runs-dir")
    record = compute_static(spec, args.runs_dir, commit=git_commit())
    if record is None:
        print(f"{args.table} has no static columns")
        return 0
    for row, cells in record["cells"].items():
        for column, cell in cells.items():
            print(f"{row:<20} {column:<24} {cell['text']}  [{cell['source']}]")
    print(f"-> {args.runs_dir}/{args.table}/static.json (device: {record['device']})")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """Per row: parameters, GFLOPs per view, training and inference clips/s, peak memory, as a markdown table."""
    import torch

    from .bench import bench_row, markdown, row_configs

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if args.threads:
        torch.set_num_threads(args.threads)
    results = []
    for cfg in row_configs(args.table, args.scale, args.rows):
        print(f"measuring {cfg.row} ...", file=sys.stderr)
        results.append(bench_row(cfg, device, batch=args.batch_size, steps=args.steps, warmup=args.warmup))
    print(markdown(results, args.table, args.scale, device))
    return 0


def _devices(value: str) -> int | str:
    return int(value) if value.isdigit() else value


def _positive(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"expected a count of at least 1, got {value!r}")
    return int(value)


def _seed_count(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= MAX_SEEDS:
        raise argparse.ArgumentTypeError(f"expected 1 to {MAX_SEEDS} seeds per row, got {value!r}")
    return int(value)


def parse_jobs(value: str) -> int | None:
    if value == "auto":
        return None
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"--jobs takes a count of at least 1 or 'auto', got {value!r}")
    return int(value)


def parse_setting(text: str) -> tuple[str, Any]:
    """``--set SECTION.FIELD=VALUE``: VALUE parsed as JSON (numbers, true/false, null, lists, objects), else kept as
    a string; an unknown field fails when the runs resolve, naming the valid ones."""
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"{text!r}: expected SECTION.FIELD=VALUE")
    try:
        return key.strip(), json.loads(value)
    except json.JSONDecodeError:
        return key.strip(), value


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
  tensorboard --logdir runs/mformer_table4       watch and compare the runs
  python -m reports build mformer_table4         rebuild the report from what the runs logged
"""


class _Parser(argparse.ArgumentParser):
    """A bad option is one line that names it, and where the options are listed (argparse prints its whole usage
    block first, which buries the line that matters)."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"error: {message} (`{self.prog} --help` lists the options)\n")


def add_static_parser(sub: Any) -> None:
    """The ``static`` subcommand's options."""
    static = sub.add_parser("static", help="compute a table's static columns (GFLOPs, parameters, memory) into "
                                           "runs/<id>/static.json, which the reports read")
    static.add_argument("table")
    static.add_argument("--runs-dir", default="runs")
    static.set_defaults(fn=cmd_static)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m experiments", description=USAGE, epilog=EXAMPLES,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="one line per table: id, paper, label, kind, status").set_defaults(fn=cmd_list)

    show = sub.add_parser("show", help="a table's layout, rows, the paper's numbers and ours (the repository's "
                                       "own experiments: rows and ours)")
    show.add_argument("table")
    show.add_argument("--json", action="store_true", help="one JSON object: id, status, columns, rows")
    show.add_argument("--scale", choices=SCALES, default="tiny", help="which runs fill 'ours' (default: tiny)")
    show.add_argument("--runs-dir", default="runs")
    show.add_argument("--results-dir", default="reports/results",
                      help="tracked records read beside --runs-dir (default: the repository's; '' for none)")
    show.set_defaults(fn=cmd_show)

    run = sub.add_parser("run", help="train and test each row (each seed), then rebuild the report")
    run.add_argument("table")
    run.add_argument("--scale", choices=SCALES, default="tiny", help="tiny = embedded default (CPU, minutes)")
    run.add_argument("--rows", nargs="+", metavar="ROW", help="row keys (see `show`); default: all")
    run.add_argument("--seeds", type=_seed_count, default=None,
                     help=f"seeds 0..N-1 per row, N at most {MAX_SEEDS} (default: the table's, 3 at tiny scale "
                          f"where they fit the quick-start budget, else 1; see `show`)")
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
                     help="train again from scratch, moving the old run to <runs-dir>/.replaced/ (a run whose "
                          "metrics.json or checkpoint was written with other options is refused without it)")
    run.add_argument("--pretrained", help="initial weights: a local checkpoint file, timm:<model name>, "
                                          "official:<file> (an official Motionformer checkpoint) or "
                                          "run:<table>/<row>/<column> (a run's last checkpoint); "
                                          "torchscript:<file> reads a TorchScript archive's tensors, never its code")
    run.add_argument("--epochs", type=_positive,
                     help="override the schedule length (a step schedule's milestones then have to be below it: "
                          "--set 'optim.milestones=[...]')")
    run.add_argument("--batch-size", type=_positive)
    run.add_argument("--num-workers", type=int)
    run.add_argument("--accelerator", help="Lightning accelerator: cpu, gpu, auto")
    run.add_argument("--devices", type=_devices, help="Lightning devices: N, auto, or device indices such as 0,2")
    run.add_argument("--num-nodes", type=int)
    run.add_argument("--strategy", help="Lightning strategy: ddp, fsdp, deepspeed_stage_2, ...")
    run.add_argument("--precision", help="Lightning precision: 32-true, 16-mixed, bf16-mixed")
    run.add_argument("--accumulate-grad-batches", type=int, help="Lightning gradient accumulation (batches per step)")
    run.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's for this machine); "
                                                 "recorded in metrics.json")
    run.add_argument("--set", action="append", type=parse_setting, metavar="SECTION.FIELD=VALUE",
                     help="any config field, VALUE as JSON (else a string), e.g. --set trainer.max_steps=20 "
                          "--set 'data.synthetic_params={\"num_train\": 32, \"num_val\": 16, \"seed\": 0}'")
    run.add_argument("--jobs", type=parse_jobs, default=None, metavar="N|auto",
                     help="CPU runs trained side by side, each on cores/N threads (default auto: one per core, at "
                          "most 4, when every run is one CPU process; else 1)")
    run.add_argument("--no-progress-bar", action="store_true")
    run.set_defaults(fn=cmd_run)

    bench = sub.add_parser("bench", help="per row: parameters, GFLOPs per view, training and inference clips/s "
                                         "and peak memory on this machine's device, as a markdown table")
    bench.add_argument("table")
    bench.add_argument("--scale", choices=SCALES, default="tiny")
    bench.add_argument("--rows", nargs="+", metavar="ROW", help="row keys (see `show`); default: all")
    bench.add_argument("--batch-size", type=int, help="clips per step (default: the run's per-device batch)")
    bench.add_argument("--steps", type=int, default=5, help="timed steps per measurement (median; default 5)")
    bench.add_argument("--warmup", type=int, default=1, help="untimed steps first (default 1)")
    bench.add_argument("--device", help="cuda, cuda:1, cpu (default: cuda if available)")
    bench.add_argument("--threads", type=int, help="torch intra-op threads on the CPU")
    bench.set_defaults(fn=cmd_bench)

    # the subcommands that their own modules define
    for add_parser in (partial(add_smoke_command, positive=_positive),
                       partial(add_loader_rate_command, positive=_positive), add_static_parser,
                       add_pretrain_images_parser, add_pretrain_experts_parser, add_probe_experts_parser):
        add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # to say which command resumes an interrupted run
    try:
        return args.fn(args)
    # errors that name what is wrong (a file, a row, a table, an option) are one line; anything else is a bug and
    # keeps its traceback
    except (UnknownTableError, TableNotImplementedError, MissingDataError, KeyError, ValueError,
            FileNotFoundError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        print(f"error: {message}", file=sys.stderr)
        return 2
    except OSError as err:  # a folder or file that cannot be written (read-only, full); any other OSError is a bug
        if write_refused(err) is None:
            raise
        print(f"error: {write_refused(err)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
