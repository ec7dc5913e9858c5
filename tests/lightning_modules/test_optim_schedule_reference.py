"""The optimisation path against its documented formulas, step by step: the "step" schedule (warm-up, milestones in
epochs, gamma per milestone passed), steps per epoch from the trainer's optimiser steps (gradient accumulation
included), the LRA "linear" (OneCycle-like) schedule, and the CAST expert pretraining's schedule and weight-decay
groups. Expected values are written from the formulas here, never computed by the code under test."""

from __future__ import annotations

import math
import types
import warnings

import pytest
import torch
from torch import nn

import lightning_modules  # noqa: F401  (repairs torchvision before anything imports it)
from lightning_modules import VideoClassifier
from lightning_modules.sequence_classifier import SequenceClassifier


class Tiny(nn.Module):
    """One weight and one bias: enough parameters for an optimizer, nothing to run."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*(lr_scheduler|optimizer)\.step\(\).*")
        yield


def stub_trainer(optimizer_steps: int, max_epochs: int, accumulate: int = 1) -> types.SimpleNamespace:
    """What Lightning reports for a run of ``max_epochs`` epochs of ``optimizer_steps / max_epochs`` optimiser steps
    each: ``estimated_stepping_batches`` counts optimiser steps (batches / accumulation), ``num_training_batches``
    the batches of one epoch."""
    return types.SimpleNamespace(estimated_stepping_batches=optimizer_steps, max_epochs=max_epochs,
                                 accumulate_grad_batches=accumulate,
                                 num_training_batches=optimizer_steps // max_epochs * accumulate)


def _lrs(module: nn.Module, trainer: types.SimpleNamespace, steps: int) -> list[list[float]]:
    """Each group's lr at each of the first ``steps`` optimiser steps (the scheduler stepped by hand)."""
    module._trainer = trainer
    setup = module.configure_optimizers()
    optimizer, scheduler = setup["optimizer"], setup["lr_scheduler"]["scheduler"]
    assert setup["lr_scheduler"]["interval"] == "step"
    out = []
    for _ in range(steps):
        out.append([g["lr"] for g in optimizer.param_groups])
        optimizer.step()
        scheduler.step()
    return out


def test_the_step_schedule_warms_up_then_divides_by_1_over_gamma_at_each_milestone_epoch():
    """6 epochs of 4 steps, warm-up 0.5 epoch (2 steps) from 1/100 of the peak, milestones at epochs 2 and 4, gamma
    0.1: epochs 0-1 at the peak (after the ramp), 2-3 at lr/10, 4-5 at lr/100 (the papers' step schedule)."""
    lr = 0.1
    module = VideoClassifier(Tiny(), 3, optimizer="momentum", lr=lr, weight_decay=0.0, epochs=6, schedule="step",
                             milestones=(2, 4), gamma=0.1, warmup_epochs=0.5, warmup_start=0.01)
    lrs = [step[0] for step in _lrs(module, stub_trainer(24, 6), 24)]
    expected = [0.01 * lr, (0.01 + 0.99 * 1 / 2) * lr] + [lr] * 6 + [0.1 * lr] * 8 + [0.01 * lr] * 8
    assert lrs == pytest.approx(expected, rel=1e-12)


def test_steps_per_epoch_are_optimiser_steps_so_accumulation_moves_the_milestone():
    """With 2 batches accumulated per step, an epoch of 8 batches is 4 optimiser steps: the milestone at epoch 1
    falls at step 4, and a 1-epoch warm-up lasts 4 steps, not 8."""
    lr = 1.0
    step = VideoClassifier(Tiny(), 3, optimizer="momentum", lr=lr, weight_decay=0.0, epochs=3, schedule="step",
                           milestones=(1,), gamma=0.5)
    assert [s[0] for s in _lrs(step, stub_trainer(12, 3, accumulate=2), 12)] == pytest.approx([1.0] * 4 + [0.5] * 8)
    warm = VideoClassifier(Tiny(), 3, optimizer="momentum", lr=lr, weight_decay=0.0, epochs=3, schedule="step",
                           milestones=(3,), warmup_epochs=1, warmup_start=0.0)
    assert [s[0] for s in _lrs(warm, stub_trainer(12, 3, accumulate=2), 6)] == pytest.approx(
        [0.0, 0.25, 0.5, 0.75, 1.0, 1.0])


