"""Exact trajectory attention (Motionformer Eq. 4-6) with both stages in Triton kernels: for a block of queries,
each frame's keys are streamed, stage one's per-frame softmax and its trajectory tokens are formed in registers and
reduced at once by stage two's pooling over t'; the (T*S) x T trajectory tokens never reach memory, forward or
backward (``TrajectoryAttention(stage_two_kernel="fused_stages")``).

What it computes, per clip, stage-one head g, query n = (t, s) and key frame t' (patch tokens only; C = nh * d):

    P_ngt's'  = softmax_s'(q_ng . k_t's'g / sqrt(d))       Eq. 4, Norm_S: one softmax per key frame
    y_ngt'    = sum_s' P_ngt's' v_t's'g                      head g's d channels of the trajectory token y~_nt'
    r_n       = y_n.t (heads concatenated)                   the reference-frame token: per-frame attention (SDPA)
    q~_n      = W_q r_n + b_q,  u_nh = W_k^h^T q~_nh / sqrt(d)   Eq. 5's query through the key projection (C,)
    a_nht'    = softmax_t'(sum_g u_nh[g] . y_ngt')           Eq. 6's weights (the key bias cancels in the softmax)
    z_nh[g]   = sum_t' a_nht' y_ngt'                         (C,) per head
    out_nh    = W_v^h z_nh + b_v^h                           Eq. 6, the paper's values
              = z_nh[h]                                      ``pool="trajectory"``: the official code's values
              = mean_t' y_nht'                               ``pool="average"``: Avg_T, no stage-two attention

The kernels (each program a block of ``BLOCK_M`` queries of one clip; every frame's S keys of one head in one tile):

- ``_weights_kernel``: loops over heads g and key frames t', forms y_ngt' and adds its share of the logits; the
  softmax over t' is taken in registers and only a (b, N, nh, T) is written. With ``GRAD`` the same pass forms
  dL/da and writes dL/dlogit = a (dL/da - sum_t' a dL/da) instead.
- ``_pool_kernel``: one head g per program; forms y_ngt' frame after frame and accumulates sum_t' c_nht' y_ngt' for
  a given c: the forward's z (c = a), or in backward z again (for dL/dW_v) and dL/du (c = dL/dlogit).
- ``_dq_kernel`` and ``_dkv_kernel``: stage one's backward as FlashAttention's, by recomputation. The gradient of a
  trajectory token, dL/dy_ngt' = sum_h dL/dlogit_nht' u_nh[g] + sum_h a_nht' dL/dz_nh[g], is formed in registers
  from those small per-token tensors, never written; then dS = P (dL/dy v^T - dL/dy . y), dq = dS k / sqrt(d) per
  query block, dk = dS^T q / sqrt(d) and dv = P^T dL/dy per key frame (no atomics: each program owns its rows).

The dense products (q~, u, W_v z and their gradients) and the reference-frame attention stay PyTorch's. Kept for
backward: q, k, v (the qkv projection's output, views), q~ and a; nothing of the trajectory tensor's size. Stage one
is recomputed: twice in the forward (logits, then pooling), five times in the backward.

Numerics: products accumulate in float32 (float64 for float64 inputs); 16-bit inputs enter the products as they
come, P and dL/dy rounded to the inputs' type before their products, as FlashAttention rounds them. No dropout
(``TrajectoryAttention`` refuses the option by name). CUDA tensors run compiled; CPU tensors run the same kernels
through Triton's interpreter (``TRITON_INTERPRET=1`` before ``triton`` is imported): a check, not a speed path.
Equal to Eq. 4-6 (float64, outputs and every gradient): tests/models/attention/test_trajectory_fused_stages.py.
"""

from __future__ import annotations

import os
from typing import Literal

import torch
import torch.nn.functional as F
import triton
import triton.language as tl
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from .trajectory_triton import _autocast_state, _on

BLOCK_M = 16  # queries per program: tl.dot's smallest operand dimension on a GPU
# Warps per program: at ViT-B's sizes (bf16, sm_90) ptxas spills 0.2-2.6 KB per thread in every kernel but one at
# 4 warps; at 8, none in the pool and dq kernels, 0.3 KB in the weights kernel and up to 1 KB in the dkv kernel
# (tests/models/attention/test_trajectory_fused_stages.py compiles them and prints the spills). Not yet timed.
NUM_WARPS = 8
_MIN_DOT = 16  # every tl.dot operand dimension is padded to at least this, and masked
POOLS = ("projected", "trajectory", "average")
# What ``_pool_kernel`` sums over t' (and, for the first three, how a trajectory token's gradient reads the heads)
_ALL_HEADS, _OWN_HEAD, _MEAN, _REFERENCE = 0, 1, 2, 3


