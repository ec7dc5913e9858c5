"""Video ViT: tubelet tokens, a CLS token, and a stack of one ``Block`` whose attention is pluggable.

The Motionformer ablations differ only in the attention class, the tubelet depth and the positional encoding; the
shift family (frame-wise ViT, TokenShift, MSCA, X-ViT, TSM-ViT) is the same network with one class token per frame.
Parameter names follow timm's ``VisionTransformer`` so image checkpoints load (``models.pretrained``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, Literal

import torch
from einops import rearrange
from timm.layers import DropPath, Mlp
from timm.models.vision_transformer import init_weights_vit_timm
from torch import Tensor, nn

from .attention import FrameAttention, JointSpaceTimeAttention, TemporalShift, get_attention
from .registry import check_options, register_model
from .weight_init import trunc_normal_

LAYER_NORM_EPS = 1e-6  # timm ViT's epsilon: needed for image checkpoints to match
LayerNorm = partial(nn.LayerNorm, eps=LAYER_NORM_EPS)


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
    """Pre-norm transformer block (Eq. 1); the attention variant is whatever class it is given.

    Optional hooks rewrite the residual stream before the attention and before the MLP (TokenShift, TSM-ViT):
    ``x = pre_attn(x); x = x + attn(LN(x)); x = pre_mlp(x); x = x + mlp(LN(x))``. An attention class with a
    ``residual_stage`` (the official Motionformer divided block's temporal stage) brings its own ``pre_attn``.
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 drop_path: float = 0.0, attn_layer: type[nn.Module] = JointSpaceTimeAttention,
                 attn_kwargs: dict[str, Any] | None = None, pre_attn: nn.Module | None = None,
                 pre_mlp: nn.Module | None = None, norm_eps: float = LAYER_NORM_EPS) -> None:
        """
        Args:
            dim: token width.
            num_heads: attention heads.
            mlp_ratio: MLP hidden width / dim.
            qkv_bias: bias on the attention's q/k/v projection.
            drop_path: stochastic-depth rate of this block.
            attn_layer: attention class with the ``(dim, num_heads, qkv_bias, ...)`` / ``forward(x, thw)`` interface.
            attn_kwargs: further constructor arguments of the attention (dropouts, ``fused_attn``, variant options).
            pre_attn: module ``(x, thw) -> x`` applied to the residual stream before the attention, or None.
            pre_mlp: the same before the MLP.
            norm_eps: the LayerNorms' epsilon (timm ViT's by default).
        """
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = attn_layer(dim, num_heads=num_heads, qkv_bias=qkv_bias, **(attn_kwargs or {}))
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(in_features=dim, hidden_features=int(dim * mlp_ratio), act_layer=nn.GELU)
        stage = getattr(attn_layer, "residual_stage", None)
        if stage is not None:
            if pre_attn is not None:
                raise ValueError(f"{attn_layer.__name__} brings its own stage before the attention; pre_attn must "
                                 f"be None")
            options = attn_kwargs or {}
            pre_attn = stage(dim, num_heads, qkv_bias, options.get("proj_drop", 0.0), options.get("fused_attn", True),
                             norm_eps)
        self.pre_attn = pre_attn
        self.pre_mlp = pre_mlp

    def forward(self, x: Tensor, thw: tuple[int, int, int]) -> Tensor:
        if self.pre_attn is not None:
            x = self.pre_attn(x, thw)
        x = x + self.drop_path(self.attn(self.norm1(x), thw))
        if self.pre_mlp is not None:
            x = self.pre_mlp(x, thw)
        x = x + self.drop_path(self.mlp(self.norm2(x)))
        return x


class TemporalAverage(nn.Module):
    """Average of the per-frame class tokens: with the linear head, the average of the per-frame logits."""

    def forward(self, frames: Tensor) -> Tensor:
        """(B, T, D) -> (B, D)."""
        return frames.mean(dim=1)


# How a frame-wise model's per-frame class tokens become one feature, by the ``temporal_aggregation`` option: a
# factory of (dim, num_heads, mlp_ratio, attention options) -> module. A paper's own head registers itself beside its
# paper's code (X-ViT's temporal attention: ``models.xvit``) and says there what the backbone must know of it: a
# ``keeps_default_init`` head is left at torch's initialisation, and its ``no_weight_decay()`` and
# ``head_bias_names()`` (names inside it) join the model's.
TemporalAggregation = Callable[[int, int, float, dict[str, Any]], nn.Module]
TEMPORAL_AGGREGATIONS: dict[str, TemporalAggregation] = {"average": lambda *block_options: TemporalAverage()}


