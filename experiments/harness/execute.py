"""One run of a table: ``execute`` trains and tests a run's model (a Lightning fit and a multi-view test), or
evaluates it for a task that trains nothing, and writes its record last.

It does what the run's folder says it does next (``RunDir.next_step``, asked under the run's lock): returns a
finished run's record, reuses the record of an identical run of another table, resumes an interrupted one or trains
it. The steps: ``_reuse`` (an identical run's record), or ``_prepare`` (threads, seed, pretrained sources) and then
``_evaluate_only`` or ``_fit_and_test`` (the data and the system, ``_build_trainer``, ``_scale_lr``,
``_check_resume``, the fit, ``_test``), each writing the record last.
"""

from __future__ import annotations

import logging
import math
import re
import sys
import time
import warnings
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .epoch_steps import limit_epoch
from .interruption import at_batch_boundaries, interruption_pending, raise_if_interrupted
from .provenance import git_commit, launched_as_global_zero
from .records import RECORD_KEYS, RUN_STATE, RunConflictError, run_record, run_state
from .run_dir import RunDir, RunsTree, Step, pretrained_weights
from .spec import RunConfig
from .tasks import build_model, check_data_options, evaluation_device, final_metrics, get_task, logged_metrics


class NoTrainingDataError(ValueError):
    """A fit that would record an untrained model: its training split has no samples, or it took no step."""


class NoTestDataError(ValueError):
    """A test that would record no result: it read no sample of the split it tests on."""


def execute(
    cfg: RunConfig,
    runs_root: str | Path = "runs",
    force: bool = False,
    progress_bar: bool = True,
    echo: Callable[[str], None] = print,
    planned: Step | None = None,
) -> dict[str, Any]:
    """One run of the config's task: what its folder says it does next (``RunDir.next_step``), its record written
    last. ``planned``: the step the caller's plan read; a finished run's is final (its record is whole once
    written, and only --force replaces it), any other is asked again under the run's lock, as another command may
    have moved the run on meanwhile. A fit whose training split is empty, or that takes no step, raises
    ``NoTrainingDataError`` and records nothing; a test that reads no sample raises ``NoTestDataError`` and records
    nothing (a later run tests again). The run's lock (``RunDir.hold``) is held throughout, by rank 0 (the other
    ranks are its own processes): a run another command holds raises ``RunBusyError`` before anything is
    written."""
    if planned is not None and planned.action == "done":
        return {**planned.record, "cached": True}
    run = RunDir.of(cfg, runs_root)
    with run.hold() if launched_as_global_zero() else nullcontext():
        # before anything is built, and before a reuse would write a record beside another configuration's checkpoint
        step = run.next_step(cfg, runs_root, force, holding=True).unless_refused()
        if step.action == "done":
            return {**step.record, "cached": True}
        if step.action == "reuse":
            return _reuse(cfg, step.source, runs_root)
        if "lightning" not in sys.modules:
            echo("    loading PyTorch and Lightning ...")
        prepared = _prepare(cfg, runs_root, force, echo)
        if not get_task(cfg.task).trains:
            return _evaluate_only(cfg, prepared, echo)
        return _fit_and_test(cfg, runs_root, prepared, step, progress_bar, echo)


def _reuse(cfg: RunConfig, source: RunDir, runs_root: str | Path) -> dict[str, Any]:
    """The record of an identical finished run (``source``, of any table) under this run's name, saying where it
    came from, with copies of its TensorBoard files."""
    run = RunDir.of(cfg, runs_root)
    record = {**source.read_record(RECORD_KEYS), "table": cfg.table, "row": cfg.row, "column": cfg.column,
              "config": cfg.to_dict(), "reused_from": source.relative_to(runs_root)}
    if launched_as_global_zero():
        run.copy_tensorboard_files(source)
        run.write_record(record)
    return record


@dataclass
class _Prepared:
    """What every run has once it starts: its folder, when it started, the code's commit and state, the torch
    threads it runs on, and its pretrained sources resolved to files."""

    run: RunDir
    start: float
    commit: str
    git: dict[str, Any]
    threads: int
    weights: str | dict[str, str] | None


