"""What every reader of an authors' released checkpoint provides (``ReleasedLayout``), how a released file is read,
and the strict load they share.

A released file is read only through ``models.weights.load_weights_file`` (``weights_only``: a pickle that would run
code is refused by name, a truncated file is one line naming it; a DeepSpeed tag folder through
``models.released.deepspeed``). Its layout's reader says what the file holds (``describe``), what our model must be
to compute the authors' function with it (``required_model``, ``mismatches``), and converts its weights
(``convert``); ``load_into`` then loads them strictly: every missing, unexpected or misshapen key refuses the file
before the model is touched. Facts a file does not store (TokShift's variant and frames) come from the caller
(``known``, e.g. a catalogue entry); a fact the file states otherwise than the caller is refused too. Every refusal
is one ``ReleasedWeightsError`` whose single line names the file.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..weights import CheckpointError, load_weights_file
from .deepspeed import DeepSpeedFolderError, model_states_file

_logger = logging.getLogger(__name__)

SHOWN_KEYS = 5  # keys a refusal names before "and N more"
# What every layout's ``describe`` says (None where its file does not): ``classes`` is an int, or {"verb": V,
# "noun": N} for the verb and noun heads of EPIC-KITCHENS (as our models and the verb/noun task take it);
# ``num_classes`` their total; ``variant`` the layout's name for the function (Motionformer's attention, X-ViT's
# "xvit", TokShift's "vit" or "tokshift", CAST's "bidir" or "compo_bidir"); ``dataset`` our dataset name, a hint.
DESCRIPTION_KEYS = ("layout", "variant", "classes", "num_classes", "frames", "crop", "patch", "embed_dim", "depth",
                    "num_heads", "dataset", "epoch")
# The facts a caller may state for a file (``known``) and check against it.
KNOWN_FACTS = ("variant", "classes", "frames", "crop")


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
    authors' code, for messages) and implements the methods below; a checkpoint is what ``read_released`` returns
    for the file (its nesting included)."""

    name: str = ""
    title: str = ""

    def recognise(self, checkpoint: Mapping[str, Any]) -> bool:
        """Whether the checkpoint is of this layout, from its keys and structure only."""
        raise NotImplementedError

    def describe(self, checkpoint: Mapping[str, Any]) -> dict[str, Any]:
        """What the file itself tells: at least ``DESCRIPTION_KEYS`` but ``layout`` (None where the file does not
        say), and what the layout needs besides. Raises ``ValueError`` or ``KeyError`` for a checkpoint of this
        layout that holds no usable weights."""
        raise NotImplementedError

    def required_model(self, description: Mapping[str, Any]) -> RequiredModel:
        """The registered model and the overrides that compute the authors' function with these weights; raises
        ``ValueError`` naming a fact the description lacks or that no model here computes."""
        raise NotImplementedError

    def mismatches(self, description: Mapping[str, Any], model: nn.Module) -> list[str]:
        """What ``model`` does otherwise than the authors' model of ``description`` (classes, frames, crop,
        variant...), each a short phrase naming the option to change; empty when it fits. Reads no weights, so a
        model on the ``meta`` device is checked as well."""
        raise NotImplementedError

    def convert(self, checkpoint: Mapping[str, Any], model: nn.Module) -> dict[str, Tensor]:
        """The checkpoint's weights under ``model``'s names (in its dtype where a weight is computed, as a resampled
        position table); weights the authors' model never uses are left out, a key of no known kind keeps its name
        for the strict load to name."""
        raise NotImplementedError


