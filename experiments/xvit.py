"""X-ViT supplementary (Bulat et al., "Space-time Mixing Attention for Video Transformer", paper 003): Tables 1-2
and Figure 1 as specs.

X-ViT is the frame-wise ViT whose keys and values mix channels of frames t-1, t and t+1 (``attn_layer="xvit"``);
TSM-ViT shifts the residual stream's channels in time before each MSA (supplementary Eq. 1-3); either pools its
per-frame class tokens by averaging (TSM's) or by X-ViT's temporal attention (``models.video_vit``).

Only the supplementary is in this repository: it does not state X-ViT's training recipe, frames or input size
(it refers to the main paper). Our choices, marked in every report: ViT-B/16 from ImageNet-21K; 16 frames on SSv2
(segments, RandAugment as the shared SSv2 preset) and 8 frames at stride 8 on Kinetics-400; SGD with momentum 0.9,
lr 0.05, weight decay 1e-4, label smoothing 0.1, 35 epochs with lr/10 at 20 and 30; TSM's 1/8 each way.
Taken from the official X-ViT code (1adrianb/video-transformers), which the supplementary builds on: the key/value
channels mixed per dataset config (``SHIFT_DIV`` 4 on SSv2: 1/4 each way, heads 0-2 from t+1 and 3-5 from t-1 of
12; ``SHIFT_DIV`` 8 on Kinetics: 1/8 each way, 1.5 heads), and the backbone's learnable temporal table
(``temp_embed``) added to every token of a frame, class token included: every row here has it
(``pos_embed="separate"``), so the temporal-attention pooling sees the frames' order.
The tiny scale is MSCA's CPU-size frame-wise ViT (12 heads of 8 channels, 4 blocks) on the generated sets.
"""

from __future__ import annotations

import dataclasses
import time

from .presets import GPU_TRAINER, KINETICS_400, SSV2, THREE_SEEDS, TINY_FRAME_WISE
from .spec import (Computed, MetricColumn, ModelConfig, OptimConfig, RowSpec, ScalePreset, StaticColumn,
                   SweepPlot, TableSpec, register_table)
from .provenance import cpu_name
from .static import MEASURED, paper_config
from .tasks import VIDEO_CLASSIFICATION, Task, build_model, register_task, tested_only

# ---- scales ------------------------------------------------------------------------------------------------------

XVIT_PAPER = ScalePreset(
    description="paper (recipe chosen: the supplementary does not state it): frame-wise ViT-B/16 (ImageNet-21K "
                "init), 16x224x224 on SSv2, 8x224x224 on K-400, SGD 0.05, 35 epochs",
    model=ModelConfig(name="vit_base_patch16_frame", pretrained="timm:vit_base_patch16_224.augreg_in21k"),
    data={"K-400": dataclasses.replace(KINETICS_400, num_frames=8, frame_stride=8, test_clips=1, test_crops=3),
          "SSv2": dataclasses.replace(SSV2, num_frames=16)},
    optim=OptimConfig(optimizer="momentum", momentum=0.9, lr=0.05, weight_decay=1e-4, label_smoothing=0.1,
                      epochs=35, schedule="step", milestones=(20, 30), gamma=0.1),
    trainer=GPU_TRAINER,
)
SCALES = {"tiny": TINY_FRAME_WISE, "paper": XVIT_PAPER}
RECIPE_CHOICES = ("Paper-scale recipe chosen by this repository (the supplementary refers to the main paper, which "
                  "is not here): SGD with momentum 0.9, lr 0.05, weight decay 1e-4, label smoothing 0.1, 35 epochs "
                  "with lr/10 at 20 and 30; 16 frames on SSv2, 8 at stride 8 on Kinetics-400; TSM-ViT shifts 1/8 "
                  "each way (TSM's fold_div 8). From the official X-ViT code: X-ViT mixes 1/4 of the key/value "
                  "channels from each neighbour frame on SSv2 and 1/8 on Kinetics (its SHIFT_DIV 4 and 8), and "
                  "every row adds a learnable temporal table to all tokens of a frame, class token included "
                  "(its temp_embed).")

# ---- models ------------------------------------------------------------------------------------------------------

# Every row: the official X-ViT backbone's temporal table (temp_embed), on every token of a frame.
TEMPORAL_TABLE = {"pos_embed": "separate"}
XVIT_MIXING_SSV2 = {"attn_layer": "xvit", "attn_kwargs": {"shift_fraction": 0.5}, **TEMPORAL_TABLE}  # SHIFT_DIV 4
XVIT_MIXING_K400 = {"attn_layer": "xvit", "attn_kwargs": {"shift_fraction": 0.25}, **TEMPORAL_TABLE}  # SHIFT_DIV 8
TSM_SHIFT = {"temporal_shift": "all", "shift_fraction": 0.25, "shift_before": ("attn",),  # TSM's fold_div 8
             **TEMPORAL_TABLE}
AVERAGE, TEMPORAL_ATTENTION = {"temporal_aggregation": "average"}, {"temporal_aggregation": "attention"}
XVIT_K400 = {**XVIT_MIXING_K400, **TEMPORAL_ATTENTION}


