"""``--jobs``: runs side by side, checked against counts and names written out here, no process spawned.

- ``run_side_by_side``: each worker gets cores // jobs threads (literal counts for 8 cores) in a spawn context; its
  initializer sets torch's threads and OMP_NUM_THREADS; each record comes back with the index of the run that made it
  (runs ending in reverse order); ``--force`` reaches every run; a failing run stops the runs not yet started.
- ``auto_jobs`` / ``check_jobs``: one run per core, at most 4 and at most one per run, only when every run is one
  process on the CPU (a single GPU, two devices or two nodes among them gives 1).
- A failing run's error names the run (its seed included); a KeyError's message is kept without repr quotes.
- ``runner``: a trained record goes to the run that trained it, a configuration shared by two rows trains once,
  ``--jobs 1`` keeps the loader workers, ``jobs=None`` is ``auto_jobs``, the ETA counts ``jobs`` runs at a time,
  and the command line passes ``--jobs`` through (default auto).
- ``experiments.synthetic_learnability``: seeds, epochs and ``--force`` reach the runs; chance is 100 / classes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor

import pytest

from experiments import __main__ as cli
from experiments.harness import jobs, runner
from experiments.harness.plan import planned_steps, resolve_runs, runs_to_train
from experiments.synthetic_learnability import __main__ as learnability
from tests.experiments.harness.test_run_guards import write_done
from tests.experiments.micro_run import REPO, ROW, TABLE


def _tiny_runs(count: int, **trainer) -> list:
    """``count`` tiny runs of Table 6b's Mformer row (seeds 0..count-1), with ``trainer`` fields replaced."""
    configs = resolve_runs(TABLE, "tiny", [ROW], count, None, None)
    return [dataclasses.replace(c, trainer=dataclasses.replace(c.trainer, **trainer)) for c in configs]


class _ThreadPool(ThreadPoolExecutor):
    """The process pool's signature on threads; remembers what it was built with (the initializer is not run:
    it would change this process's torch threads)."""

    built: list[dict] = []

    def __init__(self, max_workers, mp_context=None, initializer=None, initargs=()):
        _ThreadPool.built.append({"max_workers": max_workers, "start_method": mp_context.get_start_method(),
                                  "initializer": initializer, "initargs": initargs})
        super().__init__(max_workers)


class _StepPool:
    """A pool that runs the first ``max_workers`` submissions at once, in ``submit``, and the others only at its
    exit unless they were cancelled: which runs started after a failure is then certain."""

    def __init__(self, max_workers, **_):
        self.max_workers, self.queued = max_workers, []

    def submit(self, fn, *args):
        future = Future()
        if self.max_workers > 0:
            self.max_workers -= 1
            self._run(future, fn, args)
        else:
            self.queued.append((future, fn, args))
        return future

    @staticmethod
    def _run(future, fn, args):
        try:
            future.set_result(fn(*args))
        except Exception as err:  # the future carries it, as a pool's does
            future.set_exception(err)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for future, fn, args in self.queued:
            if future.set_running_or_notify_cancel():
                self._run(future, fn, args)


# --- threads per job, and the worker's initializer ----------------------------------------------------------------

@pytest.mark.parametrize("jobs_count,threads", [(1, 8), (2, 4), (3, 2), (16, 1)])
def test_each_worker_gets_the_cores_divided_by_the_jobs(monkeypatch, tmp_path, jobs_count, threads):
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    monkeypatch.setattr(jobs, "ProcessPoolExecutor", _ThreadPool)
    monkeypatch.setattr(jobs, "_run_job", lambda cfg, runs_root, force: {"seed": cfg.seed})
    _ThreadPool.built.clear()
    assert len(list(jobs.run_side_by_side(_tiny_runs(2), jobs_count, tmp_path, False))) == 2
    (built,) = _ThreadPool.built
    assert built == {"max_workers": jobs_count, "start_method": "spawn", "initializer": jobs._start_job,
                     "initargs": (threads, os.getpid())}  # the parent whose death ends the worker


def test_the_worker_initializer_sets_torch_threads_and_omp_for_loader_workers(monkeypatch):
    import torch

    calls, parents = [], []
    monkeypatch.setattr(torch, "set_num_threads", calls.append)
    monkeypatch.setattr(jobs, "end_with_parent", parents.append)  # not this test process's parent
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # restored after the test
    jobs._start_job(3, 1234)
    assert calls == [3] and os.environ["OMP_NUM_THREADS"] == "3" and parents == [1234]


# --- records and their runs ----------------------------------------------------------------------------------------

def test_each_record_comes_back_with_the_index_of_its_run_when_runs_end_out_of_order(monkeypatch, tmp_path):
    configs = _tiny_runs(3)
    taken = {c.seed: threading.Event() for c in configs}  # set once the table has taken that run's record

    def run_job(cfg, runs_root, force):
        if cfg.seed + 1 in taken:  # the last run ends first, then each one after the run behind it was taken
            assert taken[cfg.seed + 1].wait(10)
        return {"seed": cfg.seed, "runs_root": runs_root, "force": force}

    monkeypatch.setattr(jobs, "ProcessPoolExecutor", _ThreadPool)
    monkeypatch.setattr(jobs, "_run_job", run_job)
    results = []
    for index, record in jobs.run_side_by_side(configs, 3, tmp_path, True):
        results.append((index, record))
        taken[record["seed"]].set()
    assert [index for index, _ in results] == [2, 1, 0]
    assert all(record == {"seed": i, "runs_root": str(tmp_path), "force": True} for i, record in results)


