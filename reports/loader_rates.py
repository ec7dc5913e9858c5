"""The loader-process rule's inputs and counts, from the tracked records (``experiments.presets.loader_workers``):
the fastest paper-shape training step recorded on an H100, and each dataset's slowest training data path as one
loader process reads it (``python -m tools loader-rate all --record``, ``reports/benchmarks/loader_cpu.json``),
beside a second run of the same command (``loader_cpu_repeat.json``) that shows how far such a rate moves.
``python -m reports readme`` renders them in reports/generated/loader_rates.md; tests/experiments/test_loader_workers.py
holds the presets to the counts."""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

from experiments.d3da.tables import D3DA_PAPER
from experiments.harness.spec import DataConfig
from experiments.presets import EPIC_KITCHENS_100, KINETICS_400, KINETICS_600, SSV2, loader_workers

from .build import REPORTS_DIR
from .smoke_records import read_records, sharing

BENCHMARKS_DIR = REPORTS_DIR / "benchmarks"
RATES, REPEAT = "loader_cpu.json", "loader_cpu_repeat.json"
# preset -> the datasets whose loader rates it rests on (Kinetics-600's files are Kinetics-400's shape)
PRESETS: dict[str, tuple[DataConfig, tuple[str, ...]]] = {
    "KINETICS_400": (KINETICS_400, ("kinetics400", "kinetics600")),
    "KINETICS_600": (KINETICS_600, ("kinetics400", "kinetics600")),
    "SSV2": (SSV2, ("ssv2",)), "EPIC_KITCHENS_100": (EPIC_KITCHENS_100, ("epic_kitchens100",)),
    **{f"D3DA_PAPER {column}": (data, (data.dataset,)) for column, data in D3DA_PAPER.data.items()}}


def _records(name: str, benchmarks_dir: Path) -> list[dict[str, Any]]:
    return read_records(Path(benchmarks_dir) / name, "loader-rate")


def fastest_step(benchmarks_dir: Path = BENCHMARKS_DIR) -> tuple[float, str]:
    """Training clips/s of the fastest paper-shape step recorded on an H100 (forward and backward, eager; a smoke
    step only at the paper's batch, on a device of its own), and the file that holds it."""
    from .benchmarks import read_records as shift_records

    rates = [(r["batch"] / r["time_s"], "shift_h100.json")
             for r in shift_records(Path(benchmarks_dir) / "shift_h100.json")
             if r["shape"] == "paper" and r["unit"] == "model" and r["compiled"] is None]
    for path in sorted(Path(benchmarks_dir).glob("smoke_cuda*.json")):
        rates += [(r["step_clips_s"], path.name) for r in read_records(path)
                  if r["status"] == "pass" and r.get("step_clips_s") is not None and "H100" in r["device_name"]
                  and r["batch"] == r["paper_batch"] and r["shrink"] == 1 and sharing(r) == 1]
    if not rates:
        raise ValueError(f"{benchmarks_dir}: no paper-shape training step recorded on an H100")
    return max(rates)


