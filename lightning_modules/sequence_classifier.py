"""Sequence classification (Long Range Arena) as a LightningModule: ``VideoClassifier`` reading token batches."""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import nn

from .video_classifier import WARMUP_START, VideoClassifier, warmup_steps


class SequenceClassifier(VideoClassifier):
    """Cross-entropy training of a token-sequence classifier; batches are {"input": (B, L) | (B, 2, L), "label"}.

    Defaults follow the Nystromformer repository's LRA training (``lra_config.py``, ``run_tasks.py``): AdamW with
    lr 1e-4, no weight decay, no label smoothing, eps 1e-6, and a "linear" schedule (PyTorch ``OneCycleLR`` with
    linear annealing: warm-up from lr/25 to lr, then linear decay to ~0 at the last step).

    Args:
        model: maps token ids to (B, num_classes) logits.
        num_classes: number of classes.
        lr: peak learning rate.
        weight_decay: AdamW weight decay.
        label_smoothing: cross-entropy label smoothing.
        schedule: "linear" (as above), or the parent's "step" / "cosine".
        eps: AdamW epsilon.
        **kwargs: further ``VideoClassifier`` arguments (epochs, warmup_epochs, milestones, ...).
    """

    input_key = "input"

    def __init__(self, model: nn.Module, num_classes: int, lr: float = 1e-4, weight_decay: float = 0.0,
                 label_smoothing: float = 0.0, schedule: Literal["linear", "step", "cosine"] = "linear",
                 eps: float = 1e-6, **kwargs: Any) -> None:
        super().__init__(model, num_classes, lr=lr, weight_decay=weight_decay, label_smoothing=label_smoothing,
                         schedule=schedule, **kwargs)
        if schedule == "linear" and kwargs.get("warmup_start", WARMUP_START) != WARMUP_START:
            raise ValueError(f"the linear schedule has its own start and end (OneCycleLR's): warmup_start="
                             f"{kwargs['warmup_start']} would be ignored; use schedule='cosine' or 'step' for it")
        self.save_hyperparameters(ignore=["model"])

    def configure_optimizers(self) -> dict[str, Any]:
        hp = self.hparams
        if hp.schedule != "linear":
            return super().configure_optimizers()
        optimizer = self.build_optimizer(**({"eps": hp.eps} if "adam" in hp.optimizer else {"momentum": hp.momentum}))
        total = max(1, int(self.trainer.estimated_stepping_batches))
        epochs = max(1, self.trainer.max_epochs or 1)
        warmup = min(warmup_steps(hp, total / epochs), total - 1)

        def factor(step: int) -> float:  # OneCycleLR(anneal_strategy="linear"), div_factor 25, final 25e4
            start, end = 1 / 25, 1 / 25e4
            if step < warmup:
                return start + (1 - start) * step / warmup
            progress = min(1.0, (step - warmup) / max(1, total - 1 - warmup))
            return 1 + (end - 1) * progress

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        # "name": the tag LearningRateMonitor logs it under (lr, or lr/<group name> for several: name_param_groups)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step", "name": "lr"}}


__all__ = ["SequenceClassifier"]
