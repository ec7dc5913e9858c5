"""CAST's two tables that train nothing, as specs: Table 3, B-CAST's stage-wise tensor shapes, traced from the
paper-scale model on the meta device; Table 4, the hyper-parameters, rendered from the paper-scale presets the runs
of Tables 2 and 9-11 train with."""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable
from typing import Any

from ..harness.spec import Computed, DataConfig, RowSpec, ScalePreset, StaticColumn, TableSpec, register_table
from .presets import ABLATION_LAYER_DECAY, ABLATION_UPDATE_FREQUENCY, PAPER_DATA_OPTIONS, SCALES_EK100, paper_preset

# ---- Table 3: B-CAST's stage-wise shapes, traced on the meta device -------------------------------------------

# Paper row (printed top-down, from the output back to the input) -> the traced stage(s) of models.cast.complexity.
# "Post processing" is the cross-attention's output back in the (B, T, N, C) grid; "Pre processing" and
# "Cross-Attention" are the windows the cross-attentions work on (their outputs keep the queries' shape).
STAGES = (
    ("up_projection", "Up Projection", ("up projection",)),
    ("post_processing", "Post Processing", ("cross-attention output",)),
    ("cross_attention", "Cross-Attention", ("cross-attention windows (queries)",)),
    ("positional_embeddings", "Positional Embeddings", ("positional embeddings", "cross-attention windows (queries)")),
    ("pre_processing", "Pre processing", ("cross-attention windows (queries)",)),
    ("gather", "Gather Features", ("down projection",)),
    ("down_projection", "Down Projection", ("down projection",)),
    ("input", "Input of B-CAST", ("input of B-CAST", "input of B-CAST (class tokens)")),
)
TRACE_BATCH = 5  # no dimension of the traced model divides by 5, so a factor 5 is the batch and prints as B


@functools.cache
def _traced_stages() -> dict[tuple[str, str], tuple[int, ...]]:
    from models.cast.complexity import stage_shapes

    return {(stage, expert): shape for stage, expert, shape in stage_shapes("cast_base", batch=TRACE_BATCH)}


def _shape_text(shape: tuple[int, ...]) -> str:
    def dim(d: int) -> str:
        if d == TRACE_BATCH:
            return "B"
        return f"B·{d // TRACE_BATCH}" if d % TRACE_BATCH == 0 else str(d)
    return " × ".join(dim(d) for d in shape)


def _stage_shapes(expert: str) -> Callable[[TableSpec, RowSpec], Computed]:
    def compute(spec: TableSpec, row: RowSpec) -> Computed:
        traced = _traced_stages()
        stages = next(s for key, _, s in STAGES if key == row.key)
        parts = []
        for stage in stages:
            if (stage, expert) not in traced:
                continue
            text = _shape_text(traced[(stage, expert)])
            parts.append(f"{stage}: {text}" if len(stages) > 1 else text)
        other = "temporal" if expert == "spatial" else "spatial"
        if row.key == "gather":  # each expert receives the other's down-projected tokens
            parts.append(f"from the {other} expert: {_shape_text(traced[('down projection', other)])}")
        return Computed(None, "; ".join(parts))
    return compute


TRACE_NOTE = ("traced, not typed: the shapes of block 1's B-CAST tensors in a forward pass of the paper-scale model "
              "on the meta device (models.cast.complexity.stage_shapes), batch B. Patch tokens are kept as a "
              "(B, T, N, C) grid, with the spatial expert's class tokens (B, T, C) beside it: the paper's "
              "(196 + 1) × B·8 × C and B × 8·196 × C are the same tensors laid out otherwise. Positional tables "
              "are parameters (tokens per window × C)")


@register_table
def cast_table3() -> TableSpec:
    return TableSpec(
        table_id="cast_table3",
        rows=tuple(RowSpec(key, i, label) for i, (key, label, _) in enumerate(STAGES)),
        metric_columns=(),
        static_columns=(StaticColumn("Spatial Expert / Output Tensor Shape", _stage_shapes("spatial"), note=TRACE_NOTE),
                        StaticColumn("Temporal Expert / Output Tensor Shape", _stage_shapes("temporal"))),
        scales=SCALES_EK100,
        notes="No training: the shapes are traced from the model the paper-scale rows build.",
    )



# ---- Table 4: hyper-parameters, rendered from the paper-scale presets ------------------------------------------

def _rand_augment(data: DataConfig) -> str:
    fields = dict(re.match(r"(\D+)(.+)", part).groups() for part in data.options["timm_rand_augment"].split("-")[1:])
    magnitude, std, ops = fields["m"], fields["mstd"], fields["n"]  # "rand-m9-n4-mstd0.5-inc1": timm's config
    return (f"magnitude {magnitude}, std {std}, {ops} ops (the official code's count), on the whole frames before "
            f"the random resized crop")


