"""``python -m tools loader-rate ID ...``: the clips per second one loader process delivers on each distinct
training data path of the tables, at the paper's shape, without a model.

Each run resolves as ``run --scale paper`` resolves it and reads the smoke's generated files in the real dataset's
layout (``tools.smoke.runs.data_root``), through the same data module, reader, decoder and training transforms. Runs
whose training data path is the same (the data config but its batch, loader processes, root and test views, and the
task) are measured once. This is the figure ``presets.loader_workers`` divides a GPU's step rate by; the smoke's own
loader figure rests on one or two batches inside a training loop, this one on every item read in a fixed time.

The statistic, fixed before the first measurement (2026-11-27): after one warm-up item, the items one process reads in
``seconds`` of wall time (20 by default), over that time, at one torch thread. With ``processes`` above 1, that many
processes read the same path at once, each started together after its warm-up (a node's loader workers side by side);
the record keeps the lowest, the median and the highest of their rates.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import multiprocessing
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from data.command_line import SECONDS, THREADS, OneLineParser, count, printable
from experiments.harness.provenance import set_threads
from experiments.harness.spec import RunConfig, implemented_tables
from experiments.harness.tasks import get_task
from reports.smoke_records import write_records

from .smoke.runs import (
    RECORD_FILES,
    SmokeOptions,
    data_root,
    echo_err,
    first_error,
    smoke_config,
    smoke_configs,
    stamp,
)

RECORD_FILE = "loader_cpu.json"  # in reports/benchmarks/
# Fields that do not change what one training item costs to read: how many are batched or loaded at once, where the
# files are, and the test views
_NOT_THE_PATH = {"batch_size": 1, "num_workers": 0, "root": None, "test_clips": 1, "test_crops": 1,
                 "test_view_average": "probabilities"}


def record_key(record: dict[str, Any]) -> tuple:
    """What one record of a record file stands for: its path measured in one setting (a rate read alone and one read
    beside other processes, or at another thread count or size, are kept apart)."""
    return record["path"], record["shrink"], record["processes"], record["threads"]


def path_key(cfg: RunConfig) -> str:
    """What makes a training item cost what it costs: the task and the data config but ``_NOT_THE_PATH``."""
    return f"{cfg.task}: {dataclasses.replace(cfg.data, **_NOT_THE_PATH)!r}"


def data_paths(tables: Sequence[str], rows: Sequence[str] | None = None) -> dict[str, list[RunConfig]]:
    """The distinct training data paths of the tables' runs that train (``path_key``), each with its runs, in sweep
    order."""
    paths: dict[str, list[RunConfig]] = {}
    for table in tables:
        for cfg in smoke_configs(table, rows):
            if get_task(cfg.task).trains:
                paths.setdefault(path_key(cfg), []).append(cfg)
    return paths


def read_items(cfg: RunConfig, options: SmokeOptions, seconds: float, threads: int,
               barrier: Any = None) -> dict[str, float]:
    """One process's rate on the run's training data path: items read in ``seconds`` after one warm-up item (and,
    with a ``barrier``, after every process sharing it has warmed up)."""
    set_threads(threads)
    smoke = smoke_config(cfg, data_root(cfg, options, lambda line: None), options)
    with tempfile.TemporaryDirectory() as scratch:
        dm = get_task(smoke.task).datamodule(smoke, Path(scratch))
        dm.prepare_data()
        dm.setup("fit")
        dataset = dm.train_dataloader().dataset
        dataset[0]
        if barrier is not None:
            barrier.wait()
        items, started = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - started) < seconds:
            dataset[items % len(dataset)]
            items += 1
    return {"items": items, "seconds": round(elapsed, 2), "clips_s": round(items / elapsed, 2)}


_barrier: Any = None


def _share(barrier: Any) -> None:
    global _barrier
    _barrier = barrier


def _read_shared(cfg: RunConfig, options: SmokeOptions, seconds: float, threads: int) -> dict[str, float]:
    return read_items(cfg, options, seconds, threads, _barrier)


def loader_rate(cfg: RunConfig, options: SmokeOptions, seconds: float, threads: int, processes: int,
                runs: Sequence[RunConfig] = ()) -> dict[str, Any]:
    """The record of one data path (``cfg`` its first run, ``runs`` all that share it): pass with the rates, or fail
    with the first error."""
    from data.synthetic.paper_shape import describe

    record: dict[str, Any] = {
        "table": cfg.table, "row": cfg.row, "column": cfg.column, "dataset": cfg.data.dataset, "task": cfg.task,
        "path": path_key(cfg), "runs": [f"{r.table} {r.row} / {r.column}" for r in runs or [cfg]],
        "shrink": options.shrink, "threads": threads, "processes": processes, "seconds_asked": seconds, "data": None}
    try:
        root = data_root(cfg, options, lambda line: None)  # written once, before any process reads it
        record["data"] = describe(root) if root is not None else None
        if processes == 1:
            rates = [read_items(cfg, options, seconds, threads)]
        else:
            context = multiprocessing.get_context("spawn")
            with concurrent.futures.ProcessPoolExecutor(processes, mp_context=context, initializer=_share,
                                                        initargs=(context.Barrier(processes),)) as pool:
                rates = list(pool.map(_read_shared, *zip(*[(cfg, options, seconds, threads)] * processes,
                                                          strict=True)))
    except Exception as err:  # the record says which path failed and how; the sweep goes on
        return {**record, "status": "fail", "error": first_error(err)}
    each = sorted(r["clips_s"] for r in rates)
    return {**record, "status": "pass", "error": None, "clips_s": each[0], "median_clips_s": statistics.median(each),
            "max_clips_s": each[-1], "items": sum(r["items"] for r in rates)}


def measure_tables(tables: Sequence[str], options: SmokeOptions, seconds: float, threads: int, processes: int,
                   rows: Sequence[str] | None = None, echo: Callable[[str], None] = print,
                   on_record: Callable[[dict[str, Any]], None] = lambda record: None) -> list[dict[str, Any]]:
    """``loader_rate`` of every distinct training data path of the tables, each record handed to ``on_record`` as it
    ends."""
    records = []
    paths = data_paths(tables, rows)
    for i, runs in enumerate(paths.values(), 1):
        first = runs[0]
        echo(f"[{i}/{len(paths)}] {first.data.dataset}: {first.table} {first.row} / {first.column}"
             + (f" (and {len(runs) - 1} run(s) more)" if len(runs) > 1 else "") + " ...")
        record = loader_rate(first, options, seconds, threads, processes, runs)
        echo(f"    {record['clips_s']} clips/s" if record["status"] == "pass" else f"    fail: {record['error']}")
        on_record(record)
        records.append(record)
    return records


def markdown(records: Sequence[dict[str, Any]]) -> str:
    """One line per data path: the dataset and frame size, the first run, the runs sharing it, the rate(s)."""
    from tabulate import tabulate

    lines = []
    for r in records:
        shape = (r.get("data") or {}).get("shape")
        size = f"{shape['width']}×{shape['height']} at {shape['fps']:g} fps" if shape else "—"
        rate = f"FAIL: {r['error']}" if r["status"] != "pass" else f"{r['clips_s']:.2f}" if r["processes"] == 1 \
            else f"{r['clips_s']:.2f} / {r['median_clips_s']:.2f} / {r['max_clips_s']:.2f}"
        lines.append([r["dataset"], size, f"{r['table']} {r['row']} / {r['column']}", len(r["runs"]),
                      r["processes"], rate])
    return tabulate(lines, headers=["dataset", "files", "first run", "runs", "processes",
                                    "clips/s (lowest / median / highest)"], tablefmt="github")


def build_parser() -> argparse.ArgumentParser:
    rate = OneLineParser(prog="python -m tools loader-rate",
                                   description="clips/s one loader process reads on each distinct training data "
                                               "path of the tables, at paper shape on generated data, no model")
    rate.add_argument("tables", nargs="+", metavar="ID", help="table ids, or all")
    rate.add_argument("--rows", nargs="+", metavar="ROW", help="row keys of the one table (see `show`)")
    rate.add_argument("--seconds", type=SECONDS, default=20.0,
                      help="wall time each process reads items for, after one warm-up item (default 20)")
    rate.add_argument("--processes", type=count(1, 256, "a process count"), default=1,
                      help="processes reading the same path at once (default 1); the record keeps the lowest, "
                           "median and highest rate")
    rate.add_argument("--threads", type=THREADS, default=1, help="torch intra-op threads per process (default 1)")
    rate.add_argument("--shrink", type=count(1, 64, "a divisor"), default=1,
                      help="divide the crop and the written frame size by this (default 1: the paper's)")
    rate.add_argument("--cache-dir", default=".cache/paper_shape", help="where the generated data is written once")
    rate.add_argument("--epic-frames", action="store_true",
                      help="EPIC-KITCHENS-100 as its extracted frames (rgb_frames) instead of videos")
    rate.add_argument("--record", nargs="?", const="", default=None, metavar="FILE",
                      help="merge the records into FILE (default reports/benchmarks/loader_cpu.json), stamped with "
                           "commit, machine and command")
    return rate


def main(argv: Sequence[str] | None = None) -> int:
    """Clips/s of one loader process per distinct training data path, as a markdown table; exit 1 when a path
    fails."""
    import torch

    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.seconds <= 0:
        raise ValueError(f"--seconds must be above 0, got {args.seconds}")
    tables = implemented_tables() if args.tables == ["all"] else args.tables
    if args.rows and len(tables) != 1:
        raise ValueError("--rows names rows of one table; give one table id")
    options = SmokeOptions(shrink=args.shrink, cache_dir=Path(args.cache_dir), epic_frames=args.epic_frames)
    path = None if args.record is None else args.record or RECORD_FILES["cpu"].with_name(RECORD_FILE)
    torch.set_num_threads(args.threads)  # the stamp names this process's threads: those each reader takes
    stamped = stamp("cpu", args.argv, command="loader-rate")

    def keep(record: dict) -> None:  # each path as it ends: a stopped sweep keeps the paths it finished
        if path is not None:
            write_records(path, [{**record, **stamped}], key=record_key, kind="loader-rate")

    records = measure_tables(tables, options, args.seconds, args.threads, args.processes, args.rows, echo_err, keep)
    print(markdown(records))
    if path is not None:
        print(f"-> {printable(str(path))}")
    return 0 if all(r["status"] == "pass" for r in records) else 1
