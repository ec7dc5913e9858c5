"""CAST's small layers: the bottleneck adapter (Eq. 2), windowed multi-head cross-attention (Eq. 7) and VideoMAE's fixed
sinusoidal position table (shared by the temporal expert and its checkpoint loader).

Token grids are (B, T, N, C): batch, time, patches per time step, channels. Both experts' patch tokens are
brought to this layout (``models.cast.experts``), so a cross-attention between them is one rearrange into windows,
one attention call over all windows at once, and the inverse rearrange.
"""

from __future__ import annotations

from typing import Literal

import torch
from einops import rearrange
from torch import Tensor, nn

from ..attention.joint import sdpa
from ..weight_init import trunc_normal_

Window = Literal["time", "space", "space_time"]
WINDOWS: tuple[str, ...] = ("time", "space", "space_time")

# Grid -> windows: "time" = one window per patch position n over the T steps (Figure 3c, T2S), "space" = one per
# time step over the N patches (S2T), "space_time" = one window over all T*N tokens (Table 1e).
_TO_WINDOWS = {"time": "b t n c -> (b n) t c", "space": "b t n c -> (b t) n c", "space_time": "b t n c -> b (t n) c"}
_FROM_WINDOWS = {"time": "(b n) t c -> b t n c", "space": "(b t) n c -> b t n c",
                 "space_time": "b (t n) c -> b t n c"}


def window_length(window: str, num_steps: int, num_patches: int) -> int:
    """Tokens in one window of a (T, N) grid."""
    if window not in WINDOWS:
        raise ValueError(f"window must be one of {WINDOWS}, got {window!r}")
    return {"time": num_steps, "space": num_patches, "space_time": num_steps * num_patches}[window]


def to_windows(grid: Tensor, window: str) -> Tensor:
    """(B, T, N, C) -> (windows, tokens per window, C)."""
    return rearrange(grid, _TO_WINDOWS[window])


def from_windows(windows: Tensor, window: str, batch: int, num_steps: int, num_patches: int) -> Tensor:
    """Inverse of ``to_windows``."""
    sizes = {"time": dict(b=batch, n=num_patches), "space": dict(b=batch, t=num_steps),
             "space_time": dict(t=num_steps)}[window]
    return rearrange(windows, _FROM_WINDOWS[window], **sizes)


def cast_linear(dim_in: int, dim_out: int, bias: bool = True, zero: bool = False) -> nn.Linear:
    """A trainable ``nn.Linear`` of CAST, initialised as the official code does: weight ~ trunc_normal(std 0.02),
    bias 0 (its ``_init_weights``), or weight and bias 0 with ``zero`` (its ``_init_adpater_weight``, for the
    layers whose output is added to a frozen expert's tokens, so that the model starts as its pretrained experts)."""
    layer = nn.Linear(dim_in, dim_out, bias=bias)
    if zero:
        nn.init.zeros_(layer.weight)
    else:
        trunc_normal_(layer.weight, std=0.02)
    if bias:
        nn.init.zeros_(layer.bias)
    return layer


