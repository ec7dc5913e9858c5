"""The command line of the job layer: ``run ID --submit slurm|local`` with the allocation's options, and
``status ID``. ``add_command`` adds both (the former to the ``run`` parser); ``python -m experiments`` hands ``run``
here (``submit_table``) when ``--submit`` or one of its options is given."""

from __future__ import annotations

import argparse
import json
import shlex
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from data.command_line import checked, count, number, word

from ..overrides import given_options, parse_setting, settings_of
from ..plan import MAX_SEEDS, check_resolved, dataset_shown, describe_runs, missing_datasets, resolve_runs
from ..run_dir import RunDir, RunsTree
from ..spec import SCALES, RunConfig, table_spec
from .partition import check_partition
from .resources import DEFAULT_ARRAY_PARALLELISM, DEFAULT_TIME_MIN, JobOptions, Resources, parse_slurm_option
from .status import RunStatus, run_statuses, seed_folders_left_out, status_json, status_line, summary
from .submission import (
    MissingFile,
    PlannedJob,
    SubmissionPlan,
    SubmitError,
    check_scheduler,
    job_arrays,
    missing_files,
    plan_submission,
    refuse_missing_files,
    sbatch_options,
    submit_plan,
)

# the options that only mean something with --submit (argparse dest: flag)
JOB_FLAGS = {"partition": "--partition", "nodes": "--nodes", "gpus_per_node": "--gpus-per-node",
             "cpus_per_task": "--cpus-per-task", "mem_gb": "--mem-gb", "time": "--time", "account": "--account",
             "qos": "--qos", "constraint": "--constraint", "slurm_option": "--slurm-option",
             "array_parallelism": "--array-parallelism"}


# The job options' bounds: past any cluster's (a node count no machine room holds, more GPUs than a node carries, a
# time limit past a year, SLURM's largest array), so that a typo is refused here rather than by sbatch
NODES = count(1, 10_000, "a node count")
GPUS_PER_NODE = count(1, 64, "a GPU count per node")
CPUS_PER_TASK = count(1, 4096, "a core count per task")
TIME_MIN = count(1, 366 * 24 * 60, "a time limit in minutes")
ARRAY_PARALLELISM = count(1, 4_000_000, "a count of jobs at once")
MEM_GB = number(0, 100_000, "a memory size in gigabytes", above=True)  # 100 TB: past any node
# A partition, account, QOS or constraint: written into the job's sbatch script, so one printable word (a newline
# would end the ``#SBATCH`` block and put the rest on the script's shell lines)
_slurm_word = word("one word of printable characters")
_slurm_option = checked(parse_slurm_option, "an sbatch option K=V")


def add_submit_options(run: argparse.ArgumentParser) -> None:
    """``run``'s options that hand each run to a scheduler as a job of its own."""
    group = run.add_argument_group("jobs on a scheduler (each run one job; `status ID` follows them)")
    group.add_argument("--submit", choices=("slurm", "local"),
                       help="submit each run not done, queued or running as a job (submitit): slurm (a job array "
                            "per allocation; a job requeues itself after a preemption or before its time limit and "
                            "resumes exactly) or local (the same jobs on this machine, --jobs at a time, waited for)")
    group.add_argument("--partition", type=_slurm_word, help="SLURM partition")
    group.add_argument("--nodes", type=NODES, help="nodes per run (default: the run's trainer.num_nodes, the "
                                                     "paper's); sets --num-nodes")
    group.add_argument("--gpus-per-node", type=GPUS_PER_NODE, metavar="G",
                       help="GPUs per node, one task each (default: the run's trainer.devices); sets --devices")
    group.add_argument("--cpus-per-task", type=CPUS_PER_TASK, metavar="C",
                       help="cores per task (default: the run's loader processes + 1, by the loader rule)")
    group.add_argument("--mem-gb", type=MEM_GB, metavar="M", help="memory per node (default: the partition's)")
    group.add_argument("--time", type=TIME_MIN, metavar="MIN", default=DEFAULT_TIME_MIN,
                       help=f"time limit per job in minutes (default {DEFAULT_TIME_MIN}); a job requeues itself "
                            f"before it")
    group.add_argument("--account", type=_slurm_word, help="SLURM account")
    group.add_argument("--qos", type=_slurm_word, help="SLURM quality of service")
    group.add_argument("--constraint", type=_slurm_word, help="SLURM node features, e.g. a GPU model")
    group.add_argument("--array-parallelism", type=ARRAY_PARALLELISM, metavar="N",
                       help=f"at most N jobs of a job array run at once (sbatch's --array=0-K%%N; default "
                            f"{DEFAULT_ARRAY_PARALLELISM}, submitit's: in effect the cluster's own limits)")
    group.add_argument("--slurm-option", action="append", type=_slurm_option, metavar="K=V",
                       help="any other sbatch option, without its dashes (repeatable): mail-type=END, exclusive")


