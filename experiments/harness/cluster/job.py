"""``RunJob``: what every task of a run's job runs. submitit pickles it into the job's folder and starts it on each
task (``srun``: one task per device); Lightning's SLURM environment gives each task its rank, and each calls the
same ``experiments.harness.execute.execute`` a command on one machine calls, which resumes the run exactly from its
last checkpoint.

Task 0 also keeps the run's job file (``experiments.harness.cluster.job_file``) while holding the run's lock:

- **One job trains a run.** It takes the run's lock first, waiting up to ``LOCK_WAIT_S`` for it: a requeued job may
  start while the job it replaces is still being ended on another node. On a runs folder whose file system shares
  ``flock`` locks across hosts (NFS, GPFS, CephFS, Lustre mounted with ``flock``) the lock alone keeps a second
  job out; where it does not (Lustre's ``localflock``, BeeGFS without global locks, NFS mounted ``local_lock``),
  two hosts would both get it, so the job also reads the job file: a run another host's job still marks
  ``running`` with a fresh heartbeat is trained by neither until that heartbeat stops (the other job died) or
  moves on (it lives: this job ends, failed, naming it).
- **A heartbeat** (``alive_at``, every ``HEARTBEAT_S``) tells ``status`` a live job from one that died silently, and
  how far its training is (``progress``: step, epoch, their totals, where this start began), for the ETA.
- **Preemption and time limits.** A preemption, ``scontrol requeue`` or ``scancel`` sends SIGTERM: the training stops
  at the end of its batch in progress, saves its whole state there (``lightning_modules.stop_checkpoint``) and the
  job ends, ``stopped``; SLURM starts it again after a preemption or a requeue. Before the time limit SLURM sends
  SIGUSR2 (``--signal=USR2@120``; SIGUSR1 is taken alike): the job stops and saves the same way, then submitit's
  checkpoint hook (``RunJob.checkpoint``) writes the job to start again and requeues it (``scontrol requeue``; the
  local executor starts it again itself). Either way the next start resumes from that state, bit for bit. The loader
  workers, which SLURM signals too, ignore these signals (``data.worker_signals``): the task alone stops.
- **The report.** The job whose run completes the table (every run of the submission has its record) writes the
  table's report and names it in its job file, which ``status`` reads: no second command is needed.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..execute import execute
from ..interruption import Interrupted, received_signal, stop_on_signals, time_limit_signal
from ..run_dir import RunDir
from ..run_lock import RunBusyError
from ..spec import RunConfig
from .job_file import HEARTBEAT_S, STALE_S, now, read_job, seconds_since, update_job

LOCK_WAIT_S = 180.0  # SLURM's KillWait (30 s by default) and an NFSv4 lease (90 s), with room to spare


@dataclass(frozen=True)
class TableReport:
    """The report of the table a job's run belongs to: the runs it needs (under ``runs_root``), and ``write``, which
    writes it and returns its path (the entry point's report function with its table, folders and scale bound:
    picklable, from the reports floor, which this one does not import)."""

    configs: tuple[RunConfig, ...]
    runs_root: str
    write: Callable[[], Path | None]

    def ready(self) -> bool:
        return all(RunDir.of(cfg, self.runs_root).next_step(cfg, self.runs_root).action == "done"
                   for cfg in self.configs)


class RunJob:
    """The run ``cfg`` (its folder under ``runs_root``) as a job. ``reuse_only``: the job only copies the record of
    an identical run, once that run's job is done (it waits for it through the scheduler); it never trains.
    ``report``: the table's report, which the job that ends last writes (its job file then names it)."""

    def __init__(self, cfg: RunConfig, runs_root: str | Path, reuse_only: bool = False,
                 report: TableReport | None = None, end_with: int | None = None) -> None:
        self.cfg = cfg
        self.runs_root = str(Path(runs_root).absolute())  # the job may start in another folder
        self.reuse_only = reuse_only
        self.report = report
        self.end_with = end_with  # a local job's command: the job ends when it dies (``end_with_command``)

    def checkpoint(self) -> Any:
        """submitit's checkpoint hook, called before it requeues the job: the same job again (the run's state is
        in its last checkpoint, saved as the training stopped)."""
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(self)

    def __call__(self) -> str:
        import submitit

        if self.end_with is not None:
            end_with_command(self.end_with)
        env = submitit.JobEnvironment()
        zero = env.global_rank == 0
        requeue = signal.getsignal(signal.Signals[f"SIG{env.USR_SIG}"])  # submitit's: checkpoint and requeue
        print(f"job {env.job_id}, task {env.global_rank} of {env.num_tasks} on {socket.gethostname()}: "
              f"{self.cfg.table} row={self.cfg.row} column={self.cfg.column} seed={self.cfg.seed} "
              f"scale={self.cfg.scale}", flush=True)
        try:
            with stop_on_signals():  # SIGUSR1/SIGUSR2 stop it as SIGTERM does, and are remembered
                return self._run(env, requeue) if zero else self._follow()
        except Interrupted as stop:
            # the other tasks end quietly: a failed task would end the job's step (srun --kill-on-bad-exit) before
            # task 0 has written how it stopped and requeued the job
            raise SystemExit(stop.exit_code if zero else 0) from None
        except Requeued as requeued:
            raise SystemExit(requeued.code) from None

    @property
    def run_dir(self) -> Path:
        return RunDir.of(self.cfg, self.runs_root).path

    def _follow(self) -> str:
        """Any task but the first: the same run, as one rank of it (task 0 holds the lock and the job file)."""
        execute(self.cfg, self.runs_root, force=False, progress_bar=False)
        return str(self.run_dir)

    def _run(self, env: Any, requeue: Any) -> str:
        """Task 0: the run under its lock (``_locked``); a signal's stop is written to the job file (where the lock
        was taken) and, after a time-limit signal, hands the job to ``requeue``, submitit's handler (which calls
        ``checkpoint``, runs ``scontrol requeue`` and exits)."""
        locked: list[bool] = []
        with ExitStack() as held:
            try:
                record = self._locked(env, held, locked)
            except Exception:
                raise
            except BaseException as err:  # Interrupted, or Lightning's SIGTERMException that a signal caused
                signum = err.signum if isinstance(err, Interrupted) else received_signal()
                if signum is None:
                    raise
                time_limit = time_limit_signal()
                if locked:
                    update_job(self.run_dir, state="requeued" if time_limit else "stopped",
                               stopped_by=signal.Signals(time_limit or signum).name, ended_at=now())
                if time_limit and callable(requeue):
                    _requeue(self.run_dir, requeue, time_limit, locked)
                raise
            self._report_if_last()
        metrics = ", ".join(f"{k}={v:.2f}" for k, v in record.get("metrics", {}).items())
        print(f"done: {self.run_dir}: {metrics}", flush=True)
        return str(self.run_dir)

    def _report_if_last(self) -> None:
        """With the run done and its lock held: if every run of the table is done, write the table's report and
        name it in the job file (two jobs ending together may both write it: the same file, each write atomic). A
        report that fails leaves the run done and says why, in the log and the job file."""
        if self.report is None or not self.report.ready():
            return
        try:
            path = self.report.write()
        except Exception as err:
            message = f"{type(err).__name__}: {err}"
            print(f"the table's report failed: {message}; the same `run --submit` command writes it once every "
                  f"run is done", flush=True)
            update_job(self.run_dir, report=None, report_error=message)
            return
        update_job(self.run_dir, report=str(path) if path else None, report_at=now(), report_error=None)

    def _locked(self, env: Any, held: ExitStack, locked: list[bool]) -> dict[str, Any]:
        """Take the run's lock (waiting for a job that is ending), mark the job running, beat, run it, and write
        how it ended; ``locked`` gets an entry once the lock is held."""
        instance = uuid.uuid4().hex
        try:
            _take_lock(held, self.run_dir, doing=f"running it in job {env.job_id}")
            _check_no_other_host_runs_it(self.run_dir, instance)
        except RunBusyError as busy:  # the run is another process's: this job ends without touching it
            raise RunBusyError(f"job {env.job_id}: {busy}") from None
        locked.append(True)
        job = read_job(self.run_dir) or {}
        update_job(self.run_dir, state="running", job_id=env.job_id, instance=instance, host=socket.gethostname(),
                   pid=os.getpid(), nodes=os.environ.get("SLURM_JOB_NODELIST") or socket.gethostname(),
                   started_at=now(), alive_at=now(), starts=int(job.get("starts") or 0) + 1, error=None, progress=None,
                   stopped_by=None, ended_at=None)
        try:
            with _heartbeat(self.run_dir, instance):
                record = self._execute()
        except Exception as err:
            message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
            update_job(self.run_dir, state="failed", error=f"{type(err).__name__}: {message}".strip(),
                       ended_at=now())
            raise
        update_job(self.run_dir, state="done", ended_at=now(), error=None)
        return record

    def _execute(self) -> dict[str, Any]:
        """The run, as its folder says (asked here, under the run's lock that task 0 holds)."""
        step = RunDir(self.run_dir).next_step(self.cfg, self.runs_root, holding=True)
        if self.reuse_only and step.action not in ("done", "reuse", "refuse"):
            raise ValueError(f"{self.run_dir}: waited to copy the record of an identical run, but none has one "
                             f"(was it moved or replaced?); `run --submit` again submits this run to train")
        return execute(self.cfg, self.runs_root, force=False, progress_bar=False, planned=step)


