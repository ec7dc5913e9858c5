"""Video ViT: tubelet tokens, a CLS token, and a stack of one ``Block`` whose attention is pluggable.

The variants of the Motionformer ablations differ only in the attention class handed to ``Block`` (joint,
divided, trajectory), the tubelet depth (1: per-frame "square" patches, 2: "cubic" 2x16x16 tubelets) and the
positional encoding ("separate" spatial + temporal tables, or one "joint" table). Parameter names follow timm's
``VisionTransformer`` so image checkpoints load through ``models.pretrained.checkpoint_filter_fn``.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Literal

import torch
from einops import rearrange
from timm.layers import DropPath, Mlp, trunc_normal_
from torch import Tensor, nn

from .attention import JointSpaceTimeAttention, get_attention
from .registry import check_options, register_model

LayerNorm = partial(nn.LayerNorm, eps=1e-6)  # timm ViT's epsilon: needed for image checkpoints to match


class TubeletEmbed(nn.Module):
    """Non-overlapping (tubelet_size x patch_size x patch_size) cubes, linearly projected (a strided Conv3d)."""

    def __init__(self, img_size: int = 224, num_frames: int = 16, patch_size: int = 16, tubelet_size: int = 2,
                 in_chans: int = 3, embed_dim: int = 768) -> None:
        """
        Args:
            img_size: input height and width.
            num_frames: input frames; must be divisible by ``tubelet_size``.
            patch_size: spatial patch side.
            tubelet_size: frames per token (1 = per-frame 2-D patches, 2 = cubic tubelets).
            in_chans: input channels.
            embed_dim: token width.
        """
        super().__init__()
        if num_frames % tubelet_size or img_size % patch_size:
            raise ValueError(f"num_frames {num_frames} / tubelet_size {tubelet_size} and img_size {img_size} / "
                             f"patch_size {patch_size} must divide evenly")
        self.tubelet_size = tubelet_size
        self.patch_size = patch_size
        self.grid_size = (num_frames // tubelet_size, img_size // patch_size, img_size // patch_size)
        self.num_patches = self.grid_size[0] * self.grid_size[1] * self.grid_size[2]
        kernel = (tubelet_size, patch_size, patch_size)
        self.proj = nn.Conv3d(in_chans, embed_dim, kernel_size=kernel, stride=kernel)

    def forward(self, x: Tensor) -> tuple[Tensor, tuple[int, int, int]]:
        """(B, C, T', H', W') video -> (B, T*H*W, D) tokens ordered (t h w), and the grid (T, H, W)."""
        x = self.proj(x)
        thw = tuple(x.shape[2:])
        return rearrange(x, "b d t h w -> b (t h w) d"), thw


class Block(nn.Module):
    """Pre-norm transformer block (Eq. 1); the attention variant is whatever class it is given."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 drop_path: float = 0.0, attn_layer: type[nn.Module] = JointSpaceTimeAttention,
                 attn_kwargs: dict[str, Any] | None = None) -> None:
        """
        Args:
            dim: token width.
            num_heads: attention heads.
            mlp_ratio: MLP hidden width / dim.
            qkv_bias: bias on the attention's q/k/v projection.
            drop_path: stochastic-depth rate of this block.
            attn_layer: attention class with the ``(dim, num_heads, qkv_bias, ...)`` / ``forward(x, thw)`` interface.
            attn_kwargs: further constructor arguments of the attention (dropouts, ``fused_attn``, variant options).
        """
        super().__init__()
        self.norm1 = LayerNorm(dim)
        self.attn = attn_layer(dim, num_heads=num_heads, qkv_bias=qkv_bias, **(attn_kwargs or {}))
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.norm2 = LayerNorm(dim)
        self.mlp = Mlp(in_features=dim, hidden_features=int(dim * mlp_ratio), act_layer=nn.GELU)

    def forward(self, x: Tensor, thw: tuple[int, int, int]) -> Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x), thw))
        x = x + self.drop_path(self.mlp(self.norm2(x)))
        return x


class VideoViT(nn.Module):
    """Vision Transformer over video tubelets with a CLS token and a pluggable space-time attention."""

    def __init__(
        self,
        img_size: int = 224,
        num_frames: int = 16,
        patch_size: int = 16,
        tubelet_size: int = 2,
        in_chans: int = 3,
        num_classes: int = 400,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        attn_layer: str | type[nn.Module] = "trajectory",
        attn_kwargs: dict[str, Any] | None = None,
        pos_embed: Literal["separate", "joint"] = "separate",
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        fused_attn: bool = True,
    ) -> None:
        """
        Args:
            img_size: input height and width.
            num_frames: input frames per clip.
            patch_size: spatial patch side.
            tubelet_size: frames per token; 1 = "square" per-frame patches, 2 = "cubic" tubelets.
            in_chans: input channels.
            num_classes: classifier outputs; 0 replaces the head by an identity.
            embed_dim: token width D.
            depth: number of blocks.
            num_heads: attention heads.
            mlp_ratio: MLP hidden width / D.
            qkv_bias: bias on the q/k/v projections.
            attn_layer: attention registry name ("joint", "divided", "trajectory") or class.
            attn_kwargs: variant options of the attention, e.g. ``{"temporal_pool": "average"}`` for trajectory.
            pos_embed: "separate" = spatial table (1, 1 + H*W, D) with the CLS slot (as in timm) plus a temporal
                table (1, T, D); "joint" = one table (1, 1 + T*H*W, D).
            drop_rate: dropout after the positional encoding, after attention projections and before the head.
            attn_drop_rate: dropout on attention weights.
            drop_path_rate: stochastic depth, increasing linearly to this rate over the blocks.
            fused_attn: attention via SDPA (True) or explicit softmax (False); see ``set_fused_attn``.
        """
        super().__init__()
        if pos_embed not in ("separate", "joint"):
            raise ValueError(f"pos_embed must be 'separate' or 'joint', got {pos_embed!r}")
        self.num_classes = num_classes
        self.num_features = self.embed_dim = embed_dim
        self.num_frames = num_frames
        self.img_size = img_size
        self.pos_embed_type = pos_embed
        attn_cls = get_attention(attn_layer) if isinstance(attn_layer, str) else attn_layer
        check_options(attn_cls, attn_kwargs or {}, f"attn_kwargs of attention {attn_cls.__name__}")

        self.patch_embed = TubeletEmbed(img_size, num_frames, patch_size, tubelet_size, in_chans, embed_dim)
        self.grid_size = self.patch_embed.grid_size  # (T, H, W) of the token grid
        t, h, w = self.grid_size
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        if pos_embed == "separate":
            self.pos_embed = nn.Parameter(torch.zeros(1, 1 + h * w, embed_dim))
            self.time_embed = nn.Parameter(torch.zeros(1, t, embed_dim))
        else:
            self.pos_embed = nn.Parameter(torch.zeros(1, 1 + t * h * w, embed_dim))
        self.pos_drop = nn.Dropout(drop_rate)

        block_attn_kwargs = dict(attn_drop=attn_drop_rate, proj_drop=drop_rate, fused_attn=fused_attn,
                                 **(attn_kwargs or {}))
        dpr = [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]  # linear rule, plain floats
        self.blocks = nn.ModuleList([
            Block(embed_dim, num_heads, mlp_ratio, qkv_bias, dpr[i], attn_cls, block_attn_kwargs)
            for i in range(depth)
        ])
        self.norm = LayerNorm(embed_dim)
        self.head_drop = nn.Dropout(drop_rate)
        self.head = nn.Linear(embed_dim, num_classes) if num_classes > 0 else nn.Identity()
        self._init_weights()

    def _init_weights(self) -> None:
        # timm ViT init; time_embed stays zero so a model loaded from an image checkpoint starts frame-agnostic.
        trunc_normal_(self.pos_embed, std=0.02)
        trunc_normal_(self.cls_token, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def no_weight_decay(self) -> set[str]:
        """Parameter names timm's optimizer factory exempts from weight decay."""
        return {"pos_embed", "cls_token", "time_embed"}

    def set_fused_attn(self, flag: bool) -> None:
        """Switch every attention between SDPA (True) and the explicit softmax path (False)."""
        set_fused_attn(self, flag)

    def _pos_embed(self, x: Tensor, thw: tuple[int, int, int]) -> Tensor:
        """Add positional encodings to (B, T*H*W, D) patch tokens and prepend CLS: (B, 1 + T*H*W, D)."""
        if thw != self.grid_size:
            raise ValueError(f"token grid {thw} differs from the model's {self.grid_size}: build the model with "
                             f"the input's num_frames/img_size (positional tables are not resampled on the fly)")
        cls_pos, patch_pos = self.pos_embed[:, :1], self.pos_embed[:, 1:]
        if self.pos_embed_type == "separate":
            x = rearrange(x, "b (t n) d -> b t n d", t=thw[0])
            x = x + patch_pos.unsqueeze(1) + self.time_embed.unsqueeze(2)  # e^s_s + e^t_t, broadcast
            x = rearrange(x, "b t n d -> b (t n) d")
        else:
            x = x + patch_pos
        cls = (self.cls_token + cls_pos).expand(x.shape[0], -1, -1)
        return self.pos_drop(torch.cat([cls, x], dim=1))

    def forward_features(self, x: Tensor) -> Tensor:
        """(B, C, T', H', W') video -> (B, 1 + T*H*W, D) normalised tokens, CLS first."""
        x, thw = self.patch_embed(x)
        x = self._pos_embed(x, thw)
        for block in self.blocks:
            x = block(x, thw)
        return self.norm(x)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = self.head_drop(x[:, 0])  # CLS token
        return x if pre_logits else self.head(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))