def uses_a_scheduler(args: argparse.Namespace) -> bool:
    """``--submit``, or an option that only it takes, was given (``submit_table`` refuses the latter alone)."""
    return bool(args.submit) or any(getattr(args, dest) not in (None, DEFAULT_TIME_MIN) for dest in JOB_FLAGS)


def _check_options(args: argparse.Namespace, overrides: dict[str, dict[str, Any]]) -> JobOptions:
    """The job options of ``args``; ``--nodes`` and ``--gpus-per-node`` set the trainer's nodes and devices (a
    different --num-nodes or --devices beside them is refused)."""
    given = [flag for dest, flag in JOB_FLAGS.items() if getattr(args, dest) not in (None, DEFAULT_TIME_MIN)]
    if not args.submit:
        raise SubmitError(f"{', '.join(given)} describe(s) a job: add --submit slurm (or --submit local)")
    if args.submit == "local":
        slurm_only = [flag for flag in given if flag not in ("--nodes", "--gpus-per-node", "--time")]
        if slurm_only:
            raise SubmitError(f"{', '.join(slurm_only)}: SLURM options; --submit local runs the jobs on this machine")
    elif args.jobs is not None:
        raise SubmitError("--jobs: each SLURM job has its own allocation; --submit local runs --jobs at a time here")
    trainer = overrides["trainer"]
    for dest, key, flag in (("nodes", "num_nodes", "--num-nodes"), ("gpus_per_node", "devices", "--devices")):
        value = getattr(args, dest)
        if value is not None:
            if trainer.get(key) not in (None, value):
                raise SubmitError(f"{JOB_FLAGS[dest]} {value} and {flag} {trainer[key]} disagree; give one")
            trainer[key] = value
    return JobOptions(partition=args.partition, cpus_per_task=args.cpus_per_task, mem_gb=args.mem_gb,
                      time_min=args.time, account=args.account, qos=args.qos, constraint=args.constraint,
                      slurm_options=tuple(args.slurm_option or ()),
                      array_parallelism=args.array_parallelism or DEFAULT_ARRAY_PARALLELISM)


def submit_table(args: argparse.Namespace, overrides: dict[str, dict[str, Any]],
                 report: Callable[[], Path | None], echo: Callable[[str], None] = print) -> int:
    """``run ID --submit ...``: plan the jobs, then print them (``--dry-run``), submit them to SLURM, or run them
    here (local); once every run is done, ``report`` (picklable) writes the user's report, as ``run`` does: this
    command if they are done when it ends, else the SLURM job that ends last."""
    options = _check_options(args, overrides)
    if not args.dry_run:
        check_scheduler(args.submit)
    configs = resolve_runs(args.table, args.scale, args.rows, args.seeds, args.data_root, overrides, args.set or ())
    missing = missing_files(configs, args.dry_run)  # a file a job reads at its start: refused before it waits
    if not args.dry_run:
        refuse_missing_files(missing)
    # every model built on the meta device too: a bad option or source fails here, not in a job hours later
    notes = check_resolved(configs, args.runs_dir, dry_run=args.dry_run or args.submit == "slurm",
                           check_sources=not args.dry_run)  # a dry run notes the missing files instead
    plan = plan_submission(configs, args.runs_dir, options, args.force, args.dry_run)
    # what the partition can never run, refused before sbatch
    fits = check_partition(plan.jobs, options.partition, args.dry_run) if args.submit == "slurm" else []
    if args.dry_run:
        return _print_plan(args, configs, plan, notes, missing, fits, echo)
    for line in fits:
        echo(f"# {line}")
    for line in _cancel_stale(plan):
        echo(line)
    _reuse_now(plan, args.runs_dir, echo)
    for cfg, why in plan.skipped:
        echo(f"{_where(cfg, args.runs_dir)}: {why}")
    if args.submit == "local":
        return _run_here(args, configs, plan, report, _status_command(args, overrides), echo)
    from .job import TableReport  # the runner's floor: only once jobs are really submitted

    table_report = TableReport(tuple(configs), str(Path(args.runs_dir).absolute()), report)
    submitted = submit_plan(plan, args.runs_dir, "slurm", args.force, args.argv, echo, table_report) \
        if plan.jobs else {}
    for job in plan.jobs:
        if RunDir.of(job.cfg, args.runs_dir).path in submitted:
            echo(f"{_where(job.cfg, args.runs_dir)}: job {submitted[RunDir.of(job.cfg, args.runs_dir).path]}, "
                 f"{job.resources.describe()}: {job.action}")
    return _after_submission(configs, submitted, report, args.runs_dir, _status_command(args, overrides), echo)


