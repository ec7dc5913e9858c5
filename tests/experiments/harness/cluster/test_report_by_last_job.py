"""The job that ends a table's last run writes the table's report (``RunJob._report_if_last``), and ``status`` says
which job wrote it, where, or why none did (``report_line``); a running job's heartbeat carries how far its training
is (``TrainingProgress``, ``training_progress``). The whole path on a real SLURM: ``test_slurm_jobs.py``."""

import functools
import pickle
from types import SimpleNamespace

from experiments.harness.cluster.cli import report_line
from experiments.harness.cluster.job import RunJob, TableReport
from experiments.harness.cluster.job_file import read_job, write_job
from experiments.harness.cluster.status import RunStatus
from experiments.harness.plan import resolve_runs
from experiments.harness.run_dir import RunDir
from lightning_modules import run_callbacks
from lightning_modules.run_callbacks import TrainingProgress, training_progress
from reports.console import report_runs


def _record(cfg, runs):
    """The run's record, as ``execute`` writes it: the run is done."""
    RunDir.of(cfg, runs).write_record({"table": cfg.table, "row": cfg.row, "column": cfg.column, "seed": cfg.seed,
                                       "scale": cfg.scale, "metrics": {"top1": 50.0}, "config": cfg.to_dict()})


def _runs(runs, done):
    """A row's two runs; the first ``done`` of them recorded."""
    configs = resolve_runs("mformer_table2b", "tiny", ["traj_separatepe"], 1, None, None)
    for cfg in configs[:done]:
        _record(cfg, runs)
    return configs


def _job(cfg, runs, report):
    job = RunJob.__new__(RunJob)  # the report step alone
    job.report, job.cfg, job.runs_root = report, cfg, str(runs)
    write_job(job.run_dir, {"state": "done", "job_id": "5_1"})
    return job


def test_the_job_that_ends_the_last_run_writes_the_report_and_names_it(tmp_path):
    written = []
    report_path = tmp_path / "reports" / "t.md"
    configs = _runs(tmp_path, done=1)
    job = _job(configs[0], tmp_path, TableReport(tuple(configs), str(tmp_path),
                                                 lambda: written.append(1) or report_path))
    job._report_if_last()
    assert written == [] and "report" not in read_job(job.run_dir)  # another run is not done: not the last
    _record(configs[1], tmp_path)
    job._report_if_last()
    assert written == [1] and read_job(job.run_dir)["report"] == str(report_path) and read_job(job.run_dir)["report_at"]


def test_a_report_that_fails_leaves_the_run_done_and_says_why(tmp_path, capsys):
    configs = _runs(tmp_path, done=2)

    def fails():
        raise OSError("No space left on device")

    job = _job(configs[0], tmp_path, TableReport(tuple(configs), str(tmp_path), fails))
    job._report_if_last()
    said = read_job(job.run_dir)
    assert said["state"] == "done" and said["report_error"] == "OSError: No space left on device"
    assert "the table's report failed: OSError: No space left on device" in capsys.readouterr().out


def test_the_report_a_job_carries_pickles_as_submitit_sends_it(tmp_path):
    configs = tuple(_runs(tmp_path, done=0))
    report = TableReport(configs, str(tmp_path),
                         functools.partial(report_runs, "mformer_table6b", str(tmp_path), None, ["tiny"]))
    again = pickle.loads(pickle.dumps(report))
    assert again.configs == configs and again.write.func is report_runs and again.write.args[0] == "mformer_table6b"


def _status(state, job):
    return RunStatus(run_dir=SimpleNamespace(), state=state, job=job)


def test_status_names_the_report_the_last_job_wrote_or_why_none_did():
    first = {"job_id": "5_0", "report": "/r/t.md", "report_at": "2026-11-28T01:00:00+00:00"}
    later = {"job_id": "5_1", "report": "/r/t.md", "report_at": "2026-11-28T01:05:00+00:00"}
    assert report_line([_status("done", first), _status("done", later)]) == (
        "report: /r/t.md (written by job 5_1, the last to end, at 2026-11-28T01:05:00+00:00)")
    assert report_line([_status("done", first), _status("running", {"job_id": "5_1"})]) is None  # not yet
    assert report_line([_status("done", {}), _status("done", {})]) is None  # no jobs: `run` wrote it itself
    failed = {"job_id": "5_1", "report_error": "OSError: disk full"}
    assert report_line([_status("done", {"job_id": "5_0"}), _status("done", failed)]) == (
        "report: not written (the last job's attempt failed: OSError: disk full); the same `run --submit` command "
        "writes it")


def test_training_progress_follows_the_trainer_from_where_this_start_began(monkeypatch):
    monkeypatch.setattr(run_callbacks, "_progress", None)
    assert training_progress() is None
    trainer = SimpleNamespace(max_steps=-1, estimated_stepping_batches=40, global_step=12, current_epoch=3,
                              max_epochs=10)
    callback = TrainingProgress()
    callback.on_train_start(trainer, None)
    trainer.global_step, trainer.current_epoch = 17, 4
    callback.on_train_batch_end(trainer, None, None, None, 0)
    progress = training_progress()
    assert {k: progress[k] for k in ("step", "steps", "epoch", "epochs", "step_at_start")} == {
        "step": 17, "steps": 40, "epoch": 5, "epochs": 10, "step_at_start": 12}  # epoch 5 of 10 in progress
    assert progress["started_at"].endswith("+00:00")
    trainer.max_steps, trainer.estimated_stepping_batches = -1, float("inf")  # an epoch count of unknown length
    callback.on_train_start(trainer, None)
    assert training_progress()["steps"] is None

