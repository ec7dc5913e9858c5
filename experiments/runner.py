"""Run a table: every (row, result column, seed) is one run of its task (a Lightning fit + multi-view test, or an
evaluation of a trained model), and the table's static columns are computed into their record.

The runner asks ``experiments.tasks`` how to serve a run and never inspects a dataset's name; it builds no report
(``python -m experiments run`` does that through ``reports``, the floor above).

Each run lives in ``runs/<table>/<row>/seed<k>/<column>/``: TensorBoard events, ``hparams.yaml``,
``checkpoints/last.ckpt`` and, once tested, ``metrics.json`` (the flat record the reports read).
A run with a ``metrics.json`` is done and skipped; a run with only ``last.ckpt`` resumes from it. Either only if it
was written for the same run: the same table, row, column, seed and scale, and the same configuration as
``experiment_key`` compares them (every checkpoint carries its run's, under ``RUN_STATE``); otherwise the run stops
with the fields that differ (``RunConflictError``). ``--force`` trains again from scratch and first moves the old
run, whole, to ``runs/.replaced/<time>/<table>/...``: nothing is deleted, and neither TensorBoard nor the reports
mix the two runs.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import json
import logging
import math
import os
import platform
import shutil
import sys
import time
import types
import typing
import warnings
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .paper_tables import paper_table
from .progress import TableProgress, duration
from .provenance import (check_multi_node_launch, data_left_out, git_commit, launched_as_global_zero,
                         with_paper_batch)
from .spec import RunConfig, TableSpec, run_dir, table_spec, with_defaults
from .tasks import build_model, check_data_options, evaluation_device, final_metrics, get_task, logged_metrics


class TableNotImplementedError(RuntimeError):
    pass


class MissingDataError(RuntimeError):
    """No run of the requested table can start: every dataset it needs is absent."""


class RunConflictError(ValueError):
    """A run directory holds a record or a checkpoint written for another run or another configuration."""


class NoTrainingDataError(ValueError):
    """A fit that would record an untrained model: its training split has no samples, or it took no step."""


class NoTestDataError(ValueError):
    """A test that would record no result: it read no sample of the split it tests on."""


IDENTITY = ("table", "row", "column", "seed", "scale")  # a run's place: its directory
RECORD_KEYS = (*IDENTITY, "metrics")  # what every reader of a metrics.json needs
RUN_STATE = "vidrepro_run"  # a checkpoint's callback state that says which run, configured how, wrote it
RECORD_FIX = "delete it, or run again with --force"


def resolve_runs(
    table_id: str,
    scale: str = "tiny",
    rows: Sequence[str] | None = None,
    seeds: int = 1,
    data_root: str | Path | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
    settings: Iterable[tuple[str, Any]] = (),
) -> list[RunConfig]:
    """Every run a table needs at a scale, rows in the paper's order, with the user's options applied
    (``given_options``: the option flags ``overrides``, then the ``--set`` pairs ``settings``)."""
    given = given_options(overrides, settings)
    spec = require_spec(table_id)
    selected = {spec.row(key).key for key in rows} if rows else {r.key for r in spec.rows}
    configs = []
    for row, column in spec.runs():
        if row.key not in selected:
            continue
        for seed in range(seeds):
            cfg = with_paper_batch(spec.resolve(row, column, scale, seed, data_root))  # before the user's options
            configs.append(apply_overrides(cfg, given))
    return configs


def missing_data(cfg: RunConfig) -> str | None:
    """Why a run cannot start for lack of data (a real dataset without a root on disk), else None."""
    where = expected_data(cfg)
    return None if where is None else f"needs data: {cfg.data.dataset} ({where})"


def expected_data(cfg: RunConfig) -> str | None:
    """Where the run's dataset should be, if it is a real dataset that is absent; None when the run can start."""
    from data import generated_locally  # data imports torch: only when a run is checked, never for the CLI's help

    if generated_locally(cfg.data.dataset, cfg.data.root):
        return None
    if cfg.data.root is None:
        return f"pass --data-root DIR holding {cfg.data.dataset}/"
    if not Path(cfg.data.root).exists():
        return f"not found at {cfg.data.root}"
    return None


def missing_datasets(configs: Iterable[RunConfig]) -> dict[str, str]:
    """Each absent dataset once, with where it was expected: {dataset: "not found at DIR" | "pass --data-root ..."}."""
    out: dict[str, str] = {}
    for cfg in configs:
        where = expected_data(cfg)
        if where is not None:
            out.setdefault(cfg.data.dataset, where)
    return out


