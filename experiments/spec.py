"""Table specs: which model, data and schedule each row of a paper table runs, at each scale.

A spec is data. Rows differ only in what the paper's table varies (``RowSpec.model``); everything else comes
from the scale preset shared by all rows of the table. ``resolve`` turns (table, row, column, scale, seed) into
one frozen ``RunConfig`` that the runner executes and ``--dry-run`` prints.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .paper_tables import PaperTable, UnknownTableError, paper_table, paper_tables

Scale = Literal["tiny", "paper"]
SCALES: tuple[str, ...] = ("tiny", "paper")


@dataclass(frozen=True)
class ModelConfig:
    name: str  # entrypoint in the models registry, e.g. "vit_base_patch16_video"
    overrides: Mapping[str, Any] = field(default_factory=dict)  # constructor arguments the row sets
    pretrained: str | None = None  # local checkpoint file or "timm:<model name>"; None = from scratch


@dataclass(frozen=True)
class DataConfig:
    dataset: str  # "synth_appearance", "synth_motion", "kinetics400", "ssv2", ...
    root: str | None = None  # None: synthetic sets are generated into the cache on first use
    num_frames: int = 8
    frame_stride: int = 2  # dense sampling stride (ignored by segment sampling)
    sampling: str | None = None  # "dense" | "segments" | None = the dataset's convention
    crop_size: int = 32
    train_scale: tuple[int, int] = (32, 40)  # short-side scale jitter range
    hflip: bool | None = None  # None = the dataset's convention (never for direction-dependent labels)
    batch_size: int = 16
    num_workers: int = 2
    test_clips: int = 2  # temporal views at test time
    test_crops: int = 1  # spatial views at test time
    synthetic_params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OptimConfig:
    lr: float = 1e-4
    weight_decay: float = 0.05
    label_smoothing: float = 0.2
    epochs: int = 35
    warmup_epochs: int = 0
    schedule: Literal["step", "cosine"] = "step"
    milestones: tuple[int, ...] = (20, 30)  # "step": divide by 1/gamma at these epochs
    gamma: float = 0.1


@dataclass(frozen=True)
class TrainerConfig:
    """Lightning Trainer flags; hardware and distribution are Lightning's (DDP, FSDP, DeepSpeed via strategy)."""

    accelerator: str = "auto"
    devices: int | str = "auto"
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str = "32-true"
    accumulate_grad_batches: int = 1
    gradient_clip_val: float | None = None
    check_val_every_n_epoch: int = 1
    log_every_n_steps: int = 10


@dataclass(frozen=True)
class ScalePreset:
    """Everything a table's rows share at one scale; ``data`` is keyed by the table's result column."""

    description: str
    model: ModelConfig
    data: Mapping[str, DataConfig]
    optim: OptimConfig
    trainer: TrainerConfig = TrainerConfig()


@dataclass(frozen=True)
class RowSpec:
    key: str  # short id used by --rows and in run directories
    paper_row: int  # index of the row in the paper's table
    label: str  # readable label for reports
    model: Mapping[str, Any] = field(default_factory=dict)  # model overrides this row sets (the ablated choice)


@dataclass(frozen=True)
class MetricColumn:
    column: str  # the paper's column name, e.g. "K-400"
    metric: str = "top1"  # key in the run's metrics


@dataclass(frozen=True)
class StaticColumn:
    """A column computed from the model at paper configuration, without training (e.g. GFLOPs)."""

    column: str
    compute: Callable[["TableSpec", RowSpec], float]
    digits: int = 1
    note: str = ""


@dataclass(frozen=True)
class RunConfig:
    table: str
    row: str
    column: str
    scale: str
    seed: int
    model: ModelConfig
    data: DataConfig
    optim: OptimConfig
    trainer: TrainerConfig

    def to_dict(self) -> dict[str, Any]:
        return _plain(dataclasses.asdict(self))

    def run_dir(self, runs_root: str | Path = "runs") -> Path:
        """runs/<table>/<row>/seed<k>/<scale>-<column>: one TensorBoard run per scale and dataset column."""
        return Path(runs_root) / self.table / self.row / f"seed{self.seed}" / f"{self.scale}-{column_slug(self.column)}"


@dataclass(frozen=True)
class TableSpec:
    table_id: str
    rows: tuple[RowSpec, ...]
    metric_columns: tuple[MetricColumn, ...]
    scales: Mapping[str, ScalePreset]
    static_columns: tuple[StaticColumn, ...] = ()
    notes: str = ""

    @property
    def paper(self) -> PaperTable:
        return paper_table(self.table_id)

    def row(self, key: str) -> RowSpec:
        for r in self.rows:
            if r.key == key:
                return r
        raise KeyError(f"{self.table_id}: unknown row {key!r}; rows are: {', '.join(r.key for r in self.rows)}")

    def resolve(
        self, row: RowSpec, column: str, scale: str, seed: int, data_root: str | Path | None = None
    ) -> RunConfig:
        if scale not in self.scales:
            raise ValueError(f"{self.table_id}: unknown scale {scale!r}; choose from {', '.join(self.scales)}")
        preset = self.scales[scale]
        data = preset.data[column]
        if data_root is not None and not data.dataset.startswith("synth_"):
            # --data-root holds one folder per dataset, named as the dataset (kinetics400/, ssv2/, ...).
            data = dataclasses.replace(data, root=str(Path(data_root) / data.dataset))
        model = dataclasses.replace(preset.model, overrides={**preset.model.overrides, **row.model})
        return RunConfig(self.table_id, row.key, column, scale, seed, model, data, preset.optim, preset.trainer)


def column_slug(column: str) -> str:
    return "".join(ch.lower() if ch.isalnum() else "_" for ch in column).strip("_")


def _plain(value: Any) -> Any:
    """dataclass dicts -> JSON-friendly values (tuples become lists, mappings become dicts)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


_TABLE_SPECS: dict[str, Callable[[], TableSpec]] = {}


def register_table(fn: Callable[[], TableSpec]) -> Callable[[], TableSpec]:
    """Register a spec factory; its name is the table id (``def mformer_table4() -> TableSpec``)."""
    table_id = fn.__name__
    if table_id not in paper_tables():
        raise ValueError(f"@register_table {table_id!r}: no such table in {paper_tables.__module__}")
    _TABLE_SPECS[table_id] = fn
    return fn


def table_spec(table_id: str) -> TableSpec | None:
    """The spec of an implemented table, None for a listed-but-not-implemented one; unknown ids raise."""
    paper_table(table_id)  # raises UnknownTableError with close matches
    fn = _TABLE_SPECS.get(table_id)
    return fn() if fn else None


def table_status(table_id: str) -> str:
    return "implemented" if table_id in _TABLE_SPECS else "not implemented"


def implemented_tables() -> list[str]:
    return [t for t in paper_tables() if t in _TABLE_SPECS]


__all__ = [
    "DataConfig", "MetricColumn", "ModelConfig", "OptimConfig", "RowSpec", "RunConfig", "SCALES", "ScalePreset",
    "StaticColumn", "TableSpec", "TrainerConfig", "UnknownTableError", "column_slug", "implemented_tables",
    "register_table", "table_spec", "table_status",
]
