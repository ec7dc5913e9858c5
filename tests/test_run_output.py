"""What a run prints: its own progress lines, and none of the libraries' per-run chatter."""

import logging
import warnings

import lightning as L

from experiments.runner import duration, progress, quiet_libraries


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
                          "and treespec.is_leaf()` instead.", FutureWarning)
            warnings.warn("another deprecation", FutureWarning)
    finally:
        log.removeHandler(handler)
    printed = capfd.readouterr()
    assert seen == ["a line that says something"], seen
    for chatter in ("GPU available", "TPU available", "litlogger"):
        assert chatter not in printed.out + printed.err
    assert [str(w.message) for w in caught] == ["another deprecation"]


def test_progress_gives_elapsed_time_and_an_eta_from_the_runs_that_trained():
    assert [duration(s) for s in (4.6, 65, 3 * 3600 + 120)] == ["5s", "1m05s", "3h02m"]
    line = progress(2, 10, start=0.0, trained_s=[30.0, 50.0])  # start 0: elapsed is the clock's
    assert line.startswith("2/10 runs, ") and line.endswith("elapsed, ETA 5m20s if the rest train")
    assert "ETA" not in progress(10, 10, start=0.0, trained_s=[30.0])  # done
    assert "ETA" not in progress(1, 10, start=0.0, trained_s=[])  # nothing trained yet: no basis for one


def test_each_run_is_counted_once_and_an_evaluation_is_not_called_trained(tmp_path, monkeypatch):
    """A skipped run takes its own number in [k/n] (the runs after it count on from it), and an evaluation-only
    run's line says "evaluated"."""
    from experiments import runner

    monkeypatch.setattr(runner, "compute_static", lambda *a, **k: None)
    monkeypatch.setattr(runner, "execute", lambda cfg, *a, **k: {"metrics": {"top1": 50.0}, "wall_time_s": 1.0})
    (tmp_path / "kinetics400").mkdir()  # Table 4's K-400 column runs; its SSv2 column has no data: skipped
    lines = []
    runner.run_table("mformer_table4", "paper", ["joint"], data_root=tmp_path, runs_root=tmp_path / "runs",
                     overrides={"trainer": {"num_nodes": 1}}, jobs=1, echo=lines.append)  # not its 4 nodes
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
    from experiments import runner

    monkeypatch.setattr(runner, "compute_static", lambda *a, **k: None)
    monkeypatch.setattr(runner, "missing_data", lambda cfg: None)
    monkeypatch.setattr(runner, "execute", lambda cfg, *a, **k: {"metrics": {"J&F": 61.5, "J": 60.0, "F": 63.0},
                                                                 "wall_time_s": 1.0})
    lines = []
    runner.run_table("mformer_table9", "paper", data_root=tmp_path, runs_root=tmp_path / "runs", jobs=1,
                     echo=lines.append)
    assert any("J&F=61.50, J=60.00, F=63.00  (1s, evaluated)" in line for line in lines), lines
