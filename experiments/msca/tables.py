"""MSCA (Hashiguchi & Tamaki, "Temporal Cross-attention for Action Recognition", paper 002): Tables 1-5 as specs.

Every row is the frame-wise ViT with one way of exchanging features between frames t-1, t and t+1: none, TokenShift,
or MSCA's heads or token rows of Q, K, V (``models.attention.frame``). ``paper`` follows Sec. 4.1 and, where it is
silent, TokenShift's configuration; ``tiny`` keeps ViT-B's 12 heads at 96-d and scales token rows and blocks, saying
so. Each table adds a ``motion top-1`` column on the motion stand-in. Recipe and results: experiments/msca/README.md.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..harness.spec import (
    MetricColumn,
    ModelConfig,
    OptimConfig,
    RowSpec,
    ScalePreset,
    StaticColumn,
    TableSpec,
    register_experiment,
    register_table,
)
from ..harness.static import paper_gflops, paper_params
from ..presets import FIVE_SEEDS, GPU_TRAINER, KINETICS_400, SSV2, THREE_SEEDS, TINY_FRAME_WISE

# ---- scales ------------------------------------------------------------------------------------------------------

# The frame-wise ViT (``vit_tiny_frame``, ``vit_base_patch16_frame``): an image ViT on every frame (square
# patches, its own class token and spatial position table, no temporal encoding), per-frame features averaged.
TINY_BLOCKS, PAPER_BLOCKS = 4, 12
TINY_ROWS, PAPER_ROWS = 17, 197  # token rows per frame: class token + (32/8)^2 or (224/16)^2 patches


def _whole_video_k400(tiny: ScalePreset) -> ScalePreset:
    """The K-400 stand-in sampled as the paper samples Kinetics: 8 frames spanning the whole (32-frame) video."""
    return dataclasses.replace(tiny, data={**tiny.data, "K-400": dataclasses.replace(tiny.data["K-400"],
                                                                                    frame_stride=4)})


MSCA_TINY = _whole_video_k400(TINY_FRAME_WISE)

# "brightness change, saturation change, gamma correction, and hue correction were applied to frames, each at the
# probability of 10%" (Sec. 4.1): TokenShift's colour changes
_COLOUR = {"tokenshift_photometric": 0.1}
# The 10 x 3 test views' logits are averaged, as TokShift's validate() (MSCA's main.py) averages its model's outputs;
# "the same settings as [TokShift]": its clips, a random start wrapping round the video in training, test clip i at
# i/10 of the video (the "tokshift" convention), and its three test crops: centred by int((L - 224) / 2), moved
# along the width whatever the shape (all proven against its code in tests/parity/test_tokshift_pipeline.py)
_TOKSHIFT_VIEWS = {"dense_convention": "tokshift", "test_centre_rounding": "floor", "test_crop_axis": "width"}
_K400 = dataclasses.replace(KINETICS_400, num_frames=8, frame_stride=32, train_scale=(244, 330), batch_size=21,
                            test_view_average="logits", options={**_COLOUR, **_TOKSHIFT_VIEWS})
# The motion column (ours, not the paper's) trains with the paper's recipe on SSv2's data: its scale jitter and colour
# changes, not the RandAugment that the shared SSv2 preset carries for Motionformer; SSv2's conventions stay
# (segments, no flip).
_SSV2 = dataclasses.replace(SSV2, num_frames=8, train_scale=_K400.train_scale, batch_size=21,
                            test_view_average="logits", options=_COLOUR)
MSCA_PAPER = ScalePreset(
    description="paper: frame-wise ViT-B/16 (ImageNet-21K init), 8x224x224 clips at stride 32, SGD 0.1, 12 epochs, "
                "effective batch 420 (21 x 2 GPUs x 10 accumulated)",
    # Google's original ImageNet-21K ViT-B/16 (timm's orig_in21k): the TokShift code MSCA builds on loads its .npz
    # ("ImageNet-22k pretrained weights", released in April 2021, before the AugReg checkpoints were published)
    model=ModelConfig(name="vit_base_patch16_frame", pretrained="timm:vit_base_patch16_224.orig_in21k"),
    data={"K-400": _K400, "SSv2": _SSV2},
    optim=OptimConfig(optimizer="momentum", momentum=0.9, lr=0.1, weight_decay=0.0, label_smoothing=0.1,
                      epochs=12, schedule="step", milestones=(10,), gamma=0.1),
    trainer=dataclasses.replace(GPU_TRAINER, devices=2, accumulate_grad_batches=10, gradient_clip_val=1.0),
)

SCALES = {"tiny": MSCA_TINY, "paper": MSCA_PAPER}

MOTION = MetricColumn("motion top-1", "top1", dataset="SSv2", run="SSv2")
COLUMNS = (
    MetricColumn("top-1", "top1", dataset="K-400", run="K-400"),
    MetricColumn("top-5", "top5", dataset="K-400", run="K-400"),
    MOTION,
)
COST_NOTE = ("GFLOPs and parameters of one 8x224x224 view of the paper-scale model, counted on the meta device "
             "(attention matmuls included, one multiply-add = one FLOP): every variant equals the ViT, as the "
             "paper claims")
STATIC = (StaticColumn("GFLOPs", paper_gflops, note=COST_NOTE), StaticColumn("Params (M)", paper_params))
_VIEWS_NOTE = ("Paper scale tests 10 clips x 3 crops and averages their logits, as TokenShift's test loop (main.py's "
               "validate()); its 10 clips are ours, spread evenly from the video's start to its end: the paper "
               "samples each \"as in training\" (at random) and TokenShift's code starts clip i at i/10 of the "
               "video, clipped to the last whole clip, so that most of its ten coincide.")
NOTES = ("Not in the paper: the `motion top-1` column trains the same rows on the motion set "
         "(`synth_motion_pairs` at tiny scale, SSv2 at paper scale). Its 12 classes form 6 time-reversed pairs; "
         "one frame has the same distribution in all 12, and any unordered set of a clip's frames the same in "
         "both classes of a pair: the frame-wise ViT, which averages its frames' features, cannot tell a class "
         "from its reverse (at most 50% top-1, chance 8.3%), and could tell the pair only from how its frames' "
         "features spread, so a row that relates frames in order is what this column looks for. " + _VIEWS_NOTE)


def _table(table_id: str, rows: tuple[RowSpec, ...], notes: str = "", tiny_seeds: int = FIVE_SEEDS) -> TableSpec:
    return TableSpec(table_id=table_id, rows=rows, metric_columns=COLUMNS, static_columns=STATIC, scales=SCALES,
                     tiny_seeds=tiny_seeds, notes=" ".join(n for n in (notes, NOTES) if n))


# ---- rows (identical dicts in several tables resolve to one run, trained once) ------------------------------------

TOKEN_SHIFT = {"temporal_shift": "cls", "shift_fraction": 0.5, "shift_before": ("attn", "mlp")}  # SHIFT_DIV 4


def msca(shifted: str = "KV", along: str = "heads", backward: int = 1, forward: int = 1,
         value_frames: str = "same", **model: Any) -> dict:
    # value_frames enters the options only when it is not the paper's, so that a paper row's configuration names
    # only what the paper varies
    opposite = {"value_frames": value_frames} if value_frames != "same" else {}
    return {"attn_layer": "msca", "attn_kwargs": {"shifted": shifted, "shift_along": along, "num_backward": backward,
                                                  "num_forward": forward, **opposite}, **model}


def tiny_rows(paper_rows: int) -> int:
    """Token rows shifted per direction at tiny scale: the paper's share of 197 rows, of 17 (at least one)."""
    return max(1, round(paper_rows * TINY_ROWS / PAPER_ROWS))


