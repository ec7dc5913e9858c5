"""What a record says about how it was made (experiments.harness.provenance), the lr scaling for another global batch,
who writes in a distributed job, and the report line that names setup differences between aggregated runs."""

import dataclasses
from pathlib import Path

import pytest
import torch

from experiments.harness.plan import resolve_runs
from experiments.harness.provenance import (
    batch_and_lr,
    config_hash,
    cpu_name,
    git_commit,
    launched_as_global_zero,
    provenance,
)
from experiments.harness.tasks import evaluation_device
from reports.cells import device_label


def paper_config(**trainer):
    cfg = resolve_runs("mformer_table6b", rows=["mformer"])[0]
    return dataclasses.replace(cfg, trainer=dataclasses.replace(cfg.trainer, **trainer))


def test_the_lr_follows_the_chosen_rule_when_the_global_batch_differs_from_the_papers():
    cfg = paper_config(reference_batch=64, accumulate_grad_batches=2)  # 16 per device x 4 x 2 = 128 = 2 x the paper's
    linear = batch_and_lr(cfg, world_size=4)
    assert linear["global_batch"] == 128 and linear["paper_global_batch"] == 64
    assert linear["lr_scaling"] == "linear" and linear["lr"] == pytest.approx(2 * cfg.optim.lr)
    sqrt = batch_and_lr(paper_config(reference_batch=64, accumulate_grad_batches=2, lr_scaling="sqrt"), world_size=4)
    assert sqrt["lr"] == pytest.approx(2 ** 0.5 * cfg.optim.lr)
    same = batch_and_lr(paper_config(reference_batch=16), world_size=1)  # the paper's batch: no rule applied
    assert same["lr_scaling"] is None and same["lr"] == cfg.optim.lr
    off = batch_and_lr(paper_config(reference_batch=64, lr_scaling="none"), world_size=1)
    assert off["lr_scaling"] is None and off["lr"] == cfg.optim.lr
    unstated = batch_and_lr(paper_config(), world_size=8)
    assert unstated["paper_global_batch"] is None and unstated["lr"] == cfg.optim.lr


def test_a_paper_preset_that_pins_its_gpus_states_the_papers_global_batch():
    """MSCA: 21 clips x 2 GPUs x 10 accumulated steps = 420 (Sec. 4.1); on 8 GPUs the lr is scaled linearly."""
    paper = resolve_runs("msca_table1", scale="paper", rows=["msca_kv_h1"])[0]
    assert paper.trainer.reference_batch == 420
    same = batch_and_lr(paper, world_size=2)
    assert same["global_batch"] == 420 and same["lr"] == paper.optim.lr and same["lr_scaling"] is None
    eight = resolve_runs("msca_table1", scale="paper", rows=["msca_kv_h1"], overrides={"trainer": {"devices": 8}})[0]
    scaled = batch_and_lr(eight, world_size=8)
    assert scaled["global_batch"] == 1680 and scaled["lr"] == pytest.approx(4 * paper.optim.lr)
    assert scaled["lr_scaling"] == "linear" and scaled["paper_global_batch"] == 420
    motionformer = resolve_runs("mformer_table4", scale="paper", rows=["joint"])[0]  # 4 x 8 GPUs x 4 nodes
    assert motionformer.trainer.reference_batch == 128
    assert resolve_runs("msca_table1", rows=["msca_kv_h1"])[0].trainer.reference_batch is None  # tiny: lr as given


def test_the_config_hash_changes_with_any_option():
    cfg = paper_config()
    assert config_hash(cfg) == config_hash(paper_config())
    assert config_hash(cfg) != config_hash(dataclasses.replace(cfg, seed=1))
    assert config_hash(cfg) != config_hash(paper_config(precision="16-mixed"))


