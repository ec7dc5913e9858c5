"""3D-Deformable supplementary (Kim, Ahn, Ko, "Cross-Modal Learning with 3D Deformable Attention for Action
Recognition", ICCV 2023; paper 000, supplementary only): Tables A1-A2 and Figure A1 as specs.

The model is ``models.d3da`` (``d3da_tiny``, ``d3da_base``): RGB tokens through 3D deformable attention (A3),
pose tokens through joint stride attention (A1), both with temporal stride attention (A2) over all tokens. Runs
read RGB and pose together through the task ``rgb_pose_classification`` registered here.

- Tables A1 and A2 print only O(.) expressions. We measure them: forward FLOPs (counted on the meta device) and
  CPU wall time (the machine's load beside it) of full attention against joint stride attention as the number of
  pose tokens R = people x joints grows (A1), and against temporal stride attention as the number of frames T
  grows (A2), at the paper-scale model's width (4C = 256, 8 heads, wnd 4) and shapes (12 frames, 224x224 frames:
  D_n = 28 * 28 + 13 + 3 = 800), with each curve's fitted growth exponent beside the exponent the O(.) states.
- Figure A1: one model trained with 12 frames, tested with 4 ... 32 frames (the temporal position table is
  interpolated); tiny scale on ``synth_pose``, paper scale on PennAction, NTU RGB+D 60/120 and FineGYM.

Only the supplementary is in this repository: every training setting below is our choice (``RECIPE_CHOICES``).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..harness.spec import (
    Computed,
    DataConfig,
    MetricColumn,
    ModelConfig,
    OptimConfig,
    RowSpec,
    RunConfig,
    ScalePreset,
    StaticColumn,
    SweepPlot,
    TableSpec,
    register_table,
)
from ..harness.static import MEASURED
from ..harness.tasks import Task, get_task, register_task, test_protocol, tested_only
from ..harness.timings import measure_sweep
from ..presets import (
    FIVE_SEEDS,
    GPU_TRAINER,
    MAX_LOADER_WORKERS,
    TINY_OPTIM,
    TINY_STAND_INS,
    TINY_TRAINER,
    at_power_rule,
)

# ---- the task: RGB + pose ------------------------------------------------------------------------------------------

# Joints per person, coordinates per joint and their space, by dataset (what the data fixes in the model).
# PennAction and synth_pose: 13 joints in pixels (data.pose.PENNACTION_JOINTS); NTU: the main actor's 25 camera-space
# joints (data.pose.NTU_NUM_JOINTS); FineGYM ships no joints: 17 COCO keypoints of a 2-D pose estimator (our choice).
PENN_POSE = {"num_joints": 13, "pose_dim": 2, "pose_space": "pixel"}
NTU_POSE = {"num_joints": 25, "pose_dim": 3, "pose_space": "camera"}
POSE_LAYOUTS = {"synth_pose": PENN_POSE, "pennaction": PENN_POSE, "ntu60": NTU_POSE, "ntu60_xview": NTU_POSE,
                "ntu120": NTU_POSE, "ntu120_xset": NTU_POSE,
                "finegym": {"num_joints": 17, "pose_dim": 2, "pose_space": "pixel"}}


def _rgb_pose_inputs(data: DataConfig) -> dict[str, Any]:
    if data.dataset not in POSE_LAYOUTS:
        raise ValueError(f"rgb_pose_classification needs a dataset with joints ({', '.join(POSE_LAYOUTS)}); got "
                         f"{data.dataset!r}")
    return {"num_frames": data.num_frames, "img_size": data.crop_size, **POSE_LAYOUTS[data.dataset]}


def _rgb_pose_datamodule(cfg: RunConfig, run_dir: Path):
    from data.datamodule import DATASETS

    if cfg.data.dataset not in DATASETS:
        raise ValueError(f"{cfg.table}/{cfg.row}: {cfg.data.dataset} has no annotation reader in data/ yet (the "
                         f"readers: {', '.join(sorted(DATASETS))}); its configuration is in experiments/d3da/tables.py")
    data = dataclasses.replace(cfg.data, options={**cfg.data.options, "with_pose": True})
    return get_task("video_classification").datamodule(dataclasses.replace(cfg, data=data), run_dir)


def _rgb_pose_classifier(cfg: RunConfig, model, dm):
    from lightning_modules import RGBPoseClassifier

    return RGBPoseClassifier(model, dm.num_classes, **dataclasses.asdict(cfg.optim), **test_protocol(cfg))


RGB_POSE = register_task(Task("rgb_pose_classification", _rgb_pose_datamodule, _rgb_pose_classifier,
                              _rgb_pose_inputs, get_task("video_classification").check_classes,
                              data_options=get_task("video_classification").data_options))

# ---- Figure A1's test-only runs ------------------------------------------------------------------------------------

TRAIN_FRAMES = 12  # "a model trained with 12 frames"
TEST_FRAMES = (4, 8, 12, 16, 24, 32)  # not listed in the supplementary; synth_pose videos have 32 frames


def _test_frames_inputs(data: DataConfig) -> dict[str, Any]:
    """As the training task, except the frame count: the model keeps the table of the frames it was trained on."""
    return {k: v for k, v in _rgb_pose_inputs(data).items() if k != "num_frames"}


# Tests the trained model on clips of ``cfg.data.num_frames`` frames (its temporal table is interpolated from the
# ``num_frames`` it was built with) and trains nothing.
TEST_FRAMES_TASK = register_task(Task("rgb_pose_test_frames", model_inputs=_test_frames_inputs,
                                      evaluate=tested_only(RGB_POSE), data_options=RGB_POSE.data_options))

# ---- scales --------------------------------------------------------------------------------------------------------

_TINY_PENN = dataclasses.replace(TINY_STAND_INS["PennAction"], task=RGB_POSE.name, num_frames=TRAIN_FRAMES)
D3DA_TINY = ScalePreset(
    description="tiny: d3da_tiny (64-d, 2 blocks, 4 heads, wnd 4), 12x32x32 clips (4x4 RGB tokens per frame) + "
                "13 joints, trained from scratch on CPU for 6 epochs",
    model=ModelConfig(name="d3da_tiny"),
    # NTU and FineGYM have no stand-in: at tiny scale their columns need the real data (--data-root)
    data={"PennAction": _TINY_PENN,
          "NTU60": dataclasses.replace(_TINY_PENN, dataset="ntu60", synthetic_params={}),
          "NTU120": dataclasses.replace(_TINY_PENN, dataset="ntu120", synthetic_params={}),
          "FineGYM": dataclasses.replace(_TINY_PENN, dataset="finegym", synthetic_params={})},
    optim=dataclasses.replace(TINY_OPTIM, epochs=6),
    trainer=TINY_TRAINER,
)

# Paper scale. The supplementary gives the 12 training frames, the token grid (H/8 x W/8, 4C channels) and the
# windows' stride (floor(wnd / 2)); everything else here is our choice (RECIPE_CHOICES).
# Loader processes per GPU: the rule of experiments/presets.py (``loader_workers``), recomputed from the tracked
# records by tests/experiments/test_loader_workers.py: PennAction's frames need 8; NTU's 1080p videos and FineGYM's
# 720p elements need more than a GPU's share of a node's cores, so they start that share and stay loader-bound.
_PAPER_PENN = DataConfig(dataset="pennaction", task=RGB_POSE.name, sampling="segments", num_frames=TRAIN_FRAMES,
                         crop_size=224, train_scale=(256, 320), hflip=True, batch_size=8, num_workers=8,
                         test_clips=1, test_crops=3)
D3DA_PAPER = ScalePreset(
    description="paper (recipe chosen: the supplementary does not state it): d3da_base (4C = 256, 4 blocks, 8 "
                "heads, wnd 4), 12x224x224 clips (28x28 RGB tokens per frame) + joints, from scratch, AdamW 1e-4, "
                "50 epochs",
    model=ModelConfig(name="d3da_base"),
    data={"PennAction": _PAPER_PENN,
          "NTU60": dataclasses.replace(_PAPER_PENN, dataset="ntu60", num_workers=MAX_LOADER_WORKERS),  # cross-subject
          "NTU120": dataclasses.replace(_PAPER_PENN, dataset="ntu120", num_workers=MAX_LOADER_WORKERS),
          # Gym99 (data/README.md#real-datasets)
          "FineGYM": dataclasses.replace(_PAPER_PENN, dataset="finegym", num_workers=MAX_LOADER_WORKERS)},
    optim=OptimConfig(optimizer="adamw", lr=1e-4, weight_decay=0.05, label_smoothing=0.1, epochs=50,
                      warmup_epochs=5, schedule="cosine"),
    trainer=GPU_TRAINER,
)
SCALES = {"tiny": D3DA_TINY, "paper": D3DA_PAPER}

RECIPE_CHOICES = (
    "Choices of this repository (the supplementary gives only Algorithms A1-A3, the H/8 x W/8 token grid with 4C "
    "channels, stride = floor(wnd/2) and the 12 training frames): model width 4C = 256, 4 blocks, 8 heads, MLP "
    "ratio 4, wnd = 4 for both stride attentions, a 3-layer conv stem (C, 2C, 4C; stride 2 each), the offset "
    "network's kernel 3 and range 2 token cells, pre-norm blocks, one FFN per attention, classification from the "
    "frame mean of M_CLS, the M_CLS of A3 and the M'_CLS of A1 averaged before A2; windows cover every token "
    '(`cover="full"`; the printed loops of A1/A2 leave tokens uncovered, README), so each key/value window is its '
    "query window: the shift of one stride between O and Õ (Eq. A3; N_q and N_kv, Eq. A6) is not kept "
    '(`cover="as_printed"` keeps it and leaves tokens uncovered); no stochastic depth; from scratch; AdamW lr '
    "1e-4, weight decay 0.05, label smoothing 0.1, 50 epochs cosine after 5 warm-up epochs, batch 8; 12 segments "
    "at 224x224 (short side in [256, 320], flips), 1 x 3 test views; PennAction's 13 pixel joints, NTU's 25 "
    "camera-space joints of the main actor (cross-subject splits), FineGYM (Gym99) with 17 COCO joints of a 2-D "
    "pose estimator (the gymnast: the person of the highest keypoint scores).")

# ---- Figure A1: one model trained with 12 frames, tested with fewer and more -------------------------------------

FIGURE_DATASETS = {"pennaction": "PennAction", "ntu60": "NTU60", "ntu120": "NTU120", "finegym": "FineGYM"}
TRAINED = f"{TRAIN_FRAMES} frames"  # the trained column; the others test its checkpoint


def _frame_columns() -> tuple[MetricColumn, ...]:
    """The trained column first (its checkpoint must exist before the test-only columns read it), then the
    test-only columns; every column's data is its row's dataset."""
    trained = MetricColumn(TRAINED, "top1", scales={s: {"pretrained": None} for s in SCALES})
    tested = tuple(MetricColumn(f"{frames} frames", "top1", model={"num_frames": TRAIN_FRAMES},
                                data={"num_frames": frames, "task": TEST_FRAMES_TASK.name})
                   for frames in TEST_FRAMES if frames != TRAIN_FRAMES)
    return (trained, *tested)


def _dataset_row(index: int, key: str, dataset: str) -> RowSpec:
    # the test-only columns start from this row's trained model (the trained column sets None over it)
    return RowSpec(key, index, dataset, dataset=dataset,
                   scales={s: {"pretrained": f"run:d3da_figureA1/{key}/{TRAINED}"} for s in SCALES})


@register_table
def d3da_figureA1() -> TableSpec:
    columns = _frame_columns()
    by_frames = {int(c.column.split()[0]): c.column for c in columns}
    return at_power_rule(TableSpec(
        table_id="d3da_figureA1",
        rows=tuple(_dataset_row(i, key, name) for i, (key, name) in enumerate(FIGURE_DATASETS.items())),
        metric_columns=columns,
        scales=SCALES,
        plot=SweepPlot(x_label=f"frames at test time (trained with {TRAIN_FRAMES})", x_values=TEST_FRAMES,
                       panels={"3D-Deformable (RGB + pose)": tuple(by_frames[t] for t in TEST_FRAMES)}),
        tiny_seeds=FIVE_SEEDS,
        notes=f"One model per dataset (row) is trained with {TRAIN_FRAMES} frames (the `{TRAINED}` column); every "
              f"other column tests that model's last checkpoint on clips of that many uniformly spaced frames (the "
              f"temporal position table is linearly interpolated) and trains nothing. The supplementary plots the "
              f"sweep without values and names neither the dataset nor the frame counts; we test "
              f"{', '.join(map(str, TEST_FRAMES))}. " + RECIPE_CHOICES,
    ))


# ---- Tables A1 and A2: measured complexity -------------------------------------------------------------------------

# The paper-scale model's attention (d3da_base) at the paper's shapes.
DIM, HEADS, WND = 256, 8, 4
FRAMES = TRAIN_FRAMES
JOINT_SWEEP = ((1, 13), (1, 25), (2, 25), (4, 25), (8, 25))  # (people, joints): PennAction, NTU, NTU x 2 people, ...
D_N = (224 // 8) ** 2 + 13 + 3  # tokens per frame of A2 at 224x224 with PennAction's 13 joints (D_n = 800)
FRAME_SWEEP = (4, 8, 12, 16, 24)
# median of this many timed forwards after one warm-up: A2's full attention at T = 24 takes seconds a pass, A1's
# passes milliseconds (the whole A2 sweep takes about 1.5 min on one idle thread)
TIME_REPEATS = {"d3da_tableA1": 7, "d3da_tableA2": 3}


@dataclasses.dataclass(frozen=True)
class Sweep:
    """A measured complexity table: one row per attention, one point per size along ``axis``."""

    axis: str  # "R" or "T"
    sizes: tuple[int, ...]
    labels: tuple[str, ...]  # column label of each size
    stated: Mapping[str, tuple[float, str]]  # row key -> exponent in ``axis`` the paper's O(.) states, and why


JOINT = Sweep("R", tuple(p * j for p, j in JOINT_SWEEP), tuple(f"R={p * j} ({p}x{j})" for p, j in JOINT_SWEEP),
              {"full": (2.0, "O(T^2 R^2)"), "stride": (0.0, "O(T^2 wnd^2)")})
TEMPORAL = Sweep("T", FRAME_SWEEP, tuple(f"T={t}" for t in FRAME_SWEEP),
                 {"full": (2.0, "O(T^2 D_n^2)"), "stride": (0.0, "O(wnd^2 D_n^2)")})
SWEEPS = {"d3da_tableA1": JOINT, "d3da_tableA2": TEMPORAL}


def windows(table_id: str, row_key: str, size: int) -> int:
    """Windows the row's attention forms at one size: 1 for full attention, the corrected cover's for stride."""
    if row_key == "full":
        return 1
    from models.d3da.stride_attention import full_window_starts

    return len(full_window_starts(size, WND))


def count_flops(table_id: str, row_key: str, size: int) -> dict[str, float]:
    """Counted forward FLOPs (multiply-adds; ``attention``, ``projections``, ``total``) of one point."""
    from models.d3da.complexity import joint_attention_flops, temporal_attention_flops

    which = "full" if row_key == "full" else "stride"
    if table_id == "d3da_tableA1":
        people, joints = JOINT_SWEEP[JOINT.sizes.index(size)]
        return joint_attention_flops(joints, FRAMES, WND, which, people, DIM, HEADS)
    return temporal_attention_flops(size, D_N, WND, which, DIM, HEADS)


def time_forward(table_id: str, row_key: str, size: int) -> float:
    """Median CPU seconds of one forward (SDPA, batch 1) of one point."""
    from models.d3da.complexity import joint_attention_time, temporal_attention_time

    which = "full" if row_key == "full" else "stride"
    if table_id == "d3da_tableA1":
        people, joints = JOINT_SWEEP[JOINT.sizes.index(size)]
        return joint_attention_time(joints, FRAMES, WND, which, people, DIM, HEADS, repeats=TIME_REPEATS[table_id])
    return temporal_attention_time(size, D_N, WND, which, DIM, HEADS, repeats=TIME_REPEATS[table_id])


@functools.cache
def measure(table_id: str, row_key: str) -> dict[str, Any]:
    """Every point of one row, counted and timed once (the static columns read it; ``experiments.harness.timings``):
    attention FLOPs, windows, seconds, and the fitted exponents in the swept axis (of the attention FLOPs, of the
    FLOPs per window, of the time)."""
    return measure_sweep(SWEEPS[table_id].sizes, lambda n: count_flops(table_id, row_key, n)["attention"],
                         lambda n: windows(table_id, row_key, n), lambda n: time_forward(table_id, row_key, n))


def _number(x: float) -> str:
    """3 significant digits, without an exponent for the large ones (20000, not 2e+04)."""
    return f"{x:.0f}" if x >= 100 else f"{x:.3g}"


# Cell texts name their source themselves (the report then adds no "[source]" tag to each of them): the CPU is named
# once, in the time exponent's cell, and every time cell says "CPU".
def _flops_cell(index: int):
    def compute(spec: TableSpec, row: RowSpec) -> Computed:
        m = measure(spec.table_id, row.key)
        value, count = m["flops"][index] / 1e9, m["windows"][index]
        return Computed(value, f"{_number(value)} ({count} window{'s' * (count > 1)}; computed)")
    return compute


def _time_cell(index: int):
    def compute(spec: TableSpec, row: RowSpec) -> Computed:
        ms = 1e3 * measure(spec.table_id, row.key)["seconds"][index]
        return Computed(ms, f"{_number(ms)} (CPU)", MEASURED + "CPU")
    return compute


def _exponent_cell(key: str, measured: bool = False):
    def compute(spec: TableSpec, row: RowSpec) -> Computed:
        m = measure(spec.table_id, row.key)
        if measured:
            return Computed(m[key], f"{m[key]:.2f} ({m['device']})", MEASURED + m["device"])
        return Computed(m[key], f"{m[key]:.2f} (computed)")
    return compute


def _stated_cell(spec: TableSpec, row: RowSpec) -> str:
    exponent, expression = SWEEPS[spec.table_id].stated[row.key]
    return f"{exponent:g} ({expression}, the paper's per-layer O(.))"


def _sweep_inputs(spec: TableSpec, row: RowSpec) -> dict[str, Any]:
    """What a complexity cell is a function of: the row's attention at every size of the sweep."""
    sweep = SWEEPS[spec.table_id]
    shape = {"people_joints": JOINT_SWEEP} if spec.table_id == "d3da_tableA1" else {"tokens_per_frame": D_N}
    return {"attention": row.key, "axis": sweep.axis, "sizes": sweep.sizes, "dim": DIM, "heads": HEADS,
            "window": WND, "frames": FRAMES, **shape}