def planned_action(cfg: RunConfig, runs_root: str | Path = "runs", force: bool = False) -> str:
    """What ``run`` would do with one run, for ``--dry-run``: "train", "resume from <ckpt>", "done" (its record
    exists), "reuse <run>" (an identical run of another table finished), or "skip: needs <dataset>" (its data is
    absent: ``missing_datasets`` says where it was expected). A record or checkpoint written for another run or
    configuration raises ``RunConflictError``, as the run itself would."""
    if expected_data(cfg) is not None:
        return f"skip: needs {cfg.data.dataset}"
    run_path = cfg.run_dir(runs_root)
    if force:
        return "train (--force)"
    if (run_path / "metrics.json").exists():
        finished_record(cfg, runs_root)  # another run's record, or another configuration's: RunConflictError
        return "done"
    last = run_path / "checkpoints" / "last.ckpt"
    if last.exists():  # another configuration's checkpoint stops the run before any reuse (check_run_dir)
        check_resumable(cfg, runs_root)
    source = find_equivalent_run(cfg, runs_root)
    if source is not None:
        return f"reuse {source.parent.relative_to(runs_root).as_posix()}"
    return f"resume from {last}" if last.exists() else "train"


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
    record = _read_record(path, (*RECORD_KEYS, "config"))
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
    """The ``RUN_STATE`` a checkpoint holds, read without executing anything (weights only) and without reading its
    tensors (memory-mapped); None when it holds none."""
    import pickle

    import torch

    try:
        try:
            checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError:  # mmap needs torch's zip format; an older file is read whole
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # it names code to run: refused as every checkpoint load refuses it
        from models.weights import load_weights_file

        load_weights_file(path)  # raises UnsafeCheckpointError, naming the file
        raise
    except Exception as err:  # noqa: BLE001 - whatever the reason, the file cannot be resumed from
        raise ValueError(f"{path}: not a readable checkpoint ({str(err).splitlines()[0] if str(err) else err!r}); "
                         f"{RECORD_FIX}") from None
    state = (checkpoint.get("callbacks") or {}).get(RUN_STATE) if isinstance(checkpoint, dict) else None
    return None if state is None else check_record_shape(state, path, (*IDENTITY, "config"), fix=RECORD_FIX)


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


def _comparable(config: dict[str, Any]) -> dict[str, Any]:
    """A run's configuration without its place in a table, its sections completed with today's defaults
    (``with_defaults``): equal for the same experiment in two tables."""
    out = {key: value for key, value in with_defaults(config).items() if key not in ("table", "row", "column")}
    if isinstance(out.get("data"), dict):  # loader processes change the speed, not the numbers (data.resumable)
        out["data"] = {k: v for k, v in out["data"].items() if k != "num_workers"}
    return out


def experiment_key(config: dict[str, Any]) -> str:
    """What a report cell's runs share: the configuration without its place in a table, its seed and the folder
    its data was read from (JSON text, for comparing and indexing)."""
    comparable = _comparable(config)
    comparable.pop("seed", None)
    if isinstance(comparable.get("data"), dict):
        comparable["data"] = {k: v for k, v in comparable["data"].items() if k != "root"}
    return json.dumps(comparable, sort_keys=True)


def find_equivalent_run(cfg: RunConfig, runs_root: str | Path) -> Path | None:
    """A finished run (any table) whose configuration equals ``cfg`` except for table/row/column names.

    Motionformer's tables share rows (exact trajectory attention is row 1 of Tables 3a-3d, the last row of Table 4
    and Mformer in Tables 6-8); such a run is trained once and its record reused, saying where it came from.
    """
    target = json.dumps(_comparable(cfg.to_dict()), sort_keys=True)
    for path in sorted(Path(runs_root).glob(f"*/*/seed{cfg.seed}/{cfg.scale}-*/metrics.json")):
        try:
            record = json.loads(path.read_text())
        except json.JSONDecodeError:
            continue
        if not isinstance(record, dict) or not isinstance(record.get("config"), dict):
            continue  # not a run record; its own run says so when it is run
        if record.get("reused_from") is None and json.dumps(_comparable(record["config"]), sort_keys=True) == target:
            return path
    return None


def require_spec(table_id: str) -> TableSpec:
    spec = table_spec(table_id)  # unknown ids raise with close matches
    if spec is None:
        table = paper_table(table_id)
        raise TableNotImplementedError(
            f"{table_id} ({table.paper_short} {table.label}) is listed but not implemented yet; it belongs to the "
            f"{table.area} work. Implemented tables: `python -m experiments list`."
        )
    return spec


