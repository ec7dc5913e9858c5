"""What a command checks once its runs are resolved, before it computes, reads data or trains anything: that the
folders it writes take a new file (``check_writable``) and that Lightning takes the run's trainer options
(``check_trainer_options``: accelerator, devices, strategy, precision, nodes, parsed by Lightning itself), and that
a recipe that mixes clips has two per batch (``check_mixed_batch``). Each failure is one line naming the folder or
the option.

A valid accelerator this machine lacks (``gpu`` on a CPU machine) stops a run here; a ``--dry-run`` plans it (it is
how a cluster job is checked from a login node) and says that the run would stop on this machine.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import logging
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .spec import RunConfig
from .tasks import get_task


class UnwritableFolderError(ValueError):
    """A folder a command would write cannot take a new file."""


class TrainerOptionError(ValueError):
    """Lightning refuses a run's trainer options, or this machine lacks the accelerator they name."""


def check_writable(folder: str | Path, option: str | None) -> None:
    """``folder``, or where it would be created (the nearest folder above it that exists), takes a new file; else
    ``UnwritableFolderError`` naming it and ``option``, the flag that moves it elsewhere (None: there is none)."""
    folder = Path(folder)
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    where = "" if existing == folder else f" (it would be created in {existing})"
    elsewhere = f", or pass {option} DIR" if option else ""
    if not existing.is_dir():
        raise UnwritableFolderError(f"{folder}: {existing} is not a folder{elsewhere}")
    try:  # a probe, not os.access: a read-only mount or an immutable folder refuses even root
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as err:
        raise UnwritableFolderError(f"{folder}: cannot write there{where} ({err.strerror or err}); make it "
                                    f"writable{elsewhere}") from None


def write_refused(err: OSError) -> str | None:
    """One line for a file the system refuses (no permission, a read-only file system, a full disk), naming it;
    None for any other OSError."""
    if err.errno not in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT) or not err.filename:
        return None
    return f"{err.filename}: {err.strerror}; check the permissions of it and its folder, or free space"


CLOSED_PIPE_STATUS = 141  # 128 + SIGPIPE: what a shell reports for a command whose reader went away


def stdout_closed() -> int:
    """After a ``BrokenPipeError`` (``experiments show ... | head -1``: the reader has what it wanted and is gone):
    point stdout at /dev/null, so that the interpreter's last flush does not raise again, and return the status to
    exit with, quietly."""
    import os
    import sys

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return CLOSED_PIPE_STATUS


def check_trainer_options(cfg: RunConfig, on_this_machine: bool) -> str | None:
    """Raise ``TrainerOptionError`` where the run's Trainer would refuse its options. ``on_this_machine``: the run
    starts here, so its accelerator must be here too; otherwise (a dry run, or a run skipped for its data) an absent
    accelerator is returned as a note and only what holds on any machine is checked."""
    t = cfg.trainer
    devices = tuple(t.devices) if isinstance(t.devices, (list, tuple)) else t.devices
    fails, note = _check_options(get_task(cfg.task).trains, t.accelerator, devices, t.num_nodes, t.strategy,
                                 t.precision)
    if fails:
        raise TrainerOptionError(f"{cfg.table}/{cfg.row}: {fails}")
    if note and on_this_machine:
        raise TrainerOptionError(f"{cfg.table}/{cfg.row}: {note}; pass --accelerator cpu, or run it where there is one")
    return note