def read_released(source: str | os.PathLike | Mapping[str, Any]) -> tuple[Mapping[str, Any], str]:
    """The checkpoint's contents and the name refusals give it. ``source``: a file, a DeepSpeed tag folder (its model
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
            checkpoint = load_weights_file(path)
    except CheckpointError as err:  # absent, truncated, or a pickle that would run code: the message names it
        raise ReleasedWeightsError(str(err)) from None
    if not isinstance(checkpoint, Mapping):
        raise ReleasedWeightsError(f"{path}: holds a {type(checkpoint).__name__}, not a checkpoint (a dict)")
    return checkpoint, str(path)


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


def describe_with(layout: ReleasedLayout, checkpoint: Mapping[str, Any], label: str,
                  known: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``layout.describe`` with ``layout`` added and completed by ``known`` (facts of ``KNOWN_FACTS`` the caller
    states, e.g. a catalogue entry): one the file does not store is taken, one it states otherwise is refused. Every
    refusal is one ``ReleasedWeightsError`` naming the file."""
    try:
        description = {**layout.describe(checkpoint), "layout": layout.name}
    except (ValueError, KeyError) as err:
        raise ReleasedWeightsError(f"{label}: a {layout.title} checkpoint without usable weights: "
                                   f"{_one_line(err)}") from None
    unknown = sorted(set(known or {}) - set(KNOWN_FACTS))
    if unknown:
        raise ValueError(f"known facts {unknown} are none of {KNOWN_FACTS}")
    stated = {fact: value for fact, value in (known or {}).items() if value is not None}
    differ = [f"{fact} {description[fact]} in the file, {value} expected" for fact, value in stated.items()
              if description.get(fact) is not None and not _same(description[fact], value)]
    if differ:
        raise ReleasedWeightsError(f"{label}: not the {layout.title} checkpoint expected: {'; '.join(differ)}")
    return {**description, **{fact: value for fact, value in stated.items() if description.get(fact) is None}}


def _same(found: Any, expected: Any) -> bool:
    """Equal as facts: {"verb": 97, "noun": 300} equals itself in any mapping type."""
    if isinstance(found, Mapping) and isinstance(expected, Mapping):
        return dict(found) == dict(expected)
    return found == expected


def differing(file_facts: Mapping[str, Any], model_facts: Mapping[str, Any]) -> list[str]:
    """One phrase per fact the file states (not None) and the model has otherwise: "classes: file 400, model 174"."""
    return [f"{fact}: file {file_facts[fact]}, model {value}" for fact, value in model_facts.items()
            if file_facts.get(fact) is not None and not _same(file_facts[fact], value)]


def strict_differences(state_dict: Mapping[str, Tensor], model: nn.Module) -> list[str]:
    """Every way ``state_dict`` fails to fill ``model`` exactly: missing and unexpected keys, other shapes (a model
    on the ``meta`` device is compared as well)."""
    target = model.state_dict()
    missing = [k for k in target if k not in state_dict]
    unexpected = [k for k in state_dict if k not in target]
    shapes = [f"{k} (file {tuple(v.shape)}, model {tuple(target[k].shape)})" for k, v in state_dict.items()
              if k in target and tuple(v.shape) != tuple(target[k].shape)]
    return [f"{what} {len(keys)}: {first_keys(keys)}" for what, keys in
            (("missing from the file", missing), ("not in the model", unexpected), ("other shapes", shapes)) if keys]


def converted(model: nn.Module, layout: ReleasedLayout, checkpoint: Mapping[str, Any], label: str,
              description: Mapping[str, Any]) -> dict[str, Tensor]:
    """The checkpoint's weights for ``model`` after every check: the model computes the authors' function of
    ``description`` and the converted weights fill it exactly; otherwise one ``ReleasedWeightsError`` line."""
    differences = layout.mismatches(description, model)
    if differences:
        raise ReleasedWeightsError(f"{label}: the {layout.title} checkpoint does not fit the "
                                   f"{type(model).__name__}: {'; '.join(differences)}")
    try:
        state_dict = layout.convert(checkpoint, model)
    except (ValueError, KeyError) as err:
        raise ReleasedWeightsError(f"{label}: {layout.title} checkpoint: {_one_line(err)}") from None
    problems = strict_differences(state_dict, model)
    if problems:
        raise ReleasedWeightsError(f"{label}: the {layout.title} checkpoint's weights do not fill the "
                                   f"{type(model).__name__} exactly; {'; '.join(problems)}")
    return state_dict


def load_into(model: nn.Module, layout: ReleasedLayout, checkpoint: Mapping[str, Any], label: str,
              known: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Check that ``model`` computes the authors' function with ``checkpoint``, convert it and load it strictly;
    returns the description. Nothing is loaded unless every check passes and every key and shape matches."""
    description = describe_with(layout, checkpoint, label, known)
    state_dict = converted(model, layout, checkpoint, label, description)
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


__all__ = ["DESCRIPTION_KEYS", "KNOWN_FACTS", "ReleasedLayout", "ReleasedWeightsError", "RequiredModel", "converted",
           "describe_with", "differing", "first_keys", "load_into", "read_released", "stored_config",
           "strict_differences"]
