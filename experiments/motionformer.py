"""Motionformer (Patrick et al., NeurIPS 2021, paper 001): table specs.

Scales share one spec:
- ``paper``: ViT-B/16 initialised from ImageNet-21K, 16x224x224 clips (stride 4 on Kinetics, segment sampling
  on SSv2), 2x16x16 tubelets, separate space/time position embeddings, AdamW 1e-4 / wd 0.05, label smoothing
  0.2, 35 epochs with lr/10 at 20 and 30, mixed precision, 10x3 test views on Kinetics and 1x3 on SSv2
  (paper Sec. 4 and appendix 6.2).
- ``tiny`` (the embedded default): the same architecture family shrunk to CPU size (dim 64, 4 layers, 4 heads,
  8x32x32 clips, 2x8x8 tubelets) on generated videos; the K-400 column is filled from ``synth_appearance``
  (classes defined by appearance) and the SSv2 column from ``synth_motion`` (classes defined by motion only).
"""

from __future__ import annotations

from models import model_gflops

from .spec import (
    DataConfig,
    MetricColumn,
    ModelConfig,
    OptimConfig,
    RowSpec,
    ScalePreset,
    StaticColumn,
    TableSpec,
    TrainerConfig,
    register_table,
)

# ---- scale presets shared by every Motionformer table -------------------------------------------------------

# 960 training and 240 test videos per set, all classes (8 appearance, 6 motion: 4 translations + 2 rotations).
TINY_SYNTHETIC = {"num_train": 960, "num_val": 240, "seed": 0}

TINY = ScalePreset(
    description="tiny: ViT 64-d/4 layers/4 heads, 8x32x32 clips, 2x8x8 tubelets, trained from scratch on CPU",
    model=ModelConfig(name="vit_tiny_video"),
    data={
        "K-400": DataConfig(dataset="synth_appearance", synthetic_params=TINY_SYNTHETIC),
        "SSv2": DataConfig(dataset="synth_motion", synthetic_params=TINY_SYNTHETIC),
    },
    optim=OptimConfig(lr=1e-3, weight_decay=0.05, label_smoothing=0.1, epochs=10, warmup_epochs=1,
                      schedule="cosine"),
    trainer=TrainerConfig(accelerator="cpu", devices=1, precision="32-true", log_every_n_steps=10,
                          check_val_every_n_epoch=2),
)

PAPER = ScalePreset(
    description="paper: ViT-B/16 (ImageNet-21K init), 16x224x224 clips, 2x16x16 tubelets, 35 epochs",
    model=ModelConfig(name="vit_base_patch16_video", pretrained="timm:vit_base_patch16_224.augreg_in21k"),
    data={
        "K-400": DataConfig(dataset="kinetics400", num_frames=16, frame_stride=4, sampling="dense", crop_size=224,
                            train_scale=(256, 320), hflip=True, batch_size=4, num_workers=8, test_clips=10,
                            test_crops=3),
        "SSv2": DataConfig(dataset="ssv2", num_frames=16, sampling="segments", crop_size=224,
                           train_scale=(256, 320), hflip=False, batch_size=4, num_workers=8, test_clips=1,
                           test_crops=3),
    },
    optim=OptimConfig(lr=1e-4, weight_decay=0.05, label_smoothing=0.2, epochs=35, schedule="step",
                      milestones=(20, 30), gamma=0.1),
    # In the last block of a trajectory model, stage two's proj_q/proj_kv feed only patch tokens, which the CLS
    # head never reads (as in the official code): DDP must be told to expect parameters without gradients.
    trainer=TrainerConfig(accelerator="gpu", devices="auto", strategy="ddp_find_unused_parameters_true",
                          precision="16-mixed"),
)

SCALES = {"tiny": TINY, "paper": PAPER}
COLUMNS = (MetricColumn("K-400"), MetricColumn("SSv2"))


def paper_gflops(spec: TableSpec, row: RowSpec) -> float:
    """GFLOPs of one view at the paper's configuration (fvcore convention: a multiply-add is one FLOP)."""
    preset = spec.scales["paper"]
    data = preset.data["K-400"]
    overrides = {**preset.model.overrides, **row.model}
    return model_gflops(preset.model.name, num_classes=400, input_shape=(1, 3, data.num_frames, 224, 224),
                        **overrides)


GFLOPS_NOTE = ("computed, not copied: FLOPs of one 16x224x224 view of the ViT-B model, counted on the meta "
               "device with attention matmuls included (one multiply-add = one FLOP)")

# ---- Table 4: attention ablations ---------------------------------------------------------------------------


def _trajectory(temporal_pool: str, normalize: str) -> dict:
    return {"attn_layer": "trajectory", "attn_kwargs": {"temporal_pool": temporal_pool, "normalize": normalize}}


@register_table
def mformer_table4() -> TableSpec:
    return TableSpec(
        table_id="mformer_table4",
        rows=(
            RowSpec("joint", 0, "Joint Space-Time", {"attn_layer": "joint"}),
            RowSpec("divided", 1, "Divided Space-Time", {"attn_layer": "divided"}),
            RowSpec("traj_avgT_normS", 2, "Trajectory (Avg_T, Norm_S)", _trajectory("average", "space")),
            RowSpec("traj_attT_normST", 3, "Trajectory (Att_T, Norm_ST)", _trajectory("attention", "spacetime")),
            RowSpec("traj_attT_normS", 4, "Trajectory (Att_T, Norm_S)", _trajectory("attention", "space")),
        ),
        metric_columns=COLUMNS,
        static_columns=(StaticColumn("GFLOPS", paper_gflops, note=GFLOPS_NOTE),),
        scales=SCALES,
    )
