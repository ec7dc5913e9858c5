"""``python -m tools smoke ID [ID ...]``: every run of the tables at paper scale, one after another (a run stepped
and measured: ``tools.smoke.step``), each record merged into the record file as its run ends, and a sweep that goes
on after a lost GPU context (``--resume-after``) or where an earlier one stopped (``--skip-passed``); ``--jobs N``
runs it in N processes side by side (``tools.smoke.lanes``)."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

from data.command_line import MEASURED_BATCH, THREADS, OneLineParser, count, printable
from experiments.harness.records import comparable_config
from experiments.harness.spec import implemented_tables
from reports.smoke_records import markdown, read_records, write_records

from .lanes import RESUME_PREFIX, smoke_lanes
from .runs import RECORD_FILES, SmokeOptions, echo_err, options_line, smoke_config, smoke_configs, stamp
from .step import DeviceLost, smoke_run

HELP = ("every run of the tables at paper scale, a few optimizer steps and one multi-view test batch each, on "
        "generated data of the datasets' shape")


def build_parser() -> argparse.ArgumentParser:
    smoke = OneLineParser(prog="python -m tools smoke", description=HELP)
    smoke.add_argument("tables", nargs="+", metavar="ID", help="table ids, or all")
    smoke.add_argument("--scale", choices=("paper",), default="paper", help="the paper's model and data (only)")
    smoke.add_argument("--rows", nargs="+", metavar="ROW", help="row keys of the one table (see `show`)")
    smoke.add_argument("--steps", type=count(1, 1000, "a step count"), default=3,
                       help="optimizer steps per run (default 3: the first warms up, the last is measured for "
                            "memory on the CPU)")
    smoke.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    smoke.add_argument("--batch-size", type=MEASURED_BATCH,
                       help="clips per step (default: 1 on the CPU, the paper's per-GPU batch on a GPU)")
    smoke.add_argument("--shrink", type=count(1, 64, "a divisor"), default=1,
                       help="divide the crop and the written frame size by this (default 1: the paper's)")
    smoke.add_argument("--threads", type=THREADS, help="torch intra-op threads")
    smoke.add_argument("--strategy", default="auto",
                       help="Lightning strategy on the one device (default auto; fsdp: a step through FSDP)")
    smoke.add_argument("--sharing", type=count(1, 64, "a process count"), default=1,
                       help="processes sharing the device at once, this one included (default 1); above 1 the "
                            "records say that their times are upper bounds")
    smoke.add_argument("--cache-dir", default=".cache/paper_shape", help="where the generated data is written once")
    smoke.add_argument("--epic-frames", action="store_true",
                       help="write EPIC-KITCHENS-100 as its extracted frames (rgb_frames, which Motionformer's code "
                            "reads) instead of videos")
    smoke.add_argument("--record", nargs="?", const="", default=None, metavar="FILE",
                       help="merge the records into FILE (default reports/benchmarks/smoke_cpu.json, or "
                            "smoke_cuda.json on a GPU), stamped with commit, device and command")
    smoke.add_argument("--jobs", type=count(1, 64, "a lane count"), metavar="N",
                       help="N lanes of processes side by side on the device, the tables dealt between them "
                            "(a large one cut by rows), the data written first; a process that loses the GPU "
                            "context goes on after that run (needs --record)")
    smoke.add_argument("--log-dir", default=".cache/smoke_logs", help="with --jobs: where each process's log goes")
    smoke.add_argument("--skip-passed", action="store_true",
                       help="leave out the runs the record file already holds as passed (a sweep that goes on where "
                            "an earlier one stopped; needs --record)")
    smoke.add_argument("--resume-after", nargs=3, metavar=("TABLE", "ROW", "COLUMN"),
                       help="the runs after this one (a sweep stopped by a lost GPU context prints it)")
    return smoke


def main(argv: Sequence[str] | None = None) -> int:
    """Every run of the tables at paper scale through the run path on generated data of the datasets' shape: pass
    or the first error, step and loader rates, memory against the paper's GPU; exit 1 when a run fails, 2 when the
    GPU's context is lost (the runs after it need a new process)."""
    import torch

    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # the command as typed, after `smoke`
    require_device(args.device)
    tables = implemented_tables() if args.tables == ["all"] else args.tables
    if args.rows and len(tables) != 1:
        raise ValueError("--rows names rows of one table; give one table id")
    if args.threads:
        torch.set_num_threads(args.threads)
    options = SmokeOptions(device=args.device, steps=args.steps, batch_size=args.batch_size, shrink=args.shrink,
                           cache_dir=Path(args.cache_dir), strategy=args.strategy,
                           sharing=args.jobs or args.sharing, epic_frames=args.epic_frames)
    path = None if args.record is None else args.record or RECORD_FILES["cpu" if args.device == "cpu" else "cuda"]
    passed = _passed(path, args.skip_passed)
    if args.jobs:
        return smoke_lanes(args, tables, options, path, passed)
    tables, after = _resumed(tables, args.resume_after)
    stamped = stamp(args.device, args.argv)
    records, done = [], {}

    def keep(record: dict) -> None:  # each run as it ends: a stopped sweep keeps the runs it finished
        if path is not None:
            write_records(path, [{**record, **stamped}])

    for table_id in tables:
        try:
            records += smoke_table(table_id, options, args.rows, echo=echo_err, done=done, on_record=keep,
                                   after=after if table_id == tables[0] else None,
                                   skip={(row, column) for table, row, column in passed if table == table_id})
        except DeviceLost as lost:  # nothing more can run on the GPU in this process: say where to go on from
            print(markdown([*records, lost.record]))
            point = [lost.record["table"], lost.record["row"], lost.record["column"]]
            again = ["python", "-m", "tools", "smoke", *tables[tables.index(point[0]):], *options_line(args),
                     "--resume-after", *point]
            echo_err(f"stopped: {lost}. The runs after it need a new process (the records keep the runs before); "
                     f"go on with: {shlex.join(again)}")
            echo_err(RESUME_PREFIX + json.dumps(point))
            return 2
    print(markdown(records))
    if path is not None:
        print(f"-> {printable(str(path))}")
    return 0 if all(r["status"] == "pass" for r in records) else 1


