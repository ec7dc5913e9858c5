"""Test checkpoints in the authors' layouts, made from one of our models: what a released file of that model would
hold (the authors' key names and nesting, and what their save code stores beside the weights: Motionformer's and
X-ViT's ``cfg``, CAST's ``args``). The readers' converters run the other way (``models.released``);
``test_authors_layout.py`` checks that the two meet on every golden case, so these files are the authors' layout
as far as the golden cases, made by the authors' own code, show it.

``tiny_tensors`` stands every tensor in by a zero of its shape that stores one number (a stride-0 view), so a file
of a paper-width model is a few kilobytes: enough for every check that reads shapes and names (``--dry-run``).
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping
from typing import Any

import torch
import yaml
from torch import Tensor

from models.released.cast import _BLOCK as CAST_BLOCK
from models.released.cast import _TOP as CAST_TOP

OFFICIAL_CROP = 224  # Motionformer's and X-ViT's stored position table is the 224 crop's, whatever the crop
PYSLOWFAST_DATASETS = {"kinetics400": "Kinetics", "kinetics600": "Kinetics", "ssv2": "Ssv2",
                       "epic_kitchens100": "Epickitchens"}


def tiny_tensors(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Each tensor as zeros of its shape backed by one stored number (``torch.save`` keeps the view)."""
    return {k: torch.zeros((), dtype=torch.float32).expand(v.shape) for k, v in state.items()}


def _official_pos_table(pos: Tensor, patch: int) -> Tensor:
    """The table of the 224 crop's grid (+ CLS) that the authors' ViT stores whatever the crop (it resamples it at
    every forward): ``pos`` itself at that grid, else a new one (zeros for a stride-0 ``pos``)."""
    side = OFFICIAL_CROP // patch
    if pos.shape[1] == 1 + side ** 2:
        return pos
    shape = (1, 1 + side ** 2, pos.shape[-1])
    return torch.zeros((), dtype=pos.dtype).expand(shape) if pos.stride(-1) == 0 else \
        torch.randn(shape, dtype=pos.dtype) * 0.02


def mformer_checkpoint(state: Mapping[str, Tensor], facts: Mapping[str, Any]) -> dict[str, Any]:
    """A PySlowFast training checkpoint of Motionformer's ``VisionTransformer`` (``save_checkpoint``).

    ``facts``: frames, crop, stride, classes (an int or {"verb", "noun"}), dataset, attention ("trajectory",
    "joint", "divided"), embed_dim, depth, num_heads, tubelet, patch."""
    weights: dict[str, Tensor] = {}
    for key, value in state.items():
        divided = re.match(r"blocks\.(\d+)\.pre_attn\.(norm\.)?(.+)", key)
        if divided:
            index, norm, rest = divided.groups()
            key = f"blocks.{index}.{'norm3' if norm else 'timeattn'}.{rest}"
        elif key.startswith("patch_embed."):
            key = key.replace("patch_embed.", "patch_embed_3d.", 1)
        elif key == "time_embed":
            key = "temp_embed"
        elif key == "pos_embed":
            value = _official_pos_table(value, state["patch_embed.proj.weight"].shape[-1])
        weights[key] = value
    kernel = state["patch_embed.proj.weight"]  # the 2-D tokenizer the official model builds, unused with tubelets
    weights["patch_embed.proj.weight"] = torch.zeros((), dtype=kernel.dtype).expand(*kernel.shape[:2],
                                                                                   *kernel.shape[3:])
    weights["patch_embed.proj.bias"] = torch.zeros((), dtype=kernel.dtype).expand(kernel.shape[0])
    classes = facts["classes"]
    if isinstance(classes, Mapping):  # EPIC-KITCHENS: head0 (verbs), head1 (nouns)
        head, bias = weights.pop("head.weight"), weights.pop("head.bias")
        verbs = classes["verb"]
        weights |= {"head0.weight": head[:verbs], "head0.bias": bias[:verbs], "head1.weight": head[verbs:],
                    "head1.bias": bias[verbs:]}
    dataset = PYSLOWFAST_DATASETS[facts.get("dataset") or "kinetics400"]
    cfg = {"TRAIN": {"DATASET": dataset}, "TEST": {"DATASET": dataset},
           "DATA": {"NUM_FRAMES": facts["frames"], "SAMPLING_RATE": facts.get("stride", 4),
                    "TRAIN_CROP_SIZE": facts["crop"], "TEST_CROP_SIZE": facts["crop"], "MEAN": [0.5] * 3,
                    "STD": [0.5] * 3},
           "VIT": {"PATCH_SIZE": facts["patch"], "PATCH_SIZE_TEMP": facts["tubelet"],
                   "EMBED_DIM": facts["embed_dim"], "DEPTH": facts["depth"], "NUM_HEADS": facts["num_heads"],
                   "TEMPORAL_RESOLUTION": facts["frames"] // facts["tubelet"], "ATTN_LAYER": facts["attention"],
                   "USE_ORIGINAL_TRAJ_ATTN_CODE": True, "USE_MLP": True, "HEAD_ACT": "tanh",
                   "POS_EMBED": "separate"},
           "MODEL": {"NUM_CLASSES": classes["verb"] if isinstance(classes, Mapping) else classes}}
    return {"epoch": 35, "model_state": weights, "optimizer_state": {}, "cfg": yaml.safe_dump(cfg)}