def _prepare(cfg: RunConfig, runs_root: str | Path, force: bool, echo: Callable[[str], None]) -> _Prepared:
    """Check the run's data options, move a replaced run away (``--force``), seed everything and resolve the
    pretrained sources (which may pretrain a tiny expert first, in its own random state)."""
    import lightning as L

    from .provenance import git_state, set_threads

    quiet_libraries()
    check_data_options(cfg)  # a misspelt option stops here, by name, before the run directory is written
    start, commit, git = time.perf_counter(), git_commit(), git_state()
    run = RunDir.of(cfg, runs_root)
    if force and launched_as_global_zero():  # Lightning's rank_zero_only ignores NODE_RANK before a trainer exists
        run.move_away(runs_root, echo)
    run.path.mkdir(parents=True, exist_ok=True)
    threads = set_threads(cfg.trainer.num_threads)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    return _Prepared(run, start, commit, git, threads, pretrained_weights(cfg, runs_root))


def _evaluate_only(cfg: RunConfig, prepared: _Prepared, echo: Callable[[str], None]) -> dict[str, Any]:
    """A task that trains nothing (DAVIS label propagation, other test views): its evaluation on one device, logged
    to TensorBoard as a trained run's test is, so that a table's runs compare alike."""
    from lightning_modules.run_callbacks import log_hparams_session
    from lightning_modules.tensorboard_percent import PercentTensorBoardLogger

    from .provenance import provenance

    run = prepared.run
    device = evaluation_device(cfg.trainer.accelerator)
    echo(f"    evaluating {cfg.model.name} on {cfg.data.dataset} ({cfg.data.root}) on {device} ...")
    metrics, evaluated = get_task(cfg.task).evaluate(cfg, prepared.weights, device)
    check_tested(cfg, metrics, evaluated.test_videos, evaluated.data_report,
                  evaluated.data.get("root", cfg.data.root))
    record = run_record(cfg, metrics, prepared.start, data=evaluated.data, data_report=evaluated.data_report,
                        num_params=None, resume=None, commit=prepared.commit)
    record["test_videos"] = evaluated.test_videos
    record["provenance"] = provenance(cfg, None, evaluated.data_report, None, prepared.threads, prepared.git,
                                      device=device)
    if launched_as_global_zero():
        logger = PercentTensorBoardLogger(save_dir=str(run.path.parent), name=run.path.name, version="",
                                          default_hp_metric=False)
        logger.log_hyperparams(cfg.to_dict())
        logger.log_metrics(logged_metrics(metrics), step=0)
        log_hparams_session(logger, cfg.to_dict(), 0)
        logger.finalize("success")
        run.write_record(record)
    return record


def _fit_and_test(cfg: RunConfig, runs_root: str | Path, prepared: _Prepared, step: Step, progress_bar: bool,
                  echo: Callable[[str], None]) -> dict[str, Any]:
    """Train the task's system on its data module (resuming the ``step``'s checkpoint, whose ``RUN_STATE`` it
    holds), save the final state, test it and write the record."""
    from .provenance import provenance

    task, run = get_task(cfg.task), prepared.run
    resume = str(step.checkpoint) if step.checkpoint else None
    echo(f"    data: {cfg.data.dataset} " + ("(generated on first use, then read from the cache) ..."
                                           if cfg.data.root is None else f"from {cfg.data.root} ..."))
    dm = task.datamodule(cfg, run.path)
    dm.prepare_data()
    dm.setup("fit")
    trains = cfg.optim.epochs > 0 and cfg.trainer.max_steps != 0  # 0: the initial model tested, on purpose
    if trains and _training_samples(dm) == 0:
        raise _no_training_data(cfg, dm, "its training split has no samples")
    task.check_classes(dm.num_classes)
    model = build_model(cfg, dm.num_classes, weights=prepared.weights)
    module = task.system(cfg, model, dm)
    num_params = sum(p.numel() for p in model.parameters())
    params = {**cfg.to_dict(), "num_params": num_params}
    trainer, data_wait = _build_trainer(cfg, run, params, progress_bar)
    batch = _scale_lr(cfg, trainer, module, params)
    if trains:
        limit_epoch(cfg, trainer, _training_samples(dm), trainer.world_size, echo)
    _check_resume(resume, step.started, trainer.world_size, run, runs_root, echo)
    echo(f"    training {cfg.model.name} ({num_params / 1e6:.2f}M parameters) for {cfg.optim.epochs} epoch(s), "
         f"then testing ...")
    with at_batch_boundaries():
        trainer.fit(module, datamodule=dm, ckpt_path=resume, weights_only=True)  # SafeCheckpointIO refuses code
    if trains and trainer.global_step == 0:  # before the last checkpoint: no later run resumes an untrained state
        raise _no_training_data(cfg, dm, f"it took no optimizer step (batches of {cfg.data.batch_size} per "
                                         f"process x {trainer.world_size}, an incomplete last batch dropped)")
    trainer.save_checkpoint(run.last_checkpoint, weights_only=False)  # the whole final state
    raise_if_interrupted()  # a SIGTERM at the fit's very end, after Lightning's last check: no test starts
    metrics, test_videos = _test(cfg, trainer, module, dm, run.path)
    record = run_record(cfg, metrics, prepared.start, data=dm.describe(), data_report=dm.data_report(),
                        num_params=num_params, resume=resume, commit=prepared.commit)
    record["perf"] = data_wait.summary()
    record["test_videos"] = test_videos
    record["provenance"] = provenance(cfg, trainer, record["data_report"], batch, prepared.threads, prepared.git)
    if trainer.is_global_zero:
        run.write_record(record)
    return record


