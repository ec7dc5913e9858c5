"""Same command, same seed, same machine: bit-identical metrics and weights (issue 16).

Two fresh processes run the same micro command (deterministic algorithms, seeded loader workers, one torch thread);
the test metrics, the final weights and the logged training curve must be equal bit for bit."""

import json

import pytest
import torch

from tests.experiments.micro_run import RUN, run_cli

pytestmark = pytest.mark.slow  # two micro runs in fresh processes: ~25 s on 2 idle cores


def _scalars(run_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir)).Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_the_same_command_twice_gives_bit_identical_metrics(tmp_path):
    args = ("--epochs", "2", "--num-workers", "1")  # a loader worker process too: its seeding must repeat
    records, weights, curves = [], [], []
    for attempt in ("first", "second"):
        runs = tmp_path / attempt / "runs"
        run_cli(runs, *args)
        record = json.loads((runs / RUN / "metrics.json").read_text())
        records.append(record)
        weights.append(torch.load(runs / RUN / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"])
        curves.append(_scalars(runs / RUN))
    first, second = records
    assert first["metrics"] == second["metrics"]  # floats compared exactly, loss included
    assert first["metrics"]["loss"] > 0
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert curves[0]["train/loss"] == curves[1]["train/loss"] and len(curves[0]["train/loss"]) >= 2
    for record in records:  # what made it repeatable is on record
        p = record["provenance"]
        assert p["torch_threads"] == 1 and p["deterministic"] is True and p["seed"] == 0
        assert p["config_hash"] == first["provenance"]["config_hash"]


def test_every_tiny_clip_model_runs_forward_and_backward_under_deterministic_algorithms():
    """Tiny runs train with ``torch.use_deterministic_algorithms(True)`` and no ``warn_only``: an op without a
    deterministic CPU kernel would stop a table mid-run, and ``torch.empty`` is NaN-filled there, so a model reading
    memory it never wrote would train on NaN. Every distinct tiny clip model of the specs runs one step of both."""
    from experiments.harness.plan import resolve_runs
    from experiments.harness.spec import registered_specs, table_spec
    from experiments.harness.tasks import build_model

    models = {}
    for table in registered_specs():
        for cfg in resolve_runs(table, scale="tiny") if "tiny" in table_spec(table).scales else ():
            if cfg.task in ("video_classification", "verb_noun_classification"):
                key = (json.dumps(cfg.to_dict()["model"], sort_keys=True), cfg.data.num_frames, cfg.data.crop_size,
                       cfg.task)
                models.setdefault(key, cfg)
    assert len(models) > 90  # every paper's clip models, not a few
    was = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        for cfg in models.values():
            verbs = cfg.model.overrides.get("num_verbs")
            classes = {"verb": verbs or 3, "noun": 4} if cfg.task == "verb_noun_classification" else 3
            torch.manual_seed(0)
            model = build_model(cfg, classes, device="cpu")
            out = model(torch.randn(2, 3, cfg.data.num_frames, cfg.data.crop_size, cfg.data.crop_size))
            outputs = list(out.values()) if isinstance(out, dict) else [out]
            sum(o.sum() for o in outputs).backward()
            grads = [p.grad for p in model.parameters() if p.grad is not None]
            assert grads and all(torch.isfinite(t).all() for t in outputs + grads), f"{cfg.table}/{cfg.row}"
    finally:
        torch.use_deterministic_algorithms(was)