def register_temporal_aggregation(name: str) -> Callable[[TemporalAggregation], TemporalAggregation]:
    def register(factory: TemporalAggregation) -> TemporalAggregation:
        TEMPORAL_AGGREGATIONS[name] = factory
        return factory
    return register


class VideoViT(nn.Module):
    """Vision Transformer over video tubelets with a CLS token and a pluggable space-time attention.

    Args:
        img_size, num_frames, patch_size, in_chans: frame side, frames per clip, patch side, input channels.
        tubelet_size: frames per token (1 = "square" per-frame patches, 2 = "cubic" tubelets).
        num_classes: classifier outputs; 0 replaces the head by an identity.
        embed_dim, depth, num_heads, mlp_ratio, qkv_bias: as timm's ``VisionTransformer``.
        attn_layer: attention registry name ("joint", "divided", "divided_official", "trajectory"; with per-frame
            class tokens "frame", "msca", "xvit") or class.
        attn_kwargs: variant options of the attention, e.g. ``{"temporal_pool": "average"}`` for trajectory.
        pos_embed: "separate" (spatial + temporal tables), "joint" (one table) or "spatial" (the spatial one alone).
        drop_rate: dropout after the positional encoding, after attention projections and before the head.
        attn_drop_rate, drop_path_rate: dropout on attention weights; stochastic depth, rising linearly to this.
        head_drop_rate: dropout before the classifier alone; None = ``drop_rate``.
        frame_drop_rate: dropout on each frame's class token before the temporal aggregation ("per_frame" only).
        fused_attn: attention via SDPA (True) or explicit softmax (False); see ``set_fused_attn``.
        cls_layout: "single" (one class token) or "per_frame" (one per frame; the frame attentions need it).
        temporal_aggregation: how the per-frame class tokens become one: "average", or a registered head
            (``TEMPORAL_AGGREGATIONS``: "attention", X-ViT's ``models.xvit.TemporalAttentionPool``).
        temporal_shift: shift residual-stream channels in time in every block: "cls" (TokenShift), "all" (TSM-ViT).
        shift_fraction, shift_order, shift_before: channels moved (half from t-1, half from t+1), "paper" or
            "official" order, before "attn" and/or "mlp".
        shift_last_blocks: only the last this many blocks exchange features between frames; None = every block.
        representation_size: width of a pre-logits Linear -> tanh before the classifier; None = none.
    Each option in full: models/README.md#the-video-vits-options.
    """

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
        pos_embed: Literal["separate", "joint", "spatial"] = "separate",
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        head_drop_rate: float | None = None,
        frame_drop_rate: float = 0.0,
        fused_attn: bool = True,
        cls_layout: Literal["single", "per_frame"] = "single",
        temporal_aggregation: str = "average",
        temporal_shift: Literal["cls", "all"] | None = None,
        shift_fraction: float = 0.25,
        shift_order: Literal["paper", "official"] = "paper",
        shift_before: Sequence[Literal["attn", "mlp"]] = ("attn", "mlp"),
        shift_last_blocks: int | None = None,
        representation_size: int | None = None,
    ) -> None:
        super().__init__()
        if pos_embed not in ("separate", "joint", "spatial"):
            raise ValueError(f"pos_embed must be 'separate', 'joint' or 'spatial', got {pos_embed!r}")
        self.num_classes = num_classes
        self.num_features = self.embed_dim = embed_dim
        self.num_frames = num_frames
        self.img_size = img_size
        self.pos_embed_type = pos_embed
        attn_cls = get_attention(attn_layer) if isinstance(attn_layer, str) else attn_layer
        check_options(attn_cls, attn_kwargs or {}, f"attn_kwargs of attention {attn_cls.__name__}")
        _check_frame_options(attn_cls, depth, cls_layout, temporal_aggregation, temporal_shift, shift_before,
                             shift_last_blocks, frame_drop_rate)
        self.cls_layout = cls_layout
        self._add_embeddings(TubeletEmbed(img_size, num_frames, patch_size, tubelet_size, in_chans, embed_dim),
                             drop_rate)

        common_attn_kwargs = dict(attn_drop=attn_drop_rate, proj_drop=drop_rate, fused_attn=fused_attn)
        shift = partial(TemporalShift, embed_dim, shift_fraction, temporal_shift, inplace=True,  # Block replaces x
                        order=shift_order) if temporal_shift is not None else None
        self.blocks = _blocks(embed_dim, depth, num_heads, mlp_ratio, qkv_bias, drop_path_rate, attn_cls,
                              {**common_attn_kwargs, **(attn_kwargs or {})}, common_attn_kwargs, shift, shift_before,
                              shift_last_blocks)
        self.norm = LayerNorm(embed_dim)
        if cls_layout == "per_frame":
            self.temporal_aggregation = TEMPORAL_AGGREGATIONS[temporal_aggregation](
                embed_dim, num_heads, mlp_ratio, common_attn_kwargs)
        self._add_head(num_classes, representation_size, frame_drop_rate,
                       drop_rate if head_drop_rate is None else head_drop_rate)
        self._init_weights()

    def _add_embeddings(self, patch_embed: TubeletEmbed, drop_rate: float) -> None:
        """The tubelet embedding, the class token, the position tables of ``pos_embed`` and their dropout."""
        self.patch_embed = patch_embed
        self.grid_size = patch_embed.grid_size  # (T, H, W) of the token grid
        t, h, w = self.grid_size
        self.cls_token = nn.Parameter(torch.zeros(1, 1, self.embed_dim))
        if self.pos_embed_type == "joint":
            self.pos_embed = nn.Parameter(torch.zeros(1, 1 + t * h * w, self.embed_dim))
        else:
            self.pos_embed = nn.Parameter(torch.zeros(1, 1 + h * w, self.embed_dim))
        if self.pos_embed_type == "separate":
            self.time_embed = nn.Parameter(torch.zeros(1, t, self.embed_dim))
        self.pos_drop = nn.Dropout(drop_rate)

    def _add_head(self, num_classes: int, representation_size: int | None, frame_drop_rate: float,
                  head_drop_rate: float) -> None:
        """Pre-logits, the dropouts before the classifier, and the classifier (see ``__init__``'s Args)."""
        if representation_size:
            self.pre_logits = nn.Sequential(OrderedDict([("fc", nn.Linear(self.embed_dim, representation_size)),
                                                         ("act", nn.Tanh())]))
            self.num_features = representation_size
        else:
            self.pre_logits = nn.Identity()
        # Identity at rate 0: no module that could draw random numbers where no dropout was asked for.
        self.frame_drop = nn.Dropout(frame_drop_rate) if frame_drop_rate else nn.Identity()
        self.head_drop = nn.Dropout(head_drop_rate)
        self.head = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    def _init_weights(self) -> None:
        # time_embed stays zero so that a model loaded from an image checkpoint starts frame-agnostic
        init_vit_weights(self, [self.pos_embed, self.cls_token])

    def no_weight_decay(self) -> set[str]:
        """Parameter names timm's optimizer factory exempts from weight decay: the position tables and class token,
        and those the temporal aggregation names."""
        return {"pos_embed", "cls_token", "time_embed", *self._aggregation_names("no_weight_decay")}

    def head_bias_names(self) -> set[str]:
        """The classification head's biases: the classifier's, and those the temporal aggregation names as its
        head's (X-ViT's, whose official optimizer exempts them from weight decay)."""
        names = {"head.bias"} if isinstance(self.head, nn.Linear) else set()
        return names | self._aggregation_names("head_bias_names")

    def _aggregation_names(self, method: str) -> set[str]:
        """The parameter names the temporal aggregation's ``method`` gives (none without one), as the model's."""
        aggregation = getattr(self, "temporal_aggregation", None)
        if not hasattr(aggregation, method):
            return set()
        return {f"temporal_aggregation.{name}" for name in getattr(aggregation, method)()}

    def set_fused_attn(self, flag: bool) -> None:
        """Switch every attention between SDPA (True) and the explicit softmax path (False)."""
        set_fused_attn(self, flag)

    def _pos_embed(self, x: Tensor, thw: tuple[int, int, int]) -> Tensor:
        """Add positional encodings to (B, T*H*W, D) patch tokens and prepend CLS: (B, 1 + T*H*W, D), or with
        per-frame class tokens (B, T*(1 + H*W), D)."""
        if thw != self.grid_size:
            raise ValueError(f"token grid {thw} differs from the model's {self.grid_size}: build the model with "
                             f"the input's num_frames/img_size (positional tables are not resampled on the fly)")
        cls_pos, patch_pos = self.pos_embed[:, :1], self.pos_embed[:, 1:]
        if self.pos_embed_type == "joint":
            x = x + patch_pos
        else:
            x = rearrange(x, "b (t n) d -> b t n d", t=thw[0])
            x = x + patch_pos.unsqueeze(1)
            if self.pos_embed_type == "separate":
                x = x + self.time_embed.unsqueeze(2)  # e^s_s + e^t_t, broadcast
            x = rearrange(x, "b t n d -> b (t n) d")
        cls = self.cls_token + cls_pos
        if self.cls_layout == "single":
            return self.pos_drop(torch.cat([cls.expand(x.shape[0], -1, -1), x], dim=1))
        x = rearrange(x, "b (t n) d -> b t n d", t=thw[0])
        cls = cls.unsqueeze(1).expand(x.shape[0], thw[0], -1, -1)  # every frame's CLS: (b, t, 1, d)
        if self.pos_embed_type == "separate":
            cls = cls + self.time_embed.unsqueeze(2)
        x = torch.cat([cls, x], dim=2)
        return self.pos_drop(rearrange(x, "b t n d -> b (t n) d"))

    def forward_features(self, x: Tensor) -> Tensor:
        """(B, C, T', H', W') video -> (B, 1 + T*H*W, D) normalised tokens, CLS first; with per-frame class
        tokens (B, T*(1 + H*W), D), each frame's CLS first."""
        x, thw = self.patch_embed(x)
        x = self._pos_embed(x, thw)
        for block in self.blocks:
            x = block(x, thw)
        return self.norm(x)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        if self.cls_layout == "per_frame":
            frames = rearrange(x, "b (t n) d -> b t n d", t=self.grid_size[0])[:, :, 0]  # (B, T, D)
            x = self.temporal_aggregation(self.frame_drop(frames))
        else:
            x = x[:, 0]  # CLS token
        x = self.head_drop(self.pre_logits(x))  # the official order: pre-logits layer, dropout, classifier
        return x if pre_logits else self.head(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))