def patch_row(key: str, paper_row: int, label: str, shifted: str, per_direction: int) -> RowSpec:
    tiny = tiny_rows(per_direction)
    return RowSpec(key, paper_row, f"{label} (tiny: N_b = N_f = {tiny})", scales={
        "paper": {"model": msca(shifted, "tokens", per_direction, per_direction)},
        "tiny": {"model": msca(shifted, "tokens", tiny, tiny)},
    })


def last_blocks_row(key: str, paper_row: int, paper_blocks: int) -> RowSpec:
    tiny = round(paper_blocks * TINY_BLOCKS / PAPER_BLOCKS)
    return RowSpec(key, paper_row, f"MSCA-KV in the last {paper_blocks} of 12 blocks (tiny: {tiny} of 4)", scales={
        "paper": {"model": msca(shift_last_blocks=paper_blocks)},
        "tiny": {"model": msca(shift_last_blocks=tiny)},
    })


VIT = lambda paper_row: RowSpec("vit", paper_row, "ViT (frame-wise)")  # noqa: E731
TOKENSHIFT = lambda paper_row: RowSpec("tokenshift", paper_row, "TokenShift", TOKEN_SHIFT)  # noqa: E731
VARIANTS = ("Q", "K", "V", "QK", "KV", "QV", "QKV")  # the papers' row order in Tables 2 and 5
PATCH_SHIFT = 8  # Table 5's patches per direction: Table 4's best, 16 patches (N_b = N_f = 8)


