"""What the quick start promises a user: their own numbers on screen beside the tracked ones and the paper, their
report in their runs folder (the committed reports untouched), data generation said as it goes, one-line errors,
and records that name the CPU kernels that decided their bits."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from experiments.harness.provenance import cpu_kernels
from experiments.harness.spec import table_spec
from lightning_modules.tensorboard_percent import in_percent
from reports.compare import compare_cells, comparison_table, summary, tracked_seconds
from tests.reports.test_tracked_results import make_record, write_local, write_tracked

TABLE = "mformer_table4"


def _cells(tmp_path, tracked: dict[str, list[float]], local: dict[str, list[float]]):
    for row, values in tracked.items():
        for seed, top1 in enumerate(values):
            write_tracked(tmp_path / "results", {**make_record(TABLE, row, "K-400", seed, top1), "wall_time_s": 10.0})
    for row, values in local.items():
        for seed, top1 in enumerate(values):
            write_local(tmp_path / "runs", make_record(TABLE, row, "K-400", seed, top1))
    return {c.row: c for c in compare_cells(table_spec(TABLE), tmp_path / "runs", tmp_path / "results", "tiny")}


def test_each_of_the_users_cells_is_marked_against_the_tracked_one(tmp_path):
    cells = _cells(tmp_path,
                   tracked={"joint": [60.0, 62.0, 64.0], "divided": [50.0, 51.0, 52.0], "traj_avgT_normS": [40.0, 41.0],
                            "traj_attT_normS": [30.0, 32.0, 34.0]},
                   local={"joint": [60.0, 62.0, 64.0], "divided": [50.5, 51.5, 52.5], "traj_avgT_normS": [60.0, 61.0],
                          "traj_attT_normS": [48.0], "traj_attT_normST": [20.0, 21.0]})
    # records naming no data root: Welch's test. Bit for bit; +0.5 (p = 0.57) within; +20 (p = 0.0012) beyond; one
    # seed of the user's against the tracked seeds (sd 2, 3 seeds): the prediction t-test, (48 − 32) / (sd √(1 + 1/3))
    # on 2 df, p = 0.020; Benjamini-Hochberg over the three tested cells: q = 0.57, 0.0037, 0.030
    assert cells["Joint Space-Time"].mark == "same" and cells["Joint Space-Time"].test is None
    assert cells["Divided Space-Time"].mark == "within"
    assert cells["Trajectory (Avg_T, Norm_S)"].mark == "beyond"
    assert cells["Trajectory (Att_T, Norm_S)"].mark == "beyond"
    assert cells["Trajectory (Att_T, Norm_S)"].test.q == pytest.approx(0.0303, abs=1e-4)
    assert cells["Trajectory (Att_T, Norm_ST)"].mark == "alone"  # nothing tracked
    assert cells["Joint Space-Time"].paper == 79.2
    text = comparison_table(list(cells.values()))
    assert "62.0 ± 2.0 (n=3)" in text and "79.2" in text
    assert summary(list(cells.values())) == ("5 cell(s): 1 equal to the tracked records bit for bit, 1 within noise, "
                                             "2 beyond noise, 1 with nothing tracked; the largest gap between "
                                             "means: 20.0 points (Trajectory (Avg_T, Norm_S), K-400 top1)")
    assert "+16.0 [+6.1, +25.9], p = 0.020, q = 0.030 (prediction t, 2 df)" in text


def test_one_seed_within_the_tracked_spread_is_within_noise(tmp_path):
    cells = _cells(tmp_path, tracked={"joint": [60.0, 62.0, 64.0]}, local={"joint": [65.0]})
    assert cells["Joint Space-Time"].mark == "within"  # (65 − 62) / (sd √(1 + 1/3)), sd 2, on 2 df: p = 0.32


def test_the_eta_prior_is_the_fastest_tracked_seed_of_each_cell(tmp_path):
    for seed, seconds in enumerate([70.0, 38.0, 45.0]):  # the first seed generated its data: slower
        write_tracked(tmp_path, {**make_record(TABLE, "joint", "K-400", seed, 60.0), "wall_time_s": seconds})
    assert tracked_seconds(table_spec(TABLE), tmp_path) == {("joint", "K-400", "tiny"): 38.0}
    assert tracked_seconds(table_spec(TABLE), None) == {}
    other = {**make_record(TABLE, "divided", "K-400", 0, 60.0), "wall_time_s": 5.0}
    other["config"]["optim"]["epochs"] = 1  # configured otherwise: its time is no prior
    write_tracked(tmp_path, other)
    assert tracked_seconds(table_spec(TABLE), tmp_path) == {("joint", "K-400", "tiny"): 38.0}


def test_records_name_the_cpu_kernels_and_the_switches_that_chose_them(monkeypatch):
    for name in ("ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS", "ONEDNN_MAX_CPU_ISA", "MKL_DEBUG_CPU_TYPE"):
        monkeypatch.delenv(name, raising=False)
    assert cpu_kernels() == {"capability": torch.backends.cpu.get_cpu_capability(), "switches": {}}
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert cpu_kernels()["switches"] == {"ONEDNN_MAX_CPU_ISA": "AVX2"}


def test_tensorboard_gets_accuracies_in_percent_and_everything_else_as_logged():
    assert in_percent({"test/top1": 0.5, "val/verb_top5": 0.25, "train/loss": 0.5, "lr/decay": 1e-3,
                       "J&F": 61.0}) == {"test/top1": 50.0, "val/verb_top5": 25.0, "train/loss": 0.5,
                                         "lr/decay": 1e-3, "J&F": 61.0}


@pytest.mark.parametrize("argv", [["run", TABLE, "--scale", "huge"], ["bogus"]])
def test_a_bad_option_is_one_line(argv):
    done = subprocess.run([sys.executable, "-m", "experiments", *argv], capture_output=True, text=True)
    assert done.returncode == 2 and done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1 and done.stderr.startswith("error: ")
    assert "--help` lists the options" in done.stderr


def test_data_generation_says_what_it_generates_and_how_far_it_is(tmp_path):
    from data.synthetic import ensure_synthetic_sets, synthetic_dir

    small = {"num_train": 8, "num_val": 4, "seed": 0}
    lines = []
    roots = ensure_synthetic_sets([("synth_appearance", small), ("synth_motion", small), ("synth_appearance", small)],
                                  jobs=2, echo=lines.append, cache_dir=tmp_path, every_s=0.0)
    assert roots == [synthetic_dir(name, tmp_path, **small) for name in ("synth_appearance", "synth_motion")]
    assert all(root.is_dir() for root in roots)
    assert lines[0].startswith(f"generating 2 data set(s) into {tmp_path}/") and "synth_motion (12 samples)" in lines[0]
    assert sorted(line.split(":")[0].strip() for line in lines if line.endswith("s)") and "done" in line) == [
        "synth_appearance", "synth_motion"]
    lines.clear()
    ensure_synthetic_sets([("synth_motion", small)], echo=lines.append, cache_dir=tmp_path)
    assert lines == []  # cached: nothing to say
    ensure_synthetic_sets([("synth_pose", small)], jobs=1, echo=lines.append, cache_dir=tmp_path, every_s=0.0)
    assert [line.split(" (")[0] for line in lines[1:]] == [f"    synth_pose: {k}/12 samples" for k in range(1, 12)] + [
        "    synth_pose: done"]
