"""Pretraining of CAST's tiny experts: the frozen experts CAST adapts must first exist at CPU size.

- ``FramePretraining``: image-level pretraining of a spatial (frame) expert: every frame of a clip is one image,
  classified with the clip's label by the expert's class token (the stand-in for CLIP / ImageNet-21K pretraining).
- ``MaskedVideoPretraining``: VideoMAE-style masked video autoencoding of a temporal (tubelet) expert: tube masking
  (the same spatial positions hidden at every time step), the encoder on the visible tokens only, a small decoder
  that fills in mask tokens, and a mean squared error on the pixels of the masked tokens only (VideoMAE, Tong et
  al. 2022, Sec. 3; its per-patch normalised target is an option: on the generated sets' smooth backgrounds it
  turns flat patches into noise, and a tiny run learned nothing from it, its loss staying at the 0.99 that
  predicting zero gives).

Both are systems around an injected expert (``models.cast.build_expert``); the expert's ``state_dict()`` is what a
CAST model loads. The schedule: AdamW, linear warm-up then cosine decay, per step.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from einops import rearrange
from timm.models.vision_transformer import Block
from torch import Tensor, nn

from models.cast.experts import TUBELET, sinusoid_table


def warmup_cosine(step: int, warmup: int, total: int) -> float:
    """The multiplier of the peak lr at ``step``: linear warm-up over ``warmup`` steps, then a cosine to zero at
    ``total`` (the pretraining systems' schedule, per step)."""
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))


def tube_mask(batch: int, num_steps: int, num_patches: int, mask_ratio: float,
              generator: torch.Generator | None = None, device: torch.device | str | None = None) -> Tensor:
    """Boolean mask (B, T*N) in (t n) token order, True = hidden: ``int(mask_ratio * N)`` spatial positions per
    clip (VideoMAE's ``TubeMaskingGenerator`` count), the same at every time step (a tube), so a hidden patch cannot
    be copied from its neighbour in time."""
    num_masked = int(mask_ratio * num_patches)
    if not 0 < num_masked < num_patches:
        raise ValueError(f"mask_ratio {mask_ratio} hides {num_masked} of {num_patches} patches; keep at least one "
                         f"visible and one hidden")
    scores = torch.rand(batch, num_patches, generator=generator, device=device)
    hidden = torch.zeros(batch, num_patches, dtype=torch.bool, device=device)
    hidden.scatter_(1, scores.argsort(dim=1)[:, :num_masked], True)
    return hidden.repeat(1, num_steps)  # (B, N) -> (B, T*N): position n of every step


def patchify(video: Tensor, tubelet: int, patch_size: int) -> Tensor:
    """(B, C, F, H, W) -> (B, T*N, tubelet*p*p*C) in the tubelet expert's (t h w) token order."""
    return rearrange(video, "b c (t dt) (h ph) (w pw) -> b (t h w) (dt ph pw c)", dt=tubelet, ph=patch_size,
                     pw=patch_size)


def normalized_pixels(patches: Tensor, eps: float = 1e-6) -> Tensor:
    """VideoMAE's target: each patch's pixels normalised by their own mean and unbiased std (per channel), ``eps``
    added to the std as its ``engine_for_pretraining.py`` does (image MAE adds it to the variance)."""
    c = 3
    x = rearrange(patches, "b n (p c) -> b n p c", c=c)
    x = (x - x.mean(dim=2, keepdim=True)) / (x.var(dim=2, unbiased=True, keepdim=True).sqrt() + eps)
    return rearrange(x, "b n p c -> b n (p c)")


def masked_mse(prediction: Tensor, target: Tensor, hidden: Tensor) -> Tensor:
    """Mean squared error over the hidden tokens only: ``prediction``/``target`` (B, T*N, P), ``hidden`` (B, T*N)."""
    return ((prediction - target) ** 2).mean(dim=-1)[hidden].mean()


class _Pretraining(L.LightningModule):
    """AdamW (VideoMAE's pretraining betas 0.9, 0.95) with warm-up and cosine decay over the trainer's steps; no
    weight decay on biases, norms, position tables and tokens."""

    def configure_optimizers(self) -> dict[str, Any]:
        hp = self.hparams
        groups: dict[bool, list[nn.Parameter]] = {True: [], False: []}
        for name, param in self.named_parameters():
            groups[param.ndim > 1 and "pos" not in name and "token" not in name].append(param)
        optimizer = torch.optim.AdamW([{"params": groups[True], "weight_decay": hp.weight_decay},
                                       {"params": groups[False], "weight_decay": 0.0}], lr=hp.lr, betas=(0.9, 0.95))
        total = max(1, self.trainer.estimated_stepping_batches)
        warmup = max(1, int(round(hp.warmup_fraction * total)))
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, partial(warmup_cosine, warmup=warmup, total=total))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


