"""CAST (Lee, Lee, Choi, NeurIPS 2023): two frozen experts exchanging information through B-CAST, and the Table 1
baselines as options of the same class. Entrypoints: ``cast_base`` (paper scale) and ``cast_tiny`` (CPU scale)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import torch
from timm.layers import DropPath
from torch import Tensor, nn

from ..registry import register_model
from .exchange import DIRECTIONS, EXCHANGES, BlockExchange, Exchange
from .experts import FrameExpert, TubeletExpert, create_expert, expert_arch
from .layers import WINDOWS, Adapter, Window, cast_linear

FUSIONS: tuple[str, ...] = ("split", "add", "concat", "ensemble", "single")
EXPERT_SETS: tuple[str, ...] = ("both", "spatial", "temporal")
# Parameters of a frozen expert that still train (besides adapters): the last LayerNorm and AIM's time embedding.
_TRAINABLE_EXPERT_PARTS = ("adapter", "time_embed")
_TRAINABLE_EXPERT_PREFIXES = ("norm.",)


class CAST(nn.Module):
    """A spatial and a temporal expert, an exchange in chosen blocks, and a head (experiments/cast/README.md).

    Args:
        num_classes: an int, or ``{"verb": V, "noun": N}`` (V + N logits, verbs first).
        num_verbs: with an int ``num_classes`` of V + N, the first ``num_verbs`` logits are verbs; None = one label.
        img_size, num_frames: frame side and input frames F (both experts see F / 2 time steps).
        patch_size, embed_dim, depth, num_heads, mlp_ratio: the experts' ViT (the same for both, as B-CAST needs).
        spatial_expert, temporal_expert: structures from ``EXPERT_ARCHS`` ("clip", "vit_in21k", "videomae", "mvd").
        experts: "both", or "spatial" / "temporal" alone (with ``exchange="none"`` and ``fusion="single"``).
        adapters: the experts' AIM adapters (Eq. 3, 5); False = Table 1a "w/o adapter".
        adapter_ratio, mlp_adapter_scale: adapter width / D and the FFN adapter's factor s (official 0.25, 0.5).
        time_adapter: AIM's temporal adapter in every frame-expert block (the official independent CLIP expert).
        exchange: "bcast", "none", "xattn", "xattn_adapter" or "lateral"; None: "bcast", or "none" for one expert.
        directions: "both", "t2s" or "s2t" (Table 1g).
        exchange_blocks: 0-based blocks with an exchange (Table 1f); None = every block.
        down_ratio: B-CAST bottleneck ratio (Table 1d).
        t2s_window, s2t_window: "time", "space" or "space_time" (Table 1e).
        exchange_pos: B-CAST positional embeddings (Table 8).
        fusion: "split", "add", "concat", "ensemble" or "single" (the heads: README); None: "split" with verbs,
            "add" without, "single" for one expert.
        train_experts: train every parameter; False = freeze the experts but adapters, last norms, time embedding.
        drop_path_rate: stochastic depth of the exchange branches and FFN / time adapters (README: paper scale).
        head_drop_rate: dropout before the classifiers.
        fused_attn: SDPA (True) or explicit softmax (False) everywhere.
        skip_unread: in a training forward, skip the last block's work on patch tokens no head reads (same result).
        float32_pos_table: a tubelet expert adds VideoMAE's fixed table rounded to float32, as the official code
            does (``TubeletExpert``); only float64 computation sees the difference.
    """

    def __init__(
        self,
        num_classes: int | Mapping[str, int] = 400,
        num_verbs: int | None = None,
        img_size: int = 224,
        num_frames: int = 16,
        patch_size: int = 16,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        spatial_expert: str = "clip",
        temporal_expert: str = "videomae",
        experts: Literal["both", "spatial", "temporal"] = "both",
        adapters: bool = True,
        adapter_ratio: float = 0.25,
        mlp_adapter_scale: float = 0.5,
        time_adapter: bool = False,
        exchange: Exchange | None = None,
        directions: Literal["both", "t2s", "s2t"] = "both",
        exchange_blocks: Sequence[int] | None = None,
        down_ratio: float = 0.5,
        t2s_window: Window = "time",
        s2t_window: Window = "space",
        exchange_pos: bool = True,
        fusion: Literal["split", "add", "concat", "ensemble", "single"] | None = None,
        train_experts: bool = False,
        drop_path_rate: float = 0.0,
        head_drop_rate: float = 0.0,
        fused_attn: bool = True,
        skip_unread: bool = True,
        float32_pos_table: bool = False,
    ) -> None:
        super().__init__()
        num_classes, num_verbs = _logits(num_classes, num_verbs)
        exchange = exchange or ("bcast" if experts == "both" else "none")
        fusion = fusion or ("single" if experts != "both" else "split" if num_verbs else "add")
        _check_options(experts, exchange, directions, exchange_blocks, depth, t2s_window, s2t_window, fusion,
                       num_verbs)
        self.num_classes, self.num_verbs, self.fusion, self.exchange_kind = num_classes, num_verbs, fusion, exchange
        self.num_frames, self.img_size, self.embed_dim = num_frames, img_size, embed_dim
        self.train_experts, self.skip_unread = train_experts, skip_unread

        common = dict(img_size=img_size, num_frames=num_frames, patch_size=patch_size, embed_dim=embed_dim,
                      depth=depth, num_heads=num_heads, mlp_ratio=mlp_ratio,
                      adapter_ratio=adapter_ratio if adapters else None, mlp_adapter_scale=mlp_adapter_scale,
                      time_adapter=time_adapter, drop_path_rate=drop_path_rate, fused_attn=fused_attn)

        def expert(arch: str) -> FrameExpert | TubeletExpert:
            tubelet = expert_arch(arch).layout == "tubelet"
            return create_expert(arch, **common, drop_main=train_experts and tubelet,
                                 **({"float32_pos_table": float32_pos_table} if tubelet else {}))

        self.spatial = expert(spatial_expert) if experts in ("both", "spatial") else None
        self.temporal = expert(temporal_expert) if experts in ("both", "temporal") else None
        one = self.spatial or self.temporal
        self.num_steps, self.num_patches = one.num_steps, one.num_patches

        blocks = range(depth) if exchange_blocks is None else sorted(set(exchange_blocks))
        dpr = [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]
        self.exchange = nn.ModuleDict({
            str(i): BlockExchange(embed_dim, num_heads, self.num_steps, self.num_patches, exchange, directions,
                                  down_ratio, t2s_window, s2t_window, exchange_pos, adapter_ratio, fused_attn)
            for i in blocks} if exchange != "none" else {})
        self.exchange_drop = nn.ModuleList([DropPath(p) if p > 0 else nn.Identity() for p in dpr])

        self._add_heads(head_drop_rate, adapter_ratio)
        set_trainable(self, train_experts)

    def _add_heads(self, head_drop_rate: float, adapter_ratio: float) -> None:
        """The classifiers of ``self.fusion`` (README: the heads) and the dropout before them."""
        dim, classes, verbs = self.embed_dim, self.num_classes, self.num_verbs
        self.head_drop = nn.Dropout(head_drop_rate)
        self.head_spatial = self.head_temporal = self.head = None
        self.head_adapter_spatial = self.head_adapter_temporal = None
        if self.fusion == "split":
            self.head_temporal = cast_linear(dim, verbs)
            self.head_spatial = cast_linear(dim, classes - verbs)
        elif self.fusion in ("ensemble", "single"):
            if self.spatial is not None:
                self.head_spatial = cast_linear(dim, classes)
            if self.temporal is not None:
                self.head_temporal = cast_linear(dim, classes)
        else:
            self.head_adapter_spatial = Adapter(dim, adapter_ratio)
            self.head_adapter_temporal = Adapter(dim, adapter_ratio)
            self.head = cast_linear(dim * (2 if self.fusion == "concat" else 1), classes)

    # ---- forward --------------------------------------------------------------------------------------------

    def forward_features(self, video: Tensor) -> tuple[Tensor | None, Tensor | None]:
        """(B, C, F, H, W) -> pooled features (f_s, f_t), each (B, D) or None for an absent expert."""
        if video.ndim != 5:
            raise ValueError(f"CAST takes video (B, C, T, H, W), got shape {tuple(video.shape)}")
        b = video.shape[0]
        experts = [e for e in (self.spatial, self.temporal) if e is not None]
        tokens = [e.embed(video) for e in experts]
        last = len(experts[0].blocks) - 1
        skip = self.skip_unread and self.training and torch.is_grad_enabled()
        for i in range(last + 1):
            tokens = [e.blocks[i].attend(x, e.num_steps) for e, x in zip(experts, tokens, strict=True)]
            # In the last block a frame expert's patch tokens reach no head (pooling reads class tokens).
            unread = [skip and i == last and e.layout == "frame" for e in experts]
            if str(i) in self.exchange:
                tokens = self._exchange(i, tokens, b, patch_updates=(not unread[0], not unread[1]))
            tokens = [e.blocks[i].feed_forward(x[:, :1] if drop else x)
                      for e, x, drop in zip(experts, tokens, unread, strict=True)]
        pooled = [e.pool(x, b) for e, x in zip(experts, tokens, strict=True)]
        if len(experts) == 2:
            return pooled[0], pooled[1]
        return (pooled[0], None) if self.spatial is not None else (None, pooled[0])

    def _exchange(self, i: int, tokens: list[Tensor], batch: int,
                  patch_updates: tuple[bool, bool] = (True, True)) -> list[Tensor]:
        """B = Y + Phi(Y_s, Y_t) (Eq. 4) for the two experts' tokens after block ``i``'s MHSA."""
        (s_cls, s_grid), (t_cls, t_grid) = self.spatial.split(tokens[0], batch), self.temporal.split(tokens[1], batch)
        d_s_cls, d_s, d_t_cls, d_t = self.exchange[str(i)](s_cls, s_grid, t_cls, t_grid, patch_updates)
        drop = self.exchange_drop[i]
        out = []
        for expert, x, cls, grid, d_cls, d_grid in ((self.spatial, tokens[0], s_cls, s_grid, d_s_cls, d_s),
                                                    (self.temporal, tokens[1], t_cls, t_grid, d_t_cls, d_t)):
            if d_grid is None and d_cls is None:
                out.append(x)
                continue
            new_cls = cls + drop(d_cls) if d_cls is not None else cls
            out.append(expert.merge(new_cls, grid + drop(d_grid) if d_grid is not None else grid))
        return out

    def forward_head(self, f_s: Tensor | None, f_t: Tensor | None) -> Tensor:
        """Pooled features -> logits (B, num_classes); verb-noun: verbs first."""
        if self.fusion == "split":
            return torch.cat([self.head_temporal(self.head_drop(f_t)), self.head_spatial(self.head_drop(f_s))], -1)
        if self.fusion == "single":
            head, f = (self.head_spatial, f_s) if f_s is not None else (self.head_temporal, f_t)
            return head(self.head_drop(f))
        if self.fusion == "ensemble":
            return self._average_probabilities(self.head_spatial(self.head_drop(f_s)),
                                               self.head_temporal(self.head_drop(f_t)))
        a_s, a_t = self.head_adapter_spatial(f_s), self.head_adapter_temporal(f_t)
        z = a_s + a_t if self.fusion == "add" else torch.cat([a_s, a_t], dim=-1)
        return self.head(self.head_drop(z))

    def _average_probabilities(self, z_s: Tensor, z_t: Tensor) -> Tensor:
        """log of the mean of the two experts' class probabilities, per label head (verb, noun): the
        classifier's softmax of these logits is the ensemble's averaged prediction."""
        sizes = [self.num_verbs, self.num_classes - self.num_verbs] if self.num_verbs else [self.num_classes]
        parts = [torch.logaddexp(a.log_softmax(-1), b.log_softmax(-1)) - math.log(2.0)
                 for a, b in zip(z_s.split(sizes, -1), z_t.split(sizes, -1), strict=True)]
        return torch.cat(parts, dim=-1)

    def forward(self, video: Tensor) -> Tensor:
        return self.forward_head(*self.forward_features(video))

    def no_weight_decay(self) -> set[str]:
        """Positional tables and embeddings (timm's optimizer factory reads this)."""
        return {n for n, _ in self.named_parameters() if n.endswith(("_pos", "pos_embed", "cls_token", "time_embed"))}

    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        """Layer groups for layer-wise lr decay (timm's ``param_groups_layer_decay``), numbered as the official
        ``get_num_layer_for_vit``: the experts' embeddings are layer 0, block i of either expert (with its adapters) and
        B-CAST module i layer i + 1, the rest (last LayerNorms, time embedding, head adapters, heads) the top layer."""
        return {"stem": r"^(?:spatial|temporal)\.(?:patch_embed|cls_token|pos_embed|norm_pre)",
                "blocks": [(r"^(?:spatial|temporal)\.blocks\.(\d+)", None), (r"^exchange\.(\d+)", None)]}

    def set_fused_attn(self, flag: bool) -> None:
        from ..video_vit import set_fused_attn

        set_fused_attn(self, flag)


def set_trainable(model: CAST, train_experts: bool = False) -> list[str]:
    """Set ``requires_grad``: everything with ``train_experts``, otherwise only the adapters, the exchange modules,
    the experts' last LayerNorms, AIM's time embeddings and the heads. Returns the names of the trainable
    parameters."""
    trainable = []
    for name, param in model.named_parameters():
        expert, _, rest = name.partition(".")
        is_frozen_part = expert in ("spatial", "temporal") and not (
            any(part in rest for part in _TRAINABLE_EXPERT_PARTS) or rest.startswith(_TRAINABLE_EXPERT_PREFIXES))
        param.requires_grad_(train_experts or not is_frozen_part)
        if param.requires_grad:
            trainable.append(name)
    return trainable


def trainable_parameters(model: nn.Module) -> dict[str, int]:
    """``{name: numel}`` of the parameters that train."""
    return {n: p.numel() for n, p in model.named_parameters() if p.requires_grad}


def count_learnable(model: nn.Module) -> int:
    """Learnable parameters (the paper's "Tune Param" / "Learnable Param")."""
    return sum(trainable_parameters(model).values())


def _logits(num_classes: int | Mapping[str, int], num_verbs: int | None) -> tuple[int, int | None]:
    """(logits, verbs among them first or None) from ``num_classes`` and ``num_verbs`` as ``CAST`` takes them."""
    if isinstance(num_classes, Mapping):
        if list(num_classes) != ["verb", "noun"]:
            raise ValueError(f"num_classes must be an int or {{'verb': V, 'noun': N}}, got {dict(num_classes)}")
        if num_verbs not in (None, num_classes["verb"]):
            raise ValueError(f"num_verbs {num_verbs} contradicts num_classes {dict(num_classes)}")
        num_verbs, num_classes = num_classes["verb"], num_classes["verb"] + num_classes["noun"]
    if num_verbs is not None and not 0 < num_verbs < num_classes:
        raise ValueError(f"num_verbs must be in 1..num_classes-1 = {num_classes - 1}, got {num_verbs}")
    return num_classes, num_verbs


def _check_options(experts: str, exchange: str, directions: str, exchange_blocks: Sequence[int] | None, depth: int,
                   t2s_window: str, s2t_window: str, fusion: str, num_verbs: int | None) -> None:
    """Raise ``ValueError`` naming the first option that cannot work."""
    if experts not in EXPERT_SETS:
        raise ValueError(f"experts must be one of {EXPERT_SETS}, got {experts!r}")
    if exchange not in EXCHANGES:
        raise ValueError(f"exchange must be one of {EXCHANGES}, got {exchange!r}")
    if directions not in DIRECTIONS:
        raise ValueError(f"directions must be one of {DIRECTIONS}, got {directions!r}")
    for name, window in (("t2s_window", t2s_window), ("s2t_window", s2t_window)):
        if window not in WINDOWS:
            raise ValueError(f"{name} must be one of {WINDOWS}, got {window!r}")
    if exchange_blocks is not None and not all(isinstance(i, int) and 0 <= i < depth for i in exchange_blocks):
        raise ValueError(f"exchange_blocks must be 0-based block indices below depth {depth}, got {exchange_blocks}")
    if fusion not in FUSIONS:
        raise ValueError(f"fusion must be one of {FUSIONS}, got {fusion!r}")
    if experts != "both" and (exchange != "none" or fusion != "single"):
        raise ValueError(f"one expert alone (experts={experts!r}) needs exchange='none' and fusion='single', got "
                         f"exchange={exchange!r}, fusion={fusion!r}")
    if experts == "both" and fusion == "single":
        raise ValueError("fusion='single' is for one expert alone (experts='spatial' or 'temporal')")
    if fusion == "split" and not num_verbs:
        raise ValueError("fusion='split' (noun head on the spatial expert, verb head on the temporal one) needs "
                         "verb-noun labels: num_classes={'verb': V, 'noun': N} or num_verbs=V")


# ---- registered entrypoints -----------------------------------------------------------------------------------


def _create(defaults: dict[str, Any], overrides: dict[str, Any]) -> CAST:
    return CAST(**{**defaults, **overrides})


@register_model
def cast_base(**overrides: Any) -> CAST:
    """CAST-B (paper scale): CLIP ViT-B/16 spatial and VideoMAE ViT-B temporal expert, 16 x 224 x 224 input
    (8 CLIP frames, 8 x 14 x 14 tubelets), B-CAST in all 12 blocks at ratio 1/2 with T2S over time and S2T over
    space, adapters at ratio 1/4."""
    return _create(dict(img_size=224, num_frames=16, patch_size=16, embed_dim=768, depth=12, num_heads=12),
                   overrides)


@register_model
def cast_tiny(**overrides: Any) -> CAST:
    """CPU scale: the same structure with 96-d experts of 4 blocks and 6 heads, 8 frames of 32 x 32 in 8 x 8
    patches (4 time steps of 4 x 4 patches per expert); B-CAST width 48 at ratio 1/2."""
    return _create(dict(img_size=32, num_frames=8, patch_size=8, embed_dim=96, depth=4, num_heads=6), overrides)


EXPERT_SIZES: dict[str, dict[str, Any]] = {
    "base": dict(img_size=224, num_frames=16, patch_size=16, embed_dim=768, depth=12, num_heads=12),
    "tiny": dict(img_size=32, num_frames=8, patch_size=8, embed_dim=96, depth=4, num_heads=6),
}


def build_expert(arch: str, size: str = "tiny", **overrides: Any) -> FrameExpert | TubeletExpert:
    """A standalone expert of structure ``arch`` at the dimensions of ``cast_<size>``, without adapters unless
    ``adapter_ratio`` is given (for pretraining the tiny experts: its state dict then loads into
    ``CAST.spatial`` / ``CAST.temporal`` as a plain file)."""
    if size not in EXPERT_SIZES:
        raise ValueError(f"size must be one of {sorted(EXPERT_SIZES)}, got {size!r}")
    return create_expert(arch, **{**EXPERT_SIZES[size], "adapter_ratio": None, **overrides})