@register_table
def msca_table1() -> TableSpec:
    rows = (VIT(0),) + tuple(RowSpec(f"msca_kv_h{h}", i, f"MSCA-KV, h_b = h_f = {h}", msca("KV", "heads", h, h))
                             for i, h in enumerate((1, 2, 3, 4), start=1))
    return _table("msca_table1", rows)


@register_table
def msca_table2() -> TableSpec:
    rows = (TOKENSHIFT(0), VIT(1)) + tuple(
        RowSpec(f"msca_{v.lower()}_h1" if v != "KV" else "msca_kv_h1", i, f"MSCA-{v}, h_b = h_f = 1", msca(v))
        for i, v in enumerate(VARIANTS, start=2))
    return _table("msca_table2", rows, "Head shifts with h_b = h_f = 1, Table 1's best.", THREE_SEEDS)


@register_table
def msca_table3() -> TableSpec:
    rows = (VIT(0), last_blocks_row("msca_kv_last4", 1, 4), last_blocks_row("msca_kv_last8", 2, 8),
            RowSpec("msca_kv_h1", 3, "MSCA-KV in all 12 blocks (tiny: 4 of 4)", msca()))
    return _table("msca_table3", rows, "The earlier blocks are frame-wise ViT blocks (MSCA near the top).")


@register_table
def msca_table4() -> TableSpec:
    rows = (VIT(0),) + tuple(patch_row(f"msca_pkv_n{n}", i, f"MSCA-pKV, N_b = N_f = {n}", "KV", n)
                             for i, n in enumerate((4, 8, 16, 24, 32), start=1))
    return _table("msca_table4", rows, "Token rows count from the class token (row 0), as Eq. 1 orders them; the "
                                       "tiny rows scale the paper's N_b = N_f to 17 rows per frame, so 4, 8 and 16 "
                                       "all become 1 there and share one run.")


@register_table
def msca_table5() -> TableSpec:
    rows = (TOKENSHIFT(0), VIT(1)) + tuple(
        patch_row(f"msca_p{v.lower()}_n{PATCH_SHIFT}", i, f"MSCA-p{v}, N_b = N_f = {PATCH_SHIFT}", v, PATCH_SHIFT)
        for i, v in enumerate(VARIANTS, start=2))
    return _table("msca_table5", rows, "Patch shifts with N_b = N_f = 8, Table 4's best (16 patches).",
                  THREE_SEEDS)


# ---- not a paper table: which frame a shifted head's values come from -----------------------------------------

