"""Golden files and the paper-width record of the Motionformer layout, made with the authors' code.

    python -m tools.released_golden.mformer --official-code OFFICIAL/Motionformer [--variants ...]
    python -m tools.released_golden.mformer --official-code OFFICIAL/Motionformer --record

``--official-code`` is a checkout of facebookresearch/Motionformer (commit bf43d50 was used); none of its code is in
this repository. It runs with today's libraries as it is, given ``simplejson`` on the path (its logging imports it):
no shim. Each golden variant is the authors' model built by their ``build_model`` from one of their configs
(``configs/...yaml``) at a small width (``SMALL``), with random weights (``common.randomise_by_fan_in``), saved by their
``save_checkpoint`` (with their ``construct_optimizer``'s state) as ``common.SlowFastMaker`` does it; the logits are
read, in float64, at the inputs of their eval-mode softmax (forward hooks on ``head``, ``head0``, ``head1``).
``--record`` does the same at the width of the released checkpoints (ViT-B/16, 16x224x224 clips, the config
unchanged) in float32, loads the file into our model through ``models.released.load_released`` and records the
largest difference of the logits.
"""

from __future__ import annotations

import torch

from tools.released_golden.common import SlowFastMaker

# A small model: 32-d, 2 blocks of 4 heads, 8x8 patches; 8 frames (4 tubelets) of 32x32 (a 4x4 grid: the 28x28
# table of a 224 model is interpolated, as for Mformer-HR), 10 classes. Two clips.
SMALL = {"VIT.EMBED_DIM": 32, "VIT.DEPTH": 2, "VIT.NUM_HEADS": 4, "VIT.PATCH_SIZE": 8, "DATA.NUM_FRAMES": 8,
         "VIT.TEMPORAL_RESOLUTION": 4, "DATA.TRAIN_CROP_SIZE": 32, "DATA.TEST_CROP_SIZE": 32, "MODEL.NUM_CLASSES": 10}
# Every released configuration keeps the default POS_EMBED "separate" (temp_embed), the joint one included.
VARIANTS = {  # name: (the authors' config, its overrides)
    "mformer_trajectory": ("configs/K400/motionformer_224_16x4.yaml", SMALL),
    "mformer_joint": ("configs/K400/joint_224_16x4.yaml", SMALL),
    "mformer_divided": ("configs/K400/divided_224_16x4.yaml", SMALL),
    "mformer_epic": ("configs/EK/motionformer_224_16x4.yaml", SMALL),  # head0 (97 verbs), head1 (300 nouns)
}
RECORD_CONFIG = "configs/K400/motionformer_224_16x4.yaml"  # Mformer-B, K400: the released 16x224 model
EVERY_RUN = {"NUM_GPUS": 0, "NUM_SHARDS": 1, "VIT.IM_PRETRAINED": False, "TRAIN.CHECKPOINT_FILE_PATH": ""}


def official_model(cfg) -> torch.nn.Module:
    from slowfast.models import build_model

    return build_model(cfg)


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


MAKER = SlowFastMaker("mformer", "facebookresearch/Motionformer", EVERY_RUN, VARIANTS, (RECORD_CONFIG, "trajectory"),
                      official_model, official_logits)


def main(argv: list[str] | None = None) -> None:
    MAKER.main(argv, __doc__)


if __name__ == "__main__":
    main()
