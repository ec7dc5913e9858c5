"""Stage two of trajectory attention (Motionformer Eq. 5-6, in ``TrajectoryAttention``'s rearranged form) as one
autograd function that keeps for backward only what it cannot recompute cheaply.

It keeps the stage-two queries q~ (b, T*S, C), the weights a (b, T*S, nh, T) and the ``inputs`` the trajectory
tokens are made from, never the tokens themselves unless they are the input (exact stage one, whose SDPA keeps the
same storage). ``source(t, *inputs)`` returns the trajectory tokens of query frame t, so a pass of
``frames_per_pass`` query frames at a time is built and pooled (forward) or rebuilt and differentiated (backward):
one frame a pass bounds the transient tensors to one frame's, all T in one pass launches T times fewer kernels. No
dropout. Why and what it saves: docs/mformer_memory.md#what-changed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

Source = Callable[..., Tensor]


def _frame_tokens(y: Tensor) -> Tensor:
    """(b, nh, T, L, d) trajectory tokens of L queries -> (b, L, T, C) token-major, heads concatenated."""
    return rearrange(y, "b nh tp n d -> b n tp (nh d)").contiguous()


def _frames(source: Source | None, frames: range, inputs: tuple[Tensor, ...], frame_len: int) -> Tensor:
    """The trajectory tokens of the queries of ``frames`` (consecutive): (b, nh, T, len(frames) * S, d)."""
    if source is None:
        return inputs[0][:, :, :, frames.start * frame_len:frames.stop * frame_len]
    if len(frames) == 1:
        return source(frames.start, *inputs)
    return torch.cat([source(t, *inputs) for t in frames], dim=3)


def _reference(y: Tensor, frames: range) -> Tensor:
    """(b, L, T, C) tokens of the queries of ``frames`` -> the (b, F, S, F, C) view of their key frames among
    ``frames``, whose ``_diagonal`` is each query's reference-frame token y~_stt (key frame t for query frame t)."""
    b, length, num_frames, c = y.shape
    return y.view(b, len(frames), length // len(frames), num_frames, c)[:, :, :, frames.start:frames.stop]


def _diagonal(chunk: Tensor) -> Tensor:
    """(b, F, S, F, C) -> (b, S, C, F) view: entry f is query frame f's token of key frame f."""
    return torch.diagonal(chunk, dim1=1, dim2=3)


def _reference_tokens(y: Tensor, frames: range) -> Tensor:
    """The reference-frame tokens y~_stt of the queries of ``frames``: (b, L, C)."""
    return _diagonal(_reference(y, frames)).permute(0, 3, 1, 2).flatten(1, 2)


def _passes(num_frames: int, frames_per_pass: int) -> list[range]:
    return [range(t, min(t + frames_per_pass, num_frames)) for t in range(0, num_frames, frames_per_pass)]


class _PoolTrajectories(torch.autograd.Function):
    """Eq. 5-6 rearranged, ``frames_per_pass`` query frames a pass: returns (b, T*S, nh, d)."""

    @staticmethod
    def forward(ctx, source: Source | None, num_frames: int, frame_len: int, num_heads: int, values: str,
                frames_per_pass: int, w_q: Tensor, b_q: Tensor | None, w_kv: Tensor, b_v: Tensor | None,
                *inputs: Tensor) -> Tensor:
        c = w_q.shape[0]
        d = c // num_heads
        w_k, w_v = rearrange(w_kv, "(two nh d) c -> two nh d c", two=2, nh=num_heads)
        queries, weights, outs = [], [], []
        for frames in _passes(num_frames, frames_per_pass):
            y = _frame_tokens(_frames(source, frames, inputs, frame_len))  # (b L T C), L = len(frames) * S
            q = F.linear(_reference_tokens(y, frames), w_q, b_q)  # q~ from the reference-frame token (b L C)
            u = torch.einsum("bshd,hdc->bshc", q.unflatten(-1, (num_heads, d)) * d ** -0.5, w_k)
            a = (u @ y.transpose(-2, -1)).softmax(dim=-1)  # (b L nh T)
            if values == "projected":
                out = torch.einsum("bshc,hdc->bshd", a @ y, w_v)  # W_v^h z_h
                out = out if b_v is None else out + b_v.view(num_heads, d)
            else:  # the official code: the trajectory tokens themselves, head h its own d channels
                out = torch.einsum("bsht,bsthd->bshd", a, y.unflatten(-1, (num_heads, d)))
            queries.append(q)
            weights.append(a)
            outs.append(out)
        ctx.source, ctx.num_frames, ctx.frame_len, ctx.num_heads, ctx.values = (source, num_frames, frame_len,
                                                                               num_heads, values)
        ctx.frames_per_pass = frames_per_pass
        ctx.has_b_q, ctx.has_b_v = b_q is not None, b_v is not None
        device = w_q.device.type
        try:
            ctx.autocast = (device, torch.is_autocast_enabled(device), torch.get_autocast_dtype(device))
        except RuntimeError:  # a device without autocast (meta)
            ctx.autocast = (device, False, None)
        ctx.save_for_backward(torch.cat(queries, dim=1), torch.cat(weights, dim=1), w_q, w_kv, *inputs)
        return torch.cat(outs, dim=1)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor):
        # Under mixed precision the frames are rebuilt, and the gradients formed, with the forward's autocast state,
        # so that the rebuilt trajectory tokens are the ones the forward pooled.
        device, enabled, dtype = ctx.autocast
        if not enabled:
            return _PoolTrajectories._backward(ctx, grad_out)
        with torch.autocast(device, dtype=dtype):
            return _PoolTrajectories._backward(ctx, grad_out)

    @staticmethod
    def _backward(ctx, grad_out: Tensor):
        queries, weights, w_q, w_kv, *inputs = ctx.saved_tensors
        source, num_frames, frame_len, nh = ctx.source, ctx.num_frames, ctx.frame_len, ctx.num_heads
        c = w_q.shape[0]
        d = c // nh
        scale = d ** -0.5
        w_k, w_v = rearrange(w_kv, "(two nh d) c -> two nh d c", two=2, nh=nh)
        g_wq, g_wk, g_wv = torch.zeros_like(w_q), torch.zeros_like(w_k), torch.zeros_like(w_v)
        g_bq = w_q.new_zeros(c) if ctx.has_b_q else None
        g_bv = w_q.new_zeros(c) if ctx.has_b_v else None
        needs = ctx.needs_input_grad[10:]
        passes = _passes(num_frames, ctx.frames_per_pass)
        if source is None:
            leaves = None  # one pass: its gradient is the whole tensor's, taken as it is (below)
            g_traj = torch.empty_like(inputs[0]) if needs[0] and len(passes) > 1 else None
        else:  # rebuilt frame by frame with autograd on, to send each frame's gradient back through ``source``
            leaves = [x.detach().requires_grad_(need) for x, need in zip(inputs, needs)]
        for frames in passes:
            rows = slice(frames.start * frame_len, frames.stop * frame_len)
            with torch.enable_grad():
                y_frame = _frames(source, frames, inputs if leaves is None else leaves, frame_len)
            y = _frame_tokens(y_frame.detach())  # (b L T C)
            q, a, g = queries[:, rows], weights[:, rows], grad_out[:, rows]  # (b L C), (b L nh T), (b L nh d)
            qs = q.unflatten(-1, (nh, d)) * scale
            if ctx.values == "projected":
                g_wv += torch.einsum("bshd,bshc->hdc", g, a @ y)
                if g_bv is not None:
                    g_bv += g.sum(dim=(0, 1)).flatten()
                g_z = torch.einsum("bshd,hdc->bshc", g, w_v)  # (b S nh C)
                g_a = g_z @ y.transpose(-2, -1)  # (b S nh T)
                g_y = a.transpose(-2, -1) @ g_z  # (b S T C)
            else:
                yh = y.unflatten(-1, (nh, d))
                g_a = torch.einsum("bshd,bsthd->bsht", g, yh)
                g_y = torch.einsum("bsht,bshd->bsthd", a, g).flatten(-2).contiguous()  # viewed below
            g_logits = a * (g_a - (a * g_a).sum(dim=-1, keepdim=True))  # softmax backward
            g_u = g_logits @ y  # (b S nh C)
            g_y += g_logits.transpose(-2, -1) @ torch.einsum("bshd,hdc->bshc", qs, w_k)
            g_q = torch.einsum("bshc,hdc->bshd", g_u, w_k).flatten(-2) * scale  # (b S C)
            g_wk += torch.einsum("bshc,bshd->hdc", g_u, qs)
            g_wq += g_q.flatten(0, 1).transpose(0, 1) @ _reference_tokens(y, frames).flatten(0, 1)
            if g_bq is not None:
                g_bq += g_q.sum(dim=(0, 1))
            # The reference-frame tokens also feed q~: into g_y's diagonal, in place through a view.
            _diagonal(_reference(g_y, frames)).add_((g_q @ w_q).unflatten(1, (len(frames), -1)).permute(0, 2, 3, 1))
            g_y = rearrange(g_y, "b n tp (nh d) -> b nh tp n d", nh=nh)
            if leaves is None:
                if needs[0] and len(passes) == 1:
                    g_traj = g_y.to(inputs[0].dtype)
                elif g_traj is not None:
                    g_traj[:, :, :, rows] = g_y
            elif y_frame.requires_grad:
                torch.autograd.backward(y_frame, g_y.to(y_frame.dtype))
        if leaves is None:
            g_inputs = [g_traj]
        else:
            g_inputs = [leaf.grad if need else None for leaf, need in zip(leaves, needs)]
        g_wkv = torch.cat([g_wk.flatten(0, 1), g_wv.flatten(0, 1)]) if ctx.values == "projected" else torch.cat(
            [g_wk.flatten(0, 1), torch.zeros_like(g_wv.flatten(0, 1))])
        return (None, None, None, None, None, None, g_wq, g_bq, g_wkv, g_bv, *g_inputs)


