"""What the optimizer parity tests share: the golden files of ``tools/pipeline_golden/optim.py`` (the authors'
parameter groups and lrs, made with their code), the map from the authors' parameter names to ours (through our
released-checkpoint converter, on the checkpoint of the same authors' model in ``tests/golden/released/``), a
paper-scale row's model at the golden width, and our optimizer and lr schedule for it."""

from __future__ import annotations

import dataclasses
import json
import types
import warnings
from pathlib import Path
from typing import Any

import torch

import lightning_modules  # noqa: F401  (repairs torchvision before anything imports it)
from lightning_modules import VideoClassifier
from models import create_model
from models.released import describe_released, read_released, recognise_layout, required_model

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
EXACT = 1e-12  # relative
# Our cosine is evaluated in float32 (``configure_optimizers``: torch.cos of a float32 tensor); the authors' in
# float64: equal within this fraction of the peak lr wherever a cosine value enters.
COSINE = 1e-7


def golden(codebase: str, name: str) -> dict[str, Any]:
    return json.loads((GOLDEN / "pipelines" / codebase / name).read_text())


def _released(case: str) -> tuple[Path, dict[str, Any]]:
    folder = GOLDEN / "released" / case
    expected = torch.load(folder / "expected.pt", weights_only=True)
    return folder / expected["checkpoint"], expected["given"]


def released_model(case: str, **changes: Any) -> torch.nn.Module:
    """Our model for the authors' model of ``case`` (``required_model``), its options changed by ``changes``."""
    path, given = _released(case)
    needed = required_model(describe_released(path) | given)
    return create_model(needed.name, **{**needed.overrides, **changes})


def width_options(case: str) -> dict[str, Any]:
    """The options ``required_model`` sets for the golden case: its small width, frames, crop and classes."""
    path, given = _released(case)
    return dict(required_model(describe_released(path) | given).overrides)


def official_to_ours(case: str, model: torch.nn.Module) -> dict[str, list[str]]:
    """Each authors' weight name -> our parameters it becomes, read through our converter: every weight of the
    authors' checkpoint is replaced by a constant tensor (its index + 1), converted, and each of our tensors names
    the indices it holds (resampled, concatenated or split weights keep their constants)."""
    path, _ = _released(case)
    checkpoint, label = read_released(path)
    layout = recognise_layout(checkpoint, label)
    key = next(k for k in ("model_state", "state_dict", "model", "module") if isinstance(checkpoint.get(k), dict))
    names = [n.removeprefix("module.") for n in checkpoint[key]]  # TokShift's DDP keys
    tagged = {**checkpoint, key: {n: torch.full_like(v, i + 1, dtype=torch.float64) if v.is_floating_point() else v
                                  for i, (n, v) in enumerate(checkpoint[key].items())}}
    state = layout.convert(tagged, model)
    ours = {n for n, _ in model.named_parameters()}
    out: dict[str, list[str]] = {}
    for our_name, value in state.items():
        if our_name not in ours or not value.is_floating_point():
            continue
        for index in {round(v) for v in value.unique().tolist()} - {0}:
            out.setdefault(names[index - 1], []).append(our_name)
    return out


def row_config(table: str, row: str, column: str):
    from experiments.harness.plan import resolve_runs

    return next(c for c in resolve_runs(table, "paper", rows=[row]) if c.column == column)


def paper_lr(cfg) -> tuple[float, int]:
    """The lr a paper-scale run trains with at its own hardware (``batch_and_lr``) and its global batch."""
    from experiments.harness.provenance import batch_and_lr

    t = cfg.trainer
    batch = batch_and_lr(cfg, t.devices * t.num_nodes)
    return batch["lr"], batch["global_batch"]


def row_model(cfg, case: str) -> torch.nn.Module:
    """The row's model (its own options) at the golden case's width, frames, crop and classes."""
    overrides = {**cfg.model.overrides, **width_options(case)}
    if "representation_size" in cfg.model.overrides:  # the row's pre-logits layer at the small width
        overrides["representation_size"] = width_options(case).get("representation_size",
                                                                   width_options(case)["embed_dim"])
    return create_model(cfg.model.name, **overrides)


def authors_row_model(cfg, case: str) -> torch.nn.Module:
    """``row_model``, checked to hold exactly the parameters of the authors' model of the golden case, with the
    attention the row sets itself (``row_model`` takes the case's options, its attention among them)."""
    theirs = width_options(case).get("attn_layer")
    ours = cfg.model.overrides.get("attn_layer")
    assert None in (ours, theirs) or ours == theirs, f"the row's attention {ours!r} is not the authors' {theirs!r}"
    model = row_model(cfg, case)
    assert sorted(n for n, _ in model.named_parameters()) == sorted(
        n for n, _ in released_model(case).named_parameters()), "the row's model is not the authors' model"
    return model


def our_module(cfg, model: torch.nn.Module, num_classes: Any = 10) -> VideoClassifier:
    """The row's LightningModule as the runner makes it (``tasks._video_classifier`` and ``execute._scale_lr``)."""
    module = VideoClassifier(model, num_classes, **dataclasses.asdict(cfg.optim))
    module.hparams.lr = paper_lr(cfg)[0]
    return module


def our_groups(module: VideoClassifier) -> dict[str, dict[str, Any]]:
    """Each of our parameters: trainable (in a group), weight decay, lr scale (group lr / the peak lr)."""
    optimizer = module.build_optimizer()
    where = {id(p): g for g in optimizer.param_groups for p in g["params"]}
    out = {}
    for name, p in module.model.named_parameters():
        g = where.get(id(p))
        out[name] = {"trainable": g is not None and p.requires_grad,
                     "weight_decay": None if g is None else g["weight_decay"],
                     "lr_scale": None if g is None else g["lr"] / module.hparams.lr}
    return out


