"""Evaluating an authors' released checkpoint: a table cell's test at the paper's protocol, from their weights, without
training (``python -m experiments evaluate ID --rows ROW --checkpoint SOURCE``).

``resolve_evaluation`` picks the catalogue entry (``experiments.harness.released_weights``: a name such as
``mformer:k400_motionformer_224_16x4``, found in the weights folder, or a file whose cell has an entry) and derives
the evaluation's configuration from the row's paper-scale one: the model with the entry's options (the authors'
variant: the original trajectory code, X-ViT's shift segments, TokShift's shift order) and no pretrained weights to
load, the data with the entry's protocol (frames, sampling and view placement, crop and short side, views,
normalisation, how views are combined), one video per batch and the Trainer options the user gives.
``check_checkpoint`` then reads the file (weights only), recognises its layout, checks what it holds against the entry
(variant, classes, frames, crop) and the row's model, built on the ``meta`` device, against it (every option and
every key and shape): each refusal is one line naming the file, and nothing is written before them. ``evaluate``
tests the model through the task's data module and LightningModule on a Lightning Trainer (one device or many, the
run's TensorBoard logs) and writes the record, marked as evaluated from released weights (the
checkpoint's name, file, sha256 and layout), under ``runs/<table>/<row>/released/<scale>-<column>/``, apart from the
trained runs (``seed<k>/``), whose records the reports read as ours.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .overrides import apply_overrides, given_options
from .plan import MissingDataError, expected_data, require_spec
from .provenance import launched_as_global_zero
from .released_weights import Cell, ReleasedCheckpoint, catalogue, catalogue_papers, checkpoints_for, find_checkpoint
from .run_dir import RunDir, RunsTree, Step
from .spec import RunConfig

EVALUATION_SCALE = "paper"  # the released checkpoints are the papers' models
DEFAULT_WEIGHTS_DIR = "checkpoints/released"
EVALUATED_FROM = "released weights"  # the record's ``evaluated_from``


@dataclass(frozen=True)
class Evaluation:
    """What ``evaluate`` tests: a catalogue entry's file on the cell it fills, at ``cfg``."""

    entry: ReleasedCheckpoint
    cell: Cell
    source: Path
    cfg: RunConfig

    def folder(self, runs_root: str | Path = "runs") -> RunDir:
        """Its folder: one evaluation of released weights per cell, beside the row's trained runs, never read as
        one of them (``RunsTree.released``)."""
        return RunsTree(runs_root).released(self.cfg)


def resolve_evaluation(table: str, row: str, source: str, weights_dir: str | Path | None = None,
                       data_root: str | Path | None = None, column: str | None = None,
                       overrides: dict[str, dict[str, Any]] | None = None, settings: Iterable[tuple[str, Any]] = (),
                       entry: ReleasedCheckpoint | None = None) -> Evaluation:
    """The evaluation of ``source`` (a catalogue name, or a file or DeepSpeed tag folder) on ``table``'s ``row``:
    its entry (``entry`` given, e.g. one a test changed), the file, and the configuration (module doc). An unknown
    name, or a file whose cell has no entry, is one line."""
    spec = require_spec(table)
    row_spec = spec.row(row)
    entry, path = _pick_entry(table, row_spec.key, source, column, weights_dir, entry)
    cell = entry.cell(table, row_spec.key)
    if cell is None:
        raise ValueError(f"{entry.full_name} fills {', '.join(map(str, entry.cells))}, not {table} row {row}")
    if column is not None and column not in (*cell.columns, cell.run):
        raise ValueError(f"{entry.full_name} fills the column(s) {', '.join(cell.columns)} of {table} row {row}, "
                         f"not {column!r}")
    metric_column = next(c for c in spec.metric_columns if c.column == cell.columns[0])
    cfg = spec.resolve(row_spec, metric_column, EVALUATION_SCALE, seed=0, data_root=data_root)
    return Evaluation(entry, cell, path, evaluation_config(cfg, entry, given_options(overrides, settings)))


