"""The shift family's paper-scale presets, value by value, against the papers' text and the official configs.

MSCA (paper 002, Sec. 4.1 and Tables 1-5): every stated data, optimisation and hardware value, each row's paper row
index against the paper's table order, and each ablated option at paper scale (not only at tiny scale).
X-ViT (paper 003 supplementary; the official 1adrianb/video-transformers yamls it refers to): the key/value mixing
and TSM shift per dataset (SHIFT_DIV 4 on SSv2, 8 on Kinetics; TSM's fold_div 8), the cosine's end (COSINE_END_LR
0.0), mixup on every batch without CutMix, Figure 1's crop counts and Table 1's rows at the papers' input sizes.
Expected values are literals copied from the papers and configs, never read back from the specs under test.
"""

from __future__ import annotations

import pytest

from experiments.plan import resolve_runs
from experiments.spec import table_spec
from experiments.static import paper_config


def paper_configs(table_id: str) -> dict:
    return {(c.row, c.column): c for c in resolve_runs(table_id, scale="paper", data_root="/datasets")}


# ---- MSCA, Sec. 4.1 ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("table_id", ["msca_table1", "msca_table2", "msca_table3", "msca_table4", "msca_table5"])
def test_msca_kinetics_column_samples_crops_and_tests_as_section_4_1(table_id):
    """"8 frames with stride of 32 frames", flipped at 50%, short side in [244, 330], 224 x 224 crops, 10 clips x 3
    crops (right, center, left) on a 224 short side; 21 clips on each of two GPUs, updates every 10 iterations."""
    for (row, column), cfg in paper_configs(table_id).items():
        if column != "K-400":
            continue
        data = cfg.data
        assert (data.dataset, data.sampling, data.num_frames, data.frame_stride) == ("kinetics400", "dense", 8, 32), row
        assert (data.crop_size, data.train_scale, data.hflip) == (224, (244, 330), True), row
        assert (data.test_clips, data.test_crops, data.test_view_average) == (10, 3, "logits"), row
        assert dict(data.options) == {"tokenshift_photometric": 0.1}, row  # TokShift counts stride in video frames
        # each factor of the effective 420, not only their product: 21 per GPU, 2 GPUs, 10 accumulated steps
        assert (data.batch_size, cfg.trainer.devices, cfg.trainer.accumulate_grad_batches) == (21, 2, 10), row


def test_msca_optimiser_is_section_4_1_with_tokenshifts_unstated_settings():
    """SGD with momentum 0.9, no weight decay, lr 0.1 divided by 10 at epoch 10 of 12, no warm-up (none is stated,
    none in TokShift's step scheme); TokShift's config: LabelSmoothingCrossEntropy (0.1), CLIP_GD 1.0; no batch
    mixing; mixed precision as the shared GPU trainer."""
    for (row, column), cfg in paper_configs("msca_table2").items():
        o = cfg.optim
        assert (o.optimizer, o.momentum, o.lr, o.weight_decay) == ("momentum", 0.9, 0.1, 0.0), (row, column)
        assert (o.schedule, o.epochs, o.milestones, o.gamma, o.warmup_epochs, o.warmup_steps) == (
            "step", 12, (10,), 0.1, 0, None), (row, column)
        assert (o.label_smoothing, o.mixup_alpha, o.cutmix_alpha, o.layer_decay) == (0.1, 0.0, 0.0, None), row
        t = cfg.trainer
        assert (t.accelerator, t.precision, t.gradient_clip_val) == ("gpu", "16-mixed", 1.0), (row, column)


def test_msca_motion_column_keeps_ssv2s_own_views_and_sampling():
    """Our SSv2 column: SSv2's segments without flip, 1 clip x 3 crops at 224, 8 frames; the paper's batch split."""
    for (row, column), cfg in paper_configs("msca_table2").items():
        if column != "SSv2":
            continue
        data = cfg.data
        assert (data.dataset, data.sampling, data.hflip, data.num_frames, data.crop_size) == (
            "ssv2", "segments", False, 8, 224), row
        assert (data.test_clips, data.test_crops) == (1, 3), row
        assert (data.batch_size, cfg.trainer.devices, cfg.trainer.accumulate_grad_batches) == (21, 2, 10), row


def test_msca_columns_read_top1_top5_and_the_motion_top1():
    spec = table_spec("msca_table1")
    assert [(c.column, c.metric, c.dataset, c.run) for c in spec.metric_columns] == [
        ("top-1", "top1", "K-400", "K-400"), ("top-5", "top5", "K-400", "K-400"),
        ("motion top-1", "top1", "SSv2", "SSv2")]


