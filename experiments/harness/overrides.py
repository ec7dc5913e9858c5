"""The user's options on a run: the command line's option flags and ``--set SECTION.FIELD=VALUE`` pairs read into
``{section: {field: value}}`` (``given_options``), each checked against its field's type and range, and applied to a
resolved configuration (``apply_overrides``); ``--epochs`` with a step schedule also needs milestones below it
(``check_milestones``). The hardware flags every command that runs a model takes are declared once
(``add_lightning_options``, read back by ``lightning_options``)."""

from __future__ import annotations

import argparse
import collections.abc
import dataclasses
import json
import math
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from data.command_line import MAX_INT, POSITIVE, THREADS, checked, setting

from .run_dir import RunDir
from .spec import RunConfig

SETTABLE_SECTIONS = ("model", "data", "optim", "trainer")  # the sections of a RunConfig that options may change


# Lightning's hardware flags and torch's thread count: the ``trainer`` field each sets, and its help
LIGHTNING_OPTIONS = {
    "accelerator": ("accelerator", "Lightning accelerator: cpu, gpu, auto"),
    "devices": ("devices", "Lightning devices: N, auto, or device indices such as 0,2"),
    "num_nodes": ("num_nodes", "Lightning nodes"),
    "strategy": ("strategy", "Lightning strategy: ddp, fsdp, deepspeed_stage_2, ..."),
    "precision": ("precision", "Lightning precision: 32-true, 16-mixed, bf16-mixed"),
    "threads": ("num_threads",
                f"torch intra-op threads (default: torch's for this machine); recorded in {RunDir.RECORD}"),
}


def add_lightning_options(parser: argparse.ArgumentParser, defaults: Mapping[str, str] | None = None) -> None:
    """``--accelerator``, ``--devices``, ``--num-nodes``, ``--strategy``, ``--precision`` and ``--threads``, each
    passed to the ``trainer`` field of ``LIGHTNING_OPTIONS`` (``lightning_options``). ``defaults``: what the command
    uses for a flag not given, said in its help (else the preset's)."""
    parsed = {"devices": _devices, "num_nodes": POSITIVE, "threads": THREADS}  # the others are taken as given
    for name, (_, help_text) in LIGHTNING_OPTIONS.items():
        default = (defaults or {}).get(name)
        parser.add_argument("--" + name.replace("_", "-"), type=parsed.get(name),
                            help=help_text + (f" (default {default})" if default else ""))


def lightning_options(args: argparse.Namespace) -> dict[str, Any]:
    """The ``trainer`` fields the flags of ``add_lightning_options`` set, None where not given."""
    return {field: getattr(args, name) for name, (field, _) in LIGHTNING_OPTIONS.items()}


def _device_selection(value: str) -> int | str:
    """A count of devices where ``value`` is one in ASCII digits, else the text (``auto``, ``-1``, ``0,2``), which
    Lightning's own parser checks as the runs resolve (``checks.check_trainer_options``)."""
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 9 else value


_devices = checked(_device_selection, "Lightning devices")
# ``--set SECTION.FIELD=VALUE``: VALUE parsed as JSON, bounded in size and depth (data.command_line.setting), else kept
# as a string; an unknown field fails when the runs resolve, naming the valid ones
parse_setting = setting()


def settings_of(given: dict[str, dict[str, Any]]) -> list[str]:
    """The ``--set`` arguments that give the fields ``given`` (``given_options``) again, each on its own."""
    return [arg for section, values in given.items() for name, value in values.items()
            for arg in ("--set", f"{section}.{name}={json.dumps(value, sort_keys=True)}")]


def given_options(overrides: dict[str, dict[str, Any]] | None = None, settings: Iterable[tuple[str, Any]] = ()
                  ) -> dict[str, dict[str, Any]]:
    """The fields the user set, {section: {field: value}}: first ``overrides``, the command line's option flags
    ({"optim": {"epochs": 5}}), where None is a flag not given (argparse's default); then ``settings``, its
    ``--set SECTION.FIELD=VALUE`` pairs, taken as given: an explicit null sets the field to None."""
    given = {section: {k: v for k, v in values.items() if v is not None}
             for section, values in (overrides or {}).items()}
    for key, value in settings:
        section, _, name = key.partition(".")
        if section not in SETTABLE_SECTIONS or not name:
            raise ValueError(f"--set {key}=...: KEY is SECTION.FIELD with SECTION one of "
                             f"{', '.join(SETTABLE_SECTIONS)}")
        given.setdefault(section, {})[name] = value
    return given


