"""``RunsTree`` owns the runs folder's layout, ``RunDir`` one run's folder: its files, and what a command does next
with the run (``RunDir.next_step``). Planning, running, evaluating, ``status``, the cluster's jobs and the reports ask
them, and never build those paths, glob the tree or decide from a file's existence (a test greps for it).

The tree: a trained run lives in ``<runs>/<table>/<row>/seed<k>/<scale>-<column>/``, an evaluation of released weights
in ``<runs>/<table>/<row>/released/<scale>-<column>/``; a run ``--force`` replaced, whole, in
``<runs>/.replaced/<time>/<its place>`` (nothing is deleted, and no report or TensorBoard mixes the two runs); each
submission's scripts, pickled jobs and logs in ``<runs>/.jobs/<time>/``. The tracked copy (``reports/results/``) keeps
the same places, a run's record as one file, ``<scale>-<column>.json``.

A run's folder (``RunDir``): TensorBoard's event files and the run's hyper-parameters (``HPARAMS``), the last
checkpoint (``LAST_CHECKPOINT``: rewritten as the run trains; a resume starts there), the job file where a
scheduler's job trains it (``JOB_FILE``) and, once tested, the record (``RECORD``: the flat record the reports read,
written last and atomically). Its lock file lies beside it, not inside (``lock_file``): a run that ``--force`` moves
away keeps its lock in place, and a run refused before it starts leaves no folder.

Each of these files is checked the same way before it is read or written (``checked_file``): a regular file, inside
the runs folder once links are resolved; a file a library writes by its name (Lightning's ``HPARAMS``, the lock) is
no link at all, as the library would write through it. A folder, FIFO, device or a link out of the runs folder in
any of their places is a damaged run: ``DamagedRecordError`` naming the file and what to do, the same line for
``run``, ``--dry-run``, ``status`` and ``attention-score`` (``next_step`` refuses the run), never a hang on a FIFO
or a traceback after the training.

What a command does next with the run ``cfg`` (``RunDir.next_step``, a ``Step``), asked in this order:

- ``skip``: its data is absent on this machine (the caller says where it was expected);
- ``train (--force)``: ``--force`` replaces whatever the folder holds;
- ``refuse``: a record or a checkpoint written for another run or another configuration (``RunConflictError``
  naming the fields that differ), one that cannot be read (``DamagedRecordError`` naming the file and what to do),
  or a lock path that is no file (``RunLockError``): the command stops before anything trains;
- ``done``: a record written for this run with this configuration (whole once there, whoever holds the lock);
- ``busy``: no record, and another live process holds the lock: it is training, testing or submitting the run;
- ``reuse``: a finished run of another table with the same configuration, itself no copy: its record is copied;
- ``resume``: a last checkpoint written for this run with this configuration;
- ``train``: nothing of the run is there.

The harness moves a folder between them with ``hold`` (its lock taken), ``write_record`` (-> done), the end of a
holder killed while it trains (the kernel frees its lock: the next command resumes it) and ``move_away``
(``--force``). Imports no torch.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Literal

from .records import (
    IDENTITY,
    RECORD_KEYS,
    RUN_STATE,
    DamagedRecordError,
    RunConflictError,
    check_record_shape,
    comparable_config,
    local_record_fix,
    read_record,
    run_differences,
    write_record,
)
from .run_lock import RunLockError, check_lock_file, held_elsewhere, hold_lock, lock_holder
from .run_sources import RUN_PREFIX, inside_runs_root, parse_run_source, run_sources
from .spec import RunConfig, column_slug

StepAction = Literal["skip", "refuse", "done", "busy", "reuse", "resume", "train"]


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")


@dataclass(frozen=True)
class RunsTree:
    """The runs folder ``root`` and its layout (module doc): the one place that builds or globs its paths."""

    root: Path

    SEED: ClassVar[str] = "seed"  # <table>/<row>/seed<k>/: a row's trained runs of seed k
    RELEASED: ClassVar[str] = "released"  # <table>/<row>/released/: its evaluations of the authors' weights
    REPLACED: ClassVar[str] = ".replaced"  # outside every table: neither the reports nor a reuse read it
    JOBS: ClassVar[str] = ".jobs"

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @classmethod
    def place(cls, table: str, row: str, seed: int | None, scale: str, column: str) -> tuple[str, str, str, str]:
        """A run's place under a tree's root, a folder a part: its table, row, ``seed<k>`` (``released`` where
        ``seed`` is None: an evaluation of released weights) and ``<scale>-<column>`` (the column's slug keeps
        letters, digits and ``_``)."""
        return table, row, cls.RELEASED if seed is None else f"{cls.SEED}{seed}", f"{scale}-{column_slug(column)}"

    def table(self, table: str) -> Path:
        return self.root / table

    def run(self, table: str, row: str, seed: int | None, scale: str, column: str) -> RunDir:
        return RunDir(self.root.joinpath(*self.place(table, row, seed, scale, column)))

    def folder(self, cfg: RunConfig) -> RunDir:
        """The folder of the trained run ``cfg``."""
        return self.run(cfg.table, cfg.row, cfg.seed, cfg.scale, cfg.column)

    def released(self, cfg: RunConfig) -> RunDir:
        """The folder of the evaluation of released weights at ``cfg``'s cell, beside the row's trained runs."""
        return self.run(cfg.table, cfg.row, None, cfg.scale, cfg.column)

    def folders(self, table: str, scale: str) -> list[Path]:
        """The trained runs' folders of ``table`` at ``scale``, whatever their seed folder."""
        return sorted(self.table(table).glob(f"*/{self.SEED}*/{scale}-*"))

    def seeds(self, table: str, scale: str, max_seeds: int) -> tuple[int, list[Path]]:
        """(one more than the largest seed below ``max_seeds`` with a folder of ``table`` at ``scale``, 0 for none;
        the seed folders holding such runs that no ``run`` makes: ``seed<k>`` of ``max_seeds`` or more, or no
        number)."""
        seeds, odd = [-1], set()
        for folder in self.folders(table, scale):
            number = folder.parent.name.removeprefix(self.SEED)
            if number.isdigit() and int(number) < max_seeds:
                seeds.append(int(number))
            else:
                odd.add(folder.parent)
        return max(seeds) + 1, sorted(odd)

    def records(self, seed: int | None = None, scale: str | None = None, tracked: bool = False) -> list[Path]:
        """The record files of every trained run (every table), or of those of seed ``seed`` at ``scale``;
        ``tracked``: as the tracked copy holds them, a file a run (``<place>.json``)."""
        runs = f"*/*/{self.SEED}*/*" if seed is None else f"*/*/{self.SEED}{seed}/{scale}-*"
        return sorted(self.root.glob(f"{runs}.json" if tracked else f"{runs}/{RunDir.RECORD}"))

    def released_records(self, table: str, tracked: bool = False) -> list[Path]:
        runs = f"*/{self.RELEASED}/*"
        return sorted(self.table(table).glob(f"{runs}.json" if tracked else f"{runs}/{RunDir.RECORD}"))

    def job_files(self, table: str | None = None, unrecorded: bool = False) -> list[Path]:
        """The job files of the trained runs (of ``table``; ``unrecorded``: of those without a record yet)."""
        found = sorted(self.root.glob(f"{table or '*'}/*/{self.SEED}*/*/{RunDir.JOB_FILE}"))
        return [path for path in found if not (unrecorded and RunDir(path.parent).has_record())]

    @property
    def replaced_root(self) -> Path:
        return self.root / self.REPLACED

    def submission_folder(self) -> Path:
        """``<runs>/.jobs/<UTC time>``: one submission's scripts, pickled jobs and logs."""
        return self.root.absolute() / self.JOBS / _stamp()