SETTABLE_SECTIONS = ("model", "data", "optim", "trainer")  # the sections of a RunConfig that options may change


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
    included, rejecting unknown ones."""
    changes = {}
    for section, values in given.items():
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


# Counts an option may not set below 1: a run with none of them has nothing to train or test.
POSITIVE_OPTIONS = {"data": ("num_frames", "frame_stride", "crop_size", "batch_size", "test_clips", "test_crops"),
                    "optim": ("epochs",),
                    "trainer": ("num_nodes", "accumulate_grad_batches", "num_threads", "log_every_n_steps",
                                "check_val_every_n_epoch", "checkpoint_every_n_steps")}


def check_option_value(config_type: type, section: str, name: str, value: Any) -> None:
    """An option's value against its field's type (``int``, ``float``, ``str``, ``bool``, tuples, mappings,
    ``Literal`` choices, ``X | None``) and, for a count, its range; refused naming the option, what it takes and
    what it got."""
    hint = typing.get_type_hints(config_type)[name]
    if not _fits(value, hint):
        why = (" (VALUE is read as JSON; what is not valid JSON, e.g. an object with unquoted keys, stays a string)"
               if isinstance(value, str) and not _fits_type(str, hint) else "")
        raise ValueError(f"{section}.{name}={value!r}: expects {_describe(hint)}, got a {type(value).__name__}{why}")
    if _has_non_finite(value):
        # JSON as Python reads it takes NaN and Infinity: a NaN lr would pass a dry run and train nothing
        raise ValueError(f"{section}.{name}={value!r}: must be finite (not NaN or infinite)")
    if name in POSITIVE_OPTIONS.get(section, ()) and value is not None and value < 1:
        raise ValueError(f"{section}.{name}={value!r}: must be at least 1")


def _has_non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, (list, tuple)):
        return any(_has_non_finite(v) for v in value)
    if isinstance(value, dict):
        return any(_has_non_finite(v) for v in value.values())
    return False


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


def run_table(
    table_id: str,
    scale: str = "tiny",
    rows: Sequence[str] | None = None,
    seeds: int = 1,
    data_root: str | Path | None = None,
    runs_root: str | Path = "runs",
    overrides: dict[str, dict[str, Any]] | None = None,
    settings: Iterable[tuple[str, Any]] = (),
    force: bool = False,
    progress_bar: bool = True,
    echo: Callable[[str], None] = print,
    jobs: int | None = 1,
    expected_s: Callable[[RunConfig], float | None] | None = None,
) -> list[dict[str, Any]]:
    """Compute the table's static columns, then train and test every run of it (skipping those whose data is
    absent), ``jobs`` CPU runs side by side (None: ``experiments.jobs.auto_jobs``). ``overrides`` and ``settings``:
    the user's options, as ``given_options`` reads them; ``expected_s``: how long a run took where its tracked
    record was trained (the ETA scales it to this machine). Returns the metrics records; the caller builds the
    report."""
    from .jobs import auto_jobs, check_jobs

    settings = list(settings)
    configs = resolve_runs(table_id, scale, rows, seeds, data_root, overrides, settings)
    jobs = auto_jobs(configs) if jobs is None else jobs
    check_jobs(jobs, configs)
    if jobs > 1 and "num_workers" not in given_options(overrides, settings).get("data", {}):
        # Side-by-side runs fill the cores already; loader worker processes would only contend with them (4 tiny
        # runs, 2 side by side: 4m06s with 2 workers each, 1m37s with none, the same numbers).
        configs = [dataclasses.replace(c, data=dataclasses.replace(c.data, num_workers=0)) for c in configs]
    echo(f"{table_id}: {len(configs)} run(s) at {scale} scale; static columns first")
    if launched_as_global_zero():  # every rank of a distributed run runs this command; one writes static.json
        compute_static(require_spec(table_id), runs_root, commit=git_commit(), echo=lambda line: echo("    " + line))
    records, skipped, start = [], [], time.perf_counter()
    progress = TableProgress(total=len(configs), to_train={}, jobs=jobs)

    def finished(cfg: RunConfig, record: dict[str, Any]) -> None:
        metrics = record["metrics"]
        headline = [k for k in metrics if k.endswith("top1")] or list(metrics)  # DAVIS: J&F, J, F
        shown = ", ".join(f"{k}={metrics[k]:.2f}" for k in headline)
        how = "reused from " + record["reused_from"] if record.get("reused_from") else (
            "cached" if record.get("cached") else "trained" if get_task(cfg.task).trains else "evaluated")
        records.append(record)
        line = progress.finished(str(cfg.run_dir(runs_root)), record["wall_time_s"] if how == "trained" else None)
        echo(f"    {shown}  ({record.get('wall_time_s') or 0.0:.0f}s, {how}) · {line}")
        if lost := data_left_out(record.get("data_report") or {}):
            echo(f"    data left out: {lost} (the files: {cfg.run_dir(runs_root) / 'metrics.json'})")

    runnable = []
    for cfg in configs:  # [k/n] counts runs in the order they are told: the skipped ones first
        reason = missing_data(cfg)
        if reason:
            echo(f"[{len(skipped) + 1}/{len(configs)}] {_run_line(cfg, runs_root)}\n    skipped, {reason}")
            skipped.append(cfg)
            progress.skipped()
        else:
            runnable.append(cfg)
    for cfg in runnable:  # a launch that cannot start, or a record or checkpoint of another run, stops the table
        if get_task(cfg.task).trains:  # an evaluation runs on one device, whatever the preset's nodes
            check_multi_node_launch(cfg)  # before anything trains
        check_pretrained_sources(cfg)  # a missing checkpoint file or a timm typo, before any run starts
        if not force:
            check_run_dir(cfg, runs_root)
    to_train = runs_to_train(runnable, runs_root, force)
    if launched_as_global_zero():
        prepare_generated_data(to_train, jobs, echo)
    progress.to_train = {str(cfg.run_dir(runs_root)): expected_s(cfg) if expected_s else None for cfg in to_train}
    progress.start = time.perf_counter()
    if to_train and all(progress.to_train.values()):
        echo(f"{len(to_train)} run(s) to train; on the machine that trained their tracked records they took "
             f"{duration(sum(progress.to_train.values()))} ({duration(sum(progress.to_train.values()) / jobs)} "
             f"{jobs} at a time); the ETA follows this machine's pace after the first run")
    if jobs == 1:
        for cfg in runnable:
            echo(f"[{len(records) + len(skipped) + 1}/{len(configs)}] {_run_line(cfg, runs_root)}")
            finished(cfg, execute(cfg, runs_root, force=force, progress_bar=progress_bar, echo=echo))
    else:
        _run_side_by_side(runnable, to_train, jobs, runs_root, force, echo, finished)
    echo(f"{len(records)} run(s) done, {len(skipped)} skipped for lack of data, in "
         f"{duration(time.perf_counter() - start)}")
    if configs and not records:
        raise MissingDataError(f"no run of {table_id} could start; missing data:\n" + "\n".join(
            f"  {dataset}: {where}" for dataset, where in missing_datasets(skipped).items()))
    return records


def copy_tensorboard_files(source: Path, run_path: Path) -> None:
    """A reused run's TensorBoard files (event files, ``hparams.yaml``) copied from the run it reuses, so that
    ``tensorboard --logdir runs/<table>`` shows every row of the table, the reused ones with the curves they were
    trained with (their hyper-parameters name the table and row that trained them)."""
    run_path.mkdir(parents=True, exist_ok=True)
    for path in [*sorted(source.glob("events.out.tfevents.*")), source / "hparams.yaml"]:
        if path.is_file() and not (run_path / path.name).exists():
            shutil.copy2(path, run_path / path.name)


def log_hparams_session(logger: Any, params: dict[str, Any], step: int) -> None:
    """The run's configuration into TensorBoard's HParams dashboard as one session: its start and end summaries
    only. Lightning's ``log_hyperparams(params, metrics)`` also writes an experiment summary into every run, and the
    dashboard then takes the columns of whichever run it reads first (rows with other options, or the verb / noun
    metrics, vanish); with sessions alone it builds the columns from every run, and its metric columns are the runs'
    scalars (``test/top1``, ``val/loss``, ...), in the Scalars tab's units. Flattened as Lightning flattens them
    (``model/overrides/attn_layer``)."""
    from lightning.fabric.utilities.logger import _convert_params, _flatten_dict
    from torch.utils.tensorboard.summary import hparams

    flat = logger._sanitize_params(_flatten_dict(_convert_params(params)))
    _, session_start, session_end = hparams(flat, {})
    writer = logger.experiment._get_file_writer()
    writer.add_summary(session_start, step)
    writer.add_summary(session_end, step)
    writer.flush()


def _run_line(cfg: RunConfig, runs_root: str | Path) -> str:
    return (f"{cfg.table} row={cfg.row} column={cfg.column} ({dataset_shown(cfg)}) seed={cfg.seed} "
            f"scale={cfg.scale} -> {cfg.run_dir(runs_root)}")


def dataset_shown(cfg: RunConfig) -> str:
    """The run's dataset as the console names it, marked when the run generates it in place of the release it
    would read (LRA ListOps without ``lra_listops/`` under ``--data-root``), as its report cells are."""
    from data import generated_in_place_of_release

    if generated_in_place_of_release(cfg.data.dataset, cfg.data.root, cfg.data.synthetic_params):
        name = cfg.data.dataset
        return f"{name}, generated locally in place of the release: no {name}/ under --data-root"
    return cfg.data.dataset


def runs_to_train(configs: Sequence[RunConfig], runs_root: str | Path, force: bool) -> list[RunConfig]:
    """The runs that will train, in order: not done, not an identical run's reuse (a configuration that two rows
    share trains once), not waiting for another run's checkpoint."""
    to_train, seen = [], set()
    for cfg in configs:
        action = planned_action(cfg, runs_root, force)
        key = json.dumps(_comparable(cfg.to_dict()), sort_keys=True)
        if (action == "train" or action.startswith(("resume", "train (--force)"))) and (force or key not in seen) \
                and not _needs_another_run(cfg):
            to_train.append(cfg)
            seen.add(key)
    return to_train


