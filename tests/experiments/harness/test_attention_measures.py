"""The measures of docs/attention_windows_and_points.md (CAST Figure 3(c), 3D-Deformable A3-A5) on hand-built weights
and points whose answer is known exactly, on the papers' tiny models (random weights: a window fixes its answer; a
deformable attention without offsets samples its reference grid), and their page's verdicts."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy import stats

from experiments.cast.figures import PARTS, cast_batch, key_parts, read_exchanges, window_mass
from experiments.d3da.figures import d3da_batch, points_on_subject, subject_boxes
from experiments.harness.records import DamagedRecordError
from models import create_model
from reports.attention_measures import WINDOW_FIELDS, measures_text, point_lines, window_lines
from reports.attention_tracking import read_attention_record


@pytest.mark.parametrize(("window", "counts"), [("time", [3, 6, 0, 0]), ("space", [4, 0, 12, 0]),
                                                ("space_time", [12, 24, 36, 72])])
def test_each_window_partitions_its_keys_as_the_grid_says(window, counts):
    """A grid of 3 steps x 4 patches: a time window is one patch's 3 steps, a space window one step's 4 patches."""
    parts = key_parts(window, 3, 4)
    assert np.bincount(parts.ravel(), minlength=4).tolist() == counts
    if window == "space_time":  # query (t=1, n=2) is token 6: key (t=0, n=2) is along time, (1, 0) along space
        assert [PARTS[parts[6, k]] for k in (6, 2, 4, 0)] == ["own", "time", "space", "elsewhere"]


def test_window_mass_of_known_weights():
    steps, patches = 2, 3
    length = steps * patches
    uniform = np.full((5, length, length), 1 / length)
    mass = window_mass(uniform, "space_time", steps, patches)
    assert mass["share"] == pytest.approx(mass["chance"], abs=1e-15)
    assert mass["chance"] == pytest.approx({"own": 1 / 6, "time": 1 / 6, "space": 2 / 6, "elsewhere": 2 / 6})
    half = np.zeros((1, length, length))  # each query: half on its patch at the other step, half on its own token
    for query in range(length):
        t, n = divmod(query, patches)
        half[0, query, query] = half[0, query, (1 - t) * patches + n] = 0.5
    assert window_mass(half, "space_time", steps, patches)["share"] == pytest.approx(
        {"own": 0.5, "time": 0.5, "space": 0.0, "elsewhere": 0.0}, abs=1e-15)
    with pytest.raises(ValueError, match="do not fit a time window"):
        window_mass(uniform, "time", steps, patches)


def test_points_inside_their_nearest_frames_box_against_its_area():
    joints = np.array([[[10.0, 10.0], [20.0, 30.0]], [[0.0, 0.0], [4.0, 4.0]]])  # two frames, two joints
    boxes = subject_boxes(joints, margin=2.0, size=32)
    assert boxes.tolist() == [[8, 8, 22, 32], [0, 0, 6, 6]]  # widened, clipped to the frame
    points = np.array([[15.0, 20.0, 0.2], [15.0, 20.0, 0.9], [5.0, 5.0, 1.4], [30.0, 1.0, -3.0]])
    out = points_on_subject(points, boxes, 32)
    assert out["share"] == pytest.approx(2 / 4)  # the 1st in frame 0's box, the 3rd in frame 1's (t clamped)
    area = [14 * 24 / 32**2, 36 / 32**2]
    assert out["chance"] == pytest.approx((area[0] + area[1] + area[1] + area[0]) / 4)


def _cast(t2s_window, s2t_window):
    torch.manual_seed(0)
    return create_model("cast_tiny", t2s_window=t2s_window, s2t_window=s2t_window).eval()


def test_a_time_or_space_window_fixes_where_cast_looks_and_a_space_time_window_spreads():
    video = torch.randn(2, 3, 8, 32, 32)
    views = cast_batch(_cast("time", "space"), video)
    assert len(views) == 2
    for view in views:
        t2s, s2t = view["t2s"], view["s2t"]
        assert (t2s["window"], s2t["window"]) == ("time", "space")
        assert t2s["share"]["own"] + t2s["share"]["time"] == pytest.approx(1, abs=1e-6)  # float32 softmax rows
        assert s2t["share"]["own"] + s2t["share"]["space"] == pytest.approx(1, abs=1e-6)  # float32 softmax rows
        assert t2s["share"]["space"] == t2s["share"]["elsewhere"] == s2t["share"]["time"] == 0
    spread = cast_batch(_cast("space_time", "space_time"), video)[0]["t2s"]
    assert sum(spread["share"].values()) == pytest.approx(1, abs=1e-6)  # float32 softmax rows
    assert min(spread["share"].values()) > 0 and sum(spread["chance"].values()) == pytest.approx(1)


def test_deformable_points_without_offsets_are_the_reference_grid():
    """The offsets' last convolution zeroed: every sampling point is its reference point, so the gain is exactly 0
    and the share is the grid's; with the offsets of random weights the points move."""
    torch.manual_seed(0)
    model = create_model("d3da_tiny").eval()
    size = model.img_size
    pose = torch.rand(2, 12, 13, 2) * 20 + 6  # 1-based pixels inside the frame
    inputs = {"video": torch.randn(2, 3, 12, size, size), "pose": pose}
    moved = d3da_batch(model, inputs, margin=2.0)
    assert moved[0]["deformed"]["share"] != moved[0]["reference"]["share"]
    attn = model.blocks[-1].rgb.attn
    torch.nn.init.zeros_(attn.search.offset_net[-1].weight)
    for view in d3da_batch(model, inputs, margin=2.0):
        assert view["deformed"] == view["reference"]
        assert 0 < view["deformed"]["chance"] < 1


