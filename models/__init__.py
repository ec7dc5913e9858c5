"""Video transformer models: one ViT whose block takes a pluggable space-time attention."""

import data.torchvision_compat  # noqa: F401  (before timm imports torchvision)

from . import (
    cast,  # noqa: F401  (registers the cast_* two-expert models of the CAST paper)
    d3da,  # noqa: F401  (registers the d3da_* RGB+pose models of the 3D-deformable paper)
    lra_transformer,  # noqa: F401  (registers the lra_* sequence models of Motionformer Table 5)
    xvit,  # noqa: F401  (registers X-ViT's temporal-attention head of the frame-wise models)
)
from .attention import ATTENTION_LAYERS, FRAME_ATTENTION_LAYERS, get_attention
from .flops import count_flops, model_gflops
from .pretrained import checkpoint_filter_fn, load_pretrained
from .registry import create_model, list_models, register_model
from .video_vit import Block, TubeletEmbed, VideoViT, set_fused_attn

__all__ = [
    "ATTENTION_LAYERS",
    "FRAME_ATTENTION_LAYERS",
    "Block",
    "TubeletEmbed",
    "VideoViT",
    "checkpoint_filter_fn",
    "count_flops",
    "create_model",
    "get_attention",
    "list_models",
    "load_pretrained",
    "model_gflops",
    "register_model",
    "set_fused_attn",
]
