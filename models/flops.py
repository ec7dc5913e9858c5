"""FLOP counting in the fvcore convention (one multiply-add = one FLOP), attention matmuls included.

The model runs once on the ``meta`` device (shapes only, no arithmetic, no memory for activations), with every
attention switched to its explicit softmax path so that QK^T and AV are ordinary matmuls that
``torch.utils.flop_counter.FlopCounterMode`` sees. Torch counts 2 FLOPs per multiply-add; we halve that.
Elementwise work (softmax, LayerNorm, GELU, additions) is not counted, as in fvcore.

Two formulations of the same function can differ in cost. ``formulation="published"`` (the default) counts
every attention as its paper prints it: trajectory attention's stage two projects all T trajectory tokens to
keys and values (Eq. 5-6), which is what the paper's GFLOPs column counts (369.5 for trajectory ViT-B,
16x224x224; we count 369.4). ``formulation="computed"`` counts what the modules run with their own settings:
by default trajectory attention's rearranged stage two (``models/attention/trajectory.py``), 216.5 GFLOPs for
the same model. The default is
"published" because a GFLOPs figure is compared across papers and models as a property of the architecture;
use "computed" for the cost of running it here. Attention modules with no alternative formulation count the
same under both.

The shift family (``models.attention.frame``, ``TemporalShift``) counts as the frame-wise ViT: its shifts are
copies, not arithmetic, and MSCA / X-ViT attend within each frame over the same (1 + H*W)^2 scores per head.
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

    The model itself is not run: its parameters and buffers are replaced by meta tensors of the same shape for
    the duration of the call, so this is cheap even at ViT-L scale. Its attention flags are restored afterwards.

    Args:
        model: any module taking one tensor of ``input_shape``.
        input_shape: the batch to count for.
        formulation: "published" (attention as the paper prints it, e.g. trajectory stage two projecting every
            trajectory token) or "computed" (what the modules' own settings run); see the module doc.
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
    """GFLOPs of the registered model ``name`` built with ``overrides``, constructed on the meta device.

    Without ``input_shape`` the model's own clip (1, 3, num_frames, img_size, img_size) is used; with one, its
    frame count and size become the model's ``num_frames``/``img_size`` unless ``overrides`` set them.
    ``formulation``: "published" (as the paper counts, the default) or "computed" (as our modules run); see
    ``count_flops``.
    """
    if input_shape is not None:
        overrides = {"num_frames": input_shape[2], "img_size": input_shape[3], **overrides}
    with torch.device("meta"):
        model = create_model(name, **overrides)
    if input_shape is None:
        input_shape = (1, 3, model.num_frames, model.img_size, model.img_size)
    return count_flops(model, input_shape, formulation)
