"""A run's record: what it holds (``run_record``, ``RECORD_SCHEMA``), how a record file is read and written, and
which run (table, row, column, seed, scale) and configuration a record or a checkpoint's ``RUN_STATE`` belongs to
(``run_differences``, ``experiment_key``). Imports no runner, no torch: the reports read records through this module.

Which files a run folder holds, and what they say of its state, is ``experiments.harness.run_dir``'s: a record or a
checkpoint may be reused or resumed only when it was written for the same run, the same table, row, column, seed and
scale, and the same configuration as ``experiment_key`` compares them; otherwise ``RunConflictError`` names the
fields that differ.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from data.root_files import MAX_DEPTH, read_regular_bytes, too_deep, unreadable_value

from .record_schemas import check_record_sections, top_level_model, wrong_top_level_keys
from .spec import RunConfig, with_defaults


class RunConflictError(ValueError):
    """A run directory holds a record or a checkpoint written for another run or another configuration."""


class DamagedRecordError(ValueError):
    """A record (a run's own, a tracked copy of one, a ``static.json``) that cannot be read as one: not
    UTF-8, not JSON, or a value of the wrong shape. The message is one line naming the file and what to do."""


IDENTITY = ("table", "row", "column", "seed", "scale")  # a run's place: its directory
RECORD_KEYS = (*IDENTITY, "metrics")  # what every reader of a run's record needs
RUN_STATE = "vidrepro_run"  # a checkpoint's callback state that says which run, configured how, wrote it

_NONE = type(None)
# What the readers of a record (the runner, the reports) take from it, and the JSON types each key may hold there;
# a key absent here is not read, and an absent optional key is read as missing.
RECORD_SCHEMA: dict[str, tuple[type, ...]] = {
    "table": (str,), "row": (str,), "column": (str,), "seed": (int,), "scale": (str,), "metrics": (dict,),
    "config": (dict,), "dataset": (str,), "data": (dict, _NONE), "data_report": (dict, _NONE),
    "provenance": (dict, _NONE), "git_commit": (str,), "finished_at": (str, _NONE), "reused_from": (str, _NONE),
    "wall_time_s": (int, float, _NONE), "num_params": (int, _NONE), "test_videos": (int, _NONE),
}
RECORD_TOP_LEVEL = top_level_model(RECORD_SCHEMA)  # pydantic checks it, strictly
CONFIG_SECTION_KEYS = ("model", "data", "optim", "trainer")  # a recorded config's sections: objects where present


def local_record_fix(run_folder: str | Path) -> str:
    """What to do with a damaged record of a local run (under runs/): it is the run's own, so rerunning replaces it."""
    return f"delete the run folder {run_folder} (or move it away), or run that run again with --force"


def tracked_record_fix(path: str | Path, table: str) -> str:
    """What to do with a damaged tracked record (reports/results/): it is committed, so git has the good one."""
    return (f"restore it with `git checkout -- {path}`, or track the run again with "
            f"`python -m reports track {table}`")


def read_json(path: str | Path, fix: str) -> Any:
    """The JSON value a file holds; a file that cannot be read, is no regular file (a FIFO is refused before it is
    read: reading one waits for a writer forever), is not UTF-8, not JSON, holds a number of more digits than Python
    converts or nests deeper than ``MAX_DEPTH`` raises ``DamagedRecordError`` naming it, where (line and column), and
    ``fix``."""
    path = Path(path)
    if "\0" in str(path):  # the system calls would fail naming no file
        raise DamagedRecordError(f"{str(path)!r}: cannot be read (its name holds a NUL byte); {fix}")
    try:
        raw = read_regular_bytes(path)
    except OSError as err:
        raise DamagedRecordError(f"{path}: cannot be read ({err.strerror or err}); {fix}") from None
    except ValueError as err:  # not a regular file, or too large to be a record
        raise DamagedRecordError(f"{err}; {fix}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        column = err.start - (raw.rfind(b"\n", 0, err.start) + 1) + 1
        raise DamagedRecordError(f"{path}: not UTF-8 text (byte 0x{raw[err.start]:02x} at line {line} column "
                                 f"{column}); {fix}") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise DamagedRecordError(f"{path}: not valid JSON ({err}); {fix}") from None
    except ValueError as err:  # a number of more digits than Python converts: the parser's own ValueError
        raise DamagedRecordError(f"{path}: not a record ({unreadable_value(err)}); {fix}") from None
    except RecursionError:  # nested past Python's recursion limit: deeper still than the bound below
        value, deep = None, True
    else:
        deep = too_deep(value)
    if deep:
        raise DamagedRecordError(f"{path}: not a record (nested more than {MAX_DEPTH} deep); {fix}")
    return value


def check_record_shape(record: Any, path: str | Path, required: Sequence[str] = RECORD_KEYS,
                       fix: str | None = None) -> dict[str, Any]:
    """``record`` if it is a JSON object with the ``required`` keys and every key of ``RECORD_SCHEMA`` it holds of
    its type (metrics numbers, config sections objects), else ``DamagedRecordError`` naming the file, the key and
    ``fix``: valid JSON of the wrong shape is as unreadable as a file cut short."""
    end = f"; {fix}" if fix else ""
    if not isinstance(record, dict):
        kind = "a list" if isinstance(record, list) else f"the JSON value {json.dumps(record)[:40]}"
        raise DamagedRecordError(f"{path}: not a run record ({kind}, not an object){end}")
    missing = [key for key in required if key not in record]
    if missing:
        raise DamagedRecordError(f"{path}: not a run record (no {', '.join(missing)}){end}")
    wrong = [f"{key} is {_json_kind(record[key])}, expected {_kinds(RECORD_SCHEMA[key])}"
             for key in wrong_top_level_keys(RECORD_TOP_LEVEL, record)]
    config = record.get("config")
    if isinstance(config, dict):
        wrong += [f"config.{key} is {_json_kind(config[key])}, expected an object"
                  for key in CONFIG_SECTION_KEYS if key in config and not isinstance(config[key], dict)]
    if wrong:
        raise DamagedRecordError(f"{path}: not a run record ({'; '.join(wrong)}){end}")
    not_numbers = [key for key, value in record.get("metrics", {}).items() if not _is(value, (int, float))]
    if not_numbers:
        raise DamagedRecordError(f"{path}: not a run record (metric(s) {', '.join(not_numbers)} not numbers){end}")
    if (wrong_section := check_record_sections(record)) is not None:
        raise DamagedRecordError(f"{path}: not a run record ({wrong_section}){end}")
    return record


def _is(value: Any, kinds: tuple[type, ...]) -> bool:
    """``value`` is a JSON value of one of ``kinds`` (true and false are not numbers)."""
    return isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)


def _json_kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "true or false", _NONE: "null"}
    return names.get(type(value), "a number")


