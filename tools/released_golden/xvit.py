"""Golden files and the paper-width record of the X-ViT layout, made with the authors' code.

    python -m tools.released_golden.xvit --official-code OFFICIAL/video-transformers --shim SHIM [--variants ...]
    python -m tools.released_golden.xvit --official-code OFFICIAL/video-transformers --shim SHIM --record

``--official-code`` is a checkout of 1adrianb/video-transformers (commit 82ca176 was used); none of its code is in
this repository. ``--shim`` is a Python file run before the authors' model is built, which adapts their code of 2021
to timm 1.x and stays outside the repository. What it must do: the authors' ``XVIT`` builds its backbone through
``timm.models.create_model(name, pretrained, img_size, num_classes, drop_rate, drop_connect_rate=None, ...,
bn_tf=False)``, which in the timm of their time dropped the None arguments and ``bn_tf`` and called the registered
entrypoint, their own ``vit_base_patch16_224_in21k`` (``slowfast/models/transformers/vit.py`` overwrites timm's), whose
``build_model_with_cfg(VisionTransformer, variant, pretrained, default_cfg=..., **kwargs)`` was
``VisionTransformer(**kwargs)``. The shim replaces ``timm.models.create_model`` and the module's
``build_model_with_cfg`` by those old behaviours, and resolves ``xvit_golden_patch16_{E}d_{L}l_{H}h`` to the same
entrypoint at width E, depth L and H heads (its representation layer removed for 1000 classes, as for ViT-B).

Each golden variant is the authors' ``XVIT`` built from one of their configs at a small width (``SMALL``), with random
weights (``common.randomise_by_fan_in``), saved by their ``save_checkpoint`` with their ``construct_optimizer``'s state;
the logits are their model's output in float64 (with ``BEFORE_SOFTMAX`` it applies no softmax). ``--record`` does the
same with ViT-B/16 on 16x224x224 clips in float32, loads the file into our model through
``models.released.load_released`` and records the largest difference of the logits.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import torch

from tools.released_golden.common import (GOLDEN_DIR, PIXEL_NORMALISE, clip_input, difference,
                                          put_official_code_on_path, random_clip, randomise_by_fan_in, write_expected,
                                          write_record)

# A small backbone (32-d, 2 blocks of 4 heads, 16x16 patches) on 16 frames of 32x32 (its 14x14 table interpolated
# to 2x2 as the authors' forward does for crops other than 224), the temporal head as wide; 12 classes; two clips.
SMALL = {"XVIT.BASE_MODEL": "xvit_golden_patch16_32d_2l_4h", "TEMPORAL_HEAD.HIDDEN_DIM": 32,
         "TEMPORAL_HEAD.MLP_DIM": 32, "TEMPORAL_HEAD.NUM_ATTENTION_HEADS": 4, "DATA.TRAIN_CROP_SIZE": 32,
         "DATA.TEST_CROP_SIZE": 32, "MODEL.NUM_CLASSES": 12}
SMALL_HEADS = 4  # the backbone's heads, which its (unregistered) name does not tell a reader
VARIANTS = {  # name: (the authors' config, overrides); K600: 16 frames shifted in two 8-frame segments
    "xvit_k600": ("configs/Kinetics/xvit_B16_16x16_k600.yaml", SMALL),
    "xvit_ssv2": ("configs/SSv2/xvit_B16_16x16.yaml", SMALL),
}
# The released K600 model: ViT-B/16, 16x224, 8-frame segments.
RECORD_CONFIG = "configs/Kinetics/xvit_B16_16x16_k600.yaml"
EVERY_RUN = {"NUM_GPUS": 0, "NUM_SHARDS": 1, "XVIT.PRETRAIN": False, "TRAIN.ENABLE": False, "TEST.ENABLE": True}


def official_config(code: Path, config: str, overrides: dict[str, Any]):
    from slowfast.config.defaults import get_cfg

    cfg = get_cfg()
    cfg.merge_from_file(str(code / config))
    cfg.merge_from_list([item for key, value in {**EVERY_RUN, **overrides}.items() for item in (key, value)])
    return cfg


def official_checkpoint(cfg, seed: int, folder: Path) -> tuple[torch.nn.Module, Path]:
    """The authors' model with random weights, and the file their save_checkpoint writes for it."""
    import slowfast.utils.checkpoint as checkpoint_utils
    from slowfast.models.optimizer import construct_optimizer
    from slowfast.models.video_model_builder import XVIT

    model = XVIT(cfg)
    randomise_by_fan_in(model, seed)
    path = checkpoint_utils.save_checkpoint(str(folder), model, construct_optimizer(model, cfg), 0, cfg)
    return model, Path(path)