def set_fused_attn(model: nn.Module, flag: bool) -> dict[str, bool]:
    """Set ``fused_attn`` on every attention module of ``model``; returns the previous flags by module name."""
    previous = {}
    for name, module in model.named_modules():
        if hasattr(module, "fused_attn") and isinstance(module.fused_attn, bool):
            previous[name] = module.fused_attn
            module.fused_attn = flag
    return previous


# ---- registered entrypoints -----------------------------------------------------------------------------------


def _create(defaults: dict[str, Any], overrides: dict[str, Any]) -> VideoViT:
    return VideoViT(**{**defaults, **overrides})


@register_model
def vit_tiny_video(**overrides: Any) -> VideoViT:
    """CPU scale: 8x32x32 clips, 2x8x8 tubelets (4x4x4 = 64 patch tokens), 64-d, 4 blocks, 4 heads."""
    return _create(dict(img_size=32, num_frames=8, patch_size=8, tubelet_size=2, embed_dim=64, depth=4,
                        num_heads=4, mlp_ratio=4.0), overrides)


@register_model
def vit_base_patch16_video(**overrides: Any) -> VideoViT:
    """ViT-B/16 on 16x224x224 clips with 2x16x16 tubelets, 400 classes (Motionformer's default scale)."""
    return _create(dict(img_size=224, num_frames=16, patch_size=16, tubelet_size=2, embed_dim=768, depth=12,
                        num_heads=12, num_classes=400), overrides)


@register_model
def vit_large_patch16_video(**overrides: Any) -> VideoViT:
    """ViT-L/16 on 16x224x224 clips with 2x16x16 tubelets, 400 classes."""
    return _create(dict(img_size=224, num_frames=16, patch_size=16, tubelet_size=2, embed_dim=1024, depth=24,
                        num_heads=16, num_classes=400), overrides)


@register_model
def vit_tiny_l_video(**overrides: Any) -> VideoViT:
    """CPU-scale stand-in for ViT-L (Motionformer-H, Table 7): 96-d, 6 blocks, 6 heads (about 3x vit_tiny_video)."""
    return _create(dict(img_size=32, num_frames=8, patch_size=8, tubelet_size=2, embed_dim=96, depth=6,
                        num_heads=6, mlp_ratio=4.0), overrides)
