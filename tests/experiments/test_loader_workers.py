"""The paper presets' loader processes per GPU follow the rule stated in ``experiments/presets.py``, recomputed from
the tracked records (``reports.loader_rates``): what the fastest paper-shape training step recorded on an H100
consumes (``reports/benchmarks/shift_h100.json``, and the GPU smoke's records at the paper's batch on a device of
their own, ``reports/benchmarks/smoke_cuda*.json``) over what one loader process delivers at each dataset's paper
shape (``clips_s`` of ``reports/benchmarks/loader_cpu.json``, the slowest of the dataset's training data paths).
Records measured again (on an idle machine, another CPU) change the count the rule gives, and this test then names
the preset to change."""

import json

import pytest

from experiments.presets import GPUS_PER_NODE, MAX_LOADER_WORKERS, NODE_CORES, loader_workers
from reports.loader_rates import BENCHMARKS_DIR, PRESETS, fastest_step, needed_workers, slowest_path


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_each_preset_starts_the_loader_processes_a_gpu_needs(name):
    preset, _ = PRESETS[name]
    needed = needed_workers(name)
    assert preset.num_workers == needed, (f"{name}: the rule gives {needed} loader processes per GPU from the "
                                          f"tracked records; experiments/presets.py sets {preset.num_workers}")


def test_the_rule_rounds_up_and_starts_at_least_one():
    assert loader_workers(50.0, 12.5) == 4 and loader_workers(50.0, 12.4) == 5 and loader_workers(1.0, 100.0) == 1


def _write(path, records):
    path.write_text(json.dumps({"records": records}))


STAMP = {"device_name": "NVIDIA H100", "torch": "2.x", "commit": "abc", "measured_at": "2026-01-01", "command": "cmd"}
RUN = {**STAMP, "table": "t", "row": "r", "column": "SSv2", "dataset": "ssv2", "shrink": 1, "status": "pass",
       "error": None}
STEP = {**RUN, "clip": "8x224x224", "batch": 4, "paper_batch": 4, "reduced": []}  # a smoke run's record
RATE = {**RUN, "path": "ssv2 train", "processes": 1, "threads": 1}  # a loader-rate record


def test_the_rule_reads_the_fastest_unshared_h100_step_and_the_slowest_path_read_alone(tmp_path):
    _write(tmp_path / "shift_h100.json", [{**STAMP, "shape": "paper", "unit": "model", "compiled": None, "batch": 8,
                                           "variant": "vit", "time_s": 0.2, "time_min_s": 0.2}])  # 40 clips/s
    _write(tmp_path / "smoke_cuda.json", [{**STEP, "step_clips_s": 60.0},
                                          {**STEP, "step_clips_s": 90.0,
                                           "reduced": ["device shared with 1 other process(es): times are upper "
                                                       "bounds"]},
                                          {**STEP, "step_clips_s": 95.0, "batch": 1}])
    assert fastest_step(tmp_path) == (60.0, "smoke_cuda.json")
    _write(tmp_path / "loader_cpu.json", [{**RATE, "clips_s": 9.0, "row": "a"}, {**RATE, "clips_s": 2.0, "row": "b",
                                                                                "processes": 4},
                                          {**RATE, "clips_s": 1.0, "row": "c", "shrink": 7},
                                          {**RATE, "clips_s": 7.0, "row": "d"}])
    assert slowest_path(("ssv2",), tmp_path)["row"] == "d"
    with pytest.raises(ValueError, match="no paper-shape loader rate of kinetics400"):
        slowest_path(("kinetics400",), tmp_path)


def _host_rates(tmp_path, records):
    _write(tmp_path / "shift_h100.json", [])
    _write(tmp_path / "smoke_cuda.json", [{**STEP, "step_clips_s": 40.0}])
    _write(tmp_path / "host.json", [{**RATE, "device_name": "another CPU", "table": "t", **record}
                                    for record in records])
    return tmp_path / "host.json"


