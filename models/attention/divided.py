"""Divided space-time attention (TimeSformer; Motionformer Eq. 3): time, then space, inside one attention.

A Block hands every attention ``u = LN(x)`` and adds its output, so ``t = temporal(u)`` (patch tokens over the T
tokens at their location), ``s = spatial(u + t)`` (patch tokens over their frame plus CLS), output ``t + s``; the
spatial stage has no second LayerNorm, unlike TimeSformer, so that one ``Block`` serves every variant. The CLS query
attends jointly to all tokens, as in the joint and trajectory variants. The spatial stage's ``qkv``/``proj`` take
an image ViT's weights; ``temporal_qkv``/``temporal_proj`` start fresh. Design: models/README.md.
"""

from __future__ import annotations

import torch
from einops import rearrange, repeat
from torch import Tensor, nn

from .joint import attend, split_cls


class DividedSpaceTimeAttention(nn.Module):
    """Temporal attention over T tokens per location, then spatial attention over each frame's H*W tokens + CLS."""

    def __init__(
        self,
        dim: int,
        num_heads: int = 8,
        qkv_bias: bool = False,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
        fused_attn: bool = True,
    ) -> None:
        """
        Args:
            dim: token width C; must be divisible by ``num_heads``.
            num_heads: attention heads (shared by both stages).
            qkv_bias: bias on both q/k/v projections.
            attn_drop: dropout on attention weights of both stages.
            proj_drop: dropout after each output projection.
            fused_attn: use SDPA (True) or the explicit softmax path (False).
        """
        super().__init__()
        assert dim % num_heads == 0, f"dim {dim} not divisible by num_heads {num_heads}"
        self.num_heads = num_heads
        self.fused_attn = fused_attn
        self.temporal_qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.temporal_proj = nn.Linear(dim, dim)
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: Tensor, thw: tuple[int, int, int]) -> Tensor:
        t = self._temporal(x, thw[0])
        return t + self._spatial(x + t, thw[0])

    def _temporal(self, x: Tensor, num_frames: int) -> Tensor:
        dropout_p = self.attn_drop.p if self.training else 0.0
        patches = x[:, 1:]
        q, k, v = rearrange(self.temporal_qkv(patches), "b (t n) (three nh d) -> three (b n) nh t d",
                            t=num_frames, three=3, nh=self.num_heads)
        out = attend(q, k, v, self.fused_attn, dropout_p)
        out = rearrange(out, "(b n) nh t d -> b (t n) (nh d)", b=x.shape[0])
        out = self.proj_drop(self.temporal_proj(out))
        return torch.cat([torch.zeros_like(x[:, :1]), out], dim=1)  # CLS is left out of the temporal stage

    def _spatial(self, x: Tensor, num_frames: int) -> Tensor:
        dropout_p = self.attn_drop.p if self.training else 0.0
        q, k, v = rearrange(self.qkv(x), "b n (three nh d) -> three b nh n d", three=3, nh=self.num_heads)
        cls_out = attend(q[:, :, :1], k, v, self.fused_attn, dropout_p)  # CLS attends to every token

        def per_frame(z: Tensor) -> Tensor:
            # Each frame is one attention problem: patches of frame t, with CLS prepended as an extra key/value.
            cls, patches = split_cls(z)
            cls = repeat(cls, "b nh one d -> (b t) nh one d", t=num_frames)
            patches = rearrange(patches, "b nh (t n) d -> (b t) nh n d", t=num_frames)
            return torch.cat([cls, patches], dim=2)

        q_frames = rearrange(q[:, :, 1:], "b nh (t n) d -> (b t) nh n d", t=num_frames)
        out = attend(q_frames, per_frame(k), per_frame(v), self.fused_attn, dropout_p)
        out = rearrange(out, "(b t) nh n d -> b nh (t n) d", t=num_frames)
        out = rearrange(torch.cat([cls_out, out], dim=2), "b nh n d -> b n (nh d)")
        return self.proj_drop(self.proj(out))