def init_vit_weights(model: nn.Module, tables: Sequence[nn.Parameter]) -> None:
    """timm ViT's initialisation, which the papers' code keeps: ``tables`` (position tables, tokens) and then every
    Linear weight drawn from trunc_normal(std 0.02), in that order, biases zero (timm's ``init_weights_vit_timm``);
    the norms and convolutions keep torch's initialisation, and so does all of a ``keeps_default_init`` module (a
    head its paper leaves at torch's). A model on the meta device has nothing to draw (``models.weight_init``)."""
    if all(p.is_meta for p in model.parameters()):
        return
    for table in tables:
        trunc_normal_(table, std=0.02)
    kept = {id(sub) for m in model.modules() if getattr(m, "keeps_default_init", False) for sub in m.modules()}
    for m in model.modules():
        if id(m) not in kept:
            init_weights_vit_timm(m, needs_reset=False)


def set_fused_attn(model: nn.Module, flag: bool) -> dict[str, bool]:
    """Set ``fused_attn`` on every attention module of ``model``; returns the previous flags by module name."""
    previous = {}
    for name, module in model.named_modules():
        if hasattr(module, "fused_attn") and isinstance(module.fused_attn, bool):
            previous[name] = module.fused_attn
            module.fused_attn = flag
    return previous


