"""Reading weight files: a checkpoint's tensors without executing anything it holds, unwrapped from the nesting
and prefixes training scripts add, or timm's pretrained weights by name. Knows no model: ``models.pretrained`` (the
video ViT) and ``models.cast.checkpoints`` (CAST's experts) adapt what is read here to their models.

Every weights file is read here, whatever named it (a local file, ``official:``, a ``run:`` checkpoint, a CAST
expert source, a resumed run's last checkpoint): a pickle through ``torch.load(weights_only=True)``, ``.safetensors``
through safetensors. A TorchScript archive carries code that ``torch.jit.load`` runs while loading it, so it is
refused by name unless its source carries the opt-in ``torchscript:`` right before the file name
(``torchscript:FILE``, ``clip:torchscript:FILE``); its tensors are then read by ``models.torchscript_weights``,
which runs none of its code.
"""

from __future__ import annotations

import io
import logging
import os
import pickle
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .torchscript_weights import TorchScriptReadError, is_torchscript_archive, read_torchscript_tensors

_logger = logging.getLogger(__name__)

_NESTING_KEYS = ("model", "state_dict", "module")  # where training scripts put the weights
_PREFIXES = ("module.", "model.", "backbone.", "encoder.")  # DDP / LightningModule / wrapper prefixes
TORCHSCRIPT_PREFIX = "torchscript:"  # the opt-in that lets a source name a TorchScript archive
# Bounds on what a checkpoint's header (the pickle that lists its tensors: ``data.pkl`` in torch's zip format, the
# pickles before the tensors' bytes in its older format) may ask for, checked before torch reads it: the largest
# checkpoint of the papers (a ViT-L run with its optimizer's state) declares a few thousand tensors in a header of
# well under a megabyte. Past them a crafted file could keep the reader busy, or make it allocate, without end.
MAX_HEADER_BYTES = 64 * 2**20
MAX_TENSORS = 100_000
_LEGACY_PICKLES = 4  # torch's older format: magic number, protocol, system info, then the object and its tensors


class CheckpointError(ValueError):
    """A file that cannot be read as model weights; the message names it and says why."""


class UnsafeCheckpointError(CheckpointError):
    """A checkpoint that is not plain tensors and containers: unpickling it could run code, so it is refused."""


def load_weights_file(path: str | os.PathLike, allow_torchscript: bool = False, mmap: bool = False,
                      fix: str | None = None) -> Any:
    """A checkpoint's contents without executing anything it holds: ``.safetensors`` through safetensors, anything
    else through ``torch.load(weights_only=True)`` (tensors, containers, numbers, strings only). A pickle that
    names any other callable (code that would run when unpickled) raises ``UnsafeCheckpointError``, and a file that
    is no checkpoint at all (absent, truncated, text) ``CheckpointError``, each naming the file.

    A TorchScript archive raises ``UnsafeCheckpointError`` too, ending with ``fix`` (default: how to opt in),
    unless ``allow_torchscript``: then its tensors come back by state-dict name, read without running its code.
    ``mmap``: map the tensors instead of reading them (for a caller that only wants the rest)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} {'is not a file' if path.exists() else 'does not exist'}")
    if path.suffix != ".safetensors":  # safetensors bounds its own header (100 MB) and declares no objects
        check_header(path)
    if is_torchscript_archive(path):
        if not allow_torchscript:
            raise UnsafeCheckpointError(torchscript_refusal(path, fix))
        try:
            return read_torchscript_tensors(path)
        except TorchScriptReadError as err:  # its message names the file
            raise CheckpointError(str(err)) from None
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(path)
        except Exception as err:  # safetensors raises its own types for a damaged file
            raise CheckpointError(f"{path}: not a readable safetensors file ({_first_line(err)})") from None
    try:
        return _torch_load(path, mmap)
    except pickle.UnpicklingError as err:
        lines = [line.strip() for line in str(err).splitlines()]
        # torch's message is mostly advice; the line that names what was refused is the useful part
        refused = next((line for line in lines if "GLOBAL" in line or "Unsupported" in line), "not weights only")
        if "GLOBAL" not in refused and not _names_a_callable(path):  # no pickle, or plain data: not a checkpoint
            raise CheckpointError(f"{path}: not a PyTorch checkpoint ({refused})") from None
        raise UnsafeCheckpointError(
            f"{path}: refused: not a plain weights file; unpickling it would build objects other than tensors and "
            f"containers, which can run arbitrary code ({refused}). If you trust its author, re-save its state "
            f"dict as .safetensors or plain tensors.") from None
    except Exception as err:  # a truncated zip, a text file: whatever the reason, no weights
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({_first_line(err)})") from None


def check_header(path: Path) -> None:
    """Refuse, naming ``path``, a checkpoint whose header is over ``MAX_HEADER_BYTES`` or declares more than
    ``MAX_TENSORS`` tensors, before anything of it is unpickled: the header's opcodes are only listed
    (``pickletools``), nothing they name is imported or built. A file that is no pickle is left to the reader,
    which says so."""
    import pickletools
    import zipfile

    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                headers = [info for info in archive.infolist()
                           if info.filename.endswith(("/data.pkl", "/constants.pkl")) or info.filename == "data.pkl"]
                big = next((info for info in headers if info.file_size > MAX_HEADER_BYTES), None)
                if big is not None:
                    _refuse_header(path, f"its header {big.filename} is {big.file_size:,} bytes")
                texts = [archive.read(info) for info in headers]
        except (zipfile.BadZipFile, OSError, EOFError):  # a damaged zip: the reader says so
            return
    else:
        with open(path, "rb") as f:
            header = io.BytesIO(f.read(MAX_HEADER_BYTES + 1))
        texts = []
        for _ in range(_LEGACY_PICKLES):
            start = header.tell()
            try:
                for _op in pickletools.genops(header):
                    pass
            except Exception:  # no more pickles (or one cut at the bound): the reader says why
                if header.tell() > MAX_HEADER_BYTES:
                    _refuse_header(path, f"its header is over {MAX_HEADER_BYTES:,} bytes")
                break
            texts.append(header.getvalue()[start:header.tell()])
    tensors = 0
    for text in texts:
        try:
            tensors += sum(op.name in ("PERSID", "BINPERSID") for op, _, _ in pickletools.genops(text))
        except Exception:  # a damaged pickle: the reader says so
            return
        if tensors > MAX_TENSORS:
            _refuse_header(path, f"its header declares more than {MAX_TENSORS:,} tensors")


def _refuse_header(path: Path, what: str) -> None:
    raise CheckpointError(f"{path}: refused: {what}, past the bound of models.weights (MAX_HEADER_BYTES "
                          f"{MAX_HEADER_BYTES:,} bytes, MAX_TENSORS {MAX_TENSORS:,}); no checkpoint of a paper comes "
                          f"near it")


def torchscript_refusal(path: str | os.PathLike, fix: str | None = None) -> str:
    """The line that refuses a TorchScript archive, ending with ``fix`` (default: how to opt in)."""
    fix = fix or (f"to read only its tensors (none of its code runs), name it {TORCHSCRIPT_PREFIX}{path} "
                  f"(models/README.md, Pretrained weights)")
    return f"{path}: refused: a TorchScript archive, whose loading would run the code it carries; {fix}"


def _torch_load(path: Path, mmap: bool) -> Any:
    if mmap:
        try:
            return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError:  # mmap needs torch's zip format; an older file is read whole
            pass
    return torch.load(path, map_location="cpu", weights_only=True)


def _names_a_callable(path: Path) -> bool:
    """Whether a raw pickle names a callable to import (what can run code); read with ``pickletools``, which only
    lists opcodes and executes nothing. A file that is no pickle (text, JSON) names none."""
    import pickletools

    try:
        with open(path, "rb") as f:
            return any(op.name in ("GLOBAL", "STACK_GLOBAL", "INST") for op, _, _ in pickletools.genops(f))
    except Exception:  # not a pickle, or a truncated one: nothing it names can be imported
        return False


def _first_line(err: BaseException) -> str:
    """The exception's type and its message's first sentence (torch appends paragraphs of advice)."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return f"{type(err).__name__}: {text.split('. ')[0]}" if text else type(err).__name__


