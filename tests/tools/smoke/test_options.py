"""The smoke's options that change what a record says, and its records written table by table (fast: no run)."""

import argparse

import pytest

from reports.smoke_records import read_records
from tools.__main__ import main
from tools.smoke import runs, step, sweep
from tools.smoke.runs import SmokeOptions, reductions, smoke_config, smoke_configs

# what a record file of `smoke` holds besides the run's table, row, column and result (``reports.benchmark_schemas``)
FILED = {"dataset": "kinetics400", "clip": "8x224x224", "reduced": [], "batch": 4, "paper_batch": 4, "shrink": 1,
         "device_name": "CPU", "torch": "2.x", "commit": "abc", "measured_at": "2026-01-01",
         "command": "python -m tools smoke"}


@pytest.fixture
def cfg():
    return smoke_configs("mformer_table4", ["joint"])[0]


def test_a_strategy_reaches_the_trainer_and_the_record_says_it(cfg):
    options = SmokeOptions(device="cuda", strategy="fsdp")
    run = smoke_config(cfg, None, options)
    assert run.trainer.strategy == "fsdp" and run.trainer.devices == 1
    assert "strategy fsdp on one device" in reductions(cfg, run, options)
    plain = SmokeOptions(device="cuda")
    assert not any("strategy" in r for r in reductions(cfg, smoke_config(cfg, None, plain), plain))


def test_a_shared_device_makes_the_times_upper_bounds(cfg):
    options = SmokeOptions(device="cuda", sharing=3)
    said = reductions(cfg, smoke_config(cfg, None, options), options)
    assert "device shared with 2 other process(es): times are upper bounds" in said
    with pytest.raises(ValueError, match="sharing"):
        SmokeOptions(sharing=0)


def test_records_are_written_as_each_run_ends(tmp_path, monkeypatch):
    """A sweep stopped in its second table keeps the runs it finished in the file, the second table's first too."""
    def fake_table(table_id, options, rows=None, echo=print, done=None, on_record=lambda record: None, after=None,
                   skip=()):
        on_record({"table": table_id, "row": "r", "column": "c", "status": "pass", "error": None, **FILED})
        if table_id == "mformer_table9":
            raise KeyboardInterrupt  # the sweep is stopped here
        return [{"table": table_id, "row": "r", "column": "c", "status": "pass", "error": None}]

    monkeypatch.setattr(sweep, "smoke_table", fake_table)
    path = tmp_path / "smoke.json"
    with pytest.raises(KeyboardInterrupt):
        main(["smoke", "mformer_table4", "mformer_table9", "--record", str(path)])
    records = read_records(path)
    assert [r["table"] for r in records] == ["mformer_table4", "mformer_table9"]
    assert records[0]["command"].startswith("python -m tools smoke")


def test_a_lost_gpu_context_fails_the_run_keeps_its_first_error_and_stops_the_sweep(cfg, tmp_path, monkeypatch,
                                                                                     capsys):
    """A sticky CUDA error (found when the run's memory is released) fails the run with its own first error and
    the loss, and stops the sweep with exit code 2: the record is written, the next table is not started."""
    def planted_train(run, options):
        raise ValueError("planted step error")

    monkeypatch.setattr(step, "data_root", lambda cfg, options, echo: None)
    monkeypatch.setattr(step, "_train", planted_train)
    monkeypatch.setattr(step, "release_device", lambda: "the CUDA context was lost: AcceleratorError: "
                                                       "CUDA error: an illegal memory access was encountered")
    with pytest.raises(step.DeviceLost) as lost:
        step.smoke_run(cfg, SmokeOptions(device="cuda"), echo=lambda line: None)
    assert lost.value.record["status"] == "fail" and lost.value.record["fits"] is None
    assert "planted step error; then the CUDA context was lost" in lost.value.record["error"]

    monkeypatch.setattr(step, "_evaluate", planted_train)  # Table 9's run evaluates only
    monkeypatch.setattr(runs, "measured_on", lambda device: "a GPU")  # this machine may have none
    monkeypatch.setattr(sweep, "require_device", lambda device: None)
    path = tmp_path / "smoke.json"
    started = []
    real_table = sweep.smoke_table

    def recording_table(table_id, *args, **kwargs):
        started.append(table_id)
        return real_table(table_id, *args, **kwargs)

    monkeypatch.setattr(sweep, "smoke_table", recording_table)
    assert main(["smoke", "mformer_table9", "mformer_table4", "--device", "cuda", "--record", str(path)]) == 2
    assert started == ["mformer_table9"]
    (record,) = read_records(path)
    assert record["table"] == "mformer_table9" and "illegal memory access" in record["error"]
    # where to go on: the command, and the line a lane of `--jobs` reads
    said = capsys.readouterr().err
    assert "go on with: python -m tools smoke mformer_table9 mformer_table4 --device cuda" in said
    assert f'resume after: ["mformer_table9", "{record["row"]}", "{record["column"]}"]' in said.splitlines()


