"""3D deformable attention (supplementary Algorithm A3): queries from the RGB tokens, keys and values from RGB
tokens re-sampled at learned 3-D offsets (the 3D token search, 3DTS), the modal tokens M_RGB and M_CLS appended
to both.

``TokenSearch3D``: an offset network f_off (DAT's, lifted to 3-D: depthwise Conv3d -> LayerNorm -> GELU -> 1x1x1
Conv3d to (x, y, t)) on the block's normalised RGB tokens, offsets tanh x ``offset_range`` token cells, and
trilinear sampling of the tokens by ``F.grid_sample``. ``forward`` returns the updates; the residual and the FFN
are the block's. The choices A3 leaves open:
docs/d3da_readings.md#readings-of-the-supplementary-where-it-leaves-room.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from ..attention.joint import attend


class ChannelLayerNorm3d(nn.Module):
    """LayerNorm over the channel axis of (B, C, T, H, W) maps (DAT's ``LayerNormProxy`` in 3-D)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(x.movedim(1, -1)).movedim(-1, 1)


class TokenSearch3D(nn.Module):
    """3DTS of Algorithm A3: offsets from a small 3-D conv net, tanh, trilinear sampling at p + Delta p."""

    def __init__(self, dim: int, offset_kernel: int = 3, offset_range: float | None = 2.0,
                 offset_stride: int = 1) -> None:
        """
        Args:
            dim: token width C.
            offset_kernel: kernel size k of the depthwise 3-D convolution of f_off (odd).
            offset_range: largest offset in token cells (tanh scaled by it); None = tanh in normalised units.
            offset_stride: stride of f_off's convolution: one sampled token per stride^3 cell (1 = A3's Z~ size).
        """
        super().__init__()
        if not isinstance(offset_kernel, int) or offset_kernel < 1 or offset_kernel % 2 == 0:
            raise ValueError(f"offset_kernel must be an odd int >= 1, got {offset_kernel!r}")
        if offset_range is not None and not offset_range > 0:
            raise ValueError(f"offset_range must be > 0 or None, got {offset_range!r}")
        if not isinstance(offset_stride, int) or offset_stride < 1:
            raise ValueError(f"offset_stride must be an int >= 1, got {offset_stride!r}")
        self.offset_range = offset_range
        self.offset_stride = offset_stride
        self.offset_net = nn.Sequential(
            nn.Conv3d(dim, dim, offset_kernel, stride=offset_stride, padding=offset_kernel // 2, groups=dim),
            ChannelLayerNorm3d(dim),
            nn.GELU(),
            nn.Conv3d(dim, 3, 1, bias=False),
        )

    def offsets(self, z: Tensor) -> Tensor:
        """Delta p: (B, C, T, H, W) tokens -> (B, T~, H~, W~, 3) offsets (x, y, t) in normalised coordinates."""
        delta = torch.tanh(self.offset_net(z)).movedim(1, -1)  # (B, T~, H~, W~, 3)
        if self.offset_range is None:
            return delta
        t, h, w = z.shape[2:]
        cell = delta.new_tensor([2.0 / w, 2.0 / h, 2.0 / t])  # one token cell in normalised units, (x, y, t)
        return delta * (self.offset_range * cell)

    def reference_points(self, thw: tuple[int, int, int], out_thw: tuple[int, int, int], like: Tensor) -> Tensor:
        """p: (T~, H~, W~, 3) normalised (x, y, t) of the cells the offset convolution is centred on."""
        axes = []
        for size, out in zip(thw, out_thw):
            centre = torch.arange(out, dtype=like.dtype, device=like.device) * self.offset_stride
            axes.append((2 * centre + 1) / size - 1)  # align_corners=False: token i's centre
        grid_t, grid_h, grid_w = torch.meshgrid(*axes, indexing="ij")
        return torch.stack([grid_w, grid_h, grid_t], dim=-1)

    def sample(self, z: Tensor, delta: Tensor) -> Tensor:
        """Z~ at p + Delta p: z (B, C, T, H, W), delta (B, T~, H~, W~, 3) -> (B, C, T~, H~, W~)."""
        ref = self.reference_points(tuple(z.shape[2:]), tuple(delta.shape[1:4]), z)
        return F.grid_sample(z, ref + delta, mode="bilinear", padding_mode="zeros", align_corners=False)

    def forward(self, z: Tensor) -> Tensor:
        """(B, C, T, H, W) tokens -> (B, C, T~, H~, W~) deformed tokens."""
        return self.sample(z, self.offsets(z))


class DeformableAttention3D(nn.Module):
    """Algorithm A3's attention: X + MSA(X W_q, X~ W_k, X~ W_v), X = [Z || modal], X~ = [Z~ || modal].

    ``forward(z, modal)``: z (B, T, H, W, C) normalised RGB tokens, modal (B, T, m, C) (M_RGB, M_CLS per frame)
    -> updates of both, same shapes.
    """

    def __init__(self, dim: int, num_heads: int = 8, qkv_bias: bool = True, attn_drop: float = 0.0,
                 proj_drop: float = 0.0, fused_attn: bool = True, offset_kernel: int = 3,
                 offset_range: float | None = 2.0, offset_stride: int = 1) -> None:
        """
        Args:
            dim: token width C; divisible by ``num_heads``.
            num_heads: attention heads.
            qkv_bias: bias on the q/k/v projections.
            attn_drop: dropout on attention weights.
            proj_drop: dropout after the output projection.
            fused_attn: SDPA (True) or the explicit softmax path (False).
            offset_kernel, offset_range, offset_stride: of ``TokenSearch3D``.
        """
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} must be divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.fused_attn = fused_attn
        self.search = TokenSearch3D(dim, offset_kernel, offset_range, offset_stride)
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.kv = nn.Linear(dim, dim * 2, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, z: Tensor, modal: Tensor) -> tuple[Tensor, Tensor]:
        b, t, h, w, c = z.shape
        m = modal.shape[2]
        deformed = self.search(rearrange(z, "b t h w c -> b c t h w"))  # (B, C, T~, H~, W~)
        x = torch.cat([rearrange(z, "b t h w c -> b (t h w) c"), rearrange(modal, "b t m c -> b (t m) c")], 1)
        x_def = torch.cat([rearrange(deformed, "b c t h w -> b (t h w) c"),
                           rearrange(modal, "b t m c -> b (t m) c")], 1)
        q = rearrange(self.q(x), "b n (nh d) -> b nh n d", nh=self.num_heads)
        k, v = rearrange(self.kv(x_def), "b n (two nh d) -> two b nh n d", two=2, nh=self.num_heads)
        dropout_p = self.attn_drop.p if self.training else 0.0
        out = rearrange(attend(q, k, v, self.fused_attn, dropout_p), "b nh n d -> b n (nh d)")
        out = self.proj_drop(self.proj(out))
        z_out, m_out = out.split([t * h * w, t * m], dim=1)
        return (rearrange(z_out, "b (t h w) c -> b t h w c", t=t, h=h),
                rearrange(m_out, "b (t m) c -> b t m c", t=t))


__all__ = ["ChannelLayerNorm3d", "DeformableAttention3D", "TokenSearch3D"]
