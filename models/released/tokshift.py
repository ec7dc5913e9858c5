"""TokShift-Transformer's checkpoints (VideoNetworks/TokShift-Transformer, the code MSCA's ViT and TokenShift rows
re-run) as the frame-wise ``VideoViT`` (``vit_base_patch16_frame``).

The official training script (``main_ddp_shift_v3.py``, ``save_checkpoint``) saves ``{"epoch", "state_dict",
"best_acc1", "optimizer", "scheduler"}``; ``state_dict`` is the DDP-wrapped ``VideoNet``'s, its keys
``module.base_model.transformer.*`` in jeonsworld/ViT-pytorch's names and ``module.base_model.head``. Both released
networks, the video ViT (``NET: ViT``, ``vit_models/modeling.py``) and TokShift (``NET: TokShift``,
``modeling_tokshift.py``), are an image ViT on every frame whose per-frame logits ``VideoNet`` averages; TokShift
adds ``shift_tk`` before the attention and before the MLP of every block, which moves channels ``[0, C/4)`` of each
frame's class token from frame t+1 and ``[C/4, C/2)`` from frame t-1 (zeros beyond the clip). The shift has no
parameters, so the two networks' checkpoints are alike key for key, and neither stores its frame count: which of the
two a file is comes from outside it (its catalogue entry, or the file name the authors gave it).

==================================================  ============================================================
official (after ``module.base_model.``)             here
==================================================  ============================================================
``transformer.embeddings.patch_embeddings``         ``patch_embed.proj`` (Conv2d kernel given a unit time axis)
``transformer.embeddings.position_embeddings``      ``pos_embed`` (one spatial table, class token first)
``transformer.embeddings.cls_token``                ``cls_token``
``transformer.encoder.layer.N.attention_norm``      ``blocks.N.norm1``
``...attn.query``, ``attn.key``, ``attn.value``     ``blocks.N.attn.qkv`` (rows q, k, v)
``...attn.out``                                     ``blocks.N.attn.proj``
``...ffn_norm``, ``ffn.fc1``, ``ffn.fc2``           ``blocks.N.norm2``, ``mlp.fc1``, ``mlp.fc2``
``transformer.encoder.encoder_norm``                ``norm``
``head``                                            ``head`` (applied to the averaged class tokens: the average
                                                    of the per-frame logits, the head being linear)
==================================================  ============================================================

The model must be the frame-wise ViT (square patches, per-frame class tokens, a spatial position table, frame
attention, the average) and, for TokShift, shift the class tokens only, half the channels, before the attention and
the MLP of every block, in the official order (``shift_order="official"``: the first quarter from t+1).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from ..attention.frame import FrameAttention
from ..attention.temporal_shift import TemporalShift
from ..video_vit import TemporalAverage, VideoViT
from .base import ReleasedLayout, RequiredModel, differing

_ROOT = "base_model."
_PATCH = "base_model.transformer.embeddings.patch_embeddings.weight"
_POS = "base_model.transformer.embeddings.position_embeddings"
_LAYER = re.compile(r"base_model\.transformer\.encoder\.layer\.(\d+)\.(.+)$")
_BLOCK_NAMES = {"attention_norm": "norm1", "ffn_norm": "norm2", "attn.out": "attn.proj", "ffn.fc1": "mlp.fc1",
                "ffn.fc2": "mlp.fc2"}
_TOP_NAMES = {"transformer.embeddings.patch_embeddings.": "patch_embed.proj.",
              "transformer.embeddings.position_embeddings": "pos_embed",
              "transformer.embeddings.cls_token": "cls_token", "transformer.encoder.encoder_norm.": "norm.",
              "head.": "head."}
# The official backbones (vit_models/configs.py): width -> (name, depth, heads)
_BACKBONES = {768: ("ViT-B_16", 12, 12), 1024: ("ViT-L_16", 24, 16)}
VARIANTS = ("vit", "tokshift")
DATASETS = {400: "kinetics400"}  # the released files are all Kinetics-400's
# TokShift as options of the frame-wise VideoViT: the class token, C/4 channels each way (SHIFT_DIV 4), before the
# attention and the MLP, the first quarter from frame t+1 as shift_tk moves it
TOKSHIFT_OPTIONS = {"temporal_shift": "cls", "shift_fraction": 0.5, "shift_order": "official",
                    "shift_before": ("attn", "mlp")}


def official_weights(checkpoint: Mapping[str, Any]) -> dict[str, Tensor] | None:
    """The network's weights (``state_dict`` of a training checkpoint, or a bare state dict), without DDP's
    ``module.`` prefix; None when the checkpoint holds no such dict."""
    weights = checkpoint.get("state_dict", checkpoint)
    if not isinstance(weights, Mapping) or not all(isinstance(v, Tensor) for v in weights.values()):
        return None
    return {k.removeprefix("module."): v for k, v in weights.items()}


class TokShiftLayout(ReleasedLayout):
    """The released checkpoints of VideoNetworks/TokShift-Transformer (``best_vit_B8x32x224_k400.pth``,
    ``best_tokshift_B8x32x224_k400.pth`` and the other TokShift sizes)."""

    name = "tokshift"
    title = "TokShift (VideoNetworks/TokShift-Transformer)"

    def recognise(self, checkpoint: Mapping[str, Any]) -> bool:
        weights = official_weights(checkpoint)
        return weights is not None and _PATCH in weights and _POS in weights

    def describe(self, checkpoint: Mapping[str, Any]) -> dict[str, Any]:
        weights = official_weights(checkpoint)
        if weights is None:
            raise ValueError("no state dict of tensors under 'state_dict'")
        width, _, patch, _ = weights[_PATCH].shape
        grid = round((weights[_POS].shape[1] - 1) ** 0.5)
        depth = 1 + max((int(m.group(1)) for k in weights if (m := _LAYER.match(k))), default=-1)
        backbone = _BACKBONES.get(width)
        standard = backbone is not None and patch == 16 and depth == backbone[1]
        best = checkpoint.get("best_acc1")
        classes = int(weights["base_model.head.weight"].shape[0]) if "base_model.head.weight" in weights else None
        return {
            "variant": None,  # the shift has no parameters
            "variants": VARIANTS, "classes": classes, "num_classes": classes,
            "frames": None,  # no parameter depends on it
            "crop": grid * patch, "patch": patch, "embed_dim": width, "depth": depth,
            "num_heads": backbone[2] if standard else None, "backbone": backbone[0] if standard else None,
            "dataset": DATASETS.get(classes), "epoch": checkpoint.get("epoch"),
            "best_acc1": float(best) if isinstance(best, (int, float, Tensor)) else None,
        }

    def required_model(self, description: Mapping[str, Any]) -> RequiredModel:
        unknown = [k for k in ("variant", "frames") if description.get(k) is None]
        if unknown:
            raise ValueError(f"a TokShift checkpoint does not store its {' or '.join(unknown)} (the ViT and "
                             f"TokShift have the same weights, for any frame count): give them")
        if description["variant"] not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {description['variant']!r}")
        overrides: dict[str, Any] = {"num_classes": description["classes"], "img_size": description["crop"],
                                     "num_frames": description["frames"]}
        if description.get("backbone") != "ViT-B_16":
            if description.get("num_heads") is None:
                raise ValueError(f"a {description['embed_dim']}-wide, {description['depth']}-block ViT is none of "
                                 f"the official backbones {sorted(v[0] for v in _BACKBONES.values())}: its head "
                                 f"count is not stored")
            overrides |= {"embed_dim": description["embed_dim"], "depth": description["depth"],
                          "num_heads": description["num_heads"], "patch_size": description["patch"]}
        if description["variant"] == "tokshift":
            overrides |= TOKSHIFT_OPTIONS
        return RequiredModel("vit_base_patch16_frame", overrides)

    def mismatches(self, description: Mapping[str, Any], model: nn.Module) -> list[str]:
        return model_mismatches(model, description)

    def convert(self, checkpoint: Mapping[str, Any], model: nn.Module) -> dict[str, Tensor]:
        weights = official_weights(checkpoint)
        if weights is None:
            raise ValueError("no state dict of tensors under 'state_dict'")
        return convert_weights(weights)


def convert_weights(weights: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """The official names (module doc) -> ours. A key of no known kind keeps its name, so that the strict load
    names it."""
    out: dict[str, Tensor] = {}
    qkv: dict[str, dict[str, tuple[str, Tensor]]] = {}  # our qkv key -> {"query": (official key, tensor), ...}
    for key, value in weights.items():
        layer = _LAYER.match(key)
        if layer:
            block, rest = layer.groups()
            projection = re.fullmatch(r"attn\.(query|key|value)\.(weight|bias)", rest)
            if projection:
                qkv.setdefault(f"blocks.{block}.attn.qkv.{projection.group(2)}", {})[projection.group(1)] = (key,
                                                                                                             value)
                continue
            name = next((new + rest[len(old):] for old, new in _BLOCK_NAMES.items() if rest.startswith(old + ".")),
                        None)
            out[f"blocks.{block}.{name}" if name else key] = value
            continue
        rest = key.removeprefix(_ROOT)
        name = next((new + rest[len(old):] for old, new in _TOP_NAMES.items() if rest.startswith(old)), None)
        if name == "patch_embed.proj.weight":
            value = value.unsqueeze(2)  # (D, 3, p, p) -> (D, 3, 1, p, p): one frame per token
        out[name if name and key.startswith(_ROOT) else key] = value
    for name, parts in qkv.items():
        if set(parts) == {"query", "key", "value"}:
            out[name] = torch.cat([parts[p][1] for p in ("query", "key", "value")])
        else:  # an incomplete projection keeps the official names, which the strict load names
            out |= dict(parts.values())
    return out


def model_variant(model: nn.Module) -> tuple[str | None, list[str]]:
    """"vit" or "tokshift": which official network ``model`` computes, or None and what makes it neither."""
    if not isinstance(model, VideoViT):
        return None, [f"a TokShift checkpoint is read into the frame-wise VideoViT, not a {type(model).__name__}"]
    problems = []
    if model.cls_layout != "per_frame" or model.pos_embed_type != "spatial" or model.patch_embed.tubelet_size != 1:
        problems.append(f"the model is not the frame-wise ViT (cls_layout={model.cls_layout!r}, pos_embed="
                        f"{model.pos_embed_type!r}, tubelet_size={model.patch_embed.tubelet_size}; the official "
                        f"network: 'per_frame', 'spatial', 1)")
    if any(type(block.attn) is not FrameAttention for block in model.blocks):
        kinds = sorted({type(block.attn).__name__ for block in model.blocks})
        problems.append(f"its attention is {', '.join(kinds)}, not FrameAttention (MSCA, X-ViT and other exchanges "
                        f"are not in TokShift's checkpoints)")
    if not isinstance(getattr(model, "temporal_aggregation", None), TemporalAverage):
        problems.append("it does not average its frames (temporal_aggregation='average')")
    if not isinstance(model.pre_logits, nn.Identity):
        problems.append("it has a pre-logits layer (representation_size), which the official network has not")
    if problems:
        return None, problems
    shifts = [(_shifts_of(block.pre_attn), _shifts_of(block.pre_mlp)) for block in model.blocks]
    official = _shifts_of(TemporalShift(model.embed_dim, TOKSHIFT_OPTIONS["shift_fraction"],
                                        TOKSHIFT_OPTIONS["temporal_shift"], order=TOKSHIFT_OPTIONS["shift_order"]))
    if all(shift == (None, None) for shift in shifts):
        return "vit", []
    if all(shift == (official, official) for shift in shifts):
        return "tokshift", []
    return None, [f"its temporal shift is not TokShift's: TokShift moves channels [0, C/4) of each frame's class "
                  f"token from t+1 and [C/4, C/2) from t-1 before the attention and the MLP of every block; build it "
                  f"with {TOKSHIFT_OPTIONS}"]


def _shifts_of(module: nn.Module | None) -> tuple | None:
    return None if module is None else tuple(getattr(module, "shifts", ("not a TemporalShift",)))


def model_mismatches(model: nn.Module, description: Mapping[str, Any]) -> list[str]:
    """Every fact of ``description`` the model contradicts, and what makes it neither official network."""
    variant, problems = model_variant(model)
    if problems:
        return problems
    return differing(description, {
        "classes": model.num_classes, "crop": model.img_size, "patch": model.patch_embed.patch_size,
        "embed_dim": model.embed_dim, "depth": len(model.blocks), "num_heads": model.blocks[0].attn.num_heads,
        "frames": model.num_frames, "variant": variant})


TOKSHIFT_LAYOUT = TokShiftLayout()

__all__ = ["TOKSHIFT_LAYOUT", "TOKSHIFT_OPTIONS", "VARIANTS", "TokShiftLayout", "convert_weights", "model_mismatches",
           "model_variant", "official_weights"]
