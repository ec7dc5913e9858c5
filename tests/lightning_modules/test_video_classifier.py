"""VideoClassifier: verb/noun/action metrics on hand-made scores, multi-view averaging, mixup/cutmix through timm
with the cut box shared by all frames, the input key, and the data-wait monitor on a real (tiny) Trainer run."""

from __future__ import annotations

import math
import time

import lightning as L
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

import lightning_modules  # noqa: F401  (repairs torchvision before anything imports it)
from lightning_modules import DataWaitMonitor, VideoClassifier, num_outputs

VN = {"verb": 3, "noun": 4}


class Passthrough(nn.Module):
    """A "model" whose input already is its logits: (B, K) -> (B, K); (B, C, T, H, W) -> per-clip means."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.k = k
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * (x if x.ndim == 2 else x.flatten(1)[:, : self.k])


def _logits(verb_idx, noun_idx, v=3, n=4, high=5.0) -> torch.Tensor:
    out = torch.zeros(len(verb_idx), v + n)
    out[torch.arange(len(verb_idx)), torch.tensor(verb_idx)] = high
    out[torch.arange(len(noun_idx)), v + torch.tensor(noun_idx)] = high
    return out


def test_num_outputs_and_bad_num_classes():
    assert num_outputs(7) == 7 and num_outputs(VN) == 7
    for bad in ({"noun": 4, "verb": 3}, {"verb": 3}, {"verb": 1, "noun": 4}, 1):
        with pytest.raises(ValueError):
            VideoClassifier(Passthrough(7), bad)


def test_single_label_metric_names_unchanged():
    module = VideoClassifier(Passthrough(8), 8)
    assert sorted(module.val_metrics.keys()) == ["val/top1", "val/top5"]
    assert sorted(VideoClassifier(Passthrough(5), 5).test_metrics.keys()) == ["test/top1"]


def test_verb_noun_action_metrics_on_hand_made_logits():
    module = VideoClassifier(Passthrough(7), VN)
    assert sorted(module.val_metrics.keys()) == ["val/action_top1", "val/action_top5", "val/noun_top1",
                                                 "val/verb_top1"]  # 3 verbs, 4 nouns: no verb/noun top-5
    label = torch.tensor([[0, 1], [1, 2], [2, 3], [0, 0]])
    # right/right, right/wrong, wrong/right, wrong/wrong
    logits = _logits([0, 1, 1, 2], [1, 0, 3, 1])
    module.validation_step({"video": logits, "label": label}, 0)
    got = {k: v.item() for k, v in module.val_metrics.compute().items()}
    assert got["val/verb_top1"] == pytest.approx(0.5)
    assert got["val/noun_top1"] == pytest.approx(0.5)
    assert got["val/action_top1"] == pytest.approx(0.25)
    # Action top-5 by p(verb) * p(noun): each wrong head has its true class second-best, so the true pair is
    # among the 4 best pairs of every sample.
    logits = _logits([0, 1, 1, 2], [1, 0, 3, 1])
    logits[2, 2], logits[3, 0] = 4.0, 4.0  # true verbs of rows 2 (2) and 3 (0) second-best
    logits[1, 3 + 2], logits[3, 3 + 0] = 4.0, 4.0  # true nouns of rows 1 (2) and 3 (0) second-best
    module.val_metrics.reset()
    module.validation_step({"video": logits, "label": label}, 0)
    assert module.val_metrics.compute()["val/action_top5"].item() == pytest.approx(1.0)


def test_verb_noun_top5_where_more_than_five_classes():
    module = VideoClassifier(Passthrough(13), {"verb": 6, "noun": 7})
    assert {"test/verb_top5", "test/noun_top5", "test/action_top5"} <= set(module.test_metrics.keys())


def test_multi_view_test_averages_probabilities_per_head():
    module = VideoClassifier(Passthrough(7), VN)
    # One video, two views. Verb: view 1 sure of 0, view 2 mildly prefers 1 -> mean picks 0. A max over views
    # or a single view would disagree with the mean somewhere.
    view1, view2 = _logits([0], [2], high=8.0), _logits([1], [2], high=1.0)
    clips = torch.stack([view1, view2], 1).reshape(1, 2, 7, 1, 1, 1)  # (B, V, C, T, H, W)
    module.test_step({"video": clips, "label": torch.tensor([[0, 2]])}, 0)
    got = module.test_metrics.compute()
    assert got["test/verb_top1"].item() == 1.0 and got["test/action_top1"].item() == 1.0
    module.test_metrics.reset()
    module.test_step({"video": clips, "label": torch.tensor([[1, 2]])}, 0)
    assert module.test_metrics.compute()["test/verb_top1"].item() == 0.0


@pytest.mark.parametrize("view_average, predicted", [("probabilities", 0), ("logits", 1)])
def test_test_views_average_probabilities_or_logits(view_average, predicted):
    """Two views of one video: mean probabilities (0.46, 0.38, 0.16) pick class 0, mean logits (0, 0.5, 0) pick
    class 1 (the official X-ViT and TokShift/MSCA test loops average logits)."""
    views = torch.tensor([[3.0, 0.0, 0.0], [-3.0, 1.0, 0.0]])
    assert views.softmax(-1).mean(0).argmax() == 0 and views.mean(0).argmax() == 1
    module = VideoClassifier(Passthrough(3), 3, view_average=view_average)
    clips = views.reshape(1, 2, 3, 1, 1, 1)  # (B, V, C, T, H, W)
    for label in (0, 1):
        module.test_metrics.reset()
        module.test_step({"video": clips, "label": torch.tensor([label])}, 0)
        assert module.test_metrics.compute()["test/top1"].item() == float(label == predicted)
    with pytest.raises(ValueError, match="view_average must be one of"):
        VideoClassifier(Passthrough(3), 3, view_average="max")


def test_verb_noun_loss_is_the_sum_of_the_heads():
    module = VideoClassifier(Passthrough(7), VN, label_smoothing=0.1)
    logits = torch.randn(6, 7)
    label = torch.stack([torch.randint(0, 3, (6,)), torch.randint(0, 4, (6,))], 1)
    loss = module.training_step({"video": logits, "label": label}, 0)
    expected = (F.cross_entropy(logits[:, :3], label[:, 0], label_smoothing=0.1)
                + F.cross_entropy(logits[:, 3:], label[:, 1], label_smoothing=0.1))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    with pytest.raises(ValueError, match="verb"):
        module.training_step({"video": logits, "label": label[:, 0]}, 0)


def _constant_clips(b=4, c=3, t=4, h=16, w=16) -> torch.Tensor:
    return torch.arange(b, dtype=torch.float32)[:, None, None, None, None].expand(b, c, t, h, w).clone()


def test_cutmix_box_is_the_same_on_every_frame_and_channel():
    torch.manual_seed(0)
    module = VideoClassifier(Passthrough(5), 5, cutmix_alpha=1.0, label_smoothing=0.0)
    label = torch.tensor([0, 1, 2, 3])
    seen_box = False
    for seed in range(20):
        np.random.seed(seed)  # timm draws lambda and the box from numpy's global generator
        x = _constant_clips()
        mixed, soft = module.mix(x, label)
        assert mixed.shape == (4, 3, 4, 16, 16) and soft.shape == (4, 5)
        for b in range(4):
            box = mixed[b] == 3 - b  # pixels taken from the partner (the batch is mixed with its reverse)
            assert ((mixed[b] == b) | box).all()
            assert (box == box[0, 0]).all(), "the cut box must be the same for every channel and frame"
            rows, cols = box[0, 0].any(1).nonzero(), box[0, 0].any(0).nonzero()
            if len(rows):  # a rectangle
                seen_box = True
                r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
                assert box[0, 0, r0:r1, c0:c1].all() and box[0, 0].sum() == (r1 - r0) * (c1 - c0)
            # Soft target: lambda = the share of the clip's own pixels.
            own = 1 - box[0, 0].float().mean()
            assert soft[b, b].item() == pytest.approx(own.item(), abs=1e-6)
            assert soft[b, 3 - b].item() == pytest.approx(1 - own.item(), abs=1e-6)
    assert seen_box


def test_mixup_of_verb_noun_labels_mixes_both_heads():
    torch.manual_seed(0)
    module = VideoClassifier(Passthrough(7), VN, mixup_alpha=0.8, label_smoothing=0.1)
    label = torch.tensor([[0, 1], [1, 2], [2, 3], [0, 0]])
    np.random.seed(1)
    x = _constant_clips()
    mixed, soft = module.mix(x, label)
    lam = mixed[0, 0, 0, 0, 0].item() / -3 + 1  # row 0: lam * 0 + (1 - lam) * 3
    assert 0 < lam < 1
    verb, noun = module._marginals(soft)
    assert torch.allclose(verb.sum(1), torch.ones(4)) and torch.allclose(noun.sum(1), torch.ones(4))
    # Row 0 = lam * (verb 0, noun 1) + (1 - lam) * row 3's (verb 0, noun 0), smoothed by 0.1 over each head.
    assert verb[0, 0].item() == pytest.approx(1 - 0.1 + 0.1 / 3, abs=1e-5)
    assert noun[0, 1].item() == pytest.approx(lam * (1 - 0.1) + 0.1 / 4, abs=1e-5)
    assert noun[0, 0].item() == pytest.approx((1 - lam) * (1 - 0.1) + 0.1 / 4, abs=1e-5)
    odd = {"video": torch.randn(5, 7, 1, 1, 1), "label": torch.cat([label, label[:1]])}
    loss = module.training_step(odd, 0)
    assert math.isfinite(loss.item())  # an odd batch loses its last clip instead of failing


def test_a_batch_of_one_clip_under_mixup_is_its_own_reverse_and_trains_unmixed():
    """A batch left with one clip (its others unreadable) trains on that clip with its smoothed target; it
    trained on nothing before (timm pairs clips; the odd one out was dropped)."""
    module = VideoClassifier(Passthrough(7), VN, mixup_alpha=0.8, label_smoothing=0.1)
    x, label = torch.randn(1, 7, 1, 1, 1), torch.tensor([[2, 1]])
    mixed, soft = module.mix(x, label)
    assert torch.equal(mixed, x)
    verb, noun = module._marginals(soft)
    assert verb[0, 2].item() == pytest.approx(1 - 0.1 + 0.1 / 3, abs=1e-6)
    assert noun[0, 1].item() == pytest.approx(1 - 0.1 + 0.1 / 4, abs=1e-6)
    loss = module.training_step({"video": x, "label": label}, 0)
    assert math.isfinite(loss.item()) and loss.item() > 0


def test_input_key_selects_the_batch_entry():
    class TokenClassifier(VideoClassifier):
        input_key = "input"

    module = TokenClassifier(Passthrough(5), 5)
    loss = module.training_step({"input": torch.randn(4, 5), "label": torch.tensor([0, 1, 2, 3])}, 0)
    assert math.isfinite(loss.item())
    module.validation_step({"input": torch.randn(4, 5), "label": torch.tensor([0, 1, 2, 3])}, 0)
    with pytest.raises(KeyError):
        module.training_step({"video": torch.randn(4, 5), "label": torch.tensor([0, 1, 2, 3])}, 0)


class _Clips(Dataset):
    """Random verb-noun clips; ``delay`` seconds per item imitate slow decoding."""

    def __init__(self, n: int, delay: float) -> None:
        self.n, self.delay = n, delay

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        time.sleep(self.delay)
        g = torch.Generator().manual_seed(i)
        return {"video": torch.randn(3, 2, 4, 4, generator=g),
                "label": torch.tensor([i % 3, i % 4])}


class _TinyNet(nn.Module):
    def __init__(self, k: int) -> None:
        super().__init__()
        self.head = nn.Linear(3 * 2 * 4 * 4, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x.flatten(1))


def _fit(delay: float) -> tuple[DataWaitMonitor, dict[str, float]]:
    module = VideoClassifier(_TinyNet(7), VN, lr=1e-2, epochs=1, schedule="cosine", cutmix_alpha=1.0,
                             mixup_alpha=0.8)
    monitor = DataWaitMonitor()
    trainer = L.Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, callbacks=[monitor],
                        profiler=monitor.fetch_timer, num_sanity_val_steps=0)
    loader = DataLoader(_Clips(24, delay), batch_size=4)
    trainer.fit(module, loader, DataLoader(_Clips(8, 0.0), batch_size=4))
    return monitor, {k: float(v) for k, v in trainer.callback_metrics.items()}


def test_data_wait_monitor_and_verb_noun_training_in_a_trainer():
    delay, batches, batch_size = 0.02, 6, 4
    slow, metrics = _fit(delay)
    assert slow.steps == batches and slow.summary()["train_steps"] == batches
    # Every batch sleeps batch_size * delay inside the DataLoader: all of it must be counted as waiting.
    assert slow.wait_s >= batches * batch_size * delay
    assert 0 < slow.wait_s < slow.step_s and 0 < slow.data_wait_fraction < 1
    assert metrics["perf/data_wait_fraction"] == pytest.approx(slow.data_wait_fraction)
    assert {"val/verb_top1", "val/noun_top1", "val/action_top1", "val/action_top5"} <= set(metrics)
    fast, _ = _fit(0.0)
    assert fast.steps == batches
    assert fast.wait_s < slow.wait_s - 0.5 * batches * batch_size * delay


@pytest.mark.parametrize("name,expected,nesterov", [("adamw", torch.optim.AdamW, None),
                                                     ("momentum", torch.optim.SGD, False)])
def test_the_optimizer_is_the_one_the_config_names(monkeypatch, name, expected, nesterov):
    """MSCA trains with plain SGD + momentum 0.9 (timm's "momentum"; its "sgd" would be Nesterov)."""
    module = VideoClassifier(Passthrough(3), 3, optimizer=name, momentum=0.9, lr=0.1, weight_decay=0.0, epochs=2)
    monkeypatch.setattr(VideoClassifier, "trainer", type("T", (), {"estimated_stepping_batches": 10})(),
                        raising=False)
    optimizer = module.configure_optimizers()["optimizer"]
    assert type(optimizer) is expected
    if nesterov is not None:
        assert optimizer.defaults["momentum"] == 0.9 and optimizer.defaults["nesterov"] is nesterov


def test_layer_decay_scales_each_layer_groups_lr_through_the_schedule(monkeypatch):
    """CAST's layer-wise lr decay (official ``get_num_layer_for_vit``): block i of L (its adapters and B-CAST
    module i alike) at lr x d^(L - i), the heads and last LayerNorms at the full lr, frozen weights absent; the
    schedule keeps those ratios at every step."""
    from models import create_model

    torch.manual_seed(0)
    model = create_model("cast_tiny", num_classes={"verb": 3, "noun": 4})  # 4 blocks
    module = VideoClassifier(model, VN, lr=1e-3, weight_decay=0.05, epochs=2, schedule="cosine", warmup_epochs=1,
                             layer_decay=0.75)
    monkeypatch.setattr(VideoClassifier, "trainer", type("T", (), {"estimated_stepping_batches": 10})(),
                        raising=False)
    setup = module.configure_optimizers()
    optimizer, scheduler = setup["optimizer"], setup["lr_scheduler"]["scheduler"]
    expected = {"spatial.blocks.0.attn_adapter.fc1.weight": 0.75 ** 4, "exchange.0.up_s.weight": 0.75 ** 4,
                "temporal.blocks.3.mlp_adapter.fc2.bias": 0.75, "exchange.3.down_t.weight": 0.75,
                "spatial.norm.weight": 1.0, "head_temporal.weight": 1.0}
    names = {id(p): n for n, p in model.named_parameters()}
    lr_of = {names[id(p)]: g["initial_lr"] for g in optimizer.param_groups for p in g["params"]}  # peak lr
    assert {n: lr_of[n] / 1e-3 for n in expected} == pytest.approx(expected)
    assert not any(n.endswith("attn.qkv.weight") for n in lr_of)  # the frozen experts' weights
    # each group named for its lr curve (lr/<name>): layer 5 (heads, last norms) at the peak, 0.75^(5 - i) below
    group_of = {names[id(p)]: g for g in optimizer.param_groups for p in g["params"]}
    for name, layer in (("spatial.blocks.0.attn_adapter.fc1.weight", 1), ("head_temporal.weight", 5)):
        assert group_of[name]["name"] == f"layer{layer}_decay"
        assert group_of[name]["initial_lr"] == pytest.approx(1e-3 * 0.75 ** (5 - layer))
    assert group_of["head_temporal.bias"]["name"] == "layer5_no_decay"
    assert len({g["name"] for g in optimizer.param_groups}) == len(optimizer.param_groups)
    for _ in range(4):
        optimizer.step()  # no gradients: moves nothing, keeps the step order torch expects
        scheduler.step()
        ratio = {n: g["lr"] / g["initial_lr"] for g in optimizer.param_groups for n in [names[id(g["params"][0])]]}
        assert len(set(round(r, 12) for r in ratio.values())) == 1  # one schedule factor for every group


def _official_cosine_scheduler(base: float, final: float, epochs: int, steps_per_epoch: int, warmup_epochs: int,
                               start_warmup_value: float = 0.0) -> list[float]:
    """VideoMAE's / CAST's ``utils.cosine_scheduler``, written out: linspace warm-up, then cosine to ``final``."""
    warmup = warmup_epochs * steps_per_epoch
    ramp = np.linspace(start_warmup_value, base, warmup).tolist() if warmup else []
    rest = epochs * steps_per_epoch - warmup
    return ramp + [final + 0.5 * (base - final) * (1 + math.cos(math.pi * i / rest)) for i in range(rest)]


def _lr_per_step(module: VideoClassifier, monkeypatch, steps: int) -> list[float]:
    """The lr of each of ``steps`` optimiser steps under the module's own schedule, ``steps`` being the whole run."""
    monkeypatch.setattr(VideoClassifier, "trainer", type("T", (), {"estimated_stepping_batches": steps})(),
                        raising=False)
    setup = module.configure_optimizers()
    optimizer, scheduler = setup["optimizer"], setup["lr_scheduler"]["scheduler"]
    lrs = []
    for _ in range(steps):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


@pytest.mark.parametrize("warmup_start,min_lr_ratio", [(0.01, 0.0), (0.0, 1e-3)])
def test_the_cosine_schedule_starts_and_ends_where_the_config_says(monkeypatch, warmup_start, min_lr_ratio):
    """A step's lr: warm-up linear from ``warmup_start`` x lr, then cosine down to ``min_lr_ratio`` x lr. CAST's
    official schedule (warm-up from 0, min_lr = lr / 1000) agrees after its warm-up, whose linspace reaches the
    peak one step earlier; the first step's lr is exactly the configured start."""
    lr, epochs, per_epoch = 1e-3, 6, 10
    module = VideoClassifier(Passthrough(3), 3, lr=lr, weight_decay=0.0, epochs=epochs, schedule="cosine",
                             warmup_epochs=1, warmup_start=warmup_start, min_lr_ratio=min_lr_ratio)
    lrs = _lr_per_step(module, monkeypatch, epochs * per_epoch)
    assert lrs[0] == pytest.approx(warmup_start * lr, abs=1e-15)
    assert lrs[per_epoch - 1] == pytest.approx((warmup_start + (1 - warmup_start) * 0.9) * lr)
    official = _official_cosine_scheduler(lr, min_lr_ratio * lr, epochs, per_epoch, 1, warmup_start * lr)
    assert lrs[per_epoch:] == pytest.approx(official[per_epoch:], rel=1e-6, abs=1e-10)  # the cosine is float32
    assert lrs[-1] > min_lr_ratio * lr and lrs[-1] == pytest.approx(min_lr_ratio * lr + 0.5 * lr * (1 - min_lr_ratio)
                                                                  * (1 + math.cos(math.pi * 49 / 50)), abs=1e-10)


def _pyslowfast_lr_at_epoch(base: float, warmup_start_lr: float, warmup_epochs: float, max_epoch: int,
                            epoch: float) -> float:
    """PySlowFast's ``utils/lr_policy.py``, ``get_lr_at_epoch`` with ``lr_func_cosine`` (COSINE_END_LR 0), as it was
    before COSINE_AFTER_WARMUP, written out: a cosine over every epoch, and a linear warm-up onto its value at
    WARMUP_EPOCHS."""
    def cosine(e: float) -> float:
        return 0.0 + (base - 0.0) * (math.cos(math.pi * e / max_epoch) + 1.0) * 0.5

    if epoch < warmup_epochs:
        return epoch * (cosine(warmup_epochs) - warmup_start_lr) / warmup_epochs + warmup_start_lr
    return cosine(epoch)


def test_a_cosine_over_all_epochs_is_the_official_x_vit_schedule(monkeypatch):
    """``cosine_over="all"`` gives, step by step, the lr of the official X-ViT training loop on SSv2 (BASE_LR 0.03,
    WARMUP_START_LR 0.003, 5 warm-up epochs of 35; ``get_epoch_lr(cur_epoch + cur_iter / data_size)``): the warm-up
    ends at 0.95 of the peak, which no step reaches."""
    lr, epochs, per_epoch = 0.03, 35, 4
    module = VideoClassifier(Passthrough(3), 3, optimizer="sgd", lr=lr, weight_decay=0.0, epochs=epochs,
                             schedule="cosine", warmup_epochs=5, warmup_start=0.1, cosine_over="all")
    lrs = _lr_per_step(module, monkeypatch, epochs * per_epoch)
    official = [_pyslowfast_lr_at_epoch(lr, 0.003, 5, epochs, step / per_epoch) for step in range(epochs * per_epoch)]
    assert lrs == pytest.approx(official, rel=1e-6, abs=1e-7 * lr)  # the cosine is float32
    assert lrs[5 * per_epoch] == pytest.approx(0.9505 * lr, rel=1e-4) and max(lrs) == lrs[5 * per_epoch]


def test_the_cosine_span_is_the_cosine_schedules_alone():
    from lightning_modules.sequence_classifier import SequenceClassifier

    with pytest.raises(ValueError, match=r"cosine_over='all' is the cosine schedule's span; the 'step' schedule"):
        VideoClassifier(Passthrough(3), 3, schedule="step", cosine_over="all")
    with pytest.raises(ValueError, match=r"cosine_over='all' is the cosine schedule's span; the 'linear' schedule"):
        SequenceClassifier(Passthrough(3), 3, cosine_over="all")
    with pytest.raises(ValueError, match=r"cosine_over must be 'after_warmup' or 'all', got 'warmup'"):
        VideoClassifier(Passthrough(3), 3, schedule="cosine", cosine_over="warmup")


def test_schedule_fractions_out_of_range_are_refused():
    with pytest.raises(ValueError, match=r"warmup_start must be in \[0, 1\] and min_lr_ratio in \[0, 1\)"):
        VideoClassifier(Passthrough(3), 3, min_lr_ratio=1.0)
    from lightning_modules.sequence_classifier import SequenceClassifier

    with pytest.raises(ValueError, match=r"the linear schedule has its own start and end"):
        SequenceClassifier(Passthrough(3), 3, warmup_start=0.0)


@pytest.mark.parametrize("schedule", ["step", "linear"])
def test_a_cosine_floor_on_another_schedule_is_refused(schedule):
    from lightning_modules.sequence_classifier import SequenceClassifier

    module = SequenceClassifier if schedule == "linear" else VideoClassifier
    with pytest.raises(ValueError, match=rf"min_lr_ratio=0.001 is the cosine schedule's floor; the '{schedule}'"):
        module(Passthrough(3), 3, schedule=schedule, min_lr_ratio=1e-3)


def test_head_biases_exemption_decays_everything_but_the_heads_biases(monkeypatch):
    """The official X-ViT optimizer: norms, biases, embeddings and the class tokens all decay; only the biases of
    the classification head (the classifier and the temporal head's MLP) do not. timm's rule spares far more."""
    from models import create_model

    torch.manual_seed(0)
    model = create_model("vit_tiny_frame", num_classes=5, attn_layer="xvit", temporal_aggregation="attention")
    monkeypatch.setattr(VideoClassifier, "trainer", type("T", (), {"estimated_stepping_batches": 10})(),
                        raising=False)
    names = {id(p): n for n, p in model.named_parameters()}

    def spared(exempt: str) -> set[str]:
        module = VideoClassifier(model, 5, optimizer="sgd", lr=0.03, weight_decay=1e-4, epochs=2,
                                 weight_decay_exempt=exempt)
        groups = module.configure_optimizers()["optimizer"].param_groups
        assert sum(len(g["params"]) for g in groups) == len(names)  # every parameter, once
        assert {g["weight_decay"] for g in groups} == {0.0, 1e-4}
        return {names[id(p)] for g in groups if g["weight_decay"] == 0.0 for p in g["params"]}

    assert spared("head_biases") == {"head.bias", "temporal_aggregation.norm.bias", "temporal_aggregation.fc.bias"}
    groups = VideoClassifier(model, 5, optimizer="sgd", weight_decay=1e-4, epochs=2, weight_decay_exempt="head_biases"
                             ).configure_optimizers()["optimizer"].param_groups
    assert [(g["name"], g["weight_decay"]) for g in groups] == [("decay", 1e-4), ("no_decay", 0.0)]  # lr/decay, ...
    timm_rule = spared("timm")
    assert {"blocks.0.norm1.weight", "blocks.0.attn.qkv.bias", "pos_embed", "cls_token"} <= timm_rule


def test_no_exemption_decays_every_parameter(monkeypatch):
    """Motionformer's official optimizer: every parameter of the ViT decays (it spares only BatchNorm's)."""
    from models import create_model

    model = create_model("vit_tiny_video", num_classes=5)
    module = VideoClassifier(model, 5, weight_decay=0.05, epochs=2, weight_decay_exempt="none")
    monkeypatch.setattr(VideoClassifier, "trainer", type("T", (), {"estimated_stepping_batches": 10})(),
                        raising=False)
    (group,) = module.configure_optimizers()["optimizer"].param_groups
    assert group["weight_decay"] == 0.05 and len(group["params"]) == len(list(model.parameters()))
    with pytest.raises(ValueError, match="weight_decay_exempt='none' builds its own parameter groups"):
        VideoClassifier(model, 5, weight_decay_exempt="none", layer_decay=0.75)


def test_head_biases_exemption_needs_the_models_head_and_no_layer_decay(monkeypatch):
    with pytest.raises(ValueError, match=r"does not combine with layer_decay"):
        VideoClassifier(Passthrough(3), 3, weight_decay_exempt="head_biases", layer_decay=0.75)
    with pytest.raises(ValueError, match=r"weight_decay_exempt must be 'timm', 'head_biases' or 'none'"):
        VideoClassifier(Passthrough(3), 3, weight_decay_exempt="all")
    module = VideoClassifier(Passthrough(3), 3, epochs=2, weight_decay_exempt="head_biases")
    monkeypatch.setattr(VideoClassifier, "trainer", type("T", (), {"estimated_stepping_batches": 10})(),
                        raising=False)
    with pytest.raises(ValueError, match=r"needs the model's head_bias_names\(\), and Passthrough has none"):
        module.configure_optimizers()


def test_layer_decay_needs_a_model_with_layer_groups(monkeypatch):
    module = VideoClassifier(Passthrough(3), 3, lr=0.1, epochs=2, layer_decay=0.75)
    monkeypatch.setattr(VideoClassifier, "trainer", type("T", (), {"estimated_stepping_batches": 10})(),
                        raising=False)
    with pytest.raises(ValueError, match=r"layer_decay=0.75 needs layer groups, and Passthrough has no group_matcher"):
        module.configure_optimizers()
