"""CAST's checkpoints (KHU-VLL/CAST, ``models/bidir_modeling_crossattn.py``) as our ``CAST`` (``cast_base``).

The official scripts train with ``--enable_deepspeed``: ``save_model`` (``util_tools/utils.py``) then writes a
DeepSpeed tag folder ``checkpoint-N/`` whose ``mp_rank_00_model_states.pt`` holds the weights under ``module``
(DeepSpeed's fp16 copy; ``models.released.deepspeed``); without DeepSpeed it writes ``checkpoint-N.pth`` with
``{"model", "optimizer", "epoch", "scaler", "args"}``. Its evaluation loader (``laod_eval_weights``) takes
``checkpoint[k]`` for k in ``model|module`` and strips one ``backbone.``, ``encoder.`` or ``module.`` prefix per key;
so does ``official_weights`` here. ``bidir_vit_base_patch16_224`` (K400, SSv2) has one classifier ``head`` on
``noun_last_Adapter(f_s) + verb_last_Adapter(f_t)``; ``compo_bidir_vit_base_patch16_224`` (EPIC-KITCHENS-100) has
``head_noun`` (300) on the CLIP feature and ``head_verb`` (97) on the VideoMAE feature, and returns (nouns, verbs),
which our model gives as [verbs | nouns].

Official names -> ours (``N`` a block; an adapter's ``D_fc1``, ``D_fc2`` become ``fc1``, ``fc2``):

- CLIP: ``clip_conv1``, ``clip_class_embedding``, ``clip_positional_embedding``, ``clip_ln_pre``, ``clip_ln_post``
  -> ``spatial.patch_embed.proj``, ``spatial.cls_token``, ``spatial.pos_embed``, ``spatial.norm_pre``,
  ``spatial.norm``; ``blocks.N.clip_ln_1``, ``clip_attn.in_proj_*``, ``clip_attn.out_proj``, ``S_Adapter``,
  ``clip_ln_2``, ``clip_mlp.c_fc``, ``clip_mlp.c_proj``, ``S_MLP_Adapter`` -> ``spatial.blocks.N.norm1``,
  ``attn.qkv.*``, ``attn.proj``, ``attn_adapter``, ``norm2``, ``mlp.fc1``, ``mlp.fc2``, ``mlp_adapter``.
- VideoMAE: ``patch_embed.proj``, ``vmae_fc_norm`` -> ``temporal.patch_embed.proj``, ``temporal.norm``;
  ``blocks.N.{norm1, attn.qkv.weight, attn.proj, norm2, mlp.fc1, mlp.fc2}`` -> ``temporal.blocks.N.`` the same,
  ``attn.q_bias`` and ``attn.v_bias`` -> ``attn.qkv.bias = [q, 0, v]``, ``T_Adapter``, ``T_MLP_Adapter`` ->
  ``attn_adapter``, ``mlp_adapter``.
- B-CAST: ``blocks.N.cross_{s,t}_down``, ``ln_{s,t}_cross``, ``cross_{s,t}_up`` -> ``exchange.N.down_{s,t}``,
  ``norm_{s,t}``, ``up_{s,t}``; ``t2s_cross.{clip_time_pos, vmae_time_pos, t2s_q, t2s_q_bias, t2s_kv, t2s_kv_bias,
  t2s_proj}`` -> ``exchange.N.t2s.{query_pos, key_pos, q.weight, q.bias, kv.weight, kv.bias, proj}``;
  ``s2t_cross.{vmae_space_pos, clip_space_pos, s2t_q, s2t_q_bias, s2t_kv, s2t_kv_bias, t2s_proj}`` ->
  ``exchange.N.s2t.`` the same (its queries come from VideoMAE, so its query table is ``vmae_space_pos``).
- Heads: ``noun_last_Adapter``, ``verb_last_Adapter``, ``head`` -> ``head_adapter_spatial``,
  ``head_adapter_temporal``, ``head``; ``head_noun``, ``head_verb`` -> ``head_spatial``, ``head_temporal``.

The official VideoMAE position table is a ``torch.FloatTensor``; ``required_model`` asks for ``float32_pos_table``,
with which our model computes the official function in float64 too. The heads count is not stored (12 in the
official ViT-B models, the only ones the code defines).
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from ..cast.model import CAST
from .base import ReleasedLayout, RequiredModel, differing

_NESTING = ("model", "module")  # laod_eval_weights' --model_key default 'model|module'
_PREFIXES = ("backbone.", "encoder.", "module.")  # laod_eval_weights strips one of them per key
_TOP = {"clip_conv1": "spatial.patch_embed.proj", "clip_class_embedding": "spatial.cls_token",
        "clip_positional_embedding": "spatial.pos_embed", "clip_ln_pre": "spatial.norm_pre",
        "clip_ln_post": "spatial.norm", "patch_embed.proj": "temporal.patch_embed.proj",
        "vmae_fc_norm": "temporal.norm", "noun_last_Adapter": "head_adapter_spatial",
        "verb_last_Adapter": "head_adapter_temporal", "head": "head", "head_noun": "head_spatial",
        "head_verb": "head_temporal"}
_BLOCK = {"clip_ln_1": "spatial.blocks.{n}.norm1", "clip_ln_2": "spatial.blocks.{n}.norm2",
          "clip_attn.in_proj_weight": "spatial.blocks.{n}.attn.qkv.weight",
          "clip_attn.in_proj_bias": "spatial.blocks.{n}.attn.qkv.bias",
          "clip_attn.out_proj": "spatial.blocks.{n}.attn.proj", "clip_mlp.c_fc": "spatial.blocks.{n}.mlp.fc1",
          "clip_mlp.c_proj": "spatial.blocks.{n}.mlp.fc2", "S_Adapter": "spatial.blocks.{n}.attn_adapter",
          "S_MLP_Adapter": "spatial.blocks.{n}.mlp_adapter", "norm1": "temporal.blocks.{n}.norm1",
          "norm2": "temporal.blocks.{n}.norm2", "attn.qkv.weight": "temporal.blocks.{n}.attn.qkv.weight",
          "attn.proj": "temporal.blocks.{n}.attn.proj", "mlp.fc1": "temporal.blocks.{n}.mlp.fc1",
          "mlp.fc2": "temporal.blocks.{n}.mlp.fc2", "T_Adapter": "temporal.blocks.{n}.attn_adapter",
          "T_MLP_Adapter": "temporal.blocks.{n}.mlp_adapter", "cross_s_down": "exchange.{n}.down_s",
          "cross_t_down": "exchange.{n}.down_t", "ln_s_cross": "exchange.{n}.norm_s",
          "ln_t_cross": "exchange.{n}.norm_t", "cross_s_up": "exchange.{n}.up_s", "cross_t_up": "exchange.{n}.up_t",
          "t2s_cross.clip_time_pos": "exchange.{n}.t2s.query_pos",
          "t2s_cross.vmae_time_pos": "exchange.{n}.t2s.key_pos", "t2s_cross.t2s_q.weight": "exchange.{n}.t2s.q.weight",
          "t2s_cross.t2s_q_bias": "exchange.{n}.t2s.q.bias", "t2s_cross.t2s_kv.weight": "exchange.{n}.t2s.kv.weight",
          "t2s_cross.t2s_kv_bias": "exchange.{n}.t2s.kv.bias", "t2s_cross.t2s_proj": "exchange.{n}.t2s.proj",
          "s2t_cross.vmae_space_pos": "exchange.{n}.s2t.query_pos",
          "s2t_cross.clip_space_pos": "exchange.{n}.s2t.key_pos", "s2t_cross.s2t_q.weight": "exchange.{n}.s2t.q.weight",
          "s2t_cross.s2t_q_bias": "exchange.{n}.s2t.q.bias", "s2t_cross.s2t_kv.weight": "exchange.{n}.s2t.kv.weight",
          "s2t_cross.s2t_kv_bias": "exchange.{n}.s2t.kv.bias", "s2t_cross.t2s_proj": "exchange.{n}.s2t.proj"}
_BLOCK_KEY = re.compile(r"blocks\.(\d+)\.(.+)$")
_QV_BIAS = re.compile(r"blocks\.(\d+)\.attn\.([qv])_bias$")
# The arguments of a stored argparse.Namespace (run_bidirection.py's) that say what the network is
_ARGS = ("data_set", "nb_classes", "num_frames", "input_size", "tubelet_size", "sampling_rate", "vmae_model",
         "down_ratio", "composition", "test_num_segment", "test_num_crop")
_HEADS = {768: 12}  # the official models: bidir_ / compo_bidir_vit_base_patch16_224
# The stored --data_set (run_bidirection.py's choices) and the class counts of the released files, as our names
_DATA_SETS = {"Kinetics-400": "kinetics400", "SSV2": "ssv2", "EPIC": "epic_kitchens100"}
_BY_CLASSES = {400: "kinetics400", 174: "ssv2"}


def official_weights(checkpoint: Mapping[str, Any]) -> dict[str, Tensor] | None:
    """The weights as ``laod_eval_weights`` finds them: under ``model`` or ``module``, or the checkpoint itself;
    one ``backbone.``, ``encoder.`` or ``module.`` prefix stripped per key. None when no state dict is there."""
    weights = next((checkpoint[k] for k in _NESTING if isinstance(checkpoint.get(k), Mapping)), checkpoint)
    if not weights or not all(isinstance(v, Tensor) for v in weights.values()):
        return None
    return {next((k[len(p):] for p in _PREFIXES if k.startswith(p)), k): v for k, v in weights.items()}


class CastLayout(ReleasedLayout):
    """The released checkpoints of KHU-VLL/CAST (EPIC-KITCHENS-100, SSv2, K400), as ``.pth`` or DeepSpeed tag
    folders."""

    name = "cast"
    title = "CAST (KHU-VLL/CAST)"

    def recognise(self, checkpoint: Mapping[str, Any]) -> bool:
        weights = official_weights(checkpoint)
        return weights is not None and "clip_conv1.weight" in weights and "blocks.0.t2s_cross.t2s_q.weight" in weights

    def describe(self, checkpoint: Mapping[str, Any]) -> dict[str, Any]:
        w = official_weights(checkpoint)
        if w is None:
            raise ValueError("no state dict of tensors under 'model' or 'module'")
        width, _, patch, _ = w["clip_conv1.weight"].shape
        grid = round((w["clip_positional_embedding"].shape[0] - 1) ** 0.5)
        two_heads = "head_verb.weight" in w and "head_noun.weight" in w
        classes = ({"verb": int(w["head_verb.weight"].shape[0]), "noun": int(w["head_noun.weight"].shape[0])}
                   if two_heads else int(w["head.weight"].shape[0]) if "head.weight" in w else None)
        depth = 1 + max((int(m.group(1)) for k in w if (m := _BLOCK_KEY.match(k))), default=-1)
        args = checkpoint.get("args")
        stored = ({k: getattr(args, k) for k in _ARGS if hasattr(args, k)}
                  if isinstance(args, argparse.Namespace) else None)
        return {
            "variant": "compo_bidir" if two_heads else "bidir", "classes": classes,
            "num_classes": sum(classes.values()) if isinstance(classes, dict) else classes,
            "frames": 2 * w["blocks.0.t2s_cross.clip_time_pos"].shape[0],  # T2S time window: num_frames // 2
            "crop": grid * patch, "patch": patch, "embed_dim": width, "depth": depth, "num_heads": _HEADS.get(width),
            "tubelet": w["patch_embed.proj.weight"].shape[2],
            "down_ratio": w["blocks.0.cross_s_down.weight"].shape[0] / width,
            "adapter_ratio": w["blocks.0.S_Adapter.D_fc1.weight"].shape[0] / width,
            "dtype": str(w["clip_conv1.weight"].dtype).removeprefix("torch."),
            "dataset": _dataset(stored, classes), "epoch": checkpoint.get("epoch"), "args": stored,
            "deepspeed": checkpoint.get("ds_version") if "ds_version" in checkpoint else None,
        }

    def required_model(self, description: Mapping[str, Any]) -> RequiredModel:
        overrides: dict[str, Any] = {"num_classes": description["classes"], "num_frames": description["frames"],
                                     "img_size": description["crop"], "float32_pos_table": True}
        if (description["embed_dim"], description["depth"], description["patch"]) != (768, 12, 16):
            if description.get("num_heads") is None:
                raise ValueError(f"a {description['embed_dim']}-wide CAST is not the official ViT-B: its head count "
                                 f"is not stored")
            overrides |= {"embed_dim": description["embed_dim"], "depth": description["depth"],
                          "patch_size": description["patch"], "num_heads": description["num_heads"]}
        if description["down_ratio"] != 0.5:
            overrides["down_ratio"] = description["down_ratio"]
        if description["adapter_ratio"] != 0.25:
            overrides["adapter_ratio"] = description["adapter_ratio"]
        return RequiredModel("cast_base", overrides)

    def mismatches(self, description: Mapping[str, Any], model: nn.Module) -> list[str]:
        return model_mismatches(model, description)

    def convert(self, checkpoint: Mapping[str, Any], model: nn.Module) -> dict[str, Tensor]:
        weights = official_weights(checkpoint)
        if weights is None:
            raise ValueError("no state dict of tensors under 'model' or 'module'")
        return convert_weights(weights)


def _dataset(args: Mapping[str, Any] | None, classes: int | dict[str, int] | None) -> str | None:
    """Our dataset name: the stored ``--data_set``, else the class count's (two heads: EPIC-KITCHENS-100)."""
    named = _DATA_SETS.get(str((args or {}).get("data_set")))
    return named or ("epic_kitchens100" if isinstance(classes, dict) else _BY_CLASSES.get(classes))


