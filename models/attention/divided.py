"""Divided space-time attention (TimeSformer; Motionformer Eq. 3): time, then space, inside one attention.

A Block hands every attention ``u = LN(x)`` and adds its output, so ``t = temporal(u)`` (patch tokens over the T
tokens at their location), ``s = spatial(u + t)`` (patch tokens over their frame plus CLS), output ``t + s``; the
spatial stage has no second LayerNorm, unlike TimeSformer, so that one ``Block`` serves every variant. The CLS query
attends jointly to all tokens, as in the joint and trajectory variants. The spatial stage's ``qkv``/``proj`` take
an image ViT's weights; ``temporal_qkv``/``temporal_proj`` start fresh. Design: models/README.md.

``OfficialDividedSpaceTimeAttention`` (registered as "divided_official") is instead the official Motionformer
divided block, which its released divided checkpoints need: the temporal stage is a residual branch of its own with
its own LayerNorm and the CLS token among its keys, before the spatial stage.
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
        return self.proj_drop(self.proj(spatial_stage(self.qkv(x), num_frames, self.num_heads, self.fused_attn,
                                                      dropout_p)))


def spatial_stage(qkv: Tensor, num_frames: int, num_heads: int, fused: bool, dropout_p: float = 0.0) -> Tensor:
    """Divided attention's spatial stage from its (b, n, 3C) projection, before the output projection: each patch
    attends over its frame's patches and CLS, the CLS query over every token; (b, n, C)."""
    q, k, v = rearrange(qkv, "b n (three nh d) -> three b nh n d", three=3, nh=num_heads)
    cls_out = attend(q[:, :, :1], k, v, fused, dropout_p)  # CLS attends to every token

    def per_frame(z: Tensor) -> Tensor:
        # Each frame is one attention problem: patches of frame t, with CLS prepended as an extra key/value.
        cls, patches = split_cls(z)
        cls = repeat(cls, "b nh one d -> (b t) nh one d", t=num_frames)
        patches = rearrange(patches, "b nh (t n) d -> (b t) nh n d", t=num_frames)
        return torch.cat([cls, patches], dim=2)

    q_frames = rearrange(q[:, :, 1:], "b nh (t n) d -> (b t) nh n d", t=num_frames)
    out = attend(q_frames, per_frame(k), per_frame(v), fused, dropout_p)
    out = rearrange(out, "(b t) nh n d -> b nh (t n) d", t=num_frames)
    return rearrange(torch.cat([cls_out, out], dim=2), "b nh n d -> b n (nh d)")

class OfficialDividedTemporalStage(nn.Module):
    """The first half of the official Motionformer divided block (``vit_helper.DividedSpaceTimeBlock``), a residual
    branch of its own: ``x + temporal(LN(x))`` with its own LayerNorm (the official ``norm3``) and no stochastic
    depth. Each patch query attends over the CLS token and the T tokens at its location; the CLS query attends over
    every token. Parameters: ``norm`` (``norm3``), ``qkv`` and ``proj`` (``timeattn.qkv``, ``timeattn.proj``).
    A ``Block`` runs it on the residual stream before its attention, ``OfficialDividedSpaceTimeAttention``."""

    def __init__(self, dim: int, num_heads: int = 8, qkv_bias: bool = False, proj_drop: float = 0.0,
                 fused_attn: bool = True, norm_eps: float = 1e-6) -> None:
        super().__init__()
        assert dim % num_heads == 0, f"dim {dim} not divisible by num_heads {num_heads}"
        self.num_heads = num_heads
        self.fused_attn = fused_attn
        self.norm = nn.LayerNorm(dim, eps=norm_eps)
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: Tensor, thw: tuple[int, int, int]) -> Tensor:
        num_frames = thw[0]
        q, k, v = rearrange(self.qkv(self.norm(x)), "b n (three nh d) -> three b nh n d", three=3,
                            nh=self.num_heads)
        cls_out = attend(q[:, :, :1], k, v, self.fused_attn)  # CLS attends to every token

        def per_location(z: Tensor) -> Tensor:
            # Each spatial location is one attention problem: its T tokens, with CLS prepended as a key/value.
            cls, patches = split_cls(z)
            num_locations = patches.shape[2] // num_frames
            cls = repeat(cls, "b nh one d -> (b n) nh one d", n=num_locations)
            return torch.cat([cls, rearrange(patches, "b nh (t n) d -> (b n) nh t d", t=num_frames)], dim=2)

        q_locations = rearrange(q[:, :, 1:], "b nh (t n) d -> (b n) nh t d", t=num_frames)
        out = attend(q_locations, per_location(k), per_location(v), self.fused_attn)
        out = rearrange(out, "(b n) nh t d -> b nh (t n) d", b=x.shape[0])
        out = rearrange(torch.cat([cls_out, out], dim=2), "b nh n d -> b n (nh d)")
        return x + self.proj_drop(self.proj(out))


class OfficialDividedSpaceTimeAttention(nn.Module):
    """The official Motionformer divided space-time block's spatial stage, which its released divided checkpoints
    need: ``Block`` runs the block's temporal stage (``residual_stage``, ``OfficialDividedTemporalStage``) on the
    residual stream first, then this attention on the LayerNorm of the result (the official ``norm1``), so a block
    computes ``x1 = x + temporal(norm3(x)); x2 = x1 + spatial(norm1(x1)); x2 + mlp(norm2(x2))``, as
    ``DividedSpaceTimeBlock.forward``. The spatial stage is ``DividedSpaceTimeAttention``'s (patches over their
    frame plus CLS; the CLS query over every token). The official ``DividedAttention`` builds attention dropout but
    never applies it; so ``attn_drop`` must be 0."""

    residual_stage = OfficialDividedTemporalStage

    def __init__(self, dim: int, num_heads: int = 8, qkv_bias: bool = False, attn_drop: float = 0.0,
                 proj_drop: float = 0.0, fused_attn: bool = True) -> None:
        super().__init__()
        assert dim % num_heads == 0, f"dim {dim} not divisible by num_heads {num_heads}"
        if attn_drop:
            raise ValueError(f"attn_drop={attn_drop}: the official divided attention applies no attention dropout")
        self.num_heads = num_heads
        self.fused_attn = fused_attn
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: Tensor, thw: tuple[int, int, int]) -> Tensor:
        return self.proj_drop(self.proj(spatial_stage(self.qkv(x), thw[0], self.num_heads, self.fused_attn)))
