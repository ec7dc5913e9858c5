"""Pretrained experts from local files: key mapping of the released checkpoints onto ``FrameExpert`` /
``TubeletExpert`` (pure functions), and the loader ``models.load_pretrained`` dispatches to for an expert.

Sources (``ModelConfig.pretrained = {"spatial": ..., "temporal": ...}``):

- ``clip:FILE``: OpenAI CLIP (a plain state dict, or ``clip:torchscript:FILE`` for OpenAI's ``ViT-B-16.pt``, a
  TorchScript archive whose tensors are then read without running its code: ``models.weights``) in OpenAI's layout:
  ``visual.conv1.weight`` -> ``patch_embed.proj.weight``, ``visual.class_embedding`` -> ``cls_token``,
  ``visual.positional_embedding`` -> ``pos_embed``, ``visual.ln_pre`` -> ``norm_pre``,
  ``visual.transformer.resblocks.N.{ln_1, attn.in_proj_weight/in_proj_bias, attn.out_proj, ln_2, mlp.c_fc,
  mlp.c_proj}`` -> ``blocks.N.{norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2}``, ``visual.ln_post`` ->
  ``norm``. ``visual.proj`` (the image-text projection) and the text tower are not used.
- ``videomae:FILE``: official VideoMAE, fine-tuned (``patch_embed.proj`` 5-D, ``blocks.N.attn.qkv.weight``,
  ``attn.q_bias`` / ``attn.v_bias``, ``attn.proj``, ``norm1/norm2``, ``mlp.fc1/fc2``, ``fc_norm``) or pretraining
  (nested under ``model``, prefix ``encoder.``, final ``norm``; decoder, mask token and head are dropped).
  ``q_bias``/``v_bias`` become ``attn.qkv.bias = [q_bias, 0, v_bias]``. The final LayerNorm (``fc_norm`` or
  ``norm``) is not loaded: the expert's pooled ``norm`` starts at the identity, as in the official CAST code (its
  ``vmae_fc_norm`` matches no checkpoint key, ``util_tools/utils.py: load_bidir_weights``) and in VideoMAE's
  fine-tuning from a pretraining checkpoint (whose encoder ``norm`` has no place there). A stored ``pos_embed``
  must be the fixed sinusoidal table (which the expert recomputes); a learned one is refused.
- ``vit:FILE`` or ``vit:timm:NAME``: a timm image ViT (ImageNet-21K ViT-B/16 for Tables 5/6), keys as they are
  (``norm`` -> ``norm``); ``head.*`` is dropped.
- a plain FILE: this expert's own layout (e.g. a tiny expert pretrained here), possibly nested/prefixed as a
  training script saves it.

Each FILE may carry the ``torchscript:`` opt-in (``videomae:torchscript:FILE``...); without it a TorchScript archive
is refused, naming the file.

A positional table of another grid is resampled (logged). A checkpoint whose tensors do not fit names the first
mismatching keys and stops; so does one that lacks a weight of the frozen expert.
"""

from __future__ import annotations

import logging
import re

import torch
from timm.layers import resample_abs_pos_embed
from torch import Tensor, nn

from ..weights import read_weights, strip_wrapper_prefixes, timm_weights
from .layers import sinusoid_table

_logger = logging.getLogger(__name__)
_CLIP_BLOCK = {"ln_1": "norm1", "ln_2": "norm2", "attn.in_proj_weight": "attn.qkv.weight",
               "attn.in_proj_bias": "attn.qkv.bias", "attn.out_proj": "attn.proj", "mlp.c_fc": "mlp.fc1",
               "mlp.c_proj": "mlp.fc2"}
_CLIP_TOP = {"conv1.weight": "patch_embed.proj.weight", "class_embedding": "cls_token",
             "positional_embedding": "pos_embed", "ln_pre": "norm_pre", "ln_post": "norm"}


