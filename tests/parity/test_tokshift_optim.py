"""MSCA's optimizer and lr (TokShift's code, which MSCA builds on), ours against the authors' code (golden files of
``python -m tools.pipeline_golden.optim tokshift``: ``main_ddp_shift_v3.py``'s SGD and MultiStepLR).

Parameter groups: the authors' SGD takes ``model.parameters()``, momentum 0.9, no Nesterov, weight decay 0 (the
yml's WEIGHT_DECAY): one group, every parameter; ours (``momentum``, weight decay 0) the same, compared parameter by
parameter through our released converter (ViT and TokShift), and by rule for the MSCA rows (no parameters of their
own). The lr: MultiStepLR (gamma 0.1) stepped after each epoch, with MSCA's 12 epochs and milestone 10 (Sec. 4.1;
TokShift's yml: 18 epochs, milestones 10, 15, 18), equal to 1e-12 at every step; lr 0.1 at the global batch 420."""

from __future__ import annotations

import pytest

from models import create_model

from .optim_parity import (
    authors_row_model,
    compare_groups,
    golden,
    lr_differences,
    official_to_ours,
    our_groups,
    our_lrs,
    our_module,
    paper_lr,
    released_model,
    row_config,
)

GROUPS = golden("tokshift", "optim_groups.json")
LR = golden("tokshift", "optim_lr.json")
ROWS = {("msca_table1", "vit", "K-400"): "tokshift_vit", ("msca_table2", "tokenshift", "K-400"): "tokshift_shift",
        ("msca_table1", "msca_kv_h1", "SSv2"): "tokshift_vit"}
RULE_ROWS = [("msca_table5", "msca_pqkv_n8", "K-400"), ("msca_tokshift_sizes", "tokshift_large_hr", "K-400")]


@pytest.mark.parametrize("key", list(ROWS), ids=lambda k: "/".join(k))
def test_every_parameter_decays_and_trains_as_in_the_authors_optimizer(key):
    case = ROWS[key]
    cfg = row_config(*key)
    model = authors_row_model(cfg, case)
    official = GROUPS["variants"][case]["params"]
    assert compare_groups(official, official_to_ours(case, model), our_groups(our_module(cfg, model))) == []


@pytest.mark.parametrize("key", RULE_ROWS, ids=lambda k: "/".join(k))
def test_other_rows_follow_the_authors_rule(key):
    rule = {(p["trainable"], p["weight_decay"], p["lr_scale"]) for v in GROUPS["variants"].values()
            for p in v["params"].values()}
    assert rule == {(True, 0.0, 1.0)}
    cfg = row_config(*key)
    model = create_model(cfg.model.name, **{**cfg.model.overrides, "embed_dim": 24, "depth": 2, "num_heads": 2,
                                            "num_classes": 7})
    assert {(p["trainable"], p["weight_decay"], p["lr_scale"]) for p in our_groups(our_module(cfg, model)).values()
            } == rule


def test_the_optimizer_is_the_authors_sgd():
    cfg = row_config("msca_table1", "vit", "K-400")
    optimizer = our_module(cfg, released_model("tokshift_vit")).build_optimizer(momentum=cfg.optim.momentum)
    theirs = GROUPS["variants"]["tokshift_vit"]["optimizer"]["defaults"]
    assert type(optimizer).__name__ == "SGD"
    assert {k: optimizer.defaults[k] for k in ("momentum", "nesterov", "dampening")} == {
        k: theirs[k] for k in ("momentum", "nesterov", "dampening")}


def test_the_lr_at_every_step_is_the_authors():
    recipe = LR["recipes"]["msca"]
    cfg = row_config("msca_table1", "vit", "K-400")
    lr, batch = paper_lr(cfg)
    assert (batch, lr) == (recipe["global_batch"], recipe["lr_at_global_batch"])
    assert (list(cfg.optim.milestones), cfg.optim.epochs) == (recipe["milestones"], recipe["epochs"])
    for record, steps in ((recipe["small"], None), (recipe["paper"], recipe["paper"]["steps"])):
        assert lr_differences(our_lrs(cfg, record["steps_per_epoch"], steps), record["lr"], lr, cosine=False) == []