def apply_overrides(cfg: RunConfig, given: dict[str, dict[str, Any]]) -> RunConfig:
    """given = {"data": {...}, "optim": {...}, "trainer": {...}} (``given_options``): replace those fields, None
    included, rejecting unknown ones. A dotted name sets one key inside a mapping field, the field's other keys
    kept (``model.overrides.attn_kwargs.frames_per_pass``: ``_into_mappings``)."""
    changes = {}
    for section, values in given.items():
        values = _into_mappings(getattr(cfg, section), section, values)
        valid = [f.name for f in dataclasses.fields(getattr(cfg, section))]
        unknown = sorted(set(values) - set(valid))
        if unknown:
            raise ValueError(f"unknown {section} option(s) {unknown}; valid: {', '.join(valid)}")
        for name, value in values.items():
            check_option_value(type(getattr(cfg, section)), section, name, value)
        if values:
            changes[section] = dataclasses.replace(getattr(cfg, section), **values)
    out = dataclasses.replace(cfg, **changes)
    optim = given.get("optim", {})
    if "epochs" in optim and "milestones" not in optim:
        check_milestones(cfg, out)
    return out


def _into_mappings(config: Any, section: str, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` with each FIELD.KEY[.KEY...] name folded into FIELD: a copy of the field's mapping (nested ones
    too) with that key set. Applied in the order given, so a later setting of the same key wins; an unknown FIELD
    is left for the caller to refuse by name."""
    out: dict[str, Any] = {}
    for name, value in values.items():
        field, _, path = name.partition(".")
        if not path or not hasattr(config, field):
            out[name] = value
            continue
        current = out.get(field, getattr(config, field))
        if not isinstance(current, collections.abc.Mapping):
            raise ValueError(f"--set {section}.{name}=...: {section}.{field} is not a mapping "
                             f"({type(current).__name__}); set it whole with --set {section}.{field}=VALUE")
        out[field] = _with_key(current, path.split("."), value, f"{section}.{field}")
    return out


def _with_key(mapping: collections.abc.Mapping, keys: list[str], value: Any, where: str) -> dict[str, Any]:
    head, *rest = keys
    new = dict(mapping)
    if not rest:
        new[head] = value
        return new
    inner = new.get(head, {})
    if not isinstance(inner, collections.abc.Mapping):
        raise ValueError(f"--set {where}.{'.'.join(keys)}=...: {where}.{head} is {inner!r}, not a mapping")
    new[head] = _with_key(inner, rest, value, f"{where}.{head}")
    return new


def _at_least(low: float) -> tuple[Callable[[Any], bool], str]:
    return (lambda v: v >= low), f"at least {low:g}"


def _between(low: float, high: float) -> tuple[Callable[[Any], bool], str]:
    return (lambda v: low <= v <= high), f"between {low:g} and {high:g}"


_COUNT, _NON_NEGATIVE = _at_least(1), _at_least(0)  # a count: with none of it, nothing would train or test
_POSITIVE = (lambda v: v > 0), "greater than 0"
_FRACTION = _between(0, 1)
# The values an option may take beyond its type, what the code that reads it (the optimiser, the schedule, the data
# loader, Lightning) accepts; each checked when the runs resolve, so that `--dry-run` refuses what the run would.
OPTION_RANGES: dict[str, dict[str, tuple[Callable[[Any], bool], str]]] = {
    "data": {**dict.fromkeys(("num_frames", "frame_stride", "crop_size", "batch_size", "test_clips", "test_crops"),
                             _COUNT),
             "num_workers": _NON_NEGATIVE},  # loader processes; 0 loads in the run's own process
    "optim": {"epochs": _COUNT, "lr": _POSITIVE, "momentum": _FRACTION, "weight_decay": _NON_NEGATIVE,
              "label_smoothing": _FRACTION, "warmup_epochs": _NON_NEGATIVE, "warmup_steps": _NON_NEGATIVE,
              "warmup_start": _FRACTION, "min_lr_ratio": _FRACTION, "gamma": _POSITIVE,
              "milestones": ((lambda v: all(m >= 1 for m in v) and list(v) == sorted(set(v))),
                             "epochs of at least 1, in increasing order"),
              "mixup_alpha": _NON_NEGATIVE, "cutmix_alpha": _NON_NEGATIVE, "mixup_prob": _FRACTION,
              "mixup_switch_prob": _FRACTION, "layer_decay": ((lambda v: 0 < v <= 1), "greater than 0, at most 1")},
    "trainer": {**dict.fromkeys(("num_nodes", "accumulate_grad_batches", "num_threads", "log_every_n_steps",
                                 "check_val_every_n_epoch", "checkpoint_every_n_steps", "reference_batch"), _COUNT),
                "gradient_clip_val": _NON_NEGATIVE,
                # 0 would test the initial model and record it as trained
                "max_steps": ((lambda v: v == -1 or v >= 1), "-1 (the schedule's epochs) or at least 1")},
}


def check_option_value(config_type: type, section: str, name: str, value: Any) -> None:
    """An option's value against its field's type (``int``, ``float``, ``str``, ``bool``, tuples, mappings,
    ``Literal`` choices, ``X | None``) and its range (``OPTION_RANGES``); refused naming the option, what it takes
    and what it got."""
    hint = typing.get_type_hints(config_type)[name]
    if not _fits(value, hint):
        why = (" (VALUE is read as JSON; what is not valid JSON, e.g. an object with unquoted keys, stays a string)"
               if isinstance(value, str) and not _fits_type(str, hint) else "")
        raise ValueError(f"{section}.{name}={value!r}: expects {_describe(hint)}, got a {type(value).__name__}{why}")
    if _has_non_finite(value):
        # JSON as Python reads it takes NaN and Infinity: a NaN lr would pass a dry run and train nothing
        raise ValueError(f"{section}.{name}={value!r}: must be finite (not NaN or infinite)")
    if _has_huge_int(value):  # torch and Lightning take counts as C ints: a larger one overflows deep inside them
        raise ValueError(f"{section}.{name}={_short(value)}: holds an integer past {MAX_INT:,}")
    in_range, allowed = OPTION_RANGES.get(section, {}).get(name, (None, ""))
    if in_range is not None and value is not None and not in_range(value):
        raise ValueError(f"{section}.{name}={value!r}: must be {allowed}")


def _has_non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, (list, tuple)):
        return any(_has_non_finite(v) for v in value)
    if isinstance(value, dict):
        return any(_has_non_finite(v) for v in value.values())
    return False


def _has_huge_int(value: Any) -> bool:
    """An integer past ``MAX_INT`` in a field or its list (a mapping's values are bounded by their own readers: the
    generated sets' schema, the model's size bounds, ``experiments.harness.sizes``)."""
    if isinstance(value, int):
        return abs(value) > MAX_INT
    if isinstance(value, (list, tuple)):
        return any(_has_huge_int(v) for v in value)
    return False


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _arms(hint: Any) -> tuple[Any, ...]:
    """The alternatives of ``X | Y`` (or ``Optional``), else the hint alone."""
    return typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)


def _fits(value: Any, hint: Any) -> bool:
    if len(_arms(hint)) > 1:
        return any(_fits(value, arm) for arm in _arms(hint))
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Literal:
        return value in args
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            return False
        items = args[:1] * len(value) if len(args) == 2 and args[1] is Ellipsis else args
        return len(items) == len(value) and all(_fits(v, a) for v, a in zip(value, items))
    if origin in (collections.abc.Mapping, dict) or hint is dict:
        return isinstance(value, dict)
    if hint is Any or hint not in _SCALARS:
        return True  # a type this check does not know: left to the code that reads it
    return _fits_type(type(value), hint)


def _fits_type(kind: type, hint: Any) -> bool:
    """Whether a value of Python type ``kind`` can be what ``hint`` takes (bool is not a number here)."""
    if len(_arms(hint)) > 1:
        return any(_fits_type(kind, arm) for arm in _arms(hint))
    if typing.get_origin(hint) is typing.Literal:
        return any(type(a) is kind for a in typing.get_args(hint))
    return hint is Any or (hint in _SCALARS and kind in _SCALARS[hint])


_SCALARS = {bool: (bool,), int: (int,), float: (int, float), str: (str,), type(None): (type(None),)}
_PLURALS = {int: "integers", float: "numbers", str: "strings", bool: "booleans"}


def _describe(hint: Any) -> str:
    if len(_arms(hint)) > 1:
        return " or ".join(_describe(a) for a in _arms(hint))
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_PLURALS.get(args[0], str(args[0]))}"
        return f"a list of {len(args)} " + (_PLURALS[args[0]] if len(set(args)) == 1 and args[0] in _PLURALS
                                             else "values")
    if origin in (collections.abc.Mapping, dict) or hint is dict:
        return "an object"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false",
            type(None): "null"}.get(hint, str(hint))


def check_milestones(preset: RunConfig, cfg: RunConfig) -> None:
    """``--epochs N`` shortens a step schedule but leaves its milestones (absolute epochs) where the preset put
    them: one at or past N never happens, and the lr would silently never decay there. Refused, with the
    milestones scaled to N as the suggested fix (an explicit ``--set optim.milestones=...`` is taken as given)."""
    optim = cfg.optim
    late = [m for m in optim.milestones if m >= optim.epochs]
    if optim.schedule != "step" or not late:
        return
    scaled = sorted({max(1, round(m * optim.epochs / preset.optim.epochs)) for m in optim.milestones})
    suggestion = scaled if preset.optim.epochs > 0 and all(m < optim.epochs for m in scaled) else []
    raise ValueError(
        f"{cfg.table}/{cfg.row}: --epochs {optim.epochs} ends before the step schedule's milestone(s) {late} "
        f"(epochs at which the lr is multiplied by {optim.gamma:g}; the preset's {list(optim.milestones)} are for "
        f"{preset.optim.epochs} epochs), so the lr would never decay there; give milestones below {optim.epochs} too, "
        f"e.g. --set 'optim.milestones={json.dumps(suggestion)}'"
        + (" (the preset's scaled to the new length)" if suggestion else " (no decay)"))