def test_a_failing_run_cancels_the_runs_not_yet_started(monkeypatch, tmp_path):
    started = []

    def run_job(cfg, runs_root, force):
        started.append(cfg.seed)
        if cfg.seed == 1:
            raise ValueError("labels.json: not valid JSON")
        return {"seed": cfg.seed}

    monkeypatch.setattr(jobs, "ProcessPoolExecutor", _StepPool)
    monkeypatch.setattr(jobs, "_run_job", run_job)
    with pytest.raises(jobs.RunFailedError, match=r"^mformer_table6b row=mformer column=K-400 seed=1 scale=tiny: "):
        list(jobs.run_side_by_side(_tiny_runs(4), 2, tmp_path, False))
    assert started == [0, 1]  # seeds 2 and 3 were waiting for a worker: cancelled, never run


def test_a_run_that_ends_in_the_same_wait_as_a_failure_is_still_reported(monkeypatch, tmp_path):
    def run_job(cfg, runs_root, force):
        if cfg.seed == 0:
            raise ValueError("labels.json: not valid JSON")
        return {"seed": cfg.seed}

    def wait_failure_first(futures, return_when):
        done = sorted(futures, key=lambda f: f.exception() is None)  # the failed run first, as a set may order it
        return done, set()

    monkeypatch.setattr(jobs, "ProcessPoolExecutor", _StepPool)
    monkeypatch.setattr(jobs, "_run_job", run_job)
    monkeypatch.setattr(jobs, "wait", wait_failure_first)
    reported = []
    with pytest.raises(jobs.RunFailedError, match=r"seed=0 scale=tiny: labels.json: not valid JSON$"):
        for index, record in jobs.run_side_by_side(_tiny_runs(2), 2, tmp_path, False):
            reported.append((index, record))
    assert reported == [(1, {"seed": 1})]  # its record is on disk; the table prints it before it stops


def test_a_failing_runs_error_names_it_with_its_seed_and_keeps_a_key_errors_message(tmp_path):
    cfg = _tiny_runs(3)[2]
    named = jobs._naming_the_run(KeyError("unknown class 'Pushing something'"), cfg)
    assert isinstance(named, jobs.RunFailedError)
    # str(KeyError) would wrap the message in quotes: the command line prints it as one line, as it is
    assert str(named) == ("mformer_table6b row=mformer column=K-400 seed=2 scale=tiny: "
                          "unknown class 'Pushing something'")


# --- auto_jobs and check_jobs -------------------------------------------------------------------------------------

@pytest.mark.parametrize("cores,runs,expected", [(8, 6, 4), (8, 2, 2), (2, 6, 2), (1, 3, 1), (None, 3, 1)])
def test_auto_jobs_is_one_per_core_at_most_four_and_at_most_one_per_run(monkeypatch, cores, runs, expected):
    monkeypatch.setattr(os, "cpu_count", lambda: cores)
    assert jobs.auto_jobs(_tiny_runs(runs)) == expected


@pytest.mark.parametrize("other", [{"accelerator": "gpu"}, {"devices": 2}, {"num_nodes": 2}])
def test_auto_jobs_is_one_when_any_run_is_not_one_cpu_process(monkeypatch, other):
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    configs = _tiny_runs(3)
    configs[1] = dataclasses.replace(configs[1], trainer=dataclasses.replace(configs[1].trainer, **other))
    assert jobs.auto_jobs(configs) == 1
    jobs.check_jobs(1, configs)  # one at a time is always allowed
    with pytest.raises(ValueError, match=r"^--jobs 2 runs single-process CPU runs side by side, but "
                                         r"mformer_table6b/mformer train on an accelerator"):
        jobs.check_jobs(2, configs)


# --- the runner's side of --jobs ----------------------------------------------------------------------------------

def test_a_trained_record_goes_to_the_run_that_trained_it_and_a_shared_configuration_trains_once(monkeypatch,
                                                                                                 tmp_path):
    done, to_train = _tiny_runs(2)  # seed 0 already has its record; seed 1 trains
    write_done(tmp_path, done)
    twin = dataclasses.replace(to_train, row="mformer_twin")  # another row, the same experiment: reuses seed 1's
    trained = []

    def side_by_side(configs, n, runs_root, force):  # experiments.harness.jobs.run_side_by_side
        trained.extend((c.row, c.seed) for c in configs)
        yield 0, {"how": "trained"}

    monkeypatch.setattr(jobs, "run_side_by_side", side_by_side)
    monkeypatch.setattr(runner, "prepare_generated_data", lambda *a, **k: None)  # no data to read
    monkeypatch.setattr(runner, "execute", lambda cfg, *a, **k: {"how": "execute"})
    finished = []
    configs = [done, to_train, twin]
    steps = planned_steps(configs, tmp_path)
    runner._run_side_by_side(configs, steps, runs_to_train(configs, steps), 2, tmp_path, False,
                             lambda _: None,
                             lambda cfg, record: finished.append((cfg.row, cfg.seed, record["how"])))
    assert trained == [("mformer", 1)]
    assert finished == [("mformer", 1, "trained"), ("mformer", 0, "execute"), ("mformer_twin", 1, "execute")]