def _build_trainer(cfg: RunConfig, run: RunDir, params: dict[str, Any], progress_bar: bool) -> tuple[Any, Any]:
    """The run's Lightning ``Trainer`` (TensorBoard logger, periodic and last checkpoints, a checkpoint when SIGTERM
    stops it, exact resume, the run's state in every checkpoint, safe checkpoint IO) and its data-wait monitor."""
    import lightning as L
    from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint

    from lightning_modules.checkpoint_io import SafeCheckpointIO
    from lightning_modules.data_wait import DataWaitMonitor
    from lightning_modules.resume import ExactResumeCallback
    from lightning_modules.run_callbacks import LogRunConfig, RunState, StopAtBatchBoundary, TrainingProgress
    from lightning_modules.stop_checkpoint import CheckpointOnStop
    from lightning_modules.tensorboard_percent import PercentTensorBoardLogger

    logger = PercentTensorBoardLogger(save_dir=str(run.path.parent), name=run.path.name, version="",
                                      default_hp_metric=False)
    checkpoint = ModelCheckpoint(dirpath=run.checkpoints_dir, save_last=True, save_top_k=0,
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
        callbacks=[checkpoint, LogRunConfig(params), data_wait, LearningRateMonitor(logging_interval="step"),
                   ExactResumeCallback(),  # a killed run continues where it stopped, same data and draws
                   RunState(RUN_STATE, run_state(cfg, None)),  # for RunDir.check; world_size set in setup
                   # a stop asked mid-batch: the batch's state saved, the run resumes there (SIGTERM: then
                   # Lightning stops; SIGINT: then StopAtBatchBoundary raises Interrupted at the next boundary)
                   CheckpointOnStop(run.last_checkpoint, also_when=interruption_pending),
                   StopAtBatchBoundary(raise_if_interrupted),
                   TrainingProgress()],  # how far it is, for a job's heartbeat (status: step, epoch, ETA)
        enable_progress_bar=progress_bar,
        enable_model_summary=False,
        deterministic=t.deterministic,
        profiler=data_wait.fetch_timer,
        plugins=[SafeCheckpointIO()],  # atomic checkpoint writes, weights-only loads
    )
    return trainer, data_wait


def _scale_lr(cfg: RunConfig, trainer: Any, module: Any, params: dict[str, Any]) -> dict[str, Any]:
    """The paper's global batch against this run's, and the lr for this one (``batch_and_lr``), set on the system
    and added to the logged ``params``."""
    from .provenance import batch_and_lr

    batch = batch_and_lr(cfg, trainer.world_size)
    if batch["lr_scaling"] and "lr" not in module.hparams:
        raise ValueError(f"{cfg.table}/{cfg.row}: lr scaling to global batch {batch['global_batch']} needs a system "
                         f"with an `lr` hyper-parameter; {type(module).__name__} has none")
    module.hparams.lr = batch["lr"]
    params["batch"] = batch
    return batch


