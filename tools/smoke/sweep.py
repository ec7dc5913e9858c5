"""``python -m experiments smoke ID ...``: the command line of the paper-scale smoke (``experiments.smoke``), its
resumption after a lost GPU context and its side-by-side processes (``experiments.smoke_jobs``)."""

from __future__ import annotations

import argparse
import json
import os
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any


def add_command(sub: Any, positive: Callable[[str], int]) -> None:
    """The ``smoke`` subcommand of ``python -m experiments`` (``positive``: the CLI's count type)."""
    smoke = sub.add_parser("smoke", help="every run of the tables at paper scale, a few optimizer steps and one "
                                         "multi-view test batch each, on generated data of the datasets' shape")
    smoke.add_argument("tables", nargs="+", metavar="ID", help="table ids, or all")
    smoke.add_argument("--scale", choices=("paper",), default="paper", help="the paper's model and data (only)")
    smoke.add_argument("--rows", nargs="+", metavar="ROW", help="row keys of the one table (see `show`)")
    smoke.add_argument("--steps", type=positive, default=3,
                       help="optimizer steps per run (default 3: the first warms up, the last is measured for "
                            "memory on the CPU)")
    smoke.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    smoke.add_argument("--batch-size", type=positive,
                       help="clips per step (default: 1 on the CPU, the paper's per-GPU batch on a GPU)")
    smoke.add_argument("--shrink", type=positive, default=1,
                       help="divide the crop and the written frame size by this (default 1: the paper's)")
    smoke.add_argument("--threads", type=int, help="torch intra-op threads")
    smoke.add_argument("--strategy", default="auto",
                       help="Lightning strategy on the one device (default auto; fsdp: a step through FSDP)")
    smoke.add_argument("--sharing", type=positive, default=1,
                       help="processes sharing the device at once, this one included (default 1); above 1 the "
                            "records say that their times are upper bounds")
    smoke.add_argument("--cache-dir", default=".cache/paper_shape", help="where the generated data is written once")
    smoke.add_argument("--epic-frames", action="store_true",
                       help="write EPIC-KITCHENS-100 as its extracted frames (rgb_frames, which Motionformer's code "
                            "reads) instead of videos")
    smoke.add_argument("--record", nargs="?", const="", default=None, metavar="FILE",
                       help="merge the records into FILE (default reports/benchmarks/smoke_cpu.json, or "
                            "smoke_cuda.json on a GPU), stamped with commit, device and command")
    smoke.add_argument("--jobs", type=positive, metavar="N",
                       help="N lanes of processes side by side on the device, the tables dealt between them "
                            "(a large one cut by rows), the data written first; a process that loses the GPU "
                            "context goes on after that run (needs --record)")
    smoke.add_argument("--log-dir", default=".cache/smoke_logs", help="with --jobs: where each process's log goes")
    smoke.add_argument("--skip-passed", action="store_true",
                       help="leave out the runs the record file already holds as passed (a sweep that goes on where "
                            "an earlier one stopped; needs --record)")
    smoke.add_argument("--resume-after", nargs=3, metavar=("TABLE", "ROW", "COLUMN"),
                       help="the runs after this one (a sweep stopped by a lost GPU context prints it)")
    smoke.set_defaults(fn=cmd_smoke)


def add_loader_rate_command(sub: Any, positive: Callable[[str], int]) -> None:
    """The ``loader-rate`` subcommand (``experiments.loader_rate``)."""
    rate = sub.add_parser("loader-rate", help="clips/s one loader process reads on each distinct training data "
                                              "path of the tables, at paper shape on generated data, no model")
    rate.add_argument("tables", nargs="+", metavar="ID", help="table ids, or all")
    rate.add_argument("--rows", nargs="+", metavar="ROW", help="row keys of the one table (see `show`)")
    rate.add_argument("--seconds", type=float, default=20.0,
                      help="wall time each process reads items for, after one warm-up item (default 20)")
    rate.add_argument("--processes", type=positive, default=1,
                      help="processes reading the same path at once (default 1); the record keeps the lowest, "
                           "median and highest rate")
    rate.add_argument("--threads", type=positive, default=1, help="torch intra-op threads per process (default 1)")
    rate.add_argument("--shrink", type=positive, default=1,
                      help="divide the crop and the written frame size by this (default 1: the paper's)")
    rate.add_argument("--cache-dir", default=".cache/paper_shape", help="where the generated data is written once")
    rate.add_argument("--epic-frames", action="store_true",
                      help="EPIC-KITCHENS-100 as its extracted frames (rgb_frames) instead of videos")
    rate.add_argument("--record", nargs="?", const="", default=None, metavar="FILE",
                      help="merge the records into FILE (default reports/benchmarks/loader_cpu.json), stamped with "
                           "commit, machine and command")
    rate.set_defaults(fn=cmd_loader_rate)