def _write_one_by_one(path: str, writer: int, count: int, start) -> None:
    from reports.smoke_records import write_records

    start.wait(60)  # all writers begin together, after their imports
    for i in range(count):
        write_records(path, [{"table": "t", "row": f"w{writer}", "column": str(i), "status": "pass", "error": None,
                              **FILED}])


@pytest.mark.slow  # processes that import the tool
def test_processes_sharing_a_record_file_keep_each_others_records(tmp_path):
    # Smoke processes sharing a GPU merge into one file as each run ends; unlocked, a read-merge-write loses
    # the records another process wrote in between.
    import multiprocessing

    path = str(tmp_path / "smoke.json")
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(4)
    writers = [context.Process(target=_write_one_by_one, args=(path, w, 25, start)) for w in range(4)]
    for process in writers:
        process.start()
    for process in writers:
        process.join(60)
    assert [p.exitcode for p in writers] == [0] * 4
    assert len(read_records(path)) == 100


def test_a_cuda_device_this_process_cannot_use_is_refused_before_anything_runs(monkeypatch, tmp_path, capsys):
    import torch

    started = []
    monkeypatch.setattr(sweep, "smoke_table", lambda *args, **kwargs: started.append(args) or [])
    path = tmp_path / "smoke.json"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["smoke", "mformer_table9", "--device", "cuda", "--record", str(path)]) == 2
    assert f"--device cuda: this torch ({torch.__version__}) sees no CUDA device" in capsys.readouterr().err
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert main(["smoke", "mformer_table9", "--device", "cuda:1", "--record", str(path)]) == 2
    assert "--device cuda:1: this machine has 1 CUDA device(s)" in capsys.readouterr().err
    assert main(["smoke", "mformer_table9", "--device", "gpu", "--record", str(path)]) == 2
    assert "--device gpu: not a device" in capsys.readouterr().err
    assert started == [] and not path.exists()


def test_a_record_measured_again_keeps_its_place_and_new_ones_come_last(tmp_path):
    from reports.smoke_records import read_records, write_records

    path = tmp_path / "smoke.json"
    write_records(path, [{"table": "t", "row": r, "column": "c", "status": "fail", "error": "x", **FILED}
                         for r in ("a", "b", "c")])
    write_records(path, [{"table": "t", "row": "d", "column": "c", "status": "pass", "error": None, **FILED},
                         {"table": "t", "row": "b", "column": "c", "status": "pass", "error": None, **FILED}])
    assert [(r["row"], r["status"]) for r in read_records(path)] == [("a", "fail"), ("b", "pass"), ("c", "fail"),
                                                                    ("d", "pass")]


def test_epic_frames_change_only_epic_runs_data_and_reach_the_side_by_side_processes():
    from tools.smoke.runs import data_request

    options = SmokeOptions(epic_frames=True)
    by_dataset = {cfg.data.dataset: cfg for cfg in smoke_configs("cast_table2", ["cast"])}
    assert data_request(by_dataset["epic_kitchens100"], options)["layout"] == "rgb_frames"
    assert "layout" not in data_request(by_dataset["kinetics400"], options)
    assert "layout" not in data_request(by_dataset["epic_kitchens100"], SmokeOptions())
    args = argparse.Namespace(device="cpu", steps=2, shrink=7, strategy="auto", sharing=1,
                              cache_dir=".cache/x", batch_size=None, threads=None, rows=None,
                              skip_passed=False, epic_frames=True, record="")
    assert "--epic-frames" in runs.options_line(args)
