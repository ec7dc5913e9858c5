"""Which runs of a table ``run --submit`` hands to the scheduler, as which jobs, and handing them over.

- A run is submitted unless it is done, or its job is queued, running or requeued
  (``experiments.harness.cluster.status``), or its data is absent here; a failed or stopped one is submitted again
  and resumes from its last checkpoint.
- One configuration trains once: Motionformer's tables share rows. The first run of a configuration trains; another
  one, of this table or of a table submitted earlier, gets a small job that copies the first's record once the
  first's job has ended well (SLURM's ``afterok`` dependency), or copies it here at once if it is done already.
- A run that starts from another run's checkpoint (``run:TABLE/ROW/COLUMN``) waits for that run's job the same way.
- Jobs of one allocation and the same dependencies go out as one job array.

While it submits, the command holds the lock of every run it submits, so that a job that starts at once waits until
its job file is written (``experiments.harness.cluster.job``), and a run another command is training is skipped.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import shlex
import shutil
import socket
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..plan import expected_data, needs_another_run, pretrained_source_errors
from ..records import comparable_config
from ..run_dir import RunDir, RunsTree, source_runs
from ..run_lock import RunBusyError
from ..run_sources import parse_run_source
from ..spec import RunConfig
from .job_file import now, read_job, write_job
from .resources import MAX_TIMEOUTS, REPO, JobOptions, Resources, job_resources, reuse_resources
from .status import LIVE, RunStatus, statuses_of


class SubmitError(ValueError):
    """A submission that cannot go ahead, in one line: what refused it, and what was left as it was."""


@dataclass(frozen=True)
class PlannedJob:
    """One run's job: what it does (``action``), its allocation, and what it waits for: runs of this submission
    (``after``) and jobs already queued or running (``after_jobs``). ``reuse_only``: it copies an identical run's
    record (``reuses``) and trains nothing."""

    cfg: RunConfig
    resources: Resources
    action: str
    reuse_only: bool = False
    reuses: Path | None = None
    after: tuple[Path, ...] = ()
    after_jobs: tuple[str, ...] = ()


@dataclass
class SubmissionPlan:
    jobs: list[PlannedJob] = field(default_factory=list)
    reuse_now: list[RunConfig] = field(default_factory=list)  # an identical run is done: copied here, no job
    skipped: list[tuple[RunConfig, str]] = field(default_factory=list)  # not submitted, and why
    stale_jobs: list[str] = field(default_factory=list)  # queued jobs that wait for a failed one: cancelled

    def line(self, cfg: RunConfig) -> str:
        """What the plan does with ``cfg``, as ``run --dry-run`` says it."""
        for job in self.jobs:
            if job.cfg is cfg:
                return f"{job.action}, a job of {job.resources.describe()}"
        if cfg in self.reuse_now:
            return "copy the record of an identical run that is done (here, now)"
        return next(why for skipped, why in self.skipped if skipped is cfg)


def config_key(cfg: RunConfig) -> str:
    """What identical runs share (``records.comparable_config``: no table, row or column), short."""
    text = json.dumps(comparable_config(cfg.to_dict()), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def plan_submission(configs: Sequence[RunConfig], runs_root: str | Path, options: JobOptions, force: bool,
                    dry_run: bool) -> SubmissionPlan:
    """What ``run --submit`` does with each of ``configs`` (see the module's text), from what each run does next
    (``RunDir.next_step``: a run it refuses stops the submission, as it stops ``run``). A dry run plans the runs
    whose data is absent here as jobs too: the cluster's nodes may see it."""
    runs_root = Path(runs_root)
    steps = {RunDir.of(cfg, runs_root).path: RunDir.of(cfg, runs_root).next_step(cfg, runs_root, force).unless_refused()
             for cfg in configs}
    # the other tables' runs that jobs may be training: submitted, and not recorded yet
    others = [path.parent for path in RunsTree(runs_root).job_files(unrecorded=True) if path.parent not in steps]
    states = statuses_of([*steps, *others], runs_root, steps)
    live_elsewhere = _live_by_configuration(others, states)
    plan, trains = SubmissionPlan(), {}  # trains: {configuration: the run of this plan that trains it}
    for cfg in configs:
        here = RunDir.of(cfg, runs_root).path
        status, step, key = states[here], steps[here], config_key(cfg)
        reason = _not_submitted(cfg, status, force, dry_run)
        if reason:
            plan.skipped.append((cfg, reason))
            if status.state in LIVE:
                trains.setdefault(key, here)
            continue
        if status.note.startswith("it waits for a job that failed"):
            plan.stale_jobs.append(status.job_id)
        if key in trains or (not force and key in live_elsewhere):  # trained by another run's job
            source = trains.get(key) or live_elsewhere[key][0]
            live = states[source].state in LIVE  # else: submitted by this plan
            plan.jobs.append(PlannedJob(cfg, reuse_resources(options), f"copy the record of {_rel(source, runs_root)} "
                                        f"once its job is done", True, source, after=() if live else (source,),
                                        after_jobs=(states[source].job_id,) if live else ()))
            continue
        if step.action == "reuse" and not needs_another_run(cfg):
            plan.reuse_now.append(cfg)
            continue
        waits, waits_jobs, missing = _sources(cfg, runs_root, states, trains)
        if missing:
            plan.skipped.append((cfg, missing))
            continue
        action = step.line(runs_root)
        if status.state in ("failed", "stopped"):
            action += f" (its job {status.job_id} {status.state}: {status.note})" if status.note else ""
        plan.jobs.append(PlannedJob(cfg, job_resources(cfg, options), action, after=waits, after_jobs=waits_jobs))
        trains.setdefault(key, here)
    return plan


def _not_submitted(cfg: RunConfig, status: RunStatus, force: bool, dry_run: bool) -> str | None:
    """Why ``cfg`` gets no job (None: it gets one)."""
    if status.state in LIVE:
        if force:
            raise SubmitError(f"--force: {status.run_dir} is {status.state} as job {status.job_id}; cancel it "
                              f"first (`scancel {status.job_id}`), or submit without --force")
        said = f"{status.state} as job {status.job_id}" + (f" on {status.nodes}" if status.nodes else "")
        return f"{said}: {status.note}" if status.state == "cannot start" else said  # the note names the fix
    if status.state in ("done", "busy") and not force:
        return f"{status.state}: {status.note}" if status.note else status.state
    where = expected_data(cfg)
    if where is not None and not dry_run:
        return f"skip: needs {cfg.data.dataset} ({where})"
    return None


@dataclass(frozen=True)
class MissingFile:
    """A pretrained source of a run (``model.pretrained``; ``part``: its submodule, "" for the whole model) that
    cannot be read on this machine, and why, with what makes it."""

    cfg: RunConfig
    part: str
    why: str

    def line(self) -> str:
        return f"{self.cfg.table}/{self.cfg.row}/{self.cfg.column} seed {self.cfg.seed}: {self.why}"


def missing_files(configs: Sequence[RunConfig], dry_run: bool) -> list[MissingFile]:
    """The pretrained files (an expert's or an initialisation's checkpoint, a shipped tiny source, released weights
    given by path) that the runs would read at their start and this machine lacks: a job would wait in the queue,
    then fail. A submission checks the runs whose data is here (the others are not submitted); a dry run, all."""
    out = []
    for cfg in configs:
        if not dry_run and expected_data(cfg) is not None:
            continue
        for part, err in pretrained_source_errors(cfg):
            how = "" if isinstance(err, FileNotFoundError) else _where_from(cfg)
            out.append(MissingFile(cfg, part, f"{err}{how}"))
    return out


def _where_from(cfg: RunConfig) -> str:
    """Where a paper's released files come from: its page, if it has one."""
    page = REPO / "experiments" / cfg.table.split("_")[0] / "README.md"
    where = f"{page.relative_to(REPO).as_posix()} says where it comes from; " if page.is_file() else ""
    return f" ({where}or pass another with --pretrained)"


def refuse_missing_files(missing: Sequence[MissingFile]) -> None:
    """A submission whose runs need files this machine lacks, refused in one line before anything is submitted."""
    if missing:
        others = sorted({f"{m.cfg.table}/{m.cfg.row}/{m.cfg.column}" for m in missing[1:]}
                        - {f"{missing[0].cfg.table}/{missing[0].cfg.row}/{missing[0].cfg.column}"})
        more = f"; {len(others)} other run(s) too ({', '.join(others[:3])}{', ...' if len(others) > 3 else ''})" \
            if others else ""
        raise SubmitError(f"{missing[0].line()}{more}; nothing was submitted (its job would wait in the queue, then "
                          f"fail at its start)")


def _live_by_configuration(run_dirs: Sequence[Path], states: dict[Path, RunStatus]) -> dict[str, tuple[Path, str]]:
    """{configuration: (run folder, job id)} of the queued, running or requeued runs among ``run_dirs`` (of other
    tables) that train, from their job files."""
    live = {}
    for path in run_dirs:
        status = states[path]
        if status.state in LIVE and status.job.get("config_key") and not status.job.get("reuses"):
            live.setdefault(status.job["config_key"], (path, status.job_id))
    return live


def _sources(cfg: RunConfig, runs_root: Path, states: dict[Path, RunStatus], trains: dict[str, Path]
             ) -> tuple[tuple[Path, ...], tuple[str, ...], str | None]:
    """What a run that starts from other runs' checkpoints waits for: runs of this plan, jobs already queued or
    running; or why it cannot be submitted now (a source neither done nor submitted)."""
    waits, waits_jobs = [], []
    for source, run, finished in source_runs(cfg, runs_root):
        if finished:
            continue
        status = states.get(run.path) or statuses_of([run.path], runs_root)[run.path]
        if run.path in trains.values():
            waits.append(run.path)
        elif status.state in LIVE:
            waits_jobs.append(status.job_id)
        else:
            table, row, _ = parse_run_source(source)
            return (), (), (f"waits for {source}, which is {status.state}: submit it first (`python -m experiments "
                            f"run {table} --rows {row} --scale {cfg.scale} --submit ...`)")
    return tuple(waits), tuple(waits_jobs), None


def _rel(path: Path, runs_root: Path) -> str:
    return path.relative_to(runs_root).as_posix()


def check_scheduler(cluster: str) -> None:
    """Before anything is planned or locked: submitit is installed and, for SLURM, its commands are here."""
    try:
        import submitit  # noqa: F401
    except ImportError:
        raise SubmitError("--submit needs submitit, which is not installed here: `pip install submitit==1.5.4` "
                          "(requirements.txt pins it); nothing was submitted") from None
    missing = [command for command in ("sbatch", "srun") if shutil.which(command) is None]
    if cluster == "slurm" and missing:
        raise SubmitError(f"--submit slurm: SLURM's {' and '.join(missing)} are not on this machine's PATH; submit "
                          f"from a node of the cluster, or run the jobs here with --submit local")


def executor(cluster: str, folder: Path, resources: Resources, name: str, dependency: str | None) -> Any:
    """A submitit executor for one allocation (``check_scheduler`` has passed): SLURM's is ``slurm_executor``'s."""
    import submitit

    if cluster == "slurm":
        return slurm_executor(folder, resources, name, dependency)
    out = submitit.AutoExecutor(folder=folder, cluster=cluster, slurm_max_num_timeout=MAX_TIMEOUTS)
    out.update_parameters(**resources.executor_parameters(name))
    return out


def slurm_executor(folder: Path, resources: Resources, name: str, dependency: str | None,
                   script_only: bool = False) -> Any:
    """submitit's ``SlurmExecutor`` for one allocation, given ``Resources.executor_parameters`` as
    ``AutoExecutor`` hands them to it (the generic ones under SLURM's names, by submitit's own conversion, and the
    ``slurm_`` ones without their prefix). ``script_only``: an executor that only writes its sbatch script
    (``sbatch_options``), where SLURM's commands need not be."""
    from submitit import AutoExecutor
    from submitit.slurm.slurm import SlurmExecutor

    class ScriptOnly(SlurmExecutor):
        @classmethod
        def affinity(cls) -> int:  # SlurmExecutor looks for srun here; this one never submits
            return 1

    try:
        out = (ScriptOnly if script_only else SlurmExecutor)(folder, max_num_timeout=MAX_TIMEOUTS)
    except RuntimeError as err:  # SlurmExecutor: 'Could not detect "srun", are you indeed on a slurm cluster?'
        raise SubmitError(f"--submit slurm: SLURM's commands (srun, sbatch) are not on this machine's PATH ({err}); "
                          f"submit from a node of the cluster, or run the jobs here with --submit local") from None
    given = resources.executor_parameters(name)
    if dependency:
        given["slurm_additional_parameters"] = {**given["slurm_additional_parameters"], "dependency": dependency}
    generic = AutoExecutor._typed_parameters()
    parameters = out._convert_parameters({key: value for key, value in given.items() if key in generic})
    parameters.update({key.removeprefix("slurm_"): value for key, value in given.items() if key.startswith("slurm_")})
    out.update_parameters(**parameters)
    return out


def sbatch_options(folder: Path, resources: Resources, name: str, dependency: str | None, jobs: int) -> list[str]:
    """The options of the sbatch script that submits ``jobs`` such jobs (a job array of them where several), as
    submitit writes it (submitit 1.5.4's ``SlurmExecutor``: its ``#SBATCH`` lines, ``--array=0-K%N`` among them):
    what ``--dry-run`` shows and each job file keeps."""
    ex = slurm_executor(folder, resources, name, dependency, script_only=True)
    if jobs > 1:
        ex.parameters["map_count"] = jobs  # as SlurmExecutor submits a batch of jobs: one array
    script = ex._make_submission_file_text(ex._submitit_command_str, "")
    return [line.removeprefix("#SBATCH ") for line in script.splitlines() if line.startswith("#SBATCH ")]


def job_arrays(jobs: Sequence[PlannedJob], submitted: dict[Path, str]
               ) -> Iterator[tuple[Resources, str | None, list[PlannedJob]]]:
    """The sbatch calls that submit ``jobs``, in order: the jobs whose runs to wait for are submitted, grouped by
    allocation and dependency (one job array each); the caller adds each array's job ids to ``submitted`` ({run
    folder: job id}) before the next."""
    remaining = list(jobs)
    while remaining:
        ready = [job for job in remaining if all(path in submitted for path in job.after)]
        if not ready:  # waits for runs that are not submitted (``_hold`` leaves such jobs out first)
            return
        remaining = [job for job in remaining if job not in ready]
        for (resources, dependency), group in _arrays(ready, submitted).items():
            yield resources, dependency, group


@contextlib.contextmanager
def sbatch_errors(what: str, submitted: int) -> Iterator[None]:
    """Turn a refused ``sbatch`` (submitit prints its whole error output, then raises) into one line: the line of
    that output that says why, and what was left as it was."""
    shown = io.StringIO()
    try:
        with contextlib.redirect_stderr(shown):
            yield
    except Exception as err:
        from submitit.core.utils import FailedJobError

        if not isinstance(err, FailedJobError):
            sys.stderr.write(shown.getvalue())
            raise
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        why = next((line for line in reversed(lines) if "error" in line.lower()), lines[-1] if lines else str(err))
        before = f"; the {submitted} job(s) submitted before it keep their job files" if submitted else ""
        raise SubmitError(f"sbatch refused {what}: {why}{before}; the other runs are left as they were "
                          f"(resumable): fix the option and run the same command again") from None


def submit_plan(plan: SubmissionPlan, runs_root: str | Path, cluster: str, force: bool, argv: Sequence[str],
                echo: Callable[[str], None], report: Any = None) -> dict[Path, str]:
    """Submit the plan's jobs to SLURM, a job array per allocation and dependencies, holding every submitted run's
    lock meanwhile (a run another command holds is skipped, said in one line); writes each run's job file. Every job
    carries ``report`` (a ``job.TableReport``: the job that ends last writes the table's report). Returns {run
    folder: job id}."""
    runs_root = Path(runs_root)
    folder = RunsTree(runs_root).submission_folder()
    submitted: dict[Path, str] = {}
    try:
        _submit(plan, runs_root, cluster, force, argv, echo, folder, submitted, report)
    except SubmitError:
        if not submitted:  # nothing of this submission is queued: its scripts and pickles go
            shutil.rmtree(folder, ignore_errors=True)
        raise
    return submitted


def _submit(plan: SubmissionPlan, runs_root: Path, cluster: str, force: bool, argv: Sequence[str],
            echo: Callable[[str], None], folder: Path, submitted: dict[Path, str], report: Any) -> None:
    with ExitStack() as held:
        jobs = _hold(plan.jobs, runs_root, held, echo)
        if force:
            for job in jobs:
                if not job.reuse_only:
                    RunDir.of(job.cfg, runs_root).move_away(runs_root, echo)
        for resources, dependency, group in job_arrays(jobs, submitted):
            ex = executor(cluster, folder, resources, group[0].cfg.table, dependency)
            sbatch = sbatch_options(folder, resources, group[0].cfg.table, dependency, len(group))
            with sbatch_errors(f"{len(group)} job(s) ({resources.describe()})", len(submitted)):
                with ex.batch():
                    handles = [ex.submit(_run_job(job, runs_root, report)) for job in group]
            for job, handle in zip(group, handles):
                write_job_file(job, handle, cluster, folder, runs_root, submitted, argv, sbatch)
                submitted[RunDir.of(job.cfg, runs_root).path] = str(handle.job_id)


def _run_job(job: PlannedJob, runs_root: Path, report: Any) -> Any:
    from .job import RunJob  # the runner's floor: only once a job is really submitted

    return RunJob(job.cfg, runs_root, reuse_only=job.reuse_only, report=report)


def _hold(jobs: Sequence[PlannedJob], runs_root: Path, held: ExitStack, echo: Callable[[str], None]
          ) -> list[PlannedJob]:
    """Take the lock of each job's run; a run another command holds is left out, with the line that says so, and so
    are the jobs that wait for it."""
    kept, dropped = [], set()
    for job in jobs:
        path = RunDir.of(job.cfg, runs_root).path
        if any(source in dropped for source in job.after):
            echo(f"    {path}: not submitted, the run it waits for is not either")
            dropped.add(path)
            continue
        try:
            held.enter_context(RunDir(path).hold("submitting it as a job"))
        except RunBusyError as busy:
            echo(f"    {busy}")
            dropped.add(path)
            continue
        kept.append(job)
    return kept


def _arrays(ready: Sequence[PlannedJob], submitted: dict[Path, str]
            ) -> dict[tuple[Resources, str | None], list[PlannedJob]]:
    """The ready jobs grouped by allocation and dependency (``afterok:ID:ID``): one job array each."""
    groups: dict[tuple[Resources, str | None], list[PlannedJob]] = {}
    for job in ready:
        ids = sorted({*job.after_jobs, *(submitted[path] for path in job.after)})
        groups.setdefault((job.resources, f"afterok:{':'.join(ids)}" if ids else None), []).append(job)
    return groups


def write_job_file(job: PlannedJob, handle: Any, cluster: str, folder: Path, runs_root: Path,
                    submitted: dict[Path, str], argv: Sequence[str], sbatch: Sequence[str] = ()) -> None:
    """The run's job file as its job is queued (the run's lock is held: the job cannot write it meanwhile);
    ``sbatch``: the options of the script that submitted it (``sbatch_options``; none for a local job)."""
    path = RunDir.of(job.cfg, runs_root).path
    before = read_job(path, runs_root) or {}
    earlier = [*before.get("earlier_jobs", []), before["job_id"]] if before.get("job_id") else []
    write_job(path, {
        "state": "queued", "executor": cluster, "job_id": str(handle.job_id), "submitted_at": now(),
        "submitted_on": socket.gethostname(), "folder": str(folder), "stdout": str(handle.paths.stdout),
        "stderr": str(handle.paths.stderr), "resources": job.resources.describe(),
        "sbatch": list(sbatch), "config_key": config_key(job.cfg), "action": job.action,
        "reuses": _rel(job.reuses, runs_root) if job.reuses else None,
        "after": sorted({*job.after_jobs, *(submitted[p] for p in job.after)}), "starts": 0,
        "earlier_jobs": earlier, "command": shlex.join(["python", "-m", "experiments", *argv]),
    })
