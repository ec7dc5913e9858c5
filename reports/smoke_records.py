"""The paper-scale smoke's record files (``{"records": [...]}``, ``reports/benchmarks/smoke_*.json``): merged, read,
and rendered as a markdown table, one line per run (``python -m tools smoke`` and ``loader-rate`` write them)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from .benchmark_schemas import LoaderFile, SmokeFile, check_benchmark, read_benchmark

SHARED_NOTE = "device shared with {others} other process(es): times are upper bounds"  # a reduction, in words
_SHARED = re.compile(re.escape(SHARED_NOTE).replace(re.escape("{others}"), r"(\d+)"))
# How torch, cuBLAS and cuDNN say that an allocation on the device failed
DEVICE_MEMORY_ERRORS = ("OutOfMemoryError", "CUDA out of memory", "CUBLAS_STATUS_ALLOC_FAILED",
                        "CUDNN_STATUS_ALLOC_FAILED")


def write_records(path: str | Path, records: list[dict[str, Any]],
                  key: Callable[[dict[str, Any]], tuple] | None = None, kind: str = "smoke") -> Path:
    """Merge ``records`` into ``path`` ({"records": [...]}): each replaces the file's record of the same table, row and
    column (or ``key``) in its place (a sweep run again leaves the file's order, and its report's, as it was); the
    others are kept, and records new to the file come at its end. Smoke processes sharing a GPU merge into one file:
    the read and the write hold the file's lock (``.<name>.lock`` beside it), so that no process writes over
    another's new records. A file that is not a record file of ``kind`` (``read_records``), or a new record that is
    not one, stops the write: the file is left as it was."""
    from filelock import FileLock

    from data.atomic_write import atomic_write_text

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(path.parent / f".{path.name}.lock"):
        key = key or _key
        kept = read_records(path, kind) if path.exists() else []
        incoming = {key(r): r for r in records}
        merged = [incoming.get(key(r), r) for r in kept]
        present = {key(r) for r in kept}
        merged += [r for r in records if key(r) not in present]
        text = json.dumps({"records": merged}, indent=1, default=str) + "\n"
        check_benchmark(json.loads(text), path, KINDS[kind], f"not written: a new record is not one of `{kind}`",
                        "the file is left as it was")  # a file its readers would refuse is never written
        atomic_write_text(path, text)
    return path


def _key(record: dict[str, Any]) -> tuple[str, str, str]:
    return record["table"], record["row"], record["column"]


# the tool that writes each kind of record file -> the schema of its files
KINDS: dict[str, type[BaseModel]] = {"smoke": SmokeFile, "loader-rate": LoaderFile}


def read_records(path: str | Path, kind: str = "smoke") -> list[dict[str, Any]]:
    """The records of a file of ``python -m tools <kind> --record`` (``KINDS``), each with every field its readers
    take, of its type; else one line naming the file and the field (``reports.benchmark_schemas``)."""
    fix = f"restore it with `git checkout -- {path}`, or measure again with `python -m tools {kind} ... --record`"
    return read_benchmark(path, KINDS[kind], f"a record file of `{kind}`", fix)["records"]


def sharing(record: dict[str, Any]) -> int:
    """Processes that shared the device during the run, this one included (its reductions say so above 1)."""
    found = [int(m.group(1)) for note in record.get("reduced", []) if (m := _SHARED.fullmatch(note))]
    return 1 + found[0] if found else 1


def crowded_out(record: dict[str, Any]) -> bool:
    """A failure that is no verdict on the run: it ran out of device memory while other processes held part of it
    (a sweep's lanes). Only the run alone on the device says whether it fits."""
    error = record.get("error") or ""
    return record["status"] != "pass" and sharing(record) > 1 and any(s in error for s in DEVICE_MEMORY_ERRORS)


def _number(value: float | None, digits: int = 1) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def fits_text(record: dict[str, Any]) -> str:
    peak = record.get("paper_batch_peak_gib")
    if peak is None:
        return "—"
    measured = "" if record["batch"] == record["paper_batch"] else ", extrapolated"
    gpu = record.get("paper_gpu")
    if gpu is None:
        return f"{peak:.1f} GiB{measured}; GPU not named"
    return f"{peak:.1f} GiB{measured}: {'fits' if record['fits'] else 'does not fit'} {gpu}"


ERROR_CHARS = 110  # of a first error shown in a table (the record keeps it whole)


def markdown(records: list[dict[str, Any]]) -> str:
    """One line per run: pass or the first error, what was reduced, step and loader rates, memory and whether it
    fits the paper's GPU at the paper's batch."""
    from tabulate import tabulate

    lines = []
    for r in records:
        error = r["error"] or ""
        cut = "…" * (len(error) > ERROR_CHARS)
        status = "pass" if r["status"] == "pass" else \
            f"no verdict: out of device memory beside {sharing(r) - 1} other processes" if crowded_out(r) else \
            f"FAIL: {error[:ERROR_CHARS]}{cut}"
        if r.get("same_as"):
            status += f" (the run of {r['same_as']})"
        loader = r.get("loader_clips_s")
        step = r.get("step_clips_s")
        bound = "—" if loader is None or step is None else ("loader-bound" if loader < step else "step-bound")
        lines.append([r["table"], f"{r['row']} / {r['column']}", r["clip"], "; ".join(r["reduced"]) or "none",
                      status, _number(r.get("step_s"), 2), f"{_number(loader, 2)} / {_number(step, 2)} ({bound})",
                      _number(r.get("test_s"), 1), fits_text(r)])
    return tabulate(lines, headers=["table", "row / column", "clip (T×H×W)", "reduced from the paper's run", "result",
                                    "step (s)", "loader / step clips/s", "test batch (s)",
                                    "peak at the paper's batch"], tablefmt="github")