def _pick_entry(table: str, row: str, source: str, column: str | None, weights_dir: str | Path | None,
                entry: ReleasedCheckpoint | None) -> tuple[ReleasedCheckpoint, Path]:
    """(entry, file): a catalogue name is looked up in ``weights_dir``; a path takes the entry of the cell."""
    paper, _, name = source.partition(":")
    if entry is None and name and paper in catalogue_papers() and not Path(source).exists():
        entry = find_checkpoint(source)
        return entry, Path(weights_dir or DEFAULT_WEIGHTS_DIR) / entry.file
    if weights_dir is not None and entry is None:
        raise ValueError(f"--weights-dir is where catalogue names are found; --checkpoint {source} is a file path")
    if entry is not None:
        return entry, Path(source)
    named = [e for e in catalogue() if e.file == Path(source).name and e.cell(table, row) is None]
    if named:  # the authors' name of another cell's file (TokShift's ViT and TokShift differ in nothing else)
        raise ValueError(f"{source}: the file name of {named[0].full_name}, which fills "
                         f"{', '.join(map(str, named[0].cells))}, not {table} row {row}")
    candidates = [e for e in checkpoints_for(table, row)
                  if column is None or column in (*e.cell(table, row).columns, e.cell(table, row).run)]
    if len(candidates) > 1:  # the file's own name picks the entry (the authors' names are the catalogue's)
        candidates = [e for e in candidates if e.file == Path(source).name] or candidates
    if len(candidates) != 1:
        what = "no released checkpoint in the catalogue fills" if not candidates else \
            f"several released checkpoints ({', '.join(e.full_name for e in candidates)}) fill"
        hint = "; --column COL picks one" if candidates else "; `python -m experiments weights` lists the cells " \
                                                             "that have one"
        raise ValueError(f"{source}: {what} {table} row {row}{f' column {column}' if column else ''}{hint}")
    return candidates[0], Path(source)


def evaluation_config(cfg: RunConfig, entry: ReleasedCheckpoint, given: dict[str, dict[str, Any]]) -> RunConfig:
    """The row's paper-scale configuration as the evaluation runs it: the entry's model options (nested mappings
    merged), no pretrained weights, the protocol's data (its views, one video a batch), a Trainer of one device in
    full precision unless the user says otherwise (``given``: the command's options, ``--set``)."""
    protocol = entry.protocol
    options = {k: v for k, v in cfg.data.options.items()
               if not (k in ("dense_convention", "segment_placement") and protocol.sampling != "dense")
               and not (k in ("segment_view_offsets", "segment_span", "segment_convention")
                        and protocol.sampling != "segments")}
    data = dataclasses.replace(cfg.data, **protocol.data_fields(), batch_size=1,
                               options={**options, **protocol.data_options()})
    model = dataclasses.replace(cfg.model, overrides=_merged(cfg.model.overrides, entry.model), pretrained=None)
    trainer = dataclasses.replace(cfg.trainer, accelerator="auto", devices=1, num_nodes=1, strategy="auto",
                                  precision="32-true", accumulate_grad_batches=1, deterministic="warn")
    return apply_overrides(dataclasses.replace(cfg, model=model, data=data, trainer=trainer), given)


