"""Golden files and paper-width records of the CAST layout (``models.released.cast``), made with the official CAST
code (github.com/KHU-VLL/CAST, checked out outside this repository).

    python -m tools.released_golden.cast --official-code DIR
    python -m tools.released_golden.cast --official-code DIR --record

The first writes three cases under tests/golden/released/, each the official ``STCrossTransformer``
(``models/bidir_modeling_crossattn.py``) built with the arguments of its registered entry points but at a small size (16
wide, 2 blocks of 2 heads, 2 x 2 patches of 28 x 28 frames: 14 x 14 = 196 patches, the count its S2T position tables are
fixed to; 4 frames), every parameter random, in float64, with ``expected.pt`` (one clip and the official logits):

- ``cast_k400/checkpoint-1.pth``: ``bidir_vit_base_patch16_224``'s network with 400 classes, as ``save_model``
  (``util_tools/utils.py``) writes it without DeepSpeed: ``{"model", "optimizer", "epoch", "scaler", "args"}``, the
  arguments an ``argparse.Namespace`` with the names of ``run_bidirection.py``'s parser (those that describe the
  network), the scaler's state a GradScaler's;
- ``cast_ek100/checkpoint-1.pth``: ``compo_bidir_vit_base_patch16_224``'s network (97 verbs, 300 nouns), the same
  way;
- ``cast_ek100_deepspeed/``: the same network saved as DeepSpeed's ``engine.save_checkpoint(output_dir,
  tag="checkpoint-1")`` writes it (the fields of ``_save_checkpoint`` at DeepSpeed 3a3dfe66, the commit CAST's
  README installs, with CAST's configuration: fp16, no ZeRO, hence the FP16 optimizer's state and the module's fp16
  weights under ``module``), and the ``latest`` file; the official logits are computed from those fp16 weights.

The second compares our ``cast_base`` with both official networks at their registered size (ViT-B/16, 16 frames of
224 x 224; 400 classes, and 97 + 300), random weights, in float32, and writes one record per network into
reports/benchmarks/released_conversion.json.

The official code runs as it is but for one change, needed for the float64 golden files only and made in the
checkout: its ``LayerNorm`` subclass returns only for float16 and float32 inputs (``ret`` is unbound otherwise), so
an ``else`` branch calling ``nn.LayerNorm.forward`` unchanged is added. The script stops, saying so, when it is
missing. The model file is imported by path (its package name, ``models``, is this repository's too).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from torch import Tensor, nn

from data.atomic_write import atomic_write_text, save_torch
from models import create_model
from models.released import describe_released, load_released, required_model
from tools.released_golden.common import (
    GOLDEN_DIR,
    difference,
    randomise_around,
    run_maker,
    write_expected,
    write_record,
)

SMALL = dict(img_size=28, patch_size=2, embed_dim=16, depth=2, num_heads=2, all_frames=4)
PAPER_FRAMES = 16
MODEL_FILE = "models/bidir_modeling_crossattn.py"
ENTRY_POINTS = {"bidir": "bidir_vit_base_patch16_224", "compo_bidir": "compo_bidir_vit_base_patch16_224"}
DEEPSPEED = {"version": "0.8.0", "commit": "3a3dfe66bb"}


def official_module(official: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("official_cast_bidir", official / MODEL_FILE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # timm's register_model looks its module up there
    spec.loader.exec_module(module)
    return module


def small_net(module: ModuleType, variant: str) -> nn.Module:
    """The network of the entry point ``ENTRY_POINTS[variant]`` (its fixed arguments) at the small size."""
    composition = variant == "compo_bidir"
    return module.STCrossTransformer(mlp_ratio=4, qkv_bias=True, norm_layer=partial(nn.LayerNorm, eps=1e-6),
                                     composition=composition, num_classes=300 if composition else 400, **SMALL)


def forward(net: nn.Module, clip: Tensor) -> Tensor:
    """Logits in our order: the two-head network returns (nouns, verbs); ours gives [verbs | nouns]."""
    with torch.no_grad():
        out = net(clip)
    return torch.cat([out[1], out[0]], dim=-1) if isinstance(out, tuple) else out


def pth_checkpoint(net: nn.Module, variant: str, epoch: int) -> dict[str, Any]:
    """save_model's dict without DeepSpeed."""
    composition = variant == "compo_bidir"
    args = argparse.Namespace(
        data_set="EPIC" if composition else "Kinetics-400", nb_classes=300 if composition else 400,
        num_frames=SMALL["all_frames"], input_size=SMALL["img_size"], tubelet_size=2, sampling_rate=4,
        vmae_model=ENTRY_POINTS[variant], down_ratio=2, composition=composition,
        test_num_segment=2 if composition else 5, test_num_crop=3, model_key="model|module", enable_deepspeed=False)
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3, betas=(0.9, 0.999), weight_decay=0.05)
    scaler = {"scale": 65536.0, "growth_factor": 2.0, "backoff_factor": 0.5, "growth_interval": 2000,
              "_growth_tracker": 0}
    return {"model": net.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch, "scaler": scaler,
            "args": args}


