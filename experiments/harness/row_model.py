"""A table row's model with the weights a user names, for the commands that read a model without training it
(``attention``, ``predict``): a trained run's last checkpoint (``--run RUN_DIR``), a state dict of the row's model
(``--weights FILE``), or the authors' released checkpoint (``--released NAME``, read and checked as ``evaluate``
reads it, at its entry's protocol).

The row is built as the harness builds it (``plan.resolve_runs``, ``tasks.build_model``). A row of several columns
has one model per column, whose heads differ (the classes of each column's data): a run or weights file is loaded
into the column whose model it fits, every key and shape (``--column`` names one and is checked), and a file that
fits none is one line naming the first key or shape that differs.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def row_configs(table: str, row: str, scale: str, data_root: str | None = None) -> list[Any]:
    """The row's configurations at ``scale``, one per column (seed 0)."""
    from .plan import resolve_runs

    return resolve_runs(table, scale, [row], 1, data_root)


def row_config(table: str, row: str, scale: str, column: str | None, data_root: str | None = None) -> Any:
    """The row's configuration of ``column`` (None: its first column)."""
    configs = row_configs(table, row, scale, data_root)
    if column is not None:
        configs = [cfg for cfg in configs if cfg.column == column]
        if not configs:
            raise ValueError(f"{table} row {row} has no column {column!r} at {scale} scale")
    return configs[0]


def data_classes(cfg: Any) -> int | dict[str, int]:
    """The classes of the row's data: its generated set's (after ``num_classes``), or the configured count."""
    from data.synthetic import SYNTHETIC_SETS

    spec = SYNTHETIC_SETS.get(cfg.data.dataset)
    if spec is None:
        configured = cfg.model.overrides.get("num_classes")
        if configured is not None:
            return configured
        if cfg.data.root is None or not Path(cfg.data.root).is_dir():
            raise ValueError(f"{cfg.table}/{cfg.row}: its data {cfg.data.dataset} is not generated and the row names "
                             f"no num_classes: give --data-root DIR holding {cfg.data.dataset}/ (its annotations "
                             f"define the classes), --released NAME, or the row's tiny scale")
        with pipeline_data(cfg) as dm:
            return dm.num_classes
    if spec.verb_names:
        return {"verb": len(spec.verb_names), "noun": len(spec.noun_names)}
    return (cfg.data.synthetic_params or {}).get("num_classes") or spec.num_classes


@contextmanager
def pipeline_data(cfg: Any) -> Iterator[Any]:
    """The row's data module, its validation split read (a generated set generated into the cache first), read in
    this process (one sample wants no loader workers); its scratch files go to a temporary folder."""
    import dataclasses
    import tempfile

    from .tasks import get_task

    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, num_workers=0))
    with tempfile.TemporaryDirectory(prefix="vidrepro-attention-") as scratch:
        dm = get_task(cfg.task).datamodule(cfg, Path(scratch))
        dm.prepare_data()
        dm.setup("test")
        yield dm


# ---- weights from a file ----------------------------------------------------------------------------------------


def read_state_file(path: Path) -> dict[str, Any]:
    """The state dict of a weights file or a Lightning checkpoint (read with weights only); a path that is not a
    regular file is one line naming it."""
    from models.weights import read_weights

    if not path.exists():
        raise FileNotFoundError(f"{path}: no such weights file")
    if not path.is_file():
        raise ValueError(f"{path}: not a regular file (weights are read from a file)")
    state, _ = read_weights(path)
    return state


def misfit(model: Any, state: Mapping[str, Any]) -> str | None:
    """How ``state`` (wrapper prefixes stripped) fails to fill ``model``, every key and shape: the first key it
    lacks or has over, or the first shape that differs, in words; None where it fits."""
    from models.weights import strip_wrapper_prefixes

    own = model.state_dict()
    state = strip_wrapper_prefixes(dict(state), set(own))
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        what = f"lacks {missing[0]!r}" if missing else f"holds {unexpected[0]!r}, which the model has not"
        return f"it {what} ({len(missing)} missing, {len(unexpected)} unexpected keys)"
    for key, value in own.items():
        shape = tuple(getattr(state[key], "shape", ()))
        if shape != tuple(value.shape):
            return f"its {key!r} is {list(shape)}, the model's {list(value.shape)}"
    return None