def end_with_command(command: int, every_s: float = 1.0) -> None:
    """End this local job, and submitit's controller that started it, when ``command`` (the controller's parent, the
    ``run --submit local`` that waits for the job) dies, however it dies: after a ``kill -9`` nothing else would
    stop them, and the job would train on for a command that is gone. The kernel ends this process with its
    controller (``end_with_parent``); a thread checks every ``every_s`` seconds that the controller's parent is still
    ``command`` (the kernel gives an orphan another parent) and else kills the controller. The run is then cut as by
    ``kill -9``: its last checkpoint (written atomically) is where the same command resumes it."""
    from ..jobs import end_with_parent

    controller = os.getppid()
    end_with_parent(controller)

    def watch() -> None:
        while _command_lives(command, controller):
            time.sleep(every_s)
        with suppress(ProcessLookupError):
            os.kill(controller, signal.SIGKILL)
        os._exit(128 + signal.SIGKILL)

    threading.Thread(target=watch, name="end-with-command", daemon=True).start()


def _command_lives(command: int, controller: int) -> bool:
    """Whether ``controller``'s parent is still ``command`` (Linux's /proc); without /proc, whether a process
    ``command`` exists."""
    try:
        stat = Path(f"/proc/{controller}/stat").read_text()
    except OSError:
        if Path("/proc/self/stat").exists():
            return False  # the controller is gone
        try:
            os.kill(command, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # a process of another user took its number: the command is gone
            return False
        return True
    return int(stat.rsplit(")", 1)[1].split()[1]) == command  # after "pid (name)": the state, then the parent


def _requeue(run_dir: Path, requeue: Any, signum: int, locked: list[bool]) -> None:
    """Hand the stopped job to submitit's handler, which requeues it and exits; a job it refuses to requeue (timed
    out too many times) is marked failed, with its reason (where the run's lock is held)."""
    try:
        requeue(signum, None)
    except SystemExit as requeued:  # its exit status tells the local executor to start the job again
        raise Requeued(requeued.code) from None
    except Exception as err:
        if locked:
            update_job(run_dir, state="failed", error=f"not requeued: {err}", ended_at=now())
        raise


class Requeued(BaseException):  # not an error: the job ends to start again
    """submitit requeued the job and asked to exit with ``code``; a ``BaseException`` that ``stop_on_signals``
    does not take for a signal's stop."""

    def __init__(self, code: Any) -> None:
        super().__init__(code)
        self.code = code


def _take_lock(held: ExitStack, run_dir: Path, wait_s: float = LOCK_WAIT_S, doing: str = "running it") -> None:
    """Enter the run's lock into ``held`` (``doing``: what the job does with the run, for another command's
    message), waiting up to ``wait_s`` for another holder to end; ``RunBusyError`` after that."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            held.enter_context(RunDir(run_dir).hold(doing))
            return
        except RunBusyError as busy:
            if time.monotonic() >= deadline:
                raise
            print(f"waiting for the run's lock: {busy}", flush=True)
            time.sleep(5)


def _check_no_other_host_runs_it(run_dir: Path, instance: str, stale_s: float = STALE_S) -> None:
    """With the run's lock held: refuse the run if the job file says another host's job is running it and its
    heartbeat still moves (that host's lock and this one's are not the same lock: see the module's text). A
    job file left ``running`` by a job that died is taken over once its heartbeat is ``stale_s`` old."""
    job = read_job(run_dir) or {}
    if job.get("state") != "running" or job.get("instance") in (None, instance) \
            or job.get("host") == socket.gethostname():  # on this host the lock is the kernel's: its holder ended
        return
    beat = job.get("alive_at")
    while (seconds_since(beat) or stale_s + 1) <= stale_s:
        print(f"waiting: the job file says {job.get('host')} runs it (heartbeat {beat}); is it alive?", flush=True)
        time.sleep(min(10.0, stale_s / 4))
        again = read_job(run_dir) or {}
        if again.get("alive_at") != beat:
            raise RunBusyError(
                f"{run_dir}: skipped, job {again.get('job_id')} on {again.get('host')} is running it (its heartbeat "
                f"moves) although its lock was free here: this runs folder's file system does not share flock locks "
                f"across hosts (Lustre mounted localflock, BeeGFS without global locks, NFS mounted local_lock); "
                f"mount it with cluster-wide locks")


@contextmanager
def _heartbeat(run_dir: Path, instance: str, every_s: float = HEARTBEAT_S) -> Iterator[None]:
    """Rewrite the job file's ``alive_at``, and how far the training is (``progress``: step, epoch, their totals),
    every ``every_s`` seconds while the block runs (from a thread: the training never waits for it)."""
    stop = threading.Event()

    from lightning_modules.run_callbacks import training_progress

    def beat() -> None:
        while not stop.wait(every_s):
            try:
                if (read_job(run_dir) or {}).get("instance") == instance:
                    progress = training_progress()
                    update_job(run_dir, alive_at=now(), **({"progress": progress} if progress else {}))
            except (OSError, ValueError):  # a full disk or a damaged file misses one beat; status reads it later
                pass

    thread = threading.Thread(target=beat, name="job-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
