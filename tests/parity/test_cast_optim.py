"""CAST's optimizer and lr, ours against the authors' code (golden files of ``python -m tools.pipeline_golden.optim
cast``: ``run_bidirection*.py``'s ``unfreeze_block`` and ``LayerDecayValueAssigner``, ``optim_factory``'s
``get_parameter_groups``, ``utils.cosine_scheduler``).

Parameter groups, through our released converter, parameter by parameter: the same trainable set (the frozen CLIP
and VideoMAE experts but their adapters, last LayerNorms and B-CAST; the heads), no weight decay on 1-D parameters
and the B-CAST position tables (the authors' ``no_weight_decay`` substrings), 0.05 elsewhere, and the layer-wise lr
scale ``layer_decay ** (13 - layer)`` (block i: layer i + 1; heads and last norms: 13), at Table 4's 0.75 and the
ablations' 0.8. The lr: ``args.lr = 1e-3 x batch / 256`` (min_lr alike), 5 warm-up epochs from 0, cosine per step
(ours float32: 1e-7 of the peak). The warm-up is the authors' ``np.linspace(0, lr, W)``, at the peak on its last
step (the paper preset's ``warmup_endpoint="inclusive"``).

The steps of an epoch (``optim_epoch.json``, their training loop run): ``len(dataset_train) // total_batch_size``,
the batches past the last whole accumulation skipped, where Lightning would step that partial accumulation too: at
SSv2's 168,913 clips 439 steps an epoch (Lightning's 440), at 234,619 K400 clips 407 (408). The paper presets'
``trainer.epoch_steps="whole_global_batches"`` takes theirs, and the lr of every step of the whole run is theirs."""

from __future__ import annotations

import numpy as np
import pytest

from .optim_parity import (
    EXACT,
    GOLDEN,
    authors_row_model,
    compare_groups,
    fit_schedule,
    golden,
    lr_differences,
    official_to_ours,
    our_groups,
    our_lrs,
    our_module,
    paper_lr,
    row_config,
)

GROUPS = golden("cast", "optim_groups.json")
LR = golden("cast", "optim_lr.json")
EPOCH = golden("cast", "optim_epoch.json")
ROWS = {("cast_table2", "cast", "EK-100"): "cast_ek100_ld0.75", ("cast_table2", "cast", "K-400"): "cast_k400_ld0.75",
        ("cast_table2", "cast", "SSv2"): "cast_k400_ld0.75", ("cast_table1a", "cast", "EK-100"): "cast_ek100_ld0.8",
        ("cast_table1d", "cast", "EK-100"): "cast_ek100_ld0.8"}
RECIPES = {("cast_table2", "cast", "EK-100"): "ek100", ("cast_table2", "cast", "SSv2"): "ssv2",
           ("cast_table2", "cast", "K-400"): "k400", ("cast_table1a", "cast", "EK-100"): "ablation"}


@pytest.mark.parametrize("key", list(ROWS), ids=lambda k: "/".join(k))
def test_trainable_set_weight_decay_and_layer_scales_are_the_authors(key):
    variant = GROUPS["variants"][ROWS[key]]
    case = variant["released_case"]
    cfg = row_config(*key)
    assert cfg.optim.layer_decay == variant["layer_decay"]
    model = authors_row_model(cfg, case)
    classes = model.num_classes if model.num_verbs is None else {"verb": model.num_verbs,
                                                                 "noun": model.num_classes - model.num_verbs}
    ours = our_groups(our_module(cfg, model, classes))
    assert compare_groups(variant["params"], official_to_ours(case, model), ours) == []
    assert sum(p["trainable"] for p in variant["params"].values()) < len(variant["params"])  # experts frozen


@pytest.mark.parametrize("key", list(RECIPES), ids=lambda k: "/".join(k))
def test_the_lr_at_every_step_is_the_authors(key):
    recipe = LR["recipes"][RECIPES[key]]
    cfg = row_config(*key)
    lr, batch = paper_lr(cfg)
    assert batch == recipe["global_batch"]
    assert abs(lr - recipe["lr_at_global_batch"]) <= EXACT * lr  # the same linear rule: 1e-3 x batch / 256
    assert cfg.optim.min_lr_ratio * lr == pytest.approx(recipe["min_lr_at_global_batch"], rel=EXACT)
    for record, steps in ((recipe["small"], None), (recipe["paper"], recipe["paper"]["steps"])):
        steps = steps or list(range(len(record["lr"])))
        assert lr_differences(our_lrs(cfg, record["steps_per_epoch"], None if record is recipe["small"] else steps),
                              record["lr"], lr, cosine=True) == []


@pytest.mark.parametrize("recipe", ["ssv2", "k400"])
def test_the_steps_of_an_epoch_and_the_lr_of_every_step_are_the_authors(recipe):
    theirs = EPOCH["recipes"][recipe]
    cfg = row_config("cast_table2", "cast", theirs["column"])
    t = cfg.trainer
    assert (t.devices * t.num_nodes, cfg.data.batch_size, t.accumulate_grad_batches, cfg.optim.epochs) == (
        theirs["world_size"], theirs["batch_size"], theirs["update_freq"], theirs["epochs"])
    # their loop trains the whole accumulations and skips the rest of each process's loader
    assert theirs["batches_trained_per_epoch"] == theirs["optimizer_steps_per_epoch"] * theirs["update_freq"]
    assert theirs["batches_trained_per_epoch"] < theirs["loader_batches_per_process"]
    loader, steps, ours = fit_schedule(cfg, theirs["train_videos"], theirs["world_size"])
    assert loader == theirs["loader_batches_per_process"]
    assert steps == theirs["optimizer_steps"] == theirs["optimizer_steps_per_epoch"] * theirs["epochs"], (
        f"{steps} optimizer steps, the authors' {theirs['optimizer_steps']}")
    lr = paper_lr(cfg)[0]
    assert abs(lr - theirs["lr_at_global_batch"]) <= EXACT * lr
    with np.load(GOLDEN / "pipelines" / "cast" / "optim_epoch_lr.npz") as arrays:
        authors = arrays[recipe].tolist()
    assert lr_differences(ours, authors, lr, cosine=True) == []


def test_lightnings_own_count_steps_the_partial_accumulation():
    """Without the option the same run takes one step more an epoch (what the test above guards against)."""
    import dataclasses

    theirs = EPOCH["recipes"]["ssv2"]
    cfg = row_config("cast_table2", "cast", "SSv2")
    cfg = dataclasses.replace(cfg, trainer=dataclasses.replace(cfg.trainer, epoch_steps="all_batches"))
    _, steps, _ = fit_schedule(cfg, theirs["train_videos"], theirs["world_size"])
    assert steps == (theirs["optimizer_steps_per_epoch"] + 1) * theirs["epochs"]
