"""X-ViT supplementary (Bulat et al., "Space-time Mixing Attention for Video Transformer", paper 003): Tables 1-2
and Figure 1 as specs.

X-ViT is the frame-wise ViT whose keys and values mix channels of frames t-1, t and t+1 (``attn_layer="xvit"``);
TSM-ViT shifts the residual stream's channels in time before each MSA (supplementary Eq. 1-3); either pools its
per-frame class tokens by averaging (TSM's) or by X-ViT's temporal attention (``models.video_vit``).

Only the supplementary is in this repository: it does not state X-ViT's training recipe, frames or input size
(it refers to the main paper). The paper-scale recipe is the official X-ViT code's (1adrianb/video-transformers,
which the supplementary builds on), one preset per dataset config (``XVIT_PAPER_SSV2``, ``XVIT_PAPER_K400``), each
value with its file and line in the comments below. What it is, what we chose where the configs disagree or are
silent, and what is not modelled: ``RECIPE_CHOICES``, which every report prints. Also from the official code: the
temporal-attention head (``TemporalAttentionPool``, its ``VitHead``), the key/value channels mixed per dataset
(``SHIFT_DIV``) and the backbone's temporal table on every token of a frame (``pos_embed="separate"``).
The tiny scale is MSCA's CPU-size frame-wise ViT (12 heads of 8 channels, 4 blocks) on the generated sets.
"""

from __future__ import annotations

import dataclasses

from ..harness.spec import (
    Computed,
    MetricColumn,
    ModelConfig,
    OptimConfig,
    RowSpec,
    ScalePreset,
    StaticColumn,
    SweepPlot,
    TableSpec,
    register_experiment,
    register_table,
)
from ..harness.static import MEASURED, paper_config
from ..harness.tasks import VIDEO_CLASSIFICATION, Task, register_task, tested_only
from ..harness.timings import inference_rate
from ..presets import (
    FIVE_SEEDS,
    GPU_TRAINER,
    KINETICS_400,
    KINETICS_600,
    PYSLOWFAST_SEGMENTS,
    SSV2,
    TINY_FRAME_WISE,
    at_power_rule,
)

# ---- scales ------------------------------------------------------------------------------------------------------

# The official X-ViT code (github.com/1adrianb/video-transformers, commit 82ca176) is the recipe's source; the
# paper's README lists each value's file and line. Its global batch is 64 clips on 8 GPUs; BASE_LR is stated for
# that batch and another one scales it linearly.
OFFICIAL_GLOBAL_BATCH, OFFICIAL_GPUS = 64, 8
XVIT_PAPER_TRAINER = dataclasses.replace(GPU_TRAINER, devices=OFFICIAL_GPUS, reference_batch=OFFICIAL_GLOBAL_BATCH,
                                         lr_scaling="linear")
# Google's original ImageNet-21K ViT-B/16 (the code's vit_base_patch16_224_in21k), not timm's later AugReg one.
XVIT_PAPER_MODEL = ModelConfig(name="vit_base_patch16_frame", pretrained="timm:vit_base_patch16_224.orig_in21k")
# Nesterov SGD, cosine over every epoch (PySlowFast's lr policy of the code's date: the warm-up ends on the cosine's
# value, not at the peak); every parameter decays but the head's biases.
_OFFICIAL_SGD = dict(optimizer="sgd", momentum=0.9, lr=0.03, warmup_epochs=5, schedule="cosine", cosine_over="all",
                     milestones=(), weight_decay_exempt="head_biases")
# AutoAugment "v0" on the decoded frames, one draw per clip, in place of RandAugment; SSv2 adds random erasing (its
# RAND_CROP 0.5); Kinetics' training crop is TSN's multi-scale crop (USE_XVIT_AGUMENTATION).
OFFICIAL_AUGMENT_SSV2 = {"auto_augment": "v0", "random_erasing": 0.5}
OFFICIAL_AUGMENT_K400 = {"auto_augment": "v0", "multi_scale_crop": True}
# Kinetics' clips as the code ships: its loader always reads per-video HDF5 frames (slowfast/datasets/kinetics.py
# l.89) and scales the clip's span by the video's rate only where annotation/<split>_fps.txt exists (l.178-199),
# which the repository does not ship; without it PySlowFast's clip spans stride x frames of the video's own frames
# (image_decoder.py l.149-154). FPS_SCALED_KINETICS_CLIPS: theirs with that file, each video's rate scaling the
# span (`--set data.options.dense_convention=pyslowfast`).
OFFICIAL_KINETICS_CLIPS = {"dense_convention": "pyslowfast_frames"}
FPS_SCALED_KINETICS_CLIPS = {"dense_convention": "pyslowfast"}