def _kinds(kinds: tuple[type, ...]) -> str:
    names = {dict: "an object", str: "a string", int: "an integer", float: "a number", _NONE: "null"}
    shown = [names[k] for k in kinds if not (k is int and float in kinds)]
    return " or ".join(shown)


def read_record(path: Path, required: Sequence[str] = ()) -> dict[str, Any]:
    """A local run's record file (``path``, in its run folder) with the ``required`` keys; a file that is not UTF-8
    JSON, or not a record, raises ``DamagedRecordError`` naming it and what to do (``local_record_fix``)."""
    fix = local_record_fix(path.parent)
    return check_record_shape(read_json(path, fix), path, required, fix=fix)


def write_record(path: Path, record: dict[str, Any]) -> None:
    """Write a record atomically (a reader never sees half of one), once its fields are checked as a reader checks
    them (``check_record_shape``: a metric out of its range is never written)."""
    from data.atomic_write import atomic_write_text

    check_record_shape(record, path, required=(), fix="a run writes no such record: this is a bug")
    atomic_write_text(path, json.dumps(record, indent=2, default=str))


def run_record(cfg: RunConfig, metrics: dict[str, float], start: float, data: Any, data_report: Any,
               num_params: int | None, resume: str | None, commit: str) -> dict[str, Any]:
    """The flat record of one run: what the reports read. ``commit``: the code's, taken when the
    run started (the tree may change while it trains)."""
    return {
        "table": cfg.table,
        "row": cfg.row,
        "column": cfg.column,
        "seed": cfg.seed,
        "scale": cfg.scale,
        "dataset": cfg.data.dataset,
        "data": data,
        "metrics": metrics,
        "num_params": num_params,
        "config": cfg.to_dict(),
        "data_report": data_report,
        "git_commit": commit,
        "resumed_from": resume,
        "wall_time_s": time.perf_counter() - start,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": {"python": platform.python_version(), "platform": platform.platform(),
                 "cpu_count": os.cpu_count(), "argv": sys.argv},
    }