def _where(cfg: RunConfig, runs_root: str | Path) -> str:
    return f"{cfg.row} / {cfg.column} seed {cfg.seed} -> {RunDir.of(cfg, runs_root).path}"


def _cancel_stale(plan: SubmissionPlan) -> list[str]:
    from .scheduler import cancel

    return [f"cancelled job {job_id}: it waited for a job that failed" for job_id in plan.stale_jobs
            if cancel(job_id)]


def _reuse_now(plan: SubmissionPlan, runs_root: str | Path, echo: Callable[[str], None]) -> None:
    from ..execute import execute

    for cfg in plan.reuse_now:
        record = execute(cfg, runs_root, progress_bar=False, echo=echo)
        echo(f"{_where(cfg, runs_root)}: reused from {record.get('reused_from')} (an identical run, done)")


def _after_submission(configs: Sequence[RunConfig], submitted: dict[Path, str], report: Callable[[], None],
                      runs_root: str, command: str, echo: Callable[[str], None]) -> int:
    states = run_statuses(configs, runs_root)
    arrays = len({job_id.split("_")[0] for job_id in submitted.values()})
    echo(f"# {len(submitted)} job(s) submitted in {arrays} sbatch call(s); the table's {len(configs)} run(s): "
         f"{summary(states)}")
    if all(s.state == "done" for s in states):
        report()
        return 0
    echo(f"# `{command}` follows them; the same `run` command again submits what is not queued, running or done, "
         f"and once every run is done writes the report")
    return 0


def _status_command(args: argparse.Namespace, overrides: dict[str, dict[str, Any]]) -> str:
    """The ``status`` command of the runs this ``run`` command names: its rows, seeds, data and options (each as a
    ``--set``), so that it asks of each run what this command would do."""
    return shlex.join(["python", "-m", "experiments", "status", args.table, "--scale", args.scale,
                       *(["--rows", *args.rows] if args.rows else []), "--seeds", str(args.seeds),
                       *(["--data-root", args.data_root] if args.data_root else []),
                       *settings_of(given_options(overrides, args.set or ())),
                       *(["--runs-dir", args.runs_dir] if args.runs_dir != "runs" else [])])


def _run_here(args: argparse.Namespace, configs: Sequence[RunConfig], plan: SubmissionPlan,
              report: Callable[[], None], command: str, echo: Callable[[str], None]) -> int:
    from ..jobs import auto_jobs
    from .local import run_locally

    several = sorted({f"{job.cfg.table}/{job.cfg.row}" for job in plan.jobs if job.resources.tasks_per_node > 1})
    if several:
        raise SubmitError(f"--submit local: {', '.join(several[:3])} train(s) on several devices; a local job is one "
                          f"process: run them with `run` (Lightning starts their processes) or submit them to SLURM")
    parallel = args.jobs or auto_jobs([job.cfg for job in plan.jobs])
    if plan.jobs:
        echo(f"{args.table}: {len(plan.jobs)} local job(s), {parallel} at a time")
        run_locally(plan.jobs, args.runs_dir, parallel, args.argv, echo)
    states = run_statuses(configs, args.runs_dir)
    echo(f"# the table's {len(configs)} run(s): {summary(states)}")
    if all(s.state == "done" for s in states):
        report()
        return 0
    echo(f"# `{command}` says why; the same command again runs what is not done")
    return 1


