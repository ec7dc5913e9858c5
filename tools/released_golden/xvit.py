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
weights (``common.randomise_by_fan_in``), saved by their ``save_checkpoint`` with their ``construct_optimizer``'s state
(``common.SlowFastMaker``); the logits are their model's output in float64 (with ``BEFORE_SOFTMAX`` it applies no
softmax). ``--record`` does the same with ViT-B/16 on 16x224x224 clips in float32, loads the file into our model through
``models.released.load_released`` and records the largest difference of the logits.
"""

from __future__ import annotations

import torch

from tools.released_golden.common import SlowFastMaker

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


def official_model(cfg) -> torch.nn.Module:
    from slowfast.models.video_model_builder import XVIT

    return XVIT(cfg)


def official_logits(model: torch.nn.Module, video: torch.Tensor) -> torch.Tensor:
    """Their model's output, its input as their loader packs it (``datasets/utils.py``, ``pack_pathway_output``:
    the clip and its frame indices, which ``VitHead`` does not use)."""
    model.eval()
    frame_indices = torch.arange(video.shape[2]).expand(video.shape[0], -1)
    with torch.no_grad():
        return model([video, frame_indices])


# The backbone's heads, which the file does not tell, are each golden case's ``given``; the golden seeds follow
# Motionformer's.
MAKER = SlowFastMaker("xvit", "1adrianb/video-transformers", EVERY_RUN, VARIANTS, (RECORD_CONFIG, "xvit"),
                      official_model, official_logits, given={"num_heads": SMALL_HEADS}, seed_offset=10, shim=True)


def main(argv: list[str] | None = None) -> None:
    MAKER.main(argv, __doc__)


if __name__ == "__main__":
    main()