def rule_rates(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records the rule reads: paper shape, one process alone, one thread, passed."""
    return [r for r in records if r["status"] == "pass" and r["shrink"] == 1 and r["processes"] == 1
            and r["threads"] == 1]


def slowest_path(datasets: tuple[str, ...], benchmarks_dir: Path = BENCHMARKS_DIR,
                 name: str = RATES) -> dict[str, Any]:
    """The record of the datasets' slowest training data path (``rule_rates``)."""
    found = _slowest(rule_rates(_records(name, benchmarks_dir)), datasets)
    if found is None:
        raise ValueError(f"{name}: no paper-shape loader rate of {', '.join(datasets)}; "
                         f"run `python -m tools loader-rate all --record`")
    return found


def _slowest(records: list[dict[str, Any]], datasets: tuple[str, ...]) -> dict[str, Any] | None:
    found = [r for r in records if r["dataset"] in datasets]
    return min(found, key=lambda r: r["clips_s"]) if found else None


def needed_workers(name: str, benchmarks_dir: Path = BENCHMARKS_DIR) -> int:
    """Loader processes per GPU the rule gives the preset ``name`` of ``PRESETS``."""
    return loader_workers(fastest_step(benchmarks_dir)[0], slowest_path(PRESETS[name][1], benchmarks_dir)["clips_s"])


def repeat_spread(benchmarks_dir: Path = BENCHMARKS_DIR) -> tuple[int, float, float]:
    """Paths in both runs, and the median and largest |repeat - first| / first over them."""
    first = {r["path"]: r["clips_s"] for r in rule_rates(_records(RATES, benchmarks_dir))}
    again = {r["path"]: r["clips_s"] for r in rule_rates(_records(REPEAT, benchmarks_dir))}
    moves = [abs(again[p] - first[p]) / first[p] for p in first if p in again]
    if not moves:
        raise ValueError(f"{REPEAT}: no path that {RATES} also holds")
    return len(moves), statistics.median(moves), max(moves)


def loader_rates_table(benchmarks_dir: Path = BENCHMARKS_DIR) -> str:
    """Per preset: its slowest training path, that path's rate in both runs, the count the rule gives from each,
    and the preset's own; then the fastest step and how far the second run moved the rates."""
    from tabulate import tabulate

    step, source = fastest_step(benchmarks_dir)
    again = {r["path"]: r for r in rule_rates(_records(REPEAT, benchmarks_dir))}
    lines = []
    for name, (preset, datasets) in PRESETS.items():
        slowest = slowest_path(datasets, benchmarks_dir)
        shape = (slowest.get("data") or {}).get("shape") or {}
        repeat = again.get(slowest["path"])
        lines.append([name, f"{slowest['table']} {slowest['row']} / {slowest['column']}",
                      f"{shape.get('width')}×{shape.get('height')} at {shape.get('fps', 0):g} fps",
                      f"{slowest['clips_s']:.2f}", f"{repeat['clips_s']:.2f}" if repeat else "—",
                      loader_workers(step, slowest["clips_s"]),
                      loader_workers(step, slowest_path(datasets, benchmarks_dir, REPEAT)["clips_s"]),
                      preset.num_workers])
    table = tabulate(lines, headers=["preset", "slowest training path", "files", "clips/s", "run again",
                                     "processes by the rule", "from the run again", "the preset's"],
                     tablefmt="github")
    paths, median, largest = repeat_spread(benchmarks_dir)
    return (f"{table}\n\nThe step: {step:.1f} clips/s (`reports/benchmarks/{source}`). Run again, the {paths} "
            f"paths' rates moved by a median of {median:.0%} and at most {largest:.0%}.")


def host_workers_table(rates_file: str | Path, benchmarks_dir: Path = BENCHMARKS_DIR) -> str:
    """The rule's loader processes per GPU for another host: per preset, its slowest training path in ``rates_file``
    (``python -m tools loader-rate ... --record FILE`` run on that host; ``rule_rates`` only) against the
    fastest step recorded here, beside the preset's own count; a preset whose datasets the file lacks says so."""
    from tabulate import tabulate

    written = "write one with `python -m tools loader-rate ... --record FILE`"
    usable = rule_rates(read_records(rates_file, "loader-rate"))
    if not usable:
        raise ValueError(f"{rates_file}: no rate read by one process alone, at one torch thread and the paper's "
                         f"shape (loader-rate's defaults); {written}")
    step, source = fastest_step(benchmarks_dir)
    lines = []
    for name, (preset, datasets) in PRESETS.items():
        slowest = _slowest(usable, datasets)
        if slowest is None:
            lines.append([name, f"not measured ({', '.join(datasets)})", "—", "—", preset.num_workers])
            continue
        count, keeping_up = loader_workers(step, slowest["clips_s"]), math.ceil(step / slowest["clips_s"])
        lines.append([name, f"{slowest['table']} {slowest['row']} / {slowest['column']}", f"{slowest['clips_s']:.2f}",
                      f"{count} (the cap; {keeping_up} would keep up)" if keeping_up > count else count,
                      preset.num_workers])
    table = tabulate(lines, headers=["preset", "slowest training path there", "clips/s", "processes by the rule",
                                     "the preset's"], tablefmt="github")
    hosts = ", ".join(dict.fromkeys(str(r.get("device_name")) for r in usable))
    return (f"{table}\n\nThe rates: {rates_file} ({hosts}), each path read by one process alone at the paper's "
            f"shape. The step: {step:.1f} clips/s (`reports/benchmarks/{source}`). Where the counts differ, give the "
            f"runs the host's: `python -m experiments run ID --scale paper --num-workers N`.")