_XVIT_HEAD = {"temporal_aggregation.cls_token": "consensus.cls_token",
              "temporal_aggregation.block.": "consensus.temporal_encoder.0.",
              "temporal_aggregation.norm.": "consensus.mlp_head.0.",
              "temporal_aggregation.fc.": "consensus.mlp_head.1.", "head.": "consensus.mlp_head.4."}


def xvit_checkpoint(state: Mapping[str, Tensor], facts: Mapping[str, Any]) -> dict[str, Any]:
    """A PySlowFast training checkpoint of X-ViT's ``XVIT``. ``facts``: frames, crop, classes, dataset, shift_div,
    num_segments, head_dim (the temporal head's width and MLP), head_heads, base_model (the timm name, default
    ViT-B/16's)."""
    weights: dict[str, Tensor] = {}
    for key, value in state.items():
        head = next((new + key[len(old):] for old, new in _XVIT_HEAD.items() if key.startswith(old)), None)
        if head:
            weights[head] = value
        elif key == "time_embed":  # the backbone's 8 entries, repeated over the clip
            weights["base_model.temp_embed"] = value[:, :8].unsqueeze(2)
        elif key == "patch_embed.proj.weight":
            weights["base_model.patch_embed.proj.weight"] = value[:, :, 0]
        elif key == "pos_embed":
            weights["base_model.pos_embed"] = _official_pos_table(value, state["patch_embed.proj.weight"].shape[-1])
        else:
            weights[f"base_model.{key}"] = value
    width = state["cls_token"].shape[-1]
    weights["new_fc.weight"] = torch.zeros(()).expand(facts["classes"], width)  # built, unused with "vit"
    weights["new_fc.bias"] = torch.zeros(()).expand(facts["classes"])
    dataset = PYSLOWFAST_DATASETS[facts.get("dataset") or "kinetics400"]
    cfg = {"TRAIN": {"DATASET": dataset.lower()}, "TEST": {"DATASET": dataset.lower()},
           "DATA": {"NUM_FRAMES": facts["frames"], "TRAIN_CROP_SIZE": facts["crop"], "TEST_CROP_SIZE": facts["crop"],
                    "SAMPLING_RATE": 16, "MEAN": [0.5] * 3, "STD": [0.5] * 3},
           "XVIT": {"BASE_MODEL": facts.get("base_model", "vit_base_patch16_224_in21k"), "CONSENSUS_TYPE": "vit",
                    "USE_XVIT": True,
                    "SHIFT_DIV": facts["shift_div"], "NUM_SEGMENTS": facts["num_segments"],
                    "LOCATIONS_LIST": list(range(15))},
           "TEMPORAL_HEAD": {"HIDDEN_DIM": facts["head_dim"], "MLP_DIM": facts["head_dim"],
                             "NUM_ATTENTION_HEADS": facts["head_heads"], "NUM_HIDDEN_LAYERS": 1},
           "MODEL": {"NUM_CLASSES": facts["classes"], "DROPOUT_RATE": 0.5}}
    return {"epoch": 30, "model_state": weights, "optimizer_state": {}, "cfg": yaml.safe_dump(cfg)}


_TOKSHIFT_BLOCK = {"norm1.": "attention_norm.", "norm2.": "ffn_norm.", "attn.proj.": "attn.out.",
                   "mlp.fc1.": "ffn.fc1.", "mlp.fc2.": "ffn.fc2."}