# The official SSv2 yaml's 2 x 3 test views, for `--set`: each segment's middle then its first frame, on their
# segments (PYSLOWFAST_SEGMENTS: (L - 1) / 16 frames with rounded ends; tests/parity/test_xvit_pipeline.py)
SSV2_YAML_VIEWS = {"test_clips": 2, "options": {**OFFICIAL_AUGMENT_SSV2, **PYSLOWFAST_SEGMENTS,
                                                "segment_view_offsets": (0.5, 0.0)}}

XVIT_PAPER_SSV2 = ScalePreset(
    description="paper (the official X-ViT code's SSv2 recipe, configs/SSv2/xvit_B16_16x16.yaml): frame-wise "
                "ViT-B/16 (ImageNet-21K init), 16x224x224, Nesterov SGD lr 0.03 per 64 clips, cosine, 35 epochs",
    model=XVIT_PAPER_MODEL,
    # 16 frames, one per segment; 1 x 3 test views (each segment's middle frame), as the supplementary reports every
    # result; the yaml's 2 x 3 views: SSV2_YAML_VIEWS
    data={"SSv2": dataclasses.replace(SSV2, num_frames=16, batch_size=OFFICIAL_GLOBAL_BATCH // OFFICIAL_GPUS,
                                      test_clips=1, test_crops=3, test_view_average="logits",
                                      options={**OFFICIAL_AUGMENT_SSV2, **PYSLOWFAST_SEGMENTS})},
    optim=OptimConfig(**_OFFICIAL_SGD, warmup_start=0.003 / 0.03, weight_decay=1e-4, epochs=35,
                      label_smoothing=0.0, mixup_alpha=0.0),
    trainer=XVIT_PAPER_TRAINER,
)
XVIT_PAPER_K400 = ScalePreset(
    description="paper (the official X-ViT code's Kinetics-400 recipe, configs/Kinetics/xvit_B16_16x16_k400.yaml; "
                "8 frames our choice): frame-wise ViT-B/16 (ImageNet-21K init), 8x224x224, Nesterov SGD lr 0.03 per "
                "64 clips, cosine, 30 epochs, mixup 0.4",
    model=XVIT_PAPER_MODEL,
    # 8 frames at stride 8 are ours: the yaml's 16 frames disagree with its 8 segments, and the supplementary's
    # Table 1 lists X-ViT at 8x224².
    data={"K-400": dataclasses.replace(KINETICS_400, num_frames=8, frame_stride=8,
                                       batch_size=OFFICIAL_GLOBAL_BATCH // OFFICIAL_GPUS, test_clips=1, test_crops=3,
                                       test_view_average="logits",
                                       options={**OFFICIAL_AUGMENT_K400, **OFFICIAL_KINETICS_CLIPS})},
    # label smoothing 0.3: the default of the yaml's smooth_cross_entropy, which the training script builds bare
    optim=OptimConfig(**_OFFICIAL_SGD, warmup_start=0.01 / 0.03, weight_decay=1e-5, epochs=30,
                      label_smoothing=0.3, mixup_alpha=0.4),
    trainer=XVIT_PAPER_TRAINER,
)
# Tiny: the frame-wise ViT from the image stand-in, on synth_objects (K-400) and synth_motion_pairs (SSv2).
SCALES_K400 = {"tiny": TINY_FRAME_WISE, "paper": XVIT_PAPER_K400}
SCALES_SSV2 = {"tiny": TINY_FRAME_WISE, "paper": XVIT_PAPER_SSV2}
RECIPE_CHOICES = (
    "Paper-scale recipe from the official X-ViT code (1adrianb/video-transformers; the supplementary refers to its "
    "main paper, which is not here), per dataset config. Both: ViT-B/16 from ImageNet-21K, SGD with Nesterov "
    "momentum 0.9, lr 0.03 for a global batch of 64 (8 GPUs x 8 clips; another global batch scales it linearly), "
    "5 warm-up epochs (from 1/10 of the lr on SSv2, 1/3 on Kinetics-400: the configs' WARMUP_START_LR) onto a "
    "cosine decay that spans every epoch, so the warm-up ends at 0.95 (SSv2) or 0.93 (Kinetics-400) of the lr "
    "(PySlowFast's lr policy of the code's date; that file is not in the official copy, whose defaults date it), "
    "and in training AutoAugment (timm's \"v0\" policy) on the decoded frames before the spatial scaling "
    "and crop, the same draw for every frame of a clip, instead of RandAugment. "
    "SSv2 (configs/SSv2/xvit_B16_16x16.yaml): 35 epochs, weight decay 1e-4, "
    "cross-entropy without label smoothing, no mixup, random erasing with probability 0.5 (its RAND_CROP: one box "
    "for all frames of the cropped, normalised clip), 16 frames (one per segment), 1 clip (every segment's middle "
    "frame) x 3 crops at test, as the supplementary reports all its results (the yaml's TEST.NUM_ENSEMBLE_VIEWS 2 "
    "adds each segment's first frame: --set data.test_clips=2 with the option segment_view_offsets [0.5, 0.0] "
    "tests so). Both: the test views' logits averaged (tools/test_net.py "
    "sums the model's outputs, which are logits); Kinetics' clips PySlowFast's (decoder.py at DATA.TARGET_FPS 30: "
    "the stride counted at 30 fps). "
    "Kinetics-400 (configs/Kinetics/xvit_B16_16x16_k400.yaml): 30 epochs, weight decay 1e-5, label smoothing 0.3 "
    "(its smooth_cross_entropy's default), mixup alpha 0.4, 1 clip x 3 crops at test. Our choices: 8 frames at "
    "stride 8 on Kinetics-400 (the config's 16 frames at rate 16 disagree with its 8 segments; the supplementary's "
    "Table 1 lists X-ViT at 8x224²); TSM-ViT shifts 1/8 each way (TSM's fold_div 8). "
    "Dropout 0.5 as the official model's: "
    "on every frame's feature before the temporal aggregation, and before the classifier inside the "
    "temporal-attention head (the tiny rows train without dropout). Not exactly the official code's: the two files "
    "that define its AutoAugment and random erasing (slowfast/datasets/data_augment.py, rand_erasing.py) are not in "
    "the copy we read, so we apply today's timm AutoAugment \"v0\" and timm's RandomErasing at its defaults (a box "
    "of 2% to 1/3 of the frame, aspect ratio 0.3 to 3.3, filled with 0, the mean after normalisation), and the same "
    "draw on every frame is our reading of their one call per clip and of syncronized=True. Kinetics-400's "
    "training crop is the official code's random_scale_and_resize (USE_XVIT_AGUMENTATION; TSN's multi-scale crop): "
    "a window of 1, 0.875, 0.75 or 0.66 of the short side on each axis (at most one step apart) at one of 13 fixed "
    "positions, resized to 224 x 224 (antialiased bilinear, as PIL's, on float frames), in place of the config's "
    "scale jitter. Weight decay as the official optimizer's: on every parameter (norms, biases, embeddings) "
    "but the classification head's biases. "
    "From the official code as well: the temporal-attention head is its VitHead (a zero class token, one block "
    "without q/k/v bias, then LayerNorm, Linear and GELU before the classifier, at torch's default "
    "initialisation); X-ViT mixes 1/4 of the key/value channels from each neighbour frame on SSv2 "
    "and 1/8 on Kinetics (its SHIFT_DIV 4 and 8), and every row adds a learnable temporal table to all tokens of a "
    "frame, class token included (its temp_embed).")

