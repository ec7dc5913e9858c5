"""Initialise a VideoViT from an image ViT (timm layout) or from one of our own checkpoints.

``checkpoint_filter_fn`` is a pure function from a state dict to a state dict that fits the model:
2-D patch kernels are inflated to tubelets, the spatial position table is resampled to the model's grid (and
tiled over time for a joint table), and a classifier of another class count is dropped. Parameters an image
model does not have (``time_embed``, the trajectory ``proj_q``/``proj_kv``, the divided ``temporal_*``, X-ViT's
``temporal_aggregation.*``) are left at their initialisation. Every resize is logged. A frame-wise model
(``cls_layout="per_frame"``, ``tubelet_size=1``, ``pos_embed="spatial"``) has exactly an image ViT's parameters.
"""

from __future__ import annotations

import logging
import math
import os
import re
from typing import Literal

import torch
from einops import repeat
from timm.layers import resample_abs_pos_embed, resample_patch_embed
from torch import Tensor

from .released.mformer import OFFICIAL_PREFIX, official_checkpoint_filter_fn
from .video_vit import VideoViT
from .weights import read_weights, strip_wrapper_prefixes, timm_weights

_logger = logging.getLogger(__name__)

# Weights an image ViT has and every variant needs; missing any of them means the checkpoint does not fit.
_BACKBONE = re.compile(r"^(patch_embed\.proj\.|cls_token$|pos_embed$|norm\.|"
                       r"blocks\.\d+\.(norm1|norm2|attn\.qkv|attn\.proj|mlp\.fc1|mlp\.fc2)\.)")


TubeletInit = Literal["central", "official", "average"]
TUBELET_INITS = ("central", "official", "average")


def inflate_patch_embed(weight: Tensor, tubelet_size: int, tubelet_init: TubeletInit = "central") -> Tensor:
    """(D, C, p, p) image kernel -> (D, C, tubelet_size, p, p) tubelet kernel.

    "central" (the paper's "central frame initialization", cited from ViViT) puts the 2-D kernel in temporal
    slice ``tubelet_size // 2`` (ViViT's floor(t/2)) and zeros elsewhere, so a tubelet embeds like that frame.
    For an odd depth this is the middle frame; an even depth has no middle frame, and for the paper's 2x16x16
    tubelets it is the second of the two (slice 1), not the first.

    "official" is the rule of the official Motionformer code (``slowfast/models/build.py``): zeros, then the
    2-D kernel in slice ``math.floor(tubelet_size / 2)`` -- for 2-frame tubelets the second temporal slice. That
    is the same slice as "central" for every depth (tests/models/test_pretrained.py checks depths 1-4), so the two
    options give identical kernels: the paper's wording and the official code differ only in name here. The
    option exists so that a run can state that it follows the official code.

    "average" replicates the kernel divided by ``tubelet_size``, so a tubelet of identical frames embeds like
    one frame (I3D-style inflation; neither the paper's nor the official choice).
    """
    if tubelet_init in ("central", "official"):
        index = tubelet_size // 2 if tubelet_init == "central" else math.floor(tubelet_size / 2)
        out = weight.new_zeros(weight.shape[0], weight.shape[1], tubelet_size, *weight.shape[2:])
        out[:, :, index] = weight
        return out
    if tubelet_init == "average":
        return repeat(weight, "o c p q -> o c t p q", t=tubelet_size) / tubelet_size
    raise ValueError(f"tubelet_init must be one of {TUBELET_INITS}, got {tubelet_init!r}")


def _adapt_patch_embed(weight: Tensor, model: VideoViT, tubelet_init: str) -> Tensor:
    target = model.patch_embed.proj.weight.shape  # (D, C, tubelet, p, p)
    if weight.ndim == 5:
        return weight  # already a video kernel; a shape mismatch is reported by load_pretrained
    if tuple(weight.shape[-2:]) != tuple(target[-2:]):
        _logger.info("resampling patch embedding %s -> patch %s", tuple(weight.shape), tuple(target[-2:]))
        weight = resample_patch_embed(weight, list(target[-2:]))
    _logger.info("inflating patch embedding %s -> %s (%s)", tuple(weight.shape), tuple(target), tubelet_init)
    return inflate_patch_embed(weight, target[2], tubelet_init)


