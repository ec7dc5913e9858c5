"""Run a table: every (row, result column, seed) is one run of its task (``experiments.harness.execute``), after the
table's static columns are computed into their record.

``run_table`` resolves the runs (``experiments.harness.plan``), skips those whose data is absent, stops before anything
trains when a run directory holds another run's record or checkpoint (``experiments.harness.run_dir``) or a launch
cannot start, generates the synthetic sets the runs read, and then runs them one after another or side by side in worker
processes (``experiments.harness.jobs``), saying after each run how far the table is. The runner asks
``experiments.harness.tasks`` how to serve a run and never inspects a dataset's name; it builds no report (``python -m
experiments run`` does
that through ``reports``, the floor above).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

from . import jobs as side_by_side
from .execute import execute
from .interruption import raise_if_interrupted
from .overrides import given_options
from .plan import (
    MissingDataError,
    check_pretrained_sources,
    check_resolved,
    missing_data,
    missing_datasets,
    needs_another_run,
    planned_steps,
    require_spec,
    resolve_runs,
    run_line,
    runs_to_train,
)
from .progress import TableProgress, duration
from .provenance import data_left_out, git_commit, launched_as_global_zero, leave_process_group
from .run_dir import RunDir, Step, source_runs
from .run_lock import RunBusyError
from .spec import RunConfig, TableSpec
from .tasks import get_task


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
    absent), ``jobs`` CPU runs side by side (None: ``experiments.harness.jobs.auto_jobs``). ``overrides`` and
    ``settings``: the user's options, as ``given_options`` reads them; ``expected_s``: how long a run took where its
    tracked
    record was trained (the ETA scales it to this machine). Returns the metrics records; the caller builds the
    report."""
    settings = list(settings)
    configs = resolve_runs(table_id, scale, rows, seeds, data_root, overrides, settings)
    check_resolved(configs, runs_root, dry_run=False)  # before the static columns, the data and any run
    jobs = side_by_side.auto_jobs(configs) if jobs is None else jobs
    side_by_side.check_jobs(jobs, configs)
    if jobs > 1 and "num_workers" not in given_options(overrides, settings).get("data", {}):
        # Side-by-side runs fill the cores already; loader worker processes would only contend with them (4 tiny
        # runs, 2 side by side: 4m06s with 2 workers each, 1m37s with none, the same numbers).
        configs = [dataclasses.replace(c, data=dataclasses.replace(c.data, num_workers=0)) for c in configs]
    echo(f"{table_id}: {len(configs)} run(s) at {scale} scale; static columns first")
    if launched_as_global_zero():  # every rank of a distributed run runs this command; one writes static.json
        compute_static(require_spec(table_id), runs_root, commit=git_commit(), echo=lambda line: echo("    " + line))
    records, start = [], time.perf_counter()
    progress = TableProgress(total=len(configs), to_train={}, jobs=jobs)
    # what each run does next, asked once here; the runs whose data is absent are skipped
    runnable, steps, skipped = _runnable(configs, planned_steps(configs, runs_root, force), runs_root, progress, echo)
    _check_runs(runnable, steps)
    to_train = runs_to_train(runnable, steps)
    # ... and those that start from a run this command trains (tests with more views, fine-tunes), which follow
    will_run = runs_to_train(runnable, steps, sources_finished=True)
    if launched_as_global_zero():
        prepare_generated_data(will_run, jobs, echo)
    _expect(progress, will_run, runs_root, jobs, expected_s, echo)
    busy: list[RunConfig] = []  # runs another command holds
    finished = _on_finished(records, busy, progress, runs_root, echo)
    if jobs == 1:
        for cfg, step in zip(runnable, steps):
            echo(f"[{len(records) + len(skipped) + len(busy) + 1}/{len(configs)}] {run_line(cfg, runs_root)}")
            try:
                finished(cfg, execute(cfg, runs_root, force=force, progress_bar=progress_bar, echo=echo,
                                      planned=step))
            except RunBusyError as err:
                finished(cfg, err)
            raise_if_interrupted()  # a signal Lightning took at the run's very end: the next run does not start
    else:
        _run_side_by_side(runnable, steps, to_train, jobs, runs_root, force, echo, finished)
    leave_process_group()
    in_use = f", {len(busy)} skipped as another command is running them" if busy else ""
    echo(f"{len(records)} run(s) done, {len(skipped)} skipped for lack of data{in_use}, in "
         f"{duration(time.perf_counter() - start)}")
    if configs and not records and not busy:
        raise MissingDataError(f"no run of {table_id} could start; missing data:\n" + "\n".join(
            f"  {dataset}: {where}" for dataset, where in missing_datasets(skipped).items()))
    return records