# ---- models ------------------------------------------------------------------------------------------------------

# Every row: the official X-ViT backbone's temporal table (temp_embed), on every token of a frame.
TEMPORAL_TABLE = {"pos_embed": "separate"}
XVIT_MIXING_SSV2 = {"attn_layer": "xvit", "attn_kwargs": {"shift_fraction": 0.5}, **TEMPORAL_TABLE}  # SHIFT_DIV 4
XVIT_MIXING_K400 = {"attn_layer": "xvit", "attn_kwargs": {"shift_fraction": 0.25}, **TEMPORAL_TABLE}  # SHIFT_DIV 8
TSM_SHIFT = {"temporal_shift": "all", "shift_fraction": 0.25, "shift_before": ("attn",),  # TSM's fold_div 8
             **TEMPORAL_TABLE}
AVERAGE, TEMPORAL_ATTENTION = {"temporal_aggregation": "average"}, {"temporal_aggregation": "attention"}
XVIT_K400 = {**XVIT_MIXING_K400, **TEMPORAL_ATTENTION}
# MODEL.DROPOUT_RATE 0.5, paper scale only: XVIT._prepare_classifier (slowfast/models/video_model_builder.py)
# replaces the backbone's classifier by Dropout(0.5), which drops every frame's feature before the consensus;
# VitHead's mlp_head (slowfast/models/head_helper.py) drops again before its classifier. With averaging the
# per-frame classifier then averages, which equals our average-then-classifier (both linear): no second dropout.
OFFICIAL_DROPOUT = {
    "average": {"paper": {"model": {"frame_drop_rate": 0.5, "head_drop_rate": 0.0}}},
    "attention": {"paper": {"model": {"frame_drop_rate": 0.5, "head_drop_rate": 0.5}}},
}