def prepare_generated_data(configs: Sequence[RunConfig], jobs: int, echo: Callable[[str], None]) -> None:
    """Generate the synthetic sets the runs read, ``jobs`` at a time, before any run starts, saying how far it is
    (each run would otherwise generate its set silently inside its first minutes, and side-by-side runs would each
    generate the same one)."""
    from data import SYNTHETIC_SETS
    from data.synthetic import ensure_synthetic_sets

    sets = [(cfg.data.dataset, dict(cfg.data.synthetic_params)) for cfg in configs
            if cfg.data.dataset in SYNTHETIC_SETS and cfg.data.root is None and "cache_dir" not in cfg.data.options]
    if sets:
        ensure_synthetic_sets(sets, jobs=jobs, echo=echo)


def _run_side_by_side(configs: Sequence[RunConfig], to_train: Sequence[RunConfig], jobs: int,
                      runs_root: str | Path, force: bool, echo: Callable[[str], None],
                      finished: Callable[[RunConfig, dict[str, Any]], None]) -> None:
    """Train ``to_train`` (``runs_to_train`` of ``configs``) in ``jobs`` processes; then take the finished and
    reusable ones, as in the sequential order."""
    from .jobs import run_side_by_side

    later = [cfg for cfg in configs if cfg not in to_train]  # in table order: a run after the runs it loads
    if to_train:
        echo(f"training {len(to_train)} run(s), {jobs} side by side on "
             f"{max(1, (os.cpu_count() or 1) // jobs)} thread(s) each ...")
    for n, (index, record) in enumerate(run_side_by_side(to_train, jobs, runs_root, force), 1):
        echo(f"[{n}/{len(to_train)} trained] {_run_line(to_train[index], runs_root)}")
        finished(to_train[index], record)
    for cfg in later:
        echo(f"[{'after' if _needs_another_run(cfg) else 'reuse'}] {_run_line(cfg, runs_root)}")
        if force and not _needs_another_run(cfg):  # its configuration was trained again above: reuse that run
            replace_run(cfg.run_dir(runs_root), runs_root, echo)
        finished(cfg, execute(cfg, runs_root, force=force and _needs_another_run(cfg), progress_bar=False,
                              echo=echo))


