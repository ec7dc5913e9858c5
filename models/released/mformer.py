"""Checkpoints of the official Motionformer code (facebookresearch/Motionformer) as ``VideoViT`` state dicts.

``load_pretrained(model, "official:FILE")`` reads the file (``torch.load(weights_only=True)``) and calls
``official_checkpoint_filter_fn``. The official ``VisionTransformer`` (``slowfast/models/video_model_builder.py``,
``vit_helper.py``) names most weights as timm and we do; what differs:

============================================  ======================================================================
official                                      here
============================================  ======================================================================
``patch_embed_3d.proj`` (Conv3d, tubelets)    ``patch_embed.proj`` (``PATCH_SIZE_TEMP`` > 1)
``patch_embed.proj`` (Conv2d, per frame)      unused with tubelets and dropped (the official model builds it always);
                                              with square tokens (``PATCH_SIZE_TEMP`` 1) it is the tokenizer, given
                                              a unit time axis
``temp_embed``                                ``time_embed`` (``POS_EMBED: separate``)
``st_embed``                                  ``pos_embed`` (``POS_EMBED: joint``; the official spatial
                                              ``pos_embed`` is then unused and dropped)
``pos_embed`` (14x14 + CLS at any crop)       resampled once to the model's grid as the official forward does at
                                              every call for crops other than 224 (bicubic, ``scale_factor``)
``pre_logits.fc`` (``USE_MLP``)               ``pre_logits.fc`` (build the model with ``representation_size``)
``head0``, ``head1`` (Epic-Kitchens)          ``head``: verb rows then noun rows, as the verb/noun task reads them
============================================  ======================================================================

``cls_token``, ``norm`` and ``blocks.N.{norm1, norm2, attn.qkv, attn.proj_q, attn.proj_kv, attn.proj, mlp.fc1,
mlp.fc2}`` keep their names. A training checkpoint of the official code nests the weights under ``model_state``
beside ``cfg`` (its YAML configuration). A model that would compute another function with these weights is
refused, naming the option to change: the official default ``USE_ORIGINAL_TRAJ_ATTN_CODE: True`` (assumed when
``cfg`` is absent) pools the trajectory tokens themselves in stage two, which our trajectory attention does with
``stage_two_values="trajectory"``; ``PATCH_SIZE_TEMP`` (without ``cfg``: the depth of ``patch_embed_3d``'s
kernel) must be the model's ``tubelet_size`` (both tokenizers are in every official checkpoint, only one of them
trained); the attention's weights (trajectory: ``proj_q``, ``proj_kv``; joint: neither), the position embeddings
(``st_embed`` or ``temp_embed``) and the pre-logits layer must be the model's. Official divided space-time checkpoints
(``timeattn``, ``norm3``) are refused: the official divided block has two LayerNorms and a residual between its
stages that our one-attention block does not have.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ..video_vit import VideoViT

_logger = logging.getLogger(__name__)

OFFICIAL_PREFIX = "official:"  # the load_pretrained source of an official checkpoint: "official:FILE"


def official_config(checkpoint: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ``VIT`` section of the configuration an official training checkpoint stores (``cfg``, a YAML string),
    or None when the file holds weights only."""
    cfg = checkpoint.get("cfg")
    if not isinstance(cfg, str):
        return None
    import yaml

    parsed = yaml.safe_load(cfg)
    return dict(parsed.get("VIT", {})) if isinstance(parsed, dict) else None


def official_state_dict(checkpoint: Mapping[str, Any]) -> dict[str, Tensor]:
    """The model weights of an official checkpoint: ``checkpoint["model_state"]`` (a training checkpoint) or the
    checkpoint itself (a bare state dict); a DDP ``module.`` prefix is removed."""
    weights = checkpoint.get("model_state", checkpoint)
    if not isinstance(weights, Mapping) or not all(isinstance(v, Tensor) for v in weights.values()):
        raise ValueError("an official Motionformer checkpoint holds its weights under 'model_state' or is a state "
                         f"dict of tensors; got keys {list(checkpoint)[:8]}")
    if all(k.startswith("module.") for k in weights):
        weights = {k.removeprefix("module."): v for k, v in weights.items()}
    return dict(weights)


def _resample_official_pos_embed(pos: Tensor, grid: tuple[int, int]) -> Tensor:
    """The official forward's interpolation of the 14x14 table to another crop (``video_model_builder.py``):
    bicubic, by ``scale_factor`` sqrt(new tokens / old tokens), CLS slot kept."""
    side = math.isqrt(pos.shape[1] - 1)
    if (side, side) == grid:
        return pos
    if grid[0] != grid[1]:
        raise ValueError(f"the official position table is square; the model's grid is {grid}")
    _logger.info("resampling official pos_embed %dx%d -> %dx%d (bicubic, as the official forward)", side, side,
                 *grid)
    table = pos[:, 1:].reshape(1, side, side, -1).permute(0, 3, 1, 2)
    table = F.interpolate(table, scale_factor=math.sqrt(grid[0] * grid[1] / (side * side)), mode="bicubic")
    return torch.cat([pos[:, :1], table.permute(0, 2, 3, 1).reshape(1, grid[0] * grid[1], -1)], dim=1)


def _official_tubelet(vit: Mapping[str, Any] | None, weights: Mapping[str, Tensor]) -> int:
    """``PATCH_SIZE_TEMP``: from the configuration, else from the weights (``vit_helper.PatchEmbed3D``'s kernel is
    (PATCH_SIZE_TEMP, patch, patch); code that builds it only for tubelets stores none for square tokens)."""
    if vit is not None and vit.get("PATCH_SIZE_TEMP") is not None:
        return int(vit["PATCH_SIZE_TEMP"])
    kernel = weights.get("patch_embed_3d.proj.weight")
    return 1 if kernel is None else int(kernel.shape[2])