def clip_to_expert(state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
    """OpenAI CLIP layout (module doc) -> ``FrameExpert`` names. Keys outside the visual tower are dropped."""
    visual = {k.removeprefix("visual."): v for k, v in state_dict.items() if k.startswith("visual.")}
    if not visual:  # a visual-tower-only dict
        visual = dict(state_dict)
    out = {}
    for key, value in visual.items():
        match = re.match(r"transformer\.resblocks\.(\d+)\.(.+)$", key)
        if match:
            block, rest = match.groups()
            name = next((new + rest[len(old):] for old, new in _CLIP_BLOCK.items() if rest.startswith(old)), None)
            if name is not None:
                out[f"blocks.{block}.{name}"] = value
            continue
        name = next((new + key[len(old):] for old, new in _CLIP_TOP.items() if key.startswith(old)), None)
        if name == "cls_token":
            value = value.reshape(1, 1, -1)
        elif name == "pos_embed":
            value = value.unsqueeze(0)
        if name is not None:
            out[name] = value
        elif key != "proj":
            _logger.info("CLIP key %s has no counterpart in the expert; not used", key)
    return out


def videomae_to_expert(state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
    """Official VideoMAE layout (fine-tuned, or a pretraining encoder after its prefix is stripped) ->
    ``TubeletExpert`` names."""
    out, biases = {}, {}
    for key, value in state_dict.items():
        match = re.match(r"(blocks\.\d+\.attn)\.(q_bias|v_bias)$", key)
        if match:
            biases.setdefault(match.group(1), {})[match.group(2)] = value
        elif key.startswith(("fc_norm.", "norm.")):
            continue  # the pooled LayerNorm starts at the identity (module doc)
        elif key == "pos_embed":
            _check_fixed_table(value)
        elif key.startswith(("decoder", "encoder_to_decoder", "mask_token", "head.")):
            continue  # the pretraining decoder, the classifier
        else:
            out[key] = value
    for attn, qv in biases.items():
        if set(qv) != {"q_bias", "v_bias"}:
            raise ValueError(f"VideoMAE checkpoint has {sorted(qv)} for {attn} but needs both q_bias and v_bias")
        out[f"{attn}.qkv.bias"] = torch.cat([qv["q_bias"], torch.zeros_like(qv["q_bias"]), qv["v_bias"]])
    return out


def _check_fixed_table(pos: Tensor) -> None:
    """A stored position table must be VideoMAE's fixed sinusoidal one (recomputed by the expert); a learned table
    belongs to another structure and must not be dropped unnoticed."""
    expected = sinusoid_table(pos.shape[-2], pos.shape[-1]).reshape(pos.shape).to(pos.dtype)
    if not torch.allclose(pos, expected, atol=1e-5):
        raise ValueError(f"VideoMAE checkpoint has a pos_embed {tuple(pos.shape)} that is not the fixed sinusoidal "
                         f"table: a learned position table, which the VideoMAE ViT-B expert does not have")


def vit_to_expert(state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
    """timm image ViT -> ``FrameExpert`` names (identical but for the classifier, which is dropped)."""
    return {k: v for k, v in state_dict.items() if not k.startswith(("head.", "fc_norm.", "pre_logits."))}


_MAPPINGS = {"clip": clip_to_expert, "videomae": videomae_to_expert, "vit": vit_to_expert}
EXPERT_SOURCE_KINDS = tuple(_MAPPINGS)  # the "kind:FILE" prefixes an expert source may carry


def _fit_pos_embed(state_dict: dict[str, Tensor], expert: nn.Module) -> None:
    """Resample a frame expert's (1, 1 + N, D) table to the expert's grid, in place."""
    pos = state_dict.get("pos_embed")
    target = getattr(expert, "pos_embed", None)
    if pos is None or target is None or pos.shape == target.shape or pos.ndim != 3:
        return
    old, new = int(round((pos.shape[1] - 1) ** 0.5)), int(round((target.shape[1] - 1) ** 0.5))
    if old * old + 1 != pos.shape[1] or pos.shape[2] != target.shape[2]:
        return  # reported as a shape mismatch
    _logger.info("resampling pos_embed grid %s -> %s", (old, old), (new, new))
    state_dict["pos_embed"] = resample_abs_pos_embed(pos, new_size=[new, new], old_size=[old, old],
                                                     num_prefix_tokens=1)


def load_expert(expert: nn.Module, source: str) -> dict[str, list[str]]:
    """Load ``source`` (module doc) into ``expert`` in place; returns ``{"missing": [...], "unexpected": [...]}``.

    Trainable parts the checkpoint cannot have (adapters, AIM's time embedding) and the last LayerNorm may be
    missing; any other missing weight, or any tensor of another shape, raises naming the first keys."""
    kind, _, rest = source.partition(":") if isinstance(source, str) else ("", "", "")
    if kind in _MAPPINGS:
        if rest.startswith("timm:"):
            if kind != "vit":
                raise ValueError(f"{source}: a timm:NAME source is only valid as vit:timm:NAME")
            raw = timm_weights(rest.removeprefix("timm:"))
        else:
            raw, _ = read_weights(rest)
        expected_raw = {"clip": {"visual.conv1.weight", "conv1.weight"},
                        "videomae": {"patch_embed.proj.weight"}, "vit": {"patch_embed.proj.weight"}}[kind]
        state_dict = _MAPPINGS[kind](strip_wrapper_prefixes(raw, expected_raw))
    else:
        kind = "own layout"
        state_dict = strip_wrapper_prefixes(read_weights(source)[0], set(expert.state_dict()))
    _fit_pos_embed(state_dict, expert)
    target = expert.state_dict()
    mismatched = [f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(target[k].shape)}"
                  for k, v in state_dict.items() if k in target and v.shape != target[k].shape]
    if mismatched:
        raise ValueError(f"checkpoint {source} ({kind}) does not fit the {type(expert).__name__}: first mismatches "
                         f"{mismatched[:5]}")
    missing = [k for k in target if k not in state_dict]
    frozen_missing = [k for k in missing if not ("adapter" in k or "time_embed" in k or k.startswith("norm."))]
    if frozen_missing:
        raise KeyError(f"checkpoint {source} ({kind}) lacks expert weights, first: {frozen_missing[:5]} "
                       f"({len(frozen_missing)} in all)")
    unexpected = [k for k in state_dict if k not in target]
    expert.load_state_dict({k: v for k, v in state_dict.items() if k in target}, strict=False)
    _logger.info("loaded %s into %s: %d tensors; left at init: %s; unused: %s", source, type(expert).__name__,
                 len(state_dict) - len(unexpected), missing, unexpected)
    return {"missing": missing, "unexpected": unexpected}
