"""Every paper preset's recipe trains and tests: its optimizer, schedule, augmentation, test views, gradient
clipping and accumulation on the table's tiny model and a micro generated set (the paper-scale models and datasets
do not fit a CPU test). Paths that only paper scale takes would otherwise first run on a user's GPUs: timm's
AutoAugment once stopped one clip in 31 there (``data.clip_augment.make_auto_augment``)."""

import dataclasses
import json
import math

import pytest

from experiments.harness.plan import missing_data, needs_another_run, resolve_runs
from experiments.harness.runner import execute
from experiments.harness.spec import RunConfig, registered_specs, table_spec


def paper_recipe_on_tiny(tiny: RunConfig, paper: RunConfig) -> RunConfig:
    """``tiny`` trained and tested as ``paper`` is, for 2 epochs of 16 clips: the paper's optim (its step milestone
    at epoch 1, at most 1 warm-up epoch), clip sampling, data options and test views, clipping, (at most 2)
    accumulated batches and its count of an epoch's steps."""
    optim = dataclasses.replace(paper.optim, epochs=2, warmup_epochs=min(paper.optim.warmup_epochs, 1),
                                milestones=(1,) if paper.optim.schedule == "step" else ())
    data = dataclasses.replace(tiny.data, options={**tiny.data.options, **paper.data.options},
                               sampling=paper.data.sampling or tiny.data.sampling,
                               test_clips=paper.data.test_clips, test_crops=paper.data.test_crops, batch_size=4,
                               num_workers=0, synthetic_params={**tiny.data.synthetic_params, "num_train": 16,
                                                                "num_val": 8})
    trainer = dataclasses.replace(tiny.trainer, gradient_clip_val=paper.trainer.gradient_clip_val,
                                  accumulate_grad_batches=min(2, paper.trainer.accumulate_grad_batches),
                                  epoch_steps=paper.trainer.epoch_steps)
    return dataclasses.replace(tiny, optim=optim, data=data, trainer=trainer)


def recipes() -> dict[str, RunConfig]:
    """One hybrid per distinct paper recipe and tiny model, over every registered table with both scales. Left out:
    runs that start from another run's checkpoint or need a real dataset."""
    found = {}
    for table in registered_specs():
        if not {"tiny", "paper"} <= set(table_spec(table).scales):
            continue
        papers = {(c.row, c.column): c for c in resolve_runs(table, "paper", data_root="/datasets")}
        for tiny in resolve_runs(table, "tiny"):
            paper = papers.get((tiny.row, tiny.column))
            if paper is None or missing_data(tiny) or needs_another_run(tiny):
                continue
            key = json.dumps([dataclasses.asdict(paper.optim), dict(paper.data.options), paper.data.test_clips,
                              paper.data.test_crops, paper.trainer.gradient_clip_val,
                              paper.trainer.accumulate_grad_batches, paper.trainer.epoch_steps, tiny.task,
                              tiny.model.name], sort_keys=True,
                             default=str)
            found.setdefault(key, paper_recipe_on_tiny(tiny, paper))
    return {f"{c.table}/{c.row}/{c.column}": c for c in found.values()}


@pytest.mark.slow
def test_every_paper_recipe_trains_and_tests_on_the_tiny_model(tmp_path):
    hybrids = recipes()
    assert {name.split("_")[0] for name in hybrids} >= {"mformer", "msca", "xvit", "d3da", "cast"}, sorted(hybrids)
    assert any(c.optim.optimizer == "momentum" and c.trainer.accumulate_grad_batches == 2 for c in hybrids.values())
    assert any(c.data.options.get("multi_scale_crop") and c.optim.mixup_alpha for c in hybrids.values())
    assert any(c.optim.layer_decay and c.optim.mixup_alpha and c.data.task == "verb_noun_classification"
               and c.trainer.epoch_steps == "whole_global_batches"
               for c in hybrids.values())  # CAST's: layer decay, mixup of verb-noun labels, the authors' epoch
    for name, cfg in hybrids.items():
        record = execute(cfg, tmp_path / "runs", progress_bar=False, echo=lambda _: None)
        assert record["metrics"] and all(math.isfinite(v) for v in record["metrics"].values()), name
        assert record["config"]["optim"] == json.loads(json.dumps(dataclasses.asdict(cfg.optim), default=list)), name
