"""The paper-scale presets of CAST (``experiments/cast/``, paper 004) and of the RGB+pose supplementary
(``experiments/d3da/tables.py``, paper 000), checked against the papers' literal values.

CAST: every resolved paper-scale run of Tables 2 and 9-11 against Table 4's column of its dataset (and Sec. 4.2's
sampling, 16 frames, 224 crops and test views), every run of the ablation tables against Sec. 4.2's recipe, Table
4's rendered cells against the printed table, and the options and expert checkpoints of each row against what that
row of the paper's table varies. 3D-Deformable: the paper-scale runs of Figure A1 against the recipe the module
documents (``RECIPE_CHOICES``; the supplementary states only the 12 training frames and the token grid), and the
complexity tables' shapes against the supplementary's D_n = H/8 x W/8 + R + 3. Every expected value is typed here
from the papers (or from the module's documented choice where the paper is silent), never read from the presets.
"""

from __future__ import annotations

import pytest

from experiments.d3da import tables as d3da
from experiments.harness.plan import resolve_runs
from experiments.harness.provenance import batch_and_lr
from experiments.harness.spec import table_spec
from experiments.harness.tasks import model_kwargs
from models import create_model
from tests.experiments.cast.test_recipes import ABLATIONS, SOTA, paper_runs
from tests.experiments.d3da.test_specs import paper_run

# ---- CAST: Table 4 (Appendix B) per dataset, Sec. 4.2 for what Table 4 leaves out ---------------------------------

# Table 4's columns; test views from Sec. 4.2 ("(5 clips) x (3 crops) ... K400 ... (2 clips) x (3 crops) for the
# other datasets"); sampling from Sec. 4.2 ("dense sampling" on K400, "uniform sampling" on SSV2 and EK100)
TABLE4 = {
    "epic_kitchens100": {"update_frequency": 4, "epochs": 50, "flip": True, "drop_path": 0.2, "views": (2, 3),
                         "sampling": "segments", "videomae_file": "videomae_vit_b_ek100_pretrain.pth"},
    "kinetics400": {"update_frequency": 6, "epochs": 70, "flip": True, "drop_path": 0.2, "views": (5, 3),
                    "sampling": "dense", "videomae_file": "videomae_vit_b_k400_pretrain.pth"},
    "ssv2": {"update_frequency": 4, "epochs": 50, "flip": False, "drop_path": 0.3, "views": (2, 3),
             "sampling": "segments", "videomae_file": "videomae_vit_b_ssv2_pretrain.pth"},
}
GPUS, BATCH_PER_GPU, BASE_LR, REFERENCE_BATCH = 16, 6, 1e-3, 256  # "2 nodes, each equipped with 8 GPUs"


def _assert_shared_recipe(cfg, layer_decay: float, update_frequency: int) -> None:
    """What Table 4 and Sec. 4.2 state alike for every dataset (Sec. 4.2 for the ablations' layer decay)."""
    where = (cfg.table, cfg.row, cfg.column)
    optim, data, trainer = cfg.optim, cfg.data, cfg.trainer
    assert (optim.optimizer, optim.schedule) == ("adamw", "cosine"), where
    assert (optim.lr, optim.weight_decay, optim.label_smoothing, optim.mixup_alpha) == (1e-3, 0.05, 0.1, 0.8), where
    assert optim.warmup_epochs == 5 and optim.layer_decay == layer_decay, where
    # the official cosine_scheduler: warm-up from 0, decay to min_lr 1e-6 against lr 1e-3 (module doc)
    assert (optim.warmup_start, optim.min_lr_ratio) == (0.0, 1e-3), where
    assert (data.num_frames, data.crop_size, data.batch_size) == (16, 224, BATCH_PER_GPU), where
    assert data.options["color_jitter"] == 0.4 and data.options["timm_rand_augment"].startswith("rand-m9-"), where
    assert trainer.devices * trainer.num_nodes == GPUS and trainer.accumulate_grad_batches == update_frequency, where
    # "actual lr = base lr x total batch size / 256", computed here from the stated numbers
    global_batch = BATCH_PER_GPU * GPUS * update_frequency
    scaled = batch_and_lr(cfg, world_size=trainer.devices * trainer.num_nodes)
    assert scaled["global_batch"] == global_batch and scaled["lr"] == pytest.approx(BASE_LR * global_batch / 256)