def _needs_another_run(cfg: RunConfig) -> bool:
    """Starts from another run's checkpoint (``run:<table>/<row>/<column>``): it trains after that run has."""
    sources = cfg.model.pretrained
    sources = [sources] if isinstance(sources, str) or sources is None else list(sources.values())
    return any(isinstance(s, str) and s.startswith("run:") for s in sources)


def compute_static(spec: TableSpec, runs_root: str | Path, commit: str, echo: Callable[[str], None] = print
                   ) -> dict[str, Any] | None:
    """The table's static columns into ``runs/<table>/static.json`` (see ``experiments.static``)."""
    from .static import compute_static as compute

    return compute(spec, runs_root, commit=commit, echo=echo)


def execute(
    cfg: RunConfig,
    runs_root: str | Path = "runs",
    force: bool = False,
    progress_bar: bool = True,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    """One run of the config's task. Skips a finished run, resumes an interrupted one, writes metrics.json last;
    either only when the directory was written for this run with this configuration (``check_run_dir``). A fit
    whose training split is empty, or that takes no step, raises ``NoTrainingDataError`` and records nothing; a test
    that reads no sample raises ``NoTestDataError`` and records nothing (a later run tests again)."""
    run_path = cfg.run_dir(runs_root)
    metrics_path = run_path / "metrics.json"
    if metrics_path.exists() and not force:
        return {**finished_record(cfg, runs_root), "cached": True}  # only this run's, with this configuration
    last = run_path / "checkpoints" / "last.ckpt"
    resume = str(last) if last.exists() and not force else None
    # before anything is built, and before a reuse would write a record beside another configuration's checkpoint
    started = check_resumable(cfg, runs_root) if resume else None
    source = None if force else find_equivalent_run(cfg, runs_root)
    if source is not None:
        record = {**_read_record(source, RECORD_KEYS), "table": cfg.table, "row": cfg.row, "column": cfg.column,
                  "config": cfg.to_dict(), "reused_from": source.parent.relative_to(runs_root).as_posix()}
        if launched_as_global_zero():
            copy_tensorboard_files(source.parent, run_path)
            _write_record(metrics_path, record)
        return record

    if "lightning" not in sys.modules:
        echo("    loading PyTorch and Lightning ...")
    import data.torchvision_compat  # noqa: F401  (before lightning imports torchvision)
    import lightning as L
    from lightning.pytorch.callbacks import Callback, LearningRateMonitor, ModelCheckpoint

    from lightning_modules.checkpoint_io import SafeCheckpointIO
    from lightning_modules.data_wait import DataWaitMonitor
    from lightning_modules.resume import ExactResumeCallback
    from lightning_modules.tensorboard_percent import PercentTensorBoardLogger

    from .provenance import batch_and_lr, git_state, provenance, set_threads

    quiet_libraries()
    task = get_task(cfg.task)
    check_data_options(cfg)  # a misspelt option stops here, by name, before the run directory is written
    start, commit, git = time.perf_counter(), git_commit(), git_state()
    if force and launched_as_global_zero():  # Lightning's rank_zero_only ignores NODE_RANK before a trainer exists
        replace_run(run_path, runs_root, echo)
    run_path.mkdir(parents=True, exist_ok=True)
    threads = set_threads(cfg.trainer.num_threads)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    weights = pretrained_weights(cfg, runs_root)
    if not task.trains:
        device = evaluation_device(cfg.trainer.accelerator)
        echo(f"    evaluating {cfg.model.name} on {cfg.data.dataset} ({cfg.data.root}) on {device} ...")
        metrics, evaluated = task.evaluate(cfg, weights, device)
        _check_tested(cfg, metrics, evaluated.test_videos, evaluated.data_report,
                      evaluated.data.get("root", cfg.data.root))
        record = _record(cfg, metrics, start, data=evaluated.data, data_report=evaluated.data_report,
                         num_params=None, resume=None, commit=commit)
        record["test_videos"] = evaluated.test_videos
        record["provenance"] = provenance(cfg, None, evaluated.data_report, None, threads, git, device=device)
        if launched_as_global_zero():
            # what a trained run's test logs, so that the table's runs compare in TensorBoard alike
            logger = PercentTensorBoardLogger(save_dir=str(run_path.parent), name=run_path.name, version="",
                                       default_hp_metric=False)
            logger.log_hyperparams(cfg.to_dict())
            logger.log_metrics(logged_metrics(metrics), step=0)
            log_hparams_session(logger, cfg.to_dict(), 0)
            logger.finalize("success")
            _write_record(metrics_path, record)
        return record

    echo(f"    data: {cfg.data.dataset} " + ("(generated on first use, then read from the cache) ..."
                                           if cfg.data.root is None else f"from {cfg.data.root} ..."))
    dm = task.datamodule(cfg, run_path)
    dm.prepare_data()
    dm.setup("fit")
    trains = cfg.optim.epochs > 0 and cfg.trainer.max_steps != 0  # 0: the initial model tested, on purpose
    if trains and _training_samples(dm) == 0:
        raise _no_training_data(cfg, dm, "its training split has no samples")
    task.check_classes(dm.num_classes)
    model = build_model(cfg, dm.num_classes, weights=weights)
    module = task.system(cfg, model, dm)
    num_params = sum(p.numel() for p in model.parameters())
    params = {**cfg.to_dict(), "num_params": num_params}

    class RunState(Callback):
        """Saves ``run_state`` in every checkpoint, for ``check_resumable``; restores nothing (checked before the
        fit)."""

        state_key = RUN_STATE
        world_size: int | None = None  # set once the trainer knows it

        def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
            self.world_size = trainer.world_size

        def state_dict(self) -> dict[str, Any]:
            return run_state(cfg, self.world_size)

        def load_state_dict(self, state_dict: dict[str, Any]) -> None:
            pass

    class LogRunConfig(Callback):
        """The row's whole configuration as TensorBoard hyper-parameters: into ``hparams.yaml`` when fitting
        starts, and, once tested, into the HParams dashboard as the run's session (``log_hparams_session``), beside
        its scalars, so a table's runs compare side by side there."""

        def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            trainer.logger.log_hyperparams(params)

        def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            if trainer.is_global_zero:
                log_hparams_session(trainer.logger, params, trainer.global_step)

    logger = PercentTensorBoardLogger(save_dir=str(run_path.parent), name=run_path.name, version="",
                               default_hp_metric=False)
    checkpoint = ModelCheckpoint(dirpath=run_path / "checkpoints", save_last=True, save_top_k=0,
                                 every_n_train_steps=cfg.trainer.checkpoint_every_n_steps)
    data_wait = DataWaitMonitor()  # fraction of training time spent waiting for batches, into the record
    t = cfg.trainer
    trainer = L.Trainer(
        max_epochs=cfg.optim.epochs,
        accelerator=t.accelerator,
        devices=t.devices,
        num_nodes=t.num_nodes,
        strategy=t.strategy,
        precision=t.precision,
        accumulate_grad_batches=t.accumulate_grad_batches,
        gradient_clip_val=t.gradient_clip_val,
        check_val_every_n_epoch=t.check_val_every_n_epoch,
        log_every_n_steps=t.log_every_n_steps,
        max_steps=t.max_steps,
        logger=logger,
        callbacks=[checkpoint, LogRunConfig(), data_wait, LearningRateMonitor(logging_interval="step"),
                   ExactResumeCallback(),  # a killed run continues where it stopped, same data and draws
                   RunState()],
        enable_progress_bar=progress_bar,
        enable_model_summary=False,
        deterministic=t.deterministic,
        profiler=data_wait.fetch_timer,
        plugins=[SafeCheckpointIO()],  # atomic checkpoint writes, weights-only loads
    )
    batch = batch_and_lr(cfg, trainer.world_size)  # the paper's global batch, and the lr for this one
    if batch["lr_scaling"] and "lr" not in module.hparams:
        raise ValueError(f"{cfg.table}/{cfg.row}: lr scaling to global batch {batch['global_batch']} needs a system "
                         f"with an `lr` hyper-parameter; {type(module).__name__} has none")
    module.hparams.lr = batch["lr"]
    params["batch"] = batch
    if resume and started is None:
        echo(f"    resuming from {last} (written before checkpoints recorded their run's configuration: it cannot "
             f"be checked against this one)")
    elif resume:
        if started.get("world_size") not in (None, trainer.world_size):
            raise RunConflictError(
                f"{run_path}: its checkpoints/last.ckpt was written by {started['world_size']} process(es), this run "
                f"has {trainer.world_size}: its data position and steps per epoch would mean something else; run "
                f"again on as many (--devices, --num-nodes), or with --force to start over (the old run is moved to "
                f"{Path(runs_root) / REPLACED_DIR}/), or use another --runs-dir")
        echo(f"    resuming from {last}")
    echo(f"    training {cfg.model.name} ({num_params / 1e6:.2f}M parameters) for {cfg.optim.epochs} epoch(s), "
         f"then testing ...")
    trainer.fit(module, datamodule=dm, ckpt_path=resume, weights_only=True)  # SafeCheckpointIO refuses code
    if trains and trainer.global_step == 0:  # before last.ckpt: a later run must not resume an untrained state
        raise _no_training_data(cfg, dm, f"it took no optimizer step (batches of {cfg.data.batch_size} per "
                                         f"process x {trainer.world_size}, an incomplete last batch dropped)")
    trainer.save_checkpoint(last, weights_only=False)  # the whole final state, whatever the last periodic step
    metrics = final_metrics(trainer.test(module, datamodule=dm, verbose=False)[0])
    test_videos = getattr(module, "test_videos", None)  # each counted once, across processes
    _check_tested(cfg, metrics, test_videos, dm.data_report(), dm.data_root)
    if not all(math.isfinite(v) for v in metrics.values()):
        raise RuntimeError(f"{run_path}: non-finite test metrics {metrics}")
    record = _record(cfg, metrics, start, data=dm.describe(), data_report=dm.data_report(), num_params=num_params,
                     resume=resume, commit=commit)
    record["perf"] = data_wait.summary()
    record["test_videos"] = test_videos
    record["provenance"] = provenance(cfg, trainer, record["data_report"], batch, threads, git)
    if trainer.is_global_zero:
        _write_record(metrics_path, record)
    return record


# Lightning's per-run chatter, dropped by message (nothing else from these loggers is hidden): device availability,
# an advertisement, and notes on what the Trainer does anyway.
LIGHTNING_CHATTER = ("GPU available:", "TPU available:", "HPU available:", "💡 Tip:",
                     "Loading `train_dataloader` to estimate number of stepping batches", "`Trainer.fit` stopped:")


class _DropChatter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(LIGHTNING_CHATTER)


def quiet_libraries() -> None:
    """Silence the lines every run would print without saying anything about it: the messages in
    ``LIGHTNING_CHATTER`` and torch's deprecation of ``LeafSpec``, which Lightning's own pytree helper triggers.
    Narrow on purpose: every other log line and warning still shows."""
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        log = logging.getLogger(name)
        if not any(isinstance(f, _DropChatter) for f in log.filters):
            log.addFilter(_DropChatter())
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated",
                            category=FutureWarning)


