"""MSCA's specs (Tables 1-5 and our experiments): rows as the paper defines them, at both scales; every MSCA
variant costs what the frame-wise ViT costs."""

import dataclasses
import json

import pytest

from experiments.harness.plan import resolve_runs
from experiments.harness.spec import table_spec
from experiments.harness.static import compute_static
from experiments.harness.tasks import build_model
from experiments.tiny_pretraining.images import tiny_image_source
from reports.build import build_report

MICRO = {"optim": {"epochs": 1, "warmup_epochs": 0},
         "data": {"synthetic_params": {"num_train": 32, "num_val": 16, "seed": 0}, "num_workers": 0,
                  "batch_size": 8}}


def configs(table_id, scale="tiny"):
    return {(c.row, c.column): c for c in resolve_runs(table_id, scale=scale, data_root="/datasets")}


@pytest.mark.parametrize("table_id", ["msca_table2", "msca_table5"])
def test_every_msca_variant_costs_what_the_frame_wise_vit_costs(tmp_path, table_id):
    record = compute_static(table_spec(table_id), tmp_path, echo=lambda _: None)
    cells = record["cells"]
    gflops = {row: c["GFLOPs"]["value"] for row, c in cells.items()}
    params = {row: c["Params (M)"]["value"] for row, c in cells.items()}
    assert len(gflops) == 9
    assert set(gflops.values()) == {gflops["vit"]} and set(params.values()) == {params["vit"]}, (gflops, params)
    assert gflops["vit"] == pytest.approx(8 * 17.56, abs=0.1)  # ViT-B/16 on 8 frames of 224x224


def test_a_row_shared_by_several_tables_is_one_configuration():
    def model(table_id, row):
        return next(c for (r, col), c in configs(table_id).items() if r == row and col == "K-400").model

    for row, tables in {"vit": ["msca_table1", "msca_table2", "msca_table3", "msca_table4", "msca_table5"],
                        "msca_kv_h1": ["msca_table1", "msca_table2", "msca_table3"],
                        "tokenshift": ["msca_table2", "msca_table5"],
                        "msca_pkv_n8": ["msca_table4", "msca_table5"]}.items():
        assert len({json.dumps(dataclasses.asdict(model(t, row)), sort_keys=True) for t in tables}) == 1, row


def configuration_key(cfg) -> str:
    """A run's configuration without its table, row and column: what two runs that train alike share."""
    return json.dumps(dataclasses.replace(cfg, table="", row="", column="").to_dict(), sort_keys=True)


@pytest.mark.parametrize("scale", ["tiny", "paper"])
def test_msca_kv_frames_pairs_each_paper_row_with_its_values_from_the_other_neighbour(scale):
    """The paper's rows are Table 2's runs, at both scales; each opposite row differs from its partner in
    value_frames alone."""
    ours, table2 = configs("msca_kv_frames", scale), configs("msca_table2", scale)
    assert {col for _, col in ours} == {"SSv2"}
    key = configuration_key
    for paper in ("msca_kv_h1", "msca_qkv_h1"):
        assert key(ours[(paper, "SSv2")]) == key(table2[(paper, "SSv2")])
        paper_model = dict(ours[(paper, "SSv2")].model.overrides)
        opposite = dict(ours[(paper.replace("_h1", "_opposite_h1"), "SSv2")].model.overrides)
        assert opposite.pop("attn_kwargs") == {**paper_model.pop("attn_kwargs"), "value_frames": "opposite"}
        assert opposite == paper_model


