"""A run's folder: ``RunDir`` is the one place that names the files a run leaves there and reads them to say what
state the run is in. Planning, running, evaluating, ``status``, the cluster's jobs and the reports ask it; none of
them builds those files' paths or opens them itself.

A run lives in ``runs/<table>/<row>/seed<k>/<scale>-<column>/`` (an evaluation of released weights in
``runs/<table>/<row>/released/<scale>-<column>/``). In it: TensorBoard's event files and the run's hyper-parameters
(``HPARAMS``), the last checkpoint (``LAST_CHECKPOINT``: rewritten as the run trains; a resume starts there), the job
file where a scheduler's job trains it (``JOB_FILE``) and, once tested, the record (``RECORD``: the flat record the
reports read, written last and atomically). Its lock file lies beside it, not inside (``lock_file``): a run that
``--force`` moves away keeps its lock in place, and a run refused before it starts leaves no folder.

The state of a folder for the run ``cfg`` (``RunDir.state``):

- ``absent``: neither a record nor a last checkpoint;
- ``busy``: no record, and another live process holds the lock: it is training, testing or recording the run;
- ``resumable``: a last checkpoint written for this run with this configuration, and no record;
- ``finished``: a record written for this run with this configuration;
- ``reusable``: a record of another run with the same configuration, itself no copy: ``cfg`` may copy it;
- ``other-configuration``: a record or a checkpoint written for another run or another configuration.

A record or a checkpoint that cannot be read is no state: asking raises ``DamagedRecordError`` naming the file and
what to do (``find_equivalent_run`` passes over it). What a run asks before it uses its folder is ``check``: the state
its files give, a record or checkpoint of another run or configuration refused with ``RunConflictError`` naming the
fields that differ. The harness moves a folder between the states with ``hold`` (its lock taken: absent or resumable
-> busy; ``RunBusyError`` when another process holds it), ``write_record`` (busy -> finished), the end of a holder
killed while it trains (the kernel frees its lock: busy -> resumable, and the next command resumes it) and
``move_away`` (``--force``: any state -> absent, the old folder moved whole to ``runs/.replaced/<time>/...``; nothing
is deleted, and neither TensorBoard nor the reports mix the two runs). Imports no torch.
"""

from __future__ import annotations

import json
import shutil
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
from .run_lock import check_lock_file, held_elsewhere, hold_lock
from .run_sources import RUN_PREFIX, inside_runs_root, parse_run_source
from .spec import RunConfig, run_dir

RunState = Literal["absent", "busy", "resumable", "finished", "reusable", "other-configuration"]
REPLACED_DIR = ".replaced"  # under the runs root; outside runs/<table>/, so reports and run reuse never see it


@dataclass(frozen=True)
class CheckedRun:
    """What a run folder holds for a run, checked to be that run's (``RunDir.check``)."""

    state: Literal["absent", "resumable", "finished"]
    record: dict[str, Any] | None = None  # finished: the record
    started: dict[str, Any] | None = None  # resumable: its checkpoint's RUN_STATE (None: written before they had one)


