"""Checkpoints of the official Motionformer code (facebookresearch/Motionformer) as ``VideoViT`` state dicts.

Two routes read them: ``load_released`` (``MFORMER_LAYOUT``, the layout's reader: a released checkpoint into the
model that computes its function, loaded strictly) and ``load_pretrained(model, "official:FILE")`` (initial weights for
training, ``official_checkpoint_filter_fn``: a classifier of another class count is dropped there). The official
``VisionTransformer`` (``slowfast/models/video_model_builder.py``, ``vit_helper.py``) names most weights as timm and
we do; what differs:

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
``pos_embed`` (14x14 + CLS at any crop)       resampled once, in the model's dtype, to the model's grid as the
                                              official forward does at every call for crops other than 224
                                              (bicubic, ``scale_factor``)
``blocks.N.norm3``, ``blocks.N.timeattn``     ``blocks.N.pre_attn.norm``, ``blocks.N.pre_attn.{qkv,proj}``: the
                                              official divided block (``attn_layer="divided_official"``)
``pre_logits.fc`` (``USE_MLP``)               ``pre_logits.fc`` (build the model with ``representation_size``)
``head0``, ``head1`` (EPIC-KITCHENS)          ``head``: verb rows then noun rows, as the verb/noun task reads them
============================================  ======================================================================

``cls_token``, ``norm`` and ``blocks.N.{norm1, norm2, attn.qkv, attn.proj_q, attn.proj_kv, attn.proj, mlp.fc1,
mlp.fc2}`` keep their names. A training checkpoint of the official code nests the weights under ``model_state``
beside ``cfg`` (its YAML configuration), ``epoch`` and ``optimizer_state``. A model that would compute another
function with these weights is refused, naming the option to change: the official default
``USE_ORIGINAL_TRAJ_ATTN_CODE: True`` (assumed when ``cfg`` is absent) pools the trajectory tokens themselves in stage
two, which our trajectory attention does with ``stage_two_values="trajectory"``; ``PATCH_SIZE_TEMP`` (without
``cfg``: the depth of ``patch_embed_3d``'s kernel) must be the model's ``tubelet_size`` (both tokenizers are in every
official checkpoint, only one of them trained); the attention's weights (trajectory: ``proj_q``, ``proj_kv``; joint:
neither; divided: ``timeattn``, ``norm3``), the position embeddings (``st_embed`` or ``temp_embed``) and the
pre-logits layer must be the model's. ``load_released`` also requires the checkpoint's classes, frames, crop and
width.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..attention import JointSpaceTimeAttention, OfficialDividedSpaceTimeAttention, TrajectoryAttention
from ..video_vit import VideoViT
from .base import ReleasedLayout, RequiredModel, differing, stored_config

_logger = logging.getLogger(__name__)

OFFICIAL_PREFIX = "official:"  # the load_pretrained source of an official checkpoint: "official:FILE"
# The official ATTN_LAYER and the attention that computes it here.
ATTENTIONS = {"trajectory": TrajectoryAttention, "joint": JointSpaceTimeAttention,
              "divided": OfficialDividedSpaceTimeAttention}
ATTN_LAYERS = {"trajectory": "trajectory", "joint": "joint", "divided": "divided_official"}
# The official classifier of EPIC-KITCHENS (TRAIN.DATASET "Epickitchens"): verbs (head0) then nouns (head1).
EPIC_HEADS = ("head0", "head1")
DATASETS = {400: "kinetics400", 600: "kinetics600", 174: "ssv2"}  # by class count, when the file names none
DATASET_NAMES = {"kinetics": None, "ssv2": "ssv2", "epickitchens": "epic_kitchens100"}  # TRAIN.DATASET -> ours


def official_config(checkpoint: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ``VIT`` section of the configuration an official training checkpoint stores (``cfg``, a YAML string),
    or None when the file holds weights only."""
    config = stored_config(checkpoint)
    return None if config is None else dict(config.get("VIT") or {})


