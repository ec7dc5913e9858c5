"""The shift family's speed and memory records (``reports/benchmarks/shift_*.json``) and the README tables made
from them, so that no figure of those tables is typed in by hand.

``python -m tools shift-family --record FILE [options]`` measures, stamps every record with the machine, torch, the
commit and the command that re-measures it, and merges the records into FILE: the records of each device, unit,
shape, batch and compile mode it measured (``SETTING``) replace all the file's records of that setting (a ratio
divides two records of one run: the passes are interleaved so that load spreads evenly over the variants), the other
settings are kept. ``python -m reports readme`` renders every file as one table per device (``shift_tables``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from tabulate import tabulate

from .build import REPORTS_DIR

REPO = REPORTS_DIR.parent
BENCHMARKS_DIR = REPORTS_DIR / "benchmarks"
SHIFT_FILES = "shift_*.json"
SHIFT_VARIANTS = {"msca_kv": "MSCA-KV", "msca_pkv": "MSCA-pKV", "tokenshift": "TokenShift", "tsm": "TSM-ViT",
                  "xvit": "X-ViT"}  # the columns, beside the frame-wise ViT (``vit``) that every ratio divides by
STAMP = ("device_name", "torch", "commit", "measured_at", "command")
SETTING = ("device_name", "unit", "shape", "batch", "compiled")  # one row of a table: its records share these
# A table's rows in this order whatever order they were measured in (values not listed go last, in file order).
ROW_ORDER = {"unit": ("block", "model"), "shape": ("tiny", "paper"),
             "compiled": (None, "default", "reduce-overhead", "max-autotune")}


def setting(record: dict[str, Any]) -> tuple:
    """The setting a record was measured in (``SETTING``): a table's row."""
    return tuple(record.get(k) for k in SETTING)


Seconds = Annotated[float, Field(strict=True, gt=0, allow_inf_nan=False)]
Mebibytes = Annotated[float, Field(strict=True, ge=0, allow_inf_nan=False)]


class ShiftRecord(BaseModel):
    """The declared schema of one record of a shift file: its stamp (``STAMP``), its setting (``SETTING``), the
    variant and the times the tables divide (finite, positive); the memory columns where measured."""

    model_config = ConfigDict(extra="allow", strict=True)

    device_name: str
    torch: str
    commit: str
    measured_at: str
    command: str
    unit: str
    shape: str
    batch: Annotated[int, Field(ge=1)]
    compiled: str | None
    variant: str
    time_s: Seconds
    time_min_s: Seconds
    peak_mib: Mebibytes | None = None
    saved_mib: Mebibytes | None = None


