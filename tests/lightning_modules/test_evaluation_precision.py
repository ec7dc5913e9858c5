"""An evaluation-only run without a trainer of its own (Motionformer Table 9's DAVIS label propagation) runs at the
configured ``trainer.precision``, as Lightning would resolve it on its device, and records that precision.

Label propagation once ran bf16 on any GPU and fp32 on the CPU whatever the configuration said, while its record
stated the configured precision: Table 9's paper run recorded "16-mixed" for a bf16 run."""

from __future__ import annotations

import lightning as L
import pytest
import torch

import experiments.harness.tasks as tasks
import lightning_modules.label_propagation as label_propagation
from experiments.harness.plan import resolve_runs
from experiments.harness.provenance import provenance

CPU, CUDA = torch.device("cpu"), torch.device("cuda", 0)


@pytest.mark.parametrize("configured, device, name, dtype", [
    ("32-true", CPU, "32-true", None), ("32-true", CUDA, "32-true", None),
    ("bf16-mixed", CPU, "bf16-mixed", torch.bfloat16), ("bf16-mixed", CUDA, "bf16-mixed", torch.bfloat16),
    ("16-mixed", CUDA, "16-mixed", torch.float16),
    ("16-mixed", CPU, "bf16-mixed", torch.bfloat16),  # Lightning's own rule: no fp16 autocast on a CPU
    ("32", CPU, "32-true", None), ("bf16", CUDA, "bf16-mixed", torch.bfloat16), ("16", CUDA, "16-mixed", torch.float16),
])
def test_the_evaluation_precision_is_the_configured_one_as_lightning_resolves_it(configured, device, name, dtype):
    assert tasks.evaluation_precision(configured, device) == (name, dtype)


@pytest.mark.parametrize("configured", ["32-true", "bf16-mixed", "16-mixed"])
def test_on_a_cpu_a_lightning_trainer_reports_the_same_precision(configured):
    """What a trainer of the same configuration reports, so that evaluation-only and trained runs' records agree."""
    trainer = L.Trainer(accelerator="cpu", precision=configured, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    assert tasks.evaluation_precision(configured, CPU)[0] == trainer.precision


@pytest.mark.parametrize("configured", ["64-true", "16-true", "transformer-engine"])
def test_a_precision_an_evaluation_cannot_run_at_is_refused_by_name(configured):
    with pytest.raises(ValueError, match=f"trainer.precision .*got '{configured}'"):
        tasks.evaluation_precision(configured, CPU)


@pytest.mark.parametrize("configured, autocast, recorded", [
    ("16-mixed", torch.float16, "16-mixed"), ("bf16-mixed", torch.bfloat16, "bf16-mixed"), ("32-true", None, "32-true"),
])
def test_label_propagation_runs_and_records_the_configured_precision(monkeypatch, configured, autocast, recorded):
    """On a (named, not used) GPU: the features are extracted under the configured autocast and the record says so.
    Before, every row ran bf16 on a GPU: the paper preset (16-mixed) and the tiny one (32-true) recorded otherwise."""
    seen = {}

    class FakeFeatures:
        def __init__(self, model, **options):
            seen.update(options)

    def fake_davis(features, root, split, **options):
        return {"J&F": 0.5, "J": 0.4, "F": 0.6, "sequences": 1, "objects": 1, "skipped": [], "unreadable_files": [],
                "params": {}}

    monkeypatch.setattr(label_propagation, "VideoViTFeatures", FakeFeatures)
    monkeypatch.setattr(label_propagation, "evaluate_davis", fake_davis)
    monkeypatch.setattr(tasks, "build_model", lambda *args, **kwargs: None)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "a GPU")
    cfg = resolve_runs("mformer_table9", scale="paper", data_root="/nowhere",
                       settings=[("trainer.precision", configured)])[0]
    assert cfg.trainer.precision == configured
    tasks._label_propagation(cfg, None, CUDA)
    assert seen["autocast_dtype"] == autocast
    record = provenance(cfg, None, {}, None, 1, {"commit": None, "dirty": None}, device=CUDA)
    assert record["precision"] == recorded
