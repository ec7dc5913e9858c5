"""FLOP counting in the fvcore convention (one multiply-add = one FLOP), attention matmuls included.

The model runs once on the ``meta`` device (shapes only, no arithmetic, no memory for activations), with every
attention switched to its explicit softmax path so that QK^T and AV are ordinary matmuls that
``torch.utils.flop_counter.FlopCounterMode`` sees. Torch counts 2 FLOPs per multiply-add; we halve that.
Elementwise work (softmax, LayerNorm, GELU, additions) is not counted, as in fvcore.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.func import functional_call
from torch.utils.flop_counter import FlopCounterMode

from .registry import create_model
from .video_vit import set_fused_attn


def count_flops(model: nn.Module, input_shape: tuple[int, ...] = (1, 3, 16, 224, 224)) -> float:
    """GFLOPs (multiply-adds / 1e9) of one forward pass of ``model`` on a batch of ``input_shape``.

    The model itself is not run: its parameters and buffers are replaced by meta tensors of the same shape for
    the duration of the call, so this is cheap even at ViT-L scale. Its attention flags are restored afterwards.
    """
    meta = {name: torch.empty_like(t, device="meta")
            for name, t in [*model.named_parameters(), *model.named_buffers()]}
    x = torch.empty(input_shape, device="meta")
    previous = set_fused_attn(model, False)  # explicit attention: its matmuls become countable ops
    was_training = model.training
    model.eval()
    try:
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            functional_call(model, meta, (x,))
    finally:
        model.train(was_training)
        for name, flag in previous.items():
            model.get_submodule(name).fused_attn = flag
    return counter.get_total_flops() / 2 / 1e9


def model_gflops(name: str, input_shape: tuple[int, ...] | None = None, **overrides: Any) -> float:
    """GFLOPs of the registered model ``name`` built with ``overrides``, constructed on the meta device.

    Without ``input_shape`` the model's own clip (1, 3, num_frames, img_size, img_size) is used; with one, its
    frame count and size become the model's ``num_frames``/``img_size`` unless ``overrides`` set them.
    """
    if input_shape is not None:
        overrides = {"num_frames": input_shape[2], "img_size": input_shape[3], **overrides}
    with torch.device("meta"):
        model = create_model(name, **overrides)
    if input_shape is None:
        input_shape = (1, 3, model.num_frames, model.img_size, model.img_size)
    return count_flops(model, input_shape)