def _blocks(dim: int, depth: int, num_heads: int, mlp_ratio: float, qkv_bias: bool, drop_path_rate: float,
            attn_cls: type[nn.Module], attn_kwargs: dict[str, Any], frame_attn_kwargs: dict[str, Any],
            shift: Callable[[], TemporalShift] | None, shift_before: Sequence[str],
            shift_last_blocks: int | None) -> nn.ModuleList:
    """The transformer blocks: stochastic depth rising linearly to ``drop_path_rate``; the first ``depth -
    shift_last_blocks`` blocks attend within each frame and shift nothing, the others take ``attn_cls`` and a
    temporal ``shift`` before each module named in ``shift_before``."""
    dpr = [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]  # linear rule, plain floats
    first_mixing = depth - (depth if shift_last_blocks is None else shift_last_blocks)

    def shift_at(position: str) -> TemporalShift | None:
        return shift() if shift is not None and position in shift_before else None

    return nn.ModuleList([
        Block(dim, num_heads, mlp_ratio, qkv_bias, dpr[i], attn_cls, attn_kwargs, shift_at("attn"), shift_at("mlp"))
        if i >= first_mixing else
        Block(dim, num_heads, mlp_ratio, qkv_bias, dpr[i], FrameAttention, frame_attn_kwargs)
        for i in range(depth)
    ])


