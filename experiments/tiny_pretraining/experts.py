"""Pretraining a model part that table runs load: CAST's tiny experts, which the paper takes from released
checkpoints and which must first exist at CPU size (``experiments.cast.shipped`` says which, and ships them).

An ``ExpertPretraining`` is the configuration of one such pretraining. It is run as a run of a task registered here
(``frame_pretraining``, ``masked_video_pretraining``; their LightningModules are
``lightning_modules.expert_pretraining``'s) on CPU, in a random state of its own that the caller gets back
afterwards, and writes the expert's state dict (``pretrain_expert``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..harness.spec import DataConfig, ModelConfig, OptimConfig, RunConfig, TrainerConfig, _plain
from ..harness.tasks import Task, get_task, register_task, video_data_options, video_datamodule

if TYPE_CHECKING:  # annotations only: torch and Lightning load where a run trains
    import lightning as L
    from torch import nn

EXPERT_FILE = "expert.pt"  # the expert's state dict, in its own layout (loads into CAST.spatial / CAST.temporal)


@dataclass(frozen=True)
class ExpertPretraining:
    """How one tiny expert is pretrained.

    ``method``: "frames" = classification of single frames (each frame of a clip is an image with the clip's label;
    the stand-in for CLIP's / ImageNet-21K's image pretraining), "mae" = VideoMAE-style masked video autoencoding
    with tube masking (``lightning_modules.expert_pretraining``).
    """

    arch: str  # expert structure: "clip", "vit_in21k" (frame experts), "videomae", "mvd" (tubelet experts)
    method: Literal["frames", "mae"]
    data: DataConfig  # the generated set read (its training split), clip size as CAST's tiny input
    epochs: int
    lr: float
    weight_decay: float = 0.05
    mask_ratio: float = 0.9  # "mae": fraction of spatial positions hidden (VideoMAE's 90%)
    normalize_target: bool = False  # "mae": per-patch normalised pixels (VideoMAE's default) or raw pixels
    seed: int = 0


# The registered task that runs each pretraining method (``experiments.harness.tasks``).
# ---- the pretraining tasks -------------------------------------------------------------------------------------------

# The system's own options of a pretraining run, carried in ``DataConfig.options`` beside the data module's
PRETRAINING_OPTIONS = ("mask_ratio", "normalize_target")


def _pretraining_datamodule(cfg: RunConfig, run_dir: Path) -> L.LightningDataModule:
    options = {k: v for k, v in cfg.data.options.items() if k not in PRETRAINING_OPTIONS}
    return video_datamodule(dataclasses.replace(cfg.data, options=options), run_dir / "data_failures")


def _frame_pretraining(cfg: RunConfig, expert: nn.Module, dm: Any) -> L.LightningModule:
    from lightning_modules.expert_pretraining import FramePretraining

    return FramePretraining(expert, dm.num_classes, lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay)


def _masked_video_pretraining(cfg: RunConfig, expert: nn.Module, dm: Any) -> L.LightningModule:
    from lightning_modules.expert_pretraining import MaskedVideoPretraining

    options = {k: v for k, v in cfg.data.options.items() if k in PRETRAINING_OPTIONS}
    return MaskedVideoPretraining(expert, **options, lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay)


FRAME_PRETRAINING = register_task(Task(
    "frame_pretraining", _pretraining_datamodule, _frame_pretraining, data_options=video_data_options))
MASKED_VIDEO_PRETRAINING = register_task(Task(
    "masked_video_pretraining", _pretraining_datamodule, _masked_video_pretraining,
    data_options=lambda: video_data_options() | set(PRETRAINING_OPTIONS)))


PRETRAINING_TASKS = {"frames": "frame_pretraining", "mae": "masked_video_pretraining"}


def pretraining_run(config: ExpertPretraining) -> RunConfig:
    """``config`` as a run of its pretraining task: its data (with the system's options, for the masked
    autoencoding), its lr, weight decay and epochs, on one CPU process. Only ``key`` names a pretraining: this
    configuration is how it is run."""
    if config.method not in PRETRAINING_TASKS:
        raise ValueError(f"unknown pretraining method {config.method!r}; use 'frames' or 'mae'")
    frames = config.method == "frames"
    options = {} if frames else {"mask_ratio": config.mask_ratio, "normalize_target": config.normalize_target}
    return RunConfig(
        table="tiny_experts", row=config.arch, column=config.method, scale="tiny", seed=config.seed,
        # one image = a 2-frame clip of a frame expert (``lightning_modules.expert_pretraining.FramePretraining``)
        model=ModelConfig(name=config.arch, overrides={"num_frames": 2} if frames else {}),
        data=dataclasses.replace(config.data, task=PRETRAINING_TASKS[config.method],
                                 options={**config.data.options, **options}),
        optim=OptimConfig(lr=config.lr, weight_decay=config.weight_decay, epochs=config.epochs),
        trainer=TrainerConfig(accelerator="cpu", devices=1))


@contextmanager
def own_random_state(seed: int) -> Iterator[None]:
    """Seed everything for a pretraining and give the caller back its random state afterwards: a pretraining
    draws the same numbers wherever it runs, and leaves the caller's draws as they were."""
    import numpy as np
    import torch

    saved_env = {k: os.environ.get(k) for k in ("PL_GLOBAL_SEED", "PL_SEED_WORKERS")}
    python_state, numpy_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        try:
            import lightning as L

            L.seed_everything(seed, workers=True, verbose=False)
            yield
        finally:
            random.setstate(python_state)
            np.random.set_state(numpy_state)
            for k, v in saved_env.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def pretrain_expert(config: ExpertPretraining, folder: Path, history: Any = None) -> None:
    """Pretrain the tiny expert of ``config`` on CPU, as a run of its pretraining task (``pretraining_run``), and
    write ``EXPERT_FILE`` and ``pretraining.json`` into ``folder``. With ``history`` (a Lightning callback, e.g.
    ``lightning_modules.image_classifier.EpochHistory``) the system is also validated on the set's validation split
    after every epoch; without it, not at all."""
    import lightning as L

    from data.atomic_write import atomic_write_text, save_torch
    from models.cast import build_expert

    cfg = pretraining_run(config)
    task = get_task(cfg.task)
    start = time.perf_counter()
    print(f"    pretraining tiny expert {config.arch} ({config.method}) on {config.data.dataset}, "
          f"{config.epochs} epoch(s) ...", flush=True)
    with own_random_state(config.seed):
        dm = task.datamodule(cfg, folder)
        dm.prepare_data()
        dm.setup("fit")
        expert = build_expert(cfg.model.name, "tiny", **cfg.model.overrides)
        system = task.system(cfg, expert, dm)
        trainer = L.Trainer(max_epochs=cfg.optim.epochs, accelerator=cfg.trainer.accelerator,
                            devices=cfg.trainer.devices, logger=False, enable_checkpointing=False,
                            enable_progress_bar=False, enable_model_summary=False,
                            limit_val_batches=1.0 if history else 0, num_sanity_val_steps=0,
                            callbacks=[history] if history else [], deterministic=True)
        trainer.fit(system, train_dataloaders=dm.train_dataloader(),
                    val_dataloaders=dm.val_dataloader() if history else None)
    save_torch(folder / EXPERT_FILE, expert.state_dict())
    logged = {k: float(v) for k, v in trainer.callback_metrics.items()}
    atomic_write_text(folder / "pretraining.json", json.dumps({
        "config": _plain(dataclasses.asdict(config)), "final": logged,
        "steps": trainer.global_step, "wall_time_s": time.perf_counter() - start}, indent=2))