@register_table
def xvit_table2() -> TableSpec:
    return TableSpec(
        table_id="xvit_table2",
        rows=(RowSpec("tsm_vit_average", 0, "TSM-ViT, TSM averaging", {**TSM_SHIFT, **AVERAGE},
                      scales=OFFICIAL_DROPOUT["average"]),
              RowSpec("xvit_average", 1, "X-ViT, TSM averaging", {**XVIT_MIXING_SSV2, **AVERAGE},
                      scales=OFFICIAL_DROPOUT["average"]),
              RowSpec("tsm_vit_attention", 2, "TSM-ViT, temporal attention", {**TSM_SHIFT, **TEMPORAL_ATTENTION},
                      scales=OFFICIAL_DROPOUT["attention"]),
              RowSpec("xvit_attention", 3, "X-ViT, temporal attention", {**XVIT_MIXING_SSV2, **TEMPORAL_ATTENTION},
                      scales=OFFICIAL_DROPOUT["attention"])),
        metric_columns=(MetricColumn("Top-1", "top1", dataset="SSv2", run="SSv2"),),
        scales=SCALES_SSV2,
        tiny_seeds=FIVE_SEEDS,
        notes="The extracted supplementary kept only the first row's number (60.8%); the other paper cells are "
              "blank (—), not zero. " + RECIPE_CHOICES,
    )


# ---- Figure 1: one trained model, tested with more temporal crops -------------------------------------------------

FIGURE1_CROPS = (1, 2, 3, 5, 10)  # the supplementary does not list its values; 10 is the usual 10 x 3


# Tests a trained model with the run's test views (``test_clips`` x ``test_crops``) and trains nothing.
TEST_VIEWS = register_task(Task("video_test_views", model_inputs=VIDEO_CLASSIFICATION.model_inputs,
                                evaluate=tested_only(VIDEO_CLASSIFICATION),
                                data_options=VIDEO_CLASSIFICATION.data_options))


def _crop_columns() -> tuple[MetricColumn, ...]:
    trained = f"{FIGURE1_CROPS[0]}x3 views"
    columns = [MetricColumn(trained, "top1", dataset="K-400", data={"test_clips": FIGURE1_CROPS[0], "test_crops": 3})]
    for crops in FIGURE1_CROPS[1:]:
        columns.append(MetricColumn(
            f"{crops}x3 views", "top1", dataset="K-400",
            data={"test_clips": crops, "test_crops": 3, "task": TEST_VIEWS.name},
            scales={s: {"pretrained": f"run:xvit_figure1/xvit/{trained}"} for s in SCALES_K400}))
    return tuple(columns)


@register_table
def xvit_figure1() -> TableSpec:
    columns = _crop_columns()
    return at_power_rule(TableSpec(
        table_id="xvit_figure1",
        rows=(RowSpec("xvit", 0, "X-ViT (temporal attention)", XVIT_K400, scales=OFFICIAL_DROPOUT["attention"]),),
        metric_columns=columns,
        scales=SCALES_K400,
        plot=SweepPlot(x_label="temporal crops at test time (3 spatial crops each)", x_values=FIGURE1_CROPS,
                       panels={"K-400 column data": tuple(c.column for c in columns)}),
        tiny_seeds=FIVE_SEEDS,
        notes=f"One model is trained (the {columns[0].column} column); every other column tests that model's last "
              f"checkpoint with more temporal crops and trains nothing. The paper plots the sweep without values "
              f"and does not list its crop counts; we test {', '.join(map(str, FIGURE1_CROPS))}. " + RECIPE_CHOICES,
    ))


