"""Table specs: which model, data and schedule each row of a paper table runs, at each scale.

A spec is data. Rows differ only in what the paper's table varies (``RowSpec.model``); everything else comes
from the scale preset shared by all rows of the table (``experiments.presets`` holds the presets every paper
shares). ``resolve`` turns (table, row, column, scale, seed) into one frozen ``RunConfig`` that the runner executes
and ``--dry-run`` prints and builds. Every run names its task (``DataConfig.task``); ``experiments.harness.tasks`` says
which data module and LightningModule serve it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..paper_tables import PaperTable, UnknownTableError, paper_table, paper_tables

SCALES: tuple[str, ...] = ("tiny", "paper")


@dataclass(frozen=True)
class ModelConfig:
    name: str  # entrypoint in the models registry, e.g. "vit_base_patch16_video"
    overrides: Mapping[str, Any] = field(default_factory=dict)  # constructor arguments the row sets
    # None = from scratch; a source ("file.pth", "timm:<name>", "run:<table>/<row>/<column>") for the whole model;
    # or {submodule: source} for a model assembled from several pretrained parts (CAST's two experts)
    pretrained: str | Mapping[str, str] | None = None


@dataclass(frozen=True)
class DataConfig:
    dataset: str  # "synth_objects", "synth_motion_pairs", "kinetics400", "ssv2", ...
    task: str  # what the run does with it, a name in experiments.harness.tasks: "video_classification", ...
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
    # what a video's test views average: "probabilities" (their softmax scores) or "logits" (the official X-ViT and
    # TokShift/MSCA test loops'); VideoClassifier's ``view_average``
    test_view_average: str = "probabilities"
    synthetic_params: Mapping[str, Any] = field(default_factory=dict)
    # per-epoch validation reads the first this many videos of the validation split (None: all of it); the test
    # reads every one (docs/tiny_regime_design.md, amendment 9: a large test split, a per-epoch curve as before)
    val_curve_videos: int | None = field(default=None, repr=False)  # not the training path (tools.loader_rate)
    options: Mapping[str, Any] = field(default_factory=dict)  # datamodule-specific extras (e.g. LRA max_length)


@dataclass(frozen=True)
class OptimConfig:
    # a timm optimizer name: "adamw" (Motionformer, CAST), "momentum" (SGD with momentum, MSCA); timm's "sgd" is
    # Nesterov SGD
    optimizer: str = "adamw"
    momentum: float = 0.9  # of the SGD optimizers; AdamW ignores it
    lr: float = 1e-4
    weight_decay: float = 0.05
    label_smoothing: float = 0.2
    epochs: int = 35
    warmup_epochs: float = 0  # fractions allowed; 0, not 0.0, so that records written with it still match
    warmup_steps: int | None = None  # the warm-up in optimiser steps instead (LRA's configurations state steps)
    warmup_start: float = 0.01  # the warm-up's first lr / the peak lr
    # where the warm-up's line ends: "exclusive" (the peak at the first step after it) or "inclusive" (the peak at
    # its last step: ``np.linspace(start, peak, W)``, VideoMAE's and CAST's ``cosine_scheduler``)
    warmup_endpoint: Literal["exclusive", "inclusive"] = "exclusive"
    schedule: Literal["step", "cosine", "linear"] = "step"  # "linear": warm-up then linear decay (LRA)
    min_lr_ratio: float = 0.0  # "cosine": the lr it decays to / the peak lr
    # "cosine": the epochs its curve spans: "after_warmup" (it starts at the peak when the warm-up ends) or "all"
    # (PySlowFast's before its COSINE_AFTER_WARMUP, the official X-ViT code's: the curve spans every epoch from the
    # first and the warm-up ramps onto it)
    cosine_over: Literal["after_warmup", "all"] = "after_warmup"
    milestones: tuple[int, ...] = (20, 30)  # "step": divide by 1/gamma at these epochs
    gamma: float = 0.1
    # batch mixing (timm Mixup on clips; off in Motionformer's recipe)
    mixup_alpha: float = 0.0
    cutmix_alpha: float = 0.0
    mixup_prob: float = 1.0
    mixup_switch_prob: float = 0.5
    # what weight decay spares: "timm" (biases, norms, the model's no_weight_decay()), "head_biases" (only the
    # classification head's biases: the official X-ViT optimizer) or "none" (Motionformer's official optimizer)
    weight_decay_exempt: Literal["timm", "head_biases", "none"] = "timm"
    # layer-wise lr decay (BEiT's; CAST): block i of L gets lr x layer_decay^(L - i), through timm's layer groups
    # (the model's ``group_matcher``); None = one lr for every layer
    layer_decay: float | None = None


@dataclass(frozen=True)
class TrainerConfig:
    """Lightning Trainer flags; hardware and distribution are Lightning's (DDP, FSDP, DeepSpeed via strategy)."""

    accelerator: str = "auto"
    devices: int | str | tuple[int, ...] = "auto"  # Lightning's: a count, "auto", "0,1" or a list of device indices
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str = "32-true"
    accumulate_grad_batches: int = 1
    # The optimiser steps of an epoch: "all_batches" (Lightning's: every batch of each process, a last, partial
    # accumulation stepped too) or "whole_global_batches" (the training set // the global batch, each process
    # drawing that many accumulations and no batch past them: VideoMAE's and CAST's ``num_training_steps_per_epoch``,
    # whose training loop skips the rest; ``experiments.harness.epoch_steps``)
    epoch_steps: Literal["all_batches", "whole_global_batches"] = "all_batches"
    gradient_clip_val: float | None = None
    check_val_every_n_epoch: int = 1
    log_every_n_steps: int = 10
    max_steps: int = -1  # -1: train for the schedule's epochs; else stop after this many optimiser steps
    # Same command, same numbers: Lightning's deterministic mode (True; "warn" only warns where an op has no
    # deterministic implementation) and a fixed intra-op thread count (None: torch's default for this machine, from
    # its cores or OMP_NUM_THREADS); both are recorded in the run's record.
    deterministic: bool | str = True
    num_threads: int | None = None
    # The global batch (GPUs x per-GPU batch x accumulation) the preset's lr is stated for, i.e. the paper's; None:
    # the lr is used as given. A run whose global batch differs scales the lr by ``lr_scaling``: "linear" (Goyal et
    # al.'s rule, the convention), "sqrt", or "none".
    reference_batch: int | None = None
    lr_scaling: Literal["linear", "sqrt", "none"] = "linear"
    # The run's last checkpoint is rewritten every this many optimiser steps (and when training ends): a killed run
    # resumes from there, mid-epoch, with the same data order and random draws as if it had not stopped
    checkpoint_every_n_steps: int = 100