def _print_plan(args: argparse.Namespace, configs: Sequence[RunConfig], plan: SubmissionPlan, notes: list[str],
                missing: Sequence[MissingFile], fits: list[str], echo: Callable[[str], None]) -> int:
    """``run --submit ... --dry-run``: one line per run (its job's allocation and what it does, or why it gets
    none), the options of each sbatch call as submitit writes them, the partition's limits, and what this machine
    lacks; nothing is submitted."""
    calls = _sbatch_calls(plan, args.runs_dir) if args.submit == "slurm" else []
    if args.json:
        flags = {id(job): call.options for call in calls for job in call.jobs}
        echo(json.dumps({"table": args.table, "scale": args.scale, "submit": args.submit, "jobs": [
            {"run_dir": str(RunDir.of(job.cfg, args.runs_dir).path), "action": job.action,
             "sbatch": flags.get(id(job)), "resources": job.resources.describe(),
             "after": [str(p) for p in job.after],
             "after_jobs": list(job.after_jobs)} for job in plan.jobs],
            "not_submitted": [{"run_dir": str(RunDir.of(cfg, args.runs_dir).path), "why": why}
                              for cfg, why in plan.skipped],
            "reuse_now": [str(RunDir.of(cfg, args.runs_dir).path) for cfg in plan.reuse_now],
            "missing_data": missing_datasets(configs), "missing_files": [m.line() for m in missing],
            "partition": fits, "not_on_this_machine": notes}, indent=1))
        return 0
    if args.verbose:
        echo(describe_runs(configs, args.runs_dir))
    for i, cfg in enumerate(configs, 1):
        echo(f"[{i}/{len(configs)}] {cfg.row} / {cfg.column} ({dataset_shown(cfg)}) seed {cfg.seed} -> "
             f"{RunDir.of(cfg, args.runs_dir).path}: {plan.line(cfg)}")
    if args.submit == "local":
        echo(f"# {len(plan.jobs)} job(s) for {len(configs)} run(s), run here with --submit local")
    else:
        _print_calls(calls, len(plan.jobs), len(configs), echo)
    for line in fits:
        echo(f"# {line}")
    missing_data = missing_datasets(configs)
    if missing_data:
        echo("# data missing here (the jobs need it on the nodes): " + "; ".join(
            f"{dataset} ({where})" for dataset, where in missing_data.items()))
    runs: dict[str, list[str]] = {}
    for m in missing:
        runs.setdefault(m.why, []).append(f"{m.cfg.row}/{m.cfg.column} seed {m.cfg.seed}")
    for why, names in runs.items():
        echo(f"# missing here, so --submit refuses {len(names)} run(s) ({', '.join(names[:3])}"
             f"{', ...' if len(names) > 3 else ''}) until it is there: {why}")
    for note in notes:
        echo(f"# not on this machine: {note}; the jobs' nodes need it")
    echo("# nothing submitted (--dry-run)")
    return 0


class SbatchCall(NamedTuple):
    """One sbatch call of a submission: its jobs (an array where several), their allocation and dependency, and
    the options of its script (None: submitit is not installed here to write it)."""

    jobs: list[PlannedJob]
    resources: Resources
    dependency: str | None
    options: list[str] | None


def _sbatch_calls(plan: SubmissionPlan, runs_root: str | Path) -> list[SbatchCall]:
    """Each sbatch call the submission would make, in order (``submission.job_arrays``). A job of an earlier call
    that one waits for is named ``callN_I`` (job I of call N; ``callN``, its only job), as sbatch has not given it
    an id yet."""
    folder, submitted, calls = RunsTree(runs_root).submission_folder(), {}, []
    for n, (resources, dependency, group) in enumerate(job_arrays(plan.jobs, submitted), 1):
        try:
            options = sbatch_options(folder, resources, group[0].cfg.table, dependency, len(group))
        except ImportError:
            options = None
        calls.append(SbatchCall(group, resources, dependency, options))
        for i, job in enumerate(group):
            submitted[RunDir.of(job.cfg, runs_root).path] = f"call{n}_{i}" if len(group) > 1 else f"call{n}"
    return calls


