"""A report cell from the records that fill it: the mean and spread over seeds, the per-seed values the tests of
``reports.statistics`` read, the data and device that produced them (``aggregate``), and a table's cells by row
(``metric_values``). Only reads records."""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from experiments.harness.spec import TableSpec

from .chance import unread_top_k


@dataclass(frozen=True)
class Cell:
    """Mean and spread over seeds, and what produced them: scale, dataset and device (``device_label``); the
    per-seed values, their seeds and the data they ran on (``data_identity``) are what ``reports.statistics``
    tests."""

    mean: float
    std: float
    n: int
    scale: str
    dataset: str
    device: str
    values: tuple[float, ...] = ()
    seeds: tuple[int, ...] = ()
    data: str = ""

    def render(self, digits: int = 1) -> str:
        spread = f" ± {self.std:.{digits}f}" if self.n > 1 else ""
        return f"{self.mean:.{digits}f}{spread} (n={self.n}; {self.scale}, {self.dataset}, {self.device})"


def device_label(provenance: dict[str, Any] | None) -> str:
    """Where a run ran, short enough for a cell: "CPU", "2 CPU processes", "8 × H100 80GB HBM3" (the full names,
    precision and batch are in the report's header)."""
    if not provenance or not provenance.get("devices"):
        return "device not recorded"
    processes, name = provenance.get("world_size", 1), provenance["devices"][0]
    # no accelerator: an evaluation-only record from before they named their device; those recorded the CPU
    if "CPU" in (provenance.get("accelerator") or "CPUAccelerator"):
        return "CPU" if processes == 1 else f"{processes} CPU processes"
    return f"{processes} × {name.removeprefix('NVIDIA ')}"


def generated_instead_of_release(record: dict[str, Any]) -> bool:
    """Whether the run generated a dataset in place of its release (``data.generated_in_place_of_release``): its
    number is not the release's."""
    asked = ((record.get("config") or {}).get("data") or {}).get("synthetic_params")
    if asked or not (record.get("data") or {}).get("synthetic"):
        return False
    from data import generated_in_place_of_release  # imports torch: only for such a record, so `show` answers at once

    return generated_in_place_of_release(record["dataset"], None, {})  # generated: it read no root


def data_label(record: dict[str, Any]) -> str:
    """The data a record's cell names: the dataset, marked when it was generated in place of its release."""
    return f"{record['dataset']} generated locally" if generated_instead_of_release(record) else record["dataset"]


def data_identity(record: dict[str, Any]) -> str:
    """The data a run trained and was tested on, as far as pairing seeds goes: a generated set's folder (its name
    holds the set's hash) or a real dataset's root, with the dataset's name; "" when the record does not say."""
    data = record.get("data") or {}
    root = data.get("root")
    return f"{record['dataset']}:{Path(str(root)).name if data.get('synthetic') else root}" if root else ""


def aggregate(records: list[dict[str, Any]], scale: str) -> dict[tuple[str, str], dict[str, Cell]]:
    """(row, column) -> {metric: Cell} over the seeds of one scale; a top-k metric that guessing nearly fills on
    the recorded classes (``unread_top_k``) is left out."""
    values: dict[tuple[str, str, str], list[tuple[int, float]]] = defaultdict(list)
    datasets: dict[tuple[str, str], set[str]] = defaultdict(set)
    devices: dict[tuple[str, str], set[str]] = defaultdict(set)
    identities: dict[tuple[str, str], set[str]] = defaultdict(set)
    unread = unread_top_k(records, scale)
    for r in records:
        if r["scale"] != scale:
            continue
        datasets[(r["row"], r["column"])].add(data_label(r))
        devices[(r["row"], r["column"])].add(device_label(r.get("provenance")))
        identities[(r["row"], r["column"])].add(data_identity(r))
        for metric, value in r["metrics"].items():
            if metric not in unread.get((r["row"], r["column"]), {}):
                values[(r["row"], r["column"], metric)].append((int(r["seed"]), float(value)))
    cells: dict[tuple[str, str], dict[str, Cell]] = defaultdict(dict)
    for (row, column, metric), by_seed in values.items():
        by_seed.sort()
        vals = [v for _, v in by_seed]
        std = statistics.stdev(vals) if len(vals) > 1 else 0.0
        identity = identities[(row, column)]  # one data for every seed, or none to pair on
        cells[(row, column)][metric] = Cell(statistics.fmean(vals), std, len(vals), scale,
                                            " / ".join(sorted(datasets[(row, column)])),
                                            " / ".join(sorted(devices[(row, column)])), tuple(vals),
                                            tuple(s for s, _ in by_seed),
                                            next(iter(identity)) if len(identity) == 1 else "")
    return cells


def metric_values(spec: TableSpec, cells: dict[tuple[str, str], dict[str, Cell]]) -> dict[str, dict[str, Any]]:
    """row key -> {column: Cell | None} for metric columns, plus derived columns as floats (None if missing)."""
    out: dict[str, dict[str, Any]] = {}
    for row in spec.rows:
        values: dict[str, Any] = {}
        for mc in spec.metric_columns:
            values[mc.column] = cells.get((row.key, mc.run_name), {}).get(mc.metric)
        for dc in spec.derived_columns:
            inputs = [values.get(c) for c in dc.inputs]
            values[dc.column] = dc.compute(*(c.mean for c in inputs)) if all(inputs) else None
        out[row.key] = values
    return out