class ShiftFile(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    records: list[ShiftRecord]


def read_records(path: Path) -> list[dict[str, Any]]:
    """The records of one file, each with every field the tables need, of its type (``ShiftRecord``); a file that
    is not such a list says so in one line, naming itself, the record and the field."""
    from data.root_files import unreadable_value
    from data.schemas import describe
    from experiments.harness.records import DamagedRecordError, read_json

    fix = f"restore it with `git checkout -- {path}`, or measure again with `python -m tools shift-family --record`"
    try:
        document = read_json(path, fix)
        ShiftFile.model_validate(document)
    except DamagedRecordError as err:
        raise ValueError(str(err)) from None
    except ValidationError as err:
        raise ValueError(f"{path}: not a benchmark file ({describe(err, most=1)}); {fix}") from None
    except ValueError as err:  # a number of more digits than Python converts, which read_json lets through
        raise ValueError(f"{path}: not valid JSON ({unreadable_value(err)}); {fix}") from None
    return document["records"]


def _row_rank(setting: tuple) -> tuple:
    values = dict(zip(SETTING, setting))
    rank = {k: order.index(values[k]) if values[k] in order else len(order) for k, order in ROW_ORDER.items()}
    return rank["unit"], rank["shape"], values["batch"], rank["compiled"]


def _memory(rows: list[dict[str, Any]]) -> str:
    """The baseline's memory and whether every variant's equals it (else the range of ratios)."""
    base = next(r for r in rows if r["variant"] == "vit")
    parts = []
    for key, label in (("saved_mib", "saved for backward"), ("peak_mib", "peak")):
        if key not in base:
            continue
        ratios = [r[key] / base[key] for r in rows if r["variant"] != "vit" and key in r]
        size = f"{base[key] / 1024:.2f} GiB" if base[key] >= 1024 else f"{base[key]:.2f} MiB"
        if not ratios:  # a file measured with --variants vit alone
            parts.append(f"{label} {size}")
            continue
        low, high = f"{min(ratios):.3f}", f"{max(ratios):.3f}"
        same = "all equal" if all(x == 1.0 for x in ratios) else f"all {low}×" if low == high else f"{low}–{high}×"
        parts.append(f"{label} {size}, {same}")
    return "; ".join(parts) or "not measured (compiled on a CPU)"


def _ops(base: dict[str, Any], by_variant: dict[str, dict[str, Any]]) -> str:
    """The ops the ViT's step dispatches and how many more each variant's does (``tools.shift_family``)."""
    if "ops" not in base:
        return "—"
    more = [f"+{by_variant[v]['ops'] - base['ops']}" if "ops" in by_variant.get(v, {}) else "—"
            for v in SHIFT_VARIANTS]
    return f"{base['ops']}; {' / '.join(more)}"


def shift_tables(benchmarks_dir: str | Path = BENCHMARKS_DIR) -> str:
    """Per file and device: one row per (unit, shape, batch, compile mode), the ViT's time (min, median) and
    every variant's ratio to it by the minimum (by the median), the ops each step dispatches, the memory, and under
    the table the command that measured each row, with its torch and commit."""
    out = []
    for path in sorted(Path(benchmarks_dir).resolve().glob(SHIFT_FILES)):
        records = read_records(path)
        for device in dict.fromkeys(r["device_name"] for r in records):
            settings: dict[tuple, list[dict[str, Any]]] = {}
            for r in records:
                if r["device_name"] == device:
                    settings.setdefault(tuple(r[k] for k in SETTING), []).append(r)
            lines, sources = [], {}
            for (_, unit, shape, batch, compiled) in sorted(settings, key=_row_rank):
                rows = settings[(device, unit, shape, batch, compiled)]
                by_variant = {r["variant"]: r for r in rows}
                base = by_variant.get("vit")
                if base is None:
                    raise ValueError(f"{path}: {unit}, {shape}, batch {batch} on {device} has no 'vit' record to "
                                     "divide by")
                ratios = [f"{by_variant[v]['time_min_s'] / base['time_min_s']:.3f} "
                          f"({by_variant[v]['time_s'] / base['time_s']:.3f})" if v in by_variant else "—"
                          for v in SHIFT_VARIANTS]
                mode = f"compiled ({compiled})" if compiled else "eager"
                lines.append([f"{unit}, {shape}, {batch}", mode,
                              f"{1e3 * base['time_min_s']:.2f} ({1e3 * base['time_s']:.2f})", *ratios,
                              _ops(base, by_variant), _memory(rows)])
                source = (base["command"], base["torch"], base["commit"], base["measured_at"])
                sources.setdefault(source, []).append(f"{unit}, {shape}, {batch}, {mode}")
            table = tabulate(lines, headers=["unit, shape, batch", "mode", "ViT ms: min (median)",
                                             *SHIFT_VARIANTS.values(), "ops: ViT; each variant's more", "memory"],
                             tablefmt="github")
            shown = path.relative_to(REPO) if path.is_relative_to(REPO) else path
            measured = [f"- `{command}` ({'; '.join(rows)}): torch {torch}, commit {commit}, {date}"
                        for (command, torch, commit, date), rows in sources.items()]
            out.append(f"**{device}** (records: `{shown}`):\n\n{table}\n\n" + "\n".join(measured))
    return "\n\n".join(out)
