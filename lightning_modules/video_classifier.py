"""Video classification as a LightningModule: a system around an injected video model.

One label per clip (Kinetics, SSv2: metrics ``top1``/``top5``), or a verb and a noun per clip (EPIC-KITCHENS-100:
``num_classes={"verb": V, "noun": N}``, the model outputs V + N logits, the first V for the verb; metrics
``verb_top1``, ``noun_top1``, ``action_top1`` and the top-5s).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any, Literal

import lightning as L
import torch
import torch.nn.functional as F
from einops import rearrange
from timm.data import Mixup
from timm.data.mixup import mixup_target
from timm.loss import SoftTargetCrossEntropy
from timm.models import group_parameters
from timm.optim import create_optimizer_v2
from torch import nn
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy


def num_outputs(num_classes: int | Mapping[str, int]) -> int:
    """Logits the model must produce: the class count, or V + N for ``{"verb": V, "noun": N}``."""
    return num_classes if isinstance(num_classes, int) else sum(num_classes.values())


def _check_num_classes(num_classes: int | Mapping[str, int]) -> int | dict[str, int]:
    if isinstance(num_classes, Mapping):
        if list(num_classes) != ["verb", "noun"] or not all(isinstance(v, int) and v >= 2
                                                            for v in num_classes.values()):
            raise ValueError(f"num_classes must be an int or {{'verb': V, 'noun': N}} (in that order), "
                             f"got {dict(num_classes)}")
        return dict(num_classes)
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be an int >= 2 or {{'verb': V, 'noun': N}}, got {num_classes!r}")
    return num_classes


def _accuracies(num_classes: int, name: str = "", sync: bool = True) -> dict[str, MulticlassAccuracy]:
    metrics = {f"{name}top1": MulticlassAccuracy(num_classes, top_k=1, average="micro", sync_on_compute=sync)}
    if num_classes > 5:  # top-5 of five or fewer classes is always 100%: not worth a column
        metrics[f"{name}top5"] = MulticlassAccuracy(num_classes, top_k=5, average="micro", sync_on_compute=sync)
    return metrics


def _accuracy_metrics(num_classes: int | dict[str, int], prefix: str, sync: bool = True) -> MetricCollection:
    """``sync``: sum the metric's counts over the processes of a distributed run when computing it."""
    if isinstance(num_classes, int):
        return MetricCollection(_accuracies(num_classes, sync=sync), prefix=prefix)
    verbs, nouns = num_classes["verb"], num_classes["noun"]
    # "action" scores every (verb, noun) pair: see VideoClassifier._update_metrics.
    # Each metric is updated with its own head's scores (_update_metrics), so no compute groups.
    return MetricCollection({**_accuracies(verbs, "verb_", sync), **_accuracies(nouns, "noun_", sync),
                             **_accuracies(verbs * nouns, "action_", sync)}, prefix=prefix, compute_groups=False)