def smoke_table(table_id: str, options: SmokeOptions, rows: Sequence[str] | None = None,
                echo: Callable[[str], None] = print, done: dict[str, dict[str, Any]] | None = None,
                on_record: Callable[[dict[str, Any]], None] = lambda record: None,
                after: tuple[str, str] | None = None,
                skip: Collection[tuple[str, str]] = ()) -> list[dict[str, Any]]:
    """Every run of the table (or of ``rows``; with ``after`` = (row, column), the runs after that one; without the
    (row, column) runs in ``skip``); a run whose smoke configuration equals one already in ``done`` (another row's or
    table's, keyed by ``comparable_config``) reuses its record, saying so. ``on_record`` gets each record as its run
    ends, also the record a ``DeviceLost`` carries before it is raised on."""
    done = {} if done is None else done
    records = []
    configs = smoke_configs(table_id, rows)
    if not configs:
        echo(f"{table_id}: no run to step: its cells are static columns (`python -m experiments static "
             f"{table_id}` computes them, as `run` does)")
    if skip:
        echo(f"{table_id}: {sum((c.row, c.column) in skip for c in configs)} run(s) left out: already passed")
    if after is not None:
        keys = [(cfg.row, cfg.column) for cfg in configs]
        if after not in keys:
            raise ValueError(f"{table_id} has no run {after[0]} / {after[1]} to go on after; its runs: "
                             + ", ".join(f"{row}/{column}" for row, column in keys))
        configs = configs[keys.index(after) + 1:]
    configs = [cfg for cfg in configs if (cfg.row, cfg.column) not in skip]
    for i, cfg in enumerate(configs, 1):
        key = json.dumps(comparable_config(smoke_config(cfg, None, options).to_dict()), sort_keys=True, default=str)
        if key in done:
            source = done[key]
            records.append({**source, "table": cfg.table, "row": cfg.row, "column": cfg.column,
                            "same_as": f"{source['table']}/{source['row']}/{source['column']}"})
            echo(f"[{i}/{len(configs)}] {cfg.table} {cfg.row} / {cfg.column}: the same run as {records[-1]['same_as']}")
            on_record(records[-1])
            continue
        echo(f"[{i}/{len(configs)}] {cfg.table} {cfg.row} / {cfg.column} ({cfg.data.dataset}, {cfg.model.name}) ...")
        try:
            record = smoke_run(cfg, options, echo)
        except DeviceLost as lost:
            echo(f"    fail: {lost.record['error']}")
            on_record(lost.record)
            raise
        echo(f"    {record['status']}" + (f": {record['error']}" if record["error"] else "")
             + f" ({record['seconds']:.0f}s)")
        done[key] = record
        records.append(record)
        on_record(record)
    return records


def require_device(device: str) -> None:
    """Refuse, before anything is written or built, a CUDA device this process cannot use."""
    import torch

    try:
        parsed = torch.device(device)
    except RuntimeError as err:
        raise ValueError(f"--device {device}: not a device ({err}); the smoke runs on cpu, cuda or cuda:N") from err
    if parsed.type == "cpu":
        return
    if parsed.type != "cuda":
        raise ValueError(f"--device {device}: the smoke runs on cpu, cuda or cuda:N")
    if not torch.cuda.is_available():
        raise ValueError(f"--device {device}: this torch ({torch.__version__}) sees no CUDA device; run the smoke on "
                         "the CPU (--device cpu, the default) or on a machine with a GPU")
    if parsed.index is not None and parsed.index >= torch.cuda.device_count():
        raise ValueError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s), "
                         "numbered from 0")


def _passed(path: str | None, skip_passed: bool) -> set[tuple[str, str, str]]:
    """(table, row, column) of the runs the record file holds as passed, with ``--skip-passed``; else none."""
    if not skip_passed:
        return set()
    if path is None:
        raise ValueError("--skip-passed reads the record file: give --record")
    if not Path(path).exists():
        return set()
    return {(r["table"], r["row"], r["column"]) for r in read_records(path) if r["status"] == "pass"}


def _resumed(tables: list[str], resume_after: list[str] | None) -> tuple[list[str], tuple[str, str] | None]:
    """The tables from ``--resume-after``'s on, and the (row, column) after which its first goes on."""
    if not resume_after:
        return tables, None
    table, row, column = resume_after
    if table not in tables:
        raise ValueError(f"--resume-after names {table}, which is not among the tables swept: {' '.join(tables)}")
    return tables[tables.index(table):], (row, column)
