"""Stage two of exact trajectory attention (Motionformer Eq. 5-6, rearranged) with its core fused in Triton kernels,
forward and backward: the fast path for CUDA tensors (``TrajectoryAttention(stage_two_kernel=...)``).

What it computes, per patch token n = (t, s) and head h, from the trajectory tokens y~_nt' (Eq. 4, stage one's
output, all heads concatenated: C = nh * d channels) and stage two's projections W_q, b_q, W_k, W_v, b_v (Eq. 5):

    q~_n      = W_q y~_nt + b_q                           Eq. 5's query, from the reference-frame token (t' = t)
    u_nh      = W_k^h^T q~_nh / sqrt(d)                   (C,): the query carried through the key projection
    a_nht'    = softmax_t'(u_nh . y~_nt')                 Eq. 6's weights; q~_nh . (W_k^h y~_nt' + b_k^h) differs
                                                          by q~_nh . b_k^h, the same for every t', which cancels
    z_nh      = sum_t' a_nht' y~_nt'                      (C,)
    out_nh    = W_v^h z_nh + b_v^h                        Eq. 6: sum_t' a_nht' (W_v^h y~_nt' + b_v^h)
              = sum_t' a_nht' y~_nt'[h]                   (``values="trajectory"``, the official code: head h
                                                          pools its own d channels of the trajectory tokens)

Which part is fused: the core, "T logits against the trajectory tokens, a softmax over T, a weighted sum" for every
(token, head), is one kernel launch forward (``_pool_forward_kernel``: y~ and u in, a and z out) and one backward
(``_pool_backward_kernel``: y~, u, a and dL/dz in; dL/du, dL/dy~ and z out). Each program is one token and loops
over the heads' channel blocks in two passes, the logits and then the pooling; the second re-reads the same T x C
values (12 KB at ViT-B in bf16), which a GPU's cache normally still holds, so the trajectory tokens cross from
memory about once. They are read in whatever layout stage one wrote them: the kernels take y~'s strides, so SDPA's
output is read in place and its gradient is written in the same layout, never copied. The dense products around
the core (q~, u = W_k^T q~, W_v z and their gradients) are ordinary matrix products, a few launches a block. Kept
for backward: y~ (the storage stage one's SDPA keeps anyway), q~ (b, T*S, C) and a (b, T*S, nh, T); u (one matrix
product) and z (in the backward kernel) are made again there, never kept.

Numerics: the kernels accumulate in float32 (float64 for float64 inputs); under autocast the 16-bit inputs enter
the products as they come, as autocast's own matrix products take them. No dropout (the module refuses
``stage_two_kernel="triton"`` where stage two's attention weights are dropped). CUDA tensors run compiled; CPU
tensors run the same kernels through Triton's interpreter, which needs ``TRITON_INTERPRET=1`` in the environment
before ``triton`` is first imported (the tests set it): a check of the kernels, not a speed path.
Equal to the literal Eq. 4-6 (float64, outputs and every gradient): tests/models/attention/test_trajectory_triton.py.
"""

from __future__ import annotations

import contextlib
import os
from typing import Literal

import torch
import torch.nn.functional as F
import triton
import triton.language as tl
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

_MIN_DOT = 16  # tl.dot needs every dimension of its operands at least this large on a GPU: padded, masked