@pytest.mark.parametrize("table", SOTA)
def test_state_of_the_art_runs_use_table4s_column_of_their_dataset(table):
    for cfg in paper_runs(table):
        column = TABLE4[cfg.data.dataset]
        where = (table, cfg.row, cfg.column)
        _assert_shared_recipe(cfg, layer_decay=0.75, update_frequency=column["update_frequency"])
        assert cfg.optim.epochs == column["epochs"] and cfg.model.overrides["drop_path_rate"] == column["drop_path"]
        assert bool(cfg.data.hflip) == column["flip"], where
        assert (cfg.data.test_clips, cfg.data.test_crops) == column["views"], where
        assert cfg.data.sampling == column["sampling"], where
        if cfg.data.dataset == "kinetics400":  # VideoMAE's dataset/kinetics.py stride (module doc; paper silent)
            assert cfg.data.frame_stride == 4, where
        # "VideoMAE pretrained on <the column's dataset>" (Tables 2, 9-11's CAST rows): the matching checkpoint
        if "temporal" in cfg.model.pretrained:
            assert cfg.model.pretrained["temporal"].endswith("/" + column["videomae_file"]), where


@pytest.mark.parametrize("table", ABLATIONS)
def test_ablation_runs_use_sec_4_2s_recipe(table):
    """Sec. 4.2: 50 epochs, 5 warm-up, lr 1e-3, layer decay 0.8, drop path 0.2, batch 6 per GPU, update frequency 2
    (footnote 4 for Appendix D); EK100's flips and 2 x 3 segment views."""
    for cfg in paper_runs(table):
        _assert_shared_recipe(cfg, layer_decay=0.8, update_frequency=2)
        assert cfg.optim.epochs == 50 and cfg.model.overrides["drop_path_rate"] == 0.2
        assert cfg.data.dataset == "epic_kitchens100" and cfg.data.sampling == "segments" and cfg.data.hflip
        assert (cfg.data.test_clips, cfg.data.test_crops) == (2, 3)


# Table 4 as printed (the momentum row is a fixed text, not a setting, and is left out)
PRINTED_TABLE4 = {
    "optimizer": ("AdamW", "AdamW", "AdamW"), "lr": (1e-3, 1e-3, 1e-3), "weight_decay": (0.05, 0.05, 0.05),
    "batch": (6, 6, 6), "update_frequency": (4, 6, 4), "schedule": ("cosine",) * 3, "warmup": (5, 5, 5),
    "epochs": (50, 70, 50), "flip": ("yes", "yes", "no"), "color_jitter": (0.4, 0.4, 0.4),
    "rand_augment": (9, 9, 9), "label_smoothing": (0.1, 0.1, 0.1), "mixup": (0.8, 0.8, 0.8),
    "drop_path": (0.2, 0.2, 0.3), "layer_decay": (0.75, 0.75, 0.75),
}


def test_table4_cells_read_back_the_printed_table():
    spec = table_spec("cast_table4")
    columns = list(spec.static_columns)
    assert [c.column for c in columns] == ["EK100", "K400", "SSV2"]  # the printed column order
    for key, printed in PRINTED_TABLE4.items():
        row = spec.row(key)
        for column, expected in zip(columns, printed):
            text = str(column.compute(spec, row))
            first = text.split()[1] if key == "rand_augment" else text.split()[0]  # "magnitude 9, ..."
            if isinstance(expected, str):
                assert first.rstrip(",") == expected, (key, column.column, text)
            else:
                assert float(first.rstrip(",")) == pytest.approx(expected), (key, column.column, text)


# ---- CAST: what each row varies --------------------------------------------------------------------------------