REPLACED_DIR = ".replaced"  # under the runs root; outside runs/<table>/, so reports and run reuse never see it


def replace_run(run_path: Path, runs_root: str | Path, echo: Callable[[str], None] = print) -> None:
    """``--force``: move the run's directory, whole, to ``replaced_run_dir`` (nothing is deleted)."""
    if run_path.is_dir() and any(run_path.iterdir()):
        archive = replaced_run_dir(run_path, runs_root)
        archive.parent.mkdir(parents=True, exist_ok=True)
        run_path.rename(archive)
        echo(f"    previous run moved to {archive}")


def replaced_run_dir(run_dir: Path, runs_root: str | Path) -> Path:
    """Where ``--force`` keeps the run it replaces: runs/.replaced/<UTC time>/<table>/<row>/seed<k>/<column>."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    return Path(runs_root) / REPLACED_DIR / stamp / run_dir.relative_to(runs_root)


def _record(cfg: RunConfig, metrics: dict[str, float], start: float, data: Any, data_report: Any,
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
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "host": {"python": platform.python_version(), "platform": platform.platform(),
                 "cpu_count": os.cpu_count(), "argv": sys.argv},
    }


def pretrained_weights(cfg: RunConfig, runs_root: str | Path) -> str | dict[str, str] | None:
    """The run's pretrained sources with ``run:<table>/<row>/<column>`` resolved to the last checkpoint of that run
    at this scale and seed (Table 6's "IN-21K+K-400" initialisation, Table 9's K-400 model), or of the run it reused
    (its record's ``reused_from``); it must exist."""
    sources = cfg.model.pretrained
    if isinstance(sources, str) or sources is None:
        return _resolve_source(cfg, sources, runs_root)
    return {part: _resolve_source(cfg, source, runs_root) for part, source in sources.items()}


def _resolve_source(cfg: RunConfig, name: str | None, runs_root: str | Path) -> str | None:
    if not name or not name.startswith("run:"):
        return name
    table, row, column = name.removeprefix("run:").split("/")
    folder = run_dir(runs_root, table, row, cfg.seed, cfg.scale, column)
    if (folder / "metrics.json").exists():  # a reused run keeps no checkpoint: the run it reuses has it
        reused = _read_record(folder / "metrics.json").get("reused_from")
        folder = Path(runs_root) / reused if reused else folder
    path = folder / "checkpoints" / "last.ckpt"
    if not path.exists():
        raise FileNotFoundError(f"{cfg.table}/{cfg.row}: initialisation {name} needs {path}; train it first with "
                                f"`python -m experiments run {table} --rows {row} --scale {cfg.scale}`")
    return str(path)


def _read_record(path: Path, required: Sequence[str] = ()) -> dict[str, Any]:
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err}); {RECORD_FIX}") from None
    return check_record_shape(record, path, required, fix=RECORD_FIX)


