"""CAST: Cross-Attention in Space and Time (Lee, Lee, Choi, NeurIPS 2023): models, checkpoints, complexity.

Entrypoints (``models.create_model``): ``cast_base`` (16 x 224 x 224 clips, ViT-B/16 experts, 12 blocks) and
``cast_tiny`` (8 x 32 x 32 clips, 8 x 8 patches, 96-d experts of 4 blocks and 6 heads); both build ``CAST`` and take
every constructor option as an override. Video (B, C, F, H, W) -> logits (B, num_classes); with
``num_classes={"verb": V, "noun": N}`` the logits are [V verbs | N nouns], as ``lightning_modules.video_classifier``
splits them. Table rows as options, freezing, the experts alone and pretrained sources:
docs/cast_model.md#the-model-rows-as-options.
"""

from .checkpoints import clip_to_expert, load_expert, videomae_to_expert, vit_to_expert
from .exchange import DIRECTIONS, EXCHANGES, BlockExchange
from .experts import EXPERT_ARCHS, UNBUILDABLE_EXPERTS, ExpertBlock, FrameExpert, TubeletExpert, create_expert
from .layers import WINDOWS, Adapter, WindowedCrossAttention
from .model import (
    CAST,
    FUSIONS,
    build_expert,
    cast_base,
    cast_tiny,
    count_learnable,
    set_trainable,
    trainable_parameters,
)

__all__ = [
    "CAST",
    "DIRECTIONS",
    "EXCHANGES",
    "EXPERT_ARCHS",
    "FUSIONS",
    "UNBUILDABLE_EXPERTS",
    "WINDOWS",
    "Adapter",
    "BlockExchange",
    "ExpertBlock",
    "FrameExpert",
    "TubeletExpert",
    "WindowedCrossAttention",
    "build_expert",
    "cast_base",
    "cast_tiny",
    "clip_to_expert",
    "count_learnable",
    "create_expert",
    "load_expert",
    "set_trainable",
    "trainable_parameters",
    "videomae_to_expert",
    "vit_to_expert",
]
