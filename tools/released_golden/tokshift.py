"""Golden files and paper-width records of the TokShift layout (``models.released.tokshift``), made with the official
TokShift-Transformer code (github.com/VideoNetworks/TokShift-Transformer, checked out outside this repository).

    python -m tools.released_golden.tokshift --official-code DIR
    python -m tools.released_golden.tokshift --official-code DIR --record

The first writes ``tokshift_vit/`` and ``tokshift_shift/`` under tests/golden/released/: the official ``VideoNet``
(``model/video_net.py``) with ``NET: ViT`` (``vit_models/modeling.py``) and with ``NET: TokShift``
(``modeling_tokshift.py``, ``SHIFT_DIV`` 4), 24 wide, 2 blocks of 2 heads, 4 x 4 patches of 16 x 16 frames, 4 frames,
7 classes, every parameter random, in float64; its training checkpoint as ``main_ddp_shift_v3.py``'s
``save_checkpoint`` writes it (``{"epoch", "state_dict", "best_acc1", "optimizer", "scheduler"}``, the DDP model's
keys under ``module.``; the SGD optimizer and MultiStepLR of its training loop, before any step, so without momentum
buffers), and ``expected.pt`` with a clip of 2 videos and the official logits (``common.write_expected``). The second
compares our ``vit_base_patch16_frame`` with both official networks at ViT-B/16 (``configs.get_b16_config()``), 8
frames of 224 x 224, 400 classes, random weights, in float32, and writes one record per network into
reports/benchmarks/released_conversion.json.

The official code runs as it is. Its ``VideoNet`` takes a backbone by name from its ``CONFIGS`` dicts; the small
backbone is added to them under the name ``ViT-golden`` (an ``ml_collections.ConfigDict`` like those of
``vit_models/configs.py``). It needs ``ml_collections`` (``pip install ml_collections``) and scipy; the checkout is
appended to ``sys.path``, after the installed packages, so that its vendored ``timm/`` is never imported.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import torch

from data.atomic_write import save_torch
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

SMALL = dict(hidden_size=24, num_heads=2, num_layers=2, mlp_dim=96, patch=4, img_size=16, frames=4, classes=7)
PAPER = dict(backbone="ViT-B_16", img_size=224, frames=8, classes=400)
NETS = {"vit": "ViT", "tokshift": "TokShift"}  # our variant -> the official NET


def official_modules(official: Path) -> dict[str, Any]:
    """The official model modules, imported from the checkout (appended to the path: its vendored timm/ must not
    shadow the installed one)."""
    sys.path.append(str(official))
    from model.video_net import VideoNet
    from vit_models import modeling, modeling_tokshift

    return {"VideoNet": VideoNet, "configs": (modeling.CONFIGS, modeling_tokshift.CONFIGS)}


def small_backbone(official: dict[str, Any]) -> str:
    """Register the golden files' ViT in the official CONFIGS dicts; returns its name."""
    import ml_collections

    config = ml_collections.ConfigDict()
    config.patches = ml_collections.ConfigDict({"size": (SMALL["patch"], SMALL["patch"])})
    config.hidden_size = SMALL["hidden_size"]
    config.transformer = ml_collections.ConfigDict(dict(mlp_dim=SMALL["mlp_dim"], num_heads=SMALL["num_heads"],
                                                        num_layers=SMALL["num_layers"], attention_dropout_rate=0.0,
                                                        dropout_rate=0.0))
    config.classifier, config.representation_size = "token", None
    for configs in official["configs"]:
        configs["ViT-golden"] = config
    return "ViT-golden"


def official_net(official: dict[str, Any], variant: str, backbone: str, frames: int, classes: int, crop: int):
    """The official VideoNet as main_ddp_shift_v3.py builds it from the k400 ViT / TokShift configs."""
    shift = variant == "tokshift"
    net = official["VideoNet"](classes, frames, "RGB", backbone, NETS[variant], "avg", 0.0, False, False, "imagenet",
                               shift, 4 if shift else 0, 0.0, crop, "")
    net.eval()  # VideoNet.train returns None: no chaining
    return net


def training_checkpoint(net) -> dict[str, Any]:
    """What save_checkpoint writes after an epoch (its optimizer and scheduler as the training loop makes them)."""
    optimizer = torch.optim.SGD(net.parameters(), 0.1, momentum=0.9, weight_decay=0.0)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[10, 15, 18], gamma=0.1)
    return {"epoch": 1, "state_dict": {"module." + k: v for k, v in net.state_dict().items()}, "best_acc1": 0.0,
            "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}


def make_golden(official: dict[str, Any], repository: dict[str, Any]) -> None:
    backbone = small_backbone(official)
    generator = torch.Generator().manual_seed(64)
    for variant, case in (("vit", "tokshift_vit"), ("tokshift", "tokshift_shift")):
        net = official_net(official, variant, backbone, SMALL["frames"], SMALL["classes"], SMALL["img_size"])
        net.double()
        randomise_around(net, generator, std=0.2)
        clip = torch.randn(2, 3, SMALL["frames"], SMALL["img_size"], SMALL["img_size"], generator=generator,
                           dtype=torch.float64)
        with torch.no_grad():
            logits = net(clip.transpose(1, 2).contiguous())  # the official input is (B, T, C, H, W)
        (GOLDEN_DIR / case).mkdir(parents=True, exist_ok=True)
        save_torch(GOLDEN_DIR / case / "best_ckpt_e0.pth", training_checkpoint(net))
        write_expected(case, "tokshift", "best_ckpt_e0.pth", clip, logits,
                       given={"variant": variant, "frames": SMALL["frames"], "num_heads": SMALL["num_heads"]},
                       official={**repository, "net": NETS[variant], "config": SMALL})


def paper_width(official: dict[str, Any], repository: dict[str, Any]) -> None:
    generator = torch.Generator().manual_seed(224)
    clip = torch.randn(1, 3, PAPER["frames"], PAPER["img_size"], PAPER["img_size"], generator=generator)
    for variant in NETS:
        net = official_net(official, variant, PAPER["backbone"], PAPER["frames"], PAPER["classes"],
                           PAPER["img_size"])
        randomise_around(net, generator, std=0.02)
        checkpoint = training_checkpoint(net)
        needed = required_model(describe_released(checkpoint, "tokshift",
                                                  known={"variant": variant, "frames": PAPER["frames"]}))
        ours = create_model(needed.name, **needed.overrides).eval()
        load_released(ours, checkpoint, "tokshift", known={"variant": variant, "frames": PAPER["frames"]})
        with torch.no_grad():
            official_logits, our_logits = net(clip.transpose(1, 2).contiguous()), ours(clip)
        write_record({"layout": "tokshift", "variant": variant,
                      "official": {**repository, "net": NETS[variant], "config": PAPER},
                      "model": needed.name, "overrides": needed.overrides, "dtype": "float32",
                      "clip": list(clip.shape), **difference(our_logits, official_logits)})


def main(argv: list[str] | None = None) -> None:
    run_maker(argv, __doc__, "VideoNetworks/TokShift-Transformer", official_modules, make_golden, paper_width)


if __name__ == "__main__":
    main()
