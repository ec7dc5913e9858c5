"""`python -m tools loader-rate`: one loader process's clips/s per distinct training data path (what makes two
runs' paths the same, the measurement on generated files at 1/7 size, the side-by-side processes, a failure), and
the tracked record covers every training path of the paper tables."""

import dataclasses
import json
from pathlib import Path

import pytest

from experiments.harness.spec import implemented_tables
from tools import loader_rate
from tools.__main__ import main
from tools.smoke.runs import smoke_configs

RECORD = Path(__file__).resolve().parents[2] / "reports" / "benchmarks" / loader_rate.RECORD_FILE


def test_a_path_is_the_task_and_data_but_batch_workers_root_and_test_views():
    cfg = smoke_configs("mformer_table4", ["joint"])[0]
    same = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, batch_size=64, num_workers=3, root="/x",
                                                             test_clips=7, test_crops=1))
    assert loader_rate.path_key(same) == loader_rate.path_key(cfg)
    for change in ({"crop_size": 112}, {"sampling": "segments"}, {"num_frames": 4}, {"hflip": not cfg.data.hflip}):
        other = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, **change))
        assert loader_rate.path_key(other) != loader_rate.path_key(cfg), change


def test_runs_of_one_path_are_measured_once_across_tables():
    paths = loader_rate.data_paths(["mformer_table2a", "mformer_table2b"])
    runs = [cfg for table in ("mformer_table2a", "mformer_table2b") for cfg in smoke_configs(table)]
    assert sum(map(len, paths.values())) == len(runs) and len(paths) < len(runs)
    for key, shared in paths.items():
        assert {loader_rate.path_key(cfg) for cfg in shared} == {key}


@pytest.mark.slow  # generates the paths' files and reads them for seconds, alone and in two processes
def test_the_rate_is_measured_on_generated_files_and_recorded_per_path(tmp_path):
    record = tmp_path / "loader.json"
    common = ["loader-rate", "mformer_table4", "--rows", "joint", "--shrink", "7", "--seconds", "0.3",
              "--cache-dir", str(tmp_path / "data"), "--record", str(record)]
    assert main(common) == 0
    (kinetics, ssv2) = json.loads(record.read_text())["records"]
    assert (kinetics["dataset"], ssv2["dataset"]) == ("kinetics400", "ssv2")
    assert kinetics["status"] == "pass" and kinetics["items"] >= 1 and kinetics["clips_s"] > 0
    assert kinetics["processes"] == 1 and kinetics["threads"] == 1 and kinetics["shrink"] == 7
    assert kinetics["runs"] == ["mformer_table4 joint / K-400"] and kinetics["data"]["shape"]["width"] == 340 // 7
    assert kinetics["command"].startswith("python -m tools loader-rate mformer_table4")
    assert main([*common, "--processes", "2"]) == 0  # the same paths again, in two processes at once
    records = json.loads(record.read_text())["records"]
    assert [r["processes"] for r in records] == [1, 1, 2, 2]  # kept beside the rates read alone
    assert all(r["clips_s"] <= r["median_clips_s"] <= r["max_clips_s"] for r in records[2:])


def test_a_path_that_fails_is_recorded_with_its_first_error(monkeypatch, tmp_path):
    def broken(cfg, options, seconds, threads, barrier=None):
        raise ValueError("a reader that cannot read")

    monkeypatch.setattr(loader_rate, "read_items", broken)
    record = tmp_path / "loader.json"
    assert main(["loader-rate", "mformer_table4", "--rows", "joint", "--shrink", "7", "--seconds", "0.1",
                 "--cache-dir", str(tmp_path / "data"), "--record", str(record)]) == 1
    first = json.loads(record.read_text())["records"][0]
    assert first["status"] == "fail" and first["error"].endswith("ValueError: a reader that cannot read")


def test_bad_options_are_refused(capsys):
    with pytest.raises(SystemExit) as stopped:  # argparse's one line (data.command_line.number)
        main(["loader-rate", "mformer_table4", "--seconds", "0"])
    assert stopped.value.code == 2 and capsys.readouterr().err.count("\n") == 1
    assert main(["loader-rate", "mformer_table4", "mformer_table9", "--rows", "joint"]) == 2


@pytest.fixture(scope="module")
def tracked() -> list[dict]:
    return json.loads(RECORD.read_text())["records"]


def test_the_tracked_record_holds_every_training_path_of_the_paper_tables_once_measured_alone(tracked):
    """A spec whose data path changes needs a new measurement (``python -m tools loader-rate all --record``):
    the rule reads only the paths measured alone, at the paper's shape, at one thread."""
    measured = {r["path"] for r in tracked if r["status"] == "pass" and r["shrink"] == 1 and r["processes"] == 1
                and r["threads"] == 1}
    missing = set(loader_rate.data_paths(implemented_tables())) - measured
    assert not missing, f"{len(missing)} training data path(s) without a tracked rate, e.g. {sorted(missing)[0]}"