def timm_weights(name: str) -> dict[str, Tensor]:
    """The pretrained weights of timm model ``name``, refused by name (with the nearest names) if timm has none."""
    import timm  # the models package has already repaired torchvision, which timm imports

    check_timm_name(name)
    _logger.info("fetching pretrained weights of timm model %s", name)
    return timm.create_model(name, pretrained=True).state_dict()


def check_timm_name(name: str) -> None:
    import difflib

    import timm

    if not timm.is_model(name):
        near = difflib.get_close_matches(name, timm.list_models(), n=3)
        raise CheckpointError(f"timm:{name}: timm has no such model" + (f"; did you mean {', '.join(near)}?"
                                                                          if near else ""))


def read_weights(source: str | os.PathLike) -> tuple[dict[str, Tensor], bool]:
    """The state dict a local checkpoint file holds, unwrapped from ``model`` / ``state_dict`` / ``module``
    nesting, and whether it is a whole trained model of ours (a Lightning checkpoint of a run), which must then fill
    every parameter of the model but its classifier. ``source``: the file, or ``torchscript:FILE`` to allow a
    TorchScript archive (read without running its code; see ``load_weights_file``)."""
    path, allow_torchscript = source, False
    if isinstance(source, str) and source.startswith(TORCHSCRIPT_PREFIX):
        path, allow_torchscript = source.removeprefix(TORCHSCRIPT_PREFIX), True
    checkpoint = load_weights_file(path, allow_torchscript)
    whole_run = isinstance(checkpoint, dict) and "pytorch-lightning_version" in checkpoint
    while isinstance(checkpoint, dict):
        nested = next((checkpoint[k] for k in _NESTING_KEYS if isinstance(checkpoint.get(k), dict)), None)
        if nested is None:
            break
        checkpoint = nested
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f"checkpoint {path} holds no state dict ({type(checkpoint).__name__})")
    return checkpoint, whole_run


def strip_wrapper_prefixes(state_dict: dict[str, Tensor], expected: set[str]) -> dict[str, Tensor]:
    """Drop wrapper prefixes (``module.``, ``model.``, ``encoder.``...), one after another, while the keys match
    none of ``expected`` and the stripped keys do."""
    for prefix in _PREFIXES:
        if expected & state_dict.keys():
            break
        stripped = {k.removeprefix(prefix): v for k, v in state_dict.items() if k.startswith(prefix)}
        if expected & stripped.keys():
            _logger.info("stripping prefix %r from checkpoint keys", prefix)
            state_dict = stripped
    return state_dict