def official_state_dict(checkpoint: Mapping[str, Any]) -> dict[str, Tensor]:
    """The model weights of an official checkpoint: ``checkpoint["model_state"]`` (a training checkpoint) or the
    checkpoint itself (a bare state dict); a DDP ``module.`` prefix is removed."""
    weights = checkpoint.get("model_state", checkpoint)
    if not isinstance(weights, Mapping) or not all(isinstance(v, Tensor) for v in weights.values()):
        raise ValueError("an official Motionformer checkpoint holds its weights under 'model_state' or is a state "
                         f"dict of tensors; got keys {list(checkpoint)[:8]}")
    if weights and all(k.startswith("module.") for k in weights):
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


def attention_kind(weights: Mapping[str, Tensor]) -> str:
    """The official ``ATTN_LAYER`` the weights were trained with: divided (``timeattn``), trajectory (``proj_kv``)
    or joint (neither)."""
    if any(".timeattn." in k or ".norm3." in k for k in weights):
        return "divided"
    return "trajectory" if any(".attn.proj_kv." in k for k in weights) else "joint"


def _stage_two_values(vit: Mapping[str, Any] | None) -> str:
    """What the official stage two pools: the trajectory tokens (``USE_ORIGINAL_TRAJ_ATTN_CODE``, the default)."""
    return "trajectory" if vit is None or bool(vit.get("USE_ORIGINAL_TRAJ_ATTN_CODE", True)) else "projected"


def _our_name(key: str, cubic: bool, joint: bool) -> str | None:
    """The model's name for an official weight, or None for one the official model never uses."""
    if key.startswith("patch_embed_3d."):
        return key.replace("patch_embed_3d.", "patch_embed.", 1) if cubic else None
    if key.startswith("patch_embed."):
        return None if cubic else key
    if key in ("temp_embed", "st_embed"):
        return "time_embed" if key == "temp_embed" else "pos_embed"
    if key == "pos_embed":
        return None if joint else key
    divided = re.match(r"blocks\.(\d+)\.(timeattn|norm3)\.(.+)", key)
    if divided:
        index, module, rest = divided.groups()
        return f"blocks.{index}.pre_attn.{'norm.' if module == 'norm3' else ''}{rest}"
    return key


def map_official_weights(weights: Mapping[str, Tensor], cubic: bool, joint: bool, grid: tuple[int, int],
                         dtype: torch.dtype) -> tuple[dict[str, Tensor], list[str]]:
    """The official weights under our names (module doc), for a model of tubelets (``cubic``) or square tokens and
    of a joint or separate position table on a ``grid``; and the official keys left out (unused by the official
    model). The spatial table is resampled in ``dtype``, as the official forward does in the model's."""
    out: dict[str, Tensor] = {}
    dropped: list[str] = []
    for key, value in weights.items():
        if key.startswith(EPIC_HEADS):
            continue
        name = _our_name(key, cubic, joint)
        if name is None:
            dropped.append(key)
        elif name == "pos_embed" and key == "pos_embed":
            out[name] = _resample_official_pos_embed(value.to(dtype), grid)
        elif name == "patch_embed.proj.weight" and value.ndim == 4:  # square tokens: a Conv3d over one frame
            out[name] = value.unsqueeze(2)
        else:
            out[name] = value
    if f"{EPIC_HEADS[0]}.weight" in weights:  # verbs then nouns, one classifier here
        for name in ("weight", "bias"):
            out[f"head.{name}"] = torch.cat([weights[f"{head}.{name}"] for head in EPIC_HEADS])
    return out, dropped


def variant_facts(vit: Mapping[str, Any] | None, weights: Mapping[str, Tensor]) -> dict[str, Any]:
    """What decides the official model's function beside its shapes: pre-logits activation (None: no layer), the
    position tables, the tokenizer's depth, the attention and its stage two, approximation."""
    kind = attention_kind(weights)
    if vit is None and kind == "trajectory":
        _logger.warning("official checkpoint without its configuration: assuming the official default "
                        "USE_ORIGINAL_TRAJ_ATTN_CODE=True (stage_two_values='trajectory')")
    return {"pre_logits": (vit or {}).get("HEAD_ACT", "tanh") if "pre_logits.fc.weight" in weights else None,
            "pos_embed": "joint" if "st_embed" in weights else "separate",
            "tubelet": _official_tubelet(vit, weights), "attention": kind, "attn_layer": ATTN_LAYERS[kind],
            "stage_two_values": _stage_two_values(vit) if kind == "trajectory" else None,
            "approximation": (vit or {}).get("APPROX_ATTN_TYPE", "none")}


