"""Joint stride (Algorithm A1) and temporal stride attention (A2) of the RGB+pose paper's supplementary against a
literal loop transcription of the printed algorithms (and of the corrected cover), hand-checked window lists, and
full attention in the limit of one window; float64 values and gradients, relative error < 1e-10."""

import pytest
import torch

import models  # noqa: F401  (repairs torchvision before anything imports timm)
from models.attention import JointSpaceTimeAttention
from models.d3da.stride_attention import (
    JointStrideAttention,
    TemporalStrideAttention,
    full_window_starts,
    printed_window_starts,
    query_coverage,
    window_pairs,
)

DIM, HEADS = 8, 2
TOL = 1e-10


# ---- literal transcriptions ------------------------------------------------------------------------------------


def printed_loops(n: int, wnd: int) -> tuple[list[int], list[int]]:
    """The two while loops of Algorithms A1/A2, line by line. The query loop never ends once i overshoots n - wnd;
    its window set stops growing at the first repeated start, where this transcription stops."""
    stride = wnd // 2
    query, seen = [], set()
    i = 0
    while i < (n - wnd):
        assert i >= 0, "printed loop reaches a negative start"
        if i in seen:
            break
        seen.add(i)
        query.append(i)  # P_q <- P_q U P[:, :, i : i + wnd]
        i = i + stride
        if i > (n - wnd):
            i = i - wnd  # "to assure query covers entire tokens"
    kv = []
    i = stride
    while i < (n - wnd):
        kv.append(i)  # P_kv <- P_kv U P[:, :, i : i + wnd]
        i = i + stride
    return query, kv


def corrected_loops(n: int, wnd: int) -> tuple[list[int], list[int]]:
    """The corrected cover: both loops start at 0; the last window is moved back to end on the last token."""
    stride = wnd // 2
    starts, i = [], 0
    while True:
        starts.append(i)
        if i + wnd >= n:
            break
        i = min(i + stride, n - wnd)
    return starts, starts


def mha(module, queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """MSA(O W_q, O~ W_k, O~ W_v) + output projection, one head and one batch element at a time, explicit softmax.
    queries (B, Lq, C), keys (B, Lk, C) -> (B, Lq, C)."""
    c = queries.shape[-1]
    w, bias = module.qkv.weight, module.qkv.bias
    q = queries @ w[:c].T + bias[:c]
    k = keys @ w[c:2 * c].T + bias[c:2 * c]
    v = keys @ w[2 * c:].T + bias[2 * c:]
    d = c // module.num_heads
    rows = []
    for b in range(queries.shape[0]):
        heads = []
        for h in range(module.num_heads):
            sl = slice(h * d, (h + 1) * d)
            attn = torch.softmax(q[b, :, sl] @ k[b, :, sl].T / d ** 0.5, dim=-1)
            heads.append(attn @ v[b, :, sl])
        rows.append(torch.cat(heads, dim=-1))
    return torch.stack(rows) @ module.proj.weight.T + module.proj.bias


def joint_stride_reference(module, pose: torch.Tensor, modal: torch.Tensor, loops) -> tuple[torch.Tensor, ...]:
    """Algorithm A1 window by window. pose (B, T, R, C) = P, modal (B, T, 2, C) = [M_pose || M'_CLS]. Each token's
    update is the mean over the query windows holding it; the modal tokens' over all windows; uncovered: 0."""
    b, t, r, c = pose.shape
    q_starts, kv_starts = loops(r, module.wnd)
    out, count = torch.zeros_like(pose), [0] * r
    out_modal, windows = torch.zeros_like(modal), 0
    for qs, ks in zip(q_starts, kv_starts):
        o = torch.cat([pose[:, :, qs:qs + module.wnd], modal], dim=2)  # O: (B, T, wnd + 2, C)
        o_kv = torch.cat([pose[:, :, ks:ks + module.wnd], modal], dim=2)  # O~
        width = o.shape[2] - modal.shape[2]
        y = mha(module, o.reshape(b, -1, c), o_kv.reshape(b, -1, c)).reshape(o.shape)
        for j in range(width):
            out[:, :, qs + j] += y[:, :, j]
            count[qs + j] += 1
        out_modal = out_modal + y[:, :, width:]
        windows += 1
    out = torch.stack([out[:, :, j] / count[j] if count[j] else out[:, :, j] for j in range(r)], dim=2)
    return out, out_modal / windows


def temporal_stride_reference(module, tokens: torch.Tensor, loops) -> torch.Tensor:
    """Algorithm A2 window by window: tokens (B, T, D_n, C) = N, windows N[:, i : i + wnd, :] along time."""
    b, t, n, c = tokens.shape
    q_starts, kv_starts = loops(t, module.wnd)
    out, count = torch.zeros_like(tokens), [0] * t
    for qs, ks in zip(q_starts, kv_starts):
        n_q, n_kv = tokens[:, qs:qs + module.wnd], tokens[:, ks:ks + module.wnd]
        y = mha(module, n_q.reshape(b, -1, c), n_kv.reshape(b, -1, c)).reshape(n_q.shape)
        for j in range(n_q.shape[1]):
            out[:, qs + j] += y[:, j]
            count[qs + j] += 1
    return torch.stack([out[:, j] / count[j] if count[j] else out[:, j] for j in range(t)], dim=1)


# ---- helpers ---------------------------------------------------------------------------------------------------


def _random(cls, wnd: int, cover: str, fused: bool = True):
    torch.manual_seed(0)
    module = cls(DIM, num_heads=HEADS, qkv_bias=True, fused_attn=fused, wnd=wnd, cover=cover).double()
    with torch.no_grad():  # random biases too: zeros would hide layout mistakes
        for name, p in module.named_parameters():
            p.normal_(0.0, 0.5 if name.endswith("bias") else p.shape[-1] ** -0.5)
    return module.eval()


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm().clamp(min=1e-300)).item()