# ---- Table 1: inference speed --------------------------------------------------------------------------------------

THROUGHPUT_REPEATS = 3


def videos_per_second(spec: TableSpec, row: RowSpec) -> Computed:
    """Inference throughput of the row's paper-scale model, batch 1, after one warm-up pass: measured on the GPU
    when there is one (bf16 autocast), else on this CPU (fp32, all its threads) (``experiments.harness.timings``)."""
    cfg = paper_config(spec, row)
    rate, where = inference_rate(cfg, THROUGHPUT_REPEATS)
    shape = f"{cfg.data.num_frames}x{cfg.data.crop_size}²"
    return Computed(rate, f"{rate:.2f} ({shape}, batch 1, {where})", MEASURED + where)


SPEED_PRESET = XVIT_PAPER_K400  # Table 1's X-ViT is the Kinetics model, 8x224²


@register_table
def xvit_table1() -> TableSpec:
    return TableSpec(
        table_id="xvit_table1",
        rows=(RowSpec("timesformer", 4, "TimeSformer-style: divided space-time ViT-B/16, 8x224²", scales={
                  "paper": {"name": "vit_base_patch16_video", "model": {"attn_layer": "divided", "tubelet_size": 1}}}),
              RowSpec("vivit_l", 5, "ViViT-L-style: joint space-time ViT-L/16x2, 32x224²", data={"num_frames": 32},
                      scales={"paper": {"name": "vit_large_patch16_video",
                                        "model": {"attn_layer": "joint", "pos_embed": "joint"}}}),
              RowSpec("xvit", 6, "X-ViT: ViT-B/16 with space-time mixing, 8x224²", XVIT_K400)),
        metric_columns=(),
        static_columns=(StaticColumn("images/sec", videos_per_second, digits=2, note=(
            "measured, not copied: videos per second of our models at the papers' input sizes, batch 1, in one "
            "run on one device, named in each cell. The paper measured the authors' implementations on 8 V100 "
            "GPUs (and heads the column 'images/sec' while its caption says videos/sec): compare ratios between "
            "rows, not absolute numbers"), timed=True),),
        scales={"tiny": TINY_FRAME_WISE, "paper": SPEED_PRESET},  # nothing trains: static cells come from "paper"
        notes="The rows marked ‡ are other architectures (CNNs) that this repository does not implement.",
    )


# ---- not a paper table: X-ViT on Kinetics-600, the row of the authors' released K600 model ---------------------

# The official configs/Kinetics/xvit_B16_16x16_k600.yaml is the K400 one with 600 classes: its recipe, but with the
# config's 16 frames at rate 16 (the K400 preset's 8 frames at stride 8 are our choice for Table 1's 8x224²).
XVIT_PAPER_K600 = dataclasses.replace(
    XVIT_PAPER_K400,
    description="paper (the official X-ViT code's Kinetics-600 recipe, configs/Kinetics/xvit_B16_16x16_k600.yaml): "
                "frame-wise ViT-B/16 (ImageNet-21K init), 16x224x224 at rate 16, Nesterov SGD lr 0.03 per 64 clips, "
                "cosine, 30 epochs, mixup 0.4",
    data={"K-600": dataclasses.replace(XVIT_PAPER_K400.data["K-400"], dataset=KINETICS_600.dataset, num_frames=16,
                                       frame_stride=16)},
)


@register_experiment
def xvit_kinetics600() -> TableSpec:
    return TableSpec(
        table_id="xvit_kinetics600",
        rows=(RowSpec("xvit", 0, "X-ViT-B/16 (temporal attention), 16 frames", XVIT_K400,
                      scales=OFFICIAL_DROPOUT["attention"]),),
        metric_columns=(MetricColumn("Top-1", "top1", dataset="K-600", run="K-600"),
                        MetricColumn("Top-5", "top5", dataset="K-600", run="K-600")),
        scales={"paper": XVIT_PAPER_K600},
        is_paper_table=False,
        notes="Not a paper table (the supplementary reports no Kinetics-600 result): X-ViT as the official code "
              "trains it on Kinetics-600, the row the authors' released xvit_b16_16_k600.pth fills (its README: "
              "84.51 top-1 at 1 x 3 views). Paper scale only. " + RECIPE_CHOICES,
    )
