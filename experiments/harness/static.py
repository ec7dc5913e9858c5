"""Static columns: cells computed from a row's paper-scale configuration, without training, and their record.

Any paper's spec uses these functions in its ``StaticColumn``s: GFLOPs of one view, parameters, peak training
memory. They run when a table runs (or ``python -m experiments static ID``), never when a report is built;
``compute_static`` stores every cell in ``runs/<table>/static.json`` with the device it was measured on and the
configuration it was made for (its column's ``inputs``), and the reports read that record. A cell measured on a
GPU is kept when a later run on a machine without one can only say ``needs GPU``; a report flags a cell whose
configuration is no longer the row's (``stale_note``).
"""

from __future__ import annotations

import hashlib
import json
import platform
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, StrictStr, ValidationError, field_validator

from data.root_files import unreadable_value
from data.schemas import describe

from .record_schemas import Finite
from .records import DamagedRecordError, read_json
from .run_dir import RunsTree
from .spec import Computed, MetricColumn, RowSpec, RunConfig, StaticColumn, TableSpec, _plain, with_defaults
from .tasks import build_model, model_kwargs

STATIC_RECORD = "static.json"
MEASURED = "measured on "  # source prefix of a cell measured on a device
NEEDS_GPU = "needs GPU"


# ---- column functions ------------------------------------------------------------------------------------------


def paper_config(spec: TableSpec, row: RowSpec, data_key: str | None = None) -> RunConfig:
    """The row's run configuration at paper scale (first metric column, or ``data_key``)."""
    column = next((c for c in spec.metric_columns if data_key in (None, c.data_key(row))), None)
    if column is None:
        column = MetricColumn(data_key or "K-400")
    return spec.resolve(row, column, "paper", seed=0)


def model_inputs(cfg: RunConfig) -> dict[str, Any]:
    """The model a configuration builds: its registry name and constructor arguments (the clip size among them)."""
    return _plain({"model": cfg.model.name, **model_kwargs(cfg)})


def paper_model_inputs(spec: TableSpec, row: RowSpec) -> dict[str, Any]:
    """What a static cell of ``row`` is a function of, unless its column says otherwise: the paper-scale model
    of the row's first column (a measurement's protocol, its batch, precision and optimizer, is the column's)."""
    return model_inputs(paper_config(spec, row))


TRAJECTORY_ATTENTIONS = ("trajectory", "trajectory_approx")


def memory_inputs(spec: TableSpec, row: RowSpec) -> dict[str, Any]:
    """The paper-scale model, and for trajectory attention which stage two it is measured with: the lean path
    (``models.attention.trajectory_pool``, one query frame a pass: the least memory; the default here, also on a GPU,
    where training runs the fused kernel unless told otherwise), the fused kernel (``stage_two_kernel="triton"``) or
    the autograd stage two (``memory_lean=False``). A memory cell measured on one path does not describe another,
    though the model's options read the same. The step (``models.memory.cuda_step_peak_bytes``) is named too: since
    AdamW's moments are made before it, a cell measured with a first step the gradient scaler may have skipped is
    flagged."""
    inputs = {**paper_model_inputs(spec, row), "training_step": "adamw_moments_made_first"}
    if inputs.get("attn_layer") in TRAJECTORY_ATTENTIONS:
        options = inputs.get("attn_kwargs") or {}
        if not options.get("memory_lean", True):
            inputs["trajectory_backward"] = "autograd"
        else:
            inputs["trajectory_backward"] = "fused" if options.get("stage_two_kernel") == "triton" else "lean"
    return inputs


def measured_model_kwargs(cfg: RunConfig, backward: str | None) -> dict[str, Any]:
    """The model's constructor arguments for a memory cell that states ``backward`` (``memory_inputs``): "lean"
    pins the PyTorch stage two, which a CUDA run would otherwise replace by the fused kernel."""
    kwargs = model_kwargs(cfg)
    if backward == "lean":
        kwargs["attn_kwargs"] = {**(kwargs.get("attn_kwargs") or {}), "stage_two_kernel": "pytorch"}
    return kwargs


