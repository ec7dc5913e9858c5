"""The paper presets' loader processes per GPU follow the rule stated in ``experiments/presets.py``, recomputed from
the tracked records (``reports.loader_rates``): what the fastest paper-shape training step recorded on an H100
consumes (``reports/benchmarks/shift_h100.json``, and the GPU smoke's records at the paper's batch on a device of
their own, ``reports/benchmarks/smoke_cuda*.json``) over what one loader process delivers at each dataset's paper
shape (``clips_s`` of ``reports/benchmarks/loader_cpu.json``, the slowest of the dataset's training data paths).
Records measured again (on an idle machine, another CPU) change the count the rule gives, and this test then names
the preset to change."""

import json

import pytest

from experiments.presets import loader_workers
from reports.loader_rates import PRESETS, fastest_step, needed_workers, slowest_path


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


def test_the_rule_reads_the_fastest_unshared_h100_step_and_the_slowest_path_read_alone(tmp_path):
    _write(tmp_path / "shift_h100.json", [{"shape": "paper", "unit": "model", "compiled": None, "batch": 8,
                                           "time_s": 0.2}])  # 40 clips/s
    step = {"status": "pass", "device_name": "NVIDIA H100", "batch": 4, "paper_batch": 4, "reduced": []}
    _write(tmp_path / "smoke_cuda.json", [{**step, "step_clips_s": 60.0},
                                          {**step, "step_clips_s": 90.0,
                                           "reduced": ["device shared with 1 other process(es): times are upper "
                                                       "bounds"]},
                                          {**step, "step_clips_s": 95.0, "batch": 1}])
    assert fastest_step(tmp_path) == (60.0, "smoke_cuda.json")
    rate = {"status": "pass", "shrink": 1, "processes": 1, "threads": 1, "dataset": "ssv2"}
    _write(tmp_path / "loader_cpu.json", [{**rate, "clips_s": 9.0, "row": "a"}, {**rate, "clips_s": 2.0, "row": "b",
                                                                                "processes": 4},
                                          {**rate, "clips_s": 1.0, "row": "c", "shrink": 7},
                                          {**rate, "clips_s": 7.0, "row": "d"}])
    assert slowest_path(("ssv2",), tmp_path)["row"] == "d"
    with pytest.raises(ValueError, match="no paper-shape loader rate of kinetics400"):
        slowest_path(("kinetics400",), tmp_path)