class Adapter(nn.Module):
    """ADAP(x) = GELU(x W_D) W_U (Eq. 2), with biases (AIM's adapter). ``zero_init`` zeroes W_U and its bias so
    that the adapter starts as a zero function and a frozen expert starts exactly as pretrained."""

    def __init__(self, dim: int, ratio: float = 0.25, zero_init: bool = True, out_dim: int | None = None) -> None:
        super().__init__()
        hidden = int(dim * ratio)
        if hidden < 1:
            raise ValueError(f"adapter ratio {ratio} leaves no hidden channel of {dim}")
        self.fc1 = cast_linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = cast_linear(hidden, out_dim or dim, zero=zero_init)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class WindowedCrossAttention(nn.Module):
    """MHCA(Y_q, Y_kv) = Softmax((Y_q W_Q)(Y_kv W_K)^T / sqrt(d)) (Y_kv W_V) (Eq. 7), within windows of a grid.

    Queries come from one expert's grid and keys/values from the other's; both grids are (B, T, N, C) with the
    same T and N, and token (t, n) of one attends to the tokens of the other that share its window. With ``pos``,
    the B-CAST positional embeddings are added first: ``query_pos`` (E of the query expert) and ``key_pos`` (E of
    the key expert), one vector per position inside a window (Eq. 8; supplementary Table 3: 8 x 384 for time
    windows, 196 x 384 for space windows). All windows go through one attention call (SDPA, or the explicit
    softmax path when ``fused_attn`` is False, e.g. for FLOP counting).
    """

    def __init__(self, dim: int, num_heads: int, window: Window, num_steps: int, num_patches: int,
                 pos: bool = True, qkv_bias: bool = True, attn_drop: float = 0.0, fused_attn: bool = True,
                 zero_proj: bool = False) -> None:
        """
        Args:
            dim: channels of both grids (the B-CAST bottleneck width).
            num_heads: heads; ``dim`` must divide by it.
            window: "time" (attend over the T steps at one patch position), "space" (over the N patches of one
                time step) or "space_time" (over all T*N tokens).
            num_steps: T of the grids.
            num_patches: N of the grids.
            pos: add learnable B-CAST positional embeddings to queries and keys/values (Table 8).
            qkv_bias: biases on the q and kv projections (the official code has them).
            attn_drop: dropout on attention weights.
            fused_attn: SDPA (True) or explicit softmax (False).
            zero_proj: start the output projection at zero (when its output is added to an expert's tokens
                directly, so that the expert starts as pretrained).
        """
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"cross-attention width {dim} must be divisible by num_heads {num_heads}")
        self.num_heads, self.window, self.fused_attn = num_heads, window, fused_attn
        self.scale = (dim // num_heads) ** -0.5
        length = window_length(window, num_steps, num_patches)
        self.grid = (num_steps, num_patches)
        if pos:
            # The official code draws them as scale * randn (scale = head_dim ** -0.5).
            self.query_pos = nn.Parameter(self.scale * torch.randn(length, dim))
            self.key_pos = nn.Parameter(self.scale * torch.randn(length, dim))
        else:
            self.query_pos = self.key_pos = None
        self.q = cast_linear(dim, dim, bias=qkv_bias)
        self.kv = cast_linear(dim, 2 * dim, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = cast_linear(dim, dim, zero=zero_proj)

    def forward(self, query_grid: Tensor, key_grid: Tensor) -> Tensor:
        """(B, T, N, C) queries, (B, T, N, C) keys/values -> (B, T, N, C)."""
        if query_grid.shape != key_grid.shape or tuple(query_grid.shape[1:3]) != self.grid:
            raise ValueError(f"cross-attention grids {tuple(query_grid.shape)} and {tuple(key_grid.shape)} must both "
                             f"be (B, T, N, C) with (T, N) = {self.grid}")
        b, t, n, _ = query_grid.shape
        q_tokens, kv_tokens = to_windows(query_grid, self.window), to_windows(key_grid, self.window)
        if self.query_pos is not None:
            q_tokens, kv_tokens = q_tokens + self.query_pos, kv_tokens + self.key_pos
        q = rearrange(self.q(q_tokens), "w l (nh d) -> w nh l d", nh=self.num_heads)
        k, v = rearrange(self.kv(kv_tokens), "w l (two nh d) -> two w nh l d", two=2, nh=self.num_heads)
        if self.fused_attn:
            out = sdpa(q, k, v, dropout_p=self.attn_drop.p if self.training else 0.0)
        else:
            attn = self.attn_drop(((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1))
            out = attn @ v
        out = self.proj(rearrange(out, "w nh l d -> w l (nh d)"))
        return from_windows(out, self.window, b, t, n)


def sinusoid_table(num_positions: int, dim: int, device: torch.device | str | None = None) -> Tensor:
    """VideoMAE's fixed table (1, P, D): angle(p, j) = p / 10000^(2 floor(j/2) / D); sin on even j, cos on odd j.

    Computed on the fly (float64) rather than stored, so a model built on ``meta`` and materialised later, and
    checkpoints without the table (VideoMAE's), both get the exact values."""
    position = torch.arange(num_positions, dtype=torch.float64, device=device)[:, None]
    exponent = 2 * torch.div(torch.arange(dim, device=device), 2, rounding_mode="floor").to(torch.float64) / dim
    angle = position / torch.pow(torch.tensor(10000.0, dtype=torch.float64, device=device), exponent)
    table = torch.where(torch.arange(dim, device=device) % 2 == 0, torch.sin(angle), torch.cos(angle))
    return table.unsqueeze(0)
