"""Joint space-time attention (Motionformer Eq. 2) and the attention kernel every variant shares.

Every space-time attention in this package has the timm ``Attention`` interface::

    Attn(dim, num_heads, qkv_bias, attn_drop, proj_drop, fused_attn, **variant_kwargs)
    forward(x, thw) -> x      # x: (B, N, C), N = 1 + T*H*W, token 0 is CLS, patches ordered (t h w)

Axis names in einops patterns: ``b`` batch, ``t`` frames (``tp`` = t', the frame a trajectory visits), ``h w``
grid, ``n`` tokens of one frame, ``nh`` heads, ``d`` channels per head.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

# Devices whose SDPA backward needs ``_DenseOutputGrad``: PyTorch's cuDNN attention (below). A test adds "cpu" to
# check, on a CPU, the gradient layouts a GPU would see.
GRAD_LAYOUT_DEVICES = frozenset({"cuda"})


class _DenseOutputGrad(torch.autograd.Function):
    """The identity, whose backward hands on its gradient contiguous and 16-byte aligned.

    PyTorch's cuDNN attention keeps one backward graph per process for each layout of q, k and v, and builds into it
    the strides of the output gradient of the first call with that layout (``MHACacheKeyWrapper`` in
    aten/src/ATen/native/cudnn/MHA.cpp: q, k and v strides, not those of dO). Two attentions with the same q, k, v
    whose outputs are consumed differently then share one graph: the second call's gradient is read with the
    first call's strides, out of bounds (an illegal memory access) or at the wrong elements (wrong gradients,
    silently). Trajectory attention's CLS query does this between Avg_T and Att_T rows trained in one process
    (docs/cudnn_attention_cache.md). The gradient handed on has the strides of a
    fresh tensor of its shape, size-1 axes included (``is_contiguous`` ignores theirs; the graph keeps them), so every
    call with a given q, k, v layout hands cuDNN the same ones.
    """

    @staticmethod
    def forward(ctx: Any, out: Tensor) -> Tensor:
        return out.view_as(out)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        if grad.stride() != _fresh_strides(grad.shape) or grad.data_ptr() % 16:
            grad = grad.clone(memory_format=torch.contiguous_format)
        return grad


def _fresh_strides(shape: torch.Size) -> tuple[int, ...]:
    """The strides ``torch.empty(shape)`` gets: each axis steps over all later ones (an empty axis counts as 1)."""
    strides, step = [], 1
    for size in reversed(shape):
        strides.append(step)
        step *= max(size, 1)
    return tuple(reversed(strides))


def sdpa(q: Tensor, k: Tensor, v: Tensor, **options: Any) -> Tensor:
    """``F.scaled_dot_product_attention(q, k, v, **options)``, whose output gradient reaches the kernel dense and
    aligned on the devices of ``GRAD_LAYOUT_DEVICES`` (``_DenseOutputGrad``); the same values everywhere."""
    out = F.scaled_dot_product_attention(q, k, v, **options)
    if out.requires_grad and out.device.type in GRAD_LAYOUT_DEVICES:
        return _DenseOutputGrad.apply(out)
    return out


def attend(q: Tensor, k: Tensor, v: Tensor, fused: bool, dropout_p: float = 0.0) -> Tensor:
    """``softmax(q k^T / sqrt(d)) v`` over the last two axes; leading axes are batch axes.

    Args:
        q: queries (..., Lq, d). k, v: keys and values (..., Lk, d).
        fused: use ``F.scaled_dot_product_attention`` (never materialises the Lq x Lk scores on backends with
            a fused kernel); otherwise the explicit softmax path, which the FLOP counter and tests rely on.
        dropout_p: dropout on the attention weights; callers pass 0 outside training.
    """
    if fused:
        return sdpa(q, k, v, dropout_p=dropout_p)
    attn = (q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)  # (..., Lq, Lk)
    attn = F.dropout(attn.softmax(dim=-1), p=dropout_p)
    return attn @ v


class JointSpaceTimeAttention(nn.Module):
    """Plain multi-head self-attention over all 1 + T*H*W tokens (Eq. 2); ``thw`` is not needed.

    Identical in parameters and arithmetic to timm's ``Attention``, so image checkpoints load unchanged.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int = 8,
        qkv_bias: bool = False,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
        fused_attn: bool = True,
    ) -> None:
        """
        Args:
            dim: token width C; must be divisible by ``num_heads``.
            num_heads: attention heads.
            qkv_bias: bias on the q/k/v projection.
            attn_drop: dropout on attention weights.
            proj_drop: dropout after the output projection.
            fused_attn: use SDPA (True) or the explicit softmax path (False).
        """
        super().__init__()
        assert dim % num_heads == 0, f"dim {dim} not divisible by num_heads {num_heads}"
        self.num_heads = num_heads
        self.fused_attn = fused_attn
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: Tensor, thw: tuple[int, int, int]) -> Tensor:
        q, k, v = rearrange(self.qkv(x), "b n (three nh d) -> three b nh n d", three=3, nh=self.num_heads)
        dropout_p = self.attn_drop.p if self.training else 0.0
        x = attend(q, k, v, self.fused_attn, dropout_p)
        x = rearrange(x, "b nh n d -> b n (nh d)")
        return self.proj_drop(self.proj(x))


def split_cls(z: Tensor) -> tuple[Tensor, Tensor]:
    """Split (b, nh, 1 + N, d) into the CLS slice (b, nh, 1, d) and the patch tokens (b, nh, N, d)."""
    return z[:, :, :1], z[:, :, 1:]


__all__ = ["JointSpaceTimeAttention", "attend", "sdpa", "split_cls"]
