"""What a record's provenance says, field by field, against literal values and arithmetic written here.

An audit by mutation of experiments.harness.provenance: each test pins something the other provenance tests let change
unnoticed. ``git_state`` on a repository made here (outside git: unknown, not clean; tracked configuration and code
outside ``NOT_CODE`` count, ``reports/benchmarks.py`` beside the benchmark records included); ``batch_and_lr``'s whole
entry and its refusal of an unknown rule; the data counts and the "data left out" line for every kind of loss;
library versions, the decoder and the CPU's name as read from fakes; ``provenance`` of a trained run (a fake
trainer of 4 processes on 2 nodes) and of an evaluation-only one; ``set_threads``'s lower bound; the report's
setup line for two decoder versions.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
import types
from importlib import metadata

import numpy
import pytest
import torch

import experiments.harness.provenance as prov
from experiments.harness.provenance import (
    batch_and_lr,
    data_counts,
    data_left_out,
    decoder,
    git_commit,
    git_state,
    library_versions,
    provenance,
    set_threads,
)
from tests.experiments.harness.test_provenance import paper_config


def _git(root, *args) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout.strip()


def _repo(root, files: dict[str, str]) -> str:
    """A repository at ``root`` with ``files`` committed; returns its commit as git itself names it."""
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c")
    return _git(root, "rev-parse", "HEAD")


# --- git ------------------------------------------------------------------------------------------------------------

def test_outside_git_the_state_is_unknown_not_clean(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))  # git must not find an enclosing repository
    assert git_state(tmp_path) == {"commit": None, "dirty": None}
    assert git_commit(tmp_path) == "unknown"


@pytest.mark.parametrize("changed", ["experiments/paper_tables.yaml", "pyproject.toml", "requirements.txt",
                                     "reports/benchmarks.py", "data/classes.json"])
def test_a_change_to_tracked_configuration_or_code_outside_not_code_is_dirty(tmp_path, changed):
    """Only prose, report pictures, tracked results and benchmark records are exempt: a preset's yaml, the package
    pins or ``reports/benchmarks.py`` (beside ``reports/benchmarks/``, not in it) change what a run computes."""
    files = {"experiments/paper_tables.yaml": "a: 1\n", "pyproject.toml": "[x]\n", "requirements.txt": "torch\n",
             "reports/benchmarks.py": "x = 1\n", "reports/benchmarks/shift.json": "{}\n", "data/classes.json": "[]\n"}
    commit = _repo(tmp_path, files)
    assert git_state(tmp_path) == {"commit": commit, "dirty": False}
    (tmp_path / "reports/benchmarks/shift.json").write_text("{\"rebuilt\": 1}\n")
    assert git_state(tmp_path) == {"commit": commit, "dirty": False}
    (tmp_path / changed).write_text("changed\n")
    assert git_state(tmp_path) == {"commit": commit, "dirty": True}
    assert git_commit(tmp_path) == commit + "-dirty"


# --- batch and lr ---------------------------------------------------------------------------------------------------

def _batch_cfg(batch_size: int, lr: float, **trainer):
    cfg = paper_config(**trainer)
    return dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, batch_size=batch_size),
                               optim=dataclasses.replace(cfg.optim, lr=lr))


def test_the_batch_entry_states_every_factor_and_both_lrs():
    """5 clips x 3 processes x 4 accumulated steps = 60 against the paper's 30: twice the lr (linear)."""
    cfg = _batch_cfg(5, 1e-3, reference_batch=30, accumulate_grad_batches=4, lr_scaling="linear")
    assert batch_and_lr(cfg, world_size=3) == {
        "per_device_batch": 5, "world_size": 3, "accumulate_grad_batches": 4, "global_batch": 60,
        "paper_global_batch": 30, "lr_scaling": "linear", "lr_stated": 1e-3, "lr": pytest.approx(2e-3, rel=1e-12)}
    sqrt = batch_and_lr(_batch_cfg(5, 1e-3, reference_batch=240, accumulate_grad_batches=4, lr_scaling="sqrt"), 3)
    assert (sqrt["global_batch"], sqrt["lr_stated"], sqrt["lr"]) == (60, 1e-3, pytest.approx(0.5e-3, rel=1e-12))


def test_an_unknown_lr_scaling_rule_is_refused_by_name():
    cfg = _batch_cfg(5, 1e-3, reference_batch=30, lr_scaling="Linear")
    with pytest.raises(ValueError, match="unknown lr_scaling 'Linear'"):
        batch_and_lr(cfg, world_size=1)


# --- data -----------------------------------------------------------------------------------------------------------

REPORT = {"train": {"expected": 10, "found": 8, "missing": ["a.mp4", "b.mp4"], "corrupt": [{"path": "c.mp4"}],
                    "bad_annotation_lines": [{"line": 3}], "skipped_at_train": 4, "skipped_at_test": 0},
          "val": {"expected": 5, "found": 5, "missing": [], "corrupt": [], "bad_annotation_lines": [],
                  "skipped_at_train": 0, "skipped_at_test": 1}}


def test_the_data_counts_keep_expected_found_missing_and_corrupt_apart():
    assert data_counts(REPORT) == {"train": {"expected": 10, "found": 8, "missing": 2, "corrupt": 1},
                                   "val": {"expected": 5, "found": 5, "missing": 0, "corrupt": 0}}


def test_data_left_out_names_every_kind_of_loss():
    assert data_left_out(REPORT) == ("train: 1 bad annotation lines, 2 missing videos, 1 corrupt videos, "
                                     "4 clips skipped in training; val: 1 clips skipped at test")