def _grads(outputs, inputs, params, seed: int = 1):
    """Gradients of a random linear functional of ``outputs`` with respect to inputs and parameters."""
    gen = torch.Generator().manual_seed(seed)
    loss = sum((o * torch.randn(o.shape, generator=gen, dtype=o.dtype)).sum() for o in outputs)
    return torch.autograd.grad(loss, [*inputs, *params], allow_unused=True)


def _assert_close_with_grads(module, fast, slow, inputs, slow_module=None):
    """Outputs, input gradients and parameter gradients agree (``slow_module``: the parameters of the slow path
    are that module's, in the same order)."""
    params = list(module.parameters())
    slow_params = params if slow_module is None else list(slow_module.parameters())
    assert len(fast) == len(slow)
    for a, b in zip(fast, slow):
        assert _rel(a, b) < TOL
    grads_fast, grads_slow = _grads(fast, inputs, params), _grads(slow, inputs, slow_params)
    assert len(grads_fast) == len(inputs) + 4  # inputs, qkv.weight, qkv.bias, proj.weight, proj.bias
    for ga, gb in zip(grads_fast, grads_slow):
        assert _rel(ga, gb) < TOL


# ---- window lists, checked by hand -----------------------------------------------------------------------------


def test_printed_window_starts_hand_checked():
    # R = 7, wnd = 4, stride 2: query i = 0 (add), 2 (add), 4 > 3 -> 0 (repeat: stop); kv i = 2 (add), 4 (stop).
    assert printed_window_starts(7, 4) == ((0, 2), (2,))
    # PennAction R = 13: 0 .. 8 (add), 10 > 9 -> 6 (repeat); kv 2 .. 8.
    assert printed_window_starts(13, 4) == ((0, 2, 4, 6, 8), (2, 4, 6, 8))
    # T = 12 (Figure A1): 0, 2, 4, 6, then i = 8 is not < 8: the loop ends without [8, 12).
    assert printed_window_starts(12, 4) == ((0, 2, 4, 6), (2, 4, 6))
    # Odd window: i - wnd is off the stride grid: 0, 2, 4, 6 > 5 -> 1, 3, 5 (stop).
    assert printed_window_starts(10, 5) == ((0, 2, 4, 1, 3), (2, 4))
    assert printed_window_starts(7, 3) == ((0, 1, 2, 3), (1, 2, 3))
    for n, wnd in [(7, 4), (13, 4), (12, 4), (10, 5), (7, 3), (25, 4), (13, 6), (9, 2)]:
        assert printed_window_starts(n, wnd) == tuple(map(tuple, printed_loops(n, wnd)))


def test_window_pairs_and_coverage_hand_checked():
    assert window_pairs(7, 4, "as_printed") == (((0, 1, 2, 3),), ((2, 3, 4, 5),))
    assert query_coverage(7, 4, "as_printed") == (1, 1, 1, 1, 0, 0, 0)  # joints 4, 5, 6: no update
    full = ((0, 1, 2, 3), (2, 3, 4, 5), (3, 4, 5, 6))
    assert window_pairs(7, 4, "full") == (full, full)
    assert query_coverage(7, 4, "full") == (1, 1, 2, 3, 2, 2, 1)
    assert full_window_starts(12, 4) == (0, 2, 4, 6, 8)
    assert full_window_starts(7, 3) == (0, 1, 2, 3, 4)
    assert window_pairs(3, 5, "full") == (((0, 1, 2),), ((0, 1, 2),))  # wnd >= n: one window of everything
    # As printed, T = 12: pairs (0, 2), (2, 4), (4, 6); frames 8-11 are never queries.
    assert query_coverage(12, 4, "as_printed") == (1, 1, 2, 2, 2, 2, 1, 1, 0, 0, 0, 0)
    # PennAction, as printed: joints 10-12 are never updated, joints 0, 1 and 12 are never keys.
    q_windows, kv_windows = window_pairs(13, 4, "as_printed")
    assert q_windows == ((0, 1, 2, 3), (2, 3, 4, 5), (4, 5, 6, 7), (6, 7, 8, 9))
    assert sorted(set(range(13)) - {i for w in kv_windows for i in w}) == [0, 1, 12]
    assert full_window_starts(13, 4) == (0, 2, 4, 6, 8, 9)
    for n, wnd in [(7, 4), (12, 4), (7, 3), (10, 5), (3, 5), (4, 4), (13, 4)]:
        assert full_window_starts(n, wnd) == tuple(corrected_loops(n, wnd)[0])


