"""What a run prints: its own progress lines, and none of the libraries' per-run chatter."""

import logging
import warnings

import lightning as L

from experiments.harness.execute import quiet_libraries
from experiments.harness.progress import TableProgress, duration


def test_lightning_chatter_and_the_leafspec_warning_are_dropped_and_nothing_else(capfd):
    log = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    seen = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())
    log.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            quiet_libraries()
            L.Trainer(accelerator="cpu", devices=1, logger=True, enable_checkpointing=False,
                      enable_progress_bar=False, default_root_dir=None)  # logs device availability and the tip
            log.info("a line that says something")
            warnings.warn("`isinstance(treespec, LeafSpec)` is deprecated, use `isinstance(treespec, TreeSpec) "
                          "and treespec.is_leaf()` instead.", FutureWarning, stacklevel=1)
            warnings.warn("another deprecation", FutureWarning, stacklevel=1)
    finally:
        log.removeHandler(handler)
    printed = capfd.readouterr()
    assert seen == ["a line that says something"], seen
    for chatter in ("GPU available", "TPU available", "litlogger"):
        assert chatter not in printed.out + printed.err
    assert [str(w.message) for w in caught] == ["another deprecation"]


def _progress(to_train: dict, jobs: int, elapsed: float, total: int | None = None) -> TableProgress:
    progress = TableProgress(total=total or len(to_train), to_train=to_train, jobs=jobs)
    progress.start -= elapsed  # as if training had begun ``elapsed`` seconds ago
    return progress


def test_the_eta_scales_each_runs_tracked_time_by_this_machines_pace():
    assert [duration(s) for s in (4.6, 65, 3 * 3600 + 120)] == ["5s", "1m05s", "3h02m"]
    # tracked: joint 40 s, trajectory 80 s; here joint took 60 s (1.5x slower): two trajectory runs left, one at a
    # time -> 2 x 120 s
    progress = _progress({"joint": 40.0, "traj_a": 80.0, "traj_b": 80.0}, jobs=1, elapsed=60.0)
    line = progress.finished("joint", 60.0)
    assert line.startswith("1/3 runs, 1m00s elapsed") and line.endswith(", ETA 4m00s if the rest train")


def test_the_eta_replays_the_schedule_of_side_by_side_runs():
    # 3 runs of 10 s, 2 at a time: when the first ends (at 10 s), the second is still running (it started at 0) and
    # the third starts; all end at 20 s
    progress = _progress({"a": 10.0, "b": 10.0, "c": 10.0}, jobs=2, elapsed=10.0)
    assert progress.finished("a", 10.0).endswith(", ETA 10s if the rest train")
    # a run that has run past its expected time is counted as ending no earlier than now
    late = _progress({"a": 10.0, "b": 10.0}, jobs=2, elapsed=30.0)
    assert late.finished("a", 10.0).endswith(", ETA 0s if the rest train")


def test_without_tracked_times_the_eta_is_the_mean_run_and_none_before_a_run_trained():
    progress = _progress({"a": None, "b": None, "c": None}, jobs=1, elapsed=30.0)
    assert "ETA" not in progress.line()  # nothing trained yet: no basis for one
    assert progress.finished("a", 30.0).endswith(", ETA 1m00s if the rest train")
    progress.finished("b", 30.0)
    assert "ETA" not in progress.finished("c", 30.0)  # done
    skipped = _progress({}, jobs=1, elapsed=0.0, total=2)
    skipped.skipped()
    assert skipped.line().startswith("1/2 runs")


def test_each_run_is_counted_once_and_an_evaluation_is_not_called_trained(tmp_path, monkeypatch):
    """A skipped run takes its own number in [k/n] (the runs after it count on from it), and an evaluation-only
    run's line says "evaluated"."""
    from experiments.harness import runner

    monkeypatch.setattr(runner, "compute_static", lambda *a, **k: None)
    monkeypatch.setattr(runner, "prepare_generated_data", lambda *a, **k: None)  # no data to read
    monkeypatch.setattr(runner, "execute", lambda cfg, *a, **k: {"metrics": {"top1": 50.0}, "wall_time_s": 1.0})
    (tmp_path / "kinetics400").mkdir()  # Table 4's K-400 column runs; its SSv2 column has no data: skipped
    lines = []
    runner.run_table("mformer_table4", "paper", ["joint"], data_root=tmp_path, runs_root=tmp_path / "runs",
                     overrides={"trainer": {"num_nodes": 1, "accelerator": "cpu"}},  # not its 4 nodes of GPUs
                     jobs=1, echo=lines.append)
    numbered = [line for line in lines if line.startswith("[")]
    assert [line.split(" (")[0] for line in numbered] == ["[1/2] mformer_table4 row=joint column=SSv2",
                                                          "[2/2] mformer_table4 row=joint column=K-400"]
    assert numbered[0].endswith("skipped, needs data: ssv2 (not found at " + str(tmp_path / "ssv2") + ")")
    lines.clear()
    runner.run_table("xvit_figure1", runs_root=tmp_path / "runs", jobs=1, echo=lines.append)
    done = [line for line in lines if "(1s, " in line]
    assert "(1s, trained)" in done[0] and all("(1s, evaluated)" in line for line in done[1:]) and len(done) > 1


def test_a_run_without_top1_shows_its_own_metrics(tmp_path, monkeypatch):
    """Table 9's label propagation reports J&F, J and F: its line shows them, not an empty metric list."""
    from experiments.harness import runner

    monkeypatch.setattr(runner, "compute_static", lambda *a, **k: None)
    (tmp_path / "davis2017").mkdir()  # the dataset's folder is there, so the run starts (execute reads nothing)
    monkeypatch.setattr(runner, "prepare_generated_data", lambda *a, **k: None)  # no data to read
    monkeypatch.setattr(runner, "execute", lambda cfg, *a, **k: {"metrics": {"J&F": 61.5, "J": 60.0, "F": 63.0},
                                                                 "wall_time_s": 1.0})
    lines = []
    runner.run_table("mformer_table9", "paper", data_root=tmp_path, runs_root=tmp_path / "runs", jobs=1,
                     overrides={"trainer": {"accelerator": "cpu"}}, echo=lines.append)  # not the preset's GPU
    assert any("J&F=61.50, J=60.00, F=63.00  (1s, evaluated)" in line for line in lines), lines


def test_the_eta_counts_the_runs_that_test_a_model_this_command_trains(tmp_path, monkeypatch):
    """Figure 1's test-only columns start from the run the command trains: the ETA after that run counts them (it
    said 0s while they had most of the hour still to run)."""
    from experiments.harness import runner

    monkeypatch.setattr(runner, "compute_static", lambda *a, **k: None)
    monkeypatch.setattr(runner, "prepare_generated_data", lambda *a, **k: None)  # no data to read
    monkeypatch.setattr(runner, "execute", lambda cfg, *a, **k: {"metrics": {"top1": 50.0}, "wall_time_s": 10.0})
    lines = []
    runner.run_table("xvit_figure1", runs_root=tmp_path / "runs", jobs=1, echo=lines.append,
                     expected_s=lambda cfg: 10.0)  # every run took 10 s where it was tracked, and does here
    etas = [line.split("ETA ")[1] for line in lines if " runs, " in line and "ETA" in line]
    assert lines[1].startswith("5 run(s) to train or test;"), lines[:2]
    assert etas == ["40s if the rest train", "30s if the rest train", "20s if the rest train",
                    "10s if the rest train"], lines
