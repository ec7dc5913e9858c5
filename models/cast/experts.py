"""CAST's two experts: ViTs whose blocks are split around the point where B-CAST enters (Eq. 3-5).

- ``FrameExpert``: an image ViT (CLIP ViT-B/16, or timm's ImageNet-21K ViT-B/16) on every second frame of the clip
  (frames 1, 3, 5, ... as the official ``x[:, :, 1::2]``), one class token per frame; tokens (B*T, 1 + N, D).
  CLIP has a LayerNorm before the first block (``ln_pre``), QuickGELU and no bias on the patch projection.
- ``TubeletExpert``: VideoMAE's ViT-B over 2 x p x p tubelets with joint space-time attention and the fixed
  sinusoidal position table; tokens (B, T*N, D), no class token. VideoMAE's separate q/v biases are stored as timm's
  one qkv bias with a zero key bias, which changes nothing (a key bias adds the same logit to every key of a query).

Both run ``ExpertBlock``s built from timm's ``Attention`` and ``Mlp`` under timm's parameter names, so a timm image
ViT's state dict fits a ``FrameExpert`` key for key. With N patches per frame and F input frames, both experts
work on T = F / 2 time steps: the frame expert sees T frames, the tubelet expert T tubelet slices, and their patch
grids (B, T, N, D) line up token for token, which is what the cross-attention windows index.

Pooling (the features the heads read): a frame expert averages its per-frame class tokens and applies its last
LayerNorm (CLIP's ``ln_post``; the official ``clip_ln_post(cls.mean(1))``), a tubelet expert averages all tokens and
applies ``fc_norm`` (VideoMAE's mean pooling). An expert keeps its own pooling in either role (Table 1h).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

import torch
from einops import rearrange
from timm.layers import DropPath, Mlp, QuickGELU
from timm.models.vision_transformer import Attention
from torch import Tensor, nn

from ..weight_init import trunc_normal_
from .checkpoints import load_expert
from .layers import Adapter, sinusoid_table

FRAME_OFFSET, FRAME_STRIDE = 1, 2  # the frame expert sees frames 1, 3, 5, ... (official ``x[:, :, 1::2]``)
TUBELET = 2  # frames per temporal-expert token


@dataclass(frozen=True)
class ExpertArch:
    """The structure of a ViT-B-like expert (everything its checkpoint layout fixes)."""

    layout: Literal["frame", "tubelet"]  # per-frame image ViT with class tokens, or space-time tubelet ViT
    source: str  # checkpoint layout it loads: "clip" (OpenAI), "vit" (timm), "videomae" (official VideoMAE)
    norm_pre: bool  # LayerNorm after the embeddings (CLIP's ln_pre)
    act: Literal["gelu", "quick_gelu"]
    norm_eps: float
    patch_bias: bool


EXPERT_ARCHS: dict[str, ExpertArch] = {
    "clip": ExpertArch("frame", "clip", norm_pre=True, act="quick_gelu", norm_eps=1e-5, patch_bias=False),
    "vit_in21k": ExpertArch("frame", "vit", norm_pre=False, act="gelu", norm_eps=1e-6, patch_bias=True),
    "videomae": ExpertArch("tubelet", "videomae", norm_pre=False, act="gelu", norm_eps=1e-6, patch_bias=True),
    # MVD (Table 7) distils into VideoMAE's ViT-B: same structure and checkpoint layout.
    "mvd": ExpertArch("tubelet", "videomae", norm_pre=False, act="gelu", norm_eps=1e-6, patch_bias=True),
}
# Experts of the paper whose structure is not a plain ViT-B; a table row naming one cannot be built here.
UNBUILDABLE_EXPERTS = {
    "eva": "EVA's ViT-B (EVA-02 / EVA-CLIP B/16) uses rotary position embeddings and SwiGLU MLPs, not a plain ViT-B",
}


def expert_arch(name: str) -> ExpertArch:
    if name in UNBUILDABLE_EXPERTS:
        raise ValueError(f"expert {name!r} cannot be built: {UNBUILDABLE_EXPERTS[name]}")
    if name not in EXPERT_ARCHS:
        raise ValueError(f"unknown expert {name!r}; known: {sorted(EXPERT_ARCHS)}")
    return EXPERT_ARCHS[name]


class ExpertBlock(nn.Module):
    """A pre-LN ViT block split at B-CAST: ``attend`` is Eq. 3, ``feed_forward`` Eq. 5.

    attend:        Y = X + MHSA(LN1(X)) + ADAP(MHSA(LN1(X)))
    feed_forward:  X' = B + FFN(LN2(B)) + s * ADAP(LN2(B))     (s = ``mlp_adapter_scale``)

    The official code scales the FFN adapter by s = 0.5 (AIM's setting; Eq. 5 prints no factor). With
    ``time_adapter`` (AIM's temporal adaptation, the official independent CLIP expert), ``attend`` first runs the
    same frozen MHSA along time at every token position, through its own adapter: X += ADAP_T(MHSA(LN1(X^T))).
    Without adapters the block is the plain pretrained block.

    Stochastic depth (``drop_path``) where the official code puts it (``bidir_modeling_crossattn.py``,
    ``clip_modelling_finetune.py``): on the FFN adapter and AIM's time adapter, not on the MHSA adapter,
    Y = X + MHSA(LN1(X)) + ADAP(MHSA(LN1(X))), X' = B + FFN(LN2(B)) + DP(s * ADAP(LN2(B))); and, with
    ``drop_main`` (a fully fine-tuned VideoMAE expert, as VideoMAE's fine-tuning code), on the MHSA and FFN
    branches: Y = X + DP(MHSA(LN1(X))), X' = B + DP(FFN(LN2(B))). A frozen expert's main branches are never
    dropped, nor a fully fine-tuned CLIP's (the official CLIP fine-tuning block has none).
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, act: str = "gelu", norm_eps: float = 1e-6,
                 adapter_ratio: float | None = 0.25, mlp_adapter_scale: float = 0.5, time_adapter: bool = False,
                 drop_path: float = 0.0, fused_attn: bool = True, drop_main: bool = False) -> None:
        super().__init__()
        norm = partial(nn.LayerNorm, eps=norm_eps)
        self.norm1 = norm(dim)
        self.attn = Attention(dim, num_heads=num_heads, qkv_bias=True)
        self.attn.fused_attn = fused_attn
        self.norm2 = norm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=QuickGELU if act == "quick_gelu" else nn.GELU)
        self.attn_adapter = Adapter(dim, adapter_ratio) if adapter_ratio else None
        self.mlp_adapter = Adapter(dim, adapter_ratio) if adapter_ratio else None
        self.time_adapter = Adapter(dim, adapter_ratio) if time_adapter and adapter_ratio else None
        self.mlp_adapter_scale = mlp_adapter_scale
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.drop_main = drop_main  # stochastic depth on the MHSA and FFN branches too (the expert trains)

    def attend(self, x: Tensor, num_steps: int) -> Tensor:
        """Eq. 3 on (B*T, n, D) frame tokens or (B, T*N, D) tubelet tokens; ``num_steps`` = T (time adapter)."""
        if self.time_adapter is not None:
            n = x.shape[1]
            along_time = rearrange(x, "(b t) n d -> (b n) t d", t=num_steps)
            delta = self.time_adapter(self.attn(self.norm1(along_time)))
            x = x + self.drop_path(rearrange(delta, "(b n) t d -> (b t) n d", n=n))
        attended = self.attn(self.norm1(x))
        x = x + (self.drop_path(attended) if self.drop_main else attended)
        if self.attn_adapter is not None:
            x = x + self.attn_adapter(attended)
        return x

    def feed_forward(self, x: Tensor) -> Tensor:
        """Eq. 5."""
        h = self.norm2(x)
        mlp = self.mlp(h)
        out = x + (self.drop_path(mlp) if self.drop_main else mlp)
        if self.mlp_adapter is not None:
            out = out + self.drop_path(self.mlp_adapter_scale * self.mlp_adapter(h))
        return out

    def forward(self, x: Tensor, num_steps: int) -> Tensor:
        return self.feed_forward(self.attend(x, num_steps))


class _Expert(nn.Module):
    """Common part: the blocks, the last LayerNorm ``norm``, and the split/merge between the expert's own token
    layout and the (B, T, N, D) patch grid that B-CAST works on."""

    layout: str
    layout_name: str  # for the error when an arch of the other layout is asked for

    def __init__(self, arch: str, img_size: int = 224, num_frames: int = 16, patch_size: int = 16,
                 embed_dim: int = 768, depth: int = 12, num_heads: int = 12, mlp_ratio: float = 4.0,
                 adapter_ratio: float | None = 0.25, mlp_adapter_scale: float = 0.5, time_adapter: bool = False,
                 drop_path_rate: float = 0.0, fused_attn: bool = True, drop_main: bool = False) -> None:
        """``drop_main``: stochastic depth on the blocks' MHSA and FFN branches too (``ExpertBlock``); for a
        tubelet expert whose weights train (``CAST(train_experts=True)``)."""
        super().__init__()
        self.arch_name, self.arch = arch, expert_arch(arch)
        if self.arch.layout != self.layout:
            raise ValueError(f"expert {arch!r} is a {self.arch.layout} expert, not a {self.layout_name}")
        if img_size % patch_size or num_frames % FRAME_STRIDE:
            raise ValueError(f"img_size {img_size} must divide by patch_size {patch_size} and num_frames "
                             f"{num_frames} by {FRAME_STRIDE} (both experts see num_frames / 2 time steps)")
        self.img_size, self.num_frames, self.patch_size, self.embed_dim = img_size, num_frames, patch_size, embed_dim
        self.num_steps, self.num_patches = num_frames // FRAME_STRIDE, (img_size // patch_size) ** 2
        dpr = [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]
        self.blocks = nn.ModuleList([
            ExpertBlock(embed_dim, num_heads, mlp_ratio, self.arch.act, self.arch.norm_eps, adapter_ratio,
                        mlp_adapter_scale, time_adapter and self.layout == "frame", dpr[i], fused_attn, drop_main)
            for i in range(depth)])
        self.norm = nn.LayerNorm(embed_dim, eps=self.arch.norm_eps)

    def _check_video(self, video: Tensor) -> None:
        if video.ndim != 5 or tuple(video.shape[2:]) != (self.num_frames, self.img_size, self.img_size):
            raise ValueError(f"{self.arch_name} expert expects video (B, C, {self.num_frames}, {self.img_size}, "
                             f"{self.img_size}), got {tuple(video.shape)}")

    def forward_features(self, video: Tensor) -> Tensor:
        """The expert alone (no exchange): its blocks on the embedded clip; tokens in the expert's layout."""
        x = self.embed(video)
        for block in self.blocks:
            x = block(x, self.num_steps)
        return x

    def forward(self, video: Tensor) -> Tensor:
        """(B, C, F, H, W) -> pooled feature (B, D)."""
        return self.pool(self.forward_features(video), video.shape[0])

    def load_checkpoint_source(self, source: str) -> dict[str, list[str]]:
        """Called by ``models.load_pretrained``: ``clip:FILE``, ``videomae:FILE``, ``vit:FILE`` / ``vit:timm:NAME``,
        or a plain file in this module's own layout (see ``models.cast.checkpoints``)."""
        return load_expert(self, source)


class FrameExpert(_Expert):
    """Image ViT applied per frame on every second frame, class token per frame (module doc)."""

    layout, layout_name = "frame", "per-frame image ViT"

    def __init__(self, arch: str = "clip", **options: Any) -> None:
        """``options``: those of ``_Expert``."""
        super().__init__(arch, **options)
        embed_dim, patch_size = self.embed_dim, self.patch_size
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(3, embed_dim, patch_size, patch_size, bias=self.arch.patch_bias)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + self.num_patches, embed_dim))
        # AIM's temporal embedding, added per frame with the temporal adapter (official independent CLIP expert).
        self.time_embed = (nn.Parameter(torch.zeros(1, self.num_steps, 1, embed_dim))
                           if options.get("time_adapter") else None)
        self.norm_pre = nn.LayerNorm(embed_dim, eps=self.arch.norm_eps) if self.arch.norm_pre else nn.Identity()
        trunc_normal_(self.pos_embed, std=0.02)
        trunc_normal_(self.cls_token, std=0.02)

    def embed(self, video: Tensor) -> Tensor:
        """(B, C, F, H, W) -> (B*T, 1 + N, D), T = F / 2 frames (1, 3, 5, ...)."""
        self._check_video(video)
        frames = rearrange(video[:, :, FRAME_OFFSET::FRAME_STRIDE], "b c t h w -> (b t) c h w")
        x = rearrange(self.patch_embed.proj(frames), "bt d h w -> bt (h w) d")
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        if self.time_embed is not None:
            x = rearrange(rearrange(x, "(b t) n d -> b t n d", t=self.num_steps) + self.time_embed,
                          "b t n d -> (b t) n d")
        return self.norm_pre(x)

    def split(self, x: Tensor, batch: int) -> tuple[Tensor, Tensor]:
        """(B*T, 1 + N, D) -> class tokens (B, T, D), patch grid (B, T, N, D)."""
        x = rearrange(x, "(b t) n d -> b t n d", b=batch)
        return x[:, :, 0], x[:, :, 1:]

    def merge(self, cls: Tensor, grid: Tensor) -> Tensor:
        """Inverse of ``split``."""
        return rearrange(torch.cat([cls.unsqueeze(2), grid], dim=2), "b t n d -> (b t) n d")

    def pool(self, x: Tensor, batch: int) -> Tensor:
        """Mean of the per-frame class tokens, then the last LayerNorm: (B, D)."""
        return self.norm(rearrange(x[:, 0], "(b t) d -> b t d", b=batch).mean(dim=1))