def _windows_record(t2s_time_excess):
    runs = []
    for seed, excess in enumerate(t2s_time_excess):
        chance = {"own": 1 / 64, "time": 3 / 64, "space": 15 / 64, "elsewhere": 45 / 64}
        share = {**chance, "time": chance["time"] + excess, "elsewhere": chance["elsewhere"] - excess}
        fixed = {"own": 0.4, "time": 0.0, "space": 0.6, "elsewhere": 0.0}
        runs.append({"row": "st", "seed": seed, "samples": 10, "kernels": "AVX2",
                     "t2s": {"window": "space_time", "exchange": 2, "share": share, "chance": chance},
                     "s2t": {"window": "space", "exchange": 3, "share": fixed, "chance": {**fixed, "own": 1 / 16,
                                                                                            "space": 15 / 16}}})
    return {"kind": "attention_windows", "table": "cast_table1e", "dataset": "synth_verbnoun", "column": "EK-100",
            "commit": "abc", "definition": "docs/attention_windows_and_points.md", "sample_limit": None,
            "runs": runs}


def test_the_pages_verdicts_are_the_one_sample_t_test_with_size_interval_and_p():
    """T2S along time 10, 11, 12 points over chance: p = 0.0027 (scipy's one-sample t), yes; 1, −1, 0: no. S2T's
    `space` window fixes where it looks: by construction, every seed's share shown. 3D-Deformable 10 and 12 points
    over chance: p = 0.058 with 2 seeds, no; the offsets' gain 10 and 0: no."""
    lines = window_lines(_windows_record([0.10, 0.11, 0.12]))
    t2s, s2t = lines[2], lines[3]
    assert stats.ttest_1samp([10.0, 11.0, 12.0], 0.0).pvalue == pytest.approx(0.0027, abs=1e-4)
    assert t2s == ("| st | 3 | T2S along time | 2 | `space_time` | 14.69 / 15.69 / 16.69 | 4.69 | +11.000 ± 1.000 | "
                   "yes (+11.000 [+8.516, +13.484], p = 0.003 (one-sample t, 2 df)) |")
    assert s2t == ("| st | 3 | S2T along space | 3 | `space` | 60.00 / 60.00 / 60.00 | 93.75 | -33.750 ± 0.000 | "
                   "by construction (not tested) |")
    assert window_lines(_windows_record([0.01, -0.01, 0.0]))[2].endswith(
        "| no (+0.000 [-2.484, +2.484], p = 1.000 (one-sample t, 2 df)) |")
    points = {"row": "pennaction", "samples": 4, "share": 0.5, "chance": 0.4, "excess": 0.1, "reference_share": 0.4,
              "reference_chance": 0.4, "reference_excess": 0.0, "offsets_gain": 0.1}
    record = {"runs": [{**points, "seed": 0}, {**points, "seed": 1, "excess": 0.12, "offsets_gain": 0.0}]}
    assert point_lines(record)[2] == (
        "| pennaction | 2 | 50.00 | 40.00 | +11.00 ± 1.41 | no (+11.00 [-1.71, +23.71], p = 0.058 (one-sample t, "
        "1 df)) | +0.00 ± 0.00 | +5.00 ± 7.07 | no (+5.00 [-58.53, +68.53], p = 0.500 (one-sample t, 1 df)) |")


def test_a_damaged_windows_record_is_one_line_naming_the_nested_field(tmp_path):
    record = _windows_record([0.1, 0.1])
    record["runs"][1]["t2s"]["share"]["time"] = float("nan")
    path = tmp_path / "attention_windows.json"
    path.write_text(json.dumps(record))
    with pytest.raises(DamagedRecordError, match=r"runs\[1\]\.t2s\.share\.time must be a finite float"):
        read_attention_record(path, "attention_windows", WINDOW_FIELDS)


def test_without_tracked_records_the_page_says_how_to_make_them(tmp_path):
    text = measures_text(tmp_path)
    assert "attention-score cast_table1e --seeds 3" in text and "attention-score d3da_figureA1 --seeds 5" in text