@triton.jit
def _pool_forward_kernel(y_ptr, u_ptr, a_ptr, z_ptr, num_tokens,
                         sy_b, sy_g, sy_t, sy_n, sy_j, su_b, su_n, su_h, su_c, sa_b, sa_n, sa_h, sa_t,
                         sz_b, sz_n, sz_h, sz_c,
                         NH: tl.constexpr, T: tl.constexpr, D: tl.constexpr,
                         NH_P: tl.constexpr, T_P: tl.constexpr, D_P: tl.constexpr,
                         PROJECTED: tl.constexpr, F64: tl.constexpr):
    """One token n of clip b: a (nh, T) and z (nh, C) (``PROJECTED``) or the official values' output (nh, d).
    y (b, nh, T, N, d) strided; u, z (b, N, nh, C); a (b, N, nh, T). Heads g index y's channel blocks, h the
    stage-two heads; ``_P`` sizes are padded to powers of two (at least ``_MIN_DOT``) and masked."""
    pid = tl.program_id(0).to(tl.int64)
    b = pid // num_tokens
    n = pid % num_tokens
    h = tl.arange(0, NH_P).to(tl.int64)  # head offsets span the clips of a head-major u
    t = tl.arange(0, T_P)
    j = tl.arange(0, D_P)
    h_ok, t_ok, j_ok = h < NH, t < T, j < D
    y_tok = y_ptr + b * sy_b + n * sy_n
    u_tok = u_ptr + b * su_b + n * su_n
    y_frames = t[:, None] * sy_t + j[None, :] * sy_j  # (T_P, D_P): one head block of every key frame t'
    y_mask = t_ok[:, None] & j_ok[None, :]
    hj_mask = h_ok[:, None] & j_ok[None, :]
    if F64:
        logits = tl.zeros((NH_P, T_P), dtype=tl.float64)
    else:
        logits = tl.zeros((NH_P, T_P), dtype=tl.float32)
    for g in range(NH):  # logits_ht' = sum over channel blocks g of u_h[g] . y_t'[g]
        y_g = tl.load(y_tok + g * sy_g + y_frames, mask=y_mask, other=0.0)
        u_g = tl.load(u_tok + h[:, None] * su_h + (g * D + j[None, :]) * su_c, mask=hj_mask, other=0.0)
        logits += tl.dot(u_g, tl.trans(y_g), input_precision="ieee")
    logits = tl.where(t_ok[None, :], logits, float("-inf"))
    p = tl.exp(logits - tl.max(logits, axis=1)[:, None])
    a = p / tl.sum(p, axis=1)[:, None]  # (NH_P, T_P); padded frames weigh 0
    tl.store(a_ptr + b * sa_b + n * sa_n + h[:, None] * sa_h + t[None, :] * sa_t, a.to(a_ptr.dtype.element_ty),
             mask=h_ok[:, None] & t_ok[None, :])
    z_tok = z_ptr + b * sz_b + n * sz_n
    if PROJECTED:
        a_in = a.to(y_ptr.dtype.element_ty)
        for g in range(NH):  # z_h[g] = sum_t' a_ht' y_t'[g]
            y_g = tl.load(y_tok + g * sy_g + y_frames, mask=y_mask, other=0.0)
            z_g = tl.dot(a_in, y_g, input_precision="ieee")
            tl.store(z_tok + h[:, None] * sz_h + (g * D + j[None, :]) * sz_c, z_g.to(z_ptr.dtype.element_ty),
                     mask=hj_mask)
    else:
        if F64:
            out = tl.zeros((NH_P, D_P), dtype=tl.float64)
        else:
            out = tl.zeros((NH_P, D_P), dtype=tl.float32)
        for tp in range(T):  # out_h = sum_t' a_ht' y_t'[h]: head h's own channel block
            y_t = tl.load(y_tok + h[:, None] * sy_g + tp * sy_t + j[None, :] * sy_j, mask=hj_mask, other=0.0)
            a_t = tl.sum(tl.where(t[None, :] == tp, a, 0.0), axis=1)  # (NH_P,)
            out += a_t[:, None] * y_t.to(a_t.dtype)
        tl.store(z_tok + h[:, None] * sz_h + j[None, :] * sz_c, out.to(z_ptr.dtype.element_ty), mask=hj_mask)