def pool_trajectories(source: Source | None, inputs: tuple[Tensor, ...], num_frames: int, frame_len: int,
                      proj_q: nn.Linear, proj_kv: nn.Linear, num_heads: int,
                      values: Literal["projected", "trajectory"] = "projected", frames_per_pass: int = 1) -> Tensor:
    """Eq. 5-6 for every patch token: (b, T*S, C), heads concatenated.

    Args:
        source: ``source(t, *inputs)`` -> (b, nh, T, S, d), the trajectory tokens of query frame t; None: ``inputs``
            is the whole trajectory tensor (b, nh, T, T*S, d).
        inputs: the tensors the trajectory tokens are made from (gradients flow back to them).
        num_frames, frame_len: T and S.
        proj_q, proj_kv: stage two's projections (dim -> dim, dim -> 2 dim).
        num_heads: nh.
        values: "projected" (the paper: W_v y~) or "trajectory" (the official code: y~ itself; proj_kv's value
            half then gets a zero gradient and its bias none, as in the autograd form, where it is unused).
        frames_per_pass: query frames pooled (and, in backward, rebuilt) per pass, 1 to T.
    """
    if not 1 <= frames_per_pass <= num_frames:
        raise ValueError(f"frames_per_pass must be 1 to {num_frames} (the frames), got {frames_per_pass}")
    b_v = None
    if values == "projected" and proj_kv.bias is not None:
        b_v = proj_kv.bias[proj_kv.bias.shape[0] // 2:]
    out = _PoolTrajectories.apply(source, num_frames, frame_len, num_heads, values, frames_per_pass, proj_q.weight,
                                  proj_q.bias, proj_kv.weight, b_v, *inputs)
    return out.flatten(-2)


__all__ = ["pool_trajectories"]
