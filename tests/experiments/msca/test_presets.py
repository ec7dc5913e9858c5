"""MSCA's paper-scale presets (paper 002, Sec. 4.1 and Tables 1-5), value by value: every stated data,
optimisation and hardware value, each row's paper row index against the paper's table order, and each ablated option
at paper scale (not only at tiny scale). Expected values are literals copied from the paper and the official configs,
never read back from the specs under test."""

from __future__ import annotations

import pytest

from experiments.harness.plan import resolve_runs
from experiments.harness.spec import table_spec


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
        # "the same settings as TokenShift": its clips (stride in video frames, wrapping) and its three test crops
        assert dict(data.options) == {"tokenshift_photometric": 0.1, "dense_convention": "tokshift",
                                      "test_centre_rounding": "floor", "test_crop_axis": "width"}, row
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


OFFICIAL_TEMP_EMBED = {"pos_embed": "separate"}  # the official backbone's temp_embed on every token