def convert_weights(weights: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """The official names (module doc) -> ours. A key of no known kind keeps its name, so that the strict load
    names it."""
    out: dict[str, Tensor] = {}
    qv: dict[str, dict[str, Tensor]] = {}
    for key, value in weights.items():
        bias = _QV_BIAS.match(key)
        if bias:
            qv.setdefault(bias.group(1), {})[bias.group(2)] = value
            continue
        block = _BLOCK_KEY.match(key)
        table, rest = (_BLOCK, block.group(2)) if block else (_TOP, key)
        old = next((o for o in table if rest == o or rest.startswith(o + ".")), None)
        if old is None:
            out[key] = value
            continue
        name = table[old].format(n=block.group(1) if block else "") + rest[len(old):].replace(".D_fc", ".fc")
        if key == "clip_class_embedding":
            value = value.reshape(1, 1, -1)
        elif key == "clip_positional_embedding":
            value = value.unsqueeze(0)
        out[name] = value
    for n, parts in qv.items():
        if set(parts) == {"q", "v"}:  # VideoMAE's attention has no key bias
            out[f"temporal.blocks.{n}.attn.qkv.bias"] = torch.cat([parts["q"], torch.zeros_like(parts["q"]),
                                                                   parts["v"]])
        else:  # half of the pair keeps its official name, which the strict load names
            out |= {f"blocks.{n}.attn.{p}_bias": v for p, v in parts.items()}
    return out


def model_variant(model: nn.Module) -> tuple[str | None, list[str]]:
    """"bidir" (one head) or "compo_bidir" (verb and noun heads): the official network ``model`` computes, or None
    and what makes it neither."""
    if not isinstance(model, CAST):
        return None, [f"a CAST checkpoint is read into our CAST, not a {type(model).__name__}"]
    problems = []
    spatial, temporal = model.spatial, model.temporal
    if spatial is None or temporal is None or spatial.arch_name != "clip" or temporal.arch.source != "videomae":
        problems.append("its experts are not CLIP (spatial) and VideoMAE (temporal)")
    if model.exchange_kind != "bcast" or len(model.exchange) != len(getattr(spatial, "blocks", ())):
        problems.append("it has no B-CAST in every block (exchange='bcast', exchange_blocks=None)")
    for module in model.exchange.values():
        t2s, s2t = getattr(module, "t2s", None), getattr(module, "s2t", None)
        if (t2s is None or s2t is None or t2s.window != "time" or s2t.window != "space" or t2s.query_pos is None):
            problems.append("its B-CAST is not the official one (directions='both', t2s_window='time', "
                            "s2t_window='space', exchange_pos=True)")
            break
    for expert in (e for e in (spatial, temporal) if e is not None):
        block = expert.blocks[0]
        if block.attn_adapter is None or block.time_adapter is not None or block.mlp_adapter_scale != 0.5:
            problems.append("its experts' adapters are not the official ones (adapters=True, time_adapter=False, "
                            "mlp_adapter_scale=0.5)")
            break
    if model.fusion not in ("add", "split"):
        problems.append(f"its heads are fusion={model.fusion!r}; the official ones are 'add' (one head) or 'split' "
                        f"(verb and noun)")
    if problems:
        return None, problems
    return "compo_bidir" if model.fusion == "split" else "bidir", []


def model_mismatches(model: nn.Module, description: Mapping[str, Any]) -> list[str]:
    """Every fact of ``description`` the model contradicts, and what makes it not the official network."""
    variant, problems = model_variant(model)
    if problems:
        return problems
    verbs = model.num_verbs
    first_exchange = next(iter(model.exchange.values()))
    return differing(description, {
        "classes": {"verb": verbs, "noun": model.num_classes - verbs} if verbs else model.num_classes,
        "variant": variant, "frames": model.num_frames, "crop": model.img_size, "patch": model.spatial.patch_size,
        "embed_dim": model.embed_dim, "depth": len(model.spatial.blocks),
        "down_ratio": first_exchange.down_s.out_features / model.embed_dim,
        "adapter_ratio": model.spatial.blocks[0].attn_adapter.fc1.out_features / model.embed_dim,
    })


CAST_LAYOUT = CastLayout()

__all__ = ["CAST_LAYOUT", "CastLayout", "convert_weights", "model_mismatches", "model_variant", "official_weights"]