@dataclass(frozen=True)
class RunDir:
    """The folder of one run (``path``), its files and its state (module doc)."""

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
        """The folder of the run ``cfg`` under ``runs_root``."""
        return cls(cfg.run_dir(runs_root))

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
        """The run is recorded (a record is written atomically: its presence means a whole one, read without the
        lock)."""
        return self.record_file.exists()

    def has_checkpoint(self) -> bool:
        return self.last_checkpoint.exists()

    def relative_to(self, runs_root: str | Path) -> str:
        """The folder's place under ``runs_root``, as a record's ``reused_from`` names it."""
        return self.path.relative_to(runs_root).as_posix()

    def record_inside(self, runs_root: str | Path) -> Path:
        """The record file, if it lies inside ``runs_root`` once links are resolved (``inside``)."""
        return self.inside(self.record_file, runs_root)

    def job_file_inside(self, runs_root: str | Path, fix: str | None = None) -> Path:
        """The job file, if it lies inside ``runs_root`` once links are resolved (``inside``)."""
        return self.inside(self.job_file, runs_root, fix)

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

    # --- what its files say ----------------------------------------------------------------------------------

    def read_record(self, required: Sequence[str] = ()) -> dict[str, Any]:
        """The record with the ``required`` keys; a damaged one raises ``DamagedRecordError`` naming it."""
        return read_record(self.record_file, required)

    def check(self, cfg: RunConfig, runs_root: str | Path) -> CheckedRun:
        """The folder's state for the run ``cfg``, as a run that would use it asks: ``finished`` with its record,
        ``resumable`` with what its checkpoint says of the run that wrote it, or ``absent``. A record or checkpoint
        of another run (its table, row, column, seed or scale) or of another configuration (``experiment_key``)
        raises ``RunConflictError``: using it would put that run's numbers under this one's name."""
        if self.has_record():
            return CheckedRun("finished", record=self.finished_record(cfg, runs_root))
        if self.has_checkpoint():
            return CheckedRun("resumable", started=self.checkpoint_run(cfg, runs_root))
        return CheckedRun("absent")

    def state(self, cfg: RunConfig, runs_root: str | Path) -> RunState:
        """The folder's state for the run ``cfg`` (module doc), a record first: it is whole once there, whoever
        holds the lock. ``busy`` is asked of the lock (``held_elsewhere``), which the harness's own commands do not
        do: they take it (``hold``)."""
        if self.has_record():
            record = read_record(self.record_inside(runs_root), (*RECORD_KEYS, "config"))
            if not run_differences(record, cfg):
                return "finished"
            return "reusable" if _copyable(record, _config_text(cfg)) else "other-configuration"
        if held_elsewhere(self.lock_file):
            return "busy"
        try:
            return self.check(cfg, runs_root).state
        except RunConflictError:
            return "other-configuration"

    def finished_record(self, cfg: RunConfig, runs_root: str | Path) -> dict[str, Any]:
        """The run's record, checked to be this run's, done with this configuration (and to lie in the runs folder:
        a link out of it is refused, never read)."""
        record = read_record(self.record_inside(runs_root), (*RECORD_KEYS, "config"))
        _refuse_another_run(record, cfg, runs_root, f"its {self.RECORD} was written for another run")
        return record

    def checkpoint_run(self, cfg: RunConfig, runs_root: str | Path) -> dict[str, Any] | None:
        """What the last checkpoint says it belongs to (its place, configuration and process count, saved under
        ``RUN_STATE``), checked against ``cfg``; None for a checkpoint written before checkpoints said so (its
        configuration cannot be checked)."""
        started = self._checkpoint_run_state()
        if started is not None:
            _refuse_another_run(started, cfg, runs_root, f"its {self.LAST_CHECKPOINT} was written for another run",
                                resume=True)
        return started

    def _checkpoint_run_state(self) -> dict[str, Any] | None:
        """The ``RUN_STATE`` the last checkpoint holds, read without executing anything
        (``models.weights.load_weights_file``: weights only, a TorchScript archive refused) and without reading its
        tensors (memory-mapped); None when it holds none."""
        from models.weights import CheckpointError, UnsafeCheckpointError, load_weights_file

        path, fix = self.last_checkpoint, local_record_fix(self.path)
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
    def hold(self) -> Iterator[None]:
        """Hold the run's lock for the block (``experiments.harness.run_lock``); ``RunBusyError`` at once if another
        process holds it. Re-entrant within a process."""
        with hold_lock(self.lock_file, self.path):
            yield

    def check_lock_file(self) -> None:
        """``RunLockError`` when the lock path is a folder, a link or another special file (no lock of ours)."""
        check_lock_file(self.lock_file)

    def write_record(self, record: dict[str, Any]) -> None:
        """The run's record, written atomically: the run is finished."""
        write_record(self.record_file, record)

    def move_away(self, runs_root: str | Path, echo: Callable[[str], None] = print) -> None:
        """``--force``: move the folder, whole, to ``runs/.replaced/<UTC time>/<its place>`` (nothing is deleted)."""
        if self.path.is_dir() and any(self.path.iterdir()):
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
            archive = Path(runs_root) / REPLACED_DIR / stamp / self.path.relative_to(runs_root)
            archive.parent.mkdir(parents=True, exist_ok=True)
            self.path.rename(archive)
            echo(f"    previous run moved to {archive}")

    def copy_tensorboard_files(self, source: RunDir) -> None:
        """A reused run's TensorBoard files (event files, hyper-parameters) copied from the run it reuses, so that
        ``tensorboard --logdir runs/<table>`` shows every row of the table, the reused ones with the curves they
        were trained with (their hyper-parameters name the table and row that trained them)."""
        self.path.mkdir(parents=True, exist_ok=True)
        for path in [*sorted(source.path.glob(self.EVENT_FILES)), source.path / self.HPARAMS]:
            if path.is_file() and not (self.path / path.name).exists():
                shutil.copy2(path, self.path / path.name)


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
    for path in sorted(Path(runs_root).glob(f"*/*/seed{cfg.seed}/{cfg.scale}-*/{RunDir.RECORD}")):
        try:
            record = read_record(path)
        except DamagedRecordError:
            continue
        if _copyable(record, target):
            return RunDir(path.parent)
    return None


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
    source = RunDir(run_dir(runs_root, table, row, cfg.seed, cfg.scale, column))
    if source.has_record():  # a reused run keeps no checkpoint: the run it reuses has it
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