def views_inputs(data_key: str | None = None) -> Callable[[TableSpec, RowSpec], dict[str, Any]]:
    """The paper-scale model and its test views (for cells that count every view)."""

    def inputs(spec: TableSpec, row: RowSpec) -> dict[str, Any]:
        cfg = paper_config(spec, row, data_key)
        return {**model_inputs(cfg), "test_clips": cfg.data.test_clips, "test_crops": cfg.data.test_crops}
    return inputs


def cell_inputs(column: StaticColumn, spec: TableSpec, row: RowSpec) -> dict[str, Any]:
    return _plain(dict((column.inputs or paper_model_inputs)(spec, row)))


def inputs_key(inputs: dict[str, Any]) -> str:
    """A short content key: a record stores each distinct configuration once, its cells refer to it by key."""
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:16]


def changed_inputs(recorded: dict[str, Any], today: dict[str, Any]) -> list[str]:
    """``name recorded → today`` for every input that differs (nested options as ``a.b``)."""
    old, new = _flat(with_defaults(recorded)), _flat(with_defaults(today))
    return [f"{key} {_shown(old, key)} → {_shown(new, key)}" for key in sorted(old.keys() | new.keys())
            if old.get(key, _UNSET) != new.get(key, _UNSET)]


def stale_note(column: StaticColumn, spec: TableSpec, row: RowSpec, record: dict[str, Any],
               cell: dict[str, Any]) -> str | None:
    """Why a stored cell of ``record`` may not describe today's configuration of ``row``; None when it does."""
    measured = str(cell.get("source", "")).startswith(MEASURED)
    made, again = ("measured", " on such a device") if measured else ("computed", "")
    again = f"`python -m experiments static {spec.table_id}`{again} makes it again"
    recorded = record.get("configurations", {}).get(cell.get("configuration"))
    if recorded is None:
        return f"{made} before static records kept their configuration; {again}"
    changed = changed_inputs(recorded, cell_inputs(column, spec, row))
    if not changed:
        return None
    how = f" ({cell['configuration_note']})" if "configuration_note" in cell else ""
    return f"{made} for another configuration{how}: {', '.join(changed)}; {again}"


_UNSET = object()


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(value, dict) or (not value and prefix):
        return {prefix.removesuffix("."): value}
    out: dict[str, Any] = {}
    for key, item in value.items():
        out.update(_flat(item, f"{prefix}{key}."))
    return out


def _shown(values: dict[str, Any], key: str) -> str:
    return "(absent)" if key not in values else json.dumps(values[key])


def clip_shape(cfg: RunConfig, batch: int = 1) -> tuple[int, int, int, int, int]:
    return (batch, 3, cfg.data.num_frames, cfg.data.crop_size, cfg.data.crop_size)


def gflops(cfg: RunConfig, formulation: str = "published", num_classes: int = 400) -> float:
    """GFLOPs of one view (one multiply-add = one FLOP), counted on the meta device; see ``models.flops``."""
    from models import count_flops

    return count_flops(build_model(cfg, num_classes, device="meta"), clip_shape(cfg), formulation)


def paper_gflops(spec: TableSpec, row: RowSpec) -> Computed:
    """GFLOPs of one view at the paper's configuration, as the paper counts them, and as our fast path runs."""
    cfg = paper_config(spec, row)
    published, ours = gflops(cfg, "published"), gflops(cfg, "computed")
    extra = f"; {ours:.1f} as we compute it" if abs(ours - published) > 0.05 else ""
    return Computed(published, f"{published:.1f} (computed{extra})")


def gflops_views(data_key: str) -> Callable[[TableSpec, RowSpec], Computed]:
    """GFLOPs of one view × the test protocol's spatial crops × temporal clips (the papers' "GFLOPs × views")."""

    def compute(spec: TableSpec, row: RowSpec) -> Computed:
        cfg = paper_config(spec, row, data_key)
        value = gflops(cfg, "published")
        return Computed(value, f"{value:.1f}×{cfg.data.test_crops}×{cfg.data.test_clips} (computed)")
    return compute