@dataclass(frozen=True)
class CheckedRun:
    """What a run folder holds for a run, checked to be that run's (``RunDir.check``)."""

    state: Literal["absent", "resumable", "finished"]
    record: dict[str, Any] | None = None  # finished: the record
    started: dict[str, Any] | None = None  # resumable: its checkpoint's RUN_STATE (None: written before they had one)


@dataclass(frozen=True)
class Step:
    """What a command does next with one run (``RunDir.next_step``; module doc), with what it needs for it."""

    action: StepAction
    run: RunDir
    record: dict[str, Any] | None = None  # done: the run's record
    source: RunDir | None = None  # reuse: the finished identical run whose record it copies
    started: dict[str, Any] | None = None  # resume: its checkpoint's RUN_STATE (None: written before they had one)
    why: str = ""  # skip, busy, refuse: the line that says why
    refusal: Exception | None = None  # refuse: what the command stops with
    forced: bool = False  # train: --force replaces what the folder held

    @property
    def checkpoint(self) -> Path | None:
        """The checkpoint a resumed run starts from."""
        return self.run.last_checkpoint if self.action == "resume" else None

    @property
    def trains(self) -> bool:
        return self.action in ("train", "resume")

    def line(self, runs_root: str | Path) -> str:
        """The step as ``run --dry-run`` and ``status`` say it: "train", "train (--force)", "resume from <file>",
        "reuse <run>", "done", or "skip: ...", "busy: ...", "refuse: ..." with why."""
        if self.action == "train":
            return "train (--force)" if self.forced else "train"
        if self.action == "resume":
            return f"resume from {self.checkpoint}"
        if self.action == "reuse":
            return f"reuse {self.source.relative_to(runs_root)}"
        return "done" if self.action == "done" else f"{self.action}: {self.why}"

    def unless_refused(self) -> Step:
        """The step, unless it refuses the run: then the error the command stops with is raised."""
        if self.refusal is not None:
            raise self.refusal
        return self


