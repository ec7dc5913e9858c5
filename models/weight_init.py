"""timm's ``trunc_normal_`` that leaves a tensor on the meta device alone.

The harness builds every planned model on the meta device (its size, its parameter count, a dry run); such a model
has no values to draw, and timm's truncated normal there goes through torch's reference kernels (about half a second
a ViT-B, every build, for nothing). Everywhere else it is timm's function, unchanged.
"""

from __future__ import annotations

from timm.layers import trunc_normal_ as _timm_trunc_normal_
from torch import Tensor


def trunc_normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0) -> Tensor:
    if tensor.is_meta:
        return tensor
    return _timm_trunc_normal_(tensor, mean=mean, std=std, a=a, b=b)


__all__ = ["trunc_normal_"]