# Table 4's cells, each read from a paper-scale preset and its dataset's data configuration.
_RENDERED: dict[str, Callable[[ScalePreset, DataConfig], str]] = {
    "optimizer": lambda preset, data: {"adamw": "AdamW"}.get(preset.optim.optimizer, preset.optim.optimizer),
    "lr": lambda preset, data: f"{preset.optim.lr:g} (× global batch / {preset.trainer.reference_batch})",
    "weight_decay": lambda preset, data: f"{preset.optim.weight_decay:g}",
    "momentum": lambda preset, data: "β1, β2=0.9, 0.999 (timm's AdamW default; not configurable)",
    "batch": lambda preset, data: str(data.batch_size),
    "update_frequency": lambda preset, data: str(preset.trainer.accumulate_grad_batches),
    "schedule": lambda preset, data: ({"cosine": "cosine decay"}.get(preset.optim.schedule, preset.optim.schedule)
                                      + f" to {preset.optim.min_lr_ratio:g} x the peak lr (the official min_lr)"),
    "warmup": lambda preset, data: (f"{preset.optim.warmup_epochs:g} (linear from lr "
                                    + (f"{preset.optim.warmup_start:g} x the peak" if preset.optim.warmup_start
                                       else "0") + ", the official code's)"),
    "epochs": lambda preset, data: str(preset.optim.epochs),
    "flip": lambda preset, data: "yes" if data.hflip else "no",
    "color_jitter": lambda preset, data: f"{data.options['color_jitter']:g} (the official code applies none)",
    "rand_augment": lambda preset, data: _rand_augment(data),
    "label_smoothing": lambda preset, data: f"{preset.optim.label_smoothing:g}",
    "mixup": lambda preset, data: (f"{preset.optim.mixup_alpha:g} (applied to a batch with probability "
                                   f"{preset.optim.mixup_prob:g}, the official script's)"),
    "drop_path": lambda preset, data: f"{preset.model.overrides['drop_path_rate']:g}",
    "layer_decay": lambda preset, data: f"{preset.optim.layer_decay:g}",
}
HYPERPARAMETERS = (("optimizer", "Optimizer"), ("lr", "Base learning rate"), ("weight_decay", "Weight decay"),
                   ("momentum", "Optimizer momentum"), ("batch", "Batch size per GPU"),
                   ("update_frequency", "Update frequency (accumulated batches)"),
                   ("schedule", "Learning rate schedule"), ("warmup", "Warmup epochs"), ("epochs", "Training epochs"),
                   ("flip", "Flip augmentation"), ("color_jitter", "Color jitter"), ("rand_augment", "RandAug"),
                   ("label_smoothing", "Label smoothing"), ("mixup", "Mixup"), ("drop_path", "Drop path"),
                   ("layer_decay", "Layer-wise lr decay"))


def _hyperparameter(data_key: str) -> Callable[[TableSpec, RowSpec], str]:
    def render(spec: TableSpec, row: RowSpec) -> str:
        preset = paper_preset(data_key)
        return _RENDERED[row.key](preset, preset.data[data_key])
    return render


def _preset_inputs(data_key: str) -> Callable[[TableSpec, RowSpec], dict[str, Any]]:
    def inputs(spec: TableSpec, row: RowSpec) -> dict[str, Any]:
        preset = paper_preset(data_key)
        data = {k: v for k, v in dataclasses.asdict(preset.data[data_key]).items() if k not in ("root", "num_workers")}
        return {"model": dataclasses.asdict(preset.model), "data": data, "optim": dataclasses.asdict(preset.optim),
                "trainer": dataclasses.asdict(preset.trainer)}
    return inputs


@register_table
def cast_table4() -> TableSpec:
    return TableSpec(
        table_id="cast_table4",
        rows=tuple(RowSpec(key, i, label) for i, (key, label) in enumerate(HYPERPARAMETERS)),
        metric_columns=(),
        static_columns=tuple(StaticColumn(column, _hyperparameter(key), inputs=_preset_inputs(key),
                                          note="rendered from the paper-scale preset each dataset's runs of "
                                               "Tables 2 and 9-11 use (experiments.cast.paper_preset)")
                             for column, key in (("EK100", "EK-100"), ("K400", "K-400"), ("SSV2", "SSv2"))),
        scales=SCALES_EK100,
        notes="No training: each cell is read back from the configuration the paper-scale runs of Tables 2 and 9-11 "
              "train with (experiments.cast.paper_preset), so the table and the configuration cannot disagree. The "
              "ablations (Tables 1a-1h, Sec. 4.2) and Appendix D's Tables 5-8 (footnote 4) train with the same EK100 "
              f"column at update frequency {ABLATION_UPDATE_FREQUENCY} and layer decay {ABLATION_LAYER_DECAY:g} "
              "(experiments.cast.ablation_preset). Not in the table: the paper-scale inputs are "
              f"normalised with mean {PAPER_DATA_OPTIONS['mean']} and std {PAPER_DATA_OPTIONS['std']} (ImageNet's, "
              "as the official code's data pipeline; the paper does not state it).",
    )
