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


def shift_frames_into(out: Tensor, z: Tensor, from_previous: Index, from_next: Index) -> Tensor:
    """Into ``out``, a copy of ``z`` (both of shape (b, t, ...)), outside autograd: frame t takes
    ``z[:, t - 1][from_previous]`` and ``z[:, t + 1][from_next]`` (the papers' backward and forward shifts).

    Only the selected elements are written, read from ``z`` (so no temporary copy is needed where source and
    destination frames overlap); the first frame's ``from_previous`` and the last frame's ``from_next`` elements
    become zero.

    Args:
        out: the copy of ``z`` to write into.
        z: tensor whose axis 1 is time.
        from_previous: index over the axes after time of the elements taken from frame t - 1.
        from_next: the same for frame t + 1; must select elements disjoint from ``from_previous``.
    """
    every, later, earlier = slice(None), slice(1, None), slice(None, -1)
    out[(every, later, *from_previous)] = z[(every, earlier, *from_previous)]
    out[(every, 0, *from_previous)] = 0
    out[(every, earlier, *from_next)] = z[(every, later, *from_next)]
    out[(every, -1, *from_next)] = 0
    return out


def _shift_in_place(z: Tensor, from_previous: Index, from_next: Index) -> Tensor:
    """``shift_frames_into(z, z, ...)`` without reading what was already overwritten: only the moved elements are
    copied aside (for TokenShift, the class tokens' shifted channels), not the whole tensor."""
    every, later, earlier = slice(None), slice(1, None), slice(None, -1)
    backward, forward = z[(every, earlier, *from_previous)].clone(), z[(every, later, *from_next)].clone()
    z[(every, later, *from_previous)] = backward
    z[(every, 0, *from_previous)] = 0
    z[(every, earlier, *from_next)] = forward
    z[(every, -1, *from_next)] = 0
    return z


class _ShiftFrames(torch.autograd.Function):
    """``shift_frames`` with a hand-written backward: the adjoint of a shift is the opposite shift of the same
    elements, so the gradient costs one copy too. (In-place shifts recorded by autograd would instead clone the
    whole gradient once per slice assignment: about 5% of a ViT-B block.)

    With ``in_place`` the forward shifts its input in place when autograd allows it (a contiguous, non-view,
    non-leaf tensor: the residual stream, a projection's output), so the block's peak memory holds no second copy
    of it. Were the input saved by the op that made it, autograd's version check would stop the backward with an
    error, never silently.
    """

    @staticmethod
    def forward(ctx, z: Tensor, frames_shape: tuple[int, ...], shifts: Sequence[Shift], in_place: bool) -> Tensor:
        ctx.frames_shape, ctx.shifts = frames_shape, shifts
        if in_place and z.is_contiguous() and z._base is None and not z.is_leaf:
            ctx.mark_dirty(z)
            for from_previous, from_next in shifts:
                _shift_in_place(z.view(frames_shape), from_previous, from_next)
            return z
        source = z.contiguous()
        out = source.clone()
        for from_previous, from_next in shifts:
            shift_frames_into(out.view(frames_shape), source.view(frames_shape), from_previous, from_next)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None, None, None]:
        grad = grad.contiguous()  # autograd may hand the same gradient to other functions: never shifted in place
        out = grad.clone()
        for from_previous, from_next in ctx.shifts:
            # out[t][P] = z[t-1][P] gives dz[t][P] = dout[t+1][P]: the same elements, shifted the other way.
            shift_frames_into(out.view(ctx.frames_shape), grad.view(ctx.frames_shape), from_next, from_previous)
        return out, None, None, None


def shift_frames(z: Tensor, frames_shape: tuple[int, ...], shifts: Sequence[Shift], in_place: bool = False
                 ) -> Tensor:
    """``z`` in which, seen as ``z.view(frames_shape)`` with time on axis 1, every ``(from_previous, from_next)``
    pair of ``shifts`` is applied as by ``shift_frames_into``; differentiable, the backward one copy of the
    gradient.

    ``in_place``: for a caller that no longer needs ``z`` (a block's residual stream, a projection's output):
    shifted in place where autograd allows (``_ShiftFrames``), so no second copy is alive; otherwise a copy.
    """
    return _ShiftFrames.apply(z, frames_shape, shifts, in_place)


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

    def __init__(self, dim: int, shift_fraction: float = 0.25, tokens: Literal["cls", "all"] = "cls",
                 inplace: bool = False) -> None:
        """
        Args:
            dim: token width C.
            shift_fraction: fraction of the channels that move, half from t-1 and half from t+1.
            tokens: "cls" shifts only each frame's class token (TokenShift); "all" every token (TSM-ViT).
            inplace: shift the input itself where autograd allows (``shift_frames``), for a caller that replaces
                it with the output (``Block``'s residual stream): no second copy of the stream is alive.
        """
        super().__init__()
        self.inplace = inplace
        if tokens not in ("cls", "all"):
            raise ValueError(f"tokens must be 'cls' or 'all', got {tokens!r}")
        num = channels_per_direction(dim, shift_fraction)
        token = 0 if tokens == "cls" else slice(None)
        self.shifts: list[Shift] = [((token, slice(0, num)), (token, slice(num, 2 * num)))]

    def forward(self, x: Tensor, thw: tuple[int, int, int]) -> Tensor:
        return shift_frames(x, (x.shape[0], thw[0], -1, x.shape[-1]), self.shifts,  # viewed as (b t n c)
                            in_place=self.inplace)


__all__ = ["TemporalShift", "channels_per_direction", "shift_frames", "shift_frames_into"]