def test_msca_rows_at_both_scales():
    paper, tiny = configs("msca_table1", "paper"), configs("msca_table1", "tiny")
    kv2 = paper[("msca_kv_h2", "K-400")].model.overrides
    assert kv2["attn_layer"] == "msca" and kv2["attn_kwargs"] == {"shifted": "KV", "shift_along": "heads",
                                                                  "num_backward": 2, "num_forward": 2}
    assert tiny[("msca_kv_h2", "K-400")].model.overrides["attn_kwargs"] == kv2["attn_kwargs"]  # 12 heads at tiny too
    patches = configs("msca_table4")
    tiny_rows = [patches[(f"msca_pkv_n{n}", "K-400")].model.overrides["attn_kwargs"]["num_backward"]
                 for n in (4, 8, 16, 24, 32)]
    assert tiny_rows == [1, 1, 1, 2, 3]  # n of 197 rows scaled to 17
    blocks = configs("msca_table3")
    assert [blocks[(k, "K-400")].model.overrides.get("shift_last_blocks") for k in
            ("vit", "msca_kv_last4", "msca_kv_last8", "msca_kv_h1")] == [None, 1, 3, None]


def test_msca_paper_recipe_is_section_4_1():
    cfg = configs("msca_table1", "paper")[("vit", "K-400")]
    assert (cfg.optim.optimizer, cfg.optim.momentum, cfg.optim.lr, cfg.optim.weight_decay) == ("momentum", 0.9,
                                                                                              0.1, 0.0)
    assert (cfg.optim.epochs, cfg.optim.milestones, cfg.optim.gamma) == (12, (10,), 0.1)
    assert cfg.data.batch_size * cfg.trainer.devices * cfg.trainer.accumulate_grad_batches == 420
    assert (cfg.data.num_frames, cfg.data.frame_stride, cfg.data.train_scale) == (8, 32, (244, 330))
    assert (cfg.data.test_clips, cfg.data.test_crops) == (10, 3)
    assert cfg.model.pretrained == "timm:vit_base_patch16_224.orig_in21k"
    assert cfg.model.name == "vit_base_patch16_frame"
    assert cfg.data.test_view_average == "logits"  # TokShift's validate(): output.mean(1) over the views' logits
    assert configs("msca_table1", "tiny")[("vit", "K-400")].data.test_view_average == "probabilities"


def test_msca_motion_column_trains_with_the_papers_recipe_on_ssv2s_data():
    """The column is ours: only the data differ from the paper's K-400 column (SSv2's segments, no flip, its own
    test views; TokShift's clip and crop placement is K-400's), not the augmentation (TokenShift's colour changes, at
    10% each, on both; the shared SSv2 preset's RandAugment is Motionformer's)."""
    for table in ("msca_table1", "msca_table5", "msca_kv_frames"):
        for (row, column), cfg in configs(table, "paper").items():
            if column != "SSv2":
                continue
            k400 = configs("msca_table1", "paper")[("vit", "K-400")]
            assert dict(cfg.data.options) == {"tokenshift_photometric": 0.1}, (table, row)
            assert k400.data.options["tokenshift_photometric"] == 0.1
            assert (cfg.data.train_scale, cfg.optim, cfg.trainer) == (k400.data.train_scale, k400.optim, k400.trainer)
            assert cfg.data.test_view_average == k400.data.test_view_average
            assert (cfg.data.dataset, cfg.data.sampling, cfg.data.hflip, cfg.data.num_frames) == (
                "ssv2", "segments", False, 8)


def test_msca_report_adds_the_motion_and_cost_columns_marked_as_ours(tmp_path):
    compute_static(table_spec("msca_table1"), tmp_path / "runs", echo=lambda _: None)
    text = build_report("msca_table1", runs_root=tmp_path / "runs", out_dir=tmp_path).read_text()
    header = next(line for line in text.splitlines() if line.startswith("| model"))
    assert [c.strip() for c in header.strip("|").split("|")][-3:] == ["motion top-1 †", "GFLOPs †", "Params (M) †"]
    assert "† Not in the paper's table" in text and "synth_motion_pairs" in text


def test_msca_tiny_model_is_the_frame_wise_vit_with_twelve_heads():
    cfg = configs("msca_table1")[("vit", "K-400")]
    model = build_model(cfg, 8, device="meta")
    assert (cfg.model.name, model.embed_dim, model.blocks[0].attn.num_heads) == ("vit_tiny_frame", 96, 12)
    assert cfg.data.dataset == "synth_objects" and cfg.data.frame_stride == 4
    assert cfg.model.pretrained == tiny_image_source("vit_tiny_frame")
