"""CAST's optimiser steps of an epoch and the lr of each, made by running the authors' training loop
(github.com/KHU-VLL/CAST, checked out outside this repository); ``python -m tools.pipeline_golden.optim cast
--official-code DIR`` writes them with the other optimizer files to ``tests/golden/pipelines/cast/`` (read by
tests/parity/test_cast_optim.py):

- ``optim_epoch.json``: per recipe (SSv2 and K400, ``run_bidirection.py``'s scripts at 16 processes), the training set
  it is made for, ``num_training_steps_per_epoch`` as ``run_bidirection.py`` computes it (``len(dataset_train) //
  total_batch_size``), the length of each process's loader built as the script builds it (``DistributedSampler``,
  ``batch_size`` 6, ``drop_last=True``), and what ``engine_for_onemodel.train_one_epoch`` did with that loader in
  every epoch: the batches it trained, the optimiser steps it took;
- ``optim_epoch_lr.npz``: per recipe the lr of every optimiser step of the whole run (float64), as the loop set it
  (``lr_schedule_values[start_steps + step] * lr_scale`` from ``utils.cosine_scheduler``) when the step was taken.

Sizes: SSv2's 168,913 training clips (the lines of the authors' ``annotations/ssv2/train.csv``, counted and recorded
where the checkout has the file) and K400 at 234,619 clips, where ``len // batch`` and the loader's accumulations
differ by one step, as they do at most sizes.

Stand-ins, at run time (nothing in the checkout changes), recorded in the JSON: the loader is a list of as many
one-clip batches as the authors' ``DataLoader`` has (its length is what the loop reads; decoding 168,913 videos is
not); DeepSpeed's engine, which the scripts' ``--enable_deepspeed`` branch calls, is a model whose ``step()`` takes an
optimiser step at every ``update_freq``-th call since its ``micro_steps`` were reset, as ``DeepSpeedEngine.step`` does
at a gradient-accumulation boundary (``run_bidirection.py`` asserts ``gradient_accumulation_steps() ==
update_freq``); ``torch.cuda.synchronize`` is a no-op on a machine without CUDA. ``cast_imports`` (``optim.py``) loads
``util_tools`` with its shims.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import types
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler

from data.atomic_write import atomic_write_text, save_arrays

# (recipe of tools.pipeline_golden.optim.CAST_RECIPES, training clips): sizes where Lightning's count differs
EPOCH_SIZES = {"ssv2": 168_913, "k400": 234_619}
TRAIN_LISTS = {"ssv2": "annotations/ssv2/train.csv", "k400": "annotations/k400/train.csv"}
STAND_INS = [
    "the training loader: a list of len(DataLoader(range(N), sampler=DistributedSampler(num_replicas=16, rank=0, "
    "shuffle=True), batch_size=6, drop_last=True)) one-clip batches",
    "DeepSpeed's engine: step() takes an optimizer step at every update_freq-th call since micro_steps was reset "
    "(DeepSpeedEngine.step at a gradient-accumulation boundary), recording the lr of its group then",
]


class _DeepSpeedEngineStandIn:
    """What ``train_one_epoch``'s DeepSpeed branch asks of the engine: a forward, ``backward``, and ``step()``,
    stepping the optimizer at each ``gas``-th call; the lr it steps with is recorded."""

    def __init__(self, gas: int, optimizer: torch.optim.Optimizer) -> None:
        self.gas, self._optimizer = gas, optimizer
        self.micro_steps = 0
        self.optimizer = types.SimpleNamespace(loss_scale=1.0)  # get_loss_scale_for_deepspeed reads it
        self.calls = 0
        self.stepped: list[float] = []

    def __call__(self, samples: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return torch.zeros(len(samples), 2)

    def train(self, mode: bool = True) -> _DeepSpeedEngineStandIn:
        return self

    def zero_grad(self) -> None:
        pass

    def backward(self, loss: torch.Tensor) -> None:
        pass

    def step(self) -> None:
        self.micro_steps += 1
        if self.micro_steps % self.gas == 0:
            self.stepped.append(float(self._optimizer.param_groups[0]["lr"]))


def authors_epochs(engine: Any, utils: Any, train_videos: int, epochs: int, update_freq: int, batch: int,
                   world: int) -> tuple[dict[str, Any], np.ndarray]:
    """Every epoch of the authors' loop at ``train_videos`` clips: facts per epoch, and the lr of every step."""
    total = batch * update_freq * world
    steps = train_videos // total  # run_bidirection.py: num_training_steps_per_epoch
    lr, min_lr = 1e-3 * total / 256, 1e-6 * total / 256
    with contextlib.redirect_stdout(io.StringIO()):
        lrs = utils.cosine_scheduler(lr, min_lr, epochs, steps, warmup_epochs=5, warmup_steps=-1)
        wds = utils.cosine_scheduler(0.05, 0.05, epochs, steps)
    items = range(train_videos)
    loader = DataLoader(items, sampler=DistributedSampler(items, num_replicas=world, rank=0, shuffle=True),
                        batch_size=batch, drop_last=True)
    batches = [(torch.zeros(1, 1), torch.zeros(1, dtype=torch.long), None, None)] * len(loader)
    weight = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([{"params": [weight], "lr_scale": 1.0, "weight_decay": 0.05}], lr=lr)
    model = _DeepSpeedEngineStandIn(update_freq, optimizer)
    args = argparse.Namespace()
    trained, stepped = [], []
    for epoch in range(epochs):
        calls, before = model.calls, len(model.stepped)
        with contextlib.redirect_stdout(io.StringIO()):  # its MetricLogger prints every 10 batches
            engine.train_one_epoch(args, model, torch.nn.CrossEntropyLoss(), batches, optimizer, torch.device("cpu"),
                                   epoch, None, 0, None, None, log_writer=None, start_steps=epoch * steps,
                                   lr_schedule_values=lrs, wd_schedule_values=wds,
                                   num_training_steps_per_epoch=steps, update_freq=update_freq)
        trained.append(model.calls - calls)
        stepped.append(len(model.stepped) - before)
    if len(set(trained)) != 1 or len(set(stepped)) != 1:
        raise AssertionError(f"epochs differ: batches trained {sorted(set(trained))}, steps {sorted(set(stepped))}")
    facts = {"train_videos": train_videos, "world_size": world, "batch_size": batch, "update_freq": update_freq,
             "global_batch": total, "epochs": epochs, "num_training_steps_per_epoch": steps,
             "loader_batches_per_process": len(loader), "batches_trained_per_epoch": trained[0],
             "optimizer_steps_per_epoch": stepped[0], "lr_at_global_batch": lr, "min_lr_at_global_batch": min_lr,
             "optimizer_steps": len(model.stepped)}
    return facts, np.asarray(model.stepped, dtype=np.float64)