@dataclass(frozen=True)
class ScalePreset:
    """Everything a table's rows share at one scale; ``data`` is keyed by the table's result column."""

    description: str
    model: ModelConfig
    data: Mapping[str, DataConfig]
    optim: OptimConfig
    trainer: TrainerConfig = TrainerConfig()
    amendment: int | None = None  # the tiny design's amendment it runs at, where one changes it (presets.amended)


# What a row's or column's per-scale entry may set (``RowSpec.scales[scale]``, ``MetricColumn.scales[scale]``).
SCALE_OVERRIDE_KEYS = ("model", "data", "optim", "trainer", "name", "pretrained")


@dataclass(frozen=True)
class RowSpec:
    key: str  # short id used by --rows and in run directories
    paper_row: int  # index of the row in the paper's table
    label: str  # readable label for reports
    model: Mapping[str, Any] = field(default_factory=dict)  # model overrides this row sets (the ablated choice)
    data: Mapping[str, Any] = field(default_factory=dict)  # DataConfig overrides (e.g. frames of square tokens)
    dataset: str | None = None  # preset data key, for tables whose rows are datasets (Motionformer Table 8)
    # per-scale additions on top of ``model``/``data``: {"tiny": {"model": {...}, "data": {...}, "optim": {...},
    # "trainer": {...}, "name": entrypoint, "pretrained": weights}}; e.g. a number of prototypes that the paper
    # states for 196 tokens per frame, scaled to the 16 of the tiny model, or ViT-L instead of the preset's ViT-B
    scales: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class MetricColumn:
    """A result column filled from a logged metric of one training run per row.

    Columns that name the same ``run`` share it (Top-1 and Top-5 of one model, verb/noun/action of one EPIC run).
    """

    column: str  # the paper's column name, e.g. "K-400"
    metric: str = "top1"  # key in the run's metrics
    dataset: str | None = None  # preset data key; None = the row's ``dataset``, else the column name
    run: str | None = None  # run name (directory and record key); None = the column name
    model: Mapping[str, Any] = field(default_factory=dict)  # overrides the column sets (Table 8: one frame)
    data: Mapping[str, Any] = field(default_factory=dict)  # DataConfig overrides the column sets (Figure 3: stride)
    scales: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # as ``RowSpec.scales`` (LRA: per task)

    @property
    def run_name(self) -> str:
        return self.run or self.column

    def data_key(self, row: RowSpec) -> str:
        return self.dataset or row.dataset or self.column