def _print_calls(calls: Sequence[SbatchCall], jobs: int, runs: int, echo: Callable[[str], None]) -> None:
    echo(f"# {jobs} job(s) for {runs} run(s) in {len(calls)} sbatch call(s) (a job array each where several), "
         f"each with the options submitit writes into its script:")
    for n, call in enumerate(calls, 1):
        after = f", after {call.dependency.removeprefix('afterok:')} ended well" if call.dependency else ""
        echo(f"# sbatch call {n}: {len(call.jobs)} job(s) of {call.resources.describe()}{after}")
        if call.options is None:
            echo("#   (its options: submitit is not installed here, `pip install submitit==1.5.4`)")
        for option in call.options or ():
            echo(f"#SBATCH {option}")


def add_command(sub: Any) -> None:
    """The ``status`` subcommand, and ``run``'s ``--submit`` options (``run`` is registered before)."""
    add_submit_options(sub.choices["run"])
    status = sub.add_parser("status", help="each run's state (not submitted, queued, cannot start, running, "
                                           "requeued, done, stopped, failed) and why, its job, nodes, progress "
                                           "and log, from the run folders and the scheduler")
    status.add_argument("table")
    status.add_argument("--scale", choices=SCALES, help="default: every scale with a run folder, else tiny")
    status.add_argument("--rows", nargs="+", metavar="ROW", help="row keys (see `show`); default: all")
    status.add_argument("--seeds", type=count(1, MAX_SEEDS, "a count of seeds per row"),
                        help="seeds 0..N-1 per row (default: the table's)")
    status.add_argument("--data-root", help="as `run` was given it")
    status.add_argument("--set", action="append", type=parse_setting, metavar="SECTION.FIELD=VALUE",
                        help="a config field as `run` set it (a run made with other options than these is refused, "
                             "as `run` refuses it); `run --submit` prints the status command with its options")
    status.add_argument("--runs-dir", default="runs")
    status.add_argument("--json", action="store_true", help="one JSON list, a run an entry")
    status.set_defaults(fn=cmd_status)


def cmd_status(args: argparse.Namespace, echo: Callable[[str], None] = print) -> int:
    spec = table_spec(args.table)
    if spec is None:
        raise SubmitError(f"{args.table}: not implemented, so it has no runs")
    tree = RunsTree(args.runs_dir)
    scales = [args.scale] if args.scale else [s for s in SCALES if tree.folders(args.table, s)] or ["tiny"]
    out = []
    for scale in scales:
        seeds = args.seeds or max(spec.default_seeds(scale), tree.seeds(args.table, scale, MAX_SEEDS)[0])
        configs = resolve_runs(args.table, scale, args.rows, seeds, args.data_root, None, args.set or ())
        statuses = run_statuses(configs, args.runs_dir)
        if args.json:
            out += status_json(configs, statuses)
            continue
        echo(f"{args.table} at {scale} scale: {len(configs)} run(s): {summary(statuses)}")
        for cfg, status in zip(configs, statuses):
            echo("  " + status_line(cfg, status, args.runs_dir))
        for note in seed_folders_left_out(args.runs_dir, args.table, scale, MAX_SEEDS):
            echo("  " + note)
        said = report_line(statuses)
        if said:
            echo(said)
    if args.json:
        echo(json.dumps(out, indent=1))
    return 0


def report_line(statuses: Sequence[RunStatus]) -> str | None:
    """What ``status`` says of the report of a table whose runs went through jobs, once every run is done: which
    job wrote it, where (the job that ends last writes it), or why none did."""
    if not statuses or any(s.state != "done" for s in statuses) or not any(s.job for s in statuses):
        return None
    written = sorted((str(s.job.get("report_at")), str(s.job["report"]), s.job_id) for s in statuses
                     if s.job.get("report"))
    if written:
        at, path, job_id = written[-1]
        return f"report: {path} (written by job {job_id}, the last to end, at {at})"
    failed = [str(s.job["report_error"]) for s in statuses if s.job.get("report_error")]
    why = f"the last job's attempt failed: {failed[0]}" if failed else "no job of these runs wrote it"
    return f"report: not written ({why}); the same `run --submit` command writes it"