@triton.jit
def _pool_backward_kernel(y_ptr, u_ptr, a_ptr, g_ptr, gu_ptr, gy_ptr, z_ptr, num_tokens,
                          sy_b, sy_g, sy_t, sy_n, sy_j, su_b, su_n, su_h, su_c, sa_b, sa_n, sa_h, sa_t,
                          sg_b, sg_n, sg_h, sg_c, sgy_b, sgy_g, sgy_t, sgy_n, sgy_j,
                          NH: tl.constexpr, T: tl.constexpr, D: tl.constexpr,
                          NH_P: tl.constexpr, T_P: tl.constexpr, D_P: tl.constexpr,
                          PROJECTED: tl.constexpr, F64: tl.constexpr):
    """One token: from dL/dz (b, N, nh, C) (``PROJECTED``) or dL/dout (b, N, nh, d), dL/du (as u), dL/dy~ (y~'s
    strides in ``sgy_*``) and, projected, z again (as u, for dL/dW_v). The softmax's backward in between:
    dL/dlogit = a * (dL/da - sum_t' a dL/da)."""
    pid = tl.program_id(0).to(tl.int64)
    b = pid // num_tokens
    n = pid % num_tokens
    h = tl.arange(0, NH_P).to(tl.int64)  # head offsets span the clips of a head-major u
    t = tl.arange(0, T_P)
    j = tl.arange(0, D_P)
    h_ok, t_ok, j_ok = h < NH, t < T, j < D
    y_tok = y_ptr + b * sy_b + n * sy_n
    u_tok = u_ptr + b * su_b + n * su_n  # u, dL/du and z share u's strides
    g_tok = g_ptr + b * sg_b + n * sg_n
    y_frames = t[:, None] * sy_t + j[None, :] * sy_j
    y_mask = t_ok[:, None] & j_ok[None, :]
    hj_mask = h_ok[:, None] & j_ok[None, :]
    a = tl.load(a_ptr + b * sa_b + n * sa_n + h[:, None] * sa_h + t[None, :] * sa_t,
                mask=h_ok[:, None] & t_ok[None, :], other=0.0)
    if F64:
        a = a.to(tl.float64)
        g_a = tl.zeros((NH_P, T_P), dtype=tl.float64)
    else:
        a = a.to(tl.float32)
        g_a = tl.zeros((NH_P, T_P), dtype=tl.float32)
    if PROJECTED:
        for g in range(NH):  # dL/da_ht' = dL/dz_h . y_t'
            y_g = tl.load(y_tok + g * sy_g + y_frames, mask=y_mask, other=0.0)
            gz_g = tl.load(g_tok + h[:, None] * sg_h + (g * D + j[None, :]) * sg_c, mask=hj_mask, other=0.0)
            g_a += tl.dot(gz_g, tl.trans(y_g), input_precision="ieee")
    else:
        g_out = tl.load(g_tok + h[:, None] * sg_h + j[None, :] * sg_c, mask=hj_mask, other=0.0)
        for tp in range(T):  # dL/da_ht' = dL/dout_h . y_t'[h]
            y_t = tl.load(y_tok + h[:, None] * sy_g + tp * sy_t + j[None, :] * sy_j, mask=hj_mask, other=0.0)
            g_a += tl.where(t[None, :] == tp, tl.sum(g_out.to(a.dtype) * y_t.to(a.dtype), axis=1)[:, None], 0.0)
    g_logits = a * (g_a - tl.sum(a * g_a, axis=1)[:, None])  # padded heads and frames: a = 0, so 0
    gl_in = g_logits.to(y_ptr.dtype.element_ty)
    a_in = a.to(y_ptr.dtype.element_ty)
    gy_tok = gy_ptr + b * sgy_b + n * sgy_n
    gy_frames = t[:, None] * sgy_t + j[None, :] * sgy_j
    for g in range(NH):
        y_g = tl.load(y_tok + g * sy_g + y_frames, mask=y_mask, other=0.0)
        hj = h[:, None] * su_h + (g * D + j[None, :]) * su_c
        u_g = tl.load(u_tok + hj, mask=hj_mask, other=0.0)
        g_u = tl.dot(gl_in, y_g, input_precision="ieee")  # dL/du_h[g] = sum_t' dL/dlogit_ht' y_t'[g]
        tl.store(gu_ptr + b * su_b + n * su_n + hj, g_u.to(gu_ptr.dtype.element_ty), mask=hj_mask)
        g_y = tl.dot(tl.trans(gl_in), u_g, input_precision="ieee")  # sum_h dL/dlogit_ht' u_h[g]
        if PROJECTED:
            gz_g = tl.load(g_tok + h[:, None] * sg_h + (g * D + j[None, :]) * sg_c, mask=hj_mask, other=0.0)
            g_y += tl.dot(tl.trans(a_in), gz_g, input_precision="ieee")  # + sum_h a_ht' dL/dz_h[g]
            z_g = tl.dot(a_in, y_g, input_precision="ieee")
            tl.store(z_ptr + b * su_b + n * su_n + hj, z_g.to(z_ptr.dtype.element_ty), mask=hj_mask)
        else:  # + a_gt' dL/dout_g: only head g pools channel block g
            a_g = tl.sum(tl.where(h[:, None] == g, a, 0.0), axis=0)  # (T_P,)
            g_out_g = tl.load(g_tok + g * sg_h + j * sg_c, mask=j_ok, other=0.0)
            g_y += a_g[:, None] * g_out_g[None, :].to(a_g.dtype)
        tl.store(gy_tok + g * sgy_g + gy_frames, g_y.to(gy_ptr.dtype.element_ty), mask=y_mask)


def _padded(size: int) -> int:
    return max(_MIN_DOT, triton.next_power_of_2(size))


def _check_runnable(y: Tensor) -> None:
    if y.device.type == "cuda":
        return
    if y.device.type == "cpu" and os.environ.get("TRITON_INTERPRET") == "1":
        return
    raise RuntimeError(f"the Triton stage two runs CUDA tensors, or CPU tensors under TRITON_INTERPRET=1 (set before "
                       f"triton is imported); got a {y.device.type} tensor: use stage_two_kernel='pytorch' there")


