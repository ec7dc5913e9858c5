"""Video classification as a LightningModule: a system around an injected video model."""

from __future__ import annotations

from typing import Any, Literal

import lightning as L
import torch
import torch.nn.functional as F
from einops import rearrange
from timm.optim import create_optimizer_v2
from torch import nn
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy


def _accuracy_metrics(num_classes: int, prefix: str) -> MetricCollection:
    metrics = {"top1": MulticlassAccuracy(num_classes, top_k=1, average="micro")}
    if num_classes > 5:  # top-5 of five or fewer classes is always 100%: not worth a column
        metrics["top5"] = MulticlassAccuracy(num_classes, top_k=5, average="micro")
    return MetricCollection(metrics, prefix=prefix)


class VideoClassifier(L.LightningModule):
    """Cross-entropy training of a clip classifier with multi-view testing.

    Args:
        model: maps (B, C, T, H, W) clips to (B, num_classes) logits.
        num_classes: number of classes (sizes the accuracy metrics).
        lr: peak learning rate of AdamW.
        weight_decay: AdamW weight decay; biases, norms, position embeddings and the CLS token are exempt
            (timm's ``create_optimizer_v2`` parameter groups, using ``model.no_weight_decay()``).
        label_smoothing: cross-entropy label smoothing.
        epochs: length of the schedule in epochs.
        schedule: "step" (divide by 1/gamma at ``milestones``, the papers' schedule) or "cosine".
        milestones: epochs at which the "step" schedule decays.
        gamma: decay factor of the "step" schedule.
        warmup_epochs: linear warm-up from lr/100, counted in epochs but applied per step.

    Test batches may carry several views per video, ``video`` of shape (B, V, C, T, H, W): the views'
    softmax scores are averaged per video (temporal clips x spatial crops), as in the papers.
    """

    def __init__(
        self,
        model: nn.Module,
        num_classes: int,
        lr: float = 1e-4,
        weight_decay: float = 0.05,
        label_smoothing: float = 0.2,
        epochs: int = 35,
        schedule: Literal["step", "cosine"] = "step",
        milestones: tuple[int, ...] = (20, 30),
        gamma: float = 0.1,
        warmup_epochs: float = 0.0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["model"])
        self.model = model
        self.train_metrics = _accuracy_metrics(num_classes, "train/")
        self.val_metrics = _accuracy_metrics(num_classes, "val/")
        self.test_metrics = _accuracy_metrics(num_classes, "test/")

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return self.model(video)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        logits = self(batch["video"])
        loss = F.cross_entropy(logits, batch["label"], label_smoothing=self.hparams.label_smoothing)
        self.train_metrics.update(logits, batch["label"])
        self.log("train/loss", loss, prog_bar=True, batch_size=len(logits))
        self.log_dict(self.train_metrics, on_step=False, on_epoch=True, batch_size=len(logits))
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "val", self.val_metrics)

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "test", self.test_metrics)

    def configure_optimizers(self) -> dict[str, Any]:
        hp = self.hparams
        optimizer = create_optimizer_v2(self.model, opt="adamw", lr=hp.lr, weight_decay=hp.weight_decay)
        steps_per_epoch = max(1, self.trainer.estimated_stepping_batches // max(1, hp.epochs))
        total = steps_per_epoch * hp.epochs
        warmup = int(round(hp.warmup_epochs * steps_per_epoch))

        def factor(step: int) -> float:  # per-step multiplier of the peak lr
            if step < warmup:
                return 0.01 + 0.99 * step / warmup
            if hp.schedule == "cosine":
                progress = (step - warmup) / max(1, total - warmup)
                return 0.5 * (1.0 + torch.cos(torch.tensor(torch.pi * min(1.0, progress))).item())
            epoch = step // steps_per_epoch
            return hp.gamma ** sum(epoch >= m for m in hp.milestones)

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def _evaluate(self, batch: dict[str, torch.Tensor], stage: str, metrics: MetricCollection) -> None:
        video, label = batch["video"], batch["label"]
        if video.ndim == 6:  # (B, V, C, T, H, W): average the views' probabilities per video
            views = video.shape[1]
            logits = self(rearrange(video, "b v c t h w -> (b v) c t h w"))
            scores = rearrange(logits.softmax(-1), "(b v) k -> b v k", v=views).mean(1)
            loss = F.nll_loss(scores.clamp_min(1e-12).log(), label)
        else:
            logits = self(video)
            scores = logits.softmax(-1)
            loss = F.cross_entropy(logits, label)
        metrics.update(scores, label)
        self.log(f"{stage}/loss", loss, batch_size=len(label), sync_dist=True)
        self.log_dict(metrics, on_step=False, on_epoch=True, batch_size=len(label))
