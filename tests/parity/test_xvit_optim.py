"""X-ViT's optimizer and lr, ours against the authors' code (golden files of ``python -m tools.pipeline_golden.optim
xvit``: their ``construct_optimizer`` and ``get_lr_at_epoch`` of 1adrianb/video-transformers).

Parameter groups: the authors' optimizer puts the parameters of every module whose name holds ``head`` or ``new_fc``
in classifier groups, whose biases take ``BN.WEIGHT_DECAY`` (0) and weights the solver's decay, and every other
parameter (LayerNorms and biases included) in the decayed group; the train loop's ``set_lr`` gives every group the
same lr. Ours (``weight_decay_exempt="head_biases"``) is compared parameter by parameter through our released
converter. ``new_fc`` (the authors' unused classifier: their ``VitHead`` classifies) exists on their side only.
The lr: Nesterov SGD, 5 warm-up epochs onto a cosine over every epoch, per step; our cosine is float32 (1e-7 of
the peak), the rest equal to 1e-12."""

from __future__ import annotations

import pytest

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

GROUPS = golden("xvit", "optim_groups.json")
LR = golden("xvit", "optim_lr.json")
UNUSED = {"new_fc.weight", "new_fc.bias"}
ROWS = {("xvit_kinetics600", "xvit", "K-600"): "xvit_k600", ("xvit_figure1", "xvit", "1x3 views"): "xvit_k600",
        ("xvit_table2", "xvit_attention", "SSv2"): "xvit_ssv2"}
RECIPES = {("xvit_table2", "xvit_attention", "SSv2"): "ssv2", ("xvit_kinetics600", "xvit", "K-600"): "k600",
           ("xvit_figure1", "xvit", "1x3 views"): "k400"}


@pytest.mark.parametrize("key", list(ROWS), ids=lambda k: "/".join(k))
def test_every_parameter_decays_and_trains_as_in_the_authors_optimizer(key):
    case = ROWS[key]
    cfg = row_config(*key)
    model = authors_row_model(cfg, case)
    official = GROUPS["variants"][case]["params"]
    assert cfg.optim.weight_decay == GROUPS["variants"][case]["solver"]["WEIGHT_DECAY"]
    assert compare_groups(official, official_to_ours(case, model), our_groups(our_module(cfg, model)), UNUSED) == []


def test_the_optimizer_is_the_authors_nesterov_sgd():
    cfg = row_config("xvit_table2", "xvit_attention", "SSv2")
    optimizer = our_module(cfg, released_model("xvit_ssv2")).build_optimizer()
    theirs = GROUPS["variants"]["xvit_ssv2"]["optimizer"]["defaults"]
    assert type(optimizer).__name__ == "SGD"
    assert {k: optimizer.defaults[k] for k in ("momentum", "nesterov", "dampening")} == {
        k: theirs[k] for k in ("momentum", "nesterov", "dampening")}


@pytest.mark.parametrize("key", list(RECIPES), ids=lambda k: "/".join(k))
def test_the_lr_at_every_step_is_the_authors(key):
    recipe = LR["recipes"][RECIPES[key]]
    cfg = row_config(*key)
    lr, batch = paper_lr(cfg)
    assert (batch, lr) == (recipe["global_batch"], recipe["lr_at_global_batch"])
    for record, steps in ((recipe["small"], None), (recipe["paper"], recipe["paper"]["steps"])):
        ours = our_lrs(cfg, record["steps_per_epoch"], steps)
        assert lr_differences(ours, record["lr"], lr, cosine=True) == []