def _runnable(configs: Sequence[RunConfig], steps: Sequence[Step], runs_root: str | Path, progress: TableProgress,
              echo: Callable[[str], None]) -> tuple[list[RunConfig], list[Step], list[RunConfig]]:
    """The runs whose data is there with their steps, and those skipped for lack of it (told first: [k/n] counts
    runs in the order they are told)."""
    runnable, kept, skipped = [], [], []
    for cfg, step in zip(configs, steps):
        if step.action == "skip":
            echo(f"[{len(skipped) + 1}/{len(configs)}] {run_line(cfg, runs_root)}\n    skipped, {missing_data(cfg)}")
            skipped.append(cfg)
            progress.skipped()
        else:
            runnable.append(cfg)
            kept.append(step)
    return runnable, kept, skipped


def _check_runs(configs: Sequence[RunConfig], steps: Sequence[Step]) -> None:
    """Stop the table before anything trains: a missing pretrained source, or a run the plan refuses (its folder
    holds another run's record or checkpoint; a launch that cannot start stopped it earlier: ``check_resolved``)."""
    for cfg, step in zip(configs, steps):
        check_pretrained_sources(cfg)  # a missing checkpoint file or a timm typo, before any run starts
        step.unless_refused()


def _expect(progress: TableProgress, to_run: Sequence[RunConfig], runs_root: str | Path, jobs: int,
            expected_s: Callable[[RunConfig], float | None] | None, echo: Callable[[str], None]) -> None:
    """Start the ETA: the runs to train or test and how long each took where its tracked record was made."""
    progress.to_train = {str(RunDir.of(cfg, runs_root).path): expected_s(cfg) if expected_s else None
                         for cfg in to_run}
    progress.start = time.perf_counter()
    if to_run and all(progress.to_train.values()):
        what = "train" if all(get_task(cfg.task).trains for cfg in to_run) else "train or test"
        echo(f"{len(to_run)} run(s) to {what}; on the machine that made their tracked records they took "
             f"{duration(sum(progress.to_train.values()))} ({duration(sum(progress.to_train.values()) / jobs)} "
             f"{jobs} at a time); the ETA follows this machine's pace after the first run")


def _on_finished(records: list[dict[str, Any]], busy: list[RunConfig], progress: TableProgress,
                 runs_root: str | Path, echo: Callable[[str], None]
                 ) -> Callable[[RunConfig, dict[str, Any] | RunBusyError], None]:
    """What happens as each run ends: its record kept, its headline metrics, how it was obtained and the table's
    progress told, and any data it left out named; or, for a run another command holds (``RunBusyError``), the
    line that says so and which process, the run counted in ``busy``."""

    def finished(cfg: RunConfig, record: dict[str, Any] | RunBusyError) -> None:
        if isinstance(record, RunBusyError):
            echo(f"    {record}")
            busy.append(cfg)
            progress.skipped(str(RunDir.of(cfg, runs_root).path))
            return
        metrics = record["metrics"]
        headline = [k for k in metrics if k.endswith("top1")] or list(metrics)  # DAVIS: J&F, J, F
        shown = ", ".join(f"{k}={metrics[k]:.2f}" for k in headline)
        how = "reused from " + record["reused_from"] if record.get("reused_from") else (
            "cached" if record.get("cached") else "trained" if get_task(cfg.task).trains else "evaluated")
        records.append(record)
        line = progress.finished(str(RunDir.of(cfg, runs_root).path),
                                 record["wall_time_s"] if how in ("trained", "evaluated") else None)
        echo(f"    {shown}  ({record.get('wall_time_s') or 0.0:.0f}s, {how}) · {line}")
        if lost := data_left_out(record.get("data_report") or {}):
            echo(f"    data left out: {lost} (the files: {RunDir.of(cfg, runs_root).record_file})")

    return finished


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