@dataclass(frozen=True)
class RunDir:
    """The folder of one run (``path``), its files and what a command does next with it (module doc)."""

    path: Path

    RECORD: ClassVar[str] = "metrics.json"
    CHECKPOINTS: ClassVar[str] = "checkpoints"
    LAST_CHECKPOINT: ClassVar[str] = f"{CHECKPOINTS}/last.ckpt"  # Lightning's ModelCheckpoint(save_last=True) name
    JOB_FILE: ClassVar[str] = "job.json"
    HPARAMS: ClassVar[str] = "hparams.yaml"
    EVENT_FILES: ClassVar[str] = "events.out.tfevents.*"

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    @classmethod
    def of(cls, cfg: RunConfig, runs_root: str | Path = "runs") -> RunDir:
        """The folder of the run ``cfg`` under ``runs_root`` (``RunsTree.folder``)."""
        return RunsTree(runs_root).folder(cfg)

    @property
    def record_file(self) -> Path:
        return self.path / self.RECORD

    @property
    def checkpoints_dir(self) -> Path:
        return self.path / self.CHECKPOINTS

    @property
    def last_checkpoint(self) -> Path:
        return self.path / self.LAST_CHECKPOINT

    @property
    def job_file(self) -> Path:
        return self.path / self.JOB_FILE

    @property
    def lock_file(self) -> Path:
        """``.<scale>-<column>.lock`` beside the folder (module doc: beside, not inside)."""
        return self.path.parent / f".{self.path.name}.lock"

    def has_record(self) -> bool:
        """Something is in the record's place (a record is written atomically: a regular file there is a whole one,
        read without the lock; anything else there is a damaged run, which ``check`` names)."""
        return os.path.lexists(self.record_file)

    def has_checkpoint(self) -> bool:
        return os.path.lexists(self.last_checkpoint)

    def checked_file(self, path: Path, runs_root: str | Path, written_by_name: bool = False,
                     fix: str | None = None) -> Path | None:
        """``path``, one of the folder's files, if it is a regular file inside ``runs_root`` once links are resolved
        (``written_by_name``: a file a library writes by its name, which must be no link at all); None where there
        is nothing; else ``DamagedRecordError`` naming it, what it is and ``fix`` (default: ``local_record_fix``).
        The one check of every file the folder names (module doc)."""
        from data.root_files import file_kind, shown

        fix = fix or local_record_fix(self.path)
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            return None
        if stat.S_ISLNK(mode) and written_by_name:
            raise DamagedRecordError(f"{shown(path)}: a link, which the run would write through; {fix}")
        self.inside(path, runs_root, fix)
        try:
            mode = os.stat(path).st_mode
        except OSError as err:
            raise DamagedRecordError(f"{shown(path)}: cannot be read ({err.strerror or err}); {fix}") from None
        if not stat.S_ISREG(mode):
            raise DamagedRecordError(f"{shown(path)}: not a regular file (a {file_kind(mode)}); {fix}")
        return path

    def checkpoint_inside(self, runs_root: str | Path) -> Path:
        """The last checkpoint (``checked_file``), to load or resume from; ``FileNotFoundError`` where there is
        none."""
        path = self.checked_file(self.last_checkpoint, runs_root)
        if path is None:
            raise FileNotFoundError(f"{self.last_checkpoint}: no checkpoint of the run")
        return path

    def check_written_files(self, runs_root: str | Path) -> None:
        """The files a run's libraries write by name, checked before anything trains (``checked_file``): the
        hyper-parameters Lightning writes into the folder (a folder or FIFO there ended the run after its training,
        or hung it), and the lock."""
        self.checked_file(self.path / self.HPARAMS, runs_root, written_by_name=True)
        self.check_lock_file()

    def relative_to(self, runs_root: str | Path) -> str:
        """The folder's place under ``runs_root``, as a record's ``reused_from`` names it."""
        return self.path.relative_to(runs_root).as_posix()

    def record_inside(self, runs_root: str | Path) -> Path:
        """The record file, if it lies inside ``runs_root`` once links are resolved (``inside``)."""
        return self.inside(self.record_file, runs_root)

    def inside(self, path: Path, runs_root: str | Path, fix: str | None = None) -> Path:
        """``path``, one of the folder's files, if it lies inside ``runs_root`` once links are resolved; else
        ``DamagedRecordError`` naming it, where it leads and ``fix`` (default: ``local_record_fix``). A run's files
        are read only from its runs folder: a link out of it would have ``status`` show, or ``reports track`` copy
        into reports/results/, any file."""
        from data.root_files import OutsideRootError, inside_root, shown

        try:
            return inside_root(runs_root, path)
        except OutsideRootError as err:
            raise DamagedRecordError(f"{shown(path)}: leads outside the runs folder {shown(runs_root)} (to "
                                     f"{shown(err.real or '?')}), so it is not read; "
                                     f"{fix or local_record_fix(self.path)}") from None

    # --- what its files say, and what a command does next -------------------------------------------------------

    def read_record(self, required: Sequence[str] = ()) -> dict[str, Any]:
        """The record with the ``required`` keys; a damaged one raises ``DamagedRecordError`` naming it."""
        return read_record(self.record_file, required)

    def finished(self, required: Sequence[str] = ()) -> dict[str, Any] | None:
        """The record of the run the folder holds, for a command given the folder alone, with no configuration to
        check it against (``predict --run``; the record must lie in the folder itself); None where no run finished
        there."""
        path = self.checked_file(self.record_file, self.path)
        return None if path is None else read_record(path, required)

    def next_step(self, cfg: RunConfig, runs_root: str | Path, force: bool = False, missing_data: str | None = None,
                  holding: bool = False, released: str | None = None) -> Step:
        """What a command does next with the run ``cfg`` in this folder (module doc): the one place a run's fate is
        decided. ``missing_data``: why its data is absent here (the step skips it); ``holding``: the caller holds
        the run's lock, or is a rank of the process that does (the lock is not asked); ``released``: the folder
        is an evaluation of that released checkpoint (its catalogue name): done where its record is of it, refused
        where of another, else evaluated ("train")."""
        if missing_data:
            return Step("skip", self, why=missing_data)
        if force:
            return Step("train", self, forced=True)
        try:
            if released is not None:
                return self._evaluation_step(released, runs_root)
            if not holding and not self.has_record() and held_elsewhere(self.lock_file):
                return Step("busy", self, why=" is ".join(lock_holder(self.lock_file)))
            found = self.check(cfg, runs_root)
        except (RunConflictError, DamagedRecordError, RunLockError) as refused:
            return Step("refuse", self, why=str(refused), refusal=refused)
        if found.state == "finished":
            return Step("done", self, record=found.record)
        source = find_equivalent_run(cfg, runs_root)
        if source is not None:
            return Step("reuse", self, source=source)
        return Step("resume", self, started=found.started) if found.state == "resumable" else Step("train", self)

    def _evaluation_step(self, released: str, runs_root: str | Path) -> Step:
        if not self.has_record():
            self.check_written_files(runs_root)  # its test logs through Lightning too
            return Step("train", self)
        record = read_record(self.record_inside(runs_root))
        recorded = (record.get("released") or {}).get("name")
        if recorded == released:
            return Step("done", self, record=record)
        raise RunConflictError(f"{self.record_file}: records {recorded!r}, not {released}; --force evaluates again, "
                               f"moving it to {RunsTree(runs_root).replaced_root}/")

    def check(self, cfg: RunConfig, runs_root: str | Path) -> CheckedRun:
        """The folder's reading for the run ``cfg``: ``finished`` with its record, ``resumable`` with what its
        checkpoint says of the run that wrote it, or ``absent``. A record or checkpoint of another run (its table,
        row, column, seed or scale) or of another configuration (``experiment_key``) raises ``RunConflictError``:
        using it would put that run's numbers under this one's name."""
        if self.has_record():
            return CheckedRun("finished", record=self.finished_record(cfg, runs_root))
        self.check_written_files(runs_root)
        if self.has_checkpoint():
            return CheckedRun("resumable", started=self.checkpoint_run(cfg, runs_root))
        return CheckedRun("absent")

    def finished_record(self, cfg: RunConfig, runs_root: str | Path) -> dict[str, Any]:
        """The run's record, checked to be this run's, done with this configuration (and to lie in the runs folder:
        a link out of it is refused, never read)."""
        record = read_record(self.checked_file(self.record_file, runs_root), (*RECORD_KEYS, "config"))
        _refuse_another_run(record, cfg, runs_root, f"its {self.RECORD} was written for another run")
        return record

    def checkpoint_run(self, cfg: RunConfig, runs_root: str | Path) -> dict[str, Any] | None:
        """What the last checkpoint says it belongs to (its place, configuration and process count, saved under
        ``RUN_STATE``), checked against ``cfg``; None for a checkpoint written before checkpoints said so (its
        configuration cannot be checked)."""
        started = self._checkpoint_run_state(runs_root)
        if started is not None:
            _refuse_another_run(started, cfg, runs_root, f"its {self.LAST_CHECKPOINT} was written for another run",
                                resume=True)
        return started

    def _checkpoint_run_state(self, runs_root: str | Path) -> dict[str, Any] | None:
        """The ``RUN_STATE`` the last checkpoint holds, read without executing anything
        (``models.weights.load_weights_file``: weights only, a TorchScript archive refused) and without reading its
        tensors (memory-mapped); None when it holds none."""
        from models.weights import CheckpointError, UnsafeCheckpointError, load_weights_file

        path, fix = self.checkpoint_inside(runs_root), local_record_fix(self.path)
        try:
            checkpoint = load_weights_file(path, mmap=True, fix=f"a run's checkpoint never is one: {fix}")
        except UnsafeCheckpointError:  # it would run code: refused as every checkpoint load refuses it
            raise
        except CheckpointError as err:  # whatever the reason, the file cannot be resumed from
            raise DamagedRecordError(f"{err}; {fix}") from None
        state = (checkpoint.get("callbacks") or {}).get(RUN_STATE) if isinstance(checkpoint, dict) else None
        return None if state is None else check_record_shape(state, path, (*IDENTITY, "config"), fix=fix)

    # --- the transitions -------------------------------------------------------------------------------------

    @contextmanager
    def hold(self, doing: str = "running it") -> Iterator[None]:
        """Hold the run's lock for the block (``experiments.harness.run_lock``; ``doing``: what this process does
        with the run, as another command's ``RunBusyError`` says it); ``RunBusyError`` at once if another process
        holds it. Re-entrant within a process."""
        with hold_lock(self.lock_file, self.path, doing):
            yield

    def check_lock_file(self) -> None:
        """``RunLockError`` when the lock path is a folder, a link or another special file (no lock of ours)."""
        check_lock_file(self.lock_file)

    def write_record(self, record: dict[str, Any]) -> None:
        """The run's record, written atomically: the run is finished."""
        write_record(self.record_file, record)

    def move_away(self, runs_root: str | Path, echo: Callable[[str], None] = print) -> None:
        """``--force``: move the folder, whole, to ``<runs>/.replaced/<UTC time>/<its place>`` (nothing is
        deleted)."""
        if self.path.is_dir() and any(self.path.iterdir()):
            archive = RunsTree(runs_root).replaced_root / _stamp() / self.path.relative_to(runs_root)
            archive.parent.mkdir(parents=True, exist_ok=True)
            self.path.rename(archive)
            echo(f"    previous run moved to {archive}")

    def copy_tensorboard_files(self, source: RunDir) -> None:
        """A reused run's TensorBoard files (event files, hyper-parameters) copied from the run it reuses, so that
        ``tensorboard --logdir runs/<table>`` shows every row of the table, the reused ones with the curves they
        were trained with (their hyper-parameters name the table and row that trained them)."""
        from data.atomic_write import copy_file

        for path in [*sorted(source.path.glob(self.EVENT_FILES)), source.path / self.HPARAMS]:
            if path.is_file() and not path.is_symlink() and not os.path.lexists(self.path / path.name):
                copy_file(path, self.path / path.name)


