"""The paper presets' loader processes per GPU follow the rule stated in ``experiments/presets.py``, recomputed from
the tracked records: what the fastest paper-shape training step recorded on an H100 consumes
(``reports/benchmarks/shift_h100.json``, and the GPU smoke's records at the paper's batch on a device of their own,
``reports/benchmarks/smoke_cuda*.json``) over what one loader process delivers at each dataset's paper shape
(``clips_s`` of ``reports/benchmarks/loader_cpu.json``, the slowest of the dataset's training data paths).
Records measured again (on an idle machine, another CPU) change the count the rule gives, and this test then names
the preset to change."""

import json
from pathlib import Path

import pytest

from experiments.d3da.tables import D3DA_PAPER
from experiments.presets import EPIC_KITCHENS_100, KINETICS_400, KINETICS_600, SSV2, loader_workers

BENCHMARKS = Path(__file__).resolve().parents[2] / "reports" / "benchmarks"
# preset -> the datasets whose smoke records measure its loader (Kinetics-600's files are Kinetics-400's shape)
PRESETS = {"KINETICS_400": (KINETICS_400, ("kinetics400", "kinetics600")),
           "KINETICS_600": (KINETICS_600, ("kinetics400", "kinetics600")),
           "SSV2": (SSV2, ("ssv2",)), "EPIC_KITCHENS_100": (EPIC_KITCHENS_100, ("epic_kitchens100",)),
           **{f"D3DA_PAPER {column}": (data, (data.dataset,)) for column, data in D3DA_PAPER.data.items()}}


def fastest_h100_clips_s() -> float:
    """Training clips/s of the fastest paper-shape step recorded on an H100 (forward and backward, eager)."""
    records = json.loads((BENCHMARKS / "shift_h100.json").read_text())["records"]
    rates = [r["batch"] / r["time_s"] for r in records
             if r["shape"] == "paper" and r["unit"] == "model" and r["compiled"] is None]
    for path in BENCHMARKS.glob("smoke_cuda*.json"):
        rates += [r["step_clips_s"] for r in json.loads(path.read_text())["records"]
                  if r["status"] == "pass" and "H100" in r["device_name"] and r["batch"] == r["paper_batch"]
                  and r.get("shrink", 1) == 1 and not any("device shared" in x for x in r["reduced"])]
    assert rates
    return max(rates)


def slowest_loader_clips_s(datasets: tuple[str, ...]) -> float:
    """The slowest of the datasets' training data paths, each read by one process alone at one thread at the paper's
    shape (``python -m experiments loader-rate all --record``)."""
    records = json.loads((BENCHMARKS / "loader_cpu.json").read_text())["records"]
    rates = [r["clips_s"] for r in records if r["dataset"] in datasets and r["status"] == "pass"
             and r["shrink"] == 1 and r["processes"] == 1 and r["threads"] == 1]
    assert rates, f"no paper-shape loader rate of {datasets} in loader_cpu.json"
    return min(rates)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_each_preset_starts_the_loader_processes_a_gpu_needs(name):
    preset, datasets = PRESETS[name]
    needed = loader_workers(fastest_h100_clips_s(), slowest_loader_clips_s(datasets))
    assert preset.num_workers == needed, (f"{name}: the rule gives {needed} loader processes per GPU from the "
                                          f"tracked records; experiments/presets.py sets {preset.num_workers}")


def test_the_rule_rounds_up_and_starts_at_least_one():
    assert loader_workers(50.0, 12.5) == 4 and loader_workers(50.0, 12.4) == 5 and loader_workers(1.0, 100.0) == 1