class TubeletExpert(_Expert):
    """VideoMAE ViT over 2 x p x p tubelets with joint space-time attention (module doc)."""

    layout, layout_name = "tubelet", "tubelet ViT"

    def __init__(self, arch: str = "videomae", float32_pos_table: bool = False, **options: Any) -> None:
        """``float32_pos_table``: add the fixed table rounded to float32, as the official CAST and VideoMAE code
        store it (``get_sinusoid_encoding_table`` returns a ``torch.FloatTensor``); it changes nothing in float32
        or lower precision, and in float64 gives the official function exactly (the authors' checkpoints,
        ``models.released.cast``). ``options``: those of ``_Expert``."""
        super().__init__(arch, **options)
        self.float32_pos_table = float32_pos_table
        embed_dim, patch_size = self.embed_dim, self.patch_size
        kernel = (TUBELET, patch_size, patch_size)
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv3d(3, embed_dim, kernel, kernel, bias=self.arch.patch_bias)

    def embed(self, video: Tensor) -> Tensor:
        """(B, C, F, H, W) -> (B, T*N, D) in (t h w) order, plus the fixed sinusoidal table."""
        self._check_video(video)
        x = rearrange(self.patch_embed.proj(video), "b d t h w -> b (t h w) d")
        table = sinusoid_table(x.shape[1], x.shape[2], x.device)
        return x + (table.float() if self.float32_pos_table else table).to(x.dtype)

    def split(self, x: Tensor, batch: int) -> tuple[None, Tensor]:
        """(B, T*N, D) -> no class token, patch grid (B, T, N, D)."""
        return None, rearrange(x, "b (t n) d -> b t n d", t=self.num_steps)

    def merge(self, cls: None, grid: Tensor) -> Tensor:
        return rearrange(grid, "b t n d -> b (t n) d")

    def pool(self, x: Tensor, batch: int) -> Tensor:
        """Mean of all tokens, then ``fc_norm``: (B, D)."""
        return self.norm(x.mean(dim=1))


def create_expert(arch: str, **kwargs) -> FrameExpert | TubeletExpert:
    """A frame or tubelet expert of structure ``arch`` (a key of ``EXPERT_ARCHS``); ``kwargs`` as the classes."""
    cls = FrameExpert if expert_arch(arch).layout == "frame" else TubeletExpert
    return cls(arch, **kwargs)


__all__ = ["EXPERT_ARCHS", "ExpertArch", "ExpertBlock", "FrameExpert", "TubeletExpert", "UNBUILDABLE_EXPERTS",
           "create_expert", "expert_arch", "sinusoid_table"]