def _check_resume(resume: str | None, started: dict[str, Any] | None, world_size: int, run: RunDir,
                  runs_root: str | Path, echo: Callable[[str], None]) -> None:
    """Say what the fit resumes from; refuse a checkpoint written by another number of processes (its data position
    and steps per epoch would mean something else)."""
    if resume and started is None:
        echo(f"    resuming from {resume} (written before checkpoints recorded their run's configuration: it cannot "
             f"be checked against this one)")
    elif resume:
        if started.get("world_size") not in (None, world_size):
            raise RunConflictError(
                f"{run.path}: its {run.LAST_CHECKPOINT} was written by {started['world_size']} process(es), this run "
                f"has {world_size}: its data position and steps per epoch would mean something else; run "
                f"again on as many (--devices, --num-nodes), or with --force to start over (the old run is moved to "
                f"{RunsTree(runs_root).replaced_root}/), or use another --runs-dir")
        echo(f"    resuming from {resume}")


def _test(cfg: RunConfig, trainer: Any, module: Any, dm: Any, run_path: Path) -> tuple[dict[str, float], int | None]:
    """The multi-view test of the trained system: its final metrics and the videos it counted (each once, across
    processes); a test that measured nothing, or anything but finite numbers, raises."""
    with at_batch_boundaries():
        metrics = final_metrics(trainer.test(module, datamodule=dm, verbose=False)[0])
    test_videos = getattr(module, "test_videos", None)
    check_tested(cfg, metrics, test_videos, dm.data_report(), dm.data_root)
    if not all(math.isfinite(v) for v in metrics.values()):
        raise RuntimeError(f"{run_path}: non-finite test metrics {metrics}")
    return metrics, test_videos


# Lightning's per-run chatter, dropped by message (nothing else from these loggers is hidden): device availability,
# an advertisement, notes on what the Trainer does anyway, and the SIGTERM the command reports itself.
LIGHTNING_CHATTER = ("GPU available:", "TPU available:", "HPU available:", "💡 Tip:",
                     "Loading `train_dataloader` to estimate number of stepping batches", "`Trainer.fit` stopped:",
                     "Received SIGTERM:")
CHATTY_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero",
                  "lightning.pytorch.trainer.connectors.signal_connector")
_RANK_PREFIX = re.compile(r"^\[rank: \d+\] ")  # what Lightning puts before a message of one process


class _DropChatter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not _RANK_PREFIX.sub("", record.getMessage(), count=1).startswith(LIGHTNING_CHATTER)


def quiet_libraries() -> None:
    """Silence the lines every run would print without saying anything about it: the messages in
    ``LIGHTNING_CHATTER``, torch's deprecation of ``LeafSpec``, which Lightning's own pytree helper triggers, and
    Lightning's advice to use srun wherever SLURM's client is installed.
    Narrow on purpose: every other log line and warning still shows."""
    for name in CHATTY_LOGGERS:
        log = logging.getLogger(name)
        if not any(isinstance(f, _DropChatter) for f in log.filters):
            log.addFilter(_DropChatter())
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated",
                            category=FutureWarning)
    # On a machine with SLURM's client, every run outside a SLURM job would advise running it under srun; this
    # repository's own way onto SLURM is `run --submit slurm`, which starts each task under srun itself.
    warnings.filterwarnings("ignore", message=r"The `srun` command is available on your system but is not used")


def _training_samples(dm: Any) -> int | None:
    """The training split's sample count, from the data module's description (None: it does not say)."""
    described = dm.describe() if hasattr(dm, "describe") else {}
    return described.get("num_train_videos", described.get("num_train"))


def _no_training_data(cfg: RunConfig, dm: Any, why: str) -> NoTrainingDataError:
    """The error for a fit that would record an untrained model: which data, read from where, and what in its
    training split was unusable (file, line, reason)."""
    report = (dm.data_report() if hasattr(dm, "data_report") else {}).get("train") or {}
    return NoTrainingDataError(_no_data_message(cfg, why, dm.data_root, {"train": report}))


def check_tested(cfg: RunConfig, metrics: dict[str, float], test_videos: int | None,
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