def _on(device: torch.device) -> contextlib.AbstractContextManager:
    """Triton launches on the current CUDA device: make it the tensors' (one process may drive several GPUs)."""
    return torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext()


def _sizes(y: Tensor) -> dict[str, int]:
    _, nh, num_frames, _, d = y.shape
    return {"NH": nh, "T": num_frames, "D": d, "NH_P": _padded(nh), "T_P": _padded(num_frames), "D_P": _padded(d),
            "F64": y.dtype == torch.float64}


def pool_forward(y: Tensor, u: Tensor, projected: bool) -> tuple[Tensor, Tensor]:
    """The forward core: y (b, nh, T, N, d) any strides, u (b, N, nh, C) -> a (b, N, nh, T) (float32, float64 for
    float64 inputs) and z (b, N, nh, C) (``projected``) or the official values' output (b, N, nh, d)."""
    _check_runnable(y)
    b, nh, num_frames, num_tokens, d = y.shape
    u = u.to(y.dtype)
    a = torch.empty(b, num_tokens, nh, num_frames, device=y.device,
                    dtype=torch.float64 if y.dtype == torch.float64 else torch.float32)
    # Head-major in memory, (nh, b, N, width): W_v z and the products after it take each head's rows as they lie.
    z = torch.empty(nh, b, num_tokens, nh * d if projected else d, device=y.device, dtype=y.dtype).permute(1, 2, 0, 3)
    with _on(y.device):
        _pool_forward_kernel[(b * num_tokens,)](y, u, a, z, num_tokens, *y.stride(), *u.stride(), *a.stride(),
                                                *z.stride(), PROJECTED=projected, **_sizes(y))
    return a, z


def pool_backward(y: Tensor, u: Tensor, a: Tensor, grad: Tensor, projected: bool
                  ) -> tuple[Tensor, Tensor, Tensor | None]:
    """The backward core: ``grad`` = dL/dz (b, N, nh, C) (``projected``) or dL/dout (b, N, nh, d) -> dL/du (as u),
    dL/dy~ (y's layout) and, projected, z (as u) for dL/dW_v."""
    _check_runnable(y)
    b, _, _, num_tokens, _ = y.shape
    u = u.to(y.dtype)
    g_u = torch.empty_like(u)  # u's layout (einsum's, head-major), which the kernel writes dL/du and z in
    if g_u.stride() != u.stride():  # u not dense: one layout for the three
        u = u.contiguous()
        g_u = torch.empty_like(u)
    grad = grad.to(y.dtype)
    g_y = torch.empty_like(y)  # a dense y's layout kept, so the gradient reaches stage one as SDPA wrote y
    z = torch.empty_like(u) if projected else None
    with _on(y.device):
        _pool_backward_kernel[(b * num_tokens,)](y, u, a, grad, g_u, g_y, u if z is None else z, num_tokens,
                                                 *y.stride(), *u.stride(), *a.stride(), *grad.stride(),
                                                 *g_y.stride(), PROJECTED=projected, **_sizes(y))
    return g_u, g_y, z


