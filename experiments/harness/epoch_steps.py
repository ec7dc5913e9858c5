"""How many batches a training epoch draws: all of each process's loader (Lightning's count), or the whole global
batches the training set holds (``TrainerConfig.epoch_steps``), as VideoMAE's and CAST's loops count their epochs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .spec import RunConfig


def epoch_batch_limit(cfg: RunConfig, train_samples: int | None, world_size: int) -> int | None:
    """The batches each process draws an epoch under ``trainer.epoch_steps="whole_global_batches"``: the whole
    global batches the training set holds (``train_samples // global batch``, the optimiser steps of an epoch) times
    the batches each step accumulates. None under "all_batches": Lightning draws every batch and steps a last,
    partial accumulation too. A training set smaller than one global batch is refused in one line."""
    t = cfg.trainer
    if t.epoch_steps == "all_batches":
        return None
    if t.epoch_steps != "whole_global_batches":
        raise ValueError(f"{cfg.table}/{cfg.row}/{cfg.column}: unknown trainer.epoch_steps {t.epoch_steps!r}; use "
                         f"all_batches or whole_global_batches")
    global_batch = cfg.data.batch_size * world_size * t.accumulate_grad_batches
    if train_samples is None:
        raise ValueError(f"{cfg.table}/{cfg.row}/{cfg.column}: trainer.epoch_steps=whole_global_batches needs the "
                         f"training set's size, and the {cfg.data.dataset} data module does not give it")
    steps = train_samples // global_batch
    if steps == 0:
        raise ValueError(f"{cfg.table}/{cfg.row}/{cfg.column}: trainer.epoch_steps=whole_global_batches takes "
                         f"{train_samples} // {global_batch} = 0 steps an epoch: the training set ({cfg.data.dataset}, "
                         f"{train_samples} samples) holds no whole global batch ({cfg.data.batch_size} per process x "
                         f"{world_size} x {t.accumulate_grad_batches} accumulated)")
    return steps * t.accumulate_grad_batches


def limit_epoch(cfg: RunConfig, trainer: Any, train_samples: int | None, world_size: int,
                echo: Callable[[str], None]) -> None:
    """The trainer's batches an epoch, for each of ``world_size`` processes, cut to ``epoch_batch_limit`` where the
    run asks for whole global batches; set before the fit, whose loop reads it when it first sets up the training
    loader (and the schedule, its count of steps)."""
    limit = epoch_batch_limit(cfg, train_samples, world_size)
    if limit is None:
        return
    trainer.limit_train_batches = limit
    echo(f"    {limit // cfg.trainer.accumulate_grad_batches} optimizer steps an epoch: {train_samples} samples // "
         f"a global batch of {cfg.data.batch_size * world_size * cfg.trainer.accumulate_grad_batches}, "
         f"{limit} batches of each process (the rest of each epoch is not drawn)")