def test_the_cosine_after_warm_up_is_exact_at_every_step_and_reaches_its_floor_only_after_the_last():
    """2 epochs of 4 steps, 1 warm-up epoch from 0, floor 0.1: ramp 0, 1/4, 2/4, 3/4 of the peak, then
    0.1 + 0.9 * (1 + cos(pi * i / 4)) / 2 for i = 0..3 (the floor would be step 8, one past the last)."""
    module = VideoClassifier(Tiny(), 3, lr=1.0, weight_decay=0.0, epochs=2, schedule="cosine", warmup_epochs=1,
                             warmup_start=0.0, min_lr_ratio=0.1)
    lrs = [s[0] for s in _lrs(module, stub_trainer(8, 2), 8)]
    cos = [0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * i / 4)) for i in range(4)]
    assert lrs == pytest.approx([0.0, 0.25, 0.5, 0.75] + cos, rel=1e-6, abs=1e-9)
    module._trainer = stub_trainer(8, 2)
    factor = module.configure_optimizers()["lr_scheduler"]["scheduler"].lr_lambdas[0]
    assert factor(8) == pytest.approx(0.1) and factor(100) == pytest.approx(0.1)  # held at the floor


def test_a_warm_up_in_steps_lasts_those_steps_whatever_the_epochs():
    """LRA's configurations state the warm-up in steps (ListOps: 1000 of 5000, OneCycleLR's pct_start = 1000 / 5000).
    Two epochs of 3000 batches cut at 5000 steps, as ListOps' paper-scale run: lr / 25 at step 0, the peak at step
    1000, then linear to lr / 25e4 at step 4999 (an epoch-based 1/3 would have given 833 steps: 5000 / 2 / 3). The
    video schedules take it too: a step schedule of 12 steps with a 3-step warm-up from 1/100."""
    lra = SequenceClassifier(Tiny(), 3, epochs=2, warmup_steps=1000)
    lra._trainer = stub_trainer(5000, 2)
    factor = lra.configure_optimizers()["lr_scheduler"]["scheduler"].lr_lambdas[0]
    assert factor(0) == pytest.approx(1 / 25) and factor(500) == pytest.approx(1 / 25 + (1 - 1 / 25) / 2)
    assert factor(999) < 1.0 and factor(1000) == pytest.approx(1.0)
    assert factor(3000) == pytest.approx(1 + (1 / 25e4 - 1) * 2000 / 3999) and factor(4999) == pytest.approx(1 / 25e4)

    step = VideoClassifier(Tiny(), 3, lr=1.0, weight_decay=0.0, epochs=3, schedule="step", milestones=(2,),
                           warmup_steps=3)
    lrs = [s[0] for s in _lrs(step, stub_trainer(12, 3), 12)]
    assert lrs == pytest.approx([0.01, 0.01 + 0.99 / 3, 0.01 + 0.99 * 2 / 3] + [1.0] * 5 + [0.1] * 4)
    with pytest.raises(ValueError, match="warmup_steps=3 with warmup_epochs=1"):
        VideoClassifier(Tiny(), 3, warmup_epochs=1, warmup_steps=3)