def cmd_loader_rate(args: argparse.Namespace) -> int:
    """Clips/s of one loader process per distinct training data path (``experiments.loader_rate``)."""
    import torch

    from .loader_rate import RECORD_FILE, markdown, measure_tables, record_key
    from .smoke import RECORD_FILES, SmokeOptions, all_tables, echo_err, stamp
    from .smoke_records import write_records

    if args.seconds <= 0:
        raise ValueError(f"--seconds must be above 0, got {args.seconds}")
    tables = all_tables() if args.tables == ["all"] else args.tables
    if args.rows and len(tables) != 1:
        raise ValueError("--rows names rows of one table; give one table id")
    options = SmokeOptions(shrink=args.shrink, cache_dir=Path(args.cache_dir), epic_frames=args.epic_frames)
    path = None if args.record is None else args.record or RECORD_FILES["cpu"].with_name(RECORD_FILE)
    torch.set_num_threads(args.threads)  # the stamp names this process's threads: those each reader takes
    stamped = stamp("cpu", args.argv[1:], command="loader-rate")

    def keep(record: dict) -> None:  # each path as it ends: a stopped sweep keeps the paths it finished
        if path is not None:
            write_records(path, [{**record, **stamped}], key=record_key)

    records = measure_tables(tables, options, args.seconds, args.threads, args.processes, args.rows, echo_err, keep)
    print(markdown(records))
    if path is not None:
        print(f"-> {path}")
    return 0 if all(r["status"] == "pass" for r in records) else 1


def cmd_smoke(args: argparse.Namespace) -> int:
    """Every run of the tables at paper scale through the run path on generated data of the datasets' shape: pass
    or the first error, step and loader rates, memory against the paper's GPU (``experiments.smoke``)."""
    import torch

    from .smoke import RECORD_FILES, DeviceLost, SmokeOptions, all_tables, echo_err, smoke_table, stamp
    from .smoke_jobs import RESUME_PREFIX
    from .smoke_records import markdown, write_records

    require_device(args.device)
    tables = all_tables() if args.tables == ["all"] else args.tables
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
        return _smoke_jobs(args, tables, options, path, passed)
    tables, after = _resumed(tables, args.resume_after)
    stamped = stamp(args.device, args.argv[1:])  # the command as typed, after `smoke`
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
            again = ["python", "-m", "experiments", "smoke", *tables[tables.index(point[0]):], *_options(args),
                     "--resume-after", *point]
            echo_err(f"stopped: {lost}. The runs after it need a new process (the records keep the runs before); "
                     f"go on with: {shlex.join(again)}")
            echo_err(RESUME_PREFIX + json.dumps(point))
            return 2
    print(markdown(records))
    if path is not None:
        print(f"-> {path}")
    return 0 if all(r["status"] == "pass" for r in records) else 1


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
    from .smoke_records import read_records

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


def _options(args: argparse.Namespace, sharing: int | None = None, record: str | None = None) -> list[str]:
    """The smoke options of ``args`` as a command line (``--resume-after`` and ``--jobs`` left out; ``sharing`` and
    ``record`` in place of its own where given): what a resumed sweep or a side-by-side process takes."""
    out = ["--device", args.device, "--steps", str(args.steps), "--shrink", str(args.shrink), "--strategy",
           args.strategy, "--sharing", str(sharing or args.sharing), "--cache-dir", args.cache_dir]
    out += ["--batch-size", str(args.batch_size)] if args.batch_size else []
    out += ["--threads", str(args.threads)] if args.threads else []
    out += ["--rows", *args.rows] if args.rows else []
    out += ["--skip-passed"] if args.skip_passed else []
    out += ["--epic-frames"] if args.epic_frames else []
    record = args.record if record is None else record
    return out + (["--record", record] if record else ["--record"] if record == "" else [])


def _smoke_jobs(args: argparse.Namespace, tables: list[str], options: Any, path: str | None,
                passed: set[tuple[str, str, str]]) -> int:
    """``smoke ... --jobs N`` (``experiments.smoke_jobs``): the lanes' exit codes and logs, then the records."""
    from .smoke import echo_err
    from .smoke_jobs import run_jobs, shown
    from .smoke_records import markdown, read_records

    if path is None or args.rows or args.resume_after:
        raise ValueError("--jobs needs --record (the lanes report through the record file) and takes neither "
                         "--rows nor --resume-after")
    # a run left to step alone has every core; its row's passed columns are left out
    alone_options = _options(args, sharing=1, record=path)
    alone_options += [] if args.skip_passed else ["--skip-passed"]
    cores = os.cpu_count() or 1
    if not args.threads:  # each lane decodes and augments on the CPU, on a GPU too: the lanes share the cores
        args.threads = max(1, cores // args.jobs)
    elif args.threads * args.jobs > cores:
        echo_err(f"warning: {args.jobs} processes x {args.threads} torch threads on {cores} cores: they will contend "
                 f"(10 x 16 on 16 cores made runs 14x slower: experiments/README.md#paper-scale-smoke); leave "
                 f"--threads out for a share each")
    lane_options = _options(args, sharing=args.jobs, record=path)  # the one file, by name
    lanes = run_jobs(tables, options, lane_options, args.jobs, Path(args.log_dir), echo_err, passed,
                     alone_options=alone_options, record=Path(path))
    swept = [r for r in read_records(path) if r["table"] in tables] if Path(path).exists() else []
    swept.sort(key=lambda r: tables.index(r["table"]))  # the lanes wrote theirs interleaved
    print(markdown(swept))
    for lane, code, log in lanes:
        print(f"lane {log.stem} exit {code}: {', '.join(map(shown, lane))} (log {log})")
    print(f"-> {path}")
    return 0 if all(code == 0 for _, code, _ in lanes) else 1