@contextlib.contextmanager
def _without_cuda_synchronize() -> Any:
    """``torch.cuda.synchronize`` as a no-op where there is no CUDA (train_one_epoch calls it every batch)."""
    if torch.cuda.is_available():
        yield []
        return
    real = torch.cuda.synchronize
    torch.cuda.synchronize = lambda *args, **kwargs: None
    try:
        yield ["torch.cuda.synchronize: a no-op (no CUDA here)"]
    finally:
        torch.cuda.synchronize = real


def _train_list_lines(code: Path, recipe: str) -> int | None:
    path = code / TRAIN_LISTS[recipe]
    try:
        return sum(1 for line in path.read_text().splitlines() if line.strip())
    except (OSError, UnicodeDecodeError):  # not in this checkout (the K400 list is large)
        return None


def make_cast_epochs(code: Path, utils: Any, recipes: dict[str, tuple[str, str, int, int, float]], batch: int,
                     world: int, facts: dict[str, Any], command: str, out: Path) -> None:
    """Write ``optim_epoch.json`` and ``optim_epoch_lr.npz`` into ``out`` (``recipes``: ``CAST_RECIPES``)."""
    import json

    engine = importlib.import_module("engine_for_onemodel")  # run_bidirection.py's loop (K400, SSv2)
    written: dict[str, Any] = {}
    arrays = {}
    with _without_cuda_synchronize() as shims:
        for name, train_videos in EPOCH_SIZES.items():
            script, column, epochs, update_freq, _ = recipes[name]
            recipe, lrs = authors_epochs(engine, utils, train_videos, epochs, update_freq, batch, world)
            written[name] = {"config": script, "column": column, "train_list": TRAIN_LISTS[name],
                             "train_list_lines": _train_list_lines(code, name), **recipe,
                             "lr": f"optim_epoch_lr.npz:{name}"}
            arrays[name] = lrs
    payload = {"official": facts, "command": command,
               "functions": ["run_bidirection.py: num_training_steps_per_epoch = len(dataset_train) // "
                             "total_batch_size; its DataLoader(drop_last=True) over a DistributedSampler",
                             "engine_for_onemodel.py:train_one_epoch (the --enable_deepspeed branch)",
                             "util_tools/utils.py:cosine_scheduler"],
               "stand_ins": STAND_INS + shims, "recipes": written}
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "optim_epoch.json", json.dumps(payload, indent=1) + "\n")
    save_arrays(out / "optim_epoch_lr.npz", compressed=True, **arrays)
    print(f"wrote {out / 'optim_epoch.json'} and {out / 'optim_epoch_lr.npz'}")