CLIP, IN21K, MVD = "ViT-B-16.pt", "vit:timm:vit_base_patch16_224.augreg_in21k", "mvd_vit_b.pth"
VMAE = {d: f"videomae_vit_b_{d}_pretrain.pth" for d in ("ek100", "ssv2", "k400")}
CAST_EXPERTS = (CLIP, VMAE["ek100"])
INDEPENDENT = {"exchange": "none", "time_adapter": True}  # Table 1c's Identity: AIM's CLIP + adapted VideoMAE
FULLY_FINE_TUNED = {"adapters": False, "train_experts": True}
# table -> paper row index -> (model options the row sets, (spatial, temporal) checkpoint file)
ROWS = {
    "cast_table1a": {0: ({"exchange": "none", **FULLY_FINE_TUNED}, CAST_EXPERTS), 1: (INDEPENDENT, CAST_EXPERTS),
                     2: ({**INDEPENDENT, "fusion": "ensemble"}, CAST_EXPERTS), 3: ({}, CAST_EXPERTS)},
    "cast_table1b": {0: ({"exchange": "none", "fusion": "add"}, CAST_EXPERTS),
                     1: ({"exchange": "none", "fusion": "concat"}, CAST_EXPERTS),
                     2: ({"exchange": "lateral"}, CAST_EXPERTS), 3: ({}, CAST_EXPERTS)},
    "cast_table1c": {0: (INDEPENDENT, CAST_EXPERTS), 1: ({"exchange": "xattn"}, CAST_EXPERTS),
                     2: ({"exchange": "xattn_adapter"}, CAST_EXPERTS), 3: ({}, CAST_EXPERTS)},
    # ratios 1/8, 1/4, 1/2 (CAST's default), 1
    "cast_table1d": {0: ({"down_ratio": 0.125}, CAST_EXPERTS), 1: ({"down_ratio": 0.25}, CAST_EXPERTS),
                     2: ({}, CAST_EXPERTS), 3: ({"down_ratio": 1.0}, CAST_EXPERTS)},
    # (T2S, S2T): space-time/space-time, space-time/space, space/space, time/space (CAST's default)
    "cast_table1e": {0: ({"t2s_window": "space_time", "s2t_window": "space_time"}, CAST_EXPERTS),
                     1: ({"t2s_window": "space_time", "s2t_window": "space"}, CAST_EXPERTS),
                     2: ({"t2s_window": "space", "s2t_window": "space"}, CAST_EXPERTS), 3: ({}, CAST_EXPERTS)},
    # blocks 10-12, 7-12, 4-12 (1-based as printed; 0-based here), then all 12
    "cast_table1f": {0: ({"exchange_blocks": (9, 10, 11)}, CAST_EXPERTS),
                     1: ({"exchange_blocks": (6, 7, 8, 9, 10, 11)}, CAST_EXPERTS),
                     2: ({"exchange_blocks": (3, 4, 5, 6, 7, 8, 9, 10, 11)}, CAST_EXPERTS), 3: ({}, CAST_EXPERTS)},
    "cast_table1g": {0: (INDEPENDENT, CAST_EXPERTS), 1: ({"directions": "s2t"}, CAST_EXPERTS),
                     2: ({"directions": "t2s"}, CAST_EXPERTS), 3: ({}, CAST_EXPERTS)},
    # (spatial, temporal): CLIP/CLIP, VideoMAE/CLIP, VideoMAE/VideoMAE, CLIP/VideoMAE; VideoMAE = the EK100 one
    "cast_table1h": {0: ({"spatial_expert": "clip", "temporal_expert": "clip"}, (CLIP, CLIP)),
                     1: ({"spatial_expert": "videomae", "temporal_expert": "clip"}, (VMAE["ek100"], CLIP)),
                     2: ({"spatial_expert": "videomae", "temporal_expert": "videomae"}, (VMAE["ek100"],) * 2),
                     3: ({}, CAST_EXPERTS)},
    "cast_table5": {0: ({**INDEPENDENT, "spatial_expert": "vit_in21k"}, (IN21K, VMAE["ek100"])),
                    1: ({"spatial_expert": "vit_in21k"}, (IN21K, VMAE["ek100"])), 2: ({}, CAST_EXPERTS)},
    # spatial IN-21K then CLIP, each with VideoMAE pretrained on EK100, SSV2, K400
    "cast_table6": {0: ({"spatial_expert": "vit_in21k"}, (IN21K, VMAE["ek100"])),
                    1: ({"spatial_expert": "vit_in21k"}, (IN21K, VMAE["ssv2"])),
                    2: ({"spatial_expert": "vit_in21k"}, (IN21K, VMAE["k400"])),
                    3: ({}, CAST_EXPERTS), 4: ({}, (CLIP, VMAE["ssv2"])), 5: ({}, (CLIP, VMAE["k400"]))},
    "cast_table7": {0: ({}, CAST_EXPERTS), 1: ({"temporal_expert": "mvd"}, (CLIP, MVD))},
    "cast_table8": {0: ({"exchange_pos": False}, CAST_EXPERTS), 1: ({}, CAST_EXPERTS)},
    # state of the art: the CAST authors' CLIP* / VideoMAE* (expert alone, fully fine-tuned) and CAST
    "cast_table9": {3: ({"experts": "spatial", **FULLY_FINE_TUNED}, (CLIP, None)),
                    11: ({"experts": "temporal", **FULLY_FINE_TUNED}, (None, VMAE["ek100"])),
                    15: ({}, CAST_EXPERTS)},
    "cast_table10": {1: ({"experts": "spatial", **FULLY_FINE_TUNED}, (CLIP, None)), 15: ({}, (CLIP, VMAE["ssv2"]))},
    "cast_table11": {4: ({"experts": "spatial", **FULLY_FINE_TUNED}, (CLIP, None)), 19: ({}, (CLIP, VMAE["k400"]))},
}
RECIPE_OVERRIDES = ("drop_path_rate", "num_verbs")  # set by the scale / the dataset, not by the row


def _checkpoint_file(source: str | None) -> str | None:
    if source is None:
        return None
    return source if source.startswith("vit:timm:") else source.rsplit("/", 1)[-1]