@pytest.mark.parametrize("n, wnd, match", [(6, 5, "negative"), (4, 4, "no"), (6, 4, "no"), (3, 8, "no")])
def test_printed_cover_rejects_impossible_sizes(n, wnd, match):
    with pytest.raises(ValueError, match=match):
        window_pairs(n, wnd, "as_printed")


@pytest.mark.parametrize("kwargs, option", [({"wnd": 1}, "wnd"), ({"wnd": 2.5}, "wnd"), ({"cover": "swin"}, "cover")])
def test_options_are_validated(kwargs, option):
    with pytest.raises(ValueError, match=option):
        JointStrideAttention(DIM, HEADS, **{"wnd": 4, "cover": "full", **kwargs})


# ---- batched windows == literal loops --------------------------------------------------------------------------

JOINT_CASES = [("as_printed", 7, 4), ("as_printed", 10, 5), ("as_printed", 7, 3), ("full", 7, 4), ("full", 7, 3),
               ("full", 8, 4), ("full", 5, 8)]


@pytest.mark.parametrize("fused", [True, False], ids=["sdpa", "explicit"])
@pytest.mark.parametrize("cover, r, wnd", JOINT_CASES)
def test_joint_stride_equals_literal_loops(cover, r, wnd, fused):
    module = _random(JointStrideAttention, wnd, cover, fused)
    gen = torch.Generator().manual_seed(2)
    pose = torch.randn(2, 3, r, DIM, generator=gen, dtype=torch.float64, requires_grad=True)
    modal = torch.randn(2, 3, 2, DIM, generator=gen, dtype=torch.float64, requires_grad=True)
    loops = printed_loops if cover == "as_printed" else corrected_loops
    _assert_close_with_grads(module, module(pose, modal), joint_stride_reference(module, pose, modal, loops),
                             (pose, modal))


TEMPORAL_CASES = [("as_printed", 7, 4), ("as_printed", 8, 4), ("as_printed", 10, 5), ("full", 7, 4),
                  ("full", 8, 3), ("full", 3, 4)]


@pytest.mark.parametrize("fused", [True, False], ids=["sdpa", "explicit"])
@pytest.mark.parametrize("cover, t, wnd", TEMPORAL_CASES)
def test_temporal_stride_equals_literal_loops(cover, t, wnd, fused):
    module = _random(TemporalStrideAttention, wnd, cover, fused)
    gen = torch.Generator().manual_seed(3)
    tokens = torch.randn(2, t, 5, DIM, generator=gen, dtype=torch.float64, requires_grad=True)
    loops = printed_loops if cover == "as_printed" else corrected_loops
    _assert_close_with_grads(module, (module(tokens),), (temporal_stride_reference(module, tokens, loops),),
                             (tokens,))


# ---- one window == full attention ------------------------------------------------------------------------------


def _full_attention(module, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.nn.Module]:
    """timm-style full attention with the stride module's weights over (B, T, n, C) flattened to (B, T*n, C);
    returns its output and the full-attention module."""
    full = JointSpaceTimeAttention(DIM, HEADS, qkv_bias=True).double().eval()
    full.load_state_dict(module.state_dict())
    b, t, n, c = tokens.shape
    return full(tokens.reshape(b, t * n, c), (t, n, 1)).reshape(b, t, n, c), full


@pytest.mark.parametrize("wnd", [7, 8, 12])
def test_joint_stride_is_full_attention_when_one_window_covers_all_joints(wnd):
    module = _random(JointStrideAttention, wnd, "full")
    gen = torch.Generator().manual_seed(4)
    pose = torch.randn(2, 3, 7, DIM, generator=gen, dtype=torch.float64, requires_grad=True)
    modal = torch.randn(2, 3, 2, DIM, generator=gen, dtype=torch.float64, requires_grad=True)
    full, full_module = _full_attention(module, torch.cat([pose, modal], dim=2))
    _assert_close_with_grads(module, module(pose, modal), (full[:, :, :7], full[:, :, 7:]), (pose, modal),
                             full_module)


@pytest.mark.parametrize("wnd", [4, 6])
def test_temporal_stride_is_full_attention_when_one_window_covers_all_frames(wnd):
    module = _random(TemporalStrideAttention, wnd, "full")
    tokens = torch.randn(2, 4, 5, DIM, generator=torch.Generator().manual_seed(5), dtype=torch.float64,
                         requires_grad=True)
    full, full_module = _full_attention(module, tokens)
    _assert_close_with_grads(module, (module(tokens),), (full,), (tokens,), full_module)


def test_smaller_window_is_not_full_attention():
    """The limit test can fail: with two windows the result differs from full attention."""
    module = _random(TemporalStrideAttention, 2, "full")
    tokens = torch.randn(1, 4, 5, DIM, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    assert _rel(module(tokens), _full_attention(module, tokens)[0]) > 1e-3
