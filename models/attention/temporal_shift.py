"""Temporal shifts: parts of each frame's features replaced by those of frame t-1 or t+1 (TSM's "shift trick").

``shift_frames`` is the one primitive behind every model of the shift family (TokenShift, TSM-ViT, MSCA, X-ViT
space-time mixing): they differ only in which tensor is shifted (the residual stream or the per-frame q, k, v)
and which of its elements move. Frames beyond the clip's ends are zeros (TSM's zero padding).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass(frozen=True)
class Shift:
    """Which elements of each frame move: along the axis marked ``None`` in ``at`` (an index over the axes after
    time), positions ``[*previous)`` are taken from frame t-1 and ``[*next)`` from frame t+1; the other entries of
    ``at`` select the part of the frame that moves. The two ranges are adjacent (in either order; one may be
    empty), so a single strided view holds every moved element.

    Example, per-frame q, k, v of shape (n, three, C) with 64-channel heads, heads 0-1 of k and v from t-1 and
    head 2 from t+1: ``Shift(at=(slice(None), slice(1, 3), None), previous=(0, 128), next=(128, 192))``.
    """

    at: tuple[int | slice | None, ...]
    previous: tuple[int, int]
    next: tuple[int, int]
    # Derived once, since a shift runs in every block's forward and backward: the index of the moved elements in
    # (b, t, ...), their axis ``along`` in that view, and per non-empty range (start in the view, length, the
    # frame of the zero-padded view that frame t reads: 0 for t-1, 2 for t+1); ``adjoint_copies`` move the same
    # elements the other way, the backward (out[t] = z[t-1] gives dz[t] = dout[t+1]).
    index: tuple[int | slice, ...] = field(init=False, repr=False, compare=False)
    along: int = field(init=False, repr=False, compare=False)
    copies: tuple[tuple[int, int, int], ...] = field(init=False, repr=False, compare=False)
    adjoint_copies: tuple[tuple[int, int, int], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        (p0, p1), (n0, n1) = self.previous, self.next
        if self.at.count(None) != 1:
            raise ValueError(f"at {self.at} must mark exactly one axis with None")
        if not (0 <= p0 <= p1 and 0 <= n0 <= n1 and (p1 == n0 or n1 == p0)):
            raise ValueError(f"previous {self.previous} and next {self.next} must be adjacent [start, stop) ranges")
        start, axis = min(p0, n0), self.at.index(None)
        span = slice(start, max(p1, n1))
        copies = tuple((r0 - start, r1 - r0, frame) for (r0, r1), frame in ((self.previous, 0), (self.next, 2))
                       if r1 > r0)
        derived = dict(index=(slice(None), slice(None), *(span if i is None else i for i in self.at)),
                       along=2 + sum(not isinstance(i, int) for i in self.at[:axis]), copies=copies,
                       adjoint_copies=tuple((begin, length, 2 - frame) for begin, length, frame in copies))
        for name, value in derived.items():
            object.__setattr__(self, name, value)


def _shift_in_place(frames: Tensor, shift: Shift, adjoint: bool = False) -> None:
    """``frames`` (b, t, ...) with ``shift`` (or, with ``adjoint``, its opposite) applied in place, copying only
    the moved elements, in few ops and little Python (a small step, batch 1, waits on every op's dispatch and
    launch); beyond the clip's ends, zeros."""
    moved = frames[shift.index]
    num_frames, along = moved.shape[1], shift.along
    padded = F.pad(moved, (0, 0) * (moved.dim() - 2) + (1, 1))  # a zero frame before the first and after the last
    for start, length, frame in shift.adjoint_copies if adjoint else shift.copies:
        moved.narrow(along, start, length).copy_(padded.narrow(1, frame, num_frames).narrow(along, start, length))


class _ShiftFrames(torch.autograd.Function):
    """``shift_frames`` with a hand-written backward: the adjoint of a shift is the opposite shift of the same
    elements, so the backward is one copy of the gradient and the forward's few small ops. (In-place shifts
    recorded by autograd would instead clone the whole gradient once per slice assignment: about 5% of a ViT-B
    block.)

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
            out = z
        else:
            out = z.clone(memory_format=torch.contiguous_format)
        for shift in shifts:
            _shift_in_place(out.view(frames_shape), shift)
        return out

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None, None, None]:
        # Autograd may hand the same gradient to other functions: shifted in a copy of our own, never in place.
        out = grad.contiguous()
        if out is grad:
            out = grad.clone()
        for shift in ctx.shifts:
            _shift_in_place(out.view(ctx.frames_shape), shift, adjoint=True)
        return out, None, None, None


def shift_frames(z: Tensor, frames_shape: tuple[int, ...], shifts: Sequence[Shift], in_place: bool = False
                 ) -> Tensor:
    """``z`` in which, seen as ``z.view(frames_shape)`` with time on axis 1, frame t takes the elements of every
    ``Shift`` from frames t-1 and t+1 (the papers' backward and forward shifts; zeros beyond the clip's ends);
    differentiable, the backward one copy of the gradient.

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
    ``c = int(C * shift_fraction) // 2``: Eq. 8's D_b = D_f = c. ``order="official"`` swaps the two neighbours, as
    the authors' code moves them (TokShift-Transformer's ``shift_tk`` and TSM's ``shift``: the first ``c`` channels
    from t+1, the next ``c`` from t-1).
    """

    def __init__(self, dim: int, shift_fraction: float = 0.25, tokens: Literal["cls", "all"] = "cls",
                 inplace: bool = False, order: Literal["paper", "official"] = "paper") -> None:
        """
        Args:
            dim: token width C.
            shift_fraction: fraction of the channels that move, half from t-1 and half from t+1.
            tokens: "cls" shifts only each frame's class token (TokenShift); "all" every token (TSM-ViT).
            inplace: shift the input itself where autograd allows (``shift_frames``), for a caller that replaces
                it with the output (``Block``'s residual stream): no second copy of the stream is alive.
            order: "paper" (MSCA Eq. 8: the first channels from t-1) or "official" (the first from t+1).
        """
        super().__init__()
        self.inplace = inplace
        if tokens not in ("cls", "all"):
            raise ValueError(f"tokens must be 'cls' or 'all', got {tokens!r}")
        if order not in ("paper", "official"):
            raise ValueError(f"order must be 'paper' or 'official', got {order!r}")
        num = channels_per_direction(dim, shift_fraction)
        token = 0 if tokens == "cls" else slice(None)
        first, second = (0, num), (num, 2 * num)
        previous, following = (first, second) if order == "paper" else (second, first)
        self.shifts = [Shift(at=(token, None), previous=previous, next=following)]

    def forward(self, x: Tensor, thw: tuple[int, int, int]) -> Tensor:
        return shift_frames(x, (x.shape[0], thw[0], -1, x.shape[-1]), self.shifts,  # viewed as (b t n c)
                            in_place=self.inplace)


__all__ = ["Shift", "TemporalShift", "channels_per_direction", "shift_frames"]