def _refuse_another_run(recorded: dict[str, Any], cfg: RunConfig, runs_root: str | Path, what: str,
                        resume: bool = False) -> None:
    differences = run_differences(recorded, cfg)
    if not differences:
        return
    shown = "; ".join(differences[:6]) + (f"; and {len(differences) - 6} more" if len(differences) > 6 else "")
    keep = ", run again with the original options to finish it" if resume else ""
    raise RunConflictError(
        f"{RunDir.of(cfg, runs_root).path}: {what} (recorded -> asked: {shown}){keep}; run again with --force to "
        f"replace it (the old run is moved to {RunsTree(runs_root).replaced_root}/), or use another --runs-dir")


def _config_text(cfg: RunConfig) -> str:
    return json.dumps(comparable_config(cfg.to_dict()), sort_keys=True)


def _copyable(record: dict[str, Any], config_text: str) -> bool:
    """A record another run of the configuration ``config_text`` (``_config_text``) may copy: it has its
    configuration, it is no copy itself, and that configuration is the same but for table, row and column names."""
    return isinstance(record.get("config"), dict) and record.get("reused_from") is None and \
        json.dumps(comparable_config(record["config"]), sort_keys=True) == config_text


def find_equivalent_run(cfg: RunConfig, runs_root: str | Path) -> RunDir | None:
    """A finished run (any table) whose configuration equals ``cfg`` except for table/row/column names.

    Motionformer's tables share rows (exact trajectory attention is row 1 of Tables 3a-3d, the last row of Table 4
    and Mformer in Tables 6-8); such a run is trained once and its record reused, saying where it came from. A
    damaged record is passed over: it can stand for no run until it is repaired, and the run it belongs to (its own
    folder's) refuses to start while it is there, naming it.
    """
    target = _config_text(cfg)
    for path in RunsTree(runs_root).records(cfg.seed, cfg.scale):
        try:
            record = read_record(path)
        except DamagedRecordError:
            continue
        if _copyable(record, target):
            return RunDir(path.parent)
    return None


