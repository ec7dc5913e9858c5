"""`run --jobs N` trains CPU runs side by side in worker processes; each run's numbers are those it gets alone."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from experiments.harness.jobs import auto_jobs, check_jobs
from experiments.harness.plan import planned_steps, resolve_runs, runs_to_train
from experiments.harness.records import experiment_key
from tests.experiments.micro_run import MICRO_ARGS, ROW, TABLE, cli_env


def _run(runs, jobs: str) -> dict[str, dict]:
    args = list(MICRO_ARGS)
    args[args.index("--rows") + 1:args.index("--rows") + 2] = [ROW, "mformer_l"]
    args[args.index("--jobs") + 1] = jobs
    out = subprocess.run([sys.executable, "-m", "experiments", "run", TABLE, "--runs-dir", str(runs),
                          "--reports-dir", str(runs.parent / "reports"), *args], env=cli_env(),
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    records = {p.parent.relative_to(runs).as_posix(): json.loads(p.read_text())
               for p in sorted(runs.glob("*/*/seed*/*/metrics.json"))}
    return records, out.stdout


@pytest.mark.slow  # four micro runs (two processes at a time): ~1 min on 2 cores
def test_side_by_side_runs_give_the_numbers_of_sequential_ones(tmp_path):
    alone, _ = _run(tmp_path / "sequential" / "runs", "1")
    together, stdout = _run(tmp_path / "side_by_side" / "runs", "2")
    assert "2 side by side on" in stdout and len(alone) == len(together) == 2
    for run, record in alone.items():
        assert together[run]["metrics"] == record["metrics"], run  # bit-identical: same seed, same thread count


def test_auto_jobs_only_for_single_process_cpu_runs():
    tiny = resolve_runs(TABLE, "tiny", None, 1, None, None)
    assert auto_jobs(tiny) >= 1
    assert auto_jobs(resolve_runs(TABLE, "paper", None, 1, None, None)) == 1  # GPUs: one run at a time
    ddp = resolve_runs(TABLE, "tiny", None, 1, None, {"trainer": {"devices": 2, "strategy": "ddp"}})
    assert auto_jobs(ddp) == 1
    with pytest.raises(ValueError, match="--jobs 2 runs single-process CPU runs side by side"):
        check_jobs(2, ddp)
    with pytest.raises(ValueError, match="at least 1"):
        check_jobs(0, tiny)


def _figure1_side_by_side(monkeypatch, tmp_path, side_by_side, execute, seeds: int) -> list:
    """Run X-ViT Figure 1's runs through ``runner._run_side_by_side`` with its workers (``side_by_side``) and the
    command's own process (``execute``) replaced, nothing to generate; returns the configurations."""
    from experiments.harness import jobs, runner

    monkeypatch.setattr(jobs, "run_side_by_side", side_by_side)
    monkeypatch.setattr(runner, "prepare_generated_data", lambda *a, **k: None)  # no data to read
    monkeypatch.setattr(runner, "execute", execute)
    configs = resolve_runs("xvit_figure1", "tiny", None, seeds, None, None)
    steps = planned_steps(configs, tmp_path)
    runner._run_side_by_side(configs, steps, runs_to_train(configs, steps), 2, tmp_path, False,
                             lambda _: None, lambda cfg, record: None)
    return configs


def test_a_run_that_loads_another_run_starts_after_it_side_by_side_too(monkeypatch, tmp_path):
    """X-ViT Figure 1: one trained model, tested with more temporal views by runs that load its checkpoint. Those
    wait for it, then run in the workers too (a second wave), not one by one in the command's process."""
    from experiments.harness.run_dir import RunDir

    waves = []

    def side_by_side(configs, n, runs_root, force):
        waves.append(sorted((cfg.column, cfg.seed) for cfg in configs))
        for i, cfg in enumerate(configs):
            record = RunDir.of(cfg, runs_root).record_file
            record.parent.mkdir(parents=True, exist_ok=True)
            record.write_text("{}")  # finished: the runs that start from it may start
            yield i, {"metrics": {}, "wall_time_s": 1.0}

    def execute(cfg, *args, planned=None, **kwargs):
        if planned is None or planned.trains:  # a finished run is only read back there
            raise AssertionError(f"{cfg.column} ran in the command's process")
        return {"metrics": {}, "cached": True}

    configs = _figure1_side_by_side(monkeypatch, tmp_path, side_by_side, execute, seeds=2)
    trained = configs[0].column
    assert waves[0] == [(trained, 0), (trained, 1)]
    assert waves[1] == sorted((cfg.column, cfg.seed) for cfg in configs if cfg.column != trained)
    assert len(waves) == 2

    # the command again, its models trained and one test run done: the other tests start at once, side by side
    tests = sorted((cfg.column, cfg.seed) for cfg in configs if cfg.column != trained)
    for cfg in configs:
        if (cfg.column, cfg.seed) in tests[1:]:
            RunDir.of(cfg, tmp_path).record_file.unlink()
    waves.clear()
    _figure1_side_by_side(monkeypatch, tmp_path, side_by_side, execute, seeds=2)
    assert waves == [tests[1:]]


def test_a_run_whose_source_did_not_finish_waits_for_the_command_to_say_why(monkeypatch, tmp_path):
    """A source that failed leaves its dependants to run in order in the command's process, where their missing
    checkpoint is named (as before the waves)."""
    order = []

    def side_by_side(configs, n, runs_root, force):
        for i, cfg in enumerate(configs):
            order.append(("side by side", cfg.column))
            yield i, {"metrics": {}, "wall_time_s": 1.0}  # no record written: not finished

    def execute(cfg, *args, **kwargs):
        order.append(("after", cfg.column))
        return {"metrics": {}, "wall_time_s": 0.0}

    configs = _figure1_side_by_side(monkeypatch, tmp_path, side_by_side, execute, seeds=1)
    assert order[0][0] == "side by side" and [how for how, _ in order[1:]] == ["after"] * (len(configs) - 1)


def test_side_by_side_runs_load_their_data_in_their_own_process(monkeypatch, tmp_path):
    """Loader workers would contend with the other runs for the cores; the worker count is no part of what a run
    computes (items are seeded), so a record made with either matches the same row."""
    from experiments.harness import runner

    seen = {}

    def side_by_side(configs, steps, to_train, jobs, runs_root, force, echo, finished):
        seen.update({(c.row, c.column): c.data.num_workers for c in configs})
        for cfg in configs:
            finished(cfg, {"metrics": {}, "wall_time_s": 0.0})

    monkeypatch.setattr(runner, "_run_side_by_side", side_by_side)
    monkeypatch.setattr(runner, "prepare_generated_data", lambda *a, **k: None)  # no data to read
    monkeypatch.setattr(runner, "compute_static", lambda *a, **k: None)
    runner.run_table(TABLE, rows=[ROW], runs_root=tmp_path, jobs=2, echo=lambda _: None)
    assert seen and set(seen.values()) == {0}
    runner.run_table(TABLE, rows=[ROW], runs_root=tmp_path, jobs=2, echo=lambda _: None,
                     overrides={"data": {"num_workers": 3}})
    assert set(seen.values()) == {3}  # the user's choice stands
    cfg = resolve_runs(TABLE, "tiny", [ROW], 1, None, None)[0]
    other = resolve_runs(TABLE, "tiny", [ROW], 1, None, {"data": {"num_workers": 5}})[0]
    assert experiment_key(cfg.to_dict()) == experiment_key(other.to_dict())