# --- libraries, decoder, CPU ----------------------------------------------------------------------------------------

def test_library_versions_are_the_installed_builds_and_none_when_absent(monkeypatch):
    versions = library_versions()
    assert set(versions) == {"python", "torch", "lightning", "timm", "av", "torchvision", "numpy", "torchmetrics"}
    assert versions["python"] == "{}.{}.{}".format(*sys.version_info[:3])
    assert versions["torch"] == torch.__version__ and versions["numpy"] == numpy.__version__  # "+cpu" and all
    real = metadata.version

    def without_timm(name):
        if name == "timm":
            raise metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(metadata, "version", without_timm)
    assert library_versions()["timm"] is None


def test_the_decoder_is_pyav_with_its_libavcodec_or_none(monkeypatch):
    monkeypatch.setitem(sys.modules, "av", types.SimpleNamespace(
        __version__="99.1.0", library_versions={"libavcodec": (61, 19, 100)}))
    assert decoder() == {"name": "PyAV", "av": "99.1.0", "libavcodec": "61.19.100"}
    monkeypatch.setitem(sys.modules, "av", types.SimpleNamespace(__version__="99.1.0"))
    assert decoder() == {"name": "PyAV", "av": "99.1.0", "libavcodec": None}
    monkeypatch.setitem(sys.modules, "av", None)  # import av raises ImportError
    assert decoder() == {"name": None}


# --- the provenance entry -------------------------------------------------------------------------------------------

class DDPStrategy:
    root_device = torch.device("cpu")


class CPUAccelerator:
    pass


def test_a_trained_runs_provenance_names_its_processes_views_threads_and_the_git_state_it_started_from(monkeypatch):
    """4 processes on 2 nodes, one CPU name per rank in rank order; 3 clips x 4 crops = 12 test views a video."""
    cfg = paper_config(deterministic="warn", precision="16-mixed")
    cfg = dataclasses.replace(cfg, seed=5, data=dataclasses.replace(cfg.data, test_clips=3, test_crops=4))
    trainer = types.SimpleNamespace(precision="16-mixed", accelerator=CPUAccelerator(), strategy=DDPStrategy(),
                                    world_size=4, num_nodes=2, global_rank=0)
    monkeypatch.setattr(prov, "cpu_name", lambda: "CPU of rank 0")
    monkeypatch.setattr(torch.distributed, "is_available", lambda: True)
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)

    def all_gather_object(out, obj):
        out[:] = [obj, "CPU of rank 1", "CPU of rank 2", "CPU of rank 3"]

    monkeypatch.setattr(torch.distributed, "all_gather_object", all_gather_object)
    git = {"commit": "f" * 40, "dirty": True}  # as taken when the run started, whatever the tree is now
    batch = {"global_batch": 64}
    p = provenance(cfg, trainer, REPORT, batch, 7, git)
    canonical = json.dumps(cfg.to_dict(), sort_keys=True, separators=(",", ":"))
    assert p["git"] == {"commit": "f" * 40, "dirty": True}
    assert p["config_hash"] == hashlib.sha256(canonical.encode()).hexdigest()[:16]
    assert p["dataset"]["videos"]["train"] == {"expected": 10, "found": 8, "missing": 2, "corrupt": 1}
    assert p["test_views"] == {"clips": 3, "crops": 4, "per_video": 12}
    assert (p["batch"], p["torch_threads"], p["deterministic"], p["seed"]) == ({"global_batch": 64}, 7, "warn", 5)
    assert (p["precision"], p["accelerator"], p["strategy"]) == ("16-mixed", "CPUAccelerator", "DDPStrategy")
    assert (p["world_size"], p["num_nodes"]) == (4, 2)
    assert p["devices"] == ["CPU of rank 0", "CPU of rank 1", "CPU of rank 2", "CPU of rank 3"]
    assert p["written_by"] == {"global_rank": 0, "pid": os.getpid()}


def test_an_evaluation_only_run_is_one_process_at_its_configured_precision_whatever_the_preset_pins():
    """An evaluation-only run is one process at ``trainer.precision`` on one device, whatever devices and nodes the
    preset pins for training (how label propagation follows that precision:
    ``tests/lightning_modules/test_evaluation_precision.py``)."""
    cfg = paper_config(precision="bf16-mixed", devices=8, num_nodes=2)
    p = provenance(cfg, None, {}, None, 1, {"commit": None, "dirty": None}, device=torch.device("cpu"))
    assert (p["precision"], p["world_size"], p["num_nodes"], p["accelerator"]) == (
        "bf16-mixed", 1, 1, "CPUAccelerator")
    assert p["batch"] is None and p["dataset"]["videos"] == {}


def test_set_threads_refuses_zero():
    with pytest.raises(ValueError, match="num_threads must be >= 1, got 0"):
        set_threads(0)
    assert set_threads(None) == torch.get_num_threads()


# --- where records are read -----------------------------------------------------------------------------------------

def test_the_report_names_two_decoder_versions():
    from reports.build import setup_differences

    def record(av):
        return {"provenance": {"precision": "32-true", "world_size": 1, "devices": ["CPU"],
                               "batch": {"global_batch": 16}, "torch_threads": 1, "deterministic": True,
                               "decoder": {"name": "PyAV", "av": av, "libavcodec": "61.19.100"},
                               "libraries": {"torch": "2.13.0", "lightning": "2.6.6", "timm": "1.0.31"}}}

    assert setup_differences([record("18.1.0"), record("17.0.0"), record("18.1.0")]) == [
        "- The runs differ in setup (runs per value): decoder 17.0.0 (1) / 18.1.0 (2)."]
