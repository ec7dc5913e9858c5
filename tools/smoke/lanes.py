"""``python -m tools smoke ID ... --jobs N``: a sweep in N processes side by side on one device.

The tables are dealt into N lanes of about equal run counts; a table of more runs than a lane's fair share is cut by
rows into parts (each lane then runs such a part as ``smoke TABLE --rows ...``), so that one large table does not hold
the sweep up in a lane of its own. Every dataset the runs read is written first, the writers in parallel processes, so
that no lane waits on another's writer or writes the same files twice. A lane runs its whole tables in one ``smoke``
process and each part in one of its own, all with ``--sharing N`` (its records say that their times are upper bounds),
and all merge their records into one file as each run ends (``write_records`` holds the file's lock).

A process whose GPU context is lost (exit code 2; ``DeviceLost``) is started again after the run that lost it, so one
crash costs that run alone, and its failure stays recorded. Each lane's output goes to a log file. The lanes share the
device's memory as well: a run that ran out of it beside the others is no verdict, so when the lanes have ended, each
such run is stepped again with the device to itself.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import math
import multiprocessing
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Collection, Hashable, Sequence
from pathlib import Path
from typing import Any

from data.atomic_write import open_log
from data.command_line import printable
from reports.smoke_records import crowded_out, markdown, read_records

from .runs import SmokeOptions, data_request, echo_err, options_line, smoke_configs

RESUME_PREFIX = "resume after: "  # the line a sweep stopped by a lost GPU context prints: JSON [table, row, column]
MAX_RESTARTS = 20  # a lane that keeps losing its context stops trying
Part = tuple[str, tuple[str, ...]]  # a table and the rows of it a lane runs; no rows: the whole table


def balance(counts: dict[Hashable, int], jobs: int) -> list[list[Hashable]]:
    """Tables or parts (``counts``: runs of each, in sweep order) dealt into at most ``jobs`` lanes: the largest
    first, each onto the lane with the fewest runs so far; each lane keeps the sweep order."""
    order = list(counts)
    lanes: list[list[Hashable]] = [[] for _ in range(jobs)]
    loads = [0] * jobs
    for table in sorted(order, key=lambda t: -counts[t]):
        lane = loads.index(min(loads))
        lanes[lane].append(table)
        loads[lane] += counts[table]
    return [sorted(lane, key=order.index) for lane in lanes if lane]


def split(rows_of_runs: dict[str, list[str]], jobs: int) -> dict[Part, int]:
    """The parts a sweep deals (``rows_of_runs``: each table's runs, by the row each belongs to, in sweep order):
    a table whole, or, if it holds more runs than a lane's fair share, cut into runs of consecutive rows of at most
    that share each (a row keeps its columns together); runs per part."""
    share = math.ceil(sum(map(len, rows_of_runs.values())) / jobs)
    parts: dict[Part, int] = {}
    for table, runs in rows_of_runs.items():
        per_row = Counter(runs)  # in the order of the runs
        if len(runs) <= share or len(per_row) == 1:
            parts[(table, ())] = len(runs)
            continue
        rows: list[str] = []
        taken = 0
        for row, count in per_row.items():
            if rows and taken + count > share:
                parts[(table, tuple(rows))] = taken
                rows, taken = [], 0
            rows.append(row)
            taken += count
        parts[(table, tuple(rows))] = taken
    return parts


def shown(part: Part) -> str:
    table, rows = part
    return f"{table} --rows {' '.join(rows)}" if rows else table


def _write(request: dict[str, Any]) -> str:
    from data.synthetic.paper_shape import ensure_paper_shape

    return str(ensure_paper_shape(**request))


def write_data(requests: Sequence[dict[str, Any]], processes: int, echo: Callable[[str], None]) -> None:
    """Every distinct dataset of ``requests`` (``data_request``'s) written into the cache, one process each, at most
    ``processes`` at once; one already there is reused."""
    unique = list({json.dumps(r, sort_keys=True): r for r in requests}.values())
    if not unique:
        return
    context = multiprocessing.get_context("spawn")  # the parent stays free of threads a fork would copy
    with concurrent.futures.ProcessPoolExecutor(min(processes, len(unique)), mp_context=context) as pool:
        futures = {pool.submit(_write, request): request for request in unique}
        for future in concurrent.futures.as_completed(futures):
            request = futures[future]
            echo(f"data: {request['dataset']} ({request['num_train']} + {request['num_val']} samples) at "
                 f"{future.result()}")


def resume_point(log: Path, start: int = 0) -> list[str] | None:
    """The run after which a lane goes on: the last ``RESUME_PREFIX`` line of its log after byte ``start`` (where the
    process that stopped began writing), or None."""
    with open(log, "rb") as text:
        text.seek(start)
        lines = text.read().decode(errors="replace").splitlines()
    points = [line[len(RESUME_PREFIX):] for line in lines if line.startswith(RESUME_PREFIX)]
    return json.loads(points[-1]) if points else None


def lane_command(tables: Sequence[str], options: Sequence[str], after: Sequence[str] | None) -> list[str]:
    return [sys.executable, "-m", "tools", "smoke", *tables, *options,
            *(["--resume-after", *after] if after else [])]


def lane_commands(parts: Sequence[Part | str]) -> list[tuple[list[str], list[str]]]:
    """The ``smoke`` processes of a lane, in turn: (tables, options of their own). Whole tables in a row share one
    process; a part of a table (its rows) is a process of its own. A plain string is a whole table."""
    out: list[tuple[list[str], list[str]]] = []
    for table, rows in ((p, ()) if isinstance(p, str) else p for p in parts):
        if not rows and out and not out[-1][1]:
            out[-1][0].append(table)
        else:
            out.append(([table], ["--rows", *rows] if rows else []))
    return out


def run_lane(parts: Sequence[Part | str], options: Sequence[str], log: Path) -> int:
    """One lane to its end (``lane_commands``): each process started again after a run that lost the GPU context;
    the last nonzero exit code, else 0. A lost context ends the process with exit code 2, or with an abort when the
    context fails again as Python exits: either way the process has printed where to go on (``RESUME_PREFIX``)
    first."""
    codes = [_run_command(tables, [*options, *own], log) for tables, own in lane_commands(parts)]
    return next((code for code in reversed(codes) if code), 0)


def _run_command(tables: Sequence[str], options: Sequence[str], log: Path) -> int:
    after, code = None, 0
    for _ in range(MAX_RESTARTS + 1):
        start = log.stat().st_size if log.exists() else 0
        with open_log(log) as out:
            code = subprocess.run(lane_command(tables, options, after), stdout=out, stderr=subprocess.STDOUT,
                                  check=False).returncode
        point = resume_point(log, start) if code != 0 else None
        if point is None or point == after:
            return code
        after = point
        tables = list(tables)[list(tables).index(point[0]):]
    return code


def run_jobs(tables: Sequence[str], options: SmokeOptions, lane_options: Sequence[str], jobs: int, log_dir: Path,
             echo: Callable[[str], None], passed: Collection[tuple[str, str, str]] = (),
             alone_options: Sequence[str] | None = None, record: Path | None = None
             ) -> list[tuple[list[Part], int, Path]]:
    """The sweep in ``jobs`` lanes (module docstring), without the (table, row, column) runs in ``passed`` (which the
    lanes leave out too, told by ``lane_options``): (parts, exit code, log) per lane. With ``alone_options`` and the
    ``record`` file the lanes merge into, the runs that ran out of device memory beside the other lanes are then
    stepped again alone (``run_alone``), as one more entry."""
    configs = {table: [cfg for cfg in smoke_configs(table) if (table, cfg.row, cfg.column) not in passed]
               for table in tables}
    configs = {table: found for table, found in configs.items() if found or not passed}
    parts = split({table: [cfg.row for cfg in found] for table, found in configs.items()}, jobs)
    lanes = balance(parts, jobs)
    if not lanes:
        echo("no run left to step")
        return []
    write_data([r for found in configs.values() for cfg in found if (r := data_request(cfg, options))],
               os.cpu_count() or 1, echo)
    log_dir.mkdir(parents=True, exist_ok=True)
    logs = [log_dir / f"lane{i}.log" for i in range(len(lanes))]
    for lane, log in zip(lanes, logs, strict=True):
        open_log(log, append=False).close()
        echo(f"lane {log.stem}: {', '.join(map(shown, lane))} ({sum(parts[p] for p in lane)} runs) -> {log}")
    with concurrent.futures.ThreadPoolExecutor(len(lanes)) as pool:
        codes = list(pool.map(lambda item: run_lane(item[0], lane_options, item[1]), zip(lanes, logs, strict=True)))
    done = list(zip(lanes, codes, logs, strict=True))
    if alone_options is None or record is None:
        return done
    swept = {(table, cfg.row, cfg.column) for table, found in configs.items() for cfg in found}
    alone = run_alone(swept, record, alone_options, log_dir / "alone.log", echo)
    return done + ([alone] if alone else [])


def run_alone(swept: Collection[tuple[str, str, str]], record: Path, options: Sequence[str], log: Path,
              echo: Callable[[str], None]) -> tuple[list[Part], int, Path] | None:
    """The ``swept`` runs that ``record`` holds as out of device memory beside other processes (``crowded_out``),
    stepped again one at a time with the device to themselves (``options``: sharing 1): only then does a run that
    does not fit fail for its own sake. (parts, exit code, log), or None when there is none."""
    crowded = [r for r in read_records(record) if crowded_out(r) and (r["table"], r["row"], r["column"]) in swept] \
        if record.exists() else []
    if not crowded:
        return None
    rows: dict[str, dict[str, None]] = {}  # each table's rows, once each, in the record's order
    for r in crowded:
        rows.setdefault(r["table"], {})[r["row"]] = None
    parts: list[Part] = [(table, tuple(table_rows)) for table, table_rows in rows.items()]
    echo(f"alone: {len(crowded)} run(s) out of device memory beside the other lanes, stepped again alone -> {log}")
    codes = [_run_command([table], [*options, "--rows", *table_rows], log) for table, table_rows in parts]
    return parts, next((code for code in reversed(codes) if code), 0), log


def smoke_lanes(args: argparse.Namespace, tables: list[str], options: SmokeOptions, path: str | None,
                passed: set[tuple[str, str, str]]) -> int:
    """``smoke ... --jobs N``: the lanes' exit codes and logs, then the records."""
    if path is None or args.rows or args.resume_after:
        raise ValueError("--jobs needs --record (the lanes report through the record file) and takes neither "
                         "--rows nor --resume-after")
    # a run left to step alone has every core; its row's passed columns are left out
    alone_options = options_line(args, sharing=1, record=path)
    alone_options += [] if args.skip_passed else ["--skip-passed"]
    cores = os.cpu_count() or 1
    if not args.threads:  # each lane decodes and augments on the CPU, on a GPU too: the lanes share the cores
        args.threads = max(1, cores // args.jobs)
    elif args.threads * args.jobs > cores:
        echo_err(f"warning: {args.jobs} processes x {args.threads} torch threads on {cores} cores: they will contend "
                 f"(10 x 16 on 16 cores made runs 14x slower: docs/paper_scale_smoke.md); leave "
                 f"--threads out for a share each")
    lane_options = options_line(args, sharing=args.jobs, record=path)  # the one file, by name
    lanes = run_jobs(tables, options, lane_options, args.jobs, Path(args.log_dir), echo_err, passed,
                     alone_options=alone_options, record=Path(path))
    swept = [r for r in read_records(path) if r["table"] in tables] if Path(path).exists() else []
    swept.sort(key=lambda r: tables.index(r["table"]))  # the lanes wrote theirs interleaved
    print(markdown(swept))
    for lane, code, log in lanes:
        print(f"lane {log.stem} exit {code}: {', '.join(map(shown, lane))} (log {printable(str(log))})")
    print(f"-> {printable(str(path))}")
    return 0 if all(code == 0 for _, code, _ in lanes) else 1
