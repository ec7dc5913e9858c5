"""CAST's static columns: learnable parameters, GFLOPs and TFLOPs of the paper-scale model, counted on the meta
device; the positional tables' parameters; and one training step's memory and time, measured on a GPU
(``models.cast.complexity.measure_training``) or, without one, the activations counted instead."""

from __future__ import annotations

import dataclasses
from typing import Any

from ..harness.spec import Computed, RowSpec, TableSpec
from ..harness.static import clip_shape, gflops, model_inputs, paper_config
from ..harness.tasks import build_model
from .presets import PAPER_NOUNS, PAPER_VERBS

TABLE1C_NOTE = ("learnable (trained) parameters of the paper-scale model with EPIC-KITCHENS-100 heads (97 verbs, "
                "300 nouns), counted on the meta device with models.cast.count_learnable. Identity (18.1 M) is the "
                "official independent experts (AIM's CLIP with its temporal adapter + VideoMAE with adapters). "
                "The two full-width cross-attention rows count 10.9 M fewer than the paper (75.0 vs 85.9, 82.1 vs "
                "93.0): the paper's figures include a per-block S2T positional table over all 8 x (1 + 196) "
                "spatial-expert tokens, the released code's earlier S2T module (models.cast.complexity."
                "released_s2t_table_excess = 10,911,744); ours keep B-CAST's positional tables, as the paper "
                "describes them")
GFLOPS_NOTE = ("GFLOPs of one 16x224x224 view of the paper-scale model, counted on the meta device with the "
               "attention matmuls (one multiply-add = one FLOP); TFLOPs = that x temporal clips x spatial crops of "
               "the test protocol (2 x 3, K400 5 x 3)")
PARAMS_NOTE = "learnable parameters of the paper-scale model (counted, models.cast.count_learnable)"


def _num_classes(cfg: Any) -> int:
    """The class count a static cell's model is built with: EPIC's 97 + 300, K400's 400, SSV2's 174."""
    return {"epic_kitchens100": PAPER_VERBS + PAPER_NOUNS, "kinetics400": 400, "ssv2": 174}[cfg.data.dataset]


def learnable_params(spec: TableSpec, row: RowSpec) -> Computed:
    """Learnable parameters (M) of the row at paper scale (its first metric column's dataset)."""
    from models.cast import count_learnable

    cfg = paper_config(spec, row)
    millions = count_learnable(build_model(cfg, _num_classes(cfg), device="meta")) / 1e6
    return Computed(millions, f"{millions:.1f} (computed)")


def gflops_per_view(spec: TableSpec, row: RowSpec) -> Computed:
    cfg = paper_config(spec, row)
    value = gflops(cfg, "published", num_classes=_num_classes(cfg))
    return Computed(value, f"{value:.1f} (computed)")


def tflops_views(spec: TableSpec, row: RowSpec) -> Computed:
    cfg = paper_config(spec, row)
    value = gflops(cfg, "published", num_classes=_num_classes(cfg)) * cfg.data.test_clips * cfg.data.test_crops / 1e3
    return Computed(value, f"{value:.2f} = {value * 1e3 / (cfg.data.test_clips * cfg.data.test_crops):.1f} GFLOPs x "
                           f"{cfg.data.test_clips}x{cfg.data.test_crops} views (computed)")


def training_cost_inputs(spec: TableSpec, row: RowSpec) -> dict[str, Any]:
    cfg = paper_config(spec, row)
    return {**model_inputs(cfg), "num_classes": _num_classes(cfg), "batch_size": cfg.data.batch_size,
            "precision": cfg.trainer.precision}


TRAINING_COST_NOTE = (
    "not in the paper: one training step of the row's paper-scale model (16x224x224 clips, the preset's batch of 6 "
    "per GPU and its mixed precision, AdamW), frozen experts as the row trains them / the same model with every "
    "parameter trainable: peak GPU memory (torch.cuda.max_memory_allocated, weights, gradients and optimizer state "
    "included) and the median time of 10 steps, the two models alternating "
    "(models.cast.complexity.measure_training), and the share of parameters that train. Without a GPU the cell "
    "says `needs GPU` and gives the activations saved for backward per clip (counted on the meta device, fp32)")
_AUTOCAST = {"16-mixed": "float16", "bf16-mixed": "bfloat16"}


def training_cost(spec: TableSpec, row: RowSpec) -> Computed:
    """The row's paper-scale training step, frozen experts against every parameter trainable (see the note)."""
    import torch

    from models.cast import count_learnable
    from models.cast.complexity import measure_training
    from models.memory import activation_bytes

    from ..harness.static import MEASURED, NEEDS_GPU, measured_device
    from ..harness.tasks import model_kwargs

    cfg = paper_config(spec, row)
    model = build_model(cfg, _num_classes(cfg), device="meta")
    trained = 100 * count_learnable(model) / sum(p.numel() for p in model.parameters())
    if not torch.cuda.is_available():
        shape = clip_shape(cfg)
        full = build_model(dataclasses.replace(cfg, model=dataclasses.replace(
            cfg.model, overrides={**cfg.model.overrides, "train_experts": True})), _num_classes(cfg), device="meta")
        frozen_gib, full_gib = (activation_bytes(m, shape) / 2**30 for m in (model, full))
        return Computed(None, f"needs GPU; activations {frozen_gib:.2f} / {full_gib:.2f} GiB/clip; {trained:.1f}% "
                              f"trained", NEEDS_GPU)
    dtype = _AUTOCAST.get(str(cfg.trainer.precision))
    cost = measure_training(cfg.model.name, batch=cfg.data.batch_size, repeats=10, num_classes=_num_classes(cfg),
                            device="cuda", autocast_dtype=getattr(torch, dtype) if dtype else None,
                            **model_kwargs(cfg))
    frozen, full = cost["frozen"], cost["full"]
    device = measured_device()
    return Computed(frozen["peak_mib"] / 1024,
                    f"{frozen['peak_mib'] / 1024:.1f} / {full['peak_mib'] / 1024:.1f} GiB, {frozen['step_ms']:.0f} / "
                    f"{full['step_ms']:.0f} ms; {trained:.1f}% trained (measured, batch {cfg.data.batch_size}, "
                    f"{dtype or 'fp32'}, {device})", MEASURED + device)


def _positional_params(model: Any) -> int:
    """Learnable parameters of the B-CAST positional tables (``query_pos`` / ``key_pos``) of a CAST model."""
    return sum(p.numel() for n, p in model.named_parameters() if p.requires_grad and n.endswith("_pos"))


def positional_params(spec: TableSpec, row: RowSpec) -> Computed:
    """Learnable parameters (M) of the row's B-CAST positional tables at paper scale."""
    cfg = paper_config(spec, row)
    millions = _positional_params(build_model(cfg, _num_classes(cfg), device="meta")) / 1e6
    return Computed(millions, f"{millions:.1f} (computed)")


CAPACITY_NOTE = ("learnable parameters of the paper-scale model, counted (models.cast.count_learnable), and of its "
                 "B-CAST positional tables. Capacity is NOT equal across these rows, unlike the paper's (Sec. 4.5: "
                 "\"We maintain the same model capacity across different methods\"): the positional tables hold one "
                 "learnable vector per window position (query_pos and key_pos, window length x bottleneck width, per "
                 "cross-attention and block), so a space-time window (T*N positions) adds far larger tables than a "
                 "time (T) or space (N) window. The rows trained as configured; a factorised space-time table "
                 "(T x C plus N x C) would keep the tables near CAST's size, but is not what these runs used")