def _check_against_config(vit: Mapping[str, Any] | None, weights: Mapping[str, Tensor], model: VideoViT) -> None:
    """Refuse a model that would compute another function than the official one with these weights."""
    has_pre_logits = any(k.startswith("pre_logits.") for k in weights)
    if has_pre_logits != (not isinstance(model.pre_logits, torch.nn.Identity)):
        raise ValueError(
            "the official checkpoint " + ("has" if has_pre_logits else "has no") + " pre-logits layer (USE_MLP) "
            "but the model " + ("has none: build it with representation_size=embed_dim" if has_pre_logits
                                else "has one: build it without representation_size"))
    joint = "st_embed" in weights
    if joint != (model.pos_embed_type == "joint"):
        raise ValueError(f"the official checkpoint has {'joint' if joint else 'separate'} space-time position "
                         f"embeddings (POS_EMBED); the model has pos_embed={model.pos_embed_type!r}")
    tubelet = _official_tubelet(vit, weights)
    if tubelet != model.patch_embed.tubelet_size:
        raise ValueError(f"the official checkpoint tokenizes with PATCH_SIZE_TEMP={tubelet} frames; the model has "
                         f"tubelet_size={model.patch_embed.tubelet_size}")
    if any(".timeattn." in k or ".norm3." in k for k in weights):
        raise ValueError("official divided space-time checkpoints are not supported: the official divided block "
                         "(timeattn, norm3) is another function than our divided attention")
    # The attention's own weights tell its kind (trajectory: proj_q and proj_kv; joint: neither); a model whose
    # attention has other weights would run another function, some of its layers left at their initialisation.
    theirs = {k for k in weights if k.startswith("blocks.") and ".attn." in k}
    ours = {n for n, _ in model.named_parameters() if n.startswith("blocks.") and ".attn." in n}
    if theirs != ours:
        kind = "trajectory" if any(".attn.proj_kv." in k for k in theirs) else "joint"
        only_theirs, only_ours = sorted(theirs - ours), sorted(ours - theirs)
        raise ValueError(f"the official checkpoint's attention (ATTN_LAYER {kind}) has other weights than the "
                         f"model's ({type(model.blocks[0].attn).__name__}): only in the checkpoint {only_theirs[:4]}"
                         f"{' ...' if len(only_theirs) > 4 else ''}, only in the model {only_ours[:4]}"
                         f"{' ...' if len(only_ours) > 4 else ''}")
    stage_two = {getattr(m, "stage_two_values", None) for m in model.modules()} - {None}
    if not stage_two or not any(".attn.proj_kv." in k for k in weights):
        return
    original = True if vit is None else bool(vit.get("USE_ORIGINAL_TRAJ_ATTN_CODE", True))
    wanted = "trajectory" if original else "projected"
    if vit is None:
        _logger.warning("official checkpoint without its configuration: assuming the official default "
                        "USE_ORIGINAL_TRAJ_ATTN_CODE=True (stage_two_values='trajectory')")
    if stage_two != {wanted}:
        raise ValueError(f"the official checkpoint was trained with USE_ORIGINAL_TRAJ_ATTN_CODE={original}, which "
                         f"is stage_two_values={wanted!r} here; the model has {sorted(stage_two)}: build it with "
                         f"attn_kwargs={{'stage_two_values': {wanted!r}}}")


def official_checkpoint_filter_fn(checkpoint: Mapping[str, Any], model: VideoViT) -> dict[str, Tensor]:
    """An official Motionformer checkpoint (training checkpoint or bare state dict) as a state dict in our layout
    for ``model`` (see the module doc); ``models.pretrained.checkpoint_filter_fn`` then handles what any
    checkpoint needs (a classifier of another class count is dropped there)."""
    weights = official_state_dict(checkpoint)
    _check_against_config(official_config(checkpoint), weights, model)
    cubic = model.patch_embed.tubelet_size > 1
    out: dict[str, Tensor] = {}
    dropped: list[str] = []
    for key, value in weights.items():
        if key.startswith("patch_embed_3d."):
            if cubic:
                out[key.replace("patch_embed_3d.", "patch_embed.", 1)] = value
            else:
                dropped.append(key)
        elif key.startswith("patch_embed."):
            if cubic:
                dropped.append(key)
            else:  # the per-frame Conv2d tokenizer of square tokens: a Conv3d over one frame
                out[key] = value.unsqueeze(2) if value.ndim == 4 else value
        elif key == "temp_embed":
            out["time_embed"] = value
        elif key == "st_embed":
            out["pos_embed"] = value
        elif key == "pos_embed":
            if model.pos_embed_type == "joint":
                dropped.append(key)
            else:
                out["pos_embed"] = _resample_official_pos_embed(value, model.grid_size[1:])
        elif not key.startswith(("head0.", "head1.")):
            out[key] = value
    if "head0.weight" in weights:  # Epic-Kitchens: verbs (head0) then nouns (head1), one classifier here
        for name in ("weight", "bias"):
            out[f"head.{name}"] = torch.cat([weights[f"head0.{name}"], weights[f"head1.{name}"]])
    _logger.info("official checkpoint: %d tensors mapped; unused by the official model, dropped: %s", len(out),
                 dropped)
    return out

__all__ = ["OFFICIAL_PREFIX", "official_checkpoint_filter_fn", "official_config", "official_state_dict"]