def test_layer_decay_peak_lrs_fall_by_the_decay_per_layer_below_the_top():
    """BEiT's rule on timm's own ViT: timm's layer groups are 0 (embeddings), 1..depth (the blocks) and depth + 1
    (the head); a group's lr is lr x d^(top - layer). depth 2, d = 0.5: 1/8, 1/4, 1/2, 1 of the peak, at step 0 of
    a schedule without warm-up; each group named by its layer for its lr curve."""
    from timm.models.vision_transformer import VisionTransformer

    torch.manual_seed(0)
    model = VisionTransformer(img_size=8, patch_size=4, embed_dim=8, depth=2, num_heads=2, num_classes=3)
    module = VideoClassifier(model, 3, lr=1e-3, weight_decay=0.05, epochs=2, schedule="step", milestones=(5,),
                             layer_decay=0.5)
    module._trainer = stub_trainer(4, 2)
    optimizer = module.configure_optimizers()["optimizer"]
    names = {id(p): n for n, p in model.named_parameters()}
    lr_of = {names[id(p)]: g["lr"] for g in optimizer.param_groups for p in g["params"]}
    expected = {"pos_embed": 1e-3 / 8, "patch_embed.proj.weight": 1e-3 / 8, "blocks.0.attn.qkv.weight": 1e-3 / 4,
                "blocks.1.mlp.fc2.bias": 1e-3 / 2, "head.weight": 1e-3, "head.bias": 1e-3}
    assert {n: lr_of[n] for n in expected} == pytest.approx(expected, rel=1e-12)
    decay_of = {names[id(p)]: g["weight_decay"] for g in optimizer.param_groups for p in g["params"]}
    assert (decay_of["head.weight"], decay_of["head.bias"], decay_of["pos_embed"]) == (0.05, 0.0, 0.0)
    group_of = {names[id(p)]: g["name"] for g in optimizer.param_groups for p in g["params"]}
    assert [group_of[n] for n in ("pos_embed", "blocks.0.attn.qkv.weight", "blocks.1.mlp.fc2.bias", "head.weight")] == [
        "layer0_no_decay", "layer1_decay", "layer2_no_decay", "layer3_decay"]


def test_the_sgd_momentum_is_the_configured_one_not_timms_default():
    """``momentum`` reaches timm's SGD: 0.5 configured is 0.5 used (timm would otherwise apply its 0.9)."""
    module = VideoClassifier(Tiny(), 3, optimizer="momentum", momentum=0.5, lr=0.1, weight_decay=0.0, epochs=2)
    module._trainer = stub_trainer(4, 2)
    optimizer = module.configure_optimizers()["optimizer"]
    assert type(optimizer) is torch.optim.SGD and optimizer.defaults["momentum"] == 0.5


def test_the_linear_schedule_is_one_cycle_with_linear_annealing():
    """Nystromformer's LRA schedule: warm-up from lr/25 to lr over warmup_epochs, then linear decay to lr/25e4 at
    the last step. 4 epochs of 5 steps, 1 warm-up epoch: steps 0-4 ramp 1/25 + (24/25) * s/5, steps 5-19 fall
    linearly over 14 steps to 1/25e4."""
    lr = 1e-4
    module = SequenceClassifier(Tiny(), 3, lr=lr, warmup_epochs=1)
    lrs = [s[0] for s in _lrs(module, stub_trainer(20, 4), 20)]
    ramp = [1 / 25 + 24 / 25 * s / 5 for s in range(5)]
    fall = [1 + (1 / 25e4 - 1) * i / 14 for i in range(15)]
    assert lrs == pytest.approx([lr * f for f in ramp + fall], rel=1e-9)
    assert lrs[4] < lr and lrs[5] == pytest.approx(lr) and lrs[-1] == pytest.approx(lr / 25e4)


def test_the_linear_schedule_spreads_its_warm_up_over_the_trainers_epochs():
    """The warm-up is warmup_epochs x (optimiser steps / epochs): 0.5 of an epoch of 8 steps is 4 steps."""
    module = SequenceClassifier(Tiny(), 3, lr=1.0, warmup_epochs=0.5)
    lrs = [s[0] for s in _lrs(module, stub_trainer(16, 2, accumulate=2), 6)]
    assert lrs == pytest.approx([1 / 25 + 24 / 25 * s / 4 for s in range(4)] + [1.0, 1 + (1 / 25e4 - 1) / 11])


def _expert_system(kind: str):
    from lightning_modules.expert_pretraining import FramePretraining, MaskedVideoPretraining
    from models.cast import build_expert

    torch.manual_seed(0)
    if kind == "frame":
        return FramePretraining(build_expert("clip", "tiny", num_frames=2), num_classes=4, lr=1e-3,
                                weight_decay=0.05, warmup_fraction=0.1)
    return MaskedVideoPretraining(build_expert("videomae", "tiny"), lr=1e-3, weight_decay=0.05, warmup_fraction=0.1)


