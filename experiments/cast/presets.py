"""CAST (Lee, Lee & Choi, "CAST: Cross-Attention in Space and Time for Video Action Recognition", NeurIPS 2023,
paper 004): the scales its tables share.

Every row is ``models.cast.CAST`` with the options its table varies. ``paper``: ``cast_base`` with released expert
checkpoints and two recipes, Table 4's (``paper_preset``: Tables 2, 9-11) and the ablations' (``ablation_preset``:
Tables 1a-1h, 5-8); ``tiny``: ``cast_tiny`` on the generated sets with the shipped experts (``CAST_TINY`` here;
``experiments.cast.experts.tiny_source``), each set for its ``TINY_EPOCHS``. Rows that name the same options resolve
to one run per scale, trained once. Each setting and where it comes from:
docs/cast_paper_scale.md#paper-scale-sec-42-table-4.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

from ..harness.spec import MetricColumn, ModelConfig, OptimConfig, RowSpec, ScalePreset
from ..presets import EPIC_KITCHENS_100, GPU_TRAINER, KINETICS_400, SSV2, TINY_OPTIM, TINY_STAND_INS, TINY_TRAINER
from .experts import experts
from .shipped import SHIPPED_NOTE

TINY_VERBS, PAPER_VERBS, PAPER_NOUNS = 6, 97, 300  # synth_verbnoun's verbs (tested); EPIC-KITCHENS-100's classes


# The official schedule: the warm-up starts at 0 and the cosine ends at min_lr 1e-6, which the script scales with the
# batch as it does the lr 1e-3: 1e-3 of the peak.
_OFFICIAL_SCHEDULE = dict(warmup_start=0.0, min_lr_ratio=1e-3)

# Table 4: base lr 1e-3 at a global batch of 256, scaled linearly to the actual one.
# The warm-up is the official np.linspace(0, lr, W): at the peak on its last step (the tiny rows keep the default).
_PAPER_OPTIM = OptimConfig(optimizer="adamw", lr=1e-3, weight_decay=0.05, label_smoothing=0.1, epochs=50,
                           warmup_epochs=5, warmup_endpoint="inclusive", schedule="cosine", mixup_alpha=0.8,
                           **_OFFICIAL_SCHEDULE)

# Table 4's RandAugment (9, 0.5) with the official code's 4 ops, as timm's RandAugment that the official code runs
# (its `--aa rand-m7-n4-mstd0.5-inc1`, at Table 4's magnitude 9, not the code's 7), and colour jitter 0.4; Sec. 4.2's
# random resized crop with the official ranges instead of the shared presets' short-side jitter (README: paper scale).
PAPER_RESIZED_CROP = ((0.08, 1.0), (0.75, 1.3333))
PAPER_RAND_AUGMENT = "rand-m9-n4-mstd0.5-inc1"
_PAPER_AUGMENT = {"timm_rand_augment": PAPER_RAND_AUGMENT, "color_jitter": 0.4,
                  "random_resized_crop": PAPER_RESIZED_CROP}

# ImageNet's statistics, as the official data pipeline: the frozen experts' patch embeddings were trained on inputs
# at this scale, not the datamodule's default 0.5 / 0.5 (which the tiny experts are trained and evaluated with).
PAPER_NORMALIZATION = {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}
# The official test's centre crop at int((L - 224) / 2) of the long side L (PySlowFast's, the default, rounds up)
OFFICIAL_CENTRE_CROP = {"test_centre_rounding": "floor"}
PAPER_DATA_OPTIONS = {**_PAPER_AUGMENT, **PAPER_NORMALIZATION, **OFFICIAL_CENTRE_CROP}

# The two temporal test views of the segment-sampled sets: each segment's first frame, then its middle, as the
# official loadvideo_decord, not the evenly spaced default (1/4 and 3/4 of each segment)
OFFICIAL_SEGMENT_VIEWS = {"segment_view_offsets": (0.0, 0.5)}

# K400's clips as the official code (VideoMAE's) samples them (data/README.md: clip sampling)
OFFICIAL_DENSE_CLIPS = {"dense_convention": "videomae"}
# The official epoch: len(train set) // global batch optimizer steps (run_bidirection*.py), the batches past them
# skipped (engine_for_*.py's train_one_epoch), not Lightning's last, partial accumulation: 439 steps an epoch on
# SSv2 where Lightning takes 440 (the warm-up 2,195 steps, not 2,200)
_PAPER_TRAINER = dataclasses.replace(GPU_TRAINER, devices=8, num_nodes=2, accumulate_grad_batches=4,
                                     reference_batch=256, lr_scaling="linear", epoch_steps="whole_global_batches")
PAPER_DATA = {
    "EK-100": dataclasses.replace(EPIC_KITCHENS_100, num_frames=16, batch_size=6, test_clips=2, test_crops=3,
                                  options={**PAPER_DATA_OPTIONS, **OFFICIAL_SEGMENT_VIEWS}),
    "SSv2": dataclasses.replace(SSV2, num_frames=16, batch_size=6, test_clips=2, test_crops=3,
                                options={**PAPER_DATA_OPTIONS, **OFFICIAL_SEGMENT_VIEWS}),
    "K-400": dataclasses.replace(KINETICS_400, num_frames=16, frame_stride=4, batch_size=6, test_clips=5,
                                 test_crops=3, options={**PAPER_DATA_OPTIONS, **OFFICIAL_DENSE_CLIPS}),
}


class Table4Column(NamedTuple):
    """What Table 4 (and the official scripts, for the mixup probability) set per dataset."""

    epochs: int
    update_frequency: int
    drop_path: float
    # the probability that a batch is mixed: the official scripts' --mixup_prob; the paper gives only mixup's alpha
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


# Principle 3 of docs/tiny_regime_design.md, the plateau measured outside the table: each set trains the epochs
# Motionformer's tiny tables train on it (Table 6c on synth_verbnoun; the shared preset on the other two). The
# preset trains EK-100's; a column on another set states its set's in its own tiny entry.
TINY_EPOCHS = {"EK-100": 40, "SSv2": TINY_OPTIM.epochs, "K-400": TINY_OPTIM.epochs}

CAST_TINY = ScalePreset(
    description="tiny: CAST with 96-d experts of 4 blocks and 6 heads, 8x32x32 clips in 8x8 patches, experts from "
                "the shipped stand-ins (experiments/tiny_pretraining/weights/), frozen except adapters, B-CAST, last "
                "LayerNorms and heads; AdamW, cosine schedule, 40 epochs on synth_verbnoun and 10 on the other "
                "sets, on CPU",
    model=ModelConfig(name="cast_tiny"),
    data={key: TINY_STAND_INS[key] for key in TINY_EPOCHS},
    optim=dataclasses.replace(TINY_OPTIM, epochs=TINY_EPOCHS["EK-100"], **_OFFICIAL_SCHEDULE),
    trainer=TINY_TRAINER,
)

# What every CAST table that trains says of its tiny scale, after its own notes.
TINY_NOTE = (
    f"{SHIPPED_NOTE} Every row trains {TINY_EPOCHS['EK-100']} epochs on `synth_verbnoun`, past the ~20-epoch "
    f"plateau of its verbs, and {TINY_EPOCHS['SSv2']} on `synth_motion_pairs` and `synth_objects`: the epochs "
    f"Motionformer's tiny tables train on each set (docs/tiny_regime_design.md, amendment 7).")


def ablation_preset() -> ScalePreset:
    """The paper-scale preset of the ablations (Tables 1a-1h, Sec. 4.2) and of Appendix D's Tables 5-8 (footnote
    4): Table 4's EK100 column with update frequency 2 (global batch 192, lr 7.5e-4) and layer decay 0.8."""
    return paper_preset("EK-100", ABLATION_UPDATE_FREQUENCY, ABLATION_LAYER_DECAY,
                        recipe="ablation recipe of Sec. 4.2 / footnote 4 (Tables 1a-1h, 5-8): update frequency 2, "
                               "layer decay 0.8")


# Tables 2 and 9-11 (state of the art) and the untrained Tables 3-4: Table 4's recipe.
SCALES_EK100 = {"tiny": CAST_TINY, "paper": paper_preset("EK-100")}

# Tables 1a-1h and 5-8: the ablation recipe.
SCALES_ABLATION = {"tiny": CAST_TINY, "paper": ablation_preset()}


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
