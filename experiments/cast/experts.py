"""CAST's experts at each scale: the tiny experts shipped in the repository (``tiny_source``: the image stand-ins
in the spatial role, the temporal experts of ``experiments.cast.shipped``) and the released checkpoints of the
paper-scale experts (``PAPER_CHECKPOINTS``); ``experts`` gives a row its two sources per scale."""

from __future__ import annotations

from typing import Any, Literal

from ..tiny_pretraining.images import CAST_SPATIAL, CAST_SPATIAL_IN21K, tiny_image_source
from .shipped import shipped_source

# The spatial experts' stand-ins: image stand-ins (``experiments.tiny_pretraining.images``) pretrained on
# `synth_images`, one per structure (CLIP's and ImageNet-21K's ViT).
SPATIAL_STAND_INS = {"clip": CAST_SPATIAL, "vit_in21k": CAST_SPATIAL_IN21K}


def tiny_source(name: str) -> str:
    """The tiny source of an expert: a spatial stand-in's image weights (CLIP's or ImageNet-21K's role), or a
    shipped temporal expert (``experiments.cast.shipped.SHIPPED``)."""
    if name in SPATIAL_STAND_INS:
        return tiny_image_source(SPATIAL_STAND_INS[name])
    return shipped_source(name)


# The paper's checkpoints, read from local files (``models.cast.checkpoints`` maps each layout).
PAPER_CHECKPOINTS = {
    # OpenAI CLIP ViT-B/16, released as a TorchScript archive: the opt-in reads its tensors, none of its code
    "clip": "clip:torchscript:checkpoints/cast/ViT-B-16.pt",
    # Tables 5-6's IN-21K ViT-B: not in the official code, not named by the paper; timm's vit_base_patch16_224_in21k
    # of 2023, which timm's deprecation table renames to this tag (our choice)
    "vit_in21k": "vit:timm:vit_base_patch16_224.augreg_in21k",
    "videomae_ek100": "videomae:checkpoints/cast/videomae_vit_b_ek100_pretrain.pth",
    "videomae_ssv2": "videomae:checkpoints/cast/videomae_vit_b_ssv2_pretrain.pth",
    "videomae_k400": "videomae:checkpoints/cast/videomae_vit_b_k400_pretrain.pth",
    "mvd_ek100": "videomae:checkpoints/cast/mvd_vit_b.pth",  # MVD's ViT-B (VideoMAE layout)
}


def experts(spatial: str = "clip", temporal: str = "videomae_ek100") -> dict[str, dict[str, Any]]:
    """Per-scale pretrained sources of the two experts, by ``tiny_source`` / ``PAPER_CHECKPOINTS`` name."""
    return {"tiny": {"pretrained": {"spatial": tiny_source(spatial), "temporal": tiny_source(temporal)}},
            "paper": {"pretrained": {"spatial": PAPER_CHECKPOINTS[spatial],
                                     "temporal": PAPER_CHECKPOINTS[temporal]}}}


def one_expert(part: Literal["spatial", "temporal"], name: str) -> dict[str, dict[str, Any]]:
    """Per-scale source of a model with one expert alone (``experts="spatial"`` / ``"temporal"``)."""
    return {"tiny": {"pretrained": {part: tiny_source(name)}},
            "paper": {"pretrained": {part: PAPER_CHECKPOINTS[name]}}}
