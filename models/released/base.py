"""The authors' released checkpoints read into our models: the layout contract and the one strict loader.

A ``ReleasedLayout`` knows one official repository's checkpoints: it recognises them from their keys and structure,
says what the file itself tells (classes per head, frames, crop, variant, stored arguments), names the model
configuration of ours they need, and converts their weights to our names after checking that the model computes the
official function with them (otherwise ``ModelMismatch``, saying what differs). ``load_released`` reads a file
without running anything it holds (``models.weights.load_weights_file``; a DeepSpeed tag folder through
``models.released.deepspeed``), finds or checks its layout, converts, and loads strictly: a key the model lacks, a
weight the file lacks, a tensor of another shape, each is named, and nothing is loaded. Every refusal is one
``ReleasedWeightsError`` line that names the file.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..weights import CheckpointError, load_weights_file
from .deepspeed import DeepSpeedFolderError, model_states_file


class ReleasedWeightsError(CheckpointError):
    """A released checkpoint that cannot be read into the model; the message names the file and what is wrong."""


class ModelMismatch(ValueError):
    """Raised by ``ReleasedLayout.convert``: the model would not compute the official function with these weights
    (other classes, frames, crop or variant). The message says what differs, without the file's name."""


class ReleasedLayout:
    """One official repository's checkpoint layout (module doc). Subclasses set ``name`` and implement the four
    methods; ``checkpoint`` is what ``load_weights_file`` returned (usually a dict)."""

    name: str = ""

    def recognise(self, checkpoint: Mapping[str, Any]) -> bool:
        """Whether ``checkpoint`` is of this layout, from its keys and structure alone."""
        raise NotImplementedError

    def describe(self, checkpoint: Mapping[str, Any]) -> dict[str, Any]:
        """What the file itself tells (classes per head, frames, crop, variant, stored arguments); None for a fact
        the file does not store."""
        raise NotImplementedError

    def convert(self, checkpoint: Mapping[str, Any], model: nn.Module) -> dict[str, Tensor]:
        """The checkpoint's weights under ``model``'s names; raises ``ModelMismatch`` if ``model`` would compute
        another function with them."""
        raise NotImplementedError

    def model_config(self, description: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        """The registered model of ours (name, overrides) that computes the official function for ``description``
        (``describe``'s result, possibly completed with facts the file does not store)."""
        raise NotImplementedError


LAYOUTS: dict[str, ReleasedLayout] = {}


def register_layout(layout: ReleasedLayout) -> ReleasedLayout:
    LAYOUTS[layout.name] = layout
    return layout


def read_released(source: str | os.PathLike | Mapping[str, Any]) -> tuple[Any, str]:
    """The checkpoint's contents and the name errors give it. ``source``: a file, a DeepSpeed tag folder (its model
    states file is read), or contents already read (named "checkpoint").

    Training scripts store their argparse arguments beside the weights (CAST's and VideoMAE's ``save_model``); an
    ``argparse.Namespace`` holds only data, and what it holds is held to the same weights-only rule."""
    if isinstance(source, Mapping):
        return source, "checkpoint"
    path = Path(source)
    if path.is_dir():
        try:
            path = model_states_file(path)
        except DeepSpeedFolderError as err:
            raise ReleasedWeightsError(str(err)) from None
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            return load_weights_file(path), str(path)
    except CheckpointError as err:  # absent, truncated, or a pickle that would run code: the message names it
        raise ReleasedWeightsError(str(err)) from None


def find_layout(checkpoint: Any, name: str, layout: str | None = None) -> ReleasedLayout:
    """The layout of ``checkpoint`` (the one named, checked; or the only one that recognises it)."""
    if not isinstance(checkpoint, Mapping):
        raise ReleasedWeightsError(f"{name}: holds a {type(checkpoint).__name__}, not a checkpoint dict")
    recognised = [known for known in LAYOUTS.values() if _recognises(known, checkpoint)]
    if layout is not None:
        if layout not in LAYOUTS:
            raise ReleasedWeightsError(f"{name}: unknown layout {layout!r}; known: {', '.join(sorted(LAYOUTS))}")
        if LAYOUTS[layout] not in recognised:
            looks = f"it looks like a {recognised[0].name} checkpoint" if recognised else "no known layout fits it"
            raise ReleasedWeightsError(f"{name}: not a {layout} checkpoint ({looks}; it holds {_top_keys(checkpoint)})")
        return LAYOUTS[layout]
    if len(recognised) != 1:
        found = "none" if not recognised else " and ".join(known.name for known in recognised)
        raise ReleasedWeightsError(f"{name}: recognised by {found} of the known layouts "
                                   f"({', '.join(sorted(LAYOUTS))}); it holds {_top_keys(checkpoint)}")
    return recognised[0]


def _recognises(layout: ReleasedLayout, checkpoint: Mapping[str, Any]) -> bool:
    try:
        return bool(layout.recognise(checkpoint))
    except (KeyError, TypeError, AttributeError, IndexError):  # another structure altogether
        return False


def _top_keys(checkpoint: Mapping[str, Any], count: int = 6) -> str:
    keys = [str(k) for k in checkpoint]
    return "keys " + ", ".join(keys[:count]) + (f" and {len(keys) - count} more" if len(keys) > count else "")


def strict_differences(state_dict: Mapping[str, Tensor], model: nn.Module) -> list[str]:
    """Every way ``state_dict`` fails to fill ``model`` exactly: missing and unexpected keys, other shapes."""
    target = model.state_dict()
    missing = [k for k in target if k not in state_dict]
    unexpected = [k for k in state_dict if k not in target]
    shapes = [f"{k} (file {tuple(v.shape)}, model {tuple(target[k].shape)})" for k, v in state_dict.items()
              if k in target and tuple(v.shape) != tuple(target[k].shape)]
    return [f"{what} {len(keys)}: {', '.join(keys)}" for what, keys in
            (("missing from the file", missing), ("not in the model", unexpected), ("other shapes", shapes)) if keys]


def load_released(model: nn.Module, source: str | os.PathLike | Mapping[str, Any],
                  layout: str | None = None) -> dict[str, Any]:
    """Load a released checkpoint into ``model`` in place, strictly; returns the file's description.

    Args:
        model: the model of ours that ``LAYOUTS[...].model_config`` names for the checkpoint.
        source: the file, a DeepSpeed tag folder, or contents already read.
        layout: a key of ``LAYOUTS``, checked against the file; None = the one layout that recognises it.

    Raises ``ReleasedWeightsError`` (one line naming the file) before anything is loaded if the file cannot be
    read, is of another layout, does not fit the model's classes, frames, crop or variant, or does not fill every
    parameter of the model with a tensor of its shape."""
    checkpoint, name = read_released(source)
    found = find_layout(checkpoint, name, layout)
    try:
        description = found.describe(checkpoint)
        state_dict = found.convert(checkpoint, model)
    except ModelMismatch as err:
        raise ReleasedWeightsError(f"{name}: this {found.name} checkpoint does not fit the "
                                   f"{type(model).__name__}: {err}") from None
    except KeyError as err:  # recognised, but without a weight that says what the network is
        raise ReleasedWeightsError(f"{name}: a {found.name} checkpoint without {err}, from which its network "
                                   f"is read") from None
    differences = strict_differences(state_dict, model)
    if differences:
        raise ReleasedWeightsError(f"{name}: the {found.name} checkpoint's weights do not fill the "
                                   f"{type(model).__name__} exactly; {'; '.join(differences)}")
    model.load_state_dict(state_dict, strict=True)
    return {**description, "layout": found.name, "source": name}


__all__ = ["LAYOUTS", "ModelMismatch", "ReleasedLayout", "ReleasedWeightsError", "find_layout", "load_released",
           "read_released", "register_layout", "strict_differences"]