def load_state_file(model: Any, path: Path, state: Mapping[str, Any] | None = None) -> None:
    """Load a state dict (possibly a Lightning checkpoint's, wrapper prefixes stripped; ``state`` when read
    already) strictly; a file that does not fit the row's model, a key or a shape, is one line naming it."""
    from models.weights import strip_wrapper_prefixes

    state = read_state_file(path) if state is None else state
    problem = misfit(model, state)
    if problem is not None:
        raise ValueError(f"{path}: not weights of this row's model ({type(model).__name__}): {problem}")
    model.load_state_dict(strip_wrapper_prefixes(dict(state), set(model.state_dict())))


def fitting_column(table: str, row: str, scale: str, column: str | None, data_root: str | None,
                   path: Path) -> tuple[Any, Any]:
    """(cfg, model with the file's weights) of the row's column whose model the file fits: ``column`` where given
    (checked), else the first that fits, each tried on the meta device first. A file that fits no column is one
    line naming what differs from each."""
    from .tasks import build_model

    configs = [row_config(table, row, scale, column, data_root)] if column else row_configs(table, row, scale,
                                                                                             data_root)
    classes_of = [data_classes(cfg) for cfg in configs]  # the data the row needs is named before the file is read
    state = read_state_file(path)
    problems = []
    for cfg, classes in zip(configs, classes_of):
        problem = misfit(build_model(cfg, classes, device="meta"), state)
        if problem is None:
            model = build_model(cfg, classes)
            load_state_file(model, path, state)
            return cfg, model
        problems.append(f"column {cfg.column}: {problem}")
    if len(configs) == 1:
        raise ValueError(f"{path}: not weights of {table} row {row}'s model"
                         f"{f' (column {column})' if column else ''}: {problems[0].split(': ', 1)[1]}")
    raise ValueError(f"{path}: not weights of any column of {table} row {row}: {'; '.join(problems)}")


def build_row_model(args: argparse.Namespace) -> tuple[Any, Any]:
    """(cfg, model in eval mode) for the command's row and weights (``args``: table, rows, scale, column,
    data_root, and one of run, weights, released with weights_dir; none: the first column's random weights)."""
    from .tasks import build_model

    if args.released:
        cfg, model, _ = released_model(args)
        return cfg, model
    if args.run or args.weights:
        from .run_dir import RunDir

        # a run folder's own checkpoint, never a link out of it (RunDir.checked_file)
        path = RunDir(Path(args.run)).checkpoint_inside(args.run) if args.run else Path(args.weights)
        cfg, model = fitting_column(args.table, args.rows, args.scale, args.column, args.data_root, path)
        return cfg, model.eval()
    cfg = row_config(args.table, args.rows, args.scale, args.column, args.data_root)
    return cfg, build_model(cfg, data_classes(cfg)).eval()


def released_model(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    """(cfg at the entry's protocol, the model with the released weights in eval mode, the ``Evaluation``) of
    ``--released NAME`` on the command's row, read and checked as ``evaluate`` does."""
    from models.released.base import load_into

    from .evaluate import check_checkpoint, resolve_evaluation
    from .tasks import build_model

    evaluation = resolve_evaluation(args.table, args.rows, args.released, args.weights_dir,
                                    getattr(args, "data_root", None), args.column)
    checked = check_checkpoint(evaluation)
    model = build_model(evaluation.cfg, evaluation.entry.expects["classes"])
    load_into(model, checked.reader, checked.checkpoint, checked.label, evaluation.entry.known())
    return evaluation.cfg, model.eval(), evaluation


__all__ = ["build_row_model", "data_classes", "fitting_column", "load_state_file", "misfit", "pipeline_data",
           "read_state_file", "released_model", "row_config", "row_configs"]
