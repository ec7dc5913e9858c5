"""A run's record and its run directory: what ``metrics.json`` holds and how it is read and written, which
run (table, row, column, seed, scale) and configuration a directory or checkpoint belongs to, and finding a finished
run of the same experiment. Imports no runner, no torch: the reports read records through this module.

Each run lives in ``runs/<table>/<row>/seed<k>/<column>/``: TensorBoard events, ``hparams.yaml``,
``checkpoints/last.ckpt`` and, once tested, ``metrics.json`` (the flat record the reports read). A record or a
checkpoint may be reused or resumed only when it was written for the same run: the same table, row, column, seed
and scale, and the same configuration as ``experiment_key`` compares them (every checkpoint carries its run's, under
``RUN_STATE``); otherwise ``RunConflictError`` names the fields that differ. ``--force`` moves the old run, whole,
to ``runs/.replaced/<time>/<table>/...`` (``replace_run``): nothing is deleted, and neither TensorBoard nor the
reports mix the two runs.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from data.root_files import read_regular_bytes

from .record_schemas import MAX_DEPTH, check_record_sections, too_deep, top_level_model, wrong_top_level_keys
from .run_sources import RUN_PREFIX, inside_runs_root, parse_run_source
from .spec import RunConfig, run_dir, with_defaults


class RunConflictError(ValueError):
    """A run directory holds a record or a checkpoint written for another run or another configuration."""


class DamagedRecordError(ValueError):
    """A record (a run's ``metrics.json``, a tracked copy of one, a ``static.json``) that cannot be read as one: not
    UTF-8, not JSON, or a value of the wrong shape. The message is one line naming the file and what to do."""


IDENTITY = ("table", "row", "column", "seed", "scale")  # a run's place: its directory
RECORD_KEYS = (*IDENTITY, "metrics")  # what every reader of a metrics.json needs
RUN_STATE = "vidrepro_run"  # a checkpoint's callback state that says which run, configured how, wrote it
REPLACED_DIR = ".replaced"  # under the runs root; outside runs/<table>/, so reports and run reuse never see it

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
    read: reading one waits for a writer forever), is not UTF-8, not JSON or nests deeper than ``MAX_DEPTH`` raises
    ``DamagedRecordError`` naming it, where (line and column), and ``fix``."""
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
    """A local run's ``metrics.json`` with the ``required`` keys; a file that is not UTF-8 JSON, or not a record,
    raises ``DamagedRecordError`` naming it and what to do (``local_record_fix``)."""
    fix = local_record_fix(path.parent)
    return check_record_shape(read_json(path, fix), path, required, fix=fix)


def write_record(path: Path, record: dict[str, Any]) -> None:
    """Write a record atomically: a ``metrics.json`` is always complete."""
    from data.atomic_write import atomic_write_text

    atomic_write_text(path, json.dumps(record, indent=2, default=str))  # a metrics.json is always complete


def run_record(cfg: RunConfig, metrics: dict[str, float], start: float, data: Any, data_report: Any,
               num_params: int | None, resume: str | None, commit: str) -> dict[str, Any]:
    """The flat record of one run (``metrics.json``): what the reports read. ``commit``: the code's, taken when the
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
    """What separates a recorded run (a metrics.json, a checkpoint's ``RUN_STATE``) from ``cfg``, as "field:
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


def check_run_dir(cfg: RunConfig, runs_root: str | Path) -> None:
    """Raise ``RunConflictError`` when the run's directory holds a record or a checkpoint of another run (its
    table, row, column, seed or scale) or of another configuration (``experiment_key``): reusing or resuming it
    would put that run's numbers under this one's name."""
    run_path = cfg.run_dir(runs_root)
    if (run_path / "metrics.json").exists():
        finished_record(cfg, runs_root)
    elif (run_path / "checkpoints" / "last.ckpt").exists():
        check_resumable(cfg, runs_root)


def finished_record(cfg: RunConfig, runs_root: str | Path) -> dict[str, Any]:
    """The run's metrics.json, checked to be this run's, done with this configuration."""
    path = cfg.run_dir(runs_root) / "metrics.json"
    record = read_record(path, (*RECORD_KEYS, "config"))
    _refuse_another_run(record, cfg, runs_root, "its metrics.json was written for another run")
    return record


def check_resumable(cfg: RunConfig, runs_root: str | Path) -> dict[str, Any] | None:
    """What the run's ``last.ckpt`` says it belongs to (its place, configuration and process count, saved under
    ``RUN_STATE``), checked against ``cfg``; None for a checkpoint written before checkpoints said so (its
    configuration cannot be checked)."""
    path = cfg.run_dir(runs_root) / "checkpoints" / "last.ckpt"
    started = checkpoint_run(path)
    if started is not None:
        _refuse_another_run(started, cfg, runs_root, "its checkpoints/last.ckpt was written for another run",
                            resume=True)
    return started


def checkpoint_run(path: Path) -> dict[str, Any] | None:
    """The ``RUN_STATE`` a checkpoint holds, read without executing anything (``models.weights.load_weights_file``:
    weights only, a TorchScript archive refused) and without reading its tensors (memory-mapped); None when it holds
    none."""
    from models.weights import CheckpointError, UnsafeCheckpointError, load_weights_file

    fix = local_record_fix(path.parent.parent)  # runs/<table>/<row>/seed<k>/<column>/checkpoints/last.ckpt
    try:
        checkpoint = load_weights_file(path, mmap=True, fix=f"a run's checkpoint never is one: {fix}")
    except UnsafeCheckpointError:  # it would run code: refused as every checkpoint load refuses it
        raise
    except CheckpointError as err:  # whatever the reason, the file cannot be resumed from
        raise DamagedRecordError(f"{err}; {fix}") from None
    state = (checkpoint.get("callbacks") or {}).get(RUN_STATE) if isinstance(checkpoint, dict) else None
    return None if state is None else check_record_shape(state, path, (*IDENTITY, "config"), fix=fix)


def run_state(cfg: RunConfig, world_size: int) -> dict[str, Any]:
    """What a checkpoint says about the run that wrote it (``RUN_STATE``)."""
    return {**{k: getattr(cfg, k) for k in IDENTITY}, "config": cfg.to_dict(), "world_size": world_size}


def _refuse_another_run(recorded: dict[str, Any], cfg: RunConfig, runs_root: str | Path, what: str,
                        resume: bool = False) -> None:
    differences = run_differences(recorded, cfg)
    if not differences:
        return
    shown = "; ".join(differences[:6]) + (f"; and {len(differences) - 6} more" if len(differences) > 6 else "")
    keep = ", run again with the original options to finish it" if resume else ""
    raise RunConflictError(
        f"{cfg.run_dir(runs_root)}: {what} (recorded -> asked: {shown}){keep}; run again with --force to replace it "
        f"(the old run is moved to {Path(runs_root) / REPLACED_DIR}/), or use another --runs-dir")


def find_equivalent_run(cfg: RunConfig, runs_root: str | Path) -> Path | None:
    """A finished run (any table) whose configuration equals ``cfg`` except for table/row/column names.

    Motionformer's tables share rows (exact trajectory attention is row 1 of Tables 3a-3d, the last row of Table 4
    and Mformer in Tables 6-8); such a run is trained once and its record reused, saying where it came from. A
    damaged record is passed over: it can stand for no run until it is repaired, and the run it belongs to (its own
    directory's) refuses to start while it is there, naming it.
    """
    target = json.dumps(comparable_config(cfg.to_dict()), sort_keys=True)
    for path in sorted(Path(runs_root).glob(f"*/*/seed{cfg.seed}/{cfg.scale}-*/metrics.json")):
        try:
            record = read_record(path)
        except DamagedRecordError:
            continue
        if not isinstance(record.get("config"), dict):
            continue  # recorded without its configuration: it cannot be compared
        if record.get("reused_from") is None and json.dumps(comparable_config(record["config"]),
                                                           sort_keys=True) == target:
            return path
    return None


def replace_run(run_path: Path, runs_root: str | Path, echo: Callable[[str], None] = print) -> None:
    """``--force``: move the run's directory, whole, to ``replaced_run_dir`` (nothing is deleted)."""
    if run_path.is_dir() and any(run_path.iterdir()):
        archive = replaced_run_dir(run_path, runs_root)
        archive.parent.mkdir(parents=True, exist_ok=True)
        run_path.rename(archive)
        echo(f"    previous run moved to {archive}")


def replaced_run_dir(run_dir: Path, runs_root: str | Path) -> Path:
    """Where ``--force`` keeps the run it replaces: runs/.replaced/<UTC time>/<table>/<row>/seed<k>/<column>."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    return Path(runs_root) / REPLACED_DIR / stamp / run_dir.relative_to(runs_root)


def copy_tensorboard_files(source: Path, run_path: Path) -> None:
    """A reused run's TensorBoard files (event files, ``hparams.yaml``) copied from the run it reuses, so that
    ``tensorboard --logdir runs/<table>`` shows every row of the table, the reused ones with the curves they were
    trained with (their hyper-parameters name the table and row that trained them)."""
    run_path.mkdir(parents=True, exist_ok=True)
    for path in [*sorted(source.glob("events.out.tfevents.*")), source / "hparams.yaml"]:
        if path.is_file() and not (run_path / path.name).exists():
            shutil.copy2(path, run_path / path.name)


def pretrained_weights(cfg: RunConfig, runs_root: str | Path) -> str | dict[str, str] | None:
    """The run's pretrained sources with ``run:<table>/<row>/<column>`` resolved to the last checkpoint of that run
    at this scale and seed (Table 6's "IN-21K+K-400" initialisation, Table 9's K-400 model), or of the run it reused
    (its record's ``reused_from``); it must exist, and lie inside ``runs_root`` (``inside_runs_root``)."""
    sources = cfg.model.pretrained
    if isinstance(sources, str) or sources is None:
        return _resolve_source(cfg, sources, runs_root)
    return {part: _resolve_source(cfg, source, runs_root) for part, source in sources.items()}


def _resolve_source(cfg: RunConfig, name: str | None, runs_root: str | Path) -> str | None:
    if not name or not name.startswith(RUN_PREFIX):
        return name
    table, row, column = parse_run_source(name)
    folder = run_dir(runs_root, table, row, cfg.seed, cfg.scale, column)
    record = folder / "metrics.json"
    if record.exists():  # a reused run keeps no checkpoint: the run it reuses has it
        reused = read_record(record).get("reused_from")
        if reused:
            again = f"`python -m experiments run {table} --rows {row} --scale {cfg.scale}`"
            folder = inside_runs_root(runs_root, Path(runs_root) / reused, f"{record}: its reused_from {reused!r}",
                                      f"a record may only name a run in its own runs folder: delete it, then {again}")
    path = inside_runs_root(runs_root, folder / "checkpoints" / "last.ckpt", f"pretrained source {name}",
                            "a run starts only from a checkpoint inside it: put the file itself there, not a link")
    if not path.exists():
        raise FileNotFoundError(f"{cfg.table}/{cfg.row}: initialisation {name} needs {path}; train it first with "
                                f"`python -m experiments run {table} --rows {row} --scale {cfg.scale}`")
    return str(path)