def test_expert_pretraining_warms_up_linearly_to_the_peak_then_cosines_to_zero():
    """20 steps, warm-up 10% (2 steps): (s + 1) / 2 of the peak, then 0.5 (1 + cos(pi (s - 2) / 18))."""
    system = _expert_system("frame")
    lrs = [s[0] for s in _lrs(system, stub_trainer(20, 2), 20)]
    expected = [0.5, 1.0] + [0.5 * (1 + math.cos(math.pi * (s - 2) / 18)) for s in range(2, 20)]
    assert lrs == pytest.approx([1e-3 * f for f in expected], rel=1e-12, abs=1e-15)


def test_expert_pretraining_rounds_its_warm_up_to_the_nearest_step():
    """10% of 16 steps is 1.6, i.e. 2 warm-up steps: step 0 at 1/2 of the peak, step 1 at the peak."""
    system = _expert_system("mae")
    lrs = [s[0] for s in _lrs(system, stub_trainer(16, 1), 3)]
    assert lrs == pytest.approx([0.5e-3, 1e-3, 1e-3], rel=1e-12)


@pytest.mark.parametrize("kind", ["frame", "mae"])
def test_expert_pretraining_spares_biases_norms_position_tables_and_tokens_from_weight_decay(kind):
    """VideoMAE's rule: matrices decay at 0.05; biases, norm weights, the position table, the class and mask tokens
    do not. AdamW with VideoMAE's pretraining betas (0.9, 0.95)."""
    system = _expert_system(kind)
    system._trainer = stub_trainer(10, 1)
    optimizer = system.configure_optimizers()["optimizer"]
    assert type(optimizer) is torch.optim.AdamW and optimizer.defaults["betas"] == (0.9, 0.95)
    names = {id(p): n for n, p in system.named_parameters()}
    decay_of = {names[id(p)]: g["weight_decay"] for g in optimizer.param_groups for p in g["params"]}
    assert len(decay_of) == len(names)
    spared = {"frame": ["expert.cls_token", "expert.pos_embed", "expert.blocks.0.norm1.weight",
                        "expert.blocks.0.attn.qkv.bias", "head.bias"],
              "mae": ["mask_token", "expert.norm.weight", "decoder.0.attn.qkv.bias", "decoder_head.bias"]}[kind]
    decayed = {"frame": ["expert.blocks.0.attn.qkv.weight", "head.weight"],
               "mae": ["encoder_to_decoder.weight", "decoder.0.mlp.fc1.weight", "decoder_head.weight"]}[kind]
    assert {n: decay_of[n] for n in spared} == dict.fromkeys(spared, 0.0)
    assert {n: decay_of[n] for n in decayed} == dict.fromkeys(decayed, 0.05)


def test_a_paper_presets_global_batch_counts_every_node_and_sets_the_lr_for_fewer():
    """A paper preset pinned to 2 nodes of 2 devices, 21 clips each, 10 accumulated steps states a global batch of
    21 x 2 x 2 x 10 = 840; the same preset on one node (world size 2) trains 420 clips a step at half the lr
    (linear) or 1/sqrt(2) of it (sqrt)."""
    import dataclasses

    from experiments.harness.plan import resolve_runs
    from experiments.harness.provenance import batch_and_lr, with_paper_batch

    paper = resolve_runs("msca_table1", scale="paper", rows=["msca_kv_h1"])[0]
    assert paper.data.batch_size == 21 and paper.trainer.accumulate_grad_batches == 10
    trainer = dataclasses.replace(paper.trainer, devices=2, num_nodes=2, reference_batch=None, lr_scaling="linear")
    cfg = with_paper_batch(dataclasses.replace(paper, trainer=trainer))
    assert cfg.trainer.reference_batch == 840
    lr = cfg.optim.lr
    assert batch_and_lr(cfg, world_size=4)["lr"] == lr
    one_node = batch_and_lr(cfg, world_size=2)
    assert (one_node["global_batch"], one_node["lr"]) == (420, pytest.approx(lr / 2, rel=1e-12))
    sqrt = dataclasses.replace(cfg, trainer=dataclasses.replace(cfg.trainer, lr_scaling="sqrt"))
    assert batch_and_lr(sqrt, world_size=2)["lr"] == pytest.approx(lr / math.sqrt(2), rel=1e-12)
