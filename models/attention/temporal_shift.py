"""Temporal shifts: parts of each frame's features replaced by those of frame t-1 or t+1 (TSM's "shift trick").

``shift_frames`` is the one primitive behind every model of the shift family (TokenShift, TSM-ViT, MSCA, X-ViT
space-time mixing): they differ only in which tensor is shifted (the residual stream or the per-frame q, k, v)
and which of its elements move. Frames beyond the clip's ends are zeros (TSM's zero padding).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

Index = tuple[int | slice, ...]
Shift = tuple[Index, Index]  # (elements taken from frame t-1, elements taken from frame t+1)


def shift_frames_(z: Tensor, from_previous: Index, from_next: Index) -> Tensor:
    """In place on ``z`` of shape (b, t, ...), outside autograd: frame t takes ``z[:, t - 1][from_previous]`` and
    ``z[:, t + 1][from_next]`` (the papers' backward and forward shifts).

    Only the selected elements are copied (a slice of the neighbour, cloned because source and destination
    overlap in memory); the first frame's ``from_previous`` and the last frame's ``from_next`` elements become
    zero.

    Args:
        z: tensor whose axis 1 is time.
        from_previous: index over the axes after time of the elements taken from frame t - 1.
        from_next: the same for frame t + 1; must select elements disjoint from ``from_previous``.
    """
    every, later, earlier = slice(None), slice(1, None), slice(None, -1)
    z[(every, later, *from_previous)] = z[(every, earlier, *from_previous)].clone()
    z[(every, 0, *from_previous)] = 0
    z[(every, earlier, *from_next)] = z[(every, later, *from_next)].clone()
    z[(every, -1, *from_next)] = 0
    return z


class _ShiftFrames(torch.autograd.Function):
    """``shift_frames`` with a hand-written backward: the adjoint of a shift is the opposite shift of the same
    elements, so the gradient costs one copy too. (In-place shifts recorded by autograd would instead clone the
    whole gradient once per slice assignment: about 5% of a ViT-B block.)"""

    @staticmethod
    def forward(ctx, z: Tensor, frames_shape: tuple[int, ...], shifts: Sequence[Shift]) -> Tensor:
        ctx.frames_shape, ctx.shifts = frames_shape, shifts
        out = z.clone(memory_format=torch.contiguous_format)
        for from_previous, from_next in shifts:
            shift_frames_(out.view(frames_shape), from_previous, from_next)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None, None]:
        grad = grad.clone(memory_format=torch.contiguous_format)
        for from_previous, from_next in ctx.shifts:
            # out[t][P] = z[t-1][P] gives dz[t][P] = dout[t+1][P]: the same elements, shifted the other way.
            shift_frames_(grad.view(ctx.frames_shape), from_next, from_previous)
        return grad, None, None


def shift_frames(z: Tensor, frames_shape: tuple[int, ...], shifts: Sequence[Shift]) -> Tensor:
    """A copy of ``z`` in which, seen as ``z.view(frames_shape)`` with time on axis 1, every ``(from_previous,
    from_next)`` pair of ``shifts`` is applied as by ``shift_frames_``; differentiable, one copy each way.

    Nothing else keeps ``z`` (a projection's or residual's output) alive, so the copy replaces it in memory
    rather than adding to what is saved for backward.
    """
    return _ShiftFrames.apply(z, frames_shape, shifts)


def channels_per_direction(dim: int, shift_fraction: float) -> int:
    """Channels moved each way when ``shift_fraction`` of ``dim`` is shifted, half backward and half forward."""
    if not 0.0 <= shift_fraction <= 1.0:
        raise ValueError(f"shift_fraction must lie in [0, 1], got {shift_fraction}")
    return int(dim * shift_fraction) // 2


class TemporalShift(nn.Module):
    """Shift a fraction of the channels of the per-frame tokens in time: TokenShift (MSCA paper Eq. 8-9) and
    TSM-ViT (X-ViT supplementary Eq. 1). A ``Block`` applies it to its residual stream before the attention
    and/or before the MLP, so the shifted features are both the branch input and the skip connection (Eq. 4-7).

    Token layout: (B, T*(1+S), C), each frame's class token first (see ``models.attention.frame``). Channels
    ``[0, c)`` of frame t come from frame t-1, ``[c, 2c)`` from frame t+1, the rest stay, where
    ``c = int(C * shift_fraction) // 2``: Eq. 8's D_b = D_f = c.
    """

    def __init__(self, dim: int, shift_fraction: float = 0.25, tokens: Literal["cls", "all"] = "cls") -> None:
        """
        Args:
            dim: token width C.
            shift_fraction: fraction of the channels that move, half from t-1 and half from t+1.
            tokens: "cls" shifts only each frame's class token (TokenShift); "all" every token (TSM-ViT).
        """
        super().__init__()
        if tokens not in ("cls", "all"):
            raise ValueError(f"tokens must be 'cls' or 'all', got {tokens!r}")
        num = channels_per_direction(dim, shift_fraction)
        token = 0 if tokens == "cls" else slice(None)
        self.shifts: list[Shift] = [((token, slice(0, num)), (token, slice(num, 2 * num)))]

    def forward(self, x: Tensor, thw: tuple[int, int, int]) -> Tensor:
        return shift_frames(x, (x.shape[0], thw[0], -1, x.shape[-1]), self.shifts)  # viewed as (b t n c)


__all__ = ["TemporalShift", "channels_per_direction", "shift_frames", "shift_frames_"]