def _adapt_pos_embed(pos: Tensor, model: VideoViT, spatial_source: bool = True) -> Tensor:
    """``pos`` resampled to the model's grid (and tiled over time for a joint table). ``spatial_source``: the table
    is known to be one image's (an image ViT's, or a ``separate`` video model's beside its ``time_embed``); a video
    checkpoint without ``time_embed`` may hold a joint table, which is only taken when it equals the model's."""
    target = model.pos_embed.shape
    if pos.shape == target:
        return pos
    if not spatial_source:
        # 1 + T*h*w is a square whenever T is (T = 4: 8 frames in 2-frame tubelets), so a joint table read as a
        # square image grid would be resampled and tiled into nonsense without any error.
        raise ValueError(f"pos_embed {tuple(pos.shape)} of a video checkpoint without time_embed (a spatial table "
                         f"of a frame-wise model, or a joint table over several frames: the shape cannot tell "
                         f"which) differs from the model's {tuple(target)}; only a table of the same shape loads "
                         f"from such a checkpoint (an image ViT's or a separate-layout model's is resampled)")
    num_t, grid_h, grid_w = model.grid_size
    side = math.isqrt(pos.shape[1] - 1)
    if side * side != pos.shape[1] - 1:
        raise ValueError(f"pos_embed {tuple(pos.shape)} is neither {tuple(target)} nor a square spatial table "
                         f"with one CLS slot")
    if (side, side) != (grid_h, grid_w):
        _logger.info("resampling pos_embed grid %s -> %s", (side, side), (grid_h, grid_w))
        # Plain bicubic, as the official Motionformer forward resizes its 14x14 table for other crops (Mformer-HR's
        # 336): timm's antialiased default uses another cubic kernel even when upsampling.
        pos = resample_abs_pos_embed(pos, new_size=[grid_h, grid_w], old_size=[side, side], num_prefix_tokens=1,
                                     antialias=False)
    if model.pos_embed_type == "joint":
        # Every frame starts from the image's spatial table; the CLS slot stays single.
        _logger.info("tiling spatial pos_embed over %d frames for a joint table", num_t)
        pos = torch.cat([pos[:, :1], repeat(pos[:, 1:], "one n d -> one (t n) d", t=num_t)], dim=1)
    return pos


def checkpoint_filter_fn(state_dict: dict[str, Tensor], model: VideoViT,
                         tubelet_init: TubeletInit = "central") -> dict[str, Tensor]:
    """Adapt a timm image-ViT (or VideoViT) state dict to ``model``; returns a new dict.

    Args:
        state_dict: weights with timm names (``patch_embed.proj.weight``, ``pos_embed``, ``blocks.N.attn.qkv.*``...).
        model: the model the weights are for; only its shapes and configuration are read.
        tubelet_init: how a 2-D patch kernel becomes a tubelet kernel ("central", "official" or "average"; see
            ``inflate_patch_embed``).
    """
    if tubelet_init not in TUBELET_INITS:
        raise ValueError(f"tubelet_init must be one of {TUBELET_INITS}, got {tubelet_init!r}")
    target = model.state_dict()
    kernel = state_dict.get("patch_embed.proj.weight")
    spatial_source = kernel is None or kernel.ndim == 4 or "time_embed" in state_dict
    out = {}
    for key, value in state_dict.items():
        if key == "patch_embed.proj.weight":
            value = _adapt_patch_embed(value, model, tubelet_init)
        elif key == "pos_embed":
            value = _adapt_pos_embed(value, model, spatial_source)
        elif key.startswith("head.") and (key not in target or target[key].shape != value.shape):
            _logger.info("dropping %s %s: the model's classifier is %s", key, tuple(value.shape),
                         tuple(target[key].shape) if key in target else "absent")
            continue
        out[key] = value
    return out


def _read_state_dict(source: str | os.PathLike) -> tuple[dict[str, Tensor], bool]:
    """``read_weights`` of a file, or the weights of a ``timm:NAME`` source."""
    if isinstance(source, str) and source.startswith("timm:"):
        return timm_weights(source.removeprefix("timm:")), False
    return read_weights(source)


