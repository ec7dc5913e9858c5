"""Motionformer (Patrick et al., NeurIPS 2021, paper 001): every table and Figure 3 as specs.

Scales share one spec: ``paper`` (ViT-B/16 from ImageNet-21K on 16x224x224 clips, the paper's recipe and the
official head) and ``tiny`` (the same family at CPU size on the generated sets, with a plain linear head). Rows only
say what their table varies; where the paper gives a size in tokens, the tiny row scales it and says so. Identical
rows of different tables resolve to one run configuration, trained once. The recipe and where it comes from:
docs/mformer_paper_scale.md#paper-scale.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..harness.spec import (
    DataConfig,
    DerivedColumn,
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
from ..harness.static import (
    gflops_views,
    memory_inputs,
    paper_config,
    paper_gflops,
    paper_params,
    peak_memory,
    views_inputs,
)
from ..presets import (
    EPIC_KITCHENS_100,
    FIVE_SEEDS,
    GPU_TRAINER,
    KINETICS_400,
    KINETICS_600,
    PYSLOWFAST_CLIPS,
    PYSLOWFAST_PYAV_CLIPS,
    PYSLOWFAST_SEGMENTS,
    QUICK_START_SEEDS,
    SSV2,
    TINY,
    at_power_rule,
)
from ..tiny_pretraining.images import tiny_image_source

# ---- scale presets: the shared ones, with Motionformer's sampling and schedule ---------------------------------

# 16 frames: PySlowFast's dense clips at stride 4 on Kinetics (as its selective PyAV decoding of the video files
# makes them) and inside each Epic-Kitchens action (the shared EPIC preset is CAST's segment sampling), one frame per
# segment on SSv2 (PySlowFast's segments: Ssv2.get_seq_frames). Colour jitter on Kinetics only; SSv2 and
# Epic-Kitchens take RandAugment instead, as the official configs (README: paper scale).
# PySlowFast's own jitter (utils.frames_augmentation), as it applies it: on the normalised crop, its draws and blends
# (tests/parity/test_mformer_augment.py: their output for the same draws).
OFFICIAL_COLOR_JITTER = {"color_jitter": 0.4, "color_jitter_prob": 0.8, "pyslowfast_color_jitter": True}
# RandAugment as the official SSv2 and EK datasets apply it (ssv2.py, epickitchens.py): their seeded copy of timm's,
# one seed per clip, on the whole uint8 frames before the crop; "m20" on SSv2, "m15" on EK, both clipped to 10.
OFFICIAL_SSV2_RAND_AUGMENT = {"timm_rand_augment": "rand-m20-mstd0.5-inc1", "timm_rand_augment_seeded": True}
OFFICIAL_EK_RAND_AUGMENT = {"timm_rand_augment": "rand-m15-mstd0.5-inc1", "timm_rand_augment_seeded": True}
KINETICS_OPTIONS = {**PYSLOWFAST_PYAV_CLIPS, **OFFICIAL_COLOR_JITTER}
# Epic-Kitchens: each segment placed as the official EPIC loader places it (frames round(start x fps) on, at the 50 /
# 60 fps of the extracted frames, data.clip_sampling.epic_slowfast_clip). The official code also feeds the model BGR
# (OpenCV, no REVERSE_INPUT_CHANNEL in configs/EK); this preset trains from ImageNet's RGB weights (through the K-400
# model), so it keeps RGB: only the released EK checkpoints are evaluated on BGR (their catalogue's channels).
EPIC_OPTIONS = {**PYSLOWFAST_CLIPS, "segment_placement": "epic_slowfast"}
# SSv2's training short side, drawn inverse-uniformly in [256, 320] (the official SSV2 configs' INV_UNIFORM_SAMPLE)
SSV2_SCALE_JITTER = {"inverse_uniform_scale": True}
PAPER = ScalePreset(
    description="paper: ViT-B/16 (ImageNet-21K init), 16x224x224 clips, 2x16x16 tubelets, 35 epochs",
    # The official checkpoint ("vit_1k" is timm's orig_in21k_ft_in1k), head (fc(768->768), tanh) and stochastic
    # depth 0.2, rising over the blocks; the paper states none of them (README: paper scale).
    model=ModelConfig(name="vit_base_patch16_video", pretrained="timm:vit_base_patch16_224.orig_in21k_ft_in1k",
                      overrides={"representation_size": 768, "drop_path_rate": 0.2}),
    data={
        "K-400": dataclasses.replace(KINETICS_400, num_frames=16, frame_stride=4, options=KINETICS_OPTIONS),
        "K-600": dataclasses.replace(KINETICS_600, num_frames=16, frame_stride=4, options=KINETICS_OPTIONS),
        "SSv2": dataclasses.replace(SSV2, num_frames=16,
                                    options={**OFFICIAL_SSV2_RAND_AUGMENT, **SSV2_SCALE_JITTER, **PYSLOWFAST_SEGMENTS}),
        "EK-100": dataclasses.replace(EPIC_KITCHENS_100, num_frames=16, sampling="dense", frame_stride=4,
                                      test_clips=10, options={**OFFICIAL_EK_RAND_AUGMENT, **EPIC_OPTIONS}),
    },
    # Weight decay on every parameter: the official optimizer spares only BatchNorm's, which the ViT has none of.
    optim=OptimConfig(lr=1e-4, weight_decay=0.05, label_smoothing=0.2, epochs=35, schedule="step",
                      milestones=(20, 30), gamma=0.1, weight_decay_exempt="none"),
    # lr 1e-4 for a global batch of 128 (4 clips x 8 GPUs x 4 nodes), scaled linearly for another batch. In the last
    # block of a trajectory model, stage two's proj_q/proj_kv feed only patch tokens, which the CLS head never reads
    # (as in the official code): DDP must be told to expect parameters without gradients.
    trainer=dataclasses.replace(GPU_TRAINER, strategy="ddp_find_unused_parameters_true", devices=8, num_nodes=4,
                                reference_batch=128, lr_scaling="linear"),
)
# Epic-Kitchens: 50 epochs, lr/10 at 30 and 40, initialised from the K-400 model (appendix 6.2, Table 6c).
PAPER_EPIC = dataclasses.replace(
    PAPER, description=PAPER.description.replace("35 epochs", "50 epochs (Epic-Kitchens schedule)"),
    optim=dataclasses.replace(PAPER.optim, epochs=50, milestones=(30, 40)))

# The paper trains Epic-Kitchens longer than Kinetics (50 epochs instead of 35). The tiny schedule is 40 epochs
# (2400 steps): with the joint verb + noun loss the tiny Mformer learns nouns at once, but its verbs (motion) stay at
# chance until a plateau breaks, after 700-1100 steps (seeds 0-2, 30-epoch probes of the model from scratch). At 14
# epochs the cosine schedule had decayed by then and verbs stayed at 21-23% (chance 16.7%).
TINY_EPIC = dataclasses.replace(TINY, optim=dataclasses.replace(TINY.optim, epochs=40))

SCALES = {"tiny": TINY, "paper": PAPER}
COLUMNS = (MetricColumn("K-400"), MetricColumn("SSv2"))

# ---- rows shared between tables (identical dicts -> identical runs, trained once) -----------------------------

JOINT = {"attn_layer": "joint"}
DIVIDED = {"attn_layer": "divided"}
# The divided row of Table 4 and Figure 3: at paper scale the official block that produced the paper's numbers and
# the released divided checkpoints (configs/*/divided_224_16x4.yaml: ATTN_LAYER divided, DividedSpaceTimeBlock, its
# temporal stage a residual branch with its own LayerNorm); at tiny scale the Eq. 3 block its tracked records were
# trained with, which differs from the joint and trajectory rows only in how patch tokens attend (README: Table 4).
DIVIDED_ROW = RowSpec("divided", 1, "Divided Space-Time", DIVIDED,
                      scales={"paper": {"model": {"attn_layer": "divided_official"}}})


def _trajectory(temporal_pool: str = "attention", normalize: str = "space") -> dict:
    return {"attn_layer": "trajectory", "attn_kwargs": {"temporal_pool": temporal_pool, "normalize": normalize}}


TRAJECTORY = _trajectory()  # the Motionformer default: Att_T, Norm_S

# Tokens per frame: 196 at paper scale (224/16)^2, 16 at tiny scale (32/8)^2. Prototype counts are scaled by
# 16/196 (at least 2) so that the tiny approximation is as coarse relative to a frame as the paper's.
TINY_TOKENS_PER_FRAME, PAPER_TOKENS_PER_FRAME = 16, 196


def tiny_budget(paper_budget: int) -> int:
    return max(2, round(paper_budget * TINY_TOKENS_PER_FRAME / PAPER_TOKENS_PER_FRAME))


def _approximate(approximation: str = "orthoformer", num_prototypes: int = 128, **options: Any) -> dict:
    return {"attn_layer": "trajectory_approx",
            "attn_kwargs": {"approximation": approximation, "num_prototypes": num_prototypes, **options}}


def approx_row(key: str, paper_row: int, label: str, paper_budget: int = 128, **options: Any) -> RowSpec:
    """A row with approximate trajectory attention; the tiny scale scales the budget to its frame size."""
    return RowSpec(key, paper_row, label, scales={
        "paper": {"model": _approximate(num_prototypes=paper_budget, **options)},
        "tiny": {"model": _approximate(num_prototypes=tiny_budget(paper_budget), **options)},
    })


EXACT_ROW = RowSpec("exact", 0, "Trajectory (E)", TRAJECTORY)

# ---- computed static columns (experiments.harness.static) -----------------------------------------------------------

GFLOPS_NOTE = ("computed, not copied: FLOPs of one view of the paper-scale model, counted on the meta device with "
               "attention matmuls included (one multiply-add = one FLOP). 'As published' counts stage two of "
               "trajectory attention as printed (every trajectory token projected to keys and values); 'as we "
               "compute it' counts our exact rearranged stage two (W_k^T q, then one projection of the pooled "
               "trajectory), which gives the same outputs")
MEMORY_NOTE = ("the paper's column is max CUDA memory of a training step (batch 4 per GPU), in GiB: the official code "
               "logs torch.cuda.max_memory_allocated() / 1024 ** 3 as GB (PySlowFast's gpu_mem_usage). Without a GPU "
               "the cell says `needs GPU` and shows instead the bytes of activations saved for backward for one clip "
               "at paper shape, relative to the exact reference row (counted by models.memory, not estimated)")

GFLOPS_COLUMN = StaticColumn("GFlops", paper_gflops, note=GFLOPS_NOTE)


def _memory_column(name: str = "Mem.") -> StaticColumn:
    return StaticColumn(name, peak_memory(EXACT_ROW), digits=2, note=MEMORY_NOTE, inputs=memory_inputs)


# ---- Table 1: design comparison, rendered from model configurations ------------------------------------------


def _design(field: str):
    def compute(spec: TableSpec, row: RowSpec) -> str:
        cfg = paper_config(spec, row)
        o = cfg.model.overrides
        if field == "Base Model":
            return {"vit_base_patch16_video": "ViT-B", "vit_large_patch16_video": "ViT-L"}.get(cfg.model.name,
                                                                                            cfg.model.name)
        if field == "Attention":
            return {"joint": "Joint Space-Time", "divided": "Divided Space-Time",
                    "trajectory": "Trajectory", "trajectory_approx": "Trajectory (approx.)"}[o["attn_layer"]]
        if field == "Pos. Encoding":
            return {"separate": "Separate", "joint": "Joint"}[o.get("pos_embed", "separate")]
        return "Square" if o.get("tubelet_size", 2) == 1 else "Cubic"
    return compute


@register_table
def mformer_table1() -> TableSpec:
    return TableSpec(
        table_id="mformer_table1",
        rows=(
            RowSpec("timesformer", 0, "TimeSformer-style configuration",
                    {"attn_layer": "divided", "tubelet_size": 1, "pos_embed": "separate"},
                    scales={"paper": {"data": {"num_frames": 8, "frame_stride": 8}}}),
            RowSpec("vivit", 1, "ViViT-style configuration (our model zoo has its joint variant)",
                    {"attn_layer": "joint", "pos_embed": "joint"},
                    scales={"paper": {"name": "vit_large_patch16_video", "model": {"representation_size": 1024}}}),
            RowSpec("motionformer", 2, "Motionformer", TRAJECTORY),
        ),
        metric_columns=(),
        static_columns=tuple(StaticColumn(c, _design(c), note="rendered from the row's model configuration")
                             for c in ("Base Model", "Attention", "Pos. Encoding", "Tokenization")),
        scales=SCALES,
        notes="No training: each cell is read back from the model configuration our registry builds for that "
              "design. ViViT's 'Joint/Divided' names two of its models; the configuration here is the joint one.",
    )


# ---- Table 2: input encoding ----------------------------------------------------------------------------------

# Square 1x16x16 tokens use 8 frames over the same 2 s as 16 frames in 2-frame tubelets (paper Sec. 4.1).
SQUARE = {"paper": {"data": {"num_frames": 8, "frame_stride": 8}},
          "tiny": {"data": {"num_frames": 4, "frame_stride": 4}}}


@register_table
def mformer_table2a() -> TableSpec:
    return TableSpec(
        table_id="mformer_table2a",
        rows=(
            RowSpec("joint_square", 0, "Joint ST, square 1x16^2", {**JOINT, "tubelet_size": 1}, scales=SQUARE),
            RowSpec("joint_cubic", 1, "Joint ST, cubic 2x16^2", JOINT),
            RowSpec("traj_square", 2, "Trajectory, square 1x16^2", {**TRAJECTORY, "tubelet_size": 1},
                    scales=SQUARE),
            RowSpec("traj_cubic", 3, "Trajectory, cubic 2x16^2", TRAJECTORY),
        ),
        metric_columns=COLUMNS,
        static_columns=(GFLOPS_COLUMN,),
        scales=SCALES,
        tiny_seeds=FIVE_SEEDS,
    )


@register_table
def mformer_table2b() -> TableSpec:
    return TableSpec(
        table_id="mformer_table2b",
        rows=(
            RowSpec("joint_jointpe", 0, "Joint ST attention, joint ST position encoding",
                    {**JOINT, "pos_embed": "joint"}),
            RowSpec("joint_separatepe", 1, "Joint ST attention, separate ST position encoding", JOINT),
            RowSpec("traj_jointpe", 2, "Trajectory, joint ST position encoding", {**TRAJECTORY, "pos_embed": "joint"}),
            RowSpec("traj_separatepe", 3, "Trajectory, separate ST position encoding", TRAJECTORY),
        ),
        metric_columns=COLUMNS,
        static_columns=(GFLOPS_COLUMN,),
        scales=SCALES,
        tiny_seeds=FIVE_SEEDS,
    )


# ---- Table 3: Orthoformer ablations ---------------------------------------------------------------------------


# The official TrajectoryAttention hard-codes Performer's random features (``m = 256``); Nyström and Orthoformer
# share the configuration's ``num_landmarks``.
PERFORMER_FEATURES = 256


def _table3(table_id: str, rows: tuple[RowSpec, ...], tiny_seeds: int = FIVE_SEEDS) -> TableSpec:
    return TableSpec(table_id=table_id, rows=(EXACT_ROW, *rows), metric_columns=COLUMNS,
                     static_columns=(_memory_column(),), scales=SCALES, tiny_seeds=tiny_seeds,
                     notes=f"Approximation budgets: paper values for 196 tokens per frame; tiny rows use "
                           f"round(R * 16/196), at least 2 (R=16/64/128 -> {tiny_budget(16)}/{tiny_budget(64)}/"
                           f"{tiny_budget(128)}). The paper states no Performer or Nyströmformer budget for this "
                           f"table; we take the official code's: Performer {PERFORMER_FEATURES} random features "
                           f"(`m = 256` in slowfast/models/vit_helper.py; tiny: {tiny_budget(PERFORMER_FEATURES)}), "
                           f"Nyströmformer Orthoformer's 128 (the one `num_landmarks` both take there).")


@register_table
def mformer_table3a() -> TableSpec:
    return _table3("mformer_table3a", (
        approx_row("performer", 1, "Trajectory (A), Performer", paper_budget=PERFORMER_FEATURES,
                   approximation="performer"),
        approx_row("nystrom", 2, "Trajectory (A), Nyströmformer", approximation="nystrom"),
        approx_row("orthoformer", 3, "Trajectory (A), Orthoformer"),
    ))


@register_table
def mformer_table3b() -> TableSpec:
    return _table3("mformer_table3b", (
        approx_row("segment_means", 1, "Orthoformer, segment-means prototypes", selection="segment_means"),
        approx_row("random", 2, "Orthoformer, random prototypes", selection="random"),
        approx_row("orthogonal", 3, "Orthoformer, greedy most-orthogonal prototypes"),
    ))


@register_table
def mformer_table3c() -> TableSpec:
    return _table3("mformer_table3c", (
        approx_row("prototypes16", 1, "Orthoformer, 16 prototypes", paper_budget=16),
        approx_row("prototypes64", 2, "Orthoformer, 64 prototypes", paper_budget=64),
        approx_row("prototypes128", 3, "Orthoformer, 128 prototypes", paper_budget=128),
    ))


@register_table
def mformer_table3d() -> TableSpec:
    return at_power_rule(_table3("mformer_table3d", (
        approx_row("per_frame", 1, "Orthoformer, prototypes per frame", shared_prototypes=False),
        approx_row("shared", 2, "Orthoformer, prototypes shared across time"),
    )))


# ---- Table 4: attention ablations ---------------------------------------------------------------------------


@register_table
def mformer_table4() -> TableSpec:
    return TableSpec(
        table_id="mformer_table4",
        rows=(
            RowSpec("joint", 0, "Joint Space-Time", JOINT),
            DIVIDED_ROW,
            RowSpec("traj_avgT_normS", 2, "Trajectory (Avg_T, Norm_S)", _trajectory("average", "space")),
            RowSpec("traj_attT_normST", 3, "Trajectory (Att_T, Norm_ST)", _trajectory("attention", "spacetime")),
            RowSpec("traj_attT_normS", 4, "Trajectory (Att_T, Norm_S)", TRAJECTORY),
        ),
        metric_columns=COLUMNS,
        static_columns=(StaticColumn("GFLOPS", paper_gflops, note=GFLOPS_NOTE),),
        scales=SCALES,
        tiny_seeds=QUICK_START_SEEDS,  # the quick start: 10 runs (README: its time on 2 cores)
    )


# ---- Table 6: state of the art (only the Mformer rows are ours; the others are the paper's citations) ---------

# Mformer-L: 32 frames at stride 3; Mformer-HR: 336x336 at the default stride 4, as the paper states (README: paper
# scale). The tiny stand-ins double the frames (16 at stride 2 cover the whole 32-frame synthetic video) or raise the
# crop from 32 to 48 pixels.
MFORMER_L = {"paper": {"data": {"num_frames": 32, "frame_stride": 3}},
             "tiny": {"data": {"num_frames": 16, "frame_stride": 2}}}
MFORMER_HR = {"paper": {"data": {"crop_size": 336, "train_scale": (384, 480)}},
              "tiny": {"data": {"crop_size": 48, "train_scale": (48, 60)}}}


# Mformer-L on K-400 trains on random resized crops (area 8-100%, aspect ratio 3/4-4/3, then 224 x 224) instead of
# the scale jitter, as the official K-400 32x3 config alone does.
K400_RESIZED_CROP = ((0.08, 1.0), (0.75, 4 / 3))
MFORMER_L_K400 = {**MFORMER_L, "paper": {"data": {**MFORMER_L["paper"]["data"], "options": {
    **KINETICS_OPTIONS, "random_resized_crop": K400_RESIZED_CROP}}}}


def _mformer_rows(first: int, init_from_k400: bool = False, large: dict[str, Any] = MFORMER_L
                  ) -> tuple[RowSpec, ...]:
    """Mformer, -L (its scales: ``large``), -HR. ``init_from_k400``: at paper scale, start from the same variant's
    K-400 run of Table 6b (the paper's "IN-21K+K-400" pretraining for SSv2 and Epic-Kitchens); the tiny rows start
    from their preset's weights."""
    rows = []
    for i, (key, label, scales) in enumerate((("mformer", "Mformer", {}), ("mformer_l", "Mformer-L", large),
                                              ("mformer_hr", "Mformer-HR", MFORMER_HR))):
        if init_from_k400:
            paper = {**scales.get("paper", {}), "pretrained": f"run:mformer_table6b/{key}/K-400"}
            scales = {**scales, "paper": paper}
        rows.append(RowSpec(key, first + i, label, TRAJECTORY, scales=scales))
    return tuple(rows)


def _table6(table_id: str, first_row: int, data_key: str, metrics: dict[str, str], views_column: str | None,
            scales: dict[str, ScalePreset] = SCALES, init_from_k400: bool = False, tiny_seeds: int = FIVE_SEEDS
            ) -> TableSpec:
    return TableSpec(
        table_id=table_id,
        rows=_mformer_rows(first_row, init_from_k400, MFORMER_L_K400 if data_key == "K-400" else MFORMER_L),
        metric_columns=tuple(MetricColumn(col, metric, dataset=data_key, run=data_key)
                             for col, metric in metrics.items()),
        static_columns=(StaticColumn(views_column, gflops_views(data_key), note=GFLOPS_NOTE
                                     + "; views = spatial crops x temporal clips of the test protocol",
                                     inputs=views_inputs(data_key)),)
        if views_column else (),
        scales=scales,
        notes="Rows other than Mformer/-L/-HR are the paper's citations of other work, printed as published.",
        tiny_seeds=tiny_seeds,
    )


@register_table
def mformer_table6a() -> TableSpec:
    return _table6("mformer_table6a", 10, "SSv2", {"Top-1": "top1", "Top-5": "top5"}, "GFLOPs × views",
                   init_from_k400=True)


@register_table
def mformer_table6b() -> TableSpec:
    return at_power_rule(_table6("mformer_table6b", 10, "K-400", {"Top-1": "top1", "Top-5": "top5"},
                                 "GFLOPs × views"))


@register_table
def mformer_table6c() -> TableSpec:
    return _table6("mformer_table6c", 6, "EK-100", {"A": "action_top1", "V": "verb_top1", "N": "noun_top1"},
                   None, scales={"tiny": TINY_EPIC, "paper": PAPER_EPIC}, init_from_k400=True)


@register_table
def mformer_table6d() -> TableSpec:
    return at_power_rule(_table6("mformer_table6d", 7, "K-600", {"Top-1": "top1", "Top-5": "top5"},
                                 "GFLOPs × views"))


# ---- Table 7: a larger model through approximate attention ---------------------------------------------------

MFORMER_H = {
    # The official "vit_1k_large" (jx_vit_large_p16_224-4ee7a4dc.pth, ImageNet-21K then -1K) has no timm tag today:
    # this takes timm's AugReg ImageNet-21K ViT-L/16; pass the official file with --pretrained to match the code.
    "paper": {"name": "vit_large_patch16_video", "pretrained": "timm:vit_large_patch16_224.augreg_in21k",
              "model": {**_approximate(num_prototypes=196), "representation_size": 1024},  # the official head
              "data": {"crop_size": 336, "train_scale": (384, 480)}},
    # ViT-L/336 with 196 shared prototypes (of 441 tokens per frame) -> a wider/deeper tiny model at 48 pixels
    # (36 tokens per frame) with 16 prototypes, the same fraction.
    "tiny": {"name": "vit_tiny_l_video", "pretrained": tiny_image_source("vit_tiny_l_video"),
             "model": _approximate(num_prototypes=16),
             "data": {"crop_size": 48, "train_scale": (48, 60)}},
}


PARAMS_NOTE = ("parameters of the paper-scale model with 400 classes, counted from the built model, with the official "
               "head (a pre-logits layer fc(D->D) -> tanh, then the classifier: USE_MLP with HEAD_ACT tanh in every "
               "official config). Mformer-B: 86.4M ViT-B/16 with its position and time tables + 21.3M stage-two "
               "projections (proj_q, proj_kv) + 0.6M pre-logits + 0.3M classifier = 108,554,128, exactly the "
               "official model's 109,144,720 less its 2-D `patch_embed` (a Conv2d of 590,592 parameters that the "
               "official model builds but does not use with 2x16x16 tubelets; we have no such layer), which the "
               "paper's 109.1M counts. Mformer-H: the same unused 2-D `patch_embed` (787,456 at ViT-L) is "
               "missing here, and the official model stores a 14x14 position table that it interpolates to 21x21 "
               "at every forward, where ours stores the 21x21 table (250,880 more): 381.4M + 0.79M - 0.25M = the "
               "paper's 381.9M")


@register_table
def mformer_table7() -> TableSpec:
    return at_power_rule(TableSpec(
        table_id="mformer_table7",
        rows=(RowSpec("mformer_b", 0, "Mformer-B: ViT-B/224, exact trajectory attention", TRAJECTORY),
              RowSpec("mformer_h", 1, "Mformer-H: ViT-L/336, Orthoformer (196 shared prototypes)", scales=MFORMER_H)),
        metric_columns=(MetricColumn("Top-1", "top1", dataset="K-400", run="K-400"),
                        MetricColumn("Top-5", "top5", dataset="K-400", run="K-400")),
        static_columns=(StaticColumn("Params", paper_params, note=PARAMS_NOTE),
                        StaticColumn("Max memory (GB)", peak_memory(RowSpec("mformer_b", 0, "", TRAJECTORY)),
                                     digits=2, note=MEMORY_NOTE, inputs=memory_inputs)),
        scales=SCALES,
        tiny_seeds=FIVE_SEEDS,
    ))


# ---- not a paper table: the official model, to fine-tune or evaluate an official checkpoint -----------------

# The official trajectory attention as its released checkpoints were trained (USE_ORIGINAL_TRAJ_ATTN_CODE: True
# pools the trajectory tokens themselves in stage two) with the official head (the paper preset's pre-logits
# layer; the tiny row adds it at 64-d so that a tiny official-layout checkpoint fits).
OFFICIAL_TRAJECTORY = {"attn_layer": "trajectory", "attn_kwargs": {"stage_two_values": "trajectory"}}


@register_experiment
def mformer_official() -> TableSpec:
    return TableSpec(
        table_id="mformer_official",
        rows=(RowSpec("mformer_b", 0, "Mformer-B as the official code computes it", OFFICIAL_TRAJECTORY,
                      scales={"tiny": {"model": {"representation_size": 64}}}),),
        metric_columns=COLUMNS,
        scales=SCALES,
        is_paper_table=False,
        notes="Not a paper table: the model of the official Motionformer code (stage two pools the trajectory "
              "tokens, USE_ORIGINAL_TRAJ_ATTN_CODE; fc-tanh pre-logits head), to start from one of its "
              "checkpoints: `python -m experiments run mformer_official --scale paper --pretrained "
              "official:FILE` (models.released.mformer maps its keys).",
    )


# ---- Table 8: how much do the datasets need motion? ---------------------------------------------------------

ONE_FRAME = MetricColumn("Top-1 accuracy (1 frame)", run="1frame", model={**JOINT, "tubelet_size": 1},
                         data={"num_frames": 1})
MULTI_FRAME = MetricColumn("Top-1 accuracy (8 frames)", run="mformer", model=TRAJECTORY)


@register_table
def mformer_table8() -> TableSpec:
    return at_power_rule(TableSpec(
        table_id="mformer_table8",
        rows=(RowSpec("k400", 0, "Kinetics-400 column data", dataset="K-400"),
              RowSpec("ssv2", 1, "Something-Something V2 column data", dataset="SSv2")),
        metric_columns=(ONE_FRAME, MULTI_FRAME),
        derived_columns=(DerivedColumn("Δ", (MULTI_FRAME.column, ONE_FRAME.column), lambda multi, one: multi - one,
                                       note="multi-frame minus single-frame top-1"),),
        scales=SCALES,
        tiny_seeds=FIVE_SEEDS,
        notes="The single-frame model is an image ViT (joint attention over one frame's patches, 1x16x16 "
              "tokens) trained on one random frame per video; at test time it sees the same number of clips. "
              "The multi-frame model is the default Motionformer (at tiny scale: 8 frames in 2-frame tubelets).",
    ))


# ---- Figure 3: accuracy vs temporal stride ------------------------------------------------------------------

# K-400: frames `stride` apart. Tiny: 8 frames x stride 4 = the whole 32-frame synthetic video (the rightmost point,
# as in the paper). Paper scale: 16 frames at strides 1, 2 and 4 (4 = the default); the paper does not print them.
FIGURE3_STRIDES = (1, 2, 4)
# SSv2: the paper writes strides as multiples of S, "the stride needed to evenly sample the entire video clip", and
# its rightmost point is the entire video: S is SSv2's own segment sampling, S/k the same segments over a 1/k window
# of the video (``segment_span``). Tiny: 8 segments of a 32-frame video, so S/4 takes 8 consecutive frames.
FIGURE3_SSV2_SPANS = (("S/4", 0.25), ("S/2", 0.5), ("S", 1.0))


def _stride_columns() -> tuple[MetricColumn, ...]:
    kinetics = tuple(MetricColumn(f"K-400 stride {stride}", dataset="K-400", data={"frame_stride": stride})
                     for stride in FIGURE3_STRIDES)
    # A column's options replace the preset's, so each scale's keeps its own; stride S is the preset itself, the
    # same run as Table 4's SSv2 column.
    ssv2 = tuple(MetricColumn(f"SSv2 stride {name}", dataset="SSv2", scales={} if span == 1.0 else {
        scale: {"data": {"options": {**preset.data["SSv2"].options, "segment_span": span}}}
        for scale, preset in SCALES.items()}) for name, span in FIGURE3_SSV2_SPANS)
    return kinetics + ssv2


FIGURE3_PLOT = SweepPlot(
    x_label="temporal stride (frames)", x_values=FIGURE3_STRIDES,
    panels={"K-400 column data": tuple(f"K-400 stride {s}" for s in FIGURE3_STRIDES),
            "SSv2 column data": tuple(f"SSv2 stride {name}" for name, _ in FIGURE3_SSV2_SPANS)},
    reference_row="trajectory",
    panel_x_labels={"SSv2 column data": "temporal stride (S samples the whole video)"},
    panel_ticks={"SSv2 column data": tuple(name for name, _ in FIGURE3_SSV2_SPANS)})


@register_table
def mformer_figure3() -> TableSpec:
    return TableSpec(
        table_id="mformer_figure3",
        rows=(RowSpec("joint", 0, "Joint Space-Time", JOINT),
              DIVIDED_ROW,
              RowSpec("trajectory", 2, "Trajectory", TRAJECTORY)),
        metric_columns=_stride_columns(),
        scales=SCALES,
        tiny_seeds=FIVE_SEEDS,
        plot=FIGURE3_PLOT,
        notes="The paper plots this sweep without printing values. K-400: strides 1, 2 and 4 frames at both "
              "scales; at tiny scale 8 frames x 4 is the whole 32-frame synthetic video (the rightmost point, as in "
              "the paper); at paper scale 16 frames x 4 is the default 2 s clip (PySlowFast's clips, the stride "
              "counted at 30 fps, as the official code). SSv2: strides written as multiples of S, as the paper "
              "writes them, S being the stride that samples the whole video: stride S is SSv2's segment sampling "
              "(the same runs as Table 4's SSv2 column), S/2 and S/4 the same segments over a window of half and a "
              "quarter of the video (data option `segment_span`); at tiny scale S/4 is 8 consecutive frames.",
    )


# ---- Table 9: DAVIS 2017 label propagation with the frozen K-400 model -------------------------------------

DAVIS_OPTIONS = {"feature": "tokens", "mode": "clip"}  # see lightning_modules.label_propagation.VideoViTFeatures


def _davis_preset(preset: ScalePreset) -> ScalePreset:
    """The K-400 model's clip size (the features need the model's frames and training resolution)."""
    k400 = preset.data["K-400"]
    return dataclasses.replace(preset, data={"DAVIS 2017": DataConfig(
        dataset="davis2017", task="label_propagation", num_frames=k400.num_frames, crop_size=k400.crop_size,
        options=DAVIS_OPTIONS)})


@register_table
def mformer_table9() -> TableSpec:
    return TableSpec(
        table_id="mformer_table9",
        rows=(RowSpec("mformer_b", 2, "Mformer-B/16 trained on the K-400 column (Table 6b's run), frozen",
                      TRAJECTORY, scales={s: {"pretrained": "run:mformer_table6b/mformer/K-400"}
                                          for s in ("tiny", "paper")}),),
        metric_columns=tuple(MetricColumn(col, metric, dataset="DAVIS 2017", run="DAVIS")
                             for col, metric in (("(J&F)_m", "J&F"), ("J_m", "J"), ("F_m", "F"))),
        scales={"tiny": _davis_preset(TINY), "paper": _davis_preset(PAPER)},
        notes="No training: the K-400 model of Table 6b (train it first) is frozen; its last-block patch tokens "
              "propagate the first frame's masks (DINO's protocol: 7 previous frames, top-5, neighbourhood 12). "
              "Needs DAVIS 2017 (`--data-root DIR` with `DIR/davis2017/{JPEGImages,Annotations,ImageSets}`); "
              "without it the cells say `needs data`.",
    )