def unique_videos(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-video scores of every process merged, each video once, in index order. ``parts``: one dict per process,
    {"index": (N,), "probs": [(N, K) per head], "label": (N,) or (N, 2)}; a ``DistributedSampler``'s padding repeats
    go here."""
    index = torch.cat([p["index"] for p in parts])
    order = torch.argsort(index, stable=True)
    sorted_index = index[order]
    first = torch.ones_like(sorted_index, dtype=torch.bool)
    first[1:] = sorted_index[1:] != sorted_index[:-1]
    keep = order[first]
    heads = len(parts[0]["probs"])
    return {"index": index[keep],
            "probs": [torch.cat([p["probs"][h] for p in parts])[keep] for h in range(heads)],
            "label": torch.cat([p["label"] for p in parts])[keep]}


WARMUP_START = 0.01  # the warm-up's first lr / the peak lr, unless a recipe says otherwise (Motionformer's 1/100)


VIEW_AVERAGES: tuple[str, ...] = ("probabilities", "logits")


def name_param_groups(groups: list[dict[str, Any]], layer_decay: float | None = None, top_layer: int = 0) -> None:
    """Name each parameter group for the learning-rate curves (``lr/<name>``, not ``lr/pg1``): "decay" or
    "no_decay", prefixed with layer-wise lr decay by its layer, ``top_layer`` the last (lr scale
    layer_decay^(top_layer - layer))."""
    layered = layer_decay is not None and layer_decay != 1.0
    for group in groups:
        decay = "decay" if group.get("weight_decay", 0.0) > 0 else "no_decay"
        if layered:
            layer = top_layer - round(math.log(group["lr_scale"]) / math.log(layer_decay))
            decay = f"layer{layer}_{decay}"
        group["name"] = decay


def warmup_steps(hparams: Mapping[str, Any], steps_per_epoch: float) -> int:
    """The warm-up's length in optimiser steps: ``warmup_steps`` when given, else ``warmup_epochs`` of
    ``steps_per_epoch`` (a checkpoint's hyper-parameters may hold only the latter)."""
    if hparams.get("warmup_steps") is not None:
        return int(hparams["warmup_steps"])
    return int(round(hparams["warmup_epochs"] * steps_per_epoch))


class VideoClassifier(L.LightningModule):
    """Cross-entropy training of a clip classifier with multi-view testing.

    Test batches may carry V views per video, ``video`` (B, V, C, T, H, W), whose scores are averaged per video. Under
    mixup/cutmix the training accuracy is not logged, and an odd batch loses its last clip (timm mixes a batch with its
    reverse; a batch of one is its own reverse, so it trains unmixed). Which paper sets which option: each paper's
    README.

    Args:
        model: maps (B, C, T, H, W) clips to (B, num_outputs(num_classes)) logits.
        num_classes: an int, or ``{"verb": V, "noun": N}``: V + N logits (verbs first), (B, 2) labels, loss CE(verb) +
            CE(noun), and an action is right when both argmaxes are (the EPIC-KITCHENS action score).
        optimizer, momentum: a timm optimizer name ("adamw", or "momentum" for SGD with momentum) and its momentum.
        lr, weight_decay, label_smoothing: peak learning rate; weight decay (see ``weight_decay_exempt``); smoothing.
        epochs, schedule, milestones, gamma: schedule length; "step" (times ``gamma`` at ``milestones``) or "cosine".
        warmup_epochs, warmup_steps: linear warm-up in epochs (applied per step), or in optimiser steps when given.
        warmup_start, min_lr_ratio: the warm-up's first lr and the cosine's floor, as fractions of the peak.
        warmup_endpoint: "exclusive" (the warm-up's W steps climb to the peak, reached at step W) or "inclusive"
            (step W - 1 is at the peak: ``np.linspace(start, peak, W)``, VideoMAE's and CAST's scheduler).
        cosine_over: "after_warmup" (the cosine from the peak at the warm-up's end) or "all" (over every step, the
            warm-up ramping onto the curve: PySlowFast's without COSINE_AFTER_WARMUP).
        mixup_alpha, cutmix_alpha, mixup_prob, mixup_switch_prob: timm's ``Mixup`` (0 = off; one cut box per clip).
        weight_decay_exempt: what weight decay spares: "timm" (biases, norms, ``no_weight_decay()``), "head_biases"
            (the head's biases, ``head_bias_names()``) or "none".
        layer_decay: layer-wise lr decay over the model's ``group_matcher`` groups (required); None: one lr.
        view_average: what is averaged over a video's test views: "probabilities" or "logits".
    """

    input_key = "video"  # the batch entry the model reads; subclasses for other inputs override it

    def __init__(
        self,
        model: nn.Module,
        num_classes: int | Mapping[str, int],
        optimizer: str = "adamw",
        momentum: float = 0.9,
        lr: float = 1e-4,
        weight_decay: float = 0.05,
        label_smoothing: float = 0.2,
        epochs: int = 35,
        schedule: Literal["step", "cosine"] = "step",
        milestones: tuple[int, ...] = (20, 30),
        gamma: float = 0.1,
        warmup_epochs: float = 0.0,
        warmup_steps: int | None = None,
        warmup_start: float = WARMUP_START,
        warmup_endpoint: Literal["exclusive", "inclusive"] = "exclusive",
        min_lr_ratio: float = 0.0,
        cosine_over: Literal["after_warmup", "all"] = "after_warmup",
        mixup_alpha: float = 0.0,
        cutmix_alpha: float = 0.0,
        mixup_prob: float = 1.0,
        mixup_switch_prob: float = 0.5,
        weight_decay_exempt: Literal["timm", "head_biases", "none"] = "timm",
        layer_decay: float | None = None,
        view_average: Literal["probabilities", "logits"] = "probabilities",
    ) -> None:
        super().__init__()
        num_classes = _check_num_classes(num_classes)
        if view_average not in VIEW_AVERAGES:
            raise ValueError(f"view_average must be one of {VIEW_AVERAGES}, got {view_average!r}")
        if not 0.0 <= warmup_start <= 1.0 or not 0.0 <= min_lr_ratio < 1.0:
            raise ValueError(f"warmup_start must be in [0, 1] and min_lr_ratio in [0, 1) (fractions of the peak lr), "
                             f"got {warmup_start} and {min_lr_ratio}")
        if warmup_endpoint not in ("exclusive", "inclusive"):
            raise ValueError(f"warmup_endpoint must be 'exclusive' or 'inclusive', got {warmup_endpoint!r}")
        if warmup_steps is not None and (warmup_steps < 0 or warmup_epochs):
            raise ValueError(f"warmup_steps={warmup_steps} with warmup_epochs={warmup_epochs}: give the warm-up in "
                             f"epochs or in steps (>= 0), not both")
        if min_lr_ratio and schedule != "cosine":
            raise ValueError(f"min_lr_ratio={min_lr_ratio} is the cosine schedule's floor; the {schedule!r} schedule "
                             f"would ignore it")
        if cosine_over not in ("after_warmup", "all"):
            raise ValueError(f"cosine_over must be 'after_warmup' or 'all', got {cosine_over!r}")
        if cosine_over != "after_warmup" and schedule != "cosine":
            raise ValueError(f"cosine_over={cosine_over!r} is the cosine schedule's span; the {schedule!r} schedule "
                             f"would ignore it")
        if weight_decay_exempt not in ("timm", "head_biases", "none"):
            raise ValueError(f"weight_decay_exempt must be 'timm', 'head_biases' or 'none', got "
                             f"{weight_decay_exempt!r}")
        if weight_decay_exempt != "timm" and layer_decay is not None:
            raise ValueError(f"weight_decay_exempt={weight_decay_exempt!r} builds its own parameter groups and does "
                             f"not combine with layer_decay")
        self.save_hyperparameters(ignore=["model"])
        self.model = model
        self.num_classes = num_classes
        self.train_metrics = _accuracy_metrics(num_classes, "train/")
        # distributed: computed once, on every process, from the gathered per-video scores (``_log_gathered``), so
        # that the repeats a DistributedSampler pads the last ranks with are not counted
        self.val_metrics = _accuracy_metrics(num_classes, "val/", sync=False)
        self.test_metrics = _accuracy_metrics(num_classes, "test/", sync=False)
        self._scores: dict[str, list[dict[str, Any]]] = {"val": [], "test": []}
        self.test_videos = 0  # videos counted by the last test, each once
        self.mixup: Mixup | None = None
        if mixup_alpha > 0 or cutmix_alpha > 0:
            # Verb-noun labels are mixed as one action label over V x N classes; the verb and noun targets are
            # its marginals (with label smoothing spread evenly, the marginals are exactly the smoothed
            # per-head targets).
            self.mixup = Mixup(mixup_alpha=mixup_alpha, cutmix_alpha=cutmix_alpha, prob=mixup_prob,
                               switch_prob=mixup_switch_prob, mode="batch", label_smoothing=label_smoothing,
                               num_classes=self._flat_classes)
            self.soft_cross_entropy = SoftTargetCrossEntropy()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, label = self.model_input(batch), batch["label"]
        if self.mixup is not None:
            x, soft = self.mix(x, label)
            logits = self(x)
            loss = sum(self.soft_cross_entropy(out, target)
                       for out, target in zip(self._split(logits), self._marginals(soft)))
        else:
            logits = self(x)
            smoothing = self.hparams.label_smoothing
            loss = sum(F.cross_entropy(out, target, label_smoothing=smoothing)
                       for out, target in zip(self._split(logits), self._targets(label)))
            self._update_metrics(self.train_metrics, [out.softmax(-1) for out in self._split(logits)], label)
            self.log_dict(self.train_metrics, on_step=False, on_epoch=True, batch_size=len(logits))
        self.log("train/loss", loss, prog_bar=True, batch_size=len(logits))
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._evaluate_or_keep(batch, "val", self.val_metrics)

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._evaluate_or_keep(batch, "test", self.test_metrics)
        if not self._distributed:
            self.test_videos += len(batch["label"])

    def on_validation_epoch_start(self) -> None:
        self._scores["val"] = []

    def on_validation_epoch_end(self) -> None:
        if self._distributed:
            self._log_gathered("val", self.val_metrics)

    def on_test_epoch_start(self) -> None:
        self._scores["test"], self.test_videos = [], 0

    def on_test_epoch_end(self) -> None:
        if self._distributed:
            self.test_videos = self._log_gathered("test", self.test_metrics)

    def _evaluate_or_keep(self, batch: dict[str, torch.Tensor], stage: str, metrics: MetricCollection) -> None:
        """One process: update the stage's metrics. Distributed: keep each video's scores until the epoch ends, so
        that each video counts once (``unique_videos``); an item is one video with all of its views, so its views
        are averaged on the rank that holds it."""
        if not self._distributed:
            self._evaluate(batch, stage, metrics)
            return
        if "index" not in batch:
            raise ValueError(f"a distributed {stage} needs each item's dataset index (batch['index']) to count every "
                             f"sample once")
        probs, _ = self._video_scores(batch)
        self._scores[stage].append({"index": batch["index"].cpu(), "probs": [p.detach().cpu() for p in probs],
                                    "label": batch["label"].cpu()})

    def _log_gathered(self, stage: str, metrics: MetricCollection) -> int:
        """The stage's metrics from every process's kept scores, each video once; returns the videos counted."""
        kept, self._scores[stage] = self._scores[stage], []
        local = ({"index": torch.cat([s["index"] for s in kept]),
                  "probs": [torch.cat(p) for p in zip(*(s["probs"] for s in kept))],
                  "label": torch.cat([s["label"] for s in kept])} if kept else None)
        parts = [None] * self.trainer.world_size
        torch.distributed.all_gather_object(parts, local)
        parts = [p for p in parts if p is not None]
        if not parts:
            raise RuntimeError(f"the {stage} split gave no readable video")
        videos = unique_videos(parts)
        probs, label = videos["probs"], videos["label"]
        self._update_metrics(metrics, probs, label)
        values = {k: float(v) for k, v in metrics.compute().items()}
        metrics.reset()
        values[f"{stage}/loss"] = float(sum(F.nll_loss(p.clamp_min(1e-12).log(), y)
                                            for p, y in zip(probs, self._targets(label))))
        with warnings.catch_warnings():  # Lightning advises sync_dist; every process logs the same value already
            warnings.filterwarnings("ignore", message=rf"It is recommended to use `self\.log\('{stage}/")
            self.log_dict(values)
        return len(videos["index"])

    def build_optimizer(self, **extra: Any) -> torch.optim.Optimizer:
        """timm's optimizer over the model's trainable parameters: weight-decay groups and, with ``layer_decay``,
        layer groups whose lr is the peak lr times their scale (what the lr schedule then multiplies)."""
        hp = self.hparams
        layer_decay = hp.get("layer_decay")
        if layer_decay is not None and not hasattr(self.model, "group_matcher"):
            raise ValueError(f"optim.layer_decay={layer_decay} needs layer groups, and {type(self.model).__name__} "
                             f"has no group_matcher(): set optim.layer_decay=None for this model")
        params: Any = self.model
        if hp.get("weight_decay_exempt", "timm") == "none":  # every trainable parameter decays
            params = [{"params": [p for p in self.model.parameters() if p.requires_grad]}]
        elif hp.get("weight_decay_exempt", "timm") == "head_biases":
            if not hasattr(self.model, "head_bias_names"):
                raise ValueError(f"optim.weight_decay_exempt='head_biases' needs the model's head_bias_names(), and "
                                 f"{type(self.model).__name__} has none")
            exempt = set(self.model.head_bias_names())
            trainable = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
            params = [{"params": [p for n, p in trainable if n not in exempt]},
                      {"params": [p for n, p in trainable if n in exempt], "weight_decay": 0.0}]
        optimizer = create_optimizer_v2(params, opt=hp.optimizer, lr=hp.lr, weight_decay=hp.weight_decay,
                                        layer_decay=layer_decay, **extra)
        for group in optimizer.param_groups:  # timm leaves lr_scale to its own schedulers; ours is a LambdaLR
            group["lr"] = hp.lr * group.get("lr_scale", 1.0)
        top_layer = 0
        if layer_decay is not None:  # timm's layer ids, the last one at the peak lr
            top_layer = max(group_parameters(self.model, self.model.group_matcher(coarse=False), reverse=True).values())
        name_param_groups(optimizer.param_groups, layer_decay, top_layer)
        return optimizer

    def configure_optimizers(self) -> dict[str, Any]:
        hp = self.hparams
        optimizer = self.build_optimizer(**({"momentum": hp.momentum} if "adam" not in hp.optimizer else {}))
        steps_per_epoch = max(1, self.trainer.estimated_stepping_batches // max(1, hp.epochs))
        total = steps_per_epoch * hp.epochs
        warmup = warmup_steps(hp, steps_per_epoch)

        cosine_start = 0 if hp.get("cosine_over", "after_warmup") == "all" else warmup

        def cosine(step: int) -> float:
            progress = (step - cosine_start) / max(1, total - cosine_start)
            curve = 0.5 * (1.0 + torch.cos(torch.tensor(torch.pi * min(1.0, progress))).item())
            return hp.min_lr_ratio + (1.0 - hp.min_lr_ratio) * curve

        # where the warm-up ends: the peak, or below it on a cosine that began with the first step
        warmup_end = cosine(warmup) if hp.schedule == "cosine" and cosine_start < warmup else 1.0

        # the steps the warm-up's line spans: W, or W - 1 when its last step is already at the end (np.linspace)
        ramp = warmup - 1 if hp.get("warmup_endpoint", "exclusive") == "inclusive" and warmup > 1 else warmup

        def factor(step: int) -> float:  # per-step multiplier of the peak lr
            if step < warmup:
                return hp.warmup_start + (warmup_end - hp.warmup_start) * step / ramp
            if hp.schedule == "cosine":
                return cosine(step)
            epoch = step // steps_per_epoch
            return hp.gamma ** sum(epoch >= m for m in hp.milestones)

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        # "name": the tag LearningRateMonitor logs it under (lr, or lr/<group name> for several: name_param_groups)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step", "name": "lr"}}

    # --- extras ---------------------------------------------------------------------------------------------------

    def model_input(self, batch: dict[str, torch.Tensor]) -> Any:
        """What the model reads from a batch: ``batch[input_key]``; a subclass may return several entries."""
        return batch[self.input_key]

    def fold_views(self, x: Any) -> tuple[Any, int | None]:
        """A test input of several views per video, (B, V, C, T, H, W), folded to (B * V, C, T, H, W), and V;
        (x, None) for one view. A subclass with other inputs folds them alike."""
        if x.ndim == 6:
            return rearrange(x, "b v c t h w -> (b v) c t h w"), x.shape[1]
        return x, None

    def mix(self, video: torch.Tensor, label: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """timm mixup/cutmix of a (B, C, T, H, W) batch; returns the mixed clips and soft (flat) targets. Time is
        folded into the channels, so timm's box over the last two axes is the same on every frame."""
        flat = label if label.ndim == 1 else label[:, 0] * self.num_classes["noun"] + label[:, 1]
        if len(video) == 1:  # a batch left with one clip (its others skipped as unreadable): its own flip is itself
            return video, mixup_target(flat, self._flat_classes, smoothing=self.mixup.label_smoothing)
        if len(video) % 2:
            video, flat = video[:-1], flat[:-1]
        frames = video.shape[2]
        folded = rearrange(video, "b c t h w -> b (c t) h w").contiguous()
        folded, soft = self.mixup(folded, flat)
        return rearrange(folded, "b (c t) h w -> b c t h w", t=frames), soft

    @property
    def _flat_classes(self) -> int:
        c = self.num_classes
        return c if isinstance(c, int) else c["verb"] * c["noun"]  # actions: verb-major (verb * N + noun)

    def _split(self, logits: torch.Tensor) -> list[torch.Tensor]:
        """Per-head logits: [logits] for one label, [verb, noun] for verb-noun labels."""
        if isinstance(self.num_classes, int):
            return [logits]
        if logits.shape[-1] != num_outputs(self.num_classes):
            raise ValueError(f"model gives {logits.shape[-1]} logits, verb + noun need "
                             f"{num_outputs(self.num_classes)}")
        return list(logits.split([self.num_classes["verb"], self.num_classes["noun"]], dim=-1))

    def _targets(self, label: torch.Tensor) -> list[torch.Tensor]:
        if isinstance(self.num_classes, int):
            return [label]
        if label.ndim != 2 or label.shape[1] != 2:
            raise ValueError(f"verb-noun labels must be (B, 2) = (verb, noun), got shape {tuple(label.shape)}")
        return [label[:, 0], label[:, 1]]

    def _marginals(self, soft: torch.Tensor) -> list[torch.Tensor]:
        """Soft flat targets -> per-head soft targets (verb, noun marginals of the action distribution)."""
        if isinstance(self.num_classes, int):
            return [soft]
        pairs = rearrange(soft, "b (v n) -> b v n", n=self.num_classes["noun"])
        return [pairs.sum(2), pairs.sum(1)]

    @property
    def _distributed(self) -> bool:
        return self._trainer is not None and self.trainer.world_size > 1

    def video_probabilities(self, batch: dict[str, torch.Tensor]) -> tuple[list[torch.Tensor], list | None]:
        """Per-head class probabilities of each video of a test batch, its views' scores combined as the test
        combines them (``view_average``), and the per-head logits they are the softmax of (None where the views'
        probabilities are averaged): what the test scores, and what ``predict`` reports."""
        x, views = self.fold_views(self.model_input(batch))
        heads = self._split(self(x))
        if views is not None and self.hparams.view_average == "logits":
            heads = [rearrange(out, "(b v) k -> b v k", v=views).mean(1) for out in heads]
        elif views is not None:  # average the views' probabilities per video
            return [rearrange(out.softmax(-1), "(b v) k -> b v k", v=views).mean(1) for out in heads], None
        return [out.softmax(-1) for out in heads], heads

    def _video_scores(self, batch: dict[str, torch.Tensor]) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Per-head class probabilities of each video, its views' scores averaged (``view_average``), and the
        loss."""
        targets = self._targets(batch["label"])
        probs, heads = self.video_probabilities(batch)
        if heads is None:
            loss = sum(F.nll_loss(p.clamp_min(1e-12).log(), y) for p, y in zip(probs, targets))
        else:
            loss = sum(F.cross_entropy(out, y) for out, y in zip(heads, targets))
        return probs, loss

    def _update_metrics(self, metrics: MetricCollection, probs: list[torch.Tensor], label: torch.Tensor) -> None:
        """Update with per-head probabilities (views already averaged)."""
        if isinstance(self.num_classes, int):
            metrics.update(probs[0], label)
            return
        verb, noun = probs
        targets = self._targets(label)
        # A pair scores p(verb) * p(noun): its argmax is the pair of argmaxes, so action_top1 is "both right".
        action = rearrange(verb[:, :, None] * noun[:, None, :], "b v n -> b (v n)")
        action_target = targets[0] * self.num_classes["noun"] + targets[1]
        for name, metric in metrics.items(keep_base=True):
            head = name.split("_")[0]
            scores, target = {"verb": (verb, targets[0]), "noun": (noun, targets[1]),
                              "action": (action, action_target)}[head]
            metric.update(scores, target)

    def _evaluate(self, batch: dict[str, torch.Tensor], stage: str, metrics: MetricCollection) -> None:
        label = batch["label"]
        probs, loss = self._video_scores(batch)
        self._update_metrics(metrics, probs, label)
        self.log(f"{stage}/loss", loss, batch_size=len(label), sync_dist=True)
        self.log_dict(metrics, on_step=False, on_epoch=True, batch_size=len(label))