def variant_mismatches(facts: Mapping[str, Any], model: VideoViT,
                       weights: Mapping[str, Tensor] | None = None) -> list[str]:
    """What makes ``model`` compute another function than the official one of ``facts`` (``variant_facts``),
    whatever the classes, frames and crop. With the official ``weights``, the attention's weights are compared
    too, by name: a model whose attention has other weights would leave some of its layers at their
    initialisation."""
    problems = []
    if (facts["pre_logits"] is not None) != (not isinstance(model.pre_logits, nn.Identity)):
        problems.append("the official checkpoint " + ("has" if facts["pre_logits"] else "has no") + " pre-logits "
                        "layer (USE_MLP) but the model " + ("has none: build it with representation_size=embed_dim"
                                                           if facts["pre_logits"] else
                                                           "has one: build it without representation_size"))
    elif facts["pre_logits"] not in (None, "tanh"):
        problems.append(f"the official checkpoint's pre-logits activation is {facts['pre_logits']} (HEAD_ACT); the "
                        f"model's is tanh")
    if facts["pos_embed"] != model.pos_embed_type:
        problems.append(f"the official checkpoint has {facts['pos_embed']} space-time position embeddings "
                        f"(POS_EMBED); the model has pos_embed={model.pos_embed_type!r}")
    if facts["tubelet"] != model.patch_embed.tubelet_size:
        problems.append(f"the official checkpoint tokenizes with PATCH_SIZE_TEMP={facts['tubelet']} frames; the "
                        f"model has tubelet_size={model.patch_embed.tubelet_size}")
    kind, hint = facts["attention"], f"(build it with attn_layer={facts['attn_layer']!r})"
    if weights is not None:
        mapped, _ = map_official_weights({k: v for k, v in weights.items() if k.startswith("blocks.")}, True,
                                         False, (0, 0), torch.float32)
        theirs = {k for k in mapped if ".attn." in k or ".pre_attn." in k}
        ours = {n for n, _ in model.named_parameters() if n.startswith("blocks.") and (".attn." in n or
                                                                                      ".pre_attn." in n)}
        if theirs != ours:
            only_theirs, only_ours = sorted(theirs - ours), sorted(ours - theirs)
            return problems + [
                f"the official checkpoint's attention (ATTN_LAYER {kind}) has other weights than the model's "
                f"({type(model.blocks[0].attn).__name__}): only in the checkpoint {only_theirs[:4]}"
                f"{' ...' if len(only_theirs) > 4 else ''}, only in the model {only_ours[:4]}"
                f"{' ...' if len(only_ours) > 4 else ''} {hint}"]
    others = sorted({type(b.attn).__name__ for b in model.blocks} - {ATTENTIONS[kind].__name__})
    if others:
        return problems + [f"the official checkpoint's attention is ATTN_LAYER {kind} ({ATTENTIONS[kind].__name__} "
                           f"here); the model has {others} {hint}"]
    return problems + (_trajectory_mismatches(facts, model) if kind == "trajectory" else [])


def _trajectory_mismatches(facts: Mapping[str, Any], model: VideoViT) -> list[str]:
    """The official trajectory attention's options: Att_T over Norm_S stage one, and its stage two's values."""
    problems = []
    if any(b.attn.normalize != "space" or b.attn.temporal_pool != "attention" for b in model.blocks):
        problems.append("the official trajectory attention normalises each frame (normalize='space') and pools by "
                        "attention (temporal_pool='attention'); the model does otherwise")
    stage_two, wanted = {b.attn.stage_two_values for b in model.blocks}, facts["stage_two_values"]
    if stage_two != {wanted}:
        problems.append(f"the official checkpoint was trained with USE_ORIGINAL_TRAJ_ATTN_CODE="
                        f"{wanted == 'trajectory'}, which is stage_two_values={wanted!r} here; the model has "
                        f"{sorted(stage_two)}: build it with attn_kwargs={{'stage_two_values': {wanted!r}}}")
    if facts["approximation"] != "none":
        problems.append(f"the official checkpoint was trained with APPROX_ATTN_TYPE={facts['approximation']!r}; "
                        f"only exact trajectory attention ('none') is read here")
    return problems