def _run_side_by_side(configs: Sequence[RunConfig], steps: Sequence[Step], to_train: Sequence[RunConfig],
                      jobs: int, runs_root: str | Path, force: bool, echo: Callable[[str], None],
                      finished: Callable[[RunConfig, dict[str, Any] | RunBusyError], None]) -> None:
    """Train ``to_train`` (``runs_to_train`` of ``configs``, whose planned ``steps`` these are) in ``jobs``
    processes; then take the finished and reusable ones, as in the sequential order. A run another command holds
    goes to ``finished`` as its ``RunBusyError``."""
    # in table order: a run after the runs it loads
    later = [(cfg, step) for cfg, step in zip(configs, steps) if cfg not in to_train]
    if to_train:
        echo(f"training {len(to_train)} run(s), {jobs} side by side on "
             f"{max(1, (os.cpu_count() or 1) // jobs)} thread(s) each ...")
    wave = to_train
    # then, side by side too, the runs that start from a finished run (a test with more views, a fine-tune from a
    # pretraining run), as many waves as their sources need; reuses and the rest follow in order
    while wave or (wave := _ready_to_train(later, runs_root)):
        if wave is not to_train:
            echo(f"then {len(wave)} run(s) that start from finished runs, {jobs} side by side ...")
        later = [(cfg, step) for cfg, step in later if cfg not in wave]
        # closed on the way out, whatever stops it: its workers are stopped then, not left to finish their runs
        with closing(side_by_side.run_side_by_side(wave, jobs, runs_root, force)) as outcomes:
            for n, (index, outcome) in enumerate(outcomes, 1):
                # how the run ended (trained, evaluated, cached; another command holds it) is ``finished``'s line
                echo(f"[{n}/{len(wave)}] {run_line(wave[index], runs_root)}")
                finished(wave[index], outcome)
        wave = []
    for cfg, step in later:
        echo(f"[{'after' if needs_another_run(cfg) else 'reuse'}] {run_line(cfg, runs_root)}")
        run = RunDir.of(cfg, runs_root)
        try:
            with run.hold():  # execute takes it again (re-entrant): none moves it meanwhile
                if force and not needs_another_run(cfg):  # its configuration was trained again above: reuse it
                    run.move_away(runs_root, echo)
                record = execute(cfg, runs_root, force=force and needs_another_run(cfg), progress_bar=False,
                                 echo=echo, planned=step)
        except RunBusyError as err:
            record = err
        finished(cfg, record)
        raise_if_interrupted()


def _ready_to_train(later: Sequence[tuple[RunConfig, Step]], runs_root: str | Path) -> list[RunConfig]:
    """Of the runs waiting for other runs, those that will train and whose every ``run:`` source has finished;
    a configuration two of them share trains once (``runs_to_train``), the other reuses it in order."""
    waiting = [(cfg, step) for cfg, step in later
               if needs_another_run(cfg) and all(done for _, _, done in source_runs(cfg, runs_root))]
    return runs_to_train([cfg for cfg, _ in waiting], [step for _, step in waiting], sources_finished=True)


def compute_static(spec: TableSpec, runs_root: str | Path, commit: str, echo: Callable[[str], None] = print
                   ) -> dict[str, Any] | None:
    """The table's static columns into ``runs/<table>/static.json`` (see ``experiments.harness.static``)."""
    from .static import compute_static as compute

    return compute(spec, runs_root, commit=commit, echo=echo)
