"""X-ViT's model beyond its attention (the space-time mixing attention, ``xvit``, is ``models/attention/frame.py``'s):
its temporal-attention head, registered as the frame-wise models' ``temporal_aggregation="attention"``. X-ViT's tables
and what each row builds: experiments/xvit/."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from .attention import JointSpaceTimeAttention
from .video_vit import Block, register_temporal_aggregation


@register_temporal_aggregation("attention")
class TemporalAttentionPool(nn.Module):
    """X-ViT's "temporal attention" aggregation, the official ``VitHead`` up to its classifier: a learnable class
    token prepended to the T per-frame class tokens, one transformer block over them, then LayerNorm, Linear(D, D) and
    GELU (docs/xvit_paper_scale.md#readings-where-the-text-leaves-room). PyTorch's default initialisation, as the
    official model leaves its head (``keeps_default_init``: ``VideoViT._init_weights`` passes over it)."""

    keeps_default_init = True

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, attn_kwargs: dict[str, Any]) -> None:
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        # the official head's Block and mlp_head take torch's default LayerNorm epsilon (1e-5), not the backbone's
        self.block = Block(dim, num_heads, mlp_ratio, qkv_bias=False, attn_layer=JointSpaceTimeAttention,
                           attn_kwargs=attn_kwargs, norm_eps=1e-5)
        self.norm = nn.LayerNorm(dim)
        self.fc = nn.Linear(dim, dim)  # TEMPORAL_HEAD.MLP_DIM = HIDDEN_DIM
        self.act = nn.GELU()

    def no_weight_decay(self) -> set[str]:
        return {"cls_token"}

    def head_bias_names(self) -> set[str]:
        """The biases of its MLP (LayerNorm, Linear): those the official X-ViT optimizer exempts from weight decay
        (every bias of a module whose name holds "head": its ``VitHead.mlp_head``; its temporal block and class
        token decay)."""
        return {"norm.bias", "fc.bias"}

    def forward(self, frames: Tensor) -> Tensor:
        """(B, T, D) per-frame class tokens -> (B, D)."""
        x = torch.cat([self.cls_token.expand(frames.shape[0], -1, -1), frames], dim=1)
        x = self.block(x, (x.shape[1], 1, 1))  # joint attention ignores the grid
        return self.act(self.fc(self.norm(x[:, 0])))