@triton.jit
def _frame(q, k_head, v_head, sk_n, sk_d, sv_n, sv_d, tp, scale, S: tl.constexpr, s, j, s_ok, j_ok):
    """Stage one for one key frame t' = ``tp`` of one head: k, v tiles (S_P, D_P), P (BM, S_P) and y = P v (BM, D_P),
    the accumulator's type."""
    rows = tp * S + s
    kv_mask = s_ok[:, None] & j_ok[None, :]
    k = tl.load(k_head + rows[:, None] * sk_n + j[None, :] * sk_d, mask=kv_mask, other=0.0)
    v = tl.load(v_head + rows[:, None] * sv_n + j[None, :] * sv_d, mask=kv_mask, other=0.0)
    scores = tl.dot(q, tl.trans(k), input_precision="ieee") * scale
    scores = tl.where(s_ok[None, :], scores, float("-inf"))
    p = tl.exp(scores - tl.max(scores, axis=1)[:, None])
    p = p / tl.sum(p, axis=1)[:, None]
    y = tl.dot(p.to(v.dtype), v, input_precision="ieee")
    return k, v, p, y


@triton.jit
def _token_grad(u_ptr, gl_ptr, a_ptr, g_ptr, r_ptr, b, m, g, tp,
                su_b, su_n, su_h, su_c, sa_b, sa_n, sa_h, sa_t, sg_b, sg_n, sg_h, sg_c, sr_b, sr_n, sr_h, sr_d,
                h, j, m_ok, h_ok, j_ok, S: tl.constexpr, T: tl.constexpr, D: tl.constexpr, POOL: tl.constexpr,
                ACC: tl.constexpr):
    """dL/dy_ngt' (BM, D_P) for the query block ``m``, head g and key frame ``tp``: ``gl`` is dL/dlogit and ``a``
    the weights (b, N, nh, T, same strides), ``u`` (b, N, nh, C) and ``g`` (dL/dz, or dL/dout for the own-head and
    mean pools), ``r`` dL/dy~_ntt (b, N, nh, d): the reference-frame token's gradient through q~, added where t' is
    the query's own frame. Rows outside the block's valid queries are 0."""
    mj = m_ok[:, None] & j_ok[None, :]
    if POOL == 2:  # Avg_T: dL/dy_ngt' = dL/dout_ng / T
        grad = tl.load(g_ptr + b * sg_b + m[:, None] * sg_n + g * sg_h + j[None, :] * sg_c, mask=mj, other=0.0)
        return grad.to(ACC) / T
    mh = m_ok[:, None] & h_ok[None, :]
    mhj = mh[:, :, None] & j_ok[None, None, :]
    coeff = b * sa_b + m[:, None] * sa_n + h[None, :] * sa_h + tp * sa_t
    gl = tl.load(gl_ptr + coeff, mask=mh, other=0.0)  # (BM, NH_P)
    u = tl.load(u_ptr + b * su_b + m[:, None, None] * su_n + h[None, :, None] * su_h
                + (g * D + j[None, None, :]) * su_c, mask=mhj, other=0.0)
    grad = tl.sum(gl[:, :, None] * u.to(ACC), axis=1)  # sum_h dL/dlogit_nht' u_nh[g]
    if POOL == 0:  # + sum_h a_nht' dL/dz_nh[g]
        a = tl.load(a_ptr + coeff, mask=mh, other=0.0)
        gz = tl.load(g_ptr + b * sg_b + m[:, None, None] * sg_n + h[None, :, None] * sg_h
                     + (g * D + j[None, None, :]) * sg_c, mask=mhj, other=0.0)
        grad += tl.sum(a[:, :, None] * gz.to(ACC), axis=1)
    else:  # + a_ngt' dL/dout_ng: head g pools its own channels
        a_own = tl.load(a_ptr + b * sa_b + m * sa_n + g * sa_h + tp * sa_t, mask=m_ok, other=0.0)
        g_own = tl.load(g_ptr + b * sg_b + m[:, None] * sg_n + g * sg_h + j[None, :] * sg_c, mask=mj, other=0.0)
        grad += a_own[:, None] * g_own.to(ACC)
    own = mj & (m // S == tp)[:, None]
    g_ref = tl.load(r_ptr + b * sr_b + m[:, None] * sr_n + g * sr_h + j[None, :] * sr_d, mask=own, other=0.0)
    return grad + g_ref.to(ACC)


@triton.jit
def _weights_kernel(q_ptr, k_ptr, v_ptr, w_ptr, a_ptr, out_ptr, scale_ptr,
                    sq_b, sq_h, sq_n, sq_d, sk_b, sk_h, sk_n, sk_d, sv_b, sv_h, sv_n, sv_d,
                    sw_b, sw_n, sw_h, sw_c, sa_b, sa_n, sa_h, sa_t,
                    NH: tl.constexpr, T: tl.constexpr, S: tl.constexpr, D: tl.constexpr, NH_P: tl.constexpr,
                    T_P: tl.constexpr, S_P: tl.constexpr, D_P: tl.constexpr, BM: tl.constexpr,
                    GRAD: tl.constexpr, OWN_HEAD: tl.constexpr, ACC: tl.constexpr):
    """A query block's stage-two weights, (BM, nh, T): the forward's a = softmax_t'(sum_g w_nh[g] . y_ngt') with
    w = u, or (``GRAD``) dL/dlogit from w = dL/dz (every head's C channels) or, ``OWN_HEAD``, w = dL/dout (head g's
    own d channels only: the official values). a and the output share ``sa_*``."""
    m = tl.program_id(0) * BM + tl.arange(0, BM)
    b = tl.program_id(1).to(tl.int64)
    h = tl.arange(0, NH_P).to(tl.int64)  # head offsets span the clips of a head-major u, z or dL/dz
    t = tl.arange(0, T_P)
    s = tl.arange(0, S_P)
    j = tl.arange(0, D_P)
    m_ok, h_ok, t_ok, s_ok, j_ok = m < T * S, h < NH, t < T, s < S, j < D
    scale = tl.load(scale_ptr)
    mj = m_ok[:, None] & j_ok[None, :]
    mhj = (m_ok[:, None] & h_ok[None, :])[:, :, None] & j_ok[None, None, :]
    h3, t3 = h[None, :, None], t[None, None, :]
    logits = tl.zeros((BM, NH_P, T_P), ACC)
    for g in range(NH):
        q = tl.load(q_ptr + b * sq_b + g * sq_h + m[:, None] * sq_n + j[None, :] * sq_d, mask=mj, other=0.0)
        if OWN_HEAD:
            w = tl.load(w_ptr + b * sw_b + m[:, None] * sw_n + g * sw_h + j[None, :] * sw_c, mask=mj, other=0.0)
        else:
            w = tl.load(w_ptr + b * sw_b + m[:, None, None] * sw_n + h3 * sw_h + (g * D + j[None, None, :]) * sw_c,
                        mask=mhj, other=0.0)
        w = w.to(ACC)
        for tp in range(T):
            _, _, _, y = _frame(q, k_ptr + b * sk_b + g * sk_h, v_ptr + b * sv_b + g * sv_h, sk_n, sk_d, sv_n, sv_d,
                                tp, scale, S, s, j, s_ok, j_ok)
            if OWN_HEAD:
                share = tl.sum(w * y, axis=1)  # (BM,): only head g's logits
                logits += tl.where((h3 == g) & (t3 == tp), share[:, None, None], 0.0)
            else:
                share = tl.sum(w * y[:, None, :], axis=2)  # (BM, NH_P): u_nh[g] . y_ngt'
                logits += tl.where(t3 == tp, share[:, :, None], 0.0)
    mask = (m_ok[:, None] & h_ok[None, :])[:, :, None] & t_ok[None, None, :]
    where = b * sa_b + m[:, None, None] * sa_n + h3 * sa_h + t3 * sa_t
    if GRAD:  # logits holds dL/da; the softmax's backward
        a = tl.load(a_ptr + where, mask=mask, other=0.0).to(ACC)
        out = a * (logits - tl.sum(a * logits, axis=2)[:, :, None])
    else:
        logits = tl.where(t_ok[None, None, :], logits, float("-inf"))
        p = tl.exp(logits - tl.max(logits, axis=2)[:, :, None])
        out = p / tl.sum(p, axis=2)[:, :, None]
    tl.store(out_ptr + where, out.to(out_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _pool_kernel(q_ptr, k_ptr, v_ptr, c_ptr, out_ptr, scale_ptr,
                 sq_b, sq_h, sq_n, sq_d, sk_b, sk_h, sk_n, sk_d, sv_b, sv_h, sv_n, sv_d,
                 sc_b, sc_n, sc_h, sc_t, so_b, so_n, so_h, so_c,
                 NH: tl.constexpr, T: tl.constexpr, S: tl.constexpr, D: tl.constexpr, NH_P: tl.constexpr,
                 T_P: tl.constexpr, S_P: tl.constexpr, D_P: tl.constexpr, BM: tl.constexpr,
                 POOL: tl.constexpr, ACC: tl.constexpr):
    """Head g's share of sum_t' c_nht' y_ngt' for a query block: every head's (``POOL`` 0: out (b, N, nh, C) at
    channels g*D...), head g's own (1: out (b, N, nh, d) at head g), the mean over t' (2, no c) or the reference-frame
    token y_ngt, t the query's own frame (3, no c: only the frames the block's queries lie in)."""
    start = tl.program_id(0) * BM
    m = start + tl.arange(0, BM)
    g = tl.program_id(1)
    b = tl.program_id(2).to(tl.int64)
    h = tl.arange(0, NH_P).to(tl.int64)  # head offsets span the clips of a head-major u, z or dL/dz
    s = tl.arange(0, S_P)
    j = tl.arange(0, D_P)
    m_ok, h_ok, s_ok, j_ok = m < T * S, h < NH, s < S, j < D
    scale = tl.load(scale_ptr)
    mj = m_ok[:, None] & j_ok[None, :]
    mh = m_ok[:, None] & h_ok[None, :]
    q = tl.load(q_ptr + b * sq_b + g * sq_h + m[:, None] * sq_n + j[None, :] * sq_d, mask=mj, other=0.0)
    k_head, v_head = k_ptr + b * sk_b + g * sk_h, v_ptr + b * sv_b + g * sv_h
    if POOL == 0:
        acc = tl.zeros((BM, NH_P, D_P), ACC)
    else:
        acc = tl.zeros((BM, D_P), ACC)
    if POOL == 3:
        for tp in range(start // S, tl.minimum(start + BM, T * S) // S + 1):
            _, _, _, y = _frame(q, k_head, v_head, sk_n, sk_d, sv_n, sv_d, tp, scale, S, s, j, s_ok, j_ok)
            acc += tl.where((m // S == tp)[:, None], y, 0.0)
    else:
        for tp in range(T):
            _, _, _, y = _frame(q, k_head, v_head, sk_n, sk_d, sv_n, sv_d, tp, scale, S, s, j, s_ok, j_ok)
            if POOL == 0:
                c = tl.load(c_ptr + b * sc_b + m[:, None] * sc_n + h[None, :] * sc_h + tp * sc_t, mask=mh,
                            other=0.0)
                acc += c.to(ACC)[:, :, None] * y[:, None, :]
            elif POOL == 1:
                c = tl.load(c_ptr + b * sc_b + m * sc_n + g * sc_h + tp * sc_t, mask=m_ok, other=0.0)
                acc += c.to(ACC)[:, None] * y
            else:
                acc += y
    if POOL == 0:
        mhj = mh[:, :, None] & j_ok[None, None, :]
        tl.store(out_ptr + b * so_b + m[:, None, None] * so_n + h[None, :, None] * so_h
                 + (g * D + j[None, None, :]) * so_c, acc.to(out_ptr.dtype.element_ty), mask=mhj)
    else:
        if POOL == 2:
            acc = acc / T
        tl.store(out_ptr + b * so_b + m[:, None] * so_n + g * so_h + j[None, :] * so_c,
                 acc.to(out_ptr.dtype.element_ty), mask=mj)


@triton.jit
def _dq_kernel(q_ptr, k_ptr, v_ptr, u_ptr, gl_ptr, a_ptr, g_ptr, r_ptr, dq_ptr, scale_ptr,
               sq_b, sq_h, sq_n, sq_d, sk_b, sk_h, sk_n, sk_d, sv_b, sv_h, sv_n, sv_d,
               su_b, su_n, su_h, su_c, sa_b, sa_n, sa_h, sa_t, sg_b, sg_n, sg_h, sg_c, sr_b, sr_n, sr_h, sr_d,
               sd_b, sd_h, sd_n, sd_d,
               NH: tl.constexpr, T: tl.constexpr, S: tl.constexpr, D: tl.constexpr, NH_P: tl.constexpr,
               T_P: tl.constexpr, S_P: tl.constexpr, D_P: tl.constexpr, BM: tl.constexpr,
               POOL: tl.constexpr, ACC: tl.constexpr):
    """dL/dq for a query block and head g: sum over key frames t' of dS k / sqrt(d) (dq's strides ``sd_*``)."""
    m = tl.program_id(0) * BM + tl.arange(0, BM)
    g = tl.program_id(1)
    b = tl.program_id(2).to(tl.int64)
    h = tl.arange(0, NH_P).to(tl.int64)  # head offsets span the clips of a head-major u, z or dL/dz
    s = tl.arange(0, S_P)
    j = tl.arange(0, D_P)
    m_ok, h_ok, s_ok, j_ok = m < T * S, h < NH, s < S, j < D
    scale = tl.load(scale_ptr)
    mj = m_ok[:, None] & j_ok[None, :]
    q = tl.load(q_ptr + b * sq_b + g * sq_h + m[:, None] * sq_n + j[None, :] * sq_d, mask=mj, other=0.0)
    dq = tl.zeros((BM, D_P), ACC)
    for tp in range(T):
        k, v, p, y = _frame(q, k_ptr + b * sk_b + g * sk_h, v_ptr + b * sv_b + g * sv_h, sk_n, sk_d, sv_n, sv_d,
                            tp, scale, S, s, j, s_ok, j_ok)
        dy = _token_grad(u_ptr, gl_ptr, a_ptr, g_ptr, r_ptr, b, m, g, tp, su_b, su_n, su_h, su_c,
                         sa_b, sa_n, sa_h, sa_t, sg_b, sg_n, sg_h, sg_c, sr_b, sr_n, sr_h, sr_d,
                         h, j, m_ok, h_ok, j_ok, S, T, D, POOL, ACC)
        delta = tl.sum(dy * y, axis=1)  # sum_s' P dP: the softmax's backward, per query
        dp = tl.dot(dy.to(v.dtype), tl.trans(v), input_precision="ieee")
        ds = p * (dp - delta[:, None])
        dq += tl.dot(ds.to(k.dtype), k, input_precision="ieee")
    tl.store(dq_ptr + b * sd_b + g * sd_h + m[:, None] * sd_n + j[None, :] * sd_d,
             (dq * scale).to(dq_ptr.dtype.element_ty), mask=mj)


@triton.jit
def _dkv_kernel(q_ptr, k_ptr, v_ptr, u_ptr, gl_ptr, a_ptr, g_ptr, r_ptr, dk_ptr, dv_ptr, scale_ptr,
                sq_b, sq_h, sq_n, sq_d, sk_b, sk_h, sk_n, sk_d, sv_b, sv_h, sv_n, sv_d,
                su_b, su_n, su_h, su_c, sa_b, sa_n, sa_h, sa_t, sg_b, sg_n, sg_h, sg_c, sr_b, sr_n, sr_h, sr_d,
                sd_b, sd_h, sd_n, sd_d,
                NH: tl.constexpr, T: tl.constexpr, S: tl.constexpr, D: tl.constexpr, NH_P: tl.constexpr,
                T_P: tl.constexpr, S_P: tl.constexpr, D_P: tl.constexpr, BM: tl.constexpr,
                POOL: tl.constexpr, ACC: tl.constexpr):
    """dL/dk and dL/dv for key frame t' and head g: every query block's dS^T q / sqrt(d) and P^T dL/dy; dk and dv
    share the strides ``sd_*``."""
    tp = tl.program_id(0)
    g = tl.program_id(1)
    b = tl.program_id(2).to(tl.int64)
    h = tl.arange(0, NH_P).to(tl.int64)  # head offsets span the clips of a head-major u, z or dL/dz
    s = tl.arange(0, S_P)
    j = tl.arange(0, D_P)
    h_ok, s_ok, j_ok = h < NH, s < S, j < D
    scale = tl.load(scale_ptr)
    k_head, v_head = k_ptr + b * sk_b + g * sk_h, v_ptr + b * sv_b + g * sv_h
    dk = tl.zeros((S_P, D_P), ACC)
    dv = tl.zeros((S_P, D_P), ACC)
    for start in range(0, T * S, BM):
        m = start + tl.arange(0, BM)
        m_ok = m < T * S
        mj = m_ok[:, None] & j_ok[None, :]
        q = tl.load(q_ptr + b * sq_b + g * sq_h + m[:, None] * sq_n + j[None, :] * sq_d, mask=mj, other=0.0)
        k, v, p, y = _frame(q, k_head, v_head, sk_n, sk_d, sv_n, sv_d, tp, scale, S, s, j, s_ok, j_ok)
        dy = _token_grad(u_ptr, gl_ptr, a_ptr, g_ptr, r_ptr, b, m, g, tp, su_b, su_n, su_h, su_c,
                         sa_b, sa_n, sa_h, sa_t, sg_b, sg_n, sg_h, sg_c, sr_b, sr_n, sr_h, sr_d,
                         h, j, m_ok, h_ok, j_ok, S, T, D, POOL, ACC)
        delta = tl.sum(dy * y, axis=1)
        dp = tl.dot(dy.to(v.dtype), tl.trans(v), input_precision="ieee")
        ds = p * (dp - delta[:, None])  # rows of queries outside the clip: dy = 0, so 0
        dv += tl.dot(tl.trans(p.to(v.dtype)), dy.to(v.dtype), input_precision="ieee")
        dk += tl.dot(tl.trans(ds.to(q.dtype)), q, input_precision="ieee")
    rows = tp * S + s
    kv_mask = s_ok[:, None] & j_ok[None, :]
    at = b * sd_b + g * sd_h + rows[:, None] * sd_n + j[None, :] * sd_d
    tl.store(dk_ptr + at, (dk * scale).to(dk_ptr.dtype.element_ty), mask=kv_mask)
    tl.store(dv_ptr + at, dv.to(dv_ptr.dtype.element_ty), mask=kv_mask)


# ---- launches -----------------------------------------------------------------------------------------------------


def _padded(size: int) -> int:
    return max(_MIN_DOT, triton.next_power_of_2(size))


def _check_runnable(q: Tensor, num_frames: int) -> None:
    """One line for what the kernels cannot take: the device, the element type, a token count not T frames."""
    if q.device.type == "cpu" and os.environ.get("TRITON_INTERPRET") != "1":
        raise RuntimeError("the fused trajectory kernels run CUDA tensors, or CPU tensors under TRITON_INTERPRET=1 "
                           "(set before triton is imported); use stage_two_kernel='pytorch' on this CPU")
    if q.device.type not in ("cpu", "cuda"):
        raise RuntimeError(f"the fused trajectory kernels run CUDA tensors; got a {q.device.type} tensor "
                           f"(use stage_two_kernel='pytorch')")
    if q.dtype not in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        raise TypeError(f"the fused trajectory kernels take float16, bfloat16, float32 or float64 tensors, not "
                        f"{q.dtype}")
    if q.shape[2] % num_frames:
        raise ValueError(f"the fused trajectory kernels need the {q.shape[2]} patch tokens to be {num_frames} "
                         f"frames of equal size")


def _acc(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def _sizes(q: Tensor, num_frames: int) -> dict:
    """The kernels' compile-time sizes (padded ``_P``), accumulator type and warps."""
    _, nh, num_tokens, d = q.shape
    frame = num_tokens // num_frames
    return {"NH": nh, "T": num_frames, "S": frame, "D": d, "NH_P": triton.next_power_of_2(nh),
            "T_P": triton.next_power_of_2(num_frames), "S_P": _padded(frame), "D_P": _padded(d), "BM": BLOCK_M,
            "ACC": tl.float64 if q.dtype == torch.float64 else tl.float32, "num_warps": NUM_WARPS}


def _scale(q: Tensor) -> Tensor:
    """1/sqrt(d) as a one-element tensor of the accumulator's type (a float argument would enter as float32)."""
    return torch.full((1,), q.shape[-1] ** -0.5, dtype=_acc(q.dtype), device=q.device)


def _qkv_strides(q: Tensor, k: Tensor, v: Tensor) -> tuple[int, ...]:
    return (*q.stride(), *k.stride(), *v.stride())


def stage_two_weights(q: Tensor, k: Tensor, v: Tensor, num_frames: int, w: Tensor, a: Tensor | None = None,
                      own_head: bool = False) -> Tensor:
    """q, k, v (b, nh, N, d) any strides; w (b, N, nh, C) (or (b, N, nh, d) with ``own_head``). Without ``a``: the
    weights a (b, N, nh, T) of w = u; with ``a``: dL/dlogit (b, N, nh, T) from w = dL/dz (or dL/dout)."""
    _check_runnable(q, num_frames)
    b, nh, num_tokens, _ = q.shape
    out = torch.empty(b, num_tokens, nh, num_frames, device=q.device, dtype=_acc(q.dtype))
    with _on(q.device):
        _weights_kernel[(triton.cdiv(num_tokens, BLOCK_M), b)](
            q, k, v, w, out if a is None else a, out, _scale(q), *_qkv_strides(q, k, v), *w.stride(),
            *out.stride(), GRAD=a is not None, OWN_HEAD=own_head, **_sizes(q, num_frames))
    return out


def pool(q: Tensor, k: Tensor, v: Tensor, num_frames: int, c: Tensor | None, how: int) -> Tensor:
    """sum_t' c_nht' y_ngt' without the trajectory tokens: ``how`` = ``_ALL_HEADS`` (c (b, N, nh, T) -> (b, N, nh,
    C), head-major in memory), ``_OWN_HEAD`` (-> (b, N, nh, d)), ``_MEAN`` (no c: the mean over t') or
    ``_REFERENCE`` (no c: the reference-frame tokens y~_ntt)."""
    _check_runnable(q, num_frames)
    b, nh, num_tokens, d = q.shape
    if how == _ALL_HEADS:  # head-major, (nh, b, N, C): W_v z and the products after it take each head's rows
        out = torch.empty(nh, b, num_tokens, nh * d, device=q.device, dtype=q.dtype).permute(1, 2, 0, 3)
    else:  # token-major: (b, N, C) is a view
        out = torch.empty(b, num_tokens, nh, d, device=q.device, dtype=q.dtype)
    c = out if c is None else c  # the mean and the reference frame read no weights
    with _on(q.device):
        _pool_kernel[(triton.cdiv(num_tokens, BLOCK_M), nh, b)](
            q, k, v, c, out, _scale(q), *_qkv_strides(q, k, v), *c.stride(), *out.stride(), POOL=how,
            **_sizes(q, num_frames))
    return out


def stage_one_grads(q: Tensor, k: Tensor, v: Tensor, num_frames: int, how: int, grad: Tensor,
                    u: Tensor | None = None, g_logits: Tensor | None = None, a: Tensor | None = None,
                    g_reference: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """dL/dq, dL/dk, dL/dv (b, nh, N, d) from the trajectory tokens' gradient, formed in the kernels: ``grad`` is
    dL/dz (b, N, nh, C) (``_ALL_HEADS``) or dL/dout (b, N, nh, d); ``u``, ``g_logits`` (dL/dlogit), ``a`` and
    ``g_reference`` (dL/dy~_ntt, (b, N, nh, d)) are needed unless ``how`` is ``_MEAN``."""
    _check_runnable(q, num_frames)
    b, nh, num_tokens, _ = q.shape
    if how == _MEAN:  # no stage-two weights: the kernels read none of these
        u, g_logits, a, g_reference = grad, grad, grad, grad
    if a.stride() != g_logits.stride():
        raise ValueError("a and dL/dlogit must share their strides")
    dq, dk, dv = (torch.empty(q.shape, device=q.device, dtype=q.dtype) for _ in range(3))
    inputs = (*_qkv_strides(q, k, v), *u.stride(), *g_logits.stride(), *grad.stride(), *g_reference.stride(),
              *dq.stride())
    sizes = _sizes(q, num_frames)
    with _on(q.device):
        _dq_kernel[(triton.cdiv(num_tokens, BLOCK_M), nh, b)](
            q, k, v, u, g_logits, a, grad, g_reference, dq, _scale(q), *inputs, POOL=how, **sizes)
        _dkv_kernel[(num_frames, nh, b)](
            q, k, v, u, g_logits, a, grad, g_reference, dk, dv, _scale(q), *inputs, POOL=how, **sizes)
    return dq, dk, dv


# ---- the autograd function and the layer's entry point ------------------------------------------------------------

_HOW = {"projected": _ALL_HEADS, "trajectory": _OWN_HEAD, "average": _MEAN}


class _FusedStages(torch.autograd.Function):
    """Eq. 4-6 from q, k, v (b, nh, N, d) and stage two's projections -> (b, N, nh, d); Avg_T without them."""

    @staticmethod
    def forward(ctx, q: Tensor, k: Tensor, v: Tensor, w_q: Tensor | None, b_q: Tensor | None, w_kv: Tensor | None,
                b_v: Tensor | None, num_frames: int, pool_values: str) -> Tensor:
        ctx.num_frames, ctx.pool_values = num_frames, pool_values
        ctx.has_b_q, ctx.has_b_v = b_q is not None, b_v is not None
        ctx.autocast = _autocast_state(q.device.type)
        if pool_values == "average":
            ctx.save_for_backward(q, k, v)
            return pool(q, k, v, num_frames, None, _MEAN)
        nh, d = q.shape[1], q.shape[3]
        w_k, w_v = w_kv.view(2, nh, d, nh * d)
        reference = pool(q, k, v, num_frames, None, _REFERENCE).flatten(-2)  # y~_ntt (b N C)
        q_tilde = F.linear(reference, w_q, b_q)  # Eq. 5
        u = torch.einsum("bnhd,hdc->bnhc", q_tilde.unflatten(-1, (nh, d)) * d ** -0.5, w_k).to(q.dtype)
        a = stage_two_weights(q, k, v, num_frames, u)
        del u
        projected = pool_values == "projected"
        z = pool(q, k, v, num_frames, a, _ALL_HEADS if projected else _OWN_HEAD)
        if projected:
            out = torch.einsum("bnhc,hdc->bnhd", z, w_v)
            out = out if b_v is None else out + b_v.view(nh, d)
        else:
            out = z
        ctx.save_for_backward(q, k, v, reference, q_tilde, a, w_q, w_kv)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor):
        # The gradients' products run with the forward's autocast state, as the forward's did.
        device, enabled, dtype = ctx.autocast
        if not enabled:
            return _FusedStages._backward(ctx, grad_out)
        with torch.autocast(device, dtype=dtype):
            return _FusedStages._backward(ctx, grad_out)

    @staticmethod
    def _backward(ctx, grad_out: Tensor):
        num_frames = ctx.num_frames
        if ctx.pool_values == "average":
            q, k, v = ctx.saved_tensors
            dq, dk, dv = stage_one_grads(q, k, v, num_frames, _MEAN, grad_out.to(q.dtype))
            return dq, dk, dv, None, None, None, None, None, None
        q, k, v, reference, q_tilde, a, w_q, w_kv = ctx.saved_tensors
        nh, d = q.shape[1], q.shape[3]
        scale = d ** -0.5
        projected = ctx.pool_values == "projected"
        w_k, w_v = w_kv.view(2, nh, d, nh * d)
        qs = q_tilde.unflatten(-1, (nh, d)) * scale
        grad = (torch.einsum("bnhd,hdc->bnhc", grad_out, w_v) if projected else grad_out).to(q.dtype)
        g_logits = stage_two_weights(q, k, v, num_frames, grad, a, own_head=not projected)
        g_u = pool(q, k, v, num_frames, g_logits, _ALL_HEADS)  # dL/du_nh = sum_t' dL/dlogit_nht' y~_nt'
        g_wk = torch.einsum("bnhc,bnhd->hdc", g_u, qs)
        g_q_tilde = torch.einsum("bnhc,hdc->bnhd", g_u, w_k).flatten(-2) * scale  # (b N C)
        del g_u
        g_wq = (g_q_tilde.flatten(0, 1).transpose(0, 1) @ reference.flatten(0, 1)).to(w_q.dtype)
        g_bq = g_q_tilde.sum(dim=(0, 1)).to(w_q.dtype) if ctx.has_b_q else None
        # The reference-frame tokens also made q~: their gradient joins the trajectory tokens' on the diagonal t' = t.
        g_reference = (g_q_tilde @ w_q).to(q.dtype).unflatten(-1, (nh, d))
        u = torch.einsum("bnhd,hdc->bnhc", qs, w_k).to(q.dtype)  # recomputed: one product, not kept
        dq, dk, dv = stage_one_grads(q, k, v, num_frames, _ALL_HEADS if projected else _OWN_HEAD, grad, u,
                                     g_logits, a, g_reference)
        del u, g_reference
        if projected:
            z = pool(q, k, v, num_frames, a, _ALL_HEADS)  # made again for dL/dW_v, never kept
            g_wv = torch.einsum("bnhd,bnhc->hdc", grad_out, z)
            g_wkv = torch.cat([g_wk.flatten(0, 1), g_wv.flatten(0, 1)]).to(w_kv.dtype)
        else:  # the official values never read proj_kv's value half: a zero gradient, as the autograd form's
            g_wkv = torch.cat([g_wk.flatten(0, 1).to(w_kv.dtype), torch.zeros_like(w_kv[nh * d:])])
        g_bv = grad_out.sum(dim=(0, 1)).flatten().to(w_kv.dtype) if ctx.has_b_v else None
        return dq, dk, dv, g_wq, g_bq, g_wkv, g_bv, None, None


def fused_trajectory_attention(q: Tensor, k: Tensor, v: Tensor, num_frames: int,
                               temporal_pool: Literal["attention", "average"] = "attention",
                               values: Literal["projected", "trajectory"] = "projected",
                               proj_q: nn.Linear | None = None, proj_kv: nn.Linear | None = None) -> Tensor:
    """Exact trajectory attention of the patch tokens, Norm_S: (b, nh, T*S, d) queries, keys and values (any
    strides) -> (b, T*S, C), before the output projection.

    Args:
        q, k, v: the patch tokens' queries, keys and values, frame by frame (t s) along the token axis.
        num_frames: T.
        temporal_pool: "attention" (Att_T, Eq. 5-6) or "average" (Avg_T).
        values: Att_T's values: "projected" (the paper's W_v y~) or "trajectory" (the official code's y~).
        proj_q, proj_kv: stage two's projections (Att_T only); ``proj_kv``'s key bias cancels in the softmax and
            gets no gradient.
    """
    if temporal_pool not in ("attention", "average") or values not in ("projected", "trajectory"):
        raise ValueError(f"temporal_pool must be 'attention' or 'average' and values 'projected' or 'trajectory', "
                         f"got {temporal_pool!r}, {values!r}")
    _check_runnable(q, num_frames)
    if temporal_pool == "average":
        out = _FusedStages.apply(q, k, v, None, None, None, None, num_frames, "average")
        return out.flatten(-2)
    b_v = None
    if values == "projected" and proj_kv.bias is not None:
        b_v = proj_kv.bias[proj_kv.bias.shape[0] // 2:]
    out = _FusedStages.apply(q, k, v, proj_q.weight, proj_q.bias, proj_kv.weight, b_v, num_frames, values)
    return out.flatten(-2)


__all__ = ["POOLS", "fused_trajectory_attention", "pool", "stage_one_grads", "stage_two_weights"]