def paper_params(spec: TableSpec, row: RowSpec) -> Computed:
    """Parameters of the row's model at paper configuration (400 classes), counted on the meta device."""
    model = build_model(paper_config(spec, row), num_classes=400, device="meta")
    millions = sum(p.numel() for p in model.parameters()) / 1e6
    return Computed(millions, f"{millions:.1f}M (computed)")


def peak_memory(reference_row: RowSpec | None = None) -> Callable[[TableSpec, RowSpec], Computed]:
    """Max memory (GiB) of a training step at paper shape: measured on a GPU, otherwise ``needs GPU`` plus the ratio
    of activation memory (bytes saved for backward, counted on the meta device) to the reference row's."""

    def compute(spec: TableSpec, row: RowSpec) -> Computed:
        from models.memory import activation_bytes, cuda_training_peak_gib

        cfg = paper_config(spec, row)
        backward = memory_inputs(spec, row).get("trajectory_backward")
        measured = cuda_training_peak_gib(cfg.model.name, clip_shape(cfg, batch=4), num_classes=400,
                                          **measured_model_kwargs(cfg, backward))
        if measured is not None:
            device = measured_device()
            return Computed(measured, f"{measured:.1f} GiB (measured, batch 4, {device})", MEASURED + device)
        reference = reference_row or spec.rows[0]
        ref = paper_config(spec, reference)
        ours = activation_bytes(build_model(cfg, 400, device="meta"), clip_shape(cfg))
        base = activation_bytes(build_model(ref, 400, device="meta"), clip_shape(ref))
        ratio = ours / base
        return Computed(ratio, f"needs GPU; activations {ours / 2**30:.2f} GiB/clip = {ratio:.2f}× "
                               f"`{reference.key}`", NEEDS_GPU)
    return compute


def measured_device() -> str:
    """What this process measures on, named as every benchmark names it: the GPU, or the CPU's model and threads."""
    import torch

    from models.hardware import device_name

    return device_name("cuda" if torch.cuda.is_available() else "cpu")


# ---- the record ------------------------------------------------------------------------------------------------


def static_record_path(runs_root: str | Path, table_id: str) -> Path:
    return RunsTree(runs_root).table(table_id) / STATIC_RECORD


def compute_static(spec: TableSpec, runs_root: str | Path = "runs", commit: str = "unknown",
                   echo: Callable[[str], None] = print) -> dict[str, Any] | None:
    """Compute every static cell of ``spec`` and store them in ``runs/<table>/static.json``; None if it has none.

    A cell already measured on a device is kept when this machine can only say ``needs GPU``.
    """
    if not spec.static_columns:
        return None
    path = static_record_path(runs_root, spec.table_id)
    cells: dict[str, dict[str, dict[str, Any]]] = {}
    configurations: dict[str, dict[str, Any]] = {}
    for col in spec.static_columns:
        echo(f"static column {col.column!r}: {len(spec.rows)} row(s) at paper configuration")
        for row in spec.rows:
            value = _as_computed(col.compute(spec, row), col.digits)
            inputs = cell_inputs(col, spec, row)
            configurations[inputs_key(inputs)] = inputs
            cells.setdefault(row.key, {})[col.column] = {"value": value.value, "text": value.text,
                                                         "source": value.source, "configuration": inputs_key(inputs)}
    record = {
        "table": spec.table_id,
        "kind": "static columns",
        **keep_measured(read_static(path), {"cells": cells, "configurations": configurations}),
        "device": measured_device(),
        "git_commit": commit,
        "computed_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": {"python": platform.python_version(), "platform": platform.platform()},
    }
    from data.atomic_write import atomic_write_text

    atomic_write_text(path, json.dumps(record, indent=2, ensure_ascii=False))  # a reader never sees half a record
    return record