@dataclass(frozen=True)
class Computed:
    """A static cell: ``value`` (numeric, used for rank agreement; None if not numeric), the text shown, and where it
    came from: "computed" (counted from the paper-scale configuration), "rendered" (read back from it),
    "measured on <device>", or "needs GPU" (the text then says what stands in for the measurement)."""

    value: float | None
    text: str
    source: str = "computed"


@dataclass(frozen=True)
class StaticColumn:
    """A column computed from the model configuration, without training (GFLOPs, parameters, memory, design).

    ``compute`` returns a float (shown with ``digits``), a string, or a ``Computed``. It runs when the table runs
    (or ``python -m experiments static ID``), never when a report is built: ``experiments.harness.static`` stores the
    cells in a record with the device they were measured on, and the reports read that record.
    """

    column: str
    compute: Callable[[TableSpec, RowSpec], float | str | Computed]
    digits: int = 1
    note: str = ""
    # what a cell is a function of (JSON values; None: ``experiments.harness.static.paper_model_inputs``, the
    # paper-scale model). Stored with each cell, so a report can tell a cell made for another configuration.
    inputs: Callable[[TableSpec, RowSpec], Mapping[str, Any]] | None = None
    # a time or a rate, measured once: it varies from run to run and its record holds no spread, so a claim reads it
    # as one sample (like a row of one seed), never beyond noise (``reports.claims``)
    timed: bool = False


@dataclass(frozen=True)
class DerivedColumn:
    """A column computed from our other columns of the same row (Table 8's Δ, Table 5's average)."""

    column: str
    inputs: tuple[str, ...]
    compute: Callable[..., float]  # called with the inputs' values, in order; only when all are present
    note: str = ""


@dataclass(frozen=True)
class SweepPlot:
    """A figure's plot, as data (``reports.plots`` draws it): one panel per entry of ``panels``, each plotting the
    rows' values of the listed metric columns against ``x_values``. With ``reference_row``, a second panel row
    shows each row's margin to that row (Motionformer Figure 3). A panel may name its own x label and the labels of
    its ticks at ``x_values`` (Figure 3's SSv2 strides, multiples of S)."""

    x_label: str
    x_values: tuple[float, ...]
    panels: Mapping[str, tuple[str, ...]]  # panel title -> the metric column at each x value
    y_label: str = "top-1 (%)"
    reference_row: str | None = None
    panel_x_labels: Mapping[str, str] = field(default_factory=dict)  # panel title -> its own x label
    panel_ticks: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # panel title -> labels at x_values


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

    @property
    def task(self) -> str:
        return self.data.task


CONFIG_SECTIONS: dict[str, type] = {"model": ModelConfig, "data": DataConfig, "optim": OptimConfig,
                                     "trainer": TrainerConfig}