@register_table
def xvit_table2() -> TableSpec:
    return TableSpec(
        table_id="xvit_table2",
        rows=(RowSpec("tsm_vit_average", 0, "TSM-ViT, TSM averaging", {**TSM_SHIFT, **AVERAGE}),
              RowSpec("xvit_average", 1, "X-ViT, TSM averaging", {**XVIT_MIXING_SSV2, **AVERAGE}),
              RowSpec("tsm_vit_attention", 2, "TSM-ViT, temporal attention", {**TSM_SHIFT, **TEMPORAL_ATTENTION}),
              RowSpec("xvit_attention", 3, "X-ViT, temporal attention", {**XVIT_MIXING_SSV2, **TEMPORAL_ATTENTION})),
        metric_columns=(MetricColumn("Top-1", "top1", dataset="SSv2", run="SSv2"),),
        scales=SCALES,
        tiny_seeds=THREE_SEEDS,
        notes="The extracted supplementary kept only the first row's number (60.8%); the other paper cells are "
              "blank (—), not zero. " + RECIPE_CHOICES,
    )


# ---- Figure 1: one trained model, tested with more temporal crops -------------------------------------------------

FIGURE1_CROPS = (1, 2, 3, 5, 10)  # the supplementary does not list its values; 10 is the usual 10 x 3


# Tests a trained model with the run's test views (``test_clips`` x ``test_crops``) and trains nothing.
TEST_VIEWS = register_task(Task("video_test_views", model_inputs=VIDEO_CLASSIFICATION.model_inputs,
                                evaluate=tested_only(VIDEO_CLASSIFICATION)))


def _crop_columns() -> tuple[MetricColumn, ...]:
    trained = f"{FIGURE1_CROPS[0]}x3 views"
    columns = [MetricColumn(trained, "top1", dataset="K-400", data={"test_clips": FIGURE1_CROPS[0], "test_crops": 3})]
    for crops in FIGURE1_CROPS[1:]:
        columns.append(MetricColumn(
            f"{crops}x3 views", "top1", dataset="K-400",
            data={"test_clips": crops, "test_crops": 3, "task": TEST_VIEWS.name},
            scales={s: {"pretrained": f"run:xvit_figure1/xvit/{trained}"} for s in SCALES}))
    return tuple(columns)


@register_table
def xvit_figure1() -> TableSpec:
    columns = _crop_columns()
    return TableSpec(
        table_id="xvit_figure1",
        rows=(RowSpec("xvit", 0, "X-ViT (temporal attention)", XVIT_K400),),
        metric_columns=columns,
        scales=SCALES,
        plot=SweepPlot(x_label="temporal crops at test time (3 spatial crops each)", x_values=FIGURE1_CROPS,
                       panels={"K-400 column data": tuple(c.column for c in columns)}),
        tiny_seeds=THREE_SEEDS,
        notes=f"One model is trained (the {columns[0].column} column); every other column tests that model's last "
              f"checkpoint with more temporal crops and trains nothing. The paper plots the sweep without values "
              f"and does not list its crop counts; we test {', '.join(map(str, FIGURE1_CROPS))}. " + RECIPE_CHOICES,
    )


# ---- Table 1: inference speed --------------------------------------------------------------------------------------

THROUGHPUT_REPEATS = 3


def videos_per_second(spec: TableSpec, row: RowSpec) -> Computed:
    """Inference throughput of the row's paper-scale model, batch 1, after one warm-up pass: measured on the GPU
    when there is one (bf16 autocast), else on this CPU (fp32, all its threads)."""
    import torch

    cfg = paper_config(spec, row)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = build_model(cfg, num_classes=400, device=device).eval()
    clip = torch.randn(1, 3, cfg.data.num_frames, cfg.data.crop_size, cfg.data.crop_size, device=device)
    autocast = torch.autocast("cuda", torch.bfloat16) if device == "cuda" else torch.autocast("cpu", enabled=False)
    with torch.inference_mode(), autocast:
        model(clip)
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(THROUGHPUT_REPEATS):
            model(clip)
        if device == "cuda":
            torch.cuda.synchronize()
        rate = THROUGHPUT_REPEATS / (time.perf_counter() - start)
    where = (torch.cuda.get_device_name() if device == "cuda"
             else f"{cpu_name()}, {torch.get_num_threads()} threads")
    shape = f"{cfg.data.num_frames}x{cfg.data.crop_size}²"
    return Computed(rate, f"{rate:.2f} ({shape}, batch 1, {where})", MEASURED + where)


SPEED_PRESET = dataclasses.replace(XVIT_PAPER, data={"K-400": XVIT_PAPER.data["K-400"]})


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
            "rows, not absolute numbers")),),
        scales={"tiny": TINY_FRAME_WISE, "paper": SPEED_PRESET},  # nothing trains: static cells come from "paper"
        notes="The rows marked ‡ are other architectures (CNNs) that this repository does not implement.",
    )