def deepspeed_checkpoint(module_weights: dict[str, Tensor], epoch: int, steps: int) -> dict[str, Any]:
    """_save_checkpoint's dict (DeepSpeed 3a3dfe66) for CAST's configuration: fp16, no ZeRO, no scheduler."""
    flat = torch.cat([v.float().flatten() for v in module_weights.values()])
    adam = torch.optim.AdamW([nn.Parameter(flat.clone())], lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.05)
    fp16_optimizer = {"dynamic_loss_scale": True, "cur_scale": 128.0, "cur_iter": steps, "last_overflow_iter": -1,
                      "scale_factor": 2.0, "scale_window": 128, "optimizer_state_dict": adam.state_dict(),
                      "fp32_groups_flat": [flat], "clip_grad": 0.0}
    return {"module": module_weights, "buffer_names": [], "optimizer": fp16_optimizer, "param_shapes": None,
            "lr_scheduler": None, "data_sampler": None, "random_ltd": None, "sparse_tensor_module_names": set(),
            "skipped_steps": 0, "global_steps": steps, "global_samples": steps * 6, "dp_world_size": 1,
            "mp_world_size": 1, "ds_config": "output_dir/deepspeed_config.json",
            "ds_version": DEEPSPEED["version"], "epoch": epoch}


def write_case(case: str, net: nn.Module, clip: Tensor, variant: str, repository: dict[str, Any],
               deepspeed: bool = False) -> None:
    out = GOLDEN_DIR / case
    if deepspeed:  # DeepSpeed's fp16 engine holds, and saves, the module in half precision
        weights = {k: v.half() for k, v in net.state_dict().items()}
        net.load_state_dict(weights)
        (out / "checkpoint-1").mkdir(parents=True, exist_ok=True)
        save_torch(out / "checkpoint-1" / "mp_rank_00_model_states.pt",
                   deepspeed_checkpoint(weights, epoch=1, steps=10))
        atomic_write_text(out / "latest", "checkpoint-1")
    else:
        out.mkdir(parents=True, exist_ok=True)
        save_torch(out / "checkpoint-1.pth", pth_checkpoint(net, variant, epoch=1))
    write_expected(case, "cast", "checkpoint-1" if deepspeed else "checkpoint-1.pth", clip, forward(net, clip),
                   given={"num_heads": SMALL["num_heads"]},
                   official={**repository, "entry_point": ENTRY_POINTS[variant], "config": SMALL,
                             **({"deepspeed": DEEPSPEED} if deepspeed else {})})


def make_golden(module: ModuleType, repository: dict[str, Any]) -> None:
    try:
        module.LayerNorm(2).double()(torch.zeros(1, 2, dtype=torch.float64))
    except UnboundLocalError:
        sys.exit(f"the official LayerNorm cannot run in float64: add, in the checkout's {MODEL_FILE}, an `else` "
                 f"branch that sets `ret = super().forward(x)` (this script's docstring)")
    generator = torch.Generator().manual_seed(64)
    for case, variant, deepspeed in (("cast_k400", "bidir", False), ("cast_ek100", "compo_bidir", False),
                                     ("cast_ek100_deepspeed", "compo_bidir", True)):
        net = small_net(module, variant).eval().double()
        randomise_around(net, generator, std=0.2)
        clip = torch.randn(1, 3, SMALL["all_frames"], SMALL["img_size"], SMALL["img_size"], generator=generator,
                           dtype=torch.float64)
        write_case(case, net, clip, variant, repository, deepspeed)


def paper_width(module: ModuleType, repository: dict[str, Any]) -> None:
    generator = torch.Generator().manual_seed(224)
    clip = torch.randn(1, 3, PAPER_FRAMES, 224, 224, generator=generator)
    for variant, entry_point in ENTRY_POINTS.items():
        classes = 300 if variant == "compo_bidir" else 400
        net = getattr(module, entry_point)(num_classes=classes, all_frames=PAPER_FRAMES, tubelet_size=2,
                                           down_ratio=2, init_scale=0.001).eval()
        randomise_around(net, generator, std=0.02)
        checkpoint = {"module": net.state_dict(), "epoch": 1}
        needed = required_model(describe_released(checkpoint, "cast"))
        ours = create_model(needed.name, **needed.overrides).eval()
        load_released(ours, checkpoint, "cast")
        with torch.no_grad():
            our_logits = ours(clip)
        write_record({"layout": "cast", "variant": variant,
                      "official": {**repository, "entry_point": entry_point}, "model": needed.name,
                      "overrides": needed.overrides, "dtype": "float32", "clip": list(clip.shape),
                      **difference(our_logits, forward(net, clip))})


def main(argv: list[str] | None = None) -> None:
    run_maker(argv, __doc__, "KHU-VLL/CAST", official_module, make_golden, paper_width)


if __name__ == "__main__":
    main()