# Each table's rows in the paper's order: (row key, the paper's model cell it stands for, the row's attention kwargs
# at paper scale or None for the frame-wise ViT / TokenShift). Tables 1-5 of paper 002, copied.
HEADS = "heads"
MSCA_PAPER_ROWS = {
    "msca_table1": [("vit", "ViT", None)] + [
        (f"msca_kv_h{h}", "MSCA-KV", {"shifted": "KV", "shift_along": HEADS, "num_backward": h, "num_forward": h})
        for h in (1, 2, 3, 4)],  # heads 2, 4, 6, 8 = h_b + h_f
    "msca_table2": [("tokenshift", "TokenShift", None), ("vit", "ViT", None)] + [
        (f"msca_{v.lower()}_h1", f"MSCA-{v}", {"shifted": v, "shift_along": HEADS, "num_backward": 1, "num_forward": 1})
        for v in ("Q", "K", "V", "QK", "KV", "QV", "QKV")],
    "msca_table4": [("vit", "ViT", None)] + [
        (f"msca_pkv_n{n}", "MSCA-pKV", {"shifted": "KV", "shift_along": "tokens", "num_backward": n, "num_forward": n})
        for n in (4, 8, 16, 24, 32)],  # patches 8, 16, 32, 48, 64 = N_b + N_f
    "msca_table5": [("tokenshift", "TokenShift", None), ("vit", "ViT", None)] + [
        (f"msca_p{v.lower()}_n8", f"MSCA-p{v}", {"shifted": v, "shift_along": "tokens", "num_backward": 8,
                                                  "num_forward": 8})
        for v in ("Q", "K", "V", "QK", "KV", "QV", "QKV")],
}


@pytest.mark.parametrize("table_id", sorted(MSCA_PAPER_ROWS))
def test_msca_rows_stand_at_the_papers_row_and_shift_as_it_at_paper_scale(table_id):
    spec = table_spec(table_id)
    expected = MSCA_PAPER_ROWS[table_id]
    assert [(r.key, r.paper_row) for r in spec.rows] == [(key, i) for i, (key, _, _) in enumerate(expected)]
    configs = paper_configs(table_id)
    for key, model_cell, kwargs in expected:
        row = spec.row(key)
        assert row.label.split(",")[0].split(" (")[0] == model_cell, key  # "ViT (frame-wise)", "MSCA-KV, h_b = ..."
        overrides = dict(configs[(key, "K-400")].model.overrides)
        if kwargs is None:
            assert "attn_layer" not in overrides, key
        else:
            assert overrides["attn_layer"] == "msca" and dict(overrides["attn_kwargs"]) == kwargs, key
            assert "shift_last_blocks" not in overrides, key


def test_msca_table3_replaces_the_last_4_8_and_12_blocks_at_paper_scale():
    """Table 3: # MSCA 0, 4, 8, 12 of 12 blocks (the replaced blocks nearest the top), MSCA-KV with h_b = h_f = 1."""
    spec, configs = table_spec("msca_table3"), paper_configs("msca_table3")
    assert [(r.key, r.paper_row) for r in spec.rows] == [("vit", 0), ("msca_kv_last4", 1), ("msca_kv_last8", 2),
                                                         ("msca_kv_h1", 3)]
    last = {key: configs[(key, "K-400")].model.overrides.get("shift_last_blocks") for key in
            ("vit", "msca_kv_last4", "msca_kv_last8", "msca_kv_h1")}
    assert last == {"vit": None, "msca_kv_last4": 4, "msca_kv_last8": 8, "msca_kv_h1": None}


def test_tokenshift_row_is_tokshifts_div4_class_token_shift_before_attention_and_mlp():
    """TokShift (SHIFT_DIV 4): C // 4 class-token channels from each neighbour, 1/2 in all, before MSA and MLP."""
    overrides = dict(paper_configs("msca_table2")[("tokenshift", "K-400")].model.overrides)
    assert overrides == {"temporal_shift": "cls", "shift_fraction": 0.5, "shift_before": ("attn", "mlp")}


# ---- X-ViT -------------------------------------------------------------------------------------------------------

OFFICIAL_TEMP_EMBED = {"pos_embed": "separate"}  # the official backbone's temp_embed on every token


