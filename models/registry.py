"""Model registry: variants are small registered entrypoints; ``create_model`` is the one public constructor."""

from __future__ import annotations

import difflib
import fnmatch
from typing import Callable

from torch import nn

_MODEL_ENTRYPOINTS: dict[str, Callable[..., nn.Module]] = {}


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Register ``fn`` (taking ``**overrides``) under its function name."""
    name = fn.__name__
    if name in _MODEL_ENTRYPOINTS:
        raise ValueError(f"model {name!r} is already registered")
    _MODEL_ENTRYPOINTS[name] = fn
    return fn


def list_models(pattern: str | None = None) -> list[str]:
    """Sorted names of the registered models, optionally filtered by a shell-style ``pattern``."""
    names = sorted(_MODEL_ENTRYPOINTS)
    return names if pattern is None else fnmatch.filter(names, pattern)


def create_model(name: str, **overrides) -> nn.Module:
    """Build the registered model ``name``; ``overrides`` replace its constructor defaults."""
    if name not in _MODEL_ENTRYPOINTS:
        close = difflib.get_close_matches(name, _MODEL_ENTRYPOINTS, n=5, cutoff=0.4)
        hint = f"; did you mean {close}?" if close else ""
        raise ValueError(f"unknown model {name!r}{hint} Registered: {list_models()}")
    return _MODEL_ENTRYPOINTS[name](**overrides)