def keep_measured(previous: dict[str, Any] | None, record: dict[str, Any]) -> dict[str, Any]:
    """``record``'s cells and configurations, except where this machine could only say ``needs GPU`` and
    ``previous`` (an earlier static record) holds a measurement: that is kept, with the configuration it was
    measured for (a report flags it when that is no longer the row's)."""
    previous = previous or {}
    cells = {row: dict(columns) for row, columns in record["cells"].items()}
    for row, columns in cells.items():
        for column, cell in columns.items():
            old = previous.get("cells", {}).get(row, {}).get(column)
            if old and cell["source"] == NEEDS_GPU and str(old.get("source", "")).startswith(MEASURED):
                columns[column] = old
    known = {**previous.get("configurations", {}), **record.get("configurations", {})}
    used = {cell["configuration"] for columns in cells.values() for cell in columns.values() if "configuration" in cell}
    return {"cells": cells, "configurations": {key: known[key] for key in sorted(used) if key in known}}


def read_static(path: str | Path, fix: str | None = None) -> dict[str, Any] | None:
    """A static record, None if absent; one that is not UTF-8 JSON of a static record's shape (``check_static_shape``)
    raises ``DamagedRecordError`` naming the file, the key and ``fix`` (default: regenerate the local record)."""
    path = Path(path)
    if not path.exists():
        return None
    fix = fix or local_static_fix(path)
    try:
        document = read_json(path, fix)
    except DamagedRecordError:
        raise
    except ValueError as err:  # a number of more digits than Python converts, which read_json lets through
        raise DamagedRecordError(f"{path}: not valid JSON ({unreadable_value(err)}); {fix}") from None
    return check_static_shape(document, path, fix)


def local_static_fix(path: str | Path) -> str:
    return f"delete it and run `python -m experiments static {Path(path).parent.name}` to compute it again"


def tracked_static_fix(path: str | Path) -> str:
    table = Path(path).parent.name
    return (f"restore it with `git checkout -- {path}`, or compute it again (`python -m experiments static {table}`) "
            f"and track it (`python -m reports track {table}`)")


class _Part(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)  # keys no reader takes are not checked


class StaticCell(_Part):
    """One cell, as the reports, ``stale_note`` and ``keep_measured`` read it: its value (a finite number, or null
    for a cell that is only text), the text shown, where it came from (``MEASURED`` + a device, ``NEEDS_GPU``,
    ``computed``, ``rendered``), and the key of the configuration it was made for."""

    value: Finite | None
    text: StrictStr
    source: StrictStr
    configuration: StrictStr | None = None
    configuration_note: StrictStr | None = None


class StaticRecord(_Part):
    """The declared schema of ``runs/<table>/static.json`` and its tracked copy, as ``compute_static`` writes it:
    rows to columns to cells, the configurations the cells name, and the stamp. ``computed_at`` is an ISO 8601
    time: ``reports track`` orders two records by it."""

    table: StrictStr | None = None
    kind: StrictStr | None = None
    cells: dict[str, dict[str, StaticCell]]  # ``reports track`` and the tables take it whole
    configurations: dict[str, dict[str, Any]] = {}
    device: StrictStr | None = None
    git_commit: StrictStr | None = None
    computed_at: StrictStr | None = None
    host: dict[str, StrictStr | None] | None = None

    @field_validator("computed_at")
    @classmethod
    def _a_time(cls, value: str | None) -> str | None:
        if value is not None:
            datetime.fromisoformat(value)  # a ValueError says what it could not read
        return value


def check_static_shape(record: Any, path: str | Path, fix: str) -> dict[str, Any]:
    """``record`` if it is a static record as its readers take it (``StaticRecord``); else ``DamagedRecordError``
    naming the file and each bad field."""
    if not isinstance(record, dict):
        raise DamagedRecordError(f"{path}: not a static record (the file is not a JSON object); {fix}")
    try:
        StaticRecord.model_validate(record)
    except ValidationError as err:
        raise DamagedRecordError(f"{path}: not a static record ({describe(err)}); {fix}") from None
    return record


def _as_computed(value: float | str | Computed, digits: int) -> Computed:
    if isinstance(value, Computed):
        return value
    if isinstance(value, str):
        return Computed(None, value, "rendered")
    return Computed(float(value), f"{value:.{digits}f} (computed)")
