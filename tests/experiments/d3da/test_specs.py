"""3D-Deformable's specs (``experiments/d3da/tables.py``): Tables A1/A2 and Figure A1 resolve and build at both scales,
the RGB+pose task tests several views of clip and joints together, the ablation switches drop a modality, the
counted-FLOP exponents of Tables A1/A2 match the stated complexities, and the complexity tables' records become a
report with a plot."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

import lightning_modules  # noqa: F401  (repairs torchvision before anything imports it)
from experiments.d3da import tables as d3da
from experiments.harness.plan import check_buildable, resolve_runs
from experiments.harness.run_dir import RunDir
from experiments.harness.spec import table_spec
from experiments.harness.static import compute_static
from experiments.harness.tasks import get_task, model_kwargs
from lightning_modules import RGBPoseClassifier
from models import create_model
from models.d3da.complexity import fit_exponent

IDS = ("d3da_tableA1", "d3da_tableA2", "d3da_figureA1")


# ---- specs ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scale", ["tiny", "paper"])
@pytest.mark.parametrize("table_id", IDS)
def test_every_run_resolves_and_builds_on_meta(table_id, scale):
    configs = resolve_runs(table_id, scale=scale, data_root="/datasets")
    assert bool(configs) == (table_id == "d3da_figureA1")  # the complexity tables train nothing
    built = set()
    for cfg in configs:
        model = cfg.model.name + json.dumps(model_kwargs(cfg), sort_keys=True)
        if model not in built:  # the same model in other columns is built once
            built.add(model)
            check_buildable(cfg)


def test_figure_a1_trains_once_per_dataset_and_tests_that_model_on_other_frame_counts():
    configs = resolve_runs("d3da_figureA1", scale="paper", data_root="/datasets")
    assert len(configs) == len(d3da.FIGURE_DATASETS) * len(d3da.TEST_FRAMES)
    for row in d3da.FIGURE_DATASETS:
        runs = [c for c in configs if c.row == row]
        trained, tested = runs[0], runs[1:]  # the trained run first: its checkpoint exists when the others start
        assert trained.column == "12 frames" and trained.task == "rgb_pose_classification"
        assert trained.data.num_frames == 12 and trained.model.pretrained is None
        assert sorted(c.data.num_frames for c in tested) == sorted(set(d3da.TEST_FRAMES) - {12})
        for cfg in tested:
            assert cfg.task == "rgb_pose_test_frames" and cfg.column == f"{cfg.data.num_frames} frames"
            assert cfg.model.pretrained == f"run:d3da_figureA1/{row}/12 frames"
            assert model_kwargs(cfg)["num_frames"] == 12  # the trained model's temporal table
            same = ("num_frames", "task")
            assert {k: v for k, v in dataclasses.asdict(cfg.data).items() if k not in same} == \
                {k: v for k, v in dataclasses.asdict(trained.data).items() if k not in same}


def paper_run(row: str, tmp_root: str = "/datasets", column: str = "12 frames"):
    return next(c for c in resolve_runs("d3da_figureA1", scale="paper", data_root=tmp_root)
                if (c.row, c.column) == (row, column))


def test_paper_scale_pose_layouts_and_configuration():
    penn, ntu = paper_run("pennaction"), paper_run("ntu120")
    assert penn.model.name == "d3da_base" and (penn.data.crop_size, penn.data.dataset) == (224, "pennaction")
    assert {k: model_kwargs(penn)[k] for k in ("num_joints", "pose_dim", "pose_space")} == d3da.PENN_POSE
    assert {k: model_kwargs(ntu)[k] for k in ("num_joints", "pose_dim", "pose_space")} == d3da.NTU_POSE
    assert ntu.data.dataset == "ntu120" and paper_run("ntu60").data.dataset == "ntu60"
    tiny = resolve_runs("d3da_figureA1", scale="tiny", rows=["pennaction"])[0]
    assert (tiny.model.name, tiny.data.dataset, tiny.data.num_frames) == ("d3da_tiny", "synth_pose", 12)


def test_a_finegym_root_without_its_lists_is_named_with_the_layout_it_needs(tmp_path):
    cfg = paper_run("finegym", str(tmp_path))
    dm = get_task(cfg.task).datamodule(cfg, tmp_path)
    with pytest.raises(FileNotFoundError, match="gym99_train_element_v1.1.txt"):
        dm.setup("fit")


def test_the_task_rejects_a_dataset_without_joints():
    cfg = resolve_runs("d3da_figureA1", scale="tiny")[0]
    bad = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, dataset="synth_motion"))
    with pytest.raises(ValueError, match="needs a dataset with joints"):
        model_kwargs(bad)


# ---- the LightningModule: clip and joints together -----------------------------------------------------------------


def _views_batch(b: int = 2, v: int = 3, t: int = 12, size: int = 32) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return {"video": torch.randn(b, v, 3, t, size, size, generator=gen),
            "pose": torch.rand(b, v, t, 13, 2, generator=gen) * size + 0.5,
            "label": torch.zeros(b, dtype=torch.long)}


def test_multi_view_test_folds_video_and_pose_alike_and_averages_probabilities():
    torch.manual_seed(0)
    module = RGBPoseClassifier(create_model("d3da_tiny").eval(), 6)
    batch = _views_batch()
    folded, views = module.fold_views(module.model_input(batch))
    assert views == 3
    assert torch.equal(folded["video"][4], batch["video"][1, 1]) and torch.equal(folded["pose"][4], batch["pose"][1, 1])
    with torch.no_grad():
        probs = torch.stack([module({"video": batch["video"][:, v], "pose": batch["pose"][:, v]}).softmax(-1)
                             for v in range(3)], 1).mean(1)
        for label, expected in ((probs.argmax(-1), 1.0), ((probs.argmax(-1) + 1) % 6, 0.0)):
            module.test_metrics.reset()
            module.test_step({**batch, "label": label}, 0)
            assert module.test_metrics.compute()["test/top1"].item() == expected


def test_one_view_validation_batches_and_training():
    torch.manual_seed(0)
    module = RGBPoseClassifier(create_model("d3da_tiny"), 6)
    batch = _views_batch(v=1)
    module.validation_step({**batch, "video": batch["video"][:, 0], "pose": batch["pose"][:, 0]}, 0)
    loss = module.training_step({**batch, "video": batch["video"][:, 0], "pose": batch["pose"][:, 0]}, 0)
    loss.backward()
    assert torch.isfinite(loss) and module.model.head.weight.grad is not None
    with pytest.raises(KeyError, match="pose"):
        module.training_step({"video": batch["video"][:, 0], "label": batch["label"]}, 0)
    with pytest.raises(ValueError, match="mixup"):
        RGBPoseClassifier(create_model("d3da_tiny"), 6, mixup_alpha=0.8)


@pytest.mark.parametrize("modalities, absent, unused", [("rgb", "pose_embed", "pose"), ("pose", "stem", "video")])
def test_ablations_drop_one_modality(modalities, absent, unused):
    torch.manual_seed(0)
    model = create_model("d3da_tiny", modalities=modalities)
    assert getattr(model, absent) is None
    assert all(getattr(block, "pose" if modalities == "rgb" else "rgb") is None for block in model.blocks)
    batch = {k: v[:, 0] for k, v in _views_batch(v=1).items() if k not in ("label", unused)}
    logits = model(batch)
    logits.sum().backward()
    missing = [n for n, p in model.named_parameters() if p.numel() and (p.grad is None or not p.grad.abs().sum() > 0)]
    assert logits.shape == (2, 6) and not missing
    with pytest.raises(ValueError, match="modalities"):
        create_model("d3da_tiny", modalities="depth")


# ---- Tables A1 / A2: counted FLOPs grow as the paper states ---------------------------------------------------------


def _flops(table_id: str, row: str) -> list[float]:
    return [d3da.count_flops(table_id, row, n)["attention"] for n in d3da.SWEEPS[table_id].sizes]


def test_table_a1_counted_flop_exponents_in_joints():
    sizes = d3da.JOINT.sizes
    full, stride = _flops("d3da_tableA1", "full"), _flops("d3da_tableA1", "stride")
    windows = [d3da.windows("d3da_tableA1", "stride", r) for r in sizes]
    # O(T^2 R^2): quadratic in the R + 2 tokens of a frame (R joints, M_pose, M'_CLS); in R alone the 2 modal
    # tokens bend the slope below 2 at R = 13
    assert fit_exponent([r + 2 for r in sizes], full) == pytest.approx(2.0, abs=1e-6)
    assert 1.85 < fit_exponent(sizes, full) < 2.0
    # O(T^2 wnd^2) per window: constant in R; the number of windows (about R / 2) makes the total linear
    assert fit_exponent(sizes, [f / w for f, w in zip(stride, windows)]) == pytest.approx(0.0, abs=1e-9)
    assert fit_exponent(windows, stride) == pytest.approx(1.0, abs=1e-9)
    assert fit_exponent(sizes, stride) == pytest.approx(1.0, abs=0.1)
    assert all(s < f for s, f in zip(stride[1:], full[1:]))


def test_table_a2_counted_flop_exponents_in_frames():
    sizes = d3da.TEMPORAL.sizes
    full, stride = _flops("d3da_tableA2", "full"), _flops("d3da_tableA2", "stride")
    windows = [d3da.windows("d3da_tableA2", "stride", t) for t in sizes]
    assert fit_exponent(sizes, full) == pytest.approx(2.0, abs=1e-6)  # O(T^2 D_n^2), D_n fixed
    assert fit_exponent(sizes, [f / w for f, w in zip(stride, windows)]) == pytest.approx(0.0, abs=1e-9)
    assert fit_exponent(windows, stride) == pytest.approx(1.0, abs=1e-9)
    assert stride[0] == full[0]  # T = wnd: one window of every frame is full attention
    assert all(s < f for s, f in zip(stride[1:], full[1:]))


def test_complexity_tables_record_and_report_with_a_plot(tmp_path, monkeypatch):
    """The static columns (counted FLOPs, timings, exponents) go into the record and the report draws them;
    the timer is replaced by a quadratic stand-in here (real timings take a minute and are not asserted)."""
    from reports.build import build_report

    monkeypatch.setattr(d3da, "time_forward", lambda table_id, row, size: 1e-6 * size ** 2)
    d3da.measure.cache_clear()
    try:
        record = compute_static(table_spec("d3da_tableA1"), tmp_path / "runs", echo=lambda _: None)
    finally:
        d3da.measure.cache_clear()
    cells = record["cells"]
    assert cells["full"]["exponent in R: time"]["value"] == pytest.approx(2.0)
    assert cells["stride"]["exponent in R: GFLOPs per window"]["value"] == pytest.approx(0.0, abs=1e-9)
    assert cells["stride"]["stated exponent in R"]["text"] == "0 (O(T^2 wnd^2), the paper's per-layer O(.))"
    assert cells["full"]["GFLOPs R=13 (1x13)"]["value"] == pytest.approx(2 * (12 * 15) ** 2 * 256 / 1e9)
    assert cells["stride"]["ms R=200 (8x25)"]["source"] == "measured on CPU"
    assert cells["full"]["exponent in R: time"]["source"].startswith("measured on ")
    text = build_report("d3da_tableA1", runs_root=tmp_path / "runs", out_dir=tmp_path).read_text()
    assert "O(T^2 R^2)" in text and "stated exponent in R" in text and "![Table A1](d3da_tableA1.png)" in text
    assert (tmp_path / "d3da_tableA1.png").stat().st_size > 0


# ---- end to end: Figure A1's trained column and one test-only column -------------------------------------------------


@pytest.mark.slow  # trains and tests the figure's runs end to end
def test_figure_a1_end_to_end_on_a_few_generated_videos(tmp_path):
    """Train the 12-frame model for a few steps on a handful of synth_pose videos, then test its checkpoint with 4
    frames through the test-only task: both records are written and the second reads the first's checkpoint."""
    from experiments.harness.overrides import apply_overrides
    from experiments.harness.runner import execute

    micro = {"optim": {"epochs": 1, "warmup_epochs": 0},
             "data": {"synthetic_params": {"num_train": 8, "num_val": 4, "seed": 0}, "num_workers": 0,
                      "batch_size": 4, "test_clips": 1},
             "trainer": {"log_every_n_steps": 1}}
    runs = tmp_path / "runs"
    configs = [apply_overrides(c, micro) for c in resolve_runs("d3da_figureA1", scale="tiny", rows=["pennaction"])
               if c.column in ("12 frames", "4 frames")]
    records = [execute(cfg, runs, progress_bar=False, echo=lambda _: None) for cfg in configs]
    assert [r["column"] for r in records] == ["12 frames", "4 frames"]
    assert all(0.0 <= r["metrics"]["top1"] <= 100.0 for r in records)
    assert (RunDir.of(configs[0], runs).path / "checkpoints" / "last.ckpt").exists()
    assert records[1]["data"]["num_frames"] == 4 and records[1]["num_params"] is None  # tested, not trained