@pytest.mark.parametrize("table", sorted(ROWS))
def test_each_row_sets_the_options_and_experts_its_paper_row_varies(table):
    spec = table_spec(table)
    paper_row = {row.key: row.paper_row for row in spec.rows}
    assert sorted(paper_row.values()) == sorted(ROWS[table]), table  # the paper rows that have a spec
    for cfg in paper_runs(table):
        options, (spatial, temporal) = ROWS[table][paper_row[cfg.row]]
        where = (table, cfg.row, paper_row[cfg.row])
        assert {k: v for k, v in cfg.model.overrides.items() if k not in RECIPE_OVERRIDES} == options, where
        assert _checkpoint_file(cfg.model.pretrained.get("spatial")) == spatial, where
        assert _checkpoint_file(cfg.model.pretrained.get("temporal")) == temporal, where


def test_table2s_tiny_columns_read_the_temporal_expert_of_their_own_data():
    """Tiny scale: each Table 2 column's temporal expert is pretrained on the stand-in of that column's data
    ("VideoMAE on EK100 / SSV2 / K400", as the paper-scale column's checkpoint): the shipped expert of that name."""
    expected = {"EK-100": "videomae_ek100", "SSv2": "videomae_ssv2", "K-400": "videomae_k400"}
    runs = {cfg.column: cfg for cfg in resolve_runs("cast_table2", "tiny")}
    assert sorted(runs) == sorted(expected)
    for column, expert in expected.items():
        assert runs[column].model.pretrained["temporal"].startswith(f"tiny_expert:{expert}@"), column


# ---- 3D-Deformable (supplementary): Figure A1's paper runs and Tables A1-A2's shapes ------------------------------

# RECIPE_CHOICES: joints per person, coordinate dimensions and space of each Figure A1 dataset
POSE = {"pennaction": (13, 2, "pixel"), "ntu60": (25, 3, "camera"), "ntu120": (25, 3, "camera"),
        "finegym": (17, 2, "pixel")}


@pytest.mark.parametrize("row", ["pennaction", "ntu60", "ntu120", "finegym"])
def test_d3da_paper_runs_follow_the_documented_recipe(row):
    """``RECIPE_CHOICES``: AdamW lr 1e-4, weight decay 0.05, label smoothing 0.1, 50 epochs cosine after 5 warm-up,
    batch 8, 12 segments at 224 (short side 256-320, flips), 1 x 3 test views; cross-subject NTU splits."""
    cfg = paper_run(row)
    optim, data = cfg.optim, cfg.data
    assert (optim.optimizer, optim.lr, optim.weight_decay, optim.label_smoothing) == ("adamw", 1e-4, 0.05, 0.1)
    assert (optim.epochs, optim.warmup_epochs, optim.schedule) == (50, 5, "cosine")
    assert data.dataset == row and (data.num_frames, data.sampling, data.crop_size) == (12, "segments", 224)
    assert tuple(data.train_scale) == (256, 320) and data.hflip is True and data.batch_size == 8
    assert (data.test_clips, data.test_crops) == (1, 3)
    kwargs = model_kwargs(cfg)
    assert (kwargs["num_joints"], kwargs["pose_dim"], kwargs["pose_space"]) == POSE[row]
    assert cfg.model.name == "d3da_base" and not cfg.model.overrides  # 4C = 256, 4 blocks, 8 heads, wnd 4


def test_d3da_complexity_tables_measure_the_paper_scale_model_at_the_supplementarys_shapes():
    """Tables A1-A2 are measured at d3da_base's width, heads and windows (4C = 256, 8 heads, wnd 4), 12 frames, and
    D_n = H/8 x W/8 + R + 3 = 28 x 28 + 13 + 3 tokens per frame (Algorithm A2)."""
    model = create_model("d3da_base")
    joint, temporal = model.blocks[0].pose.attn, model.blocks[0].temporal.attn
    assert (model.embed_dim, joint.num_heads, joint.wnd, temporal.wnd) == (256, 8, 4, 4)  # the model measured ...
    assert (d3da.DIM, d3da.HEADS, d3da.WND, d3da.FRAMES) == (256, 8, 4, 12)  # ... is the one the tables name
    assert d3da.D_N == (224 // 8) * (224 // 8) + 13 + 3 == 800
    # full attention over all T x D_n tokens: QK^T and AV, each (T D_n)^2 x 4C multiply-adds
    assert d3da.count_flops("d3da_tableA2", "full", 12)["attention"] == 2 * (12 * 800) ** 2 * 256
    # A1's first two points are PennAction's 13 and NTU's 25 joints of one person: T x (R + 2) pose tokens
    assert d3da.JOINT_SWEEP[:2] == ((1, 13), (1, 25))
    assert d3da.count_flops("d3da_tableA1", "full", 25)["attention"] == 2 * (12 * (25 + 2)) ** 2 * 256