def _check_frame_options(attn_cls: type[nn.Module], depth: int, cls_layout: str, temporal_aggregation: str,
                         temporal_shift: str | None, shift_before: Sequence[str],
                         shift_last_blocks: int | None, frame_drop_rate: float) -> None:
    """Raise ``ValueError`` for options of the per-frame family that do not fit together."""
    if cls_layout not in ("single", "per_frame"):
        raise ValueError(f"cls_layout must be 'single' or 'per_frame', got {cls_layout!r}")
    if temporal_aggregation not in TEMPORAL_AGGREGATIONS:
        raise ValueError(f"temporal_aggregation must be one of {sorted(TEMPORAL_AGGREGATIONS)}, got "
                         f"{temporal_aggregation!r}")
    if temporal_shift not in (None, "cls", "all"):
        raise ValueError(f"temporal_shift must be None, 'cls' or 'all', got {temporal_shift!r}")
    if not set(shift_before) <= {"attn", "mlp"}:
        raise ValueError(f"shift_before may hold 'attn' and 'mlp', got {shift_before!r}")
    if shift_last_blocks is not None and not 0 <= shift_last_blocks <= depth:
        raise ValueError(f"shift_last_blocks must lie in [0, depth={depth}], got {shift_last_blocks}")
    frame_attention = issubclass(attn_cls, FrameAttention)
    if cls_layout == "per_frame" and not frame_attention:
        raise ValueError(f"cls_layout='per_frame' needs a frame attention ('frame', 'msca', 'xvit'); "
                         f"{attn_cls.__name__} attends across frames with one class token")
    if cls_layout == "single":
        if frame_attention:
            raise ValueError(f"{attn_cls.__name__} attends within frames and needs cls_layout='per_frame'")
        per_frame_only = {"temporal_aggregation": temporal_aggregation != "average",
                          "temporal_shift": temporal_shift is not None,
                          "shift_last_blocks": shift_last_blocks is not None}
        if any(per_frame_only.values()):
            raise ValueError(f"{[k for k, v in per_frame_only.items() if v]} need cls_layout='per_frame'")
        if frame_drop_rate:
            raise ValueError(f"frame_drop_rate={frame_drop_rate} drops per-frame class tokens and needs "
                             f"cls_layout='per_frame'")


# ---- registered entrypoints -----------------------------------------------------------------------------------


def _create(defaults: dict[str, Any], overrides: dict[str, Any]) -> VideoViT:
    return VideoViT(**{**defaults, **overrides})


@register_model
def vit_tiny_video(**overrides: Any) -> VideoViT:
    """CPU scale: 8x32x32 clips, 2x8x8 tubelets (4x4x4 = 64 patch tokens), 64-d, 4 blocks, 4 heads."""
    return _create(dict(img_size=32, num_frames=8, patch_size=8, tubelet_size=2, embed_dim=64, depth=4,
                        num_heads=4, mlp_ratio=4.0), overrides)


@register_model
def vit_tiny_frame(**overrides: Any) -> VideoViT:
    """The frame-wise tiny model of the shift family: 8x32x32 clips, 8x8 square patches (8 frames of 4x4 tokens),
    a class token per frame, one spatial position table, frame attention, average; ViT-B's 12 heads (of 8 channels,
    96-d, 4 blocks) so that a whole-head shift moves the share of channels the papers' rows name."""
    return _create(dict(img_size=32, num_frames=8, patch_size=8, tubelet_size=1, embed_dim=96, depth=4,
                        num_heads=12, mlp_ratio=4.0, attn_layer="frame", cls_layout="per_frame",
                        pos_embed="spatial"), overrides)


@register_model
def vit_base_patch16_frame(**overrides: Any) -> VideoViT:
    """Image ViT-B/16 on each of 8 frames of 224x224 (the "ViT" row of the MSCA, TokenShift and X-ViT papers):
    per-frame class tokens, the image position table, frame attention, per-frame outputs averaged; 400 classes.
    TokenShift, MSCA, X-ViT and TSM-ViT are overrides of it."""
    return _create(dict(img_size=224, num_frames=8, patch_size=16, tubelet_size=1, embed_dim=768, depth=12,
                        num_heads=12, num_classes=400, attn_layer="frame", cls_layout="per_frame",
                        pos_embed="spatial"), overrides)


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