def _reference_view(y: Tensor) -> Tensor:
    """(b, nh, T, T*S, d) -> the (b, nh, S, d, T) view whose entry t is query frame t's token of key frame t."""
    b, nh, num_frames, num_tokens, d = y.shape
    return y.view(b, nh, num_frames, num_frames, num_tokens // num_frames, d).diagonal(dim1=2, dim2=3)


def _reference_tokens(y: Tensor) -> Tensor:
    """The reference-frame tokens y~_stt of every query: (b, T*S, C), heads concatenated."""
    return _reference_view(y).permute(0, 4, 2, 1, 3).flatten(3).flatten(1, 2)


def _autocast_state(device: str) -> tuple[str, bool, torch.dtype | None]:
    try:
        return device, torch.is_autocast_enabled(device), torch.get_autocast_dtype(device)
    except RuntimeError:  # a device without autocast
        return device, False, None


class _FusedPool(torch.autograd.Function):
    """Eq. 5-6 rearranged, every query at once: y~ (b, nh, T, T*S, d) -> (b, T*S, nh, d)."""

    @staticmethod
    def forward(ctx, y: Tensor, w_q: Tensor, b_q: Tensor | None, w_kv: Tensor, b_v: Tensor | None, num_heads: int,
                values: str) -> Tensor:
        nh, d = num_heads, y.shape[-1]
        w_k, w_v = w_kv.view(2, nh, d, nh * d)
        q = F.linear(_reference_tokens(y), w_q, b_q)  # q~ (b N C), Eq. 5
        u = torch.einsum("bnhd,hdc->bnhc", q.unflatten(-1, (nh, d)) * d ** -0.5, w_k)
        a, z = pool_forward(y, u, values == "projected")
        del u
        if values == "projected":
            out = torch.einsum("bnhc,hdc->bnhd", z, w_v)
            out = out if b_v is None else out + b_v.view(nh, d)
        else:
            out = z
        ctx.num_heads, ctx.values = nh, values
        ctx.has_b_q, ctx.has_b_v = b_q is not None, b_v is not None
        ctx.autocast = _autocast_state(y.device.type)
        ctx.save_for_backward(y, q, a, w_q, w_kv)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor):
        # The gradients' products run with the forward's autocast state, as the forward's did.
        device, enabled, dtype = ctx.autocast
        if not enabled:
            return _FusedPool._backward(ctx, grad_out)
        with torch.autocast(device, dtype=dtype):
            return _FusedPool._backward(ctx, grad_out)

    @staticmethod
    def _backward(ctx, grad_out: Tensor):
        y, q, a, w_q, w_kv = ctx.saved_tensors
        nh, d = ctx.num_heads, y.shape[-1]
        scale = d ** -0.5
        projected = ctx.values == "projected"
        w_k, w_v = w_kv.view(2, nh, d, nh * d)
        qs = q.unflatten(-1, (nh, d)) * scale
        u = torch.einsum("bnhd,hdc->bnhc", qs, w_k)  # recomputed: one product, not kept
        grad = torch.einsum("bnhd,hdc->bnhc", grad_out, w_v) if projected else grad_out
        g_u, g_y, z = pool_backward(y, u, a, grad, projected)
        del u, grad
        g_wk = torch.einsum("bnhc,bnhd->hdc", g_u, qs)
        g_q = torch.einsum("bnhc,hdc->bnhd", g_u, w_k).flatten(-2) * scale  # dL/dq~ (b N C)
        del g_u
        if projected:
            g_wv = torch.einsum("bnhd,bnhc->hdc", grad_out, z)
            g_wkv = torch.cat([g_wk.flatten(0, 1), g_wv.flatten(0, 1)]).to(w_kv.dtype)
        else:  # the official values never read proj_kv's value half: a zero gradient, as the autograd form's
            g_wkv = torch.cat([g_wk.flatten(0, 1).to(w_kv.dtype), torch.zeros_like(w_kv[nh * d:])])
        g_wq = (g_q.flatten(0, 1).transpose(0, 1) @ _reference_tokens(y).flatten(0, 1)).to(w_q.dtype)
        g_bq = g_q.sum(dim=(0, 1)).to(w_q.dtype) if ctx.has_b_q else None
        g_bv = grad_out.sum(dim=(0, 1)).flatten().to(w_kv.dtype) if ctx.has_b_v else None
        # The reference-frame tokens also made q~: their gradient joins dL/dy~ on its diagonal, in place.
        g_ref = (g_q @ w_q).to(g_y.dtype)  # (b N C)
        b, num_tokens = g_ref.shape[:2]
        num_frames = y.shape[2]
        _reference_view(g_y).add_(g_ref.view(b, num_frames, num_tokens // num_frames, nh, d).permute(0, 3, 2, 4, 1))
        return g_y, g_wq, g_bq, g_wkv, g_bv, None, None


def fused_pool_trajectories(y: Tensor, proj_q: nn.Linear, proj_kv: nn.Linear, num_heads: int,
                            values: Literal["projected", "trajectory"] = "projected") -> Tensor:
    """Eq. 5-6 for every patch token from the whole trajectory tensor: y~ (b, nh, T, T*S, d) -> (b, T*S, C).

    Args:
        y: stage one's trajectory tokens (any strides; read in place, its gradient written in the same layout).
        proj_q, proj_kv: stage two's projections (dim -> dim, dim -> 2 dim); ``proj_kv``'s key bias cancels in the
            softmax and gets no gradient (None where it is the only bias read).
        num_heads: nh.
        values: "projected" (the paper: W_v y~) or "trajectory" (the official code: y~ itself).
    """
    if values not in ("projected", "trajectory"):
        raise ValueError(f"values must be 'projected' or 'trajectory', got {values!r}")
    b_v = None
    if values == "projected" and proj_kv.bias is not None:
        b_v = proj_kv.bias[proj_kv.bias.shape[0] // 2:]
    out = _FusedPool.apply(y, proj_q.weight, proj_q.bias, proj_kv.weight, b_v, num_heads, values)
    return out.flatten(-2)


__all__ = ["fused_pool_trajectories", "pool_backward", "pool_forward"]