def _merged(base: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``changes``, a mapping value merged into the mapping it changes (``attn_kwargs``)."""
    out = dict(base)
    for key, value in changes.items():
        out[key] = _merged(out[key], value) if isinstance(value, Mapping) and isinstance(out.get(key), Mapping) \
            else value
    return out


# ---- before anything runs -------------------------------------------------------------------------------------


@dataclass
class CheckedCheckpoint:
    """A released file that fits its entry and the row's model: its contents, name, layout reader and
    description."""

    checkpoint: Mapping[str, Any]
    label: str
    reader: Any
    description: dict[str, Any]


def check_checkpoint(evaluation: Evaluation) -> CheckedCheckpoint:
    """Read the file (weights only) and check it: its layout the entry's, what it holds the entry's (variant,
    classes, frames, crop), and the row's model, built on the meta device, the model that computes its function
    with every key and shape. Each refusal is one ``ReleasedWeightsError`` line naming the file."""
    from models.released import ReleasedWeightsError, read_released, recognise_layout
    from models.released.base import converted, describe_with

    from .tasks import build_model

    entry, path = evaluation.entry, evaluation.source
    if not path.exists():
        raise ReleasedWeightsError(f"{path}: no such file; {entry.full_name} is {entry.link}, save it as {path} "
                                   f"(or give its path to --checkpoint)")
    checkpoint, label = read_released(path)
    try:
        reader = recognise_layout(checkpoint, label, entry.layout)
        description = describe_with(reader, checkpoint, label, entry.known())
        model = build_model(evaluation.cfg, entry.expects["classes"], device="meta")
        converted(model, reader, checkpoint, label, description)
    except ReleasedWeightsError as err:
        raise ReleasedWeightsError(f"{err} (catalogue entry {entry.full_name}, {evaluation.cell})") from None
    return CheckedCheckpoint(checkpoint, label, reader, description)


def check_can_start(evaluation: Evaluation, runs_root: str | Path, force: bool) -> Step:
    """What ``evaluate`` checks before it reads the data: the data there, the Trainer's options Lightning's and
    available here, the runs folder writable, and no record of another checkpoint in the cell's folder; returns
    what it does next (``RunDir.next_step``: done where the cell holds this checkpoint's record)."""
    from .checks import check_trainer_options, check_writable

    cfg = evaluation.cfg
    where = expected_data(cfg)
    if where is not None:
        raise MissingDataError(f"{cfg.table} row {cfg.row}: {evaluation.entry.full_name} is tested on "
                               f"{cfg.data.dataset}, {where}")
    check_trainer_options(cfg, on_this_machine=True)
    check_writable(RunsTree(runs_root).table(cfg.table), "--runs-dir")
    return evaluation.folder(runs_root).next_step(cfg, runs_root, force, released=evaluation.entry.full_name
                                                  ).unless_refused()


def file_digest(path: Path) -> str:
    """sha256 of a file, or of a DeepSpeed tag folder's model states file."""
    from models.released.deepspeed import model_states_file

    target = model_states_file(path) if path.is_dir() else path
    digest = hashlib.sha256()
    with open(target, "rb") as f:
        for block in iter(lambda: f.read(1 << 24), b""):
            digest.update(block)
    return digest.hexdigest()


# ---- the run ----------------------------------------------------------------------------------------------------


def evaluate(evaluation: Evaluation, runs_root: str | Path = "runs", force: bool = False, progress_bar: bool = True,
             echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Check, then test the released weights at the protocol and write the record (module doc). A cell already
    evaluated from the same entry returns its record (``--force`` evaluates again); nothing is written before the
    checkpoint, the data and the options have passed every check."""
    from contextlib import nullcontext

    checked = check_checkpoint(evaluation)
    step = check_can_start(evaluation, runs_root, force)
    if step.action == "done":
        return {**step.record, "cached": True}
    run = step.run
    zero = launched_as_global_zero()
    released = released_entry(evaluation, checked, digest=zero)
    start = time.perf_counter()
    dm = _test_data(evaluation, run.path, echo)
    if force and zero:
        run.move_away(runs_root, echo)
    run.path.mkdir(parents=True, exist_ok=True)
    with run.hold() if zero else nullcontext():
        return _test(evaluation, checked, released, dm, run, start, progress_bar, echo)


def released_entry(evaluation: Evaluation, checked: CheckedCheckpoint, digest: bool = True) -> dict[str, Any]:
    """The record's ``released``: which checkpoint, how it was read, at which protocol."""
    entry, description = evaluation.entry, checked.description
    return {"name": entry.full_name, "file": str(evaluation.source), "sha256": file_digest(evaluation.source)
            if digest else None, "layout": checked.reader.name, "variant": description.get("variant"),
            "link": entry.link, "cell": str(evaluation.cell), "paper_numbers": evaluation.cell.paper_numbers(),
            "authors_number": dict(entry.authors_number) if entry.authors_number else None,
            "epoch": description.get("epoch"), "protocol": dataclasses.asdict(entry.protocol)}


def _test_data(evaluation: Evaluation, run_path: Path, echo: Callable[[str], None]) -> Any:
    """The task's data module, its test split read (annotations, classes): a dataset of other classes than the
    checkpoint's is refused before anything is written."""
    from .execute import quiet_libraries
    from .tasks import get_task

    cfg, entry = evaluation.cfg, evaluation.entry
    quiet_libraries()
    task = get_task(cfg.task)
    echo(f"    data: {cfg.data.dataset} from {cfg.data.root} ...")
    dm = task.datamodule(cfg, run_path)
    dm.prepare_data()
    dm.setup("test")
    task.check_classes(dm.num_classes)
    if dm.num_classes != entry.expects["classes"]:
        raise ValueError(f"{cfg.data.root}: its annotations define {dm.num_classes} classes, {entry.full_name} "
                         f"classifies {entry.expects['classes']}: not the checkpoint's dataset")
    return dm


def _test(evaluation: Evaluation, checked: CheckedCheckpoint, released: dict[str, Any], dm: Any, run: RunDir,
          start: float, progress_bar: bool, echo: Callable[[str], None]) -> dict[str, Any]:
    """The model built, the weights loaded strictly, the test on a Lightning Trainer, the record written."""
    import lightning as L

    from lightning_modules.run_callbacks import LogRunConfig
    from lightning_modules.tensorboard_percent import PercentTensorBoardLogger
    from models.released.base import load_into

    from .execute import check_tested
    from .provenance import git_commit, git_state, provenance, set_threads
    from .records import run_record
    from .tasks import build_model, final_metrics, get_task

    cfg, entry = evaluation.cfg, evaluation.entry
    commit, git = git_commit(), git_state()
    threads = set_threads(cfg.trainer.num_threads)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    model = build_model(cfg, dm.num_classes)
    load_into(model, checked.reader, checked.checkpoint, checked.label, entry.known())
    module = get_task(cfg.task).system(cfg, model, dm)
    params = {**cfg.to_dict(), "released": {k: released[k] for k in ("name", "file", "layout", "variant")}}
    logger = PercentTensorBoardLogger(save_dir=str(run.path.parent), name=run.path.name, version="",
                                      default_hp_metric=False)
    t = cfg.trainer
    trainer = L.Trainer(accelerator=t.accelerator, devices=t.devices, num_nodes=t.num_nodes, strategy=t.strategy,
                        precision=t.precision, logger=logger, callbacks=[LogRunConfig(params)],
                        enable_checkpointing=False, enable_progress_bar=progress_bar, enable_model_summary=False,
                        deterministic=t.deterministic)
    if trainer.is_global_zero:
        logger.log_hyperparams(params)
    echo(f"    testing {entry.full_name} ({checked.label}) at {cfg.data.test_clips} x {cfg.data.test_crops} views a "
         f"video on {trainer.world_size} process(es) ...")
    metrics = final_metrics(trainer.test(module, datamodule=dm, verbose=False)[0])
    test_videos = getattr(module, "test_videos", None)
    check_tested(cfg, metrics, test_videos, dm.data_report(), dm.data_root)
    record = run_record(cfg, metrics, start, data=dm.describe(), data_report=dm.data_report(),
                        num_params=sum(p.numel() for p in model.parameters()), resume=None, commit=commit)
    record.update(evaluated_from=EVALUATED_FROM, released=released, test_videos=test_videos,
                  provenance=provenance(cfg, trainer, dm.data_report(), None, threads, git))
    if trainer.is_global_zero:
        run.write_record(record)
    return record


__all__ = ["DEFAULT_WEIGHTS_DIR", "EVALUATED_FROM", "CheckedCheckpoint", "Evaluation", "check_can_start",
           "check_checkpoint", "evaluate", "evaluation_config", "file_digest", "resolve_evaluation"]