def check_record_shape(record: Any, path: str | Path, required: Sequence[str] = RECORD_KEYS,
                       fix: str | None = None) -> dict[str, Any]:
    """``record`` if it is a JSON object with the ``required`` keys (``metrics`` and ``config``, where present,
    objects themselves), else a ValueError naming the file (and ``fix``): valid JSON of the wrong shape is as
    unreadable as a file cut short."""
    end = f"; {fix}" if fix else ""
    if not isinstance(record, dict):
        kind = "a list" if isinstance(record, list) else f"the JSON value {json.dumps(record)[:40]}"
        raise ValueError(f"{path}: not a run record ({kind}, not an object){end}")
    missing = [key for key in required if key not in record]
    if missing:
        raise ValueError(f"{path}: not a run record (no {', '.join(missing)}){end}")
    wrong = [key for key in ("metrics", "config") if key in record and not isinstance(record[key], dict)]
    if wrong:
        raise ValueError(f"{path}: not a run record ({' and '.join(wrong)} not an object){end}")
    not_numbers = [key for key, value in record.get("metrics", {}).items()
                   if isinstance(value, bool) or not isinstance(value, (int, float))]
    if not_numbers:
        raise ValueError(f"{path}: not a run record (metric(s) {', '.join(not_numbers)} not numbers){end}")
    return record