def source_runs(cfg: RunConfig, runs_root: str | Path) -> list[tuple[str, RunDir, bool]]:
    """Each ``run:TABLE/ROW/COLUMN`` pretrained source of ``cfg``: (its name, that run's folder at ``cfg``'s seed
    and scale, whether it is finished: its record written, so the checkpoint to start from is there, its own or
    that of the run it reused)."""
    out = []
    for name in run_sources(cfg):
        table, row, column = parse_run_source(name)
        source = RunsTree(runs_root).run(table, row, cfg.seed, cfg.scale, column)
        out.append((name, source, source.has_record()))
    return out


def pretrained_weights(cfg: RunConfig, runs_root: str | Path) -> str | dict[str, str] | None:
    """The run's pretrained sources with ``run:<table>/<row>/<column>`` resolved to the last checkpoint of that run
    at this scale and seed (Table 6's "IN-21K+K-400" initialisation, Table 9's K-400 model), or of the run it reused
    (its record's ``reused_from``); it must exist, and lie inside ``runs_root`` (``inside_runs_root``)."""
    sources = cfg.model.pretrained
    found = {name: (source, finished) for name, source, finished in source_runs(cfg, runs_root)}
    if isinstance(sources, str) or sources is None:
        return _resolve_source(cfg, sources, found, runs_root)
    return {part: _resolve_source(cfg, source, found, runs_root) for part, source in sources.items()}


def _resolve_source(cfg: RunConfig, name: str | None, found: dict[str, tuple[RunDir, bool]],
                    runs_root: str | Path) -> str | None:
    if not name or not name.startswith(RUN_PREFIX):
        return name
    table, row, _ = parse_run_source(name)
    source, finished = found[name]
    if finished:  # a reused run keeps no checkpoint: the run it reuses has it
        reused = source.read_record().get("reused_from")
        if reused:
            again = f"`python -m experiments run {table} --rows {row} --scale {cfg.scale}`"
            source = RunDir(inside_runs_root(
                runs_root, Path(runs_root) / reused, f"{source.record_file}: its reused_from {reused!r}",
                f"a record may only name a run in its own runs folder: delete it, then {again}"))
    path = inside_runs_root(runs_root, source.last_checkpoint, f"pretrained source {name}",
                            "a run starts only from a checkpoint inside it: put the file itself there, not a link")
    if not path.exists():
        raise FileNotFoundError(f"{cfg.table}/{cfg.row}: initialisation {name} needs {path}; train it first with "
                                f"`python -m experiments run {table} --rows {row} --scale {cfg.scale}`")
    return str(path)
