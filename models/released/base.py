"""What every reader of an authors' released checkpoint provides (``ReleasedLayout``), and the strict load they share.

A released file is read only through ``models.weights.load_weights_file`` (``weights_only``: a pickle that would run
code is refused by name, a truncated file is one line naming it). Its layout's reader says what the file holds
(``describe``), what our model must be to compute the authors' function with it (``required_model``,
``mismatches``), and converts its weights (``convert``); ``load_into`` then loads them strictly: every missing,
unexpected or misshapen key refuses the file before the model is touched. Every refusal is one
``ReleasedWeightsError`` whose single line names the file.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..weights import CheckpointError, load_weights_file

_logger = logging.getLogger(__name__)

SHOWN_KEYS = 5  # keys a refusal names before "and N more"


class ReleasedWeightsError(CheckpointError):
    """A released checkpoint that cannot be read, is not of the named layout, or does not fit the model; the message
    is one line that names the file and what is wrong."""


@dataclass(frozen=True)
class RequiredModel:
    """The registered model (``create_model(name, **overrides)``) that computes a checkpoint's function."""

    name: str
    overrides: dict[str, Any] = field(default_factory=dict)


class ReleasedLayout:
    """One authors' checkpoint layout. A reader sets ``name`` (the short name ``LAYOUTS`` keys it by), ``title`` (the
    authors' code, for messages) and implements the methods below; a checkpoint is what ``load_weights_file``
    returns for the file (its nesting included)."""

    name: str = ""
    title: str = ""

    def recognise(self, checkpoint: Mapping[str, Any]) -> bool:
        """Whether the checkpoint is of this layout, from its keys and structure only."""
        raise NotImplementedError

    def describe(self, checkpoint: Mapping[str, Any]) -> dict[str, Any]:
        """What the file itself tells: classes per head, frames, crop and grid, tubelet, attention variant, position
        embedding, the stored configuration if any, dataset hints (None where the file does not say). Raises
        ``ValueError`` for a checkpoint of this layout that holds no usable weights."""
        raise NotImplementedError

    def required_model(self, description: Mapping[str, Any]) -> RequiredModel:
        """The registered model and the overrides that compute the authors' function with these weights."""
        raise NotImplementedError

    def mismatches(self, description: Mapping[str, Any], model: nn.Module) -> list[str]:
        """What ``model`` does otherwise than the authors' model of ``description`` (classes, frames, crop,
        variant...), each a short phrase; empty when it fits."""
        raise NotImplementedError

    def convert(self, checkpoint: Mapping[str, Any], model: nn.Module) -> dict[str, Tensor]:
        """The checkpoint's weights as a state dict of ``model`` (in its dtype where a weight is computed, as a
        resampled position table); weights the authors' model never uses are left out."""
        raise NotImplementedError


def source_label(source: str | os.PathLike | Mapping[str, Any]) -> str:
    """How a refusal names the checkpoint: its path, or "checkpoint" for one handed over in memory."""
    return "checkpoint" if isinstance(source, Mapping) else str(source)


def read_checkpoint(source: str | os.PathLike | Mapping[str, Any]) -> Mapping[str, Any]:
    """The contents of a released file (or a checkpoint already in memory), read without running anything."""
    if isinstance(source, Mapping):
        return source
    try:
        checkpoint = load_weights_file(Path(source))
    except CheckpointError as err:  # its message is one line naming the file
        raise ReleasedWeightsError(str(err)) from None
    if not isinstance(checkpoint, Mapping):
        raise ReleasedWeightsError(f"{source}: holds a {type(checkpoint).__name__}, not a checkpoint (a dict)")
    return checkpoint


def stored_config(checkpoint: Mapping[str, Any]) -> dict[str, Any] | None:
    """The whole configuration a PySlowFast training checkpoint stores (``cfg``: ``cfg.dump()``, a YAML string),
    parsed without running anything (``yaml.safe_load``), or None."""
    cfg = checkpoint.get("cfg")
    if not isinstance(cfg, str):
        return None
    import yaml

    try:
        parsed = yaml.safe_load(cfg)
    except yaml.YAMLError as err:
        raise ValueError(f"its cfg is not YAML ({' '.join(str(err).split())[:120]})") from None
    return parsed if isinstance(parsed, dict) else None


def describe_with(layout: ReleasedLayout, checkpoint: Mapping[str, Any], label: str) -> dict[str, Any]:
    """``layout.describe`` with its refusal as one ``ReleasedWeightsError`` naming the file."""
    try:
        return layout.describe(checkpoint)
    except (ValueError, KeyError) as err:
        raise ReleasedWeightsError(f"{label}: {layout.title} checkpoint without usable weights: "
                                   f"{_one_line(err)}") from None


def load_into(model: nn.Module, layout: ReleasedLayout, checkpoint: Mapping[str, Any], label: str
              ) -> dict[str, Any]:
    """Check that ``model`` computes the authors' function with ``checkpoint``, convert it and load it strictly;
    returns the description. Nothing is loaded unless every key and shape matches."""
    description = describe_with(layout, checkpoint, label)
    differences = layout.mismatches(description, model)
    if differences:
        raise ReleasedWeightsError(f"{label}: the {layout.title} checkpoint does not fit the model: "
                                   f"{'; '.join(differences)}")
    try:
        state_dict = layout.convert(checkpoint, model)
    except (ValueError, KeyError) as err:
        raise ReleasedWeightsError(f"{label}: {layout.title} checkpoint: {_one_line(err)}") from None
    target = model.state_dict()
    missing = [k for k in target if k not in state_dict]
    unexpected = [k for k in state_dict if k not in target]
    misshapen = [f"{k} {tuple(v.shape)} vs the model's {tuple(target[k].shape)}" for k, v in state_dict.items()
                 if k in target and v.shape != target[k].shape]
    problems = ([f"missing {len(missing)} key(s): {first_keys(missing)}"] if missing else []) + (
        [f"unexpected {len(unexpected)} key(s): {first_keys(unexpected)}"] if unexpected else []) + (
        [f"other shapes: {first_keys(misshapen)}"] if misshapen else [])
    if problems:
        raise ReleasedWeightsError(f"{label}: the converted {layout.title} checkpoint does not load strictly: "
                                   f"{'; '.join(problems)}")
    with torch.no_grad():
        model.load_state_dict(state_dict, strict=True)
    _logger.info("loaded %s (%s): %d tensors", label, layout.name, len(state_dict))
    return description


def first_keys(keys: list[str], count: int = SHOWN_KEYS) -> str:
    """The first ``count`` keys, and how many more: a refusal names the first mismatches, not hundreds."""
    more = f" and {len(keys) - count} more" if len(keys) > count else ""
    return ", ".join(keys[:count]) + more


def _one_line(err: BaseException) -> str:
    text = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
    return " ".join(text.split())


__all__ = ["ReleasedLayout", "ReleasedWeightsError", "RequiredModel", "describe_with", "first_keys", "load_into",
           "read_checkpoint", "source_label", "stored_config"]