def _training_samples(dm: Any) -> int | None:
    """The training split's sample count, from the data module's description (None: it does not say)."""
    described = dm.describe() if hasattr(dm, "describe") else {}
    return described.get("num_train_videos", described.get("num_train"))


def _no_training_data(cfg: RunConfig, dm: Any, why: str) -> NoTrainingDataError:
    """The error for a fit that would record an untrained model: which data, read from where, and what in its
    training split was unusable (file, line, reason)."""
    report = (dm.data_report() if hasattr(dm, "data_report") else {}).get("train") or {}
    return NoTrainingDataError(_no_data_message(cfg, why, dm.data_root, {"train": report}))


def _check_tested(cfg: RunConfig, metrics: dict[str, float], test_videos: int | None,
                  data_report: dict[str, dict[str, Any]], data_root: str | Path | None) -> None:
    """Raise ``NoTestDataError`` for a test that measured nothing (no metric, or no video counted: every video of
    the split it tests on unreadable), naming that split and what in it was unusable."""
    if metrics and test_videos != 0:
        return
    tested = {split: report for split, report in data_report.items() if split != "train"}
    why = f"its test read no sample of its {' / '.join(tested)} split" if tested else "its test read no sample"
    raise NoTestDataError(_no_data_message(cfg, why, data_root, tested))


def _no_data_message(cfg: RunConfig, why: str, data_root: str | Path | None,
                     reports: dict[str, dict[str, Any]]) -> str:
    """Why a run records nothing: the run, ``why``, its data and where it was read, and per split of ``reports``
    (data reports) what was unusable (files, lines, reasons), with the command that lists each file."""
    found = []
    for split, report in reports.items():
        unusable = []
        bad = report.get("bad_annotation_lines") or []
        if bad:
            files = sorted({str(b["file"]) for b in bad})
            unusable.append(f"{len(bad)} unusable annotation line(s) in {', '.join(files)} (first: line "
                            f"{bad[0]['line']}: {bad[0]['reason']})")
        for key, what in (("missing", "missing"), ("corrupt", "corrupt")):
            if report.get(key):
                unusable.append(f"{len(report[key])} of {report.get('expected')} video(s) {what}")
        unusable.append(f"{report.get('samples', report.get('found'))} sample(s) in its annotations")
        found.append(f"{split} split: {', '.join(unusable)}")
    check = ""
    if cfg.data.root is not None and reports:
        from data.datamodule import DATASETS

        if cfg.data.dataset in DATASETS:
            commands = [f"`python -m data check {cfg.data.dataset} --root {cfg.data.root} --split {split}`"
                        for split in reports]
            check = f"; {' and '.join(commands)} {'lists' if len(commands) == 1 else 'list'} each unusable file"
    return (f"{cfg.table} row={cfg.row} column={cfg.column} seed={cfg.seed}: {why}, so no result is recorded; its "
            f"data: {cfg.data.dataset} from {data_root}" + (f": {'; '.join(found)}" if found else "") + check)


def _write_record(path: Path, record: dict[str, Any]) -> None:
    from data.atomic_write import atomic_write_text

    atomic_write_text(path, json.dumps(record, indent=2, default=str))  # a metrics.json is always complete


def check_pretrained_sources(cfg: RunConfig) -> None:
    """A pretrained source naming a missing file or a model timm does not have fails here, by name (``run:``
    sources may be trained by this very command: they are checked when their run starts)."""
    from models.sources import check_source

    sources = cfg.model.pretrained
    for source in [sources] if isinstance(sources, str) else (sources or {}).values():
        check_source(source)


def check_buildable(cfg: RunConfig) -> None:
    """Check the run's data options and (when its data is there) pretrained sources, and build its model on the
    ``meta`` device: an unknown or misspelled option, a missing checkpoint file or an unknown timm model fails
    here, by name, before anything trains (cheap at paper scale: no memory is allocated)."""
    # A verb/noun model that fixes its verb count (CAST's split heads: ``num_verbs``) is built with that many verb
    # logits and a few nouns, as the data would give it; any other model with the task's count, or 2 classes.
    check_data_options(cfg)
    if expected_data(cfg) is None:  # a run skipped for its data needs no weights either
        check_pretrained_sources(cfg)
    verbs = cfg.model.overrides.get("num_verbs")
    build_model(cfg, get_task(cfg.task).num_classes or (verbs + 3 if verbs else 2), device="meta")


def describe_runs(configs: Iterable[RunConfig], runs_root: str | Path = "runs") -> str:
    """The --dry-run listing: each run's directory and fully resolved configuration."""
    blocks = []
    for cfg in configs:
        blocks.append(f"# {cfg.run_dir(runs_root)}\n{json.dumps(cfg.to_dict(), indent=2)}")
    return "\n".join(blocks)