def compare_groups(official: dict[str, dict[str, Any]], mapping: dict[str, list[str]],
                   ours: dict[str, dict[str, Any]], unused: set[str] = frozenset()) -> list[str]:
    """Differences, parameter by parameter (authors' name -> ours): trainable, weight decay, lr scale. ``unused``:
    authors' parameters with no counterpart here (stated by the caller)."""
    problems = []
    mapped = set()
    for name, theirs in official.items():
        if name in unused:
            continue
        if name not in mapping:
            problems.append(f"{name}: no parameter of ours")
            continue
        for our_name in mapping[name]:
            mapped.add(our_name)
            mine = ours[our_name]
            if mine["trainable"] != theirs["trainable"]:
                problems.append(f"{name} -> {our_name}: trainable {mine['trainable']}, authors' {theirs['trainable']}")
                continue
            if not theirs["trainable"]:
                continue
            if mine["weight_decay"] != theirs["weight_decay"]:
                problems.append(f"{name} -> {our_name}: weight decay {mine['weight_decay']}, authors' "
                                f"{theirs['weight_decay']}")
            if abs(mine["lr_scale"] - theirs["lr_scale"]) > EXACT * theirs["lr_scale"]:
                problems.append(f"{name} -> {our_name}: lr scale {mine['lr_scale']}, authors' {theirs['lr_scale']}")
    problems += [f"{n}: ours only" for n in sorted(set(ours) - mapped)]
    return problems


def our_lrs(cfg, steps_per_epoch: int, steps: list[int] | None = None, **changes: Any) -> list[float]:
    """Our lr at every step (a group of lr scale 1), stepping ``configure_optimizers``' scheduler as Lightning
    does, ``steps_per_epoch`` optimiser steps an epoch; or at ``steps`` only, read from the scheduler's
    lambda (what each of its steps applies, checked step by step in the first case)."""
    # one parameter stands in for the model: its groups (weight decay, layer scales) do not enter the schedule
    optim = dataclasses.replace(cfg.optim, weight_decay_exempt="timm", layer_decay=None, **changes)
    module = VideoClassifier(torch.nn.Linear(2, 2), 2, **dataclasses.asdict(optim))
    module.hparams.lr = paper_lr(cfg)[0]
    total = steps_per_epoch * optim.epochs
    module._trainer = types.SimpleNamespace(estimated_stepping_batches=total)
    setup = module.configure_optimizers()
    optimizer, scheduler = setup["optimizer"], setup["lr_scheduler"]["scheduler"]
    if steps is not None:  # LambdaLR's lr at a step is base lr x its lambda: read there (no 100k steps to walk)
        return [scheduler.base_lrs[0] * scheduler.lr_lambdas[0](s) for s in steps]
    out = []
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*(lr_scheduler|optimizer)\.step\(\).*")
        for step in range(total):
            out.append(optimizer.param_groups[0]["lr"])
            assert out[-1] == scheduler.base_lrs[0] * scheduler.lr_lambdas[0](step)
            optimizer.step()
            scheduler.step()
    return out


def fit_schedule(cfg, train_samples: int, world_size: int) -> tuple[int, int, list[float]]:
    """What a paper-scale run of ``world_size`` processes on ``train_samples`` clips sets up, up to its first batch:
    rank 0's training loader (our sampler over that many items, the data module's batch and ``drop_last``), the
    epoch's batches as the runner limits them (``epoch_steps.limit_epoch``), Lightning's count of the fit's optimizer
    steps (``estimated_stepping_batches``), and the lr of each of those steps from the scheduler that
    ``configure_optimizers`` builds on that count. Returns the loader's length, the steps and their lrs."""
    import lightning as L
    from torch.utils.data import DataLoader

    from data.resumable import EpochSampler
    from experiments.harness.epoch_steps import limit_epoch

    class StopBeforeTheFirstBatch(L.Callback):
        def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            trainer.should_stop = True

    items = range(train_samples)
    loader = DataLoader(items, batch_size=cfg.data.batch_size, drop_last=True,
                        sampler=EpochSampler(items, 0, num_replicas=world_size, rank=0))
    optim = dataclasses.replace(cfg.optim, weight_decay_exempt="timm", layer_decay=None)
    module = VideoClassifier(torch.nn.Linear(2, 2), 2, **dataclasses.asdict(optim))
    module.hparams.lr = paper_lr(cfg)[0]
    trainer = L.Trainer(accelerator="cpu", devices=1, max_epochs=optim.epochs, logger=False,
                        accumulate_grad_batches=cfg.trainer.accumulate_grad_batches, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                        num_sanity_val_steps=0, callbacks=[StopBeforeTheFirstBatch()])
    limit_epoch(cfg, trainer, train_samples, world_size, echo=lambda _: None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Lightning's advice on workers and on a fit stopped before its minimum
        trainer.fit(module, train_dataloaders=loader)
    steps = trainer.estimated_stepping_batches
    scheduler = trainer.lr_scheduler_configs[0].scheduler
    return len(loader), steps, [scheduler.base_lrs[0] * scheduler.lr_lambdas[0](s) for s in range(steps)]


def lr_differences(ours: list[float], theirs: list[float], peak: float, cosine: bool) -> list[str]:
    tolerance = [EXACT * abs(t) + (COSINE * peak if cosine else 0.0) for t in theirs]
    return [f"step {i}: ours {o!r}, authors' {t!r}" for i, (o, t, tol) in enumerate(zip(ours, theirs, tolerance,
                                                                                         strict=True))
            if abs(o - t) > tol]