@register_experiment
def msca_kv_frames() -> TableSpec:
    # Frames of head 0's queries, keys and values (head 1 mirrors them): MSCA-KV (t, t-1, t-1), its opposite
    # (t, t-1, t+1); MSCA-QKV (t-1, t-1, t-1), its opposite (t-1, t-1, t+1)
    rows = (RowSpec("msca_kv_h1", 0, "MSCA-KV (the paper's)", msca("KV")),
            RowSpec("msca_kv_opposite_h1", 1, "MSCA-KV, values from the other neighbour",
                    msca("KV", value_frames="opposite")),
            RowSpec("msca_qkv_h1", 2, "MSCA-QKV (the paper's)", msca("QKV")),
            RowSpec("msca_qkv_opposite_h1", 3, "MSCA-QKV, values from the other neighbour",
                    msca("QKV", value_frames="opposite")))
    return TableSpec(
        table_id="msca_kv_frames", rows=rows, metric_columns=(MOTION,), scales=SCALES,
        tiny_seeds=THREE_SEEDS, is_paper_table=False,
        notes="Not a paper table: the paper's MSCA-KV and -QKV (h_b = h_f = 1) against the same two heads with "
              "their values read from the other neighbour frame (the same channels moved, the same FLOPs and "
              "parameters), on the motion set (`synth_motion_pairs`), where the frame-wise ViT cannot tell a class "
              "from its reverse.")


# ---- not a paper table: the other sizes of TokShift's released checkpoints ---------------------------------------

# TokShift as its own code computes it: the class token's first quarter of channels from frame t+1 (shift_tk); the
# TokenShift rows of the paper tables shift in the order of MSCA's Eq. 8.
TOKSHIFT_OFFICIAL = {**TOKEN_SHIFT, "shift_order": "official"}
# ViT-L/16 as the frame-wise model (TokShift's ViT-L_16 backbone), from Google's original ImageNet-21K weights
VIT_LARGE = {"name": "vit_base_patch16_frame", "pretrained": "timm:vit_large_patch16_224.orig_in21k",
             "model": {"embed_dim": 1024, "depth": 24, "num_heads": 16}}


def _tokshift_size(key: str, index: int, label: str, crop: int = 224, frames: int = 8,
                   large: bool = False) -> RowSpec:
    """A TokShift row at another crop (its training short side from crop to crop x 4/3, as the official configs),
    frame count or backbone."""
    data = {"crop_size": crop, "num_frames": frames, "train_scale": (crop, crop * 4 // 3)}
    paper = {**VIT_LARGE, "model": {**VIT_LARGE["model"], **TOKSHIFT_OFFICIAL}} if large else {}
    return RowSpec(key, index, label, {} if large else TOKSHIFT_OFFICIAL, data=data,
                   scales={"paper": paper} if paper else {})


@register_experiment
def msca_tokshift_sizes() -> TableSpec:
    rows = (_tokshift_size("tokshift_mr", 0, "TokShift (MR): ViT-B/16, 8 x 256²", crop=256),
            _tokshift_size("tokshift_hr", 1, "TokShift (HR): ViT-B/16, 8 x 384²", crop=384),
            _tokshift_size("tokshift_16f", 2, "TokShift: ViT-B/16, 16 x 224²", frames=16),
            _tokshift_size("tokshift_large_hr", 3, "TokShift-Large (HR): ViT-L/16, 8 x 384²", crop=384, large=True),
            _tokshift_size("tokshift_large_hr_12f", 4, "TokShift-Large (HR): ViT-L/16, 12 x 384²", crop=384,
                           frames=12, large=True))
    return TableSpec(
        table_id="msca_tokshift_sizes",
        rows=rows,
        metric_columns=COLUMNS[:2],
        scales={"paper": MSCA_PAPER},
        is_paper_table=False,
        notes="Not a paper table: the sizes of TokShift-Transformer's released checkpoints that MSCA's tables do "
              "not use (another crop, 16 or 12 frames, ViT-L/16), each the row its file fills, with TokShift's "
              "own shift order; `run` would train them with MSCA's recipe at these sizes. Paper scale only.",
    )