def _row(table, preset):
    return next(line for line in table.splitlines() if line.startswith(f"| {preset} "))


def test_another_hosts_rates_give_its_own_counts_and_say_what_they_lack(tmp_path):
    from reports.loader_rates import host_workers_table

    rates = _host_rates(tmp_path, [{"row": "a", "clips_s": 7.0}, {"row": "b", "clips_s": 2.0, "processes": 4},
                                   {"row": "c", "clips_s": 9.0}])
    table = host_workers_table(rates, tmp_path)
    assert [cell.strip() for cell in _row(table, "SSV2").split("|")[1:-1]] == ["SSV2", "t a / SSv2", "7.00", "6",
                                                                             str(MAX_LOADER_WORKERS)]
    assert "not measured (kinetics400, kinetics600)" in _row(table, "KINETICS_400")
    assert "another CPU" in table and "40.0 clips/s" in table


def test_a_count_past_the_cap_says_how_many_would_keep_up(tmp_path):
    from reports.loader_rates import host_workers_table

    table = host_workers_table(_host_rates(tmp_path, [{"row": "a", "clips_s": 1.0}]), tmp_path)
    assert f"| {MAX_LOADER_WORKERS} (the cap; 40 would keep up) |" in _row(table, "SSV2")


def test_the_cap_fits_a_task_per_gpu_with_its_loader_processes_and_itself_on_the_node_it_names():
    assert MAX_LOADER_WORKERS == 13 and loader_workers(1000.0, 1.0) == MAX_LOADER_WORKERS
    assert GPUS_PER_NODE * (MAX_LOADER_WORKERS + 1) <= NODE_CORES  # a SLURM job's task asks num_workers + 1 cores


@pytest.mark.parametrize("content, says", [
    (None, "cannot be read (No such file or directory)"),
    ("[1, 2]", "not a record file of `loader-rate` (Input should be a valid dictionary"),
    ('{"records": [1]}', "(records.0: Input should be a valid dictionary"),
    ('{"records": [{"status": "pass"}]}', "(missing key 'records.0.device_name'"),
    (json.dumps({"records": [{**RATE, "threads": "1", "clips_s": 1.0}]}),
     "(records.0.threads: Input should be a valid integer (got '1')); "),
    (json.dumps({"records": [{**RATE, "clips_s": float("inf")}]}),
     "(records.0.clips_s: Input should be a finite number (got 'inf')); "),
    (json.dumps({"records": [{**RATE, "clips_s": 0.0}]}), "(records.0.clips_s: Input should be greater than 0"),
    (json.dumps({"records": [RATE]}), "(records.0: a path that passed without its clips_s); "),
    (json.dumps({"records": [{**RATE, "runs": [[]], "clips_s": 1.0}]}),
     "(records.0.runs.0: Input should be a valid string"),
    ('{"records": ' + "[" * 100 + "]" * 100 + "}", "not a record (nested more than 64 deep)"),
    (json.dumps({"records": [{**RATE, "processes": 4, "clips_s": 3.0}]}), "no rate read by one process")])
def test_the_command_names_a_file_it_cannot_read_and_exits_2(tmp_path, capsys, content, says):
    from reports.__main__ import main

    path = tmp_path / "rates.json"
    if content is not None:
        path.write_text(content)
    assert main(["loader-workers", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and says in err and err.count("\n") == 1, err


def test_the_command_prints_the_tracked_rates_counts_as_the_presets_have_them(capsys):
    from reports.__main__ import main

    assert main(["loader-workers", str(BENCHMARKS_DIR / "loader_cpu.json")]) == 0
    out = capsys.readouterr().out
    for name, (preset, _) in PRESETS.items():
        assert _row(out, name).split("|")[-2].strip() == str(preset.num_workers)
        assert _row(out, name).split("|")[-3].strip().split(" ")[0] == str(preset.num_workers)
