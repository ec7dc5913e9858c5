"""CAST's experts at each scale: the tiny experts pretrained here on generated data (``TINY_EXPERTS``, each an
``experiments.tiny_pretraining.experts.ExpertPretraining``: which stand-in set, which method, how long) and the released
checkpoints of the paper-scale experts (``PAPER_CHECKPOINTS``); ``experts`` gives a row its two sources per scale.
A tiny source ``expert:<name>@<key>`` resolves to the cached file, pretraining it first when it is absent."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from ..presets import TINY_STAND_INS
from ..tiny_pretraining.experts import ExpertPretraining, cached_expert
from ..harness.spec import DataConfig
from ..harness.tasks import register_source


def _pretraining_data(stand_in: str, **synthetic: Any) -> DataConfig:
    base = TINY_STAND_INS[stand_in]
    return dataclasses.replace(base, synthetic_params={**base.synthetic_params, **synthetic}, num_workers=0)


# Which generated set stands in for which pretraining data (Tables 5 and 6): the spatial expert's image data
# (CLIP: every class of the appearance set; ImageNet-21K: the narrower first 4 of its 8 classes, with the ViT's
# own structure), the temporal expert's video data (EK100 / SSV2 / K400 -> verb-noun / motion / appearance set).
CLIP_DATA, IN21K_DATA = _pretraining_data("K-400"), _pretraining_data("K-400", num_classes=4)
TINY_EXPERTS: dict[str, ExpertPretraining] = {
    "clip": ExpertPretraining("clip", "frames", CLIP_DATA, epochs=3, lr=1e-3),
    "vit_in21k": ExpertPretraining("vit_in21k", "frames", IN21K_DATA, epochs=3, lr=1e-3),
    "videomae_ek100": ExpertPretraining("videomae", "mae", _pretraining_data("EK-100"), epochs=6, lr=1.5e-3),
    "videomae_ssv2": ExpertPretraining("videomae", "mae", _pretraining_data("SSv2"), epochs=6, lr=1.5e-3),
    "videomae_k400": ExpertPretraining("videomae", "mae", _pretraining_data("K-400"), epochs=6, lr=1.5e-3),
    # MVD distils teachers' features into VideoMAE's structure; the tiny stand-in does not reproduce the
    # distillation: it is the same masked autoencoding with another seed (see Table 7's notes).
    "mvd_ek100": ExpertPretraining("mvd", "mae", _pretraining_data("EK-100"), epochs=6, lr=1.5e-3, seed=1),
}

def expert_source(name: str) -> str:
    """The pretrained source of a tiny expert: ``expert:<name>@<configuration key>`` (the key makes a run's
    configuration change when its expert's pretraining does)."""
    return f"expert:{name}@{TINY_EXPERTS[name].key()}"


def _resolve_expert_source(rest: str) -> str:
    name, _, key = rest.partition("@")
    if name not in TINY_EXPERTS:
        raise ValueError(f"pretrained source expert:{rest}: no tiny expert {name!r}; known: {sorted(TINY_EXPERTS)}")
    config = TINY_EXPERTS[name]
    if key and key != config.key():
        raise ValueError(f"pretrained source expert:{rest}: the pretraining of {name!r} has changed since this run "
                         f"was configured (its key is now {config.key()}); run the table again")
    return str(cached_expert(config))


register_source("expert", _resolve_expert_source)


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
    """Per-scale pretrained sources of the two experts, by ``TINY_EXPERTS`` / ``PAPER_CHECKPOINTS`` name."""
    return {"tiny": {"pretrained": {"spatial": expert_source(spatial), "temporal": expert_source(temporal)}},
            "paper": {"pretrained": {"spatial": PAPER_CHECKPOINTS[spatial],
                                     "temporal": PAPER_CHECKPOINTS[temporal]}}}


def one_expert(part: Literal["spatial", "temporal"], name: str) -> dict[str, dict[str, Any]]:
    """Per-scale source of a model with one expert alone (``experts="spatial"`` / ``"temporal"``)."""
    return {"tiny": {"pretrained": {part: expert_source(name)}},
            "paper": {"pretrained": {part: PAPER_CHECKPOINTS[name]}}}
