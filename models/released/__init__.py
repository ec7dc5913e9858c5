"""Readers of the authors' released checkpoints: a file of the authors' layout loaded strictly into the model of ours
that computes the authors' function with it.

One module per layout, each a ``ReleasedLayout`` (``base.py``) in ``LAYOUTS`` by its name: ``mformer``
(facebookresearch/Motionformer), ``xvit`` (1adrianb/video-transformers), ``tokshift``
(VideoNetworks/TokShift-Transformer: its video ViT and TokShift, MSCA's base) and ``cast`` (KHU-VLL/CAST, ``.pth``
or DeepSpeed tag folders, ``deepspeed.py``). A layout says

- ``name``, ``title``: the short name ("mformer") and the authors' code, for messages;
- ``recognise(checkpoint) -> bool``: whether the file's contents are of the layout, from keys and structure only;
- ``describe(checkpoint) -> dict``: what the file itself tells, at least ``DESCRIPTION_KEYS``, None where the
  file does not say;
- ``required_model(description) -> RequiredModel``: our registered model and overrides that compute that function;
- ``mismatches(description, model) -> list[str]``: what a given model does otherwise (classes, frames, crop,
  width, variant), empty when it fits;
- ``convert(checkpoint, model) -> dict[str, Tensor]``: the weights in our layout.

``load_released(model, source, layout=None, known=None)`` reads a file (``read_released``: weights only), recognises
its layout or checks the one named, completes what the file does not store from ``known`` (refusing a fact it states
otherwise), refuses a model that does not fit, converts and loads strictly; ``describe_released`` says what a file
holds, ``required_model`` which model it needs, ``model_mismatches`` and ``check_fits`` what a model (one on the
``meta`` device too) does otherwise. Every refusal is one ``ReleasedWeightsError`` (a ``CheckpointError``) whose
single line names the file; nothing is loaded then. How each reader was proven equal to the authors' code:
tests/golden/released/README.md.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from torch import nn

from .base import (
    DESCRIPTION_KEYS,
    KNOWN_FACTS,
    ReleasedLayout,
    ReleasedWeightsError,
    RequiredModel,
    converted,
    describe_with,
    first_keys,
    load_into,
    read_released,
)
from .cast import CAST_LAYOUT
from .mformer import MFORMER_LAYOUT
from .tokshift import TOKSHIFT_LAYOUT
from .xvit import XVIT_LAYOUT

LAYOUTS: dict[str, ReleasedLayout] = {layout.name: layout for layout in (MFORMER_LAYOUT, XVIT_LAYOUT, TOKSHIFT_LAYOUT,
                                                                         CAST_LAYOUT)}

Source = str | os.PathLike | Mapping[str, Any]


def recognise_layout(checkpoint: Mapping[str, Any], label: str = "checkpoint",
                     layout: str | None = None) -> ReleasedLayout:
    """The layout of ``checkpoint``: the one named (checked against its contents), or the one that recognises it."""
    if layout is not None and layout not in LAYOUTS:
        raise ReleasedWeightsError(f"{label}: no released layout {layout!r}; known: {', '.join(LAYOUTS)}")
    found = [candidate for candidate in LAYOUTS.values() if _recognises(candidate, checkpoint)]
    if layout is not None:
        if LAYOUTS[layout] in found:
            return LAYOUTS[layout]
        actual = f"a checkpoint of {found[0].title}, layout {found[0].name!r}" if found else "of no released layout"
        raise ReleasedWeightsError(f"{label}: layout {layout!r} ({LAYOUTS[layout].title}) was named, but the file "
                                   f"is {actual}; it holds {_holds(checkpoint)}")
    if len(found) != 1:
        what = "none of the released layouts" if not found else f"several layouts ({[f.name for f in found]})"
        raise ReleasedWeightsError(f"{label}: recognised by {what} ({', '.join(LAYOUTS)}); it holds "
                                   f"{_holds(checkpoint)}")
    return found[0]


def describe_released(source: Source, layout: str | None = None,
                      known: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What a released file holds (``ReleasedLayout.describe``, ``layout`` and ``file`` added, completed by
    ``known``), read without running anything."""
    checkpoint, label = read_released(source)
    reader = recognise_layout(checkpoint, label, layout)
    return {**describe_with(reader, checkpoint, label, known), "file": None if isinstance(source, Mapping) else label}


def load_released(model: nn.Module, source: Source, layout: str | None = None,
                  known: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Load a released checkpoint (a file, a DeepSpeed tag folder, or its contents already read) into ``model``
    strictly: its layout recognised or the named one checked, the facts it does not store taken from ``known``, the
    model checked against it (classes, frames, crop, variant), every key matched. Returns the file's description;
    refuses with one ``ReleasedWeightsError`` line naming the file, loading nothing."""
    checkpoint, label = read_released(source)
    reader = recognise_layout(checkpoint, label, layout)
    return {**load_into(model, reader, checkpoint, label, known),
            "file": None if isinstance(source, Mapping) else label}


def check_fits(model: nn.Module, source: Source, layout: str | None = None,
               known: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Every check ``load_released`` makes, loading nothing: for a model on the ``meta`` device, before a run
    allocates it. Returns the description, or refuses as ``load_released`` does."""
    checkpoint, label = read_released(source)
    reader = recognise_layout(checkpoint, label, layout)
    description = describe_with(reader, checkpoint, label, known)
    converted(model, reader, checkpoint, label, description)
    return {**description, "file": None if isinstance(source, Mapping) else label}


def required_model(description: Mapping[str, Any]) -> RequiredModel:
    """Our registered model and overrides that compute the function of the described checkpoint."""
    return LAYOUTS[description["layout"]].required_model(description)


def model_mismatches(description: Mapping[str, Any], model: nn.Module) -> list[str]:
    """What ``model`` does otherwise than the described checkpoint's model (empty: it fits); for a check before any
    weights are read, e.g. on a model built on the meta device."""
    return LAYOUTS[description["layout"]].mismatches(description, model)


def _recognises(layout: ReleasedLayout, checkpoint: Mapping[str, Any]) -> bool:
    try:
        return bool(layout.recognise(checkpoint))
    except (KeyError, TypeError, AttributeError, IndexError, ValueError):  # another structure altogether
        return False


def _holds(checkpoint: Mapping[str, Any]) -> str:
    keys = [str(k) for k in checkpoint]
    nested = next((checkpoint[k] for k in ("model_state", "state_dict", "model", "module")
                   if isinstance(checkpoint.get(k), Mapping)), None)
    return f"keys {first_keys(keys)}" + (f"; nested weights {first_keys([str(k) for k in nested])}"
                                         if nested else "")


__all__ = ["DESCRIPTION_KEYS", "KNOWN_FACTS", "LAYOUTS", "ReleasedLayout", "ReleasedWeightsError", "RequiredModel",
           "check_fits", "describe_released", "load_released", "model_mismatches", "read_released",
           "recognise_layout", "required_model"]
