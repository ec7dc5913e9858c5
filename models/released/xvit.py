"""Checkpoints of the official X-ViT code (1adrianb/video-transformers) as state dicts of the frame-wise ``VideoViT``
with space-time mixing attention and the temporal-attention head.

The official ``XVIT`` (``slowfast/models/video_model_builder.py``) runs a timm ViT (``base_model``, its own copy in
``slowfast/models/transformers/vit.py``) on every frame, its attention's keys and values shifted in time by
``TemporalShift`` (``temporal_shift.py``), then ``VitHead`` (``head_helper.py``) over the per-frame class tokens.
Its ``save_checkpoint`` writes ``{"epoch", "model_state", "optimizer_state", "cfg"}``. The names:

=============================================  =====================================================================
official                                       here
=============================================  =====================================================================
``base_model.patch_embed.proj`` (Conv2d)       ``patch_embed.proj`` (square tokens: a Conv3d over one frame)
``base_model.cls_token``, ``.norm``,            the same names without ``base_model.``
``.blocks.N.*``
``base_model.pos_embed`` (14x14 + CLS)         ``pos_embed``, resampled once in the model's dtype as the official
                                               forward does at every call for crops other than 224 (bicubic,
                                               ``scale_factor`` (crop / 16) / (224 / 16))
``base_model.temp_embed`` (1, 8, 1, D)         ``time_embed`` (1, T, D): the official backbone is built with its
                                               default ``num_frames`` 8 whatever ``DATA.NUM_FRAMES``, and adds entry
                                               t mod 8 to frame t, so the table is tiled over the clip
``consensus.cls_token``                        ``temporal_aggregation.cls_token``
``consensus.temporal_encoder.0.*``             ``temporal_aggregation.block.*``
``consensus.mlp_head.{0,1}.*``                 ``temporal_aggregation.{norm,fc}.*``
``consensus.mlp_head.4.*``                     ``head.*``
``new_fc.*``                                   unused by the official forward with ``CONSENSUS_TYPE: vit``; left out
=============================================  =====================================================================

What is not in the weights comes from the stored ``cfg``, which the reader therefore requires: the shift
(``XVIT.SHIFT_DIV`` s: ``shift_fraction = 2 / s``; ``XVIT.NUM_SEGMENTS``: ``shift_segment``, the K400/K600 configs
shifting inside 8-frame segments of their 16 frames; ``XVIT.LOCATIONS_LIST``: the blocks that shift), the frames
(``DATA.NUM_FRAMES``), the test crop (``DATA.TEST_CROP_SIZE``, at which a test-only run builds the backbone) and the
temporal head's width and heads (``TEMPORAL_HEAD``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..attention import FrameAttention, SpaceTimeMixingAttention
from ..attention.temporal_shift import channels_per_direction
from ..video_vit import VideoViT
from ..xvit import TemporalAttentionPool
from .base import ReleasedLayout, RequiredModel, differing, stored_config

_logger = logging.getLogger(__name__)

# The backbone's heads are not in its weights: the official configs name a timm ViT (its own copy's entrypoints).
BASE_MODEL_HEADS = {"vit_base_patch16_224": 12, "vit_base_patch16_224_in21k": 12, "vit_base_patch32_224_in21k": 12,
                    "vit_base_patch16_384": 12, "vit_base_patch32_384": 12, "vit_large_patch16_224_in21k": 16,
                    "vit_large_patch32_224_in21k": 16}
# The official defaults (slowfast/config/defaults.py) of what a stored cfg may leave out.
DEFAULTS = {"NUM_SEGMENTS": 8, "SHIFT_DIV": 8, "USE_XVIT": True, "LOCATIONS_LIST": [9, 10, 11],
            "CONSENSUS_TYPE": "vit", "BEFORE_SOFTMAX": True}
HEAD_NAMES = {"cls_token": "temporal_aggregation.cls_token", "temporal_encoder.0.": "temporal_aggregation.block.",
              "mlp_head.0.": "temporal_aggregation.norm.", "mlp_head.1.": "temporal_aggregation.fc.",
              "mlp_head.4.": "head."}
DATASETS = {400: "kinetics400", 600: "kinetics600", 174: "ssv2"}


def xvit_state_dict(checkpoint: Mapping[str, Any]) -> dict[str, Tensor]:
    """The weights of an official X-ViT checkpoint: ``model_state`` (a training checkpoint) or the checkpoint itself;
    a DDP ``module.`` prefix is removed."""
    weights = checkpoint.get("model_state", checkpoint)
    if not isinstance(weights, Mapping) or not all(isinstance(v, Tensor) for v in weights.values()):
        raise ValueError("an official X-ViT checkpoint holds its weights under 'model_state' or is a state dict of "
                         f"tensors; got keys {list(checkpoint)[:8]}")
    if weights and all(k.startswith("module.") for k in weights):
        weights = {k.removeprefix("module."): v for k, v in weights.items()}
    return dict(weights)


def resample_xvit_pos_embed(pos: Tensor, img_size: int, grid: tuple[int, int]) -> Tensor:
    """The official backbone's interpolation of its table for a crop other than 224 (``vit.py``,
    ``forward_features``): bicubic by ``scale_factor`` (img_size / 16) / (224 / 16), CLS slot kept."""
    if img_size == 224:
        return pos
    side, dim = math.isqrt(pos.shape[1] - 1), pos.shape[-1]
    table = pos[:, 1:].reshape(1, side, side, dim).permute(0, 3, 1, 2)
    table = F.interpolate(table, scale_factor=(img_size / 16) / (224 / 16), mode="bicubic")
    if tuple(table.shape[-2:]) != grid:
        raise ValueError(f"the official interpolation makes a {tuple(table.shape[-2:])} table at crop {img_size}; "
                         f"the model's grid is {grid}")
    return torch.cat([pos[:, :1], table.permute(0, 2, 3, 1).reshape(1, -1, dim)], dim=1)


def _our_name(key: str) -> str | None:
    """The model's name for an official weight; None for one the official forward never uses (``new_fc``). A name
    with no counterpart is kept, for the strict load to name."""
    if key.startswith("new_fc."):
        return None
    if key.startswith("base_model."):
        return "time_embed" if key == "base_model.temp_embed" else key.removeprefix("base_model.")
    if key.startswith("consensus."):
        rest = key.removeprefix("consensus.")
        for official, ours in HEAD_NAMES.items():
            if rest.startswith(official):
                return ours + rest.removeprefix(official)
    return key


class XViTLayout(ReleasedLayout):
    """The released checkpoints of 1adrianb/video-transformers (``xvit_b16_16_k600.pth``, ``xvit_b16_16_ss2.pth``)."""

    name = "xvit"
    title = "X-ViT (1adrianb/video-transformers)"

    def recognise(self, checkpoint: Mapping[str, Any]) -> bool:
        try:
            weights = xvit_state_dict(checkpoint)
        except ValueError:
            return False
        return "base_model.cls_token" in weights and "consensus.cls_token" in weights

    def describe(self, checkpoint: Mapping[str, Any]) -> dict[str, Any]:
        weights = xvit_state_dict(checkpoint)
        config = stored_config(checkpoint) or {}
        xvit = {**DEFAULTS, **(config.get("XVIT") or {})}
        data, head = dict(config.get("DATA") or {}), dict(config.get("TEMPORAL_HEAD") or {})
        embed_dim = int(weights["base_model.cls_token"].shape[-1])
        depth = len({k.split(".")[2] for k in weights if k.startswith("base_model.blocks.")})
        classes = int(weights["consensus.mlp_head.4.weight"].shape[0])
        patch = int(weights["base_model.patch_embed.proj.weight"].shape[-1])
        frames, crop = data.get("NUM_FRAMES"), data.get("TEST_CROP_SIZE", data.get("TRAIN_CROP_SIZE"))
        shifted = sorted(i for i in xvit["LOCATIONS_LIST"] if i < depth) if xvit["USE_XVIT"] else []
        fc1 = weights.get("base_model.blocks.0.mlp.fc1.weight")
        stored_dataset = (config.get("TEST") or {}).get("DATASET") or (config.get("TRAIN") or {}).get("DATASET")
        return {
            "variant": "xvit" if shifted else "frame", "attention": "xvit" if shifted else "frame",
            "classes": classes, "num_classes": classes, "frames": frames, "crop": crop,
            "grid": [frames, crop // patch, crop // patch] if frames and crop else None, "tubelet": 1,
            "patch": patch, "channels": int(weights["base_model.patch_embed.proj.weight"].shape[1]),
            "pos_embed": "separate", "embed_dim": embed_dim, "depth": depth,
            "num_heads": BASE_MODEL_HEADS.get(xvit.get("BASE_MODEL")), "base_model": xvit.get("BASE_MODEL"),
            "mlp_ratio": fc1.shape[0] / embed_dim if fc1 is not None else None,
            "shift_fraction": 2 / xvit["SHIFT_DIV"], "shift_div": xvit["SHIFT_DIV"],
            "shift_segment": xvit["NUM_SEGMENTS"], "shifted_blocks": shifted,
            "temporal_table_frames": int(weights["base_model.temp_embed"].shape[1]),
            "consensus": xvit["CONSENSUS_TYPE"], "before_softmax": xvit["BEFORE_SOFTMAX"],
            "backbone_classifier": "base_model.head.weight" in weights,
            "head": {"layers": len({k.split(".")[2] for k in weights if k.startswith("consensus.temporal_encoder.")}),
                     "num_heads": head.get("NUM_ATTENTION_HEADS"), "hidden_dim": head.get("HIDDEN_DIM"),
                     "mlp_dim": int(weights["consensus.mlp_head.1.weight"].shape[0])},
            "norm_layer": (xvit.get("BACKBONE") or {}).get("NORM_LAYER", "LN"),
            "dataset": DATASETS.get(classes) if stored_dataset in (None, "kinetics") else (
                "ssv2" if stored_dataset == "ssv2" else stored_dataset),
            "stored_dataset": stored_dataset, "sampling_rate": data.get("SAMPLING_RATE"),
            "epoch": checkpoint.get("epoch"), "config": config or None,
            "other_entries": sorted(k for k in checkpoint if k != "model_state"),
            "unused": sorted(k for k in weights if _our_name(k) is None),
        }

    def required_model(self, description: Mapping[str, Any]) -> RequiredModel:
        d = description
        shifted = d["shifted_blocks"]
        if shifted and shifted != list(range(d["depth"] - len(shifted), d["depth"])):
            raise ValueError(f"the checkpoint shifts blocks {shifted}; a model here shifts its last blocks only")
        overrides: dict[str, Any] = {
            "img_size": d["crop"], "num_frames": d["frames"], "patch_size": d["patch"], "tubelet_size": 1,
            "in_chans": d["channels"],
            "num_classes": d["num_classes"], "embed_dim": d["embed_dim"], "depth": d["depth"],
            "num_heads": d["num_heads"], "mlp_ratio": d["mlp_ratio"], "pos_embed": "separate",
            "cls_layout": "per_frame", "temporal_aggregation": "attention", "attn_layer": d["attention"]}
        if shifted:
            options = {"shift_fraction": d["shift_fraction"]}
            if d["shift_segment"] != d["frames"]:
                options["shift_segment"] = d["shift_segment"]
            overrides["attn_kwargs"] = options
            if len(shifted) < d["depth"]:
                overrides["shift_last_blocks"] = len(shifted)
        return RequiredModel("vit_base_patch16_frame", {k: v for k, v in overrides.items() if v is not None})

    def mismatches(self, description: Mapping[str, Any], model: nn.Module) -> list[str]:
        d = description
        if d["config"] is None:
            return ["the file stores no configuration (cfg): X-ViT's shift (XVIT.SHIFT_DIV, NUM_SEGMENTS, "
                    "LOCATIONS_LIST), frames and crop are not in its weights"]
        if not isinstance(model, VideoViT) or model.cls_layout != "per_frame" or model.pos_embed_type != "separate" \
                or not isinstance(getattr(model, "temporal_aggregation", None), TemporalAttentionPool):
            return [f"the model ({type(model).__name__}) is not the frame-wise VideoViT with per-frame class tokens, "
                    f"pos_embed='separate' and temporal_aggregation='attention'"]
        problems = _official_options(d)
        ours = {"classes": model.num_classes, "frames": model.num_frames, "crop": model.img_size,
                "patch": model.patch_embed.patch_size, "tubelet": model.patch_embed.tubelet_size,
                "channels": model.patch_embed.proj.in_channels, "embed_dim": model.embed_dim,
                "depth": len(model.blocks), "num_heads": model.blocks[0].attn.num_heads}
        problems += differing({**d, "tubelet": 1}, ours)
        if d["frames"] and d["frames"] % d["temporal_table_frames"]:
            problems.append(f"its {d['temporal_table_frames']}-frame temporal table does not tile {d['frames']} "
                            f"frames (the official backbone would fail)")
        return problems + _head_mismatches(d, model.temporal_aggregation) + _shift_mismatches(d, model)

    def convert(self, checkpoint: Mapping[str, Any], model: nn.Module) -> dict[str, Tensor]:
        weights = xvit_state_dict(checkpoint)
        out: dict[str, Tensor] = {}
        for key, value in weights.items():
            name = _our_name(key)
            if name is None:
                continue
            if name == "time_embed":  # (1, Tb, 1, D): frame t takes entry t mod Tb
                table = value[:, :, 0]
                if model.num_frames % table.shape[1]:
                    raise ValueError(f"its {table.shape[1]}-frame temporal table does not tile {model.num_frames} "
                                     f"frames")
                value = table.repeat(1, model.num_frames // table.shape[1], 1)
            elif name == "pos_embed":
                value = resample_xvit_pos_embed(value.to(model.pos_embed.dtype), model.img_size,
                                                model.grid_size[1:])
            elif name == "patch_embed.proj.weight" and value.ndim == 4:  # a Conv3d over one frame
                value = value.unsqueeze(2)
            out[name] = value
        return out


def _official_options(d: Mapping[str, Any]) -> list[str]:
    """Official configurations whose function no model here computes."""
    problems = []
    if d["consensus"] != "vit" or not d["before_softmax"]:
        problems.append(f"XVIT.CONSENSUS_TYPE {d['consensus']!r} (BEFORE_SOFTMAX {d['before_softmax']}): only the "
                        f"temporal-attention head ('vit') before softmax is read here")
    if d["backbone_classifier"]:
        problems.append("a classifier in the backbone (MODEL.DROPOUT_RATE 0), which the official model applies "
                        "before its temporal head")
    if d["norm_layer"] != "LN":
        problems.append(f"XVIT.BACKBONE.NORM_LAYER {d['norm_layer']!r} (the model's is LayerNorm)")
    return problems


def _head_mismatches(d: Mapping[str, Any], head: TemporalAttentionPool) -> list[str]:
    """The official ``VitHead`` against ours: one block, as wide as the backbone, its heads; Linear(D, MLP_DIM)."""
    problems = []
    head_info, dim = d["head"], head.fc.in_features
    if head_info["layers"] != 1:
        problems.append(f"a temporal head of {head_info['layers']} blocks (TEMPORAL_HEAD.NUM_HIDDEN_LAYERS; the "
                        f"model's has 1)")
    if head_info["num_heads"] is not None and head_info["num_heads"] != head.block.attn.num_heads:
        problems.append(f"{head_info['num_heads']} temporal head attention heads (the model: "
                        f"{head.block.attn.num_heads})")
    if head_info["mlp_dim"] != head.fc.out_features or (head_info["hidden_dim"] or dim) != dim:
        problems.append(f"a temporal head of width {head_info['hidden_dim']} and MLP_DIM {head_info['mlp_dim']} "
                        f"(the model: {dim} and {head.fc.out_features})")
    return problems


def _shift_mismatches(d: Mapping[str, Any], model: VideoViT) -> list[str]:
    """Which blocks shift, how many channels each way and within which segments, against the model's attentions."""
    shifted = set(d["shifted_blocks"])
    segment = d["shift_segment"]
    for index, block in enumerate(model.blocks):
        attn = block.attn
        if index not in shifted:
            if type(attn) is not FrameAttention:
                return [f"block {index} does not shift (XVIT.LOCATIONS_LIST {sorted(shifted)}) but the model's "
                        f"{type(attn).__name__} does"]
            continue
        if type(attn) is not SpaceTimeMixingAttention:
            return [f"block {index} mixes keys and values in time (XVIT.LOCATIONS_LIST) but the model's is "
                    f"{type(attn).__name__} (build it with attn_layer='xvit')"]
        dim = model.embed_dim
        if channels_per_direction(dim, attn.shift_fraction) != dim // d["shift_div"]:
            return [f"XVIT.SHIFT_DIV {d['shift_div']} moves {dim // d['shift_div']} channels each way; the model's "
                    f"shift_fraction {attn.shift_fraction} moves {channels_per_direction(dim, attn.shift_fraction)} "
                    f"(build it with shift_fraction={2 / d['shift_div']})"]
        if (attn.shift_segment or model.num_frames) != segment:
            return [f"XVIT.NUM_SEGMENTS {segment}: frames mix within segments of {segment}; the model's "
                    f"shift_segment is {attn.shift_segment} (build it with shift_segment={segment})"]
    return []


XVIT_LAYOUT = XViTLayout()

__all__ = ["XVIT_LAYOUT", "XViTLayout", "resample_xvit_pos_embed", "xvit_state_dict"]