def load_pretrained(model: VideoViT, source: str | os.PathLike, strict_backbone: bool = True,
                    tubelet_init: TubeletInit = "central") -> dict[str, list[str]]:
    """Load weights into ``model`` in place through ``checkpoint_filter_fn``.

    Args:
        model: the model to initialise.
        source: a local checkpoint (``.pth``/``.pt`` state dict, possibly nested under "model"/"state_dict", or
            ``.safetensors``), ``"timm:<model_name>"`` to fetch timm's pretrained weights, or ``"official:FILE"``
            for a checkpoint of the official Motionformer code (``models.released.mformer``). A TorchScript archive
            is refused unless its FILE is written ``torchscript:FILE`` (``models.weights``). A model with a
            ``load_checkpoint_source(source)`` method (CAST's experts, ``models.cast.checkpoints``) reads it itself.
        strict_backbone: raise if a backbone weight (patch/pos embedding, CLS, qkv, proj, mlp, norms) is missing
            from the checkpoint; variant-specific parameters may always be missing.
        tubelet_init: inflation of a 2-D patch kernel ("central", "official" or "average"; see
            ``inflate_patch_embed``).

    Returns:
        ``{"missing": [...], "unexpected": [...]}``: model keys left at init and checkpoint keys not used.
    """
    own_loader = getattr(model, "load_checkpoint_source", None)
    if callable(own_loader):  # a module that reads its own checkpoint layouts (CAST's experts: clip:, videomae:)
        return own_loader(str(source))
    target = model.state_dict()
    official = isinstance(source, str) and source.startswith(OFFICIAL_PREFIX)
    raw, whole_run = _read_state_dict(source.removeprefix(OFFICIAL_PREFIX) if official else source)
    if official:  # the official key layout -> ours, before the checks every checkpoint gets
        raw = official_checkpoint_filter_fn(raw, model)
    state_dict = strip_wrapper_prefixes(raw, set(target))
    if not target.keys() & state_dict.keys():  # another model altogether: nothing would load
        raise KeyError(f"checkpoint {source} has none of the model's parameters: it holds {_first(state_dict)}, "
                       f"the model expects {_first(target)}")
    try:
        state_dict = checkpoint_filter_fn(state_dict, model, tubelet_init)
    except ValueError as err:
        raise ValueError(f"checkpoint {source}: {err}") from None
    missing = [k for k in target if k not in state_dict]
    unexpected = [k for k in state_dict if k not in target]
    backbone_missing = [k for k in missing if _BACKBONE.match(k)]
    if strict_backbone and backbone_missing:
        raise KeyError(f"checkpoint {source} lacks backbone weights {_first(backbone_missing)}: it is not a "
                       f"checkpoint of this architecture (from Python, strict_backbone=False loads it anyway)")
    # A trained run of ours is the whole model: a parameter it lacks (other than a classifier dropped for another
    # class count) means another variant, which must not start from random values unnoticed.
    run_missing = [k for k in missing if not k.startswith("head.")]
    if whole_run and run_missing:
        raise KeyError(f"checkpoint {source} is a trained run of another model variant: it lacks "
                       f"{_first(run_missing)} (and has {_first(unexpected) if unexpected else 'no extra keys'})")
    mismatched = [f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(target[k].shape)}"
                  for k, v in state_dict.items() if k in target and v.shape != target[k].shape]
    if mismatched:
        raise ValueError(f"checkpoint {source} does not fit the model: {_first(mismatched)}")
    model.load_state_dict({k: v for k, v in state_dict.items() if k in target}, strict=False)
    _logger.info("loaded %s: %d tensors; left at init: %s; unused: %s", source,
                 len(state_dict) - len(unexpected), missing, unexpected)
    return {"missing": missing, "unexpected": unexpected}


def _first(keys, count: int = 5) -> str:
    """The first ``count`` keys, and how many more: an error names the first mismatches, not thousands."""
    keys = list(keys)
    more = f" and {len(keys) - count} more" if len(keys) > count else ""
    return ", ".join(keys[:count]) + more
