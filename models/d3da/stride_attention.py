"""Joint stride attention (supplementary Algorithm A1) and temporal stride attention (Algorithm A2).

Both split one axis of the token grid into sliding windows of ``wnd`` positions at stride floor(wnd / 2) and attend
inside each window, the other axis folded into the window's tokens: A1 over the pose tokens of a frame (plus the
per-frame modal tokens M_pose, M'_CLS), A2 over the frames. ``cover="full"`` (the default) covers every token;
``cover="as_printed"`` runs the printed loops, which leave tokens uncovered. Windows are gathered with one index
tensor and run as one attention call; the literal per-window loops live in the tests. The loops, what they leave
uncovered and the corrected cover: docs/d3da_readings.md#the-printed-loops-window-by-window.
"""

from __future__ import annotations

from functools import cache
from typing import Literal

import torch
from einops import rearrange
from torch import Tensor, nn

from ..attention.joint import attend

Cover = Literal["as_printed", "full"]
COVERS = ("as_printed", "full")


def check_window(wnd: int, cover: str, option: str = "wnd") -> None:
    """Raise ``ValueError`` (naming ``option``) for a window size or cover the stride attentions cannot use."""
    if cover not in COVERS:
        raise ValueError(f"cover must be one of {COVERS}, got {cover!r}")
    if not isinstance(wnd, int) or wnd < 2:
        raise ValueError(f"{option} must be an int >= 2 (stride = floor(wnd / 2) must be >= 1), got {wnd!r}")


