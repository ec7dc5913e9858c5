"""Model registry: variants are small registered entrypoints; ``create_model`` is the one public constructor."""

from __future__ import annotations

import difflib
import fnmatch
import inspect
import typing
from collections.abc import Callable, Mapping
from typing import Any

from torch import nn

_MODEL_ENTRYPOINTS: dict[str, Callable[..., nn.Module]] = {}


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Register ``fn`` under its function name. An entrypoint taking ``**overrides`` must annotate the class it
    returns (``-> VideoViT``): that class's constructor defines the options ``create_model`` accepts."""
    name = fn.__name__
    if name in _MODEL_ENTRYPOINTS:
        raise ValueError(f"model {name!r} is already registered")
    _MODEL_ENTRYPOINTS[name] = fn
    return fn


def model_options(name: str) -> list[str]:
    """The constructor options of the registered model ``name`` (its entrypoint's, or its class's when the
    entrypoint forwards ``**overrides``)."""
    return sorted(_accepted(_MODEL_ENTRYPOINTS[name]) or ())


def check_options(target: Callable[..., Any], options: Mapping[str, Any], what: str) -> None:
    """Raise ``ValueError`` naming every option of ``options`` that ``target`` does not accept, and the valid ones.

    ``target`` is a class or function; a function that forwards ``**kwargs`` is checked against the class its
    return annotation names. Nothing is checked when neither says what is accepted.
    """
    accepted = _accepted(target)
    unknown = sorted(set(options) - accepted) if accepted is not None else []
    if unknown:
        raise ValueError(f"{what}: unknown option(s) {', '.join(map(repr, unknown))}; valid options: "
                         f"{', '.join(sorted(accepted))}")


def _accepted(target: Callable[..., Any]) -> set[str] | None:
    """Keyword names ``target`` accepts; None when it takes ``**kwargs`` and no class says more."""
    params = inspect.signature(target).parameters
    names = {n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return names
    if inspect.isclass(target):
        return None
    returned = typing.get_type_hints(target).get("return")
    if inspect.isclass(returned) and returned is not target:
        accepted = _accepted(returned)
        return None if accepted is None else names | accepted
    return None


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
    check_options(_MODEL_ENTRYPOINTS[name], overrides, f"model {name!r}")
    return _MODEL_ENTRYPOINTS[name](**overrides)