def test_xvit_table2_rows_mix_and_shift_as_the_official_ssv2_code_in_the_supplementarys_order():
    """SSv2 yaml SHIFT_DIV 4: C / 4 key/value channels from each neighbour (1/2 in all); TSM's fold_div 8 (1/4 in all)
    on the residual stream before each MSA only (supplementary Eq. 1-3); rows in Table 2's order."""
    spec, configs = table_spec("xvit_table2"), paper_configs("xvit_table2")
    assert [(r.key, r.paper_row) for r in spec.rows] == [("tsm_vit_average", 0), ("xvit_average", 1),
                                                         ("tsm_vit_attention", 2), ("xvit_attention", 3)]
    for aggregation in ("average", "attention"):
        tsm = dict(configs[(f"tsm_vit_{aggregation}", "SSv2")].model.overrides)
        xvit = dict(configs[(f"xvit_{aggregation}", "SSv2")].model.overrides)
        for name in ("frame_drop_rate", "head_drop_rate"):
            tsm.pop(name), xvit.pop(name)
        assert tsm == {"temporal_shift": "all", "shift_fraction": 0.25, "shift_before": ("attn",),
                       "temporal_aggregation": aggregation, **OFFICIAL_TEMP_EMBED}
        assert xvit == {"attn_layer": "xvit", "attn_kwargs": {"shift_fraction": 0.5},
                        "temporal_aggregation": aggregation, **OFFICIAL_TEMP_EMBED}


def test_xvit_kinetics_rows_mix_an_eighth_each_way_as_the_k400_yaml():
    """K400 yaml SHIFT_DIV 8: C / 8 key/value channels from each neighbour (1/4 in all), in Figure 1 and Table 1."""
    expected = {"attn_layer": "xvit", "attn_kwargs": {"shift_fraction": 0.25}, "temporal_aggregation": "attention",
                **OFFICIAL_TEMP_EMBED}
    spec = table_spec("xvit_table1")
    speed = dict(paper_config(spec, spec.row("xvit")).model.overrides)
    assert speed == expected
    for cfg in paper_configs("xvit_figure1").values():
        overrides = {k: v for k, v in cfg.model.overrides.items() if k not in ("frame_drop_rate", "head_drop_rate")}
        assert overrides == expected, cfg.column


@pytest.mark.parametrize("table_id", ["xvit_table2", "xvit_figure1"])
def test_xvit_cosine_ends_at_zero_and_mixup_mixes_every_batch_without_cutmix(table_id):
    """defaults.py's SOLVER.COSINE_END_LR 0.0; the K400 yaml's MIXUP_ALPHA 0.4 on every batch (no CutMix anywhere)."""
    for cfg in paper_configs(table_id).values():
        o = cfg.optim
        assert (o.min_lr_ratio, o.cutmix_alpha) == (0.0, 0.0), cfg.row
        assert (o.mixup_alpha, o.mixup_prob) == ((0.4, 1.0) if table_id == "xvit_figure1" else (0.0, 1.0)), cfg.row
        assert (o.layer_decay, o.warmup_steps, o.gamma) == (None, None, 0.1), cfg.row


def test_xvit_figure1_tests_1_2_3_5_and_10_temporal_crops_of_3_spatial_crops():
    configs = paper_configs("xvit_figure1")
    assert [(c.column, c.data.test_clips, c.data.test_crops) for c in configs.values()] == [
        (f"{k}x3 views", k, 3) for k in (1, 2, 3, 5, 10)]
    assert [c.task for c in configs.values()] == ["video_classification"] + ["video_test_views"] * 4
    assert all(c.data.test_view_average == "logits" for c in configs.values())


def test_xvit_table1_measures_each_model_at_its_papers_input_size():
    """Table 1's rows 4-6: TimeSformer (divided space-time, 8 frames of 16 x 16 patches), ViViT-L (joint space-time,
    ViT-L/16x2 on 32 frames), X-ViT (8 x 224², the Kinetics model); speeds measured on the K400 preset."""
    spec = table_spec("xvit_table1")
    assert [(r.key, r.paper_row) for r in spec.rows] == [("timesformer", 4), ("vivit_l", 5), ("xvit", 6)]
    configs = {r.key: paper_config(spec, r) for r in spec.rows}
    shapes = {key: (c.model.name, c.data.num_frames, c.data.crop_size) for key, c in configs.items()}
    assert shapes == {"timesformer": ("vit_base_patch16_video", 8, 224),
                      "vivit_l": ("vit_large_patch16_video", 32, 224),
                      "xvit": ("vit_base_patch16_frame", 8, 224)}
    timesformer, vivit = configs["timesformer"].model.overrides, configs["vivit_l"].model.overrides
    assert (timesformer["attn_layer"], timesformer["tubelet_size"]) == ("divided", 1)
    assert (vivit["attn_layer"], vivit["pos_embed"], vivit.get("tubelet_size", 2)) == ("joint", "joint", 2)
    assert configs["xvit"].data.dataset == "kinetics400"