def test_one_job_keeps_the_loader_workers_and_no_jobs_given_means_auto(monkeypatch, tmp_path):
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    monkeypatch.setattr(runner, "compute_static", lambda *a, **k: None)
    executed, side_by_side = [], []
    monkeypatch.setattr(runner, "prepare_generated_data", lambda *a, **k: None)  # no data to read
    monkeypatch.setattr(runner, "execute", lambda cfg, *a, **k: executed.append(cfg.data.num_workers) or {
        "metrics": {"top1": 50.0}, "wall_time_s": 1.0})

    def run_side_by_side(configs, steps, to_train, n, runs_root, force, echo, finished):
        side_by_side.append((n, [c.data.num_workers for c in configs]))
        for cfg in configs:
            finished(cfg, {"metrics": {"top1": 50.0}, "wall_time_s": 1.0})

    monkeypatch.setattr(runner, "_run_side_by_side", run_side_by_side)
    monkeypatch.setattr(runner, "prepare_generated_data", lambda *a, **k: None)  # no data to read
    quiet = {"echo": lambda _: None, "runs_root": tmp_path}
    runner.run_table(TABLE, rows=[ROW], seeds=2, jobs=1, **quiet)
    assert executed == [2, 2]  # the tiny preset's 2 loader workers: nothing else runs beside the run
    runner.run_table(TABLE, rows=[ROW], seeds=3, jobs=None, **quiet)
    assert side_by_side == [(3, [0, 0, 0])]  # auto: 8 cores, 3 runs -> 3 side by side, without loader workers


@pytest.mark.parametrize("argv,expected", [([], None), (["--jobs", "3"], 3), (["--jobs", "auto"], None)])
def test_the_command_line_passes_jobs_to_the_runner(monkeypatch, argv, expected):
    seen = {}
    monkeypatch.setattr(cli, "run_and_report", lambda table, **options: seen.update(options))
    assert cli.main(["run", TABLE, "--rows", ROW, "--seeds", "1", *argv]) == 0
    assert seen["jobs"] == expected


# --- experiments.synthetic_learnability -----------------------------------------------------------------------------

def test_learnability_runs_get_their_seed_epochs_and_force(monkeypatch, tmp_path, capsys):
    calls = []

    def execute(cfg, runs_root, force, progress_bar):
        calls.append((cfg.row, cfg.seed, cfg.optim.epochs, force))
        return {"row": cfg.row, "data": {"num_classes": 8}, "metrics": {"top1": 50.0},
                "config": {"optim": {"epochs": cfg.optim.epochs}}}

    monkeypatch.setattr(learnability, "execute", execute)
    learnability.main(["--sets", "synth_motion_pairs", "--seeds", "2", "--epochs", "3", "--runs-dir", str(tmp_path),
                       "--force"])
    assert calls == [("synth_motion_pairs", 0, 3, True), ("synth_motion_pairs", 1, 3, True)]
    assert learnability.run_config("synth_objects", seed=2).seed == 2


def test_learnability_summary_of_a_one_head_set_trained_by_itself():
    record = {"row": "synth_pose", "data": {"num_classes": 8}, "metrics": {"top1": 71.875},
              "config": {"optim": {"epochs": 20}}}
    # chance 100 / 8 classes; no reused_from: the run is the experiment's own
    assert learnability.summary_rows(record) == [["synth_pose", "top1", "71.9", "12.5", 20,
                                                  "synthetic_learnability/synth_pose"]]


def test_a_worker_ends_when_its_parent_is_killed(tmp_path):
    """``end_with_parent``: a process that asked for it ends at once when its parent gets SIGKILL (the slow fault
    test plays it with a whole ``--jobs 2`` command)."""
    import signal
    import subprocess
    import sys
    import time

    worker = ("import os, time; from experiments.harness.jobs import end_with_parent; end_with_parent(os.getppid()); "
              "print(os.getpid(), flush=True); time.sleep(120)")
    parent = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', sys.argv[1]]); time.sleep(120)"
    command = subprocess.Popen([sys.executable, "-c", parent, worker], stdout=subprocess.PIPE, text=True,
                               cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)}, start_new_session=True)
    try:
        child = int(command.stdout.readline())  # the worker has asked to end with its parent
        os.kill(command.pid, signal.SIGKILL)
        command.wait()
        deadline = time.monotonic() + 5
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(child), "the worker outlived its parent"
    finally:
        with contextlib.suppress(ProcessLookupError):  # whatever is left of the test's process group
            os.killpg(command.pid, signal.SIGKILL)
        command.wait()
        command.stdout.close()


def _alive(pid: int) -> bool:
    try:
        state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
