"""Image classification of an image ViT: the tiny scale's stand-in for ImageNet-21K pretraining
(docs/tiny_regime_design.md). The model is timm's ``VisionTransformer``, so what it learns is saved in the
layout every paper's loader already maps into its video model (``models.pretrained``).

The schedule: timm's AdamW (no weight decay on biases, norms, the position table and the class token), a linear
warm-up, then a cosine decay to zero per step over the trainer's ``max_epochs``.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback
from timm.optim import create_optimizer_v2
from torch import Tensor, nn
from torchmetrics.classification import MulticlassAccuracy

from .expert_pretraining import warmup_cosine


class ImageClassifier(L.LightningModule):
    """Cross-entropy training of ``model`` on (image, label) batches; logs ``train/loss``, ``val/loss`` and
    ``val/top1`` (a fraction) once per epoch.

    Args:
        model: an image classifier, (B, 3, H, W) -> (B, num_classes) logits.
        num_classes: the label count.
        lr: the peak learning rate.
        weight_decay: AdamW's decoupled weight decay.
        warmup_epochs: epochs of linear warm-up from 0 to ``lr``.
    """

    def __init__(self, model: nn.Module, num_classes: int, lr: float, weight_decay: float,
                 warmup_epochs: float = 1.0) -> None:
        super().__init__()
        self.model = model
        self.save_hyperparameters(ignore=["model"])
        self.val_top1 = MulticlassAccuracy(num_classes=num_classes, average="micro")

    def forward(self, images: Tensor) -> Tensor:
        return self.model(images)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        images, labels = batch
        loss = F.cross_entropy(self(images), labels)
        self.log("train/loss", loss, on_step=False, on_epoch=True, batch_size=len(labels))
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        images, labels = batch
        logits = self(images)
        self.val_top1.update(logits, labels)
        self.log("val/loss", F.cross_entropy(logits, labels), on_step=False, on_epoch=True, batch_size=len(labels))
        self.log("val/top1", self.val_top1, on_step=False, on_epoch=True)

    def configure_optimizers(self) -> dict[str, Any]:
        hp = self.hparams
        optimizer = create_optimizer_v2(self.model, opt="adamw", lr=hp.lr, weight_decay=hp.weight_decay)
        total = max(1, self.trainer.estimated_stepping_batches)
        warmup = max(1, round(hp.warmup_epochs * total / max(1, self.trainer.max_epochs)))
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, partial(warmup_cosine, warmup=warmup, total=total))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


class EpochHistory(Callback):
    """Keeps each epoch's validation loss and, where the system logs one, top-1 (in percent); prints one line per
    epoch."""

    def __init__(self) -> None:
        self.epochs: list[dict[str, float]] = []

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        metrics = trainer.callback_metrics
        epoch = {"epoch": trainer.current_epoch + 1, "val_loss": round(float(metrics["val/loss"]), 5)}
        line = f"    epoch {epoch['epoch']}: val loss {epoch['val_loss']:.4f}"
        if "val/top1" in metrics:
            epoch["val_top1"] = round(100.0 * float(metrics["val/top1"]), 2)
            line += f", top-1 {epoch['val_top1']:.1f}%"
        self.epochs.append(epoch)
        print(line, flush=True)