@functools.lru_cache(maxsize=64)
def _check_options(trains: bool, accelerator: str, devices: Any, num_nodes: int, strategy: str, precision: str
                   ) -> tuple[str | None, str | None]:
    """(why Lightning refuses the options, or None; a note when the accelerator is absent here, or None)."""
    if not trains:  # an evaluation-only run builds no Trainer: its one device is ``evaluation_device``'s
        return _evaluation_accelerator(accelerator)
    from lightning.fabric.connector import _convert_precision_to_unified_args
    from lightning.pytorch.accelerators import AcceleratorRegistry
    from lightning.pytorch.strategies import StrategyRegistry
    from lightning.pytorch.trainer.connectors.accelerator_connector import _AcceleratorConnector

    try:
        _convert_precision_to_unified_args(precision)
    except ValueError as err:
        return f"trainer.precision={precision!r} (--precision): {_one_line(err)}", None
    if strategy.lower() != "auto" and strategy.lower() not in StrategyRegistry.available_strategies():
        return (f"trainer.strategy={strategy!r} (--strategy) is not a Lightning strategy; one of auto, "
                f"{', '.join(StrategyRegistry.available_strategies())}"), None
    names = sorted(AcceleratorRegistry.available_accelerators())
    if accelerator not in (*names, "auto", "gpu"):
        return (f"trainer.accelerator={accelerator!r} (--accelerator) is not a Lightning accelerator; one of auto, "
                f"gpu, {', '.join(names)}"), None
    here = [name for name in names if AcceleratorRegistry[name]["accelerator"].is_available()]
    if accelerator not in ("auto", "gpu", *here) or (accelerator == "gpu" and not {"cuda", "mps"} & set(here)):
        return _gpu_devices(devices), (f"trainer.accelerator={accelerator!r} (--accelerator): none here (this "
                                       f"machine has {', '.join(here)})")
    try:
        with _quiet():  # Lightning's notes on the choices it makes are said again when the run starts
            _AcceleratorConnector(devices=devices, num_nodes=num_nodes, accelerator=accelerator, strategy=strategy,
                                  precision=precision)
    except Exception as err:  # whatever Lightning raises, the Trainer would raise it at the start
        return (f"Lightning refuses --accelerator {accelerator} --devices {_shown(devices)} --strategy {strategy} "
                f"--precision {precision} --num-nodes {num_nodes}: {_one_line(err)}"), None
    return None, None


def check_mixed_batch(cfg: RunConfig) -> None:
    """A run that mixes clips (mixup, cutmix) needs two in each per-device batch: timm mixes a batch with its flip
    and an odd batch's last clip is left out, so a batch of one trains on nothing. Refused naming the options."""
    optim = cfg.optim
    if (optim.mixup_alpha > 0 or optim.cutmix_alpha > 0) and cfg.data.batch_size < 2 and get_task(cfg.task).trains:
        raise ValueError(f"{cfg.table}/{cfg.row}: mixup/cutmix mix each clip with another of its per-device batch, so "
                         f"data.batch_size={cfg.data.batch_size} (--batch-size) trains on no clip; give 2 or more, or "
                         f"turn them off (--set optim.mixup_alpha=0 --set optim.cutmix_alpha=0)")


def _evaluation_accelerator(accelerator: str) -> tuple[str | None, str | None]:
    """The accelerators ``experiments.harness.tasks.evaluation_device`` takes, and whether this machine has a GPU for
    it."""
    if accelerator not in ("cpu", "gpu", "cuda", "auto"):
        return (f"trainer.accelerator={accelerator!r} (--accelerator): an evaluation-only run takes cpu, gpu, cuda "
                f"or auto"), None
    import torch

    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        return None, f"trainer.accelerator={accelerator!r} (--accelerator): none here (torch sees no CUDA device)"
    return None, None


def _gpu_devices(devices: Any) -> str | None:
    """Why ``devices`` is no device selection for an accelerator of indexed devices (GPUs), as Lightning parses it
    (a count, -1 for all, "auto", or indices such as "0,2"); None when it is one. Needs no such device here."""
    from lightning.fabric.utilities.device_parser import _check_data_type, _normalize_parse_gpu_string_input

    if devices == "auto":
        return None
    why = "takes a count, -1 (all), auto, or device indices such as 0,2"
    try:
        _check_data_type(list(devices) if isinstance(devices, tuple) else devices)
        parsed = _normalize_parse_gpu_string_input(devices)
    except (TypeError, ValueError):
        return f"trainer.devices={_shown(devices)} (--devices): Lightning {why}"
    ids = list(parsed) if isinstance(parsed, (list, tuple)) else None
    if (ids is None and (parsed == 0 or parsed < -1)) or (ids is not None and (not ids or min(ids) < 0)):
        return f"trainer.devices={_shown(devices)} (--devices): Lightning {why}"
    return None


def _shown(devices: Any) -> str:
    return ",".join(map(str, devices)) if isinstance(devices, (list, tuple)) else str(devices)


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in ("lightning.pytorch", "lightning.fabric")]
    levels = [log.level for log in loggers]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for log in loggers:
                log.setLevel(logging.ERROR)
            yield
    finally:
        for log, level in zip(loggers, levels):
            log.setLevel(level)