@cache
def printed_window_starts(n: int, wnd: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(query starts, key/value starts) of the loops of Algorithms A1/A2 as printed, for n tokens.

    The query loop stops at its first repeated start (its set has reached a fixed point). Raises ``ValueError`` when a
    start becomes negative (the printed slice would begin before the first token).
    """
    check_window(wnd, "as_printed")
    stride = wnd // 2
    query: list[int] = []
    i = 0
    while i < n - wnd:
        if i < 0:
            raise ValueError(f"as printed, the query loop of Algorithms A1/A2 reaches the negative window start "
                             f"{i} for n={n}, wnd={wnd}; use cover='full'")
        if i in query:  # the loop state is i alone: a repeated start repeats forever and adds nothing new
            break
        query.append(i)
        i += stride
        if i > n - wnd:
            i -= wnd  # "to assure query covers entire tokens"
    kv = list(range(stride, n - wnd, stride))  # i <- stride; while i < n - wnd: ...; i <- i + stride
    return tuple(query), tuple(kv)


@cache
def full_window_starts(n: int, wnd: int) -> tuple[int, ...]:
    """Starts of the corrected cover: 0, s, 2s, ... below n - wnd, then n - wnd (one start 0 when wnd >= n)."""
    check_window(wnd, "full")
    last = max(n - wnd, 0)
    starts = list(range(0, last, wnd // 2))
    return tuple(starts + [last])


@cache
def window_pairs(n: int, wnd: int, cover: Cover) -> tuple[tuple[tuple[int, ...], ...], tuple[tuple[int, ...], ...]]:
    """The paired (query window, key/value window) index lists for n tokens: two tuples of D windows each.

    ``as_printed``: the j-th starts of the printed query and key/value loops (``zip``; unpaired windows dropped).
    ``full``: the corrected starts for both, windows of min(wnd, n) tokens.
    """
    check_window(wnd, cover)
    if cover == "full":
        size = min(wnd, n)
        windows = tuple(tuple(range(i, i + size)) for i in full_window_starts(n, wnd))
        return windows, windows
    query, kv = printed_window_starts(n, wnd)
    pairs = list(zip(query, kv))
    if not pairs:
        raise ValueError(f"as printed, Algorithms A1/A2 form no (query, key/value) window pair for n={n}, "
                         f"wnd={wnd} (query starts {list(query)}, key/value starts {list(kv)}); use cover='full'")
    return (tuple(tuple(range(q, q + wnd)) for q, _ in pairs),
            tuple(tuple(range(k, k + wnd)) for _, k in pairs))


@cache
def query_coverage(n: int, wnd: int, cover: Cover) -> tuple[int, ...]:
    """How many paired query windows hold each of the n tokens (0 = not updated by the attention)."""
    counts = [0] * n
    for window in window_pairs(n, wnd, cover)[0]:
        for i in window:
            counts[i] += 1
    return tuple(counts)


class StrideAttention(nn.Module):
    """Multi-head attention inside sliding windows along one token axis (the common core of A1 and A2).

    ``forward(x, extra)``: ``x`` (B, n, A, C), n positions along the windowed axis, each with A tokens that enter a
    window together; optional ``extra`` (B, m, A, C) tokens appended to every window. Returns the attention updates of
    both (zero for uncovered tokens); a token in several windows gets the mean of their outputs.
    """

    def __init__(self, dim: int, num_heads: int = 8, qkv_bias: bool = True, attn_drop: float = 0.0,
                 proj_drop: float = 0.0, fused_attn: bool = True, wnd: int = 4, cover: Cover = "full") -> None:
        """
        Args:
            dim: token width C; divisible by ``num_heads``.
            num_heads: attention heads.
            qkv_bias: bias on the q/k/v projection.
            attn_drop: dropout on attention weights.
            proj_drop: dropout after the output projection.
            fused_attn: SDPA (True) or the explicit softmax path (False: FLOP counting, tests).
            wnd: window size along the windowed axis (>= 2); stride floor(wnd / 2).
            cover: "full" (corrected cover, every token covered) or "as_printed" (the printed loops); module doc.
        """
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} must be divisible by num_heads {num_heads}")
        check_window(wnd, cover)
        self.num_heads = num_heads
        self.wnd = wnd
        self.cover = cover
        self.fused_attn = fused_attn
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def _windows(self, n: int, device: torch.device) -> tuple[Tensor, Tensor, tuple[int, ...]]:
        q_windows, kv_windows = window_pairs(n, self.wnd, self.cover)
        q_idx = torch.tensor(q_windows, dtype=torch.long, device=device)  # (D, w)
        kv_idx = torch.tensor(kv_windows, dtype=torch.long, device=device)  # (D, w)
        return q_idx, kv_idx, query_coverage(n, self.wnd, self.cover)

    def forward(self, x: Tensor, extra: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        b, n, a, c = x.shape
        m = 0 if extra is None else extra.shape[1]
        q_idx, kv_idx, coverage = self._windows(n, x.device)
        num_windows, w = q_idx.shape
        tokens = x if extra is None else torch.cat([x, extra], dim=1)  # (B, n + m, A, C)
        q, k, v = self.qkv(tokens).chunk(3, dim=-1)  # each (B, n + m, A, C): projected once, gathered after

        def windows(z: Tensor, idx: Tensor) -> Tensor:
            win = z[:, idx]  # (B, D, w, A, C): one gather for all windows
            if m:  # the same extra tokens appended to every window (an expanded view, no copy until the cat)
                win = torch.cat([win, z[:, n:].unsqueeze(1).expand(-1, num_windows, -1, -1, -1)], dim=2)
            # 4-D for SDPA (its fused CPU kernels take (batch, heads, L, d) only): windows folded into the batch
            return rearrange(win, "b dw l a (nh d) -> (b dw) nh (l a) d", nh=self.num_heads)

        dropout_p = self.attn_drop.p if self.training else 0.0
        out = attend(windows(q, q_idx), windows(k, kv_idx), windows(v, kv_idx), self.fused_attn, dropout_p)
        out = rearrange(out, "(b dw) nh (l a) d -> b dw l a (nh d)", b=b, a=a)  # (B, D, w + m, A, C)

        # Merge: every token takes the mean over the query windows that hold it; extra tokens over all windows.
        # In the attention's dtype (fp16/bf16 under autocast, where the residual stream x stays fp32).
        merged = out.new_zeros(b, n, a, c).index_add(1, q_idx.reshape(-1), out[:, :, :w].reshape(b, -1, a, c))
        counts = torch.tensor(coverage, dtype=merged.dtype, device=x.device)
        merged = merged / counts.clamp(min=1).view(1, n, 1, 1)
        update = self.proj(merged)
        if min(coverage) == 0:  # as printed: tokens in no paired window get no update (not even proj's bias)
            update = update * (counts > 0).to(x.dtype).view(1, n, 1, 1)
        update = self.proj_drop(update)
        if not m:
            return update, None
        return update, self.proj_drop(self.proj(out[:, :, w:].mean(dim=1)))


class JointStrideAttention(StrideAttention):
    """Algorithm A1: windows of ``wnd`` pose tokens (all T frames) + the per-frame modal tokens M_pose, M'_CLS.

    ``forward(pose, modal)``: pose (B, T, R, C), modal (B, T, m, C) -> their updates, same shapes.
    """

    def forward(self, pose: Tensor, modal: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        upd, upd_modal = super().forward(pose.transpose(1, 2), None if modal is None else modal.transpose(1, 2))
        return upd.transpose(1, 2), None if upd_modal is None else upd_modal.transpose(1, 2)


class TemporalStrideAttention(StrideAttention):
    """Algorithm A2: windows of ``wnd`` frames of N = [Z || P || M_RGB || M_pose || M_CLS].

    ``forward(tokens)``: (B, T, D_n, C) -> its update (B, T, D_n, C).
    """

    def forward(self, tokens: Tensor, extra: Tensor | None = None) -> Tensor:  # type: ignore[override]
        if extra is not None:
            raise ValueError("temporal stride attention appends no tokens: the modal tokens are part of N")
        return super().forward(tokens)[0]


__all__ = [
    "COVERS",
    "JointStrideAttention",
    "StrideAttention",
    "TemporalStrideAttention",
    "check_window",
    "full_window_starts",
    "printed_window_starts",
    "query_coverage",
    "window_pairs",
]