_TOKSHIFT_TOP = {"patch_embed.proj.": "transformer.embeddings.patch_embeddings.",
                 "pos_embed": "transformer.embeddings.position_embeddings",
                 "cls_token": "transformer.embeddings.cls_token", "norm.": "transformer.encoder.encoder_norm.",
                 "head.": "head."}


def tokshift_checkpoint(state: Mapping[str, Tensor], facts: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """TokShift-Transformer's training checkpoint (``main_ddp_shift_v3.py`` ``save_checkpoint``): the DDP model's
    state dict under ``module.base_model.``, q, k, v as three Linear layers."""
    weights: dict[str, Tensor] = {}
    for key, value in state.items():
        block = re.match(r"blocks\.(\d+)\.(.+)", key)
        if block:
            index, rest = block.groups()
            root = f"transformer.encoder.layer.{index}."
            qkv = re.fullmatch(r"attn\.qkv\.(weight|bias)", rest)
            if qkv:
                for name, part in zip(("query", "key", "value"), value.chunk(3)):
                    weights[f"{root}attn.{name}.{qkv.group(1)}"] = part
                continue
            old = next(o for o in _TOKSHIFT_BLOCK if rest.startswith(o))
            weights[root + _TOKSHIFT_BLOCK[old] + rest[len(old):]] = value
            continue
        old = next(o for o in _TOKSHIFT_TOP if key.startswith(o))
        if old == "patch_embed.proj." and value.ndim == 5:
            value = value[:, :, 0]
        weights[_TOKSHIFT_TOP[old] + key[len(old):]] = value
    return {"epoch": 18, "state_dict": {f"module.base_model.{k}": v for k, v in weights.items()}, "best_acc1": 0.0,
            "optimizer": {}, "scheduler": {}}


_CAST_ADAPTERS = ("S_Adapter", "S_MLP_Adapter", "T_Adapter", "T_MLP_Adapter", "noun_last_Adapter",
                  "verb_last_Adapter")


def cast_checkpoint(state: Mapping[str, Tensor], facts: Mapping[str, Any] | None = None,
                    deepspeed: bool = False) -> dict[str, Any]:
    """CAST's checkpoint: DeepSpeed's model states (weights under ``module``) or ``save_model``'s ``.pth`` (under
    ``model``, beside the run's ``args``)."""
    weights: dict[str, Tensor] = {}
    templates = sorted(((t, o) for o, t in CAST_BLOCK.items()), key=lambda item: -len(item[0]))
    tops = sorted(((t, o) for o, t in CAST_TOP.items()), key=lambda item: -len(item[0]))
    for key, value in state.items():
        qkv_bias = re.fullmatch(r"temporal\.blocks\.(\d+)\.attn\.qkv\.bias", key)
        if qkv_bias:  # VideoMAE's attention has no key bias
            q, _, v = value.chunk(3)
            weights |= {f"blocks.{qkv_bias.group(1)}.attn.q_bias": q, f"blocks.{qkv_bias.group(1)}.attn.v_bias": v}
            continue
        block = re.match(r"(?:spatial\.blocks|temporal\.blocks|exchange)\.(\d+)\.", key)
        found = None
        if block:
            index = block.group(1)
            found = next(((f"blocks.{index}.{o}", t.format(n=index)) for t, o in templates
                          if key == t.format(n=index) or key.startswith(t.format(n=index) + ".")), None)
        else:
            found = next(((o, t) for t, o in tops if key == t or key.startswith(t + ".")), None)
        official, ours = found
        rest = key[len(ours):]
        if official.split(".")[-1] in _CAST_ADAPTERS:
            rest = rest.replace(".fc", ".D_fc")
        if key == "spatial.cls_token":
            value = value.reshape(-1)
        elif key == "spatial.pos_embed":
            value = value[0]
        weights[official + rest] = value
    if deepspeed:
        return {"module": weights, "epoch": 49, "ds_version": "0.8.0", "global_steps": 1}
    args = argparse.Namespace(**{k: v for k, v in (facts or {}).items() if k in ("data_set", "nb_classes",
                                                                                  "num_frames", "input_size")})
    return {"model": weights, "optimizer": {}, "epoch": 49, "scaler": {}, "args": args}


WRITERS = {"mformer": mformer_checkpoint, "xvit": xvit_checkpoint, "tokshift": tokshift_checkpoint,
           "cast": cast_checkpoint}