def official_logits(model: torch.nn.Module, video: torch.Tensor) -> torch.Tensor:
    """Their model's output, its input as their loader packs it (``datasets/utils.py``, ``pack_pathway_output``:
    the clip and its frame indices, which ``VitHead`` does not use)."""
    model.eval()
    frame_indices = torch.arange(video.shape[2]).expand(video.shape[0], -1)
    with torch.no_grad():
        return model([video, frame_indices])


def make_golden(code: Path, commit: str, name: str, seed: int) -> None:
    """``tests/golden/released/<name>/``: the file the authors' save_checkpoint wrote, and ``expected.pt`` (with
    the backbone's heads, which the file does not tell, as ``given``)."""
    config, overrides = VARIANTS[name]
    cfg = official_config(code, config, overrides)
    with tempfile.TemporaryDirectory() as folder:
        model, path = official_checkpoint(cfg, seed, Path(folder))
        clip = random_clip(2, cfg.DATA.NUM_FRAMES, cfg.DATA.TEST_CROP_SIZE, seed)
        logits = official_logits(model.double(), clip_input(clip))
        (GOLDEN_DIR / name).mkdir(parents=True, exist_ok=True)
        (GOLDEN_DIR / name / path.name).write_bytes(path.read_bytes())  # byte for byte
    official = {"repository": "1adrianb/video-transformers", "official_commit": commit, "config": config,
                "overrides": {**EVERY_RUN, **overrides}, "seed": seed}
    write_expected(name, "xvit", path.name, clip, logits, given={"num_heads": SMALL_HEADS}, official=official,
                   normalise=PIXEL_NORMALISE,
                   command="python -m tools.released_golden.xvit --official-code OFFICIAL --shim SHIM --variants "
                           + name)


def make_record(code: Path, commit: str, seed: int) -> None:
    from models import create_model
    from models.released import describe_released, load_released, required_model

    cfg = official_config(code, RECORD_CONFIG, {})
    with tempfile.TemporaryDirectory() as folder:
        model, path = official_checkpoint(cfg, seed, Path(folder))
        clip = random_clip(1, cfg.DATA.NUM_FRAMES, cfg.DATA.TEST_CROP_SIZE, seed)
        video = clip_input(clip, torch.float32)
        official = official_logits(model, video)
        del model
        needed = required_model(describe_released(path))
        ours = create_model(needed.name, **needed.overrides).eval()
        load_released(ours, path)
        with torch.no_grad():
            logits = ours(video)
    write_record({
        "layout": "xvit", "variant": "xvit",
        "official": {"repository": "1adrianb/video-transformers", "official_commit": commit,
                     "config": RECORD_CONFIG},
        "model": needed.name, "overrides": needed.overrides, "dtype": "float32", "clip": list(video.shape),
        "input": f"uniform random uint8 pixels normalised by mean 0.5 and std 0.5 (seed {seed})",
        "weights": f"random (tools/released_golden/common.py randomise_by_fan_in, seed {seed})",
        **difference(logits, official)})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--official-code", type=Path, required=True, help="a checkout of 1adrianb/video-transformers")
    parser.add_argument("--shim", type=Path, required=True, help="the file that adapts it to timm 1.x (see above)")
    parser.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=sorted(VARIANTS))
    parser.add_argument("--record", action="store_true", help="the paper-width record instead of golden files")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    commit = put_official_code_on_path(args.official_code, args.shim)
    if args.record:
        make_record(args.official_code, commit, args.seed)
        return
    for name in args.variants:  # each variant its own seed, whichever are made
        make_golden(args.official_code, commit, name, args.seed + 10 + list(VARIANTS).index(name))


if __name__ == "__main__":
    main()
