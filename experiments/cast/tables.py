"""CAST (Lee, Lee & Choi, "CAST: Cross-Attention in Space and Time for Video Action Recognition", NeurIPS 2023,
paper 004): Tables 1a-1h and 2-11 as specs.

Every row is ``models.cast.CAST`` with the options its table varies (the Table 1 row -> option mapping is in the
``models.cast`` package doc): two frozen pretrained experts, a spatial one (CLIP ViT-B/16 per frame) and a temporal
one (VideoMAE ViT-B over 2x16x16 tubelets), exchanging information through B-CAST; only adapters, B-CAST, the
experts' last LayerNorms and the heads train.

Scales:
- ``paper``: ``cast_base`` on 16x224x224 clips (uniform segments on EK100 and SSV2, dense at stride 4 on K400, the
  stride and sampling of the official dataset/kinetics.py, VideoMAE's; the paper does not state it), experts from
  released checkpoints read from local files (``PAPER_CHECKPOINTS``), inputs normalised with ImageNet's mean / std
  (0.485, 0.456, 0.406) / (0.229, 0.224, 0.225), as the official code's data pipeline (``dataset/epic.py``; the
  paper does not state it). Two recipes:
  - Tables 2 and 9-11 (state of the art): the supplementary's Table 4 recipe (``paper_preset``): AdamW
    (0.9, 0.999), base lr 1e-3 scaled by global batch / 256, weight decay 0.05, cosine schedule with 5 warm-up
    epochs (from 0, decaying to 1e-3 of the peak: the official min_lr 1e-6, scaled as the lr), 50 epochs (70 on
    K400), batch 6 per GPU on 16 GPUs with update frequency 4 (6 on K400), layer-wise lr decay 0.75 (block i of
    12 at lr x 0.75^(12 - i), the official ``get_num_layer_for_vit`` grouping: ``CAST.group_matcher``), label
    smoothing 0.1, mixup 0.8 (on a batch with probability 0.9, 0.5 on K400: the official scripts'
    ``--mixup_prob``), colour jitter 0.4, RandAugment magnitude 9 on the whole decoded frames, then a random
    resized crop (area 8-100%, aspect ratio 3/4-4/3; Sec. 4.2's "random cropping and resizing", the official
    ``_aug_frame``'s ranges), drop path 0.2 (0.3 on SSV2); test views 2 clips x 3 crops (5 x 3 on K400), the two
    clips of EK100 and SSV2 at each segment's first and middle frame (the official ``loadvideo_decord``).
  - Tables 1a-1h (ablations, Sec. 4.2) and 5-8 (Appendix D, footnote 4): the ablation recipe
    (``ablation_preset``): the same on EK100 with update frequency 2 (Sec. 4.2: "batch size per GPU as 6 with
    update frequency of 2"), i.e. a global batch of 192 and lr 7.5e-4 instead of 384 and 1.5e-3, and Sec. 4.2's
    layer decay 0.8. So Table 1's CAST and Table 9's CAST are two runs at paper scale, as the paper's two numbers
    (48.7 and 49.3 action) are.
  RandAugment draws its magnitudes around 9 with std 0.5 (Table 4's "(9, 0.5)") and applies 4 ops (the official
  code's; the paper does not say). No repeated augmentation: Appendix B names it, but the official scripts run
  with ``--num_sample 1`` (none). Colour jitter 0.4 follows Table 4, though the official ``_aug_frame`` applies
  none (it never reads ``--color_jitter``).
- ``tiny`` (CPU): ``cast_tiny`` (96-d experts of 4 blocks and 6 heads, 8x32x32 clips) on the generated sets; its
  experts are pretrained first, on generated data, and cached by their configuration (``TINY_EXPERTS``): the spatial
  expert by classifying single frames of the appearance set, the temporal expert by VideoMAE-style masked video
  autoencoding (tube masking, 90% of positions) of the verb-noun set. Every tiny row loads these files. Its
  6-epoch cosine schedule has the official shape: warm-up from 0, decay to 1e-3 of the peak.

Rows that name the same options (CAST itself is the last row of Tables 1a-1h and 8) resolve to one run per scale,
trained once.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import random
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple

from ..presets import (EPIC_KITCHENS_100, GPU_TRAINER, KINETICS_400, SSV2, THREE_SEEDS, TINY_OPTIM, TINY_STAND_INS,
                      TINY_TRAINER)
from ..spec import (Computed, DataConfig, DerivedColumn, MetricColumn, ModelConfig, OptimConfig, RowSpec,
                   ScalePreset, StaticColumn, TableSpec, _plain, register_table)
from ..static import clip_shape, gflops, model_inputs, paper_config, views_inputs
from ..tasks import SYSTEM_FIELDS, build_model, register_source, video_datamodule

# ---- tiny experts: pretrained on generated data, cached by configuration --------------------------------------

EXPERT_CACHE = Path(".cache/experts")
EXPERT_FILE = "expert.pt"  # the expert's state dict, in its own layout (loads into CAST.spatial / CAST.temporal)
EXPERT_CACHE_VERSION = 1  # bump when the pretraining code changes what a configuration produces


@dataclass(frozen=True)
class ExpertPretraining:
    """How one tiny expert is pretrained; every field is part of its cache key.

    ``method``: "frames" = classification of single frames (each frame of a clip is an image with the clip's label;
    the stand-in for CLIP's / ImageNet-21K's image pretraining), "mae" = VideoMAE-style masked video autoencoding
    with tube masking (``lightning_modules.expert_pretraining``).
    """

    arch: str  # expert structure: "clip", "vit_in21k" (frame experts), "videomae", "mvd" (tubelet experts)
    method: Literal["frames", "mae"]
    data: DataConfig  # the generated set read (its training split), clip size as CAST's tiny input
    epochs: int
    lr: float
    weight_decay: float = 0.05
    mask_ratio: float = 0.9  # "mae": fraction of spatial positions hidden (VideoMAE's 90%)
    normalize_target: bool = False  # "mae": per-patch normalised pixels (VideoMAE's default) or raw pixels
    seed: int = 0

    def key(self) -> str:
        config = _plain(dataclasses.asdict(self))
        for name in SYSTEM_FIELDS:  # test-time settings of a LightningModule: pretraining never reads them
            config["data"].pop(name)
        text = json.dumps({"version": EXPERT_CACHE_VERSION, **config}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _pretraining_data(stand_in: str, **synthetic: Any) -> DataConfig:
    base = TINY_STAND_INS[stand_in]
    return dataclasses.replace(base, synthetic_params={**base.synthetic_params, **synthetic}, num_workers=0)


# Which generated set stands in for which pretraining data (Tables 5 and 6): the spatial expert's image data
# (CLIP: every class of the appearance set; ImageNet-21K: the narrower first 4 of its 8 classes, with the ViT's
# own structure), the temporal expert's video data (EK100 / SSV2 / K400 -> verb-noun / motion / appearance set).
_CLIP_DATA, _IN21K_DATA = _pretraining_data("K-400"), _pretraining_data("K-400", num_classes=4)
TINY_EXPERTS: dict[str, ExpertPretraining] = {
    "clip": ExpertPretraining("clip", "frames", _CLIP_DATA, epochs=3, lr=1e-3),
    "vit_in21k": ExpertPretraining("vit_in21k", "frames", _IN21K_DATA, epochs=3, lr=1e-3),
    "videomae_ek100": ExpertPretraining("videomae", "mae", _pretraining_data("EK-100"), epochs=6, lr=1.5e-3),
    "videomae_ssv2": ExpertPretraining("videomae", "mae", _pretraining_data("SSv2"), epochs=6, lr=1.5e-3),
    "videomae_k400": ExpertPretraining("videomae", "mae", _pretraining_data("K-400"), epochs=6, lr=1.5e-3),
    # MVD distils teachers' features into VideoMAE's structure; the tiny stand-in does not reproduce the
    # distillation: it is the same masked autoencoding with another seed (see Table 7's notes).
    "mvd_ek100": ExpertPretraining("mvd", "mae", _pretraining_data("EK-100"), epochs=6, lr=1.5e-3, seed=1),
}
STAND_IN_NOTE = ("Tiny experts (pretrained on generated data, cached under `.cache/experts/` by configuration): "
                 "CLIP = frame classification of `synth_appearance` (all 8 classes); ImageNet-21K = the ViT "
                 "structure, frame classification of `synth_appearance`'s first 4 classes; VideoMAE pretrained on "
                 "EK100 / SSV2 / K400 = masked video autoencoding of `synth_verbnoun` / `synth_motion` / "
                 "`synth_appearance`.")


def expert_source(name: str) -> str:
    """The pretrained source of a tiny expert: ``expert:<name>@<configuration key>`` (the key makes a run's
    configuration change when its expert's pretraining does)."""
    return f"expert:{name}@{TINY_EXPERTS[name].key()}"


def expert_dir(config: ExpertPretraining, cache_dir: str | Path = EXPERT_CACHE) -> Path:
    return Path(cache_dir) / f"{config.arch}-{config.method}-{config.key()}"


def cached_expert(config: ExpertPretraining, cache_dir: str | Path = EXPERT_CACHE,
                  pretrain: Callable[[ExpertPretraining, Path], None] | None = None) -> Path:
    """The expert file of ``config``: pretrained once (``pretrain(config, folder)`` writes ``EXPERT_FILE`` into a
    temporary folder renamed into place, ``data.cache.build_once``), then reused by every run."""
    from data.cache import build_once

    folder = build_once(expert_dir(config, cache_dir), lambda tmp: (pretrain or pretrain_expert)(config, tmp))
    if not (folder / EXPERT_FILE).is_file():
        raise FileNotFoundError(f"{folder} has no {EXPERT_FILE}: delete the folder to pretrain the expert again")
    return folder / EXPERT_FILE


def _resolve_expert_source(rest: str) -> str:
    name, _, key = rest.partition("@")
    if name not in TINY_EXPERTS:
        raise ValueError(f"pretrained source expert:{rest}: no tiny expert {name!r}; known: {sorted(TINY_EXPERTS)}")
    config = TINY_EXPERTS[name]
    if key and key != config.key():
        raise ValueError(f"pretrained source expert:{rest}: the pretraining of {name!r} has changed since this run "
                         f"was configured (its key is now {config.key()}); run the table again")
    return str(cached_expert(config))


register_source("expert", _resolve_expert_source)


@contextmanager
def _own_random_state(seed: int) -> Iterator[None]:
    """Seed everything for a pretraining and give the caller back its random state afterwards, so a run that
    pretrains its expert first draws the same numbers as one that finds it cached."""
    import numpy as np
    import torch

    saved_env = {k: os.environ.get(k) for k in ("PL_GLOBAL_SEED", "PL_SEED_WORKERS")}
    python_state, numpy_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        try:
            import lightning as L

            L.seed_everything(seed, workers=True, verbose=False)
            yield
        finally:
            random.setstate(python_state)
            np.random.set_state(numpy_state)
            for k, v in saved_env.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def pretrain_expert(config: ExpertPretraining, folder: Path) -> None:
    """Pretrain the tiny expert of ``config`` on CPU and write ``EXPERT_FILE`` and ``pretraining.json`` into
    ``folder``."""
    import data.torchvision_compat  # noqa: F401  (before lightning imports torchvision)
    import lightning as L
    import torch

    from lightning_modules.expert_pretraining import FramePretraining, MaskedVideoPretraining
    from models.cast import build_expert

    start = time.perf_counter()
    print(f"    pretraining tiny expert {config.arch} ({config.method}) on {config.data.dataset}, "
          f"{config.epochs} epoch(s); cached for every later run ...", flush=True)
    with _own_random_state(config.seed):
        dm = video_datamodule(config.data, folder / "data_failures")
        dm.prepare_data()
        dm.setup("fit")
        if config.method == "frames":
            expert = build_expert(config.arch, "tiny", num_frames=2)  # one image = a 2-frame clip (module doc)
            system = FramePretraining(expert, dm.num_classes, lr=config.lr, weight_decay=config.weight_decay)
        elif config.method == "mae":
            expert = build_expert(config.arch, "tiny")
            system = MaskedVideoPretraining(expert, mask_ratio=config.mask_ratio,
                                            normalize_target=config.normalize_target, lr=config.lr,
                                            weight_decay=config.weight_decay)
        else:
            raise ValueError(f"unknown pretraining method {config.method!r}; use 'frames' or 'mae'")
        trainer = L.Trainer(max_epochs=config.epochs, accelerator="cpu", devices=1, logger=False,
                            enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                            limit_val_batches=0, deterministic=True)
        trainer.fit(system, train_dataloaders=dm.train_dataloader())
    torch.save(expert.state_dict(), folder / EXPERT_FILE)
    logged = {k: float(v) for k, v in trainer.callback_metrics.items()}
    (folder / "pretraining.json").write_text(json.dumps({
        "config": _plain(dataclasses.asdict(config)), "key": config.key(), "final": logged,
        "steps": trainer.global_step, "wall_time_s": time.perf_counter() - start}, indent=2))


# ---- scales ------------------------------------------------------------------------------------------------------

TINY_VERBS, PAPER_VERBS, PAPER_NOUNS = 6, 97, 300  # synth_verbnoun's verbs (tested); EPIC-KITCHENS-100's classes

# The paper's checkpoints, read from local files (``models.cast.checkpoints`` maps each layout).
PAPER_CHECKPOINTS = {
    "clip": "clip:checkpoints/cast/ViT-B-16.pt",  # OpenAI CLIP ViT-B/16
    # Tables 5-6's IN-21K ViT-B: not in the official code, not named by the paper; timm's vit_base_patch16_224_in21k
    # of 2023, which timm's deprecation table renames to this tag (our choice)
    "vit_in21k": "vit:timm:vit_base_patch16_224.augreg_in21k",
    "videomae_ek100": "videomae:checkpoints/cast/videomae_vit_b_ek100_pretrain.pth",
    "videomae_ssv2": "videomae:checkpoints/cast/videomae_vit_b_ssv2_pretrain.pth",
    "videomae_k400": "videomae:checkpoints/cast/videomae_vit_b_k400_pretrain.pth",
    "mvd_ek100": "videomae:checkpoints/cast/mvd_vit_b.pth",  # MVD's ViT-B (VideoMAE layout)
}


def experts(spatial: str = "clip", temporal: str = "videomae_ek100") -> dict[str, dict[str, Any]]:
    """Per-scale pretrained sources of the two experts, by ``TINY_EXPERTS`` / ``PAPER_CHECKPOINTS`` name."""
    return {"tiny": {"pretrained": {"spatial": expert_source(spatial), "temporal": expert_source(temporal)}},
            "paper": {"pretrained": {"spatial": PAPER_CHECKPOINTS[spatial],
                                     "temporal": PAPER_CHECKPOINTS[temporal]}}}


def one_expert(part: Literal["spatial", "temporal"], name: str) -> dict[str, dict[str, Any]]:
    """Per-scale source of a model with one expert alone (``experts="spatial"`` / ``"temporal"``)."""
    return {"tiny": {"pretrained": {part: expert_source(name)}},
            "paper": {"pretrained": {part: PAPER_CHECKPOINTS[name]}}}


# The official schedule (VideoMAE's utils.cosine_scheduler, run_bidirection.py): the warm-up starts at 0 and the
# cosine ends at min_lr 1e-6, which the script scales with the batch as it does the lr 1e-3: 1e-3 of the peak.
_OFFICIAL_SCHEDULE = dict(warmup_start=0.0, min_lr_ratio=1e-3)
# Table 4: base lr 1e-3 at a global batch of 256, scaled linearly to the actual one.
_PAPER_OPTIM = OptimConfig(optimizer="adamw", lr=1e-3, weight_decay=0.05, label_smoothing=0.1, epochs=50,
                           warmup_epochs=5, schedule="cosine", mixup_alpha=0.8, **_OFFICIAL_SCHEDULE)
# RandAugment (9, 0.5) of Table 4: magnitude 9, drawn with std 0.5 (``data.transforms.TrainTransform``'s); 4 ops,
# the official code's (--aa rand-m7-n4-mstd0.5-inc1, VideoMAE's default, which no script changes; the paper does
# not say). Colour jitter 0.4 (Table 4; the official dataset/*.py apply none). The training crop: Sec. 4.2's "random
# cropping and resizing", with the official _aug_frame's area and aspect-ratio ranges (its spatial_sampling's
# random_resized_crop), not the shared presets' short-side jitter.
PAPER_RESIZED_CROP = ((0.08, 1.0), (0.75, 1.3333))
_PAPER_AUGMENT = {"rand_augment": (9, 4), "color_jitter": 0.4, "random_resized_crop": PAPER_RESIZED_CROP}
# Input normalisation of the paper-scale runs: ImageNet's statistics, as the official CAST data pipeline
# (dataset/epic.py, train / val / test alike) and VideoMAE's pretraining; the paper does not state it. The frozen
# experts' patch embeddings were trained on inputs at this scale, not the datamodule's default 0.5 / 0.5 (which the
# tiny experts, pretrained here, are trained and evaluated with).
PAPER_NORMALIZATION = {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}
_PAPER_DATA_OPTIONS = {**_PAPER_AUGMENT, **PAPER_NORMALIZATION}
# The two temporal test views of the segment-sampled sets: each segment's first frame, then its middle, as the
# official dataset/ssv2.py and epic.py loadvideo_decord (int(tick * x) and int(tick / 2 + tick * x), sorted, every
# other index per view), not the evenly spaced default (1/4 and 3/4 of each segment)
OFFICIAL_SEGMENT_VIEWS = {"segment_view_offsets": (0.0, 0.5)}
# K400's clips as the official dataset/kinetics.py (VideoMAE's) samples them: training frames spread by linspace over
# 16 x 4 frames, test views cut from every 4th frame (data.clip_sampling's "videomae" convention)
OFFICIAL_DENSE_CLIPS = {"dense_convention": "videomae"}
_PAPER_TRAINER = dataclasses.replace(GPU_TRAINER, devices=8, num_nodes=2, accumulate_grad_batches=4,
                                     reference_batch=256, lr_scaling="linear")
PAPER_DATA = {
    "EK-100": dataclasses.replace(EPIC_KITCHENS_100, num_frames=16, batch_size=6, test_clips=2, test_crops=3,
                                  options={**_PAPER_DATA_OPTIONS, **OFFICIAL_SEGMENT_VIEWS}),
    "SSv2": dataclasses.replace(SSV2, num_frames=16, batch_size=6, test_clips=2, test_crops=3,
                                options={**_PAPER_DATA_OPTIONS, **OFFICIAL_SEGMENT_VIEWS}),
    "K-400": dataclasses.replace(KINETICS_400, num_frames=16, frame_stride=4, batch_size=6, test_clips=5,
                                 test_crops=3, options={**_PAPER_DATA_OPTIONS, **OFFICIAL_DENSE_CLIPS}),
}
class Table4Column(NamedTuple):
    """What Table 4 (and the official scripts, for the mixup probability) set per dataset."""

    epochs: int
    update_frequency: int
    drop_path: float
    # the probability that a batch is mixed: the official scripts' --mixup_prob (scripts/ek100/ek100.sh,
    # scripts/ssv2/ssv2.sh: 0.9; scripts/kinetics/k400.sh: 0.5); the paper gives only mixup's alpha (0.8)
    mixup_prob: float


PAPER_PER_DATASET = {"EK-100": Table4Column(50, 4, 0.2, 0.9), "K-400": Table4Column(70, 6, 0.2, 0.5),
                     "SSv2": Table4Column(50, 4, 0.3, 0.9)}
# Layer-wise lr decay: Table 4's (Tables 2, 9-11) and Sec. 4.2's (the ablations).
TABLE4_LAYER_DECAY, ABLATION_LAYER_DECAY = 0.75, 0.8


# The ablation recipe (Sec. 4.2 for Tables 1a-1h; footnote 4 for Appendix D's Tables 5-8): Table 4's EK100 column
# with update frequency 2 and layer decay 0.8.
ABLATION_UPDATE_FREQUENCY = 2


def paper_preset(data_key: str, update_frequency: int | None = None, layer_decay: float = TABLE4_LAYER_DECAY,
                 recipe: str = "Table 4 recipe (Tables 2, 9-11)") -> ScalePreset:
    """The paper-scale preset of one dataset's tables: Table 4's column (the state-of-the-art recipe of Tables 2
    and 9-11), or, with ``update_frequency`` and ``layer_decay``, that column changed so (``ablation_preset``)."""
    column = PAPER_PER_DATASET[data_key]
    update_frequency = update_frequency or column.update_frequency
    return ScalePreset(
        description=f"paper ({recipe}): CAST-B (CLIP ViT-B/16 + VideoMAE ViT-B experts, frozen), 16x224x224 "
                    f"clips from a random resized crop, normalised with ImageNet's mean / std, AdamW, "
                    f"{column.epochs} epochs, layer-wise lr "
                    f"decay {layer_decay:g}, batch 6 x 16 GPUs x {update_frequency} accumulated",
        model=ModelConfig(name="cast_base", overrides={"drop_path_rate": column.drop_path}),
        data=PAPER_DATA,
        optim=dataclasses.replace(_PAPER_OPTIM, epochs=column.epochs, mixup_prob=column.mixup_prob,
                                  layer_decay=layer_decay),
        trainer=dataclasses.replace(_PAPER_TRAINER, accumulate_grad_batches=update_frequency),
    )


CAST_TINY = ScalePreset(
    description="tiny: CAST with 96-d experts of 4 blocks and 6 heads, 8x32x32 clips in 8x8 patches, experts "
                "pretrained on generated data (cached) and frozen except adapters, B-CAST, last LayerNorms and "
                "heads; AdamW, cosine schedule, trained on CPU",
    model=ModelConfig(name="cast_tiny"),
    data={key: TINY_STAND_INS[key] for key in ("EK-100", "SSv2", "K-400")},
    # 6 epochs (360 steps) instead of the shared 10: a frozen-expert step costs ~2 s at batch 16 on one busy
    # thread, and the pretrained experts need only their adapters and exchange trained
    optim=dataclasses.replace(TINY_OPTIM, epochs=6, **_OFFICIAL_SCHEDULE),
    trainer=TINY_TRAINER,
)


def ablation_preset() -> ScalePreset:
    """The paper-scale preset of the ablations (Tables 1a-1h, Sec. 4.2) and of Appendix D's Tables 5-8 (footnote
    4): Table 4's EK100 column with update frequency 2 (global batch 192, lr 7.5e-4) and layer decay 0.8."""
    return paper_preset("EK-100", ABLATION_UPDATE_FREQUENCY, ABLATION_LAYER_DECAY,
                        recipe="ablation recipe of Sec. 4.2 / footnote 4 (Tables 1a-1h, 5-8): update frequency 2, "
                               "layer decay 0.8")


# Tables 2 and 9-11 (state of the art) and the untrained Tables 3-4: Table 4's recipe.
SCALES_EK100 = {"tiny": CAST_TINY, "paper": paper_preset("EK-100")}
# Tables 1a-1h, 7 and 8 (and, with their own tiny description, 5 and 6): the ablation recipe (same tiny preset).
SCALES_ABLATION = {"tiny": CAST_TINY, "paper": ablation_preset()}
# Tables 5 and 6 vary the experts' pretraining data: their report header names the stand-in of each.
SCALES_PRETRAINING = {"tiny": dataclasses.replace(CAST_TINY, description=CAST_TINY.description + ". " + STAND_IN_NOTE),
                      "paper": SCALES_ABLATION["paper"]}


def verb_noun_columns(names: tuple[str, str, str] = ("Top-1 Acc. / Verb", "Top-1 Acc. / Noun", "Top-1 Acc. / Act.")
                      ) -> tuple[MetricColumn, ...]:
    """Verb, noun and action top-1 of one EPIC-style run; the split heads need the verb count of each scale."""
    verbs = {"tiny": {"model": {"num_verbs": TINY_VERBS}}, "paper": {"model": {"num_verbs": PAPER_VERBS}}}
    return tuple(MetricColumn(name, metric, dataset="EK-100", run="EK-100", scales=verbs)
                 for name, metric in zip(names, ("verb_top1", "noun_top1", "action_top1")))


EK100_COLUMNS = verb_noun_columns()
# Tables 5, 8 and the appendix tables print the action column as "Action".
EK100_COLUMNS_ACTION = verb_noun_columns(("Top-1 Acc. / Verb", "Top-1 Acc. / Noun", "Top-1 Acc. / Action"))

# ---- rows shared by several tables (identical options -> one run) ----------------------------------------------

DEFAULT = experts()
CAST_ROW = lambda paper_row, label="CAST": RowSpec("cast", paper_row, label, scales=DEFAULT)  # noqa: E731
INDEPENDENT_ADAPTER = {"exchange": "none", "time_adapter": True}  # = Table 1c's "Identity"
INDEPENDENT_ROW = lambda paper_row, label="Indep. experts w/ adapter": RowSpec(  # noqa: E731
    "indep_adapter", paper_row, label, INDEPENDENT_ADAPTER, scales=DEFAULT)

# ---- static columns: counted at paper scale on the meta device --------------------------------------------------

TABLE1C_NOTE = ("learnable (trained) parameters of the paper-scale model with EPIC-KITCHENS-100 heads (97 verbs, "
                "300 nouns), counted on the meta device with models.cast.count_learnable. Identity (18.1 M) is the "
                "official independent experts (AIM's CLIP with its temporal adapter + VideoMAE with adapters). "
                "The two full-width cross-attention rows count 10.9 M fewer than the paper (75.0 vs 85.9, 82.1 vs "
                "93.0): the paper's figures include a per-block S2T positional table over all 8 x (1 + 196) "
                "spatial-expert tokens, the released code's earlier S2T module (models.cast.complexity."
                "released_s2t_table_excess = 10,911,744); ours keep B-CAST's positional tables, as the paper "
                "describes them")
GFLOPS_NOTE = ("GFLOPs of one 16x224x224 view of the paper-scale model, counted on the meta device with the "
               "attention matmuls (one multiply-add = one FLOP); TFLOPs = that x temporal clips x spatial crops of "
               "the test protocol (2 x 3, K400 5 x 3)")
PARAMS_NOTE = "learnable parameters of the paper-scale model (counted, models.cast.count_learnable)"


def _num_classes(cfg: Any) -> int:
    """The class count a static cell's model is built with: EPIC's 97 + 300, K400's 400, SSV2's 174."""
    return {"epic_kitchens100": PAPER_VERBS + PAPER_NOUNS, "kinetics400": 400, "ssv2": 174}[cfg.data.dataset]


def learnable_params(spec: TableSpec, row: RowSpec) -> Computed:
    """Learnable parameters (M) of the row at paper scale (its first metric column's dataset)."""
    from models.cast import count_learnable

    cfg = paper_config(spec, row)
    millions = count_learnable(build_model(cfg, _num_classes(cfg), device="meta")) / 1e6
    return Computed(millions, f"{millions:.1f} (computed)")


def gflops_per_view(spec: TableSpec, row: RowSpec) -> Computed:
    cfg = paper_config(spec, row)
    value = gflops(cfg, "published", num_classes=_num_classes(cfg))
    return Computed(value, f"{value:.1f} (computed)")


def tflops_views(spec: TableSpec, row: RowSpec) -> Computed:
    cfg = paper_config(spec, row)
    value = gflops(cfg, "published", num_classes=_num_classes(cfg)) * cfg.data.test_clips * cfg.data.test_crops / 1e3
    return Computed(value, f"{value:.2f} = {value * 1e3 / (cfg.data.test_clips * cfg.data.test_crops):.1f} GFLOPs x "
                           f"{cfg.data.test_clips}x{cfg.data.test_crops} views (computed)")


def training_cost_inputs(spec: TableSpec, row: RowSpec) -> dict[str, Any]:
    cfg = paper_config(spec, row)
    return {**model_inputs(cfg), "num_classes": _num_classes(cfg), "batch_size": cfg.data.batch_size,
            "precision": cfg.trainer.precision}


TRAINING_COST_NOTE = (
    "not in the paper: one training step of the row's paper-scale model (16x224x224 clips, the preset's batch of 6 "
    "per GPU and its mixed precision, AdamW), frozen experts as the row trains them / the same model with every "
    "parameter trainable: peak GPU memory (torch.cuda.max_memory_allocated, weights, gradients and optimizer state "
    "included) and the median time of 10 steps, the two models alternating "
    "(models.cast.complexity.measure_training), and the share of parameters that train. Without a GPU the cell "
    "says `needs GPU` and gives the activations saved for backward per clip (counted on the meta device, fp32)")
_AUTOCAST = {"16-mixed": "float16", "bf16-mixed": "bfloat16"}


def training_cost(spec: TableSpec, row: RowSpec) -> Computed:
    """The row's paper-scale training step, frozen experts against every parameter trainable (see the note)."""
    import torch

    from models.cast import count_learnable
    from models.cast.complexity import measure_training
    from models.memory import activation_bytes

    from ..static import MEASURED, NEEDS_GPU, measured_device
    from ..tasks import model_kwargs

    cfg = paper_config(spec, row)
    model = build_model(cfg, _num_classes(cfg), device="meta")
    trained = 100 * count_learnable(model) / sum(p.numel() for p in model.parameters())
    if not torch.cuda.is_available():
        shape = clip_shape(cfg)
        full = build_model(dataclasses.replace(cfg, model=dataclasses.replace(
            cfg.model, overrides={**cfg.model.overrides, "train_experts": True})), _num_classes(cfg), device="meta")
        frozen_gib, full_gib = (activation_bytes(m, shape) / 2**30 for m in (model, full))
        return Computed(None, f"needs GPU; activations {frozen_gib:.2f} / {full_gib:.2f} GiB/clip; {trained:.1f}% "
                              f"trained", NEEDS_GPU)
    dtype = _AUTOCAST.get(str(cfg.trainer.precision))
    cost = measure_training(cfg.model.name, batch=cfg.data.batch_size, repeats=10, num_classes=_num_classes(cfg),
                            device="cuda", autocast_dtype=getattr(torch, dtype) if dtype else None,
                            **model_kwargs(cfg))
    frozen, full = cost["frozen"], cost["full"]
    device = measured_device()
    return Computed(frozen["peak_mib"] / 1024,
                    f"{frozen['peak_mib'] / 1024:.1f} / {full['peak_mib'] / 1024:.1f} GiB, {frozen['step_ms']:.0f} / "
                    f"{full['step_ms']:.0f} ms; {trained:.1f}% trained (measured, batch {cfg.data.batch_size}, "
                    f"{dtype or 'fp32'}, {device})", MEASURED + device)


# The sweep: measured at 7a4a9cf, two runs side by side on the 2-core machine, one thread each (README: the sweep);
# the 30-epoch CAST run and Motionformer's schedules at a3969d2 plus edits that tiny runs do not reach (tests,
# paper-scale augmentation), beside other work on the cores; the 40-epoch run equals the tracked record bit for bit.
VERB_PLATEAU_NOTE = (
    "At the tiny schedule (6 epochs, 360 steps) the verb head stays near chance (6 verbs: 16.7%), so the verb and "
    "action columns do not rank the rows. The verbs of `synth_verbnoun` (its motions) take longer to learn than "
    "6 epochs whatever the model: Motionformer's tiny model trained from scratch on the same set gives verb 20.0 / "
    "18.3 / 30.0 / 84.6 / 84.2 at 6 / 10 / 20 / 30 / 40 epochs (`python -m experiments run mformer_table6c --rows "
    "mformer --seeds 1 --epochs E --threads 1`; 40 is its default and reproduces the tracked record bit for bit). "
    "CAST's row, "
    "seed 0, stays at 15-19% for every schedule up to 20 epochs at lr 1e-3, 3e-3 or 1e-2 and leaves chance at 30: "
    "verb 34.2, noun 74.6, action 24.2 (`python -m experiments run cast_table1c --rows cast --seeds 1 --epochs 30 "
    "--threads 1`, 4.7 min against 1.1 at 6 epochs; README: the sweep). Before CAST took the official "
    "initialisation and schedule shape (7a4a9cf), 20 epochs had lifted verbs to 28-39%.")


# ---- Table 1 (a)-(h): ablations on EPIC-KITCHENS-100 --------------------------------------------------------------

ABLATION_NOTE = ("Tiny rows train on `synth_verbnoun` (EK-100's stand-in: verbs are motions, nouns are looks); "
                 "the noun head reads the spatial expert, the verb head the temporal one. " + STAND_IN_NOTE + " "
                 + VERB_PLATEAU_NOTE)


def _ablation(table_id: str, rows: tuple[RowSpec, ...], notes: str = "", static: tuple[StaticColumn, ...] = (),
              columns: tuple[MetricColumn, ...] = EK100_COLUMNS,
              scales: Mapping[str, ScalePreset] = SCALES_ABLATION) -> TableSpec:
    """An ablation-style table (1a-1h, 5-8): EK-100 columns, the ablation recipe at paper scale."""
    return TableSpec(table_id=table_id, rows=rows, metric_columns=columns, static_columns=static, scales=scales,
                     notes=" ".join(n for n in (notes, ABLATION_NOTE) if n), tiny_seeds=THREE_SEEDS)


@register_table
def cast_table1a() -> TableSpec:
    return _ablation("cast_table1a", (
        RowSpec("indep_full", 0, "Indep. experts w/o adapter (fully fine-tuned)",
                {"exchange": "none", "adapters": False, "train_experts": True}, scales=DEFAULT),
        INDEPENDENT_ROW(1),
        RowSpec("ensemble", 2, "Ensemble of experts w/ adapter", {**INDEPENDENT_ADAPTER, "fusion": "ensemble"},
                scales=DEFAULT),
        CAST_ROW(3),
    ), notes="The ensemble averages the two adapted experts' class probabilities; trained as one model here "
             "(the paper ensembles two separately trained experts at test time).")


@register_table
def cast_table1b() -> TableSpec:
    return _ablation("cast_table1b", (
        RowSpec("late_add", 0, "Add (late fusion)", {"exchange": "none", "fusion": "add"}, scales=DEFAULT),
        RowSpec("late_concat", 1, "Concat (late fusion)", {"exchange": "none", "fusion": "concat"}, scales=DEFAULT),
        RowSpec("lateral", 2, "Lateral (layer-wise)", {"exchange": "lateral"}, scales=DEFAULT),
        CAST_ROW(3),
    ), notes="Add and Concat predict verbs and nouns from one classifier over the fused features.")


@register_table
def cast_table1c() -> TableSpec:
    return _ablation("cast_table1c", (
        INDEPENDENT_ROW(0, "Identity (no B-CAST; = independent experts w/ adapter)"),
        RowSpec("xattn", 1, "w/o adapter (full-width cross-attention)", {"exchange": "xattn"}, scales=DEFAULT),
        RowSpec("xattn_adapter", 2, "X-attn. -> adapter", {"exchange": "xattn_adapter"}, scales=DEFAULT),
        CAST_ROW(3, "B-CAST"),
    ), static=(StaticColumn("Tune Param(M)", learnable_params, note=TABLE1C_NOTE),
               StaticColumn("Train step: memory, time (frozen / all trainable)", training_cost,
                            note=TRAINING_COST_NOTE, inputs=training_cost_inputs)))


RATIOS = {"1/8": 0.125, "1/4": 0.25, "1/2": 0.5, "1": 1.0}


@register_table
def cast_table1d() -> TableSpec:
    return _ablation("cast_table1d", tuple(
        CAST_ROW(i) if ratio == 0.5 else
        RowSpec(f"ratio_{text.replace('/', '_')}", i, f"B-CAST ratio {text}", {"down_ratio": ratio}, scales=DEFAULT)
        for i, (text, ratio) in enumerate(RATIOS.items())))


WINDOWS = (("space_time", "space_time"), ("space_time", "space"), ("space", "space"), ("time", "space"))


def _positional_params(model: Any) -> int:
    """Learnable parameters of the B-CAST positional tables (``query_pos`` / ``key_pos``) of a CAST model."""
    return sum(p.numel() for n, p in model.named_parameters() if p.requires_grad and n.endswith("_pos"))


def positional_params(spec: TableSpec, row: RowSpec) -> Computed:
    """Learnable parameters (M) of the row's B-CAST positional tables at paper scale."""
    cfg = paper_config(spec, row)
    millions = _positional_params(build_model(cfg, _num_classes(cfg), device="meta")) / 1e6
    return Computed(millions, f"{millions:.1f} (computed)")


CAPACITY_NOTE = ("learnable parameters of the paper-scale model, counted (models.cast.count_learnable), and of its "
                 "B-CAST positional tables. Capacity is NOT equal across these rows, unlike the paper's (Sec. 4.5: "
                 "\"We maintain the same model capacity across different methods\"): the positional tables hold one "
                 "learnable vector per window position (query_pos and key_pos, window length x bottleneck width, per "
                 "cross-attention and block), so a space-time window (T*N positions) adds far larger tables than a "
                 "time (T) or space (N) window. The rows trained as configured; a factorised space-time table "
                 "(T x C plus N x C) would keep the tables near CAST's size, but is not what these runs used")


@register_table
def cast_table1e() -> TableSpec:
    return _ablation("cast_table1e", tuple(
        CAST_ROW(i) if (t2s, s2t) == ("time", "space") else
        RowSpec(f"t2s_{t2s}_s2t_{s2t}", i, f"T2S window {t2s}, S2T window {s2t}",
                {"t2s_window": t2s, "s2t_window": s2t}, scales=DEFAULT)
        for i, (t2s, s2t) in enumerate(WINDOWS)),
        static=(StaticColumn("Learnable Param (M)", learnable_params, note=CAPACITY_NOTE),
                StaticColumn("B-CAST pos. tables (M)", positional_params)))


# Paper: B-CAST in the last 3, 6, 9 or all 12 blocks; tiny: the same quarters of 4 blocks (last 1, 2, 3, all 4).
@register_table
def cast_table1f() -> TableSpec:
    rows = []
    for i, quarters in enumerate((1, 2, 3)):
        paper_blocks, tiny_blocks = tuple(range(12 - 3 * quarters, 12)), tuple(range(4 - quarters, 4))
        rows.append(RowSpec(
            f"last_{quarters}_quarters", i, f"B-CAST in blocks {paper_blocks[0] + 1}-12 (tiny: blocks "
            f"{'-'.join(dict.fromkeys((str(tiny_blocks[0] + 1), '4')))} of 4)",
            scales={s: {**DEFAULT[s], "model": {"exchange_blocks": blocks}}
                    for s, blocks in (("paper", paper_blocks), ("tiny", tiny_blocks))}))
    return _ablation("cast_table1f", (*rows, CAST_ROW(3, "B-CAST in every block")),
                     notes="Block ranges are 1-based as printed; the tiny model's 4 blocks stand for the paper's "
                           "four groups of 3.")


@register_table
def cast_table1g() -> TableSpec:
    return _ablation("cast_table1g", (
        INDEPENDENT_ROW(0),
        RowSpec("s2t_only", 1, "S2T only", {"directions": "s2t"}, scales=DEFAULT),
        RowSpec("t2s_only", 2, "T2S only", {"directions": "t2s"}, scales=DEFAULT),
        CAST_ROW(3),
    ))


@register_table
def cast_table1h() -> TableSpec:
    names = {"clip": ("CLIP", "clip"), "videomae": ("VideoMAE", "videomae_ek100")}
    rows = []
    for i, (spatial, temporal) in enumerate((("clip", "clip"), ("videomae", "clip"), ("videomae", "videomae"),
                                             ("clip", "videomae"))):
        if (spatial, temporal) == ("clip", "videomae"):
            rows.append(CAST_ROW(i, "Spatial CLIP, temporal VideoMAE (CAST)"))
            continue
        rows.append(RowSpec(f"{spatial}_{temporal}", i, f"Spatial {names[spatial][0]}, temporal {names[temporal][0]}",
                            {"spatial_expert": spatial, "temporal_expert": temporal},
                            scales=experts(names[spatial][1], names[temporal][1])))
    return _ablation("cast_table1h", tuple(rows), notes="An expert keeps its own structure and pooling in either "
                                                        "role (a CLIP temporal expert runs per frame).")


# ---- Tables 5-8: pretraining data, expert models, positional embeddings -----------------------------------------


@register_table
def cast_table5() -> TableSpec:
    return _ablation("cast_table5", (
        RowSpec("in21k_indep", 0, "Independent experts, IN21K spatial expert",
                {**INDEPENDENT_ADAPTER, "spatial_expert": "vit_in21k"}, scales=experts("vit_in21k")),
        RowSpec("in21k_cast", 1, "CAST, IN21K spatial expert", {"spatial_expert": "vit_in21k"},
                scales=experts("vit_in21k")),
        CAST_ROW(2, "CAST, CLIP spatial expert"),
    ), columns=EK100_COLUMNS_ACTION, scales=SCALES_PRETRAINING)


@register_table
def cast_table6() -> TableSpec:
    rows, i = [], 0
    for spatial, label in (("vit_in21k", "IN-21K"), ("clip", "CLIP")):
        for data, data_label in (("ek100", "EK100"), ("ssv2", "SSV2"), ("k400", "K400")):
            source = f"videomae_{data}"
            if (spatial, data) == ("clip", "ek100"):
                rows.append(CAST_ROW(i, "CAST, CLIP spatial, VideoMAE pretrained on EK100"))
            else:
                rows.append(RowSpec(f"{spatial}_{data}", i, f"CAST, {label} spatial, VideoMAE pretrained on "
                                    f"{data_label}", {"spatial_expert": spatial} if spatial != "clip" else {},
                                    scales=experts(spatial, source)))
            i += 1
    return _ablation("cast_table6", tuple(rows), notes="The temporal expert is VideoMAE pretrained on the named "
                                                       "data (tiny: the set standing in for it, named above).",
                     scales=SCALES_PRETRAINING)


@register_table
def cast_table7() -> TableSpec:
    return _ablation("cast_table7", (
        CAST_ROW(0, "CLIP + VideoMAE"),
        RowSpec("clip_mvd", 1, "CLIP + MVD", {"temporal_expert": "mvd"}, scales=experts("clip", "mvd_ek100")),
    ), notes="Rows 3-4 (EVA as the spatial expert) cannot be built here: EVA's ViT-B uses rotary position "
             "embeddings and SwiGLU MLPs, not a plain ViT-B (models.cast.experts.UNBUILDABLE_EXPERTS), so they "
             "have no spec row: their ‡ marks the paper's own numbers, shown because we cannot build the expert, "
             "not a citation of other work. MVD has VideoMAE's structure; at paper scale it "
             "loads MVD's released ViT-B. Tiny: MVD's feature distillation is not reproduced; its tiny expert is "
             "VideoMAE-style masked autoencoding with another seed, so this row measures the spread between two "
             "such experts, not MVD.")


@register_table
def cast_table8() -> TableSpec:
    return _ablation("cast_table8", (
        RowSpec("no_bcast_pos", 0, "CAST w/o B-CAST positional embeddings", {"exchange_pos": False}, scales=DEFAULT),
        CAST_ROW(1, "CAST w/ B-CAST positional embeddings"),
    ), columns=EK100_COLUMNS_ACTION)


# ---- Tables 2, 9-11: state of the art (only CAST's own rows are ours; the others are the paper's citations) ------

SOTA_NOTE = ("Only the rows with a spec (CAST, and the CAST authors' own fully fine-tuned single-expert baselines "
             "CLIP* / VideoMAE* where a table has them) are ours; the other rows are the paper's citations of other "
             "work, printed as published. " + STAND_IN_NOTE)
TEMPORAL_PRETRAINING = {"EK-100": "videomae_ek100", "SSv2": "videomae_ssv2", "K-400": "videomae_k400"}
# The tiny CLIP stand-in is a supervised classifier of the K-400 stand-in's own training split (finding of the
# audit; not retrained, so the tracked tiny records stay valid): the tiny K-400 columns say so.
_CLIP_ON_K400 = _CLIP_DATA.dataset == TINY_STAND_INS["K-400"].dataset
CLIP_LABELS_NOTE = (
    f"Tiny K-400 column: the tiny \"CLIP\" spatial expert was pretrained WITH LABELS on `{_CLIP_DATA.dataset}`, "
    f"the set standing in for K-400 here: frame classification of that set's own training split and labels "
    f"(the same {_CLIP_DATA.synthetic_params['num_train']} generated videos, seed "
    f"{_CLIP_DATA.synthetic_params['seed']}, all its classes), so every K-400 stand-in row starts "
    f"from a spatial expert (and CLIP* from a whole model) that already classifies this very task. The paper's "
    f"CLIP never saw K400's labels; the tiny K-400 column favours the spatial expert and CLIP*, and its CLIP* vs "
    f"CAST comparison does not stand for the paper's.") if _CLIP_ON_K400 else ""
# The CAST authors' single-expert baselines (marked * in the paper): the expert alone, every parameter trained.
CLIP_ALONE = {"experts": "spatial", "adapters": False, "train_experts": True}
VIDEOMAE_ALONE = {"experts": "temporal", "adapters": False, "train_experts": True}


def harmonic_mean(*values: float) -> float:
    return len(values) / sum(1.0 / v for v in values)


def _dataset_columns(data_key: str, name: str) -> tuple[MetricColumn, ...]:
    """One single-label column of a dataset at its own recipe (Table 4): epochs, update frequency, mixup
    probability and drop path at paper scale, so the cell is the same run as Table 10's or 11's CAST row."""
    column = PAPER_PER_DATASET[data_key]
    return (MetricColumn(name, "top1", dataset=data_key, run=data_key, scales={
        "tiny": {"pretrained": experts("clip", TEMPORAL_PRETRAINING[data_key])["tiny"]["pretrained"]},
        "paper": {"optim": {"epochs": column.epochs, "mixup_prob": column.mixup_prob},
                  "trainer": {"accumulate_grad_batches": column.update_frequency},
                  "model": {"drop_path_rate": column.drop_path},
                  "pretrained": experts("clip", TEMPORAL_PRETRAINING[data_key])["paper"]["pretrained"]}}),)


TABLE2_SSV2, TABLE2_K400 = "SSV2 & K400 Top-1 / SSV2", "SSV2 & K400 Top-1 / K400"
TABLE2_EK100 = verb_noun_columns(("EK100 Top-1 / Verb", "EK100 Top-1 / Noun", "EK100 Top-1 / Act."))


@register_table
def cast_table2() -> TableSpec:
    return TableSpec(
        table_id="cast_table2",
        rows=(RowSpec("clip_alone", 0, "CLIP* (spatial expert alone, fully fine-tuned)", CLIP_ALONE,
                      scales=one_expert("spatial", "clip")),
              CAST_ROW(16)),
        metric_columns=(*TABLE2_EK100, *_dataset_columns("SSv2", TABLE2_SSV2), *_dataset_columns("K-400", TABLE2_K400)),
        static_columns=(StaticColumn("GFLOPs/ View", gflops_per_view, note=GFLOPS_NOTE),),
        derived_columns=(
            DerivedColumn("SSV2 & K400 Top-1 / H.M.", (TABLE2_SSV2, TABLE2_K400), harmonic_mean,
                          note="H.M.: harmonic mean of our top-1s (SSV2, K400; All: EK100 verb and noun, SSV2, "
                               "K400, which reproduces the paper's figures from its own columns)"),
            DerivedColumn("All / H.M.", (TABLE2_EK100[0].column, TABLE2_EK100[1].column, TABLE2_SSV2, TABLE2_K400),
                          harmonic_mean)),
        scales=SCALES_EK100,
        tiny_seeds=THREE_SEEDS,
        notes="Each column trains CAST with the temporal expert pretrained on that column's data (VideoMAE on "
              "EK100 / SSV2 / K400; tiny: the stand-in set), at that dataset's recipe of Table 4. " + SOTA_NOTE + " "
              "CLIP* alone has no temporal expert: each column's recipe, the same CLIP. The paper prints other "
              "CLIP* numbers here than in Tables 9-11; ours are one run per column for both. "
              + VERB_PLATEAU_NOTE + (" " + CLIP_LABELS_NOTE if CLIP_LABELS_NOTE else ""),
    )


SOTA_STATIC = (StaticColumn("TFLOPs", tflops_views, digits=2, note=GFLOPS_NOTE, inputs=views_inputs()),
               StaticColumn("Learnable Param (M)", learnable_params, note=PARAMS_NOTE))


def _sota(table_id: str, data_key: str, rows: tuple[RowSpec, ...], columns: tuple[MetricColumn, ...]) -> TableSpec:
    return TableSpec(table_id=table_id, rows=rows, metric_columns=columns, static_columns=SOTA_STATIC,
                     scales={"tiny": CAST_TINY, "paper": paper_preset(data_key)},
                     notes=SOTA_NOTE + (" " + VERB_PLATEAU_NOTE if data_key == "EK-100" else "")
                     + (" " + CLIP_LABELS_NOTE if data_key == "K-400" and CLIP_LABELS_NOTE else ""),
                     tiny_seeds=THREE_SEEDS)


@register_table
def cast_table9() -> TableSpec:
    return _sota("cast_table9", "EK-100", (
        RowSpec("clip_alone", 3, "CLIP* (spatial expert alone, fully fine-tuned)", CLIP_ALONE,
                scales=one_expert("spatial", "clip")),
        RowSpec("videomae_alone", 11, "VideoMAE* (temporal expert alone, fully fine-tuned)", VIDEOMAE_ALONE,
                scales=one_expert("temporal", "videomae_ek100")),
        CAST_ROW(15, "CAST (VideoMAE pretrained on EK100)"),
    ), EK100_COLUMNS_ACTION)


def _single_label_sota(table_id: str, data_key: str, clip_row: int, cast_row: int) -> TableSpec:
    temporal = TEMPORAL_PRETRAINING[data_key]
    return _sota(table_id, data_key, (
        RowSpec("clip_alone", clip_row, "CLIP* (spatial expert alone, fully fine-tuned)", CLIP_ALONE,
                scales=one_expert("spatial", "clip")),
        RowSpec(f"cast_{temporal}", cast_row, f"CAST (VideoMAE pretrained on {data_key})",
                scales=experts("clip", temporal)),
    ), (MetricColumn("Top-1 Acc.", "top1", dataset=data_key, run=data_key),))


@register_table
def cast_table10() -> TableSpec:
    return _single_label_sota("cast_table10", "SSv2", 1, 15)


@register_table
def cast_table11() -> TableSpec:
    return _single_label_sota("cast_table11", "K-400", 4, 19)


# ---- Table 3: B-CAST's stage-wise shapes, traced on the meta device -------------------------------------------

# Paper row (printed top-down, from the output back to the input) -> the traced stage(s) of models.cast.complexity.
# "Post processing" is the cross-attention's output back in the (B, T, N, C) grid; "Pre processing" and
# "Cross-Attention" are the windows the cross-attentions work on (their outputs keep the queries' shape).
STAGES = (
    ("up_projection", "Up Projection", ("up projection",)),
    ("post_processing", "Post Processing", ("cross-attention output",)),
    ("cross_attention", "Cross-Attention", ("cross-attention windows (queries)",)),
    ("positional_embeddings", "Positional Embeddings", ("positional embeddings", "cross-attention windows (queries)")),
    ("pre_processing", "Pre processing", ("cross-attention windows (queries)",)),
    ("gather", "Gather Features", ("down projection",)),
    ("down_projection", "Down Projection", ("down projection",)),
    ("input", "Input of B-CAST", ("input of B-CAST", "input of B-CAST (class tokens)")),
)
TRACE_BATCH = 5  # no dimension of the traced model divides by 5, so a factor 5 is the batch and prints as B


@functools.cache
def _traced_stages() -> dict[tuple[str, str], tuple[int, ...]]:
    from models.cast.complexity import stage_shapes

    return {(stage, expert): shape for stage, expert, shape in stage_shapes("cast_base", batch=TRACE_BATCH)}


def _shape_text(shape: tuple[int, ...]) -> str:
    def dim(d: int) -> str:
        if d == TRACE_BATCH:
            return "B"
        return f"B·{d // TRACE_BATCH}" if d % TRACE_BATCH == 0 else str(d)
    return " × ".join(dim(d) for d in shape)


def _stage_shapes(expert: str) -> Callable[[TableSpec, RowSpec], Computed]:
    def compute(spec: TableSpec, row: RowSpec) -> Computed:
        traced = _traced_stages()
        stages = next(s for key, _, s in STAGES if key == row.key)
        parts = []
        for stage in stages:
            if (stage, expert) not in traced:
                continue
            text = _shape_text(traced[(stage, expert)])
            parts.append(f"{stage}: {text}" if len(stages) > 1 else text)
        other = "temporal" if expert == "spatial" else "spatial"
        if row.key == "gather":  # each expert receives the other's down-projected tokens
            parts.append(f"from the {other} expert: {_shape_text(traced[('down projection', other)])}")
        return Computed(None, "; ".join(parts))
    return compute


TRACE_NOTE = ("traced, not typed: the shapes of block 1's B-CAST tensors in a forward pass of the paper-scale model "
              "on the meta device (models.cast.complexity.stage_shapes), batch B. Patch tokens are kept as a "
              "(B, T, N, C) grid, with the spatial expert's class tokens (B, T, C) beside it: the paper's "
              "(196 + 1) × B·8 × C and B × 8·196 × C are the same tensors laid out otherwise. Positional tables "
              "are parameters (tokens per window × C)")


@register_table
def cast_table3() -> TableSpec:
    return TableSpec(
        table_id="cast_table3",
        rows=tuple(RowSpec(key, i, label) for i, (key, label, _) in enumerate(STAGES)),
        metric_columns=(),
        static_columns=(StaticColumn("Spatial Expert / Output Tensor Shape", _stage_shapes("spatial"), note=TRACE_NOTE),
                        StaticColumn("Temporal Expert / Output Tensor Shape", _stage_shapes("temporal"))),
        scales=SCALES_EK100,
        notes="No training: the shapes are traced from the model the paper-scale rows build.",
    )


# ---- Table 4: hyper-parameters, rendered from the paper-scale presets ------------------------------------------

def _rand_augment(data: DataConfig) -> str:
    magnitude, ops = data.options["rand_augment"]
    return (f"magnitude {magnitude}, std 0.5, {ops} ops (the official code's count), on the whole frames before "
            f"the random resized crop")


# Table 4's cells, each read from a paper-scale preset and its dataset's data configuration.
_RENDERED: dict[str, Callable[[ScalePreset, DataConfig], str]] = {
    "optimizer": lambda preset, data: {"adamw": "AdamW"}.get(preset.optim.optimizer, preset.optim.optimizer),
    "lr": lambda preset, data: f"{preset.optim.lr:g} (× global batch / {preset.trainer.reference_batch})",
    "weight_decay": lambda preset, data: f"{preset.optim.weight_decay:g}",
    "momentum": lambda preset, data: "β1, β2=0.9, 0.999 (timm's AdamW default; not configurable)",
    "batch": lambda preset, data: str(data.batch_size),
    "update_frequency": lambda preset, data: str(preset.trainer.accumulate_grad_batches),
    "schedule": lambda preset, data: ({"cosine": "cosine decay"}.get(preset.optim.schedule, preset.optim.schedule)
                                      + f" to {preset.optim.min_lr_ratio:g} x the peak lr (the official min_lr)"),
    "warmup": lambda preset, data: (f"{preset.optim.warmup_epochs:g} (linear from lr "
                                    + (f"{preset.optim.warmup_start:g} x the peak" if preset.optim.warmup_start
                                       else "0") + ", the official code's)"),
    "epochs": lambda preset, data: str(preset.optim.epochs),
    "flip": lambda preset, data: "yes" if data.hflip else "no",
    "color_jitter": lambda preset, data: f"{data.options['color_jitter']:g} (the official code applies none)",
    "rand_augment": lambda preset, data: _rand_augment(data),
    "label_smoothing": lambda preset, data: f"{preset.optim.label_smoothing:g}",
    "mixup": lambda preset, data: (f"{preset.optim.mixup_alpha:g} (applied to a batch with probability "
                                   f"{preset.optim.mixup_prob:g}, the official script's)"),
    "drop_path": lambda preset, data: f"{preset.model.overrides['drop_path_rate']:g}",
    "layer_decay": lambda preset, data: f"{preset.optim.layer_decay:g}",
}


HYPERPARAMETERS = (("optimizer", "Optimizer"), ("lr", "Base learning rate"), ("weight_decay", "Weight decay"),
                   ("momentum", "Optimizer momentum"), ("batch", "Batch size per GPU"),
                   ("update_frequency", "Update frequency (accumulated batches)"),
                   ("schedule", "Learning rate schedule"), ("warmup", "Warmup epochs"), ("epochs", "Training epochs"),
                   ("flip", "Flip augmentation"), ("color_jitter", "Color jitter"), ("rand_augment", "RandAug"),
                   ("label_smoothing", "Label smoothing"), ("mixup", "Mixup"), ("drop_path", "Drop path"),
                   ("layer_decay", "Layer-wise lr decay"))


def _hyperparameter(data_key: str) -> Callable[[TableSpec, RowSpec], str]:
    def render(spec: TableSpec, row: RowSpec) -> str:
        preset = paper_preset(data_key)
        return _RENDERED[row.key](preset, preset.data[data_key])
    return render


def _preset_inputs(data_key: str) -> Callable[[TableSpec, RowSpec], dict[str, Any]]:
    def inputs(spec: TableSpec, row: RowSpec) -> dict[str, Any]:
        preset = paper_preset(data_key)
        data = {k: v for k, v in dataclasses.asdict(preset.data[data_key]).items() if k not in ("root", "num_workers")}
        return {"model": dataclasses.asdict(preset.model), "data": data, "optim": dataclasses.asdict(preset.optim),
                "trainer": dataclasses.asdict(preset.trainer)}
    return inputs


@register_table
def cast_table4() -> TableSpec:
    return TableSpec(
        table_id="cast_table4",
        rows=tuple(RowSpec(key, i, label) for i, (key, label) in enumerate(HYPERPARAMETERS)),
        metric_columns=(),
        static_columns=tuple(StaticColumn(column, _hyperparameter(key), inputs=_preset_inputs(key),
                                          note="rendered from the paper-scale preset each dataset's runs of "
                                               "Tables 2 and 9-11 use (experiments.cast.paper_preset)")
                             for column, key in (("EK100", "EK-100"), ("K400", "K-400"), ("SSV2", "SSv2"))),
        scales=SCALES_EK100,
        notes="No training: each cell is read back from the configuration the paper-scale runs of Tables 2 and 9-11 "
              "train with (experiments.cast.paper_preset), so the table and the configuration cannot disagree. The "
              "ablations (Tables 1a-1h, Sec. 4.2) and Appendix D's Tables 5-8 (footnote 4) train with the same EK100 "
              f"column at update frequency {ABLATION_UPDATE_FREQUENCY} and layer decay {ABLATION_LAYER_DECAY:g} "
              "(experiments.cast.ablation_preset). Not in the table: the paper-scale inputs are "
              f"normalised with mean {_PAPER_DATA_OPTIONS['mean']} and std {_PAPER_DATA_OPTIONS['std']} (ImageNet's, "
              "as the official code's data pipeline; the paper does not state it).",
    )