def experiment_key(config: dict[str, Any]) -> str:
    """What a report cell's runs share: the configuration without its place in a table, its seed and the folder
    its data was read from (JSON text, for comparing and indexing)."""
    comparable = comparable_config(config)
    comparable.pop("seed", None)
    if isinstance(comparable.get("data"), dict):
        comparable["data"] = {k: v for k, v in comparable["data"].items() if k != "root"}
    return json.dumps(comparable, sort_keys=True)


def comparable_config(config: dict[str, Any]) -> dict[str, Any]:
    """A run's configuration without its place in a table, its sections completed with today's defaults
    (``with_defaults``): equal for the same experiment in two tables."""
    out = {key: value for key, value in with_defaults(config).items() if key not in ("table", "row", "column")}
    if isinstance(out.get("data"), dict):  # loader processes change the speed, not the numbers (data.resumable)
        out["data"] = {k: v for k, v in out["data"].items() if k != "num_workers"}
    return out


def run_differences(recorded: dict[str, Any], cfg: RunConfig) -> list[str]:
    """What separates a recorded run (its record, a checkpoint's ``RUN_STATE``) from ``cfg``, as "field:
    recorded -> asked": its place (table, row, column, seed, scale), then each field of the configuration that
    ``experiment_key`` compares (the data folder, loader workers and the names of its place are not compared).
    Empty: the same run."""
    place = [f"{k}: {_shown(recorded.get(k, _ABSENT))} -> {_shown(getattr(cfg, k))}" for k in IDENTITY
             if recorded.get(k, _ABSENT) != getattr(cfg, k)]
    config = recorded.get("config")
    if not isinstance(config, dict):
        return [*place, "config: not recorded"]
    old, new = experiment_key(config), experiment_key(cfg.to_dict())
    if old == new:
        return place
    old, new = _flat(json.loads(old)), _flat(json.loads(new))
    fields = [f"{k}: {_shown(old.get(k, _ABSENT))} -> {_shown(new.get(k, _ABSENT))}"
              for k in sorted(old.keys() | new.keys()) if old.get(k, _ABSENT) != new.get(k, _ABSENT)]
    return [*place, *(fields or ["config: differs"])]


_ABSENT = object()  # a field one side does not have


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    """{"optim": {"lr": 1e-3}} -> {"optim.lr": 1e-3} (an empty object is a value)."""
    if not isinstance(value, dict) or not value:
        return {prefix: value}
    out: dict[str, Any] = {}
    for key, item in value.items():
        out.update(_flat(item, f"{prefix}.{key}" if prefix else str(key)))
    return out


def _shown(value: Any) -> str:
    return "(absent)" if value is _ABSENT else json.dumps(value, default=str)


def run_state(cfg: RunConfig, world_size: int) -> dict[str, Any]:
    """What a checkpoint says about the run that wrote it (``RUN_STATE``)."""
    return {**{k: getattr(cfg, k) for k in IDENTITY}, "config": cfg.to_dict(), "world_size": world_size}