@pytest.mark.parametrize("env, zero", [
    ({}, True), ({"RANK": "0", "LOCAL_RANK": "0"}, True), ({"RANK": "3", "LOCAL_RANK": "0"}, False),  # torchrun
    ({"LOCAL_RANK": "1"}, False), ({"LOCAL_RANK": "0", "NODE_RANK": "1"}, False),  # Lightning's own launcher
    ({"SLURM_PROCID": "5"}, False), ({"SLURM_PROCID": "0"}, True),  # srun
])
def test_only_global_rank_zero_writes_shared_files(monkeypatch, env, zero):
    for key in ("RANK", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK", "SLURM_PROCID"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert launched_as_global_zero() is zero


def test_the_report_header_names_setup_differences():
    from reports.build import hardware_line, setup_differences

    def record(precision, torch_version, provenance=True):
        p = {"precision": precision, "world_size": 1, "devices": ["AMD EPYC"], "batch": {"global_batch": 16},
             "torch_threads": 1, "deterministic": True, "decoder": {"av": "18.1.0"},
             "libraries": {"torch": torch_version, "lightning": "2.6.6", "timm": "1.0.31"}}
        return {"provenance": p} if provenance else {}

    same = [record("32-true", "2.13.0"), record("32-true", "2.13.0")]
    assert setup_differences(same) == []
    mixed = [record("32-true", "2.13.0"), record("16-mixed", "2.13.0"), record("32-true", "2.12.1")]
    (line,) = setup_differences(mixed)
    assert "torch 2.12.1 (1) / 2.13.0 (2)" in line  # devices, precision and batch are the hardware line's
    assert "lightning" not in line and "torch threads" not in line and "precision" not in line
    assert "precision 16-mixed (1 runs) / 32-true (2 runs)" in hardware_line(mixed)
    (old,) = setup_differences([record("32-true", "2.13.0"), record(None, None, provenance=False)])
    assert "not recorded (1)" in old


def test_a_run_is_dirty_when_code_differs_from_its_commit_not_when_only_reports_records_or_prose_do(tmp_path):
    import subprocess

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    (tmp_path / "reports" / "results" / "t").mkdir(parents=True)
    (tmp_path / "reports" / "benchmarks").mkdir()
    files = {"model.py": "x = 1\n", "reports/t.md": "a\n", "reports/t-tiny.png": "a\n",
             "reports/results/t/r.json": "{}\n", "reports/build.py": "y = 1\n", "README.md": "a\n",
             "reports/benchmarks/shift_x.json": "{}\n"}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    git("init", "-q")
    git("add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c")
    commit = git_commit(tmp_path)
    assert len(commit) == 40
    for name in ("reports/t.md", "reports/t-tiny.png", "reports/results/t/r.json", "README.md",
                 "reports/benchmarks/shift_x.json"):
        (tmp_path / name).write_text("rebuilt\n")
    (tmp_path / "notes.txt").write_text("untracked\n")
    assert git_commit(tmp_path) == commit
    (tmp_path / "reports" / "build.py").write_text("y = 2\n")  # code under reports/ still counts
    assert git_commit(tmp_path) == commit + "-dirty"
    assert git_commit(Path("/")) == "unknown"


def test_an_evaluation_only_run_records_the_device_it_evaluated_on(monkeypatch):
    """It has no trainer of its own: the runner picks the device as Lightning reads ``trainer.accelerator`` and
    the record names it (it used to name the CPU, wherever the evaluation ran)."""
    assert evaluation_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="cpu, gpu, cuda or auto; got 'tpu'"):
        evaluation_device("tpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert evaluation_device("auto") == torch.device("cpu")
    with pytest.raises(ValueError, match="accelerator='gpu' but torch sees no CUDA device"):
        evaluation_device("gpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device: "NVIDIA H100 80GB HBM3")
    on_gpu = evaluation_device("auto")
    assert on_gpu == torch.device("cuda", 0)
    git = {"commit": None, "dirty": None}
    gpu = provenance(paper_config(), None, {}, None, 1, git, device=on_gpu)
    assert (gpu["accelerator"], gpu["devices"], device_label(gpu)) == (
        "CUDAAccelerator", ["NVIDIA H100 80GB HBM3"], "1 × H100 80GB HBM3")
    cpu = provenance(paper_config(), None, {}, None, 1, git, device=torch.device("cpu"))
    assert (cpu["accelerator"], cpu["devices"], device_label(cpu)) == ("CPUAccelerator", [cpu_name()], "CPU")
    with pytest.raises(ValueError, match="needs the device it ran on"):
        provenance(paper_config(), None, {}, None, 1, git)