def with_defaults(config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` (a run configuration's dict, or part of one) with each section completed by today's defaults, so
    a record written before a config field existed still matches a configuration that leaves the field at its
    default. Keys that are not a section dict pass unchanged."""
    out = dict(config)
    for key, section in CONFIG_SECTIONS.items():
        if isinstance(out.get(key), Mapping):
            defaults = {f.name: f.default if f.default is not dataclasses.MISSING else f.default_factory()
                        for f in dataclasses.fields(section)
                        if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING}
            out[key] = {**_plain(defaults), **out[key]}
    return out


@dataclass(frozen=True)
class TableSpec:
    table_id: str
    rows: tuple[RowSpec, ...]
    metric_columns: tuple[MetricColumn, ...]
    scales: Mapping[str, ScalePreset]
    static_columns: tuple[StaticColumn, ...] = ()
    derived_columns: tuple[DerivedColumn, ...] = ()
    notes: str = ""
    plot: SweepPlot | None = None  # for figures: what reports.plots draws from our values
    is_paper_table: bool = True  # False: an experiment of this repository's own (no paper layout, no report)
    # Seeds `run` trains at tiny scale when --seeds is not given, so its report can tell row differences from noise
    # (experiments/presets.py: the rule, and the quick start's one seed); paper scale trains one.
    tiny_seeds: int = 1

    def default_seeds(self, scale: str) -> int:
        return self.tiny_seeds if scale == "tiny" else 1

    @property
    def power_rule(self) -> bool:
        """Whether the table runs at the power rule's design (amendment 9): its report reads seeds 0 to
        ``tiny_seeds`` - 1 only, so that no record of the design before it is pooled with the new."""
        tiny = self.scales.get("tiny")
        return tiny is not None and tiny.amendment is not None

    @property
    def paper(self) -> PaperTable:
        return paper_table(self.table_id)

    def row(self, key: str) -> RowSpec:
        for r in self.rows:
            if r.key == key:
                return r
        raise KeyError(f"{self.table_id}: unknown row {key!r}; rows are: {', '.join(r.key for r in self.rows)}")

    def runs(self) -> list[tuple[RowSpec, MetricColumn]]:
        """(row, column) of every distinct training run, rows in order; columns sharing a run appear once."""
        out = []
        for row in self.rows:
            seen: set[str] = set()
            for column in self.metric_columns:
                if column.run_name not in seen:
                    seen.add(column.run_name)
                    out.append((row, column))
        return out

    def resolve(
        self, row: RowSpec, column: MetricColumn | str, scale: str, seed: int, data_root: str | Path | None = None
    ) -> RunConfig:
        if scale not in self.scales:
            raise ValueError(f"{self.table_id}: unknown scale {scale!r}; choose from {', '.join(self.scales)}")
        if isinstance(column, str):
            column = next(c for c in self.metric_columns if c.run_name == column or c.column == column)
        preset = self.scales[scale]
        key = column.data_key(row)
        if key not in preset.data:
            raise KeyError(f"{self.table_id}: scale {scale!r} has no data for {key!r} (has {sorted(preset.data)})")
        # precedence: preset < row < row at this scale < column < column at this scale (``pretrained``: see
        # ``_pretrained``)
        row_scale = _scale_entry(row.scales, scale, f"{self.table_id} row {row.key!r}")
        col_scale = _scale_entry(column.scales, scale, f"{self.table_id} column {column.column!r}")
        where = f"{self.table_id} row {row.key!r}, column {column.column!r}, scale {scale!r}"
        data = _replace(preset.data[key], where, row.data, row_scale.get("data", {}), column.data,
                        col_scale.get("data", {}))
        if data_root is not None:
            from data import dataset_root  # its data.synthetic imports torch: only when a data root is given

            root = dataset_root(data.dataset, data_root, data.synthetic_params)
            if root is not None:
                data = dataclasses.replace(data, root=str(root))
        overrides = {**preset.model.overrides, **row.model, **row_scale.get("model", {}), **column.model,
                     **col_scale.get("model", {})}
        pick = lambda name, default: col_scale.get(name, row_scale.get(name, default))  # noqa: E731
        model = dataclasses.replace(preset.model, overrides=overrides, name=pick("name", preset.model.name),
                                    pretrained=_pretrained(row_scale, col_scale, preset.model.pretrained, where))
        optim = _replace(preset.optim, where, row_scale.get("optim", {}), col_scale.get("optim", {}))
        trainer = _replace(preset.trainer, where, row_scale.get("trainer", {}), col_scale.get("trainer", {}))
        return RunConfig(self.table_id, row.key, column.run_name, scale, seed, model, data, optim, trainer)


def _pretrained(row_scale: Mapping[str, Any], col_scale: Mapping[str, Any], preset: str | Mapping[str, str] | None,
                where: str) -> str | Mapping[str, str] | None:
    """The run's weights: the column's, else the row's, else the preset's. Where both the row and the column load
    parts ({submodule: source}), the column's sources replace those of the parts the row loads and add none: a row
    of one expert alone (CAST's CLIP*) stays one expert in a column that sets both experts' pretraining."""
    row, column = row_scale.get("pretrained", preset), col_scale.get("pretrained")
    if "pretrained" not in col_scale:
        return row
    if not (isinstance(row, Mapping) and isinstance(column, Mapping) and "pretrained" in row_scale):
        return column
    if not set(row) & set(column):
        raise ValueError(f"{where}: the column's pretrained parts {sorted(column)} share none with the row's "
                         f"{sorted(row)}")
    return {part: column.get(part, source) for part, source in row.items()}


def _scale_entry(scales: Mapping[str, Mapping[str, Any]], scale: str, where: str) -> Mapping[str, Any]:
    """A row's or column's entry for one scale; a misspelled scale or key is an error, not a silent no-op."""
    unknown_scales = sorted(set(scales) - set(SCALES))
    if unknown_scales:
        raise ValueError(f"{where}: unknown scale(s) {unknown_scales} in `scales`; scales are {list(SCALES)}")
    entry = scales.get(scale, {})
    unknown = sorted(set(entry) - set(SCALE_OVERRIDE_KEYS))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown} in scales[{scale!r}]; valid keys: "
                         f"{', '.join(SCALE_OVERRIDE_KEYS)}")
    return entry


def _replace(config: Any, where: str, *changes: Mapping[str, Any]) -> Any:
    """``dataclasses.replace`` with the changes applied in order; an unknown field names itself and the valid ones."""
    merged = {k: v for change in changes for k, v in change.items()}
    valid = [f.name for f in dataclasses.fields(config)]
    unknown = sorted(set(merged) - set(valid))
    if unknown:
        raise ValueError(f"{where}: unknown {type(config).__name__} option(s) {unknown}; valid options: "
                         f"{', '.join(valid)}")
    return dataclasses.replace(config, **merged)


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
    """Register a paper table's spec factory; its name is the table id (``def mformer_table4() -> TableSpec``)."""
    table_id = fn.__name__
    if table_id not in paper_tables():
        raise ValueError(f"@register_table {table_id!r}: no such table in {paper_tables.__module__}")
    _TABLE_SPECS[table_id] = fn
    return fn


def register_experiment(fn: Callable[[], TableSpec]) -> Callable[[], TableSpec]:
    """Register an experiment that is not a paper table (``spec.is_paper_table`` False): it resolves, runs, reuses
    and records like a table, under ``runs/<its name>/``, but has no paper layout."""
    if fn.__name__ in paper_tables():
        raise ValueError(f"@register_experiment {fn.__name__!r} is a paper table: use @register_table")
    _TABLE_SPECS[fn.__name__] = fn
    return fn


def table_spec(table_id: str) -> TableSpec | None:
    """The spec of an implemented table or experiment, None for a listed-but-not-implemented table; unknown ids
    raise."""
    if table_id not in _TABLE_SPECS:
        paper_table(table_id)  # raises UnknownTableError with close matches
    fn = _TABLE_SPECS.get(table_id)
    return fn() if fn else None


def table_status(table_id: str) -> str:
    return "implemented" if table_id in _TABLE_SPECS else "not implemented"


def implemented_tables() -> list[str]:
    """Implemented paper tables, in inventory order (experiments that are not paper tables excluded)."""
    return [t for t in paper_tables() if t in _TABLE_SPECS]


def registered_specs() -> list[str]:
    """Every registered spec: the implemented paper tables, then the repository's own experiments."""
    return implemented_tables() + sorted(t for t in _TABLE_SPECS if t not in paper_tables())


__all__ = [
    "Computed", "DataConfig", "DerivedColumn", "MetricColumn", "ModelConfig", "OptimConfig", "RowSpec", "RunConfig",
    "SCALES", "ScalePreset", "StaticColumn", "SweepPlot", "TableSpec", "TrainerConfig", "UnknownTableError",
    "column_slug", "implemented_tables", "register_experiment", "register_table", "registered_specs",
    "table_spec", "table_status",
]