def official_checkpoint_filter_fn(checkpoint: Mapping[str, Any], model: VideoViT) -> dict[str, Tensor]:
    """An official Motionformer checkpoint (training checkpoint or bare state dict) as a state dict in our layout
    for ``model`` (see the module doc); ``models.pretrained.checkpoint_filter_fn`` then handles what any
    checkpoint needs (a classifier of another class count is dropped there)."""
    weights = official_state_dict(checkpoint)
    problems = variant_mismatches(variant_facts(official_config(checkpoint), weights), model, weights)
    if problems:
        raise ValueError("; ".join(problems))
    out, dropped = map_official_weights(weights, model.patch_embed.tubelet_size > 1, model.pos_embed_type == "joint",
                                        model.grid_size[1:], model.pos_embed.dtype)
    _logger.info("official checkpoint: %d tensors mapped; unused by the official model, dropped: %s", len(out),
                 dropped)
    return out


class MformerLayout(ReleasedLayout):
    """The released checkpoints of facebookresearch/Motionformer (``.pyth``: joint, divided, Mformer, -HR, -L on
    K400, K600, SSv2 and EPIC-KITCHENS-100)."""

    name = "mformer"
    title = "Motionformer (facebookresearch/Motionformer)"

    def recognise(self, checkpoint: Mapping[str, Any]) -> bool:
        try:
            weights = official_state_dict(checkpoint)
        except ValueError:
            return False
        return ("cls_token" in weights and "pos_embed" in weights and "blocks.0.norm1.weight" in weights
                and ("temp_embed" in weights or "st_embed" in weights))

    def describe(self, checkpoint: Mapping[str, Any]) -> dict[str, Any]:
        weights = official_state_dict(checkpoint)
        config = stored_config(checkpoint) or {}
        vit, data = dict(config.get("VIT") or {}), dict(config.get("DATA") or {})
        facts = variant_facts(vit or None, weights)
        joint, tubelet = facts["pos_embed"] == "joint", facts["tubelet"]
        kernel = weights.get("patch_embed_3d.proj.weight", weights.get("patch_embed.proj.weight"))
        if kernel is None or "cls_token" not in weights:
            raise ValueError("no tokenizer (patch_embed_3d, patch_embed) or no cls_token")
        embed_dim, patch = int(weights["cls_token"].shape[-1]), int(kernel.shape[-1])
        heads = {h: int(weights[f"{h}.weight"].shape[0]) for h in ("head", *EPIC_HEADS) if f"{h}.weight" in weights}
        token_frames = int(weights["temp_embed"].shape[1]) if "temp_embed" in weights else (
            vit.get("TEMPORAL_RESOLUTION"))
        crop = data.get("TEST_CROP_SIZE", data.get("TRAIN_CROP_SIZE"))
        if joint and token_frames:  # the joint table is the grid's: (st_embed rows - 1) = T * side^2
            side = math.isqrt((weights["st_embed"].shape[1] - 1) // token_frames)
            crop = crop or side * patch
        dataset = (config.get("TEST") or {}).get("DATASET") or (config.get("TRAIN") or {}).get("DATASET")
        fc1 = weights.get("blocks.0.mlp.fc1.weight")
        return {
            **facts, "variant": facts["attention"], "classes": _classes(heads), "heads": heads,
            "num_classes": sum(heads.values()),
            "frames": data.get("NUM_FRAMES") or (token_frames * tubelet if token_frames else None),
            "token_frames": token_frames, "tubelet": tubelet, "patch": patch, "crop": crop,
            "channels": int(kernel.shape[1]),
            "grid": [token_frames, crop // patch, crop // patch] if token_frames and crop else None,
            "embed_dim": embed_dim, "depth": len({k.split(".")[1] for k in weights if k.startswith("blocks.")}),
            "num_heads": vit.get("NUM_HEADS"), "mlp_ratio": fc1.shape[0] / embed_dim if fc1 is not None else None,
            "qkv_bias": "blocks.0.attn.qkv.bias" in weights,
            "dataset": _dataset(dataset, heads), "stored_dataset": dataset,
            "sampling_rate": data.get("SAMPLING_RATE"), "epoch": checkpoint.get("epoch"),
            "config": config or None, "other_entries": sorted(k for k in checkpoint if k != "model_state"),
        }

    def required_model(self, description: Mapping[str, Any]) -> RequiredModel:
        d = description
        large = (d["embed_dim"], d["depth"]) == (1024, 24)
        overrides: dict[str, Any] = {
            "img_size": d["crop"], "num_frames": d["frames"], "patch_size": d["patch"], "tubelet_size": d["tubelet"],
            "in_chans": d["channels"], "num_classes": d["num_classes"], "embed_dim": d["embed_dim"],
            "depth": d["depth"], "num_heads": d["num_heads"], "mlp_ratio": d["mlp_ratio"], "qkv_bias": d["qkv_bias"],
            "pos_embed": d["pos_embed"], "attn_layer": d["attn_layer"],
            "representation_size": d["embed_dim"] if d["pre_logits"] else None}
        if d["attention"] == "trajectory":
            overrides["attn_kwargs"] = {"stage_two_values": d["stage_two_values"]}
        return RequiredModel("vit_large_patch16_video" if large else "vit_base_patch16_video",
                             {k: v for k, v in overrides.items() if v is not None or k == "representation_size"})

    def mismatches(self, description: Mapping[str, Any], model: nn.Module) -> list[str]:
        if not isinstance(model, VideoViT) or model.cls_layout != "single":
            return [f"the model ({type(model).__name__}) is not a VideoViT with one class token"]
        ours = {"num_classes": model.num_classes, "frames": model.num_frames, "crop": model.img_size,
                "patch": model.patch_embed.patch_size, "channels": model.patch_embed.proj.in_channels,
                "embed_dim": model.embed_dim, "depth": len(model.blocks),
                "num_heads": model.blocks[0].attn.num_heads}
        return differing(description, ours) + variant_mismatches(description, model)  # tubelet: variant_mismatches

    def convert(self, checkpoint: Mapping[str, Any], model: nn.Module) -> dict[str, Tensor]:
        weights = official_state_dict(checkpoint)
        out, dropped = map_official_weights(weights, model.patch_embed.tubelet_size > 1,
                                            model.pos_embed_type == "joint", model.grid_size[1:],
                                            model.pos_embed.dtype)
        _logger.info("%s: unused by the official model, left out: %s", self.name, dropped)
        return out


def _classes(heads: Mapping[str, int]) -> int | dict[str, int] | None:
    """The classes as our models take them: one head's count, or EPIC-KITCHENS' verbs (head0) and nouns (head1)."""
    if set(heads) == set(EPIC_HEADS):
        return {"verb": heads[EPIC_HEADS[0]], "noun": heads[EPIC_HEADS[1]]}
    return sum(heads.values()) if heads else None


def _dataset(stored: str | None, heads: Mapping[str, int]) -> str | None:
    """Our dataset name for the checkpoint: its TRAIN/TEST.DATASET, else the class count's (EPIC: two heads)."""
    if set(heads) == set(EPIC_HEADS):
        return "epic_kitchens100"
    named = DATASET_NAMES.get((stored or "").lower())
    return named or DATASETS.get(sum(heads.values()))


MFORMER_LAYOUT = MformerLayout()

__all__ = ["MFORMER_LAYOUT", "OFFICIAL_PREFIX", "MformerLayout", "attention_kind", "map_official_weights",
           "official_checkpoint_filter_fn", "official_config", "official_state_dict", "stored_config",
           "variant_facts", "variant_mismatches"]
