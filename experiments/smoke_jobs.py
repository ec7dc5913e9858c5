"""``python -m experiments smoke ID ... --jobs N``: a sweep in N processes side by side on one device.

The tables are dealt into N lanes of about equal run counts. Every dataset the runs read is written first, the
writers in parallel processes, so that no lane waits on another's writer or writes the same files twice. Each lane
is one ``smoke`` process over its tables with ``--sharing N`` (its records say that their times are upper bounds),
and all merge their records into one file as each run ends (``write_records`` holds the file's lock). A lane whose
GPU context is lost (exit code 2; ``DeviceLost``) is started again after the run that lost it, so one crash costs
that run alone, and its failure stays recorded. Each lane's output goes to a log file.
"""

from __future__ import annotations

import concurrent.futures
import json
import multiprocessing
import os
import subprocess
import sys
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

from .smoke import SmokeOptions, data_request, smoke_configs

RESUME_PREFIX = "resume after: "  # the line a sweep stopped by a lost GPU context prints: JSON [table, row, column]
MAX_RESTARTS = 20  # a lane that keeps losing its context stops trying


def balance(counts: dict[str, int], jobs: int) -> list[list[str]]:
    """Tables (``counts``: runs per table, in sweep order) dealt into at most ``jobs`` lanes: the largest table first,
    each onto the lane with the fewest runs so far; each lane keeps the sweep order."""
    order = list(counts)
    lanes: list[list[str]] = [[] for _ in range(jobs)]
    loads = [0] * jobs
    for table in sorted(order, key=lambda t: -counts[t]):
        lane = loads.index(min(loads))
        lanes[lane].append(table)
        loads[lane] += counts[table]
    return [sorted(lane, key=order.index) for lane in lanes if lane]


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


def resume_point(log: Path) -> list[str] | None:
    """The run after which a lane goes on: the last ``RESUME_PREFIX`` line of its log, or None."""
    points = [line[len(RESUME_PREFIX):] for line in log.read_text(errors="replace").splitlines()
              if line.startswith(RESUME_PREFIX)]
    return json.loads(points[-1]) if points else None


def lane_command(tables: Sequence[str], options: Sequence[str], after: Sequence[str] | None) -> list[str]:
    return [sys.executable, "-m", "experiments", "smoke", *tables, *options,
            *(["--resume-after", *after] if after else [])]


def run_lane(tables: Sequence[str], options: Sequence[str], log: Path) -> int:
    """One lane to its end: its ``smoke`` process, started again after each run that lost the GPU context; the exit
    code of the last process. A lost context ends the process with exit code 2, or with an abort when the context
    fails again as Python exits: either way the process has printed where to go on (``RESUME_PREFIX``) first."""
    after, code = None, 0
    for _ in range(MAX_RESTARTS + 1):
        with open(log, "a") as out:
            code = subprocess.run(lane_command(tables, options, after), stdout=out, stderr=subprocess.STDOUT,
                                  check=False).returncode
        point = resume_point(log) if code != 0 else None
        if point is None or point == after:
            return code
        after = point
        tables = list(tables)[list(tables).index(point[0]):]
    return code


def run_jobs(tables: Sequence[str], options: SmokeOptions, lane_options: Sequence[str], jobs: int, log_dir: Path,
             echo: Callable[[str], None], passed: Collection[tuple[str, str, str]] = ()
             ) -> list[tuple[list[str], int, Path]]:
    """The sweep in ``jobs`` lanes (module docstring), without the (table, row, column) runs in ``passed`` (which the
    lanes leave out too, told by ``lane_options``): (tables, exit code, log) per lane."""
    configs = {table: [cfg for cfg in smoke_configs(table) if (table, cfg.row, cfg.column) not in passed]
               for table in tables}
    configs = {table: found for table, found in configs.items() if found or not passed}
    lanes = balance({table: len(found) for table, found in configs.items()}, jobs)
    if not lanes:
        echo("no run left to step")
        return []
    write_data([r for found in configs.values() for cfg in found if (r := data_request(cfg, options))],
               os.cpu_count() or 1, echo)
    log_dir.mkdir(parents=True, exist_ok=True)
    logs = [log_dir / f"lane{i}.log" for i in range(len(lanes))]
    for lane, log in zip(lanes, logs):
        log.write_text("")
        echo(f"lane {log.stem}: {' '.join(lane)} ({sum(len(configs[t]) for t in lane)} runs) -> {log}")
    with concurrent.futures.ThreadPoolExecutor(len(lanes)) as pool:
        codes = list(pool.map(lambda item: run_lane(item[0], lane_options, item[1]), zip(lanes, logs)))
    return list(zip(lanes, codes, logs))
