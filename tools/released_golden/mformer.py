"""Golden files and the paper-width record of the Motionformer layout, made with the authors' code.

    python -m tools.released_golden.mformer --official-code OFFICIAL/Motionformer [--variants ...]
    python -m tools.released_golden.mformer --official-code OFFICIAL/Motionformer --record

``--official-code`` is a checkout of facebookresearch/Motionformer (commit bf43d50 was used); none of its code is in
this repository. It runs with today's libraries as it is, given ``simplejson`` on the path (its logging imports it):
no shim. Each golden variant is the authors' model built by their ``build_model`` from one of their configs
(``configs/...yaml``) at a small width (``SMALL``), with random weights (``common.randomise_by_fan_in``), saved by their
``save_checkpoint`` (with their ``construct_optimizer``'s state); the logits are read, in float64, at the inputs of
their eval-mode softmax (forward hooks on ``head``, ``head0``, ``head1``). ``--record`` does the same at the width
of the released checkpoints (ViT-B/16, 16x224x224 clips, the config unchanged) in float32, loads the file into our
model through ``models.released.load_released`` and records the largest difference of the logits.
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

# A small model: 32-d, 2 blocks of 4 heads, 8x8 patches; 8 frames (4 tubelets) of 32x32 (a 4x4 grid: the 28x28
# table of a 224 model is interpolated, as for Mformer-HR), 10 classes. Two clips.
SMALL = {"VIT.EMBED_DIM": 32, "VIT.DEPTH": 2, "VIT.NUM_HEADS": 4, "VIT.PATCH_SIZE": 8, "DATA.NUM_FRAMES": 8,
         "VIT.TEMPORAL_RESOLUTION": 4, "DATA.TRAIN_CROP_SIZE": 32, "DATA.TEST_CROP_SIZE": 32, "MODEL.NUM_CLASSES": 10}
# Every released configuration keeps the default POS_EMBED "separate" (temp_embed), the joint one included.
VARIANTS = {  # name: the authors' config
    "mformer_trajectory": "configs/K400/motionformer_224_16x4.yaml",
    "mformer_joint": "configs/K400/joint_224_16x4.yaml",
    "mformer_divided": "configs/K400/divided_224_16x4.yaml",
    "mformer_epic": "configs/EK/motionformer_224_16x4.yaml",  # head0 (97 verbs), head1 (300 nouns)
}
RECORD_CONFIG = "configs/K400/motionformer_224_16x4.yaml"  # Mformer-B, K400: the released 16x224 model
EVERY_RUN = {"NUM_GPUS": 0, "NUM_SHARDS": 1, "VIT.IM_PRETRAINED": False, "TRAIN.CHECKPOINT_FILE_PATH": ""}


def official_config(code: Path, config: str, overrides: dict[str, Any]):
    from slowfast.config.defaults import get_cfg

    cfg = get_cfg()
    cfg.merge_from_file(str(code / config))
    cfg.merge_from_list([item for key, value in {**EVERY_RUN, **overrides}.items() for item in (key, value)])
    return cfg


def official_checkpoint(cfg, seed: int, folder: Path) -> tuple[torch.nn.Module, Path]:
    """The authors' model with random weights, and the file their save_checkpoint writes for it."""
    import slowfast.utils.checkpoint as checkpoint_utils
    from slowfast.models import build_model
    from slowfast.models.optimizer import construct_optimizer

    model = build_model(cfg)
    randomise_by_fan_in(model, seed)
    path = checkpoint_utils.save_checkpoint(str(folder), model, construct_optimizer(model, cfg), 0, cfg)
    return model, Path(path)


def official_logits(model: torch.nn.Module, video: torch.Tensor) -> torch.Tensor:
    """The logits of the authors' eval-mode forward (which returns their softmax): the classifiers' outputs,
    verbs then nouns for two heads."""
    heads = [getattr(model, name) for name in ("head", "head0", "head1") if hasattr(model, name)]
    captured: list[torch.Tensor] = []
    handles = [head.register_forward_hook(lambda module, args, out: captured.append(out)) for head in heads]
    model.eval()
    with torch.no_grad():
        probabilities = model([video])
    for handle in handles:
        handle.remove()
    logits = torch.cat(captured, dim=-1)
    probabilities = torch.cat(probabilities, -1) if isinstance(probabilities, list) else probabilities
    softmax = torch.cat([c.softmax(-1) for c in captured], -1)
    assert torch.allclose(probabilities, softmax), "the hooks did not see the logits the forward normalised"
    return logits


def make_golden(code: Path, commit: str, name: str, seed: int) -> None:
    """``tests/golden/released/<name>/``: the file the authors' save_checkpoint wrote, and ``expected.pt``."""
    config = VARIANTS[name]
    cfg = official_config(code, config, SMALL)
    with tempfile.TemporaryDirectory() as folder:
        model, path = official_checkpoint(cfg, seed, Path(folder))
        clip = random_clip(2, cfg.DATA.NUM_FRAMES, cfg.DATA.TEST_CROP_SIZE, seed)
        logits = official_logits(model.double(), clip_input(clip))
        (GOLDEN_DIR / name).mkdir(parents=True, exist_ok=True)
        (GOLDEN_DIR / name / path.name).write_bytes(path.read_bytes())  # byte for byte
    official = {"repository": "facebookresearch/Motionformer", "official_commit": commit, "config": config,
                "overrides": {**EVERY_RUN, **SMALL}, "seed": seed}
    write_expected(name, "mformer", path.name, clip, logits, given={}, official=official,
                   normalise=PIXEL_NORMALISE,
                   command=f"python -m tools.released_golden.mformer --official-code OFFICIAL --variants {name}")


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
        "layout": "mformer", "variant": "trajectory",
        "official": {"repository": "facebookresearch/Motionformer", "official_commit": commit,
                     "config": RECORD_CONFIG},
        "model": needed.name, "overrides": needed.overrides, "dtype": "float32", "clip": list(video.shape),
        "input": f"uniform random uint8 pixels normalised by mean 0.5 and std 0.5 (seed {seed})",
        "weights": f"random (tools/released_golden/common.py randomise_by_fan_in, seed {seed})",
        **difference(logits, official)})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--official-code", type=Path, required=True, help="a checkout of facebookresearch/Motionformer")
    parser.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=sorted(VARIANTS))
    parser.add_argument("--record", action="store_true", help="the paper-width record instead of golden files")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    commit = put_official_code_on_path(args.official_code)
    if args.record:
        make_record(args.official_code, commit, args.seed)
        return
    for name in args.variants:  # each variant its own seed, whichever are made
        make_golden(args.official_code, commit, name, args.seed + list(VARIANTS).index(name))


if __name__ == "__main__":
    main()