def _complexity_table(table_id: str, stride_label: str, shape_note: str) -> TableSpec:
    sweep = SWEEPS[table_id]
    a = sweep.axis
    column = functools.partial(StaticColumn, inputs=_sweep_inputs)
    flops_columns = tuple(f"GFLOPs {label}" for label in sweep.labels)
    time_columns = tuple(f"ms {label}" for label in sweep.labels)
    static = (
        *(column(c, _flops_cell(i), note=(
            f"GFLOPs: attention matmuls (QK^T and AV, what the O(.) counts) of one forward, batch 1, counted on "
            f"the meta device, one multiply-add = one FLOP; the q/k/v and output projections (linear in the "
            f"tokens, the same for both rows) are left out. Stride rows use every window of the corrected cover "
            f"(`cover=\"full\"`); {shape_note}")) for i, c in enumerate(flops_columns)),
        *(column(c, _time_cell(i), note=(
            "ms: median wall time of one forward of the whole module (projections included; SDPA, fp32, batch 1) "
            f"over {TIME_REPEATS[table_id]} runs after a warm-up, on the CPU named in the time exponent's cell, "
            "in one process that may share the machine; timings are recorded, not asserted"))
          for i, c in enumerate(time_columns)),
        column(f"exponent in {a}: GFLOPs", _exponent_cell("flops_exponent"), digits=2, note=(
            f"exponents: slope of the least-squares line through (log {a}, log cost) over the {len(sweep.sizes)} "
            f"sizes (`models.d3da.complexity.fit_exponent`); 'per window' divides each count by the number "
            f"of windows. Stated: the exponent of {a} in the O(.) the paper gives per layer; for stride attention "
            f"it holds for one window only, and the layer's cost grows with {a} (its number of windows grows as "
            f"{a} / floor(wnd/2)), as the measured exponents show")),
        column(f"exponent in {a}: GFLOPs per window", _exponent_cell("window_exponent"), digits=2),
        column(f"exponent in {a}: time", _exponent_cell("time_exponent", measured=True), digits=2),
        column(f"stated exponent in {a}", _stated_cell),
    )
    return TableSpec(
        table_id=table_id,
        rows=(RowSpec("full", 0, "Full attention"), RowSpec("stride", 1, stride_label)),
        metric_columns=(),
        static_columns=static,
        scales=SCALES,  # nothing trains: the sizes are the paper-scale model's, fixed here
        plot=SweepPlot(x_label=f"{a} (log scale)", x_values=sweep.sizes, y_label="cost (log scale)",
                       panels={"attention GFLOPs (counted)": flops_columns,
                               "forward ms (measured, CPU)": time_columns}),
        notes=RECIPE_CHOICES,
    )


@register_table
def d3da_tableA1() -> TableSpec:
    return _complexity_table(
        "d3da_tableA1", "Joint stride attention",
        f"pose tokens [P || M_pose || M'_CLS] of T = {FRAMES} frames, R = people x joints, width 4C = {DIM}, "
        f"{HEADS} heads, wnd = {WND}; full attention is one softmax over all T x (R + 2) of them")


@register_table
def d3da_tableA2() -> TableSpec:
    return _complexity_table(
        "d3da_tableA2", "Temporal stride attention",
        f"all tokens N of T frames at 224x224, D_n = 28 x 28 + 13 + 3 = {D_N} per frame, width 4C = {DIM}, "
        f"{HEADS} heads, wnd = {WND}; full attention is one softmax over all T x D_n of them")