def finished_run(runs_root, table, row, column):
    """A finished tiny run of ``row`` (seed 0) in ``column``: random weights in a Lightning checkpoint and a record
    of its configuration, as ``RunDir.check`` reads a finished run; returns its configuration."""
    from experiments.harness.attention import data_classes, row_config
    from experiments.harness.run_dir import RunDir
    from experiments.harness.tasks import build_model

    cfg = row_config(table, row, "tiny", column)
    run = RunDir.of(cfg, runs_root)
    torch.manual_seed(0)
    model = build_model(cfg, data_classes(cfg))
    run.checkpoints_dir.mkdir(parents=True)
    torch.save({"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()}}, run.last_checkpoint)
    run.write_record({"table": cfg.table, "row": cfg.row, "column": cfg.column, "seed": cfg.seed, "scale": cfg.scale,
                      "dataset": cfg.data.dataset, "metrics": {"top1": 10.0}, "config": cfg.to_dict()})
    return cfg


@pytest.mark.slow
def test_cast_and_d3da_runs_are_scored_through_their_test_pipelines_and_rendered(tmp_path):
    """`attention-score` on a finished run of each (random weights, the first 3 test videos, every view): the record
    has the definition's fields, reads back through the page's reader, and the page renders it; the CAST figure is
    drawn from a sample of its untrimmed set through the row's test pipeline (``--sample``)."""
    from experiments.harness.attention_score import score_table
    from reports.attention_measures import POINT_FIELDS

    finished_run(tmp_path, "cast_table1e", "t2s_space_time_s2t_space", None)
    finished_run(tmp_path, "d3da_figureA1", "pennaction", "12 frames")
    windows = score_table("cast_table1e", "tiny", ["t2s_space_time_s2t_space"], 1, tmp_path, limit=3)
    points = score_table("d3da_figureA1", "tiny", ["pennaction"], 1, tmp_path, limit=3)
    (cast_run,), (d3da_run,) = windows["runs"], points["runs"]
    assert (windows["kind"], cast_run["samples"], cast_run["views"]) == ("attention_windows", 3, 6)  # 2 clips each
    assert (cast_run["t2s"]["window"], cast_run["s2t"]["window"]) == ("space_time", "space")
    assert sum(cast_run["t2s"]["share"].values()) == pytest.approx(1, abs=1e-6)
    assert (points["kind"], points["column"], d3da_run["samples"]) == ("attention_points", "12 frames", 3)
    assert d3da_run["excess"] == pytest.approx(d3da_run["share"] - d3da_run["chance"], abs=1e-12)
    results = tmp_path / "results"
    for record, fields in ((windows, WINDOW_FIELDS), (points, POINT_FIELDS)):
        path = results / record["table"] / f"{record['kind']}.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(record))
        assert read_attention_record(path, record["kind"], fields)["runs"] == record["runs"]
    page = measures_text(results)
    assert "| t2s_space_time_s2t_space | 1 | T2S along time | 2 | `space_time` |" in page
    assert "| pennaction | 1 |" in page

    from tests.faults.doors import run_command

    finished_run(tmp_path, "cast_table1e", "cast", None)
    run = tmp_path / "cast_table1e" / "cast" / "seed0" / "tiny-ek_100"
    code, stdout, stderr = run_command("experiments", ["attention", "cast_table1e", "--rows", "cast", "--run", str(run),
                                                       "--sample", "2", "--out", str(tmp_path / "fig")], seconds=300)
    assert code == 0 and stdout.split() == [str(tmp_path / "fig" / "cast_fig3c.png")], stderr


def test_the_last_blocks_t2s_receives_no_gradient_with_ek100s_heads():
    """What the page's note says (reports.attention_measures.LAST_T2S_NOTE): with EPIC-KITCHENS-100's heads the last
    exchange's T2S output reaches no logit, so its weights get no gradient; every other exchange's do."""
    from experiments.harness.attention import data_classes, row_config
    from experiments.harness.tasks import build_model

    cfg = row_config("cast_table1e", "t2s_space_time_s2t_space_time", "tiny", None)
    torch.manual_seed(0)
    model = build_model(cfg, data_classes(cfg)).train()
    for param in model.parameters():  # the zero-initialised adapters would block every gradient
        if param.requires_grad and param.ndim == 2 and not param.any():
            torch.nn.init.normal_(param, std=0.02)
    logits = model(torch.randn(2, 3, 8, 32, 32))
    logits.sum().backward()  # verb and noun logits side by side
    last = max(model.exchange, key=int)
    assert read_exchanges(model) == {"t2s": str(int(last) - 1), "s2t": last}  # where the measure reads each
    for index, exchange in model.exchange.items():
        for direction in ("t2s", "s2t"):
            grad = getattr(exchange, direction).q.weight.grad
            reached = grad is not None and bool(grad.any())
            assert reached is not (index == last and direction == "t2s"), (index, direction)