class FramePretraining(_Pretraining):
    """Image classification of single frames by a frame expert (CLIP- or ImageNet-style spatial expert).

    Args:
        expert: a ``FrameExpert`` built for 2-frame clips (``num_frames=2``): it reads every second frame, so an
            image given as the 2-frame clip [image, image] is seen once, with the same weights as in CAST.
        num_classes: classes of the frames' (clips') labels.
        lr, weight_decay, warmup_fraction, label_smoothing: the optimisation.
    """

    def __init__(self, expert: nn.Module, num_classes: int, lr: float = 1e-3, weight_decay: float = 0.05,
                 warmup_fraction: float = 0.1, label_smoothing: float = 0.1) -> None:
        super().__init__()
        if expert.layout != "frame" or expert.num_frames != 2:
            raise ValueError("FramePretraining needs a frame expert built with num_frames=2 (one image per clip)")
        self.save_hyperparameters(ignore=["expert"])
        self.expert = expert
        self.head = nn.Linear(expert.embed_dim, num_classes)

    def forward(self, images: Tensor) -> Tensor:
        """(B, C, H, W) -> logits (B, num_classes) from the expert's pooled class token."""
        return self.head(self.expert(images.unsqueeze(2).expand(-1, -1, 2, -1, -1)))

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        video, label = batch["video"], batch["label"]
        if label.ndim != 1:
            raise ValueError("FramePretraining takes one label per clip; verb/noun labels are not image labels")
        images = rearrange(video, "b c t h w -> (b t) c h w")  # every frame an image with its clip's label
        labels = label.repeat_interleave(video.shape[2])
        logits = self(images)
        loss = F.cross_entropy(logits, labels, label_smoothing=self.hparams.label_smoothing)
        self.log("pretrain/loss", loss, prog_bar=True)
        self.log("pretrain/top1", (logits.argmax(-1) == labels).float().mean())
        return loss


class MaskedVideoPretraining(_Pretraining):
    """VideoMAE-style masked autoencoding of a tubelet expert.

    Args:
        expert: a ``TubeletExpert`` (its ``embed`` adds the fixed sinusoidal table; its blocks run on any token
            subset, joint space-time attention).
        mask_ratio: fraction of spatial positions hidden in every clip (VideoMAE: 0.9), the same at every step.
        normalize_target: reconstruct each patch's pixels normalised by their own mean and std (VideoMAE's
            default) instead of the pixels themselves, as the data module delivers them (normalised by its mean and
            std: VideoMAE's raw target undoes that, a per-channel affine change of the loss's scale).
        decoder_dim, decoder_depth, decoder_heads: the decoder (narrower than the encoder, as VideoMAE's).
        lr, weight_decay, warmup_fraction: the optimisation.
    """

    def __init__(self, expert: nn.Module, mask_ratio: float = 0.9, normalize_target: bool = False,
                 decoder_dim: int = 48, decoder_depth: int = 2, decoder_heads: int = 3, lr: float = 1.5e-3,
                 weight_decay: float = 0.05, warmup_fraction: float = 0.1) -> None:
        super().__init__()
        if expert.layout != "tubelet":
            raise ValueError("MaskedVideoPretraining needs a tubelet expert (VideoMAE structure)")
        self.save_hyperparameters(ignore=["expert"])
        self.expert = expert
        self.encoder_to_decoder = nn.Linear(expert.embed_dim, decoder_dim, bias=False)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_dim))
        self.decoder = nn.ModuleList([Block(decoder_dim, decoder_heads, qkv_bias=True) for _ in range(decoder_depth)])
        self.decoder_norm = nn.LayerNorm(decoder_dim)
        self.decoder_head = nn.Linear(decoder_dim, TUBELET * expert.patch_size ** 2 * 3)
        nn.init.trunc_normal_(self.mask_token, std=0.02)

    def forward(self, video: Tensor, hidden: Tensor) -> Tensor:
        """Predicted pixels (B, T*N, P) of every token from the visible ones (``hidden``: (B, T*N), True = hidden;
        every clip hides the same count)."""
        b = video.shape[0]
        tokens = self.expert.embed(video)  # (B, T*N, D) with the sinusoidal table
        visible = tokens[~hidden].reshape(b, -1, tokens.shape[-1])
        for block in self.expert.blocks:
            visible = block(visible, self.expert.num_steps)
        visible = self.encoder_to_decoder(self.expert.norm(visible))
        full = self.mask_token.expand(b, tokens.shape[1], -1).clone()
        full[~hidden] = visible.reshape(-1, visible.shape[-1])  # back in place, mask tokens elsewhere
        x = full + sinusoid_table(full.shape[1], full.shape[2], full.device).to(full.dtype)
        for block in self.decoder:
            x = block(x)
        return self.decoder_head(self.decoder_norm(x))

    def loss(self, video: Tensor, hidden: Tensor) -> Tensor:
        """MSE of the (optionally per-patch normalised) pixels on the hidden tokens only."""
        target = patchify(video, TUBELET, self.expert.patch_size)
        if self.hparams.normalize_target:
            target = normalized_pixels(target)
        return masked_mse(self(video, hidden), target, hidden)

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        video = batch["video"]
        hidden = tube_mask(video.shape[0], self.expert.num_steps, self.expert.num_patches, self.hparams.mask_ratio,
                           device=video.device)
        loss = self.loss(video, hidden)
        self.log("pretrain/loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        """The masked-pixel loss with masks drawn from ``batch_idx`` alone: the same masks every epoch, so the epochs'
        losses compare, and the global random state (which training draws from) is left untouched."""
        video = batch["video"]
        generator = torch.Generator().manual_seed(batch_idx)
        hidden = tube_mask(video.shape[0], self.expert.num_steps, self.expert.num_patches, self.hparams.mask_ratio,
                           generator=generator).to(video.device)
        self.log("val/loss", self.loss(video, hidden), batch_size=video.shape[0])


__all__ = ["FramePretraining", "MaskedVideoPretraining", "masked_mse", "normalized_pixels", "patchify", "tube_mask"]
