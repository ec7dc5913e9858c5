"""FLOP counting in the fvcore convention (one multiply-add = one FLOP), attention matmuls included.

The model runs once on the ``meta`` device with every attention on its explicit softmax path, so that QK^T and AV
are matmuls ``torch.utils.flop_counter.FlopCounterMode`` sees; elementwise work is not counted. ``formulation``:
"published" (the default: attention as its paper prints it) or "computed" (what the modules run); why the default:
models/README.md#counting-gflops-and-memory.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import nn
from torch.func import functional_call
from torch.utils.flop_counter import FlopCounterMode

from .registry import create_model
from .video_vit import set_fused_attn

Formulation = Literal["published", "computed"]
FORMULATIONS = ("published", "computed")


def _set_literal_stage_two(model: nn.Module) -> dict[str, str]:
    """Switch every attention with a ``stage_two`` option to the form its paper prints; returns the old values."""
    previous = {}
    for name, module in model.named_modules():
        if isinstance(getattr(module, "stage_two", None), str):
            previous[name] = module.stage_two
            module.stage_two = "literal"
    return previous


def count_flops(model: nn.Module, input_shape: tuple[int, ...] = (1, 3, 16, 224, 224),
                formulation: Formulation = "published") -> float:
    """GFLOPs (multiply-adds / 1e9) of one forward pass of ``model`` on a batch of ``input_shape``.

    The model's parameters and buffers are replaced by meta tensors for the duration of the call (cheap even at ViT-L
    scale); its attention flags are restored afterwards.

    Args:
        model: any module taking one tensor of ``input_shape``.
        input_shape: the batch to count for.
        formulation: "published" (attention as the paper prints it) or "computed" (what the modules' settings run).
    """
    if formulation not in FORMULATIONS:
        raise ValueError(f"formulation must be one of {FORMULATIONS}, got {formulation!r}")
    meta = {name: torch.empty_like(t, device="meta")
            for name, t in [*model.named_parameters(), *model.named_buffers()]}
    x = torch.empty(input_shape, device="meta")
    previous = set_fused_attn(model, False)  # explicit attention: its matmuls become countable ops
    stage_two = _set_literal_stage_two(model) if formulation == "published" else {}
    was_training = model.training
    model.eval()
    try:
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            functional_call(model, meta, (x,))
    finally:
        model.train(was_training)
        for name, flag in previous.items():
            model.get_submodule(name).fused_attn = flag
        for name, form in stage_two.items():
            model.get_submodule(name).stage_two = form
    return counter.get_total_flops() / 2 / 1e9


def model_gflops(name: str, input_shape: tuple[int, ...] | None = None,
                 formulation: Formulation = "published", **overrides: Any) -> float:
    """GFLOPs of the registered model ``name`` built on ``meta`` with ``overrides``, on its own clip (1, 3,
    num_frames, img_size, img_size) or on ``input_shape`` (whose frames and size then become the model's unless
    ``overrides`` set them); ``formulation`` as ``count_flops``."""
    if input_shape is not None:
        overrides = {"num_frames": input_shape[2], "img_size": input_shape[3], **overrides}
    with torch.device("meta"):
        model = create_model(name, **overrides)
    if input_shape is None:
        input_shape = (1, 3, model.num_frames, model.img_size, model.img_size)
    return count_flops(model, input_shape, formulation)
