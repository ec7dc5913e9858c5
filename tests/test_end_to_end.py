"""End to end on a micro version of the embedded default: train, test, log, resume, report, serve.

One module-scoped run of two Table 4 rows (1 epoch on a few generated videos) feeds every test here, so the
slow part happens once.
"""

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from experiments.__main__ import run_and_report
from reports.build import load_records

pytestmark = pytest.mark.slow

MICRO = {"optim": {"epochs": 1, "warmup_epochs": 0},
         "data": {"synthetic_params": {"num_train": 32, "num_val": 16, "seed": 0}, "num_workers": 0,
                  "batch_size": 8}}
ROWS = ["joint", "traj_attT_normS"]


@pytest.fixture(scope="module")
def micro_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    runs = root / "runs"
    logs = []
    records = run_and_report("mformer_table4", rows=ROWS, runs_root=runs, overrides=MICRO, progress_bar=False,
                             echo=logs.append, reports_dir=root)
    return runs, records, logs


def test_each_row_and_column_writes_a_complete_record(micro_runs):
    runs, records, _ = micro_runs
    assert len(records) == 4
    for rec in records:
        path = runs / "mformer_table4" / rec["row"] / "seed0" / f"tiny-{rec['column'].lower().replace('-', '_')}"
        on_disk = json.loads((path / "metrics.json").read_text())
        assert on_disk["scale"] == "tiny" and on_disk["seed"] == 0
        assert on_disk["dataset"] in ("synth_appearance", "synth_motion")
        assert 0.0 <= on_disk["metrics"]["top1"] <= 100.0
        assert on_disk["config"]["model"]["overrides"]["attn_layer"] in ("joint", "trajectory")
        assert on_disk["git_commit"] and on_disk["data_report"]
        assert list(path.glob("events.out.tfevents.*")), "no TensorBoard events"
        assert (path / "hparams.yaml").exists() and (path / "checkpoints" / "last.ckpt").exists()
    assert (runs.parent / "mformer_table4.md").exists()  # the report goes to reports_dir, not the repository's


def test_finished_runs_are_skipped_and_interrupted_runs_resume(micro_runs):
    runs, _, _ = micro_runs
    logs = []
    again = run_and_report("mformer_table4", rows=["joint"], runs_root=runs, overrides=MICRO, progress_bar=False,
                           echo=logs.append, reports_dir=runs.parent)
    assert all(r.get("cached") for r in again)
    # An interruption after training but before the test: metrics.json missing, last.ckpt present.
    run_dir = runs / "mformer_table4" / "joint" / "seed0" / "tiny-k_400"
    (run_dir / "metrics.json").unlink()
    logs = []
    resumed = run_and_report("mformer_table4", rows=["joint"], runs_root=runs, overrides=MICRO, progress_bar=False,
                             echo=logs.append, reports_dir=runs.parent)
    rec = next(r for r in resumed if r["column"] == "K-400")
    assert rec["resumed_from"].endswith("last.ckpt") and not rec.get("cached")
    assert any("resuming from" in line for line in logs)


def test_forced_rerun_starts_fresh_and_keeps_the_old_run(micro_runs, tmp_path):
    runs = tmp_path / "runs"
    shutil.copytree(micro_runs[0], runs)
    run_dir = runs / "mformer_table4" / "joint" / "seed0" / "tiny-k_400"
    old_files = sorted(p.relative_to(run_dir) for p in run_dir.rglob("*"))
    logs = []
    again = run_and_report("mformer_table4", rows=["joint"], runs_root=runs, overrides=MICRO, progress_bar=False,
                           echo=logs.append, force=True, reports_dir=runs.parent)
    assert not any(r.get("cached") or r.get("resumed_from") or r.get("reused_from") for r in again)
    (archive,) = (runs / ".replaced").glob("*/mformer_table4/joint/seed0/tiny-k_400")
    assert sorted(p.relative_to(archive) for p in archive.rglob("*")) == old_files  # moved whole
    assert any(f"previous run moved to {archive}" in line for line in logs)
    events = {p.name for p in run_dir.glob("events.out.tfevents.*")}
    assert events and not events & {p.name for p in archive.glob("events.out.tfevents.*")}  # the new run's only
    assert len(load_records("mformer_table4", runs)) == len(load_records("mformer_table4", micro_runs[0]))


def test_report_is_rebuilt_from_the_runs(micro_runs, tmp_path):
    runs, records, _ = micro_runs
    out = subprocess.run([sys.executable, "-m", "reports", "build", "mformer_table4", "--runs-dir", str(runs),
                          "--out-dir", str(tmp_path)], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parent.parent)
    assert out.returncode == 0, out.stderr
    text = (tmp_path / "mformer_table4.md").read_text()
    joint_k400 = next(r for r in records if r["row"] == "joint" and r["column"] == "K-400")
    assert f"{joint_k400['metrics']['top1']:.1f} (n=1; tiny, synth_appearance) · paper 79.2" in text
    assert "— · paper 64.2" in text  # divided did not run


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get_json(url: str):
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback only
        return json.loads(response.read())


def test_tensorboard_serves_both_rows(micro_runs, tmp_path):
    runs, _, _ = micro_runs
    logdir = tmp_path / "logs"
    shutil.copytree(runs / "mformer_table4", logdir)
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir), "--host", "127.0.0.1", "--port",
         str(port), "--reload_interval", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline, tags = time.monotonic() + 90, {}
        while time.monotonic() < deadline:
            if server.poll() is not None:
                pytest.fail(f"tensorboard exited: {server.stderr.read()[-2000:]}")
            try:
                tags = _get_json(f"http://127.0.0.1:{port}/data/plugin/scalars/tags")
            except OSError:
                tags = {}
            if sum(run.startswith(("joint/", "traj_attT_normS/")) and "test/top1" in t for run, t in tags.items()) >= 4:
                break
            time.sleep(1)
        runs_served = sorted(tags)
        assert any(r.startswith("joint/seed0") for r in runs_served), runs_served
        assert any(r.startswith("traj_attT_normS/seed0") for r in runs_served), runs_served
        run = next(r for r in runs_served if r.startswith("traj_attT_normS/seed0"))
        points = _get_json(f"http://127.0.0.1:{port}/data/plugin/scalars/scalars?run={urllib.request.quote(run)}"
                           f"&tag=test/top1")
        assert len(points) == 1 and len(points[0]) == 3  # one [wall_time, step, value] per test run
        assert 0.0 <= points[0][2] <= 1.0
    finally:
        server.terminate()
        server.wait(timeout=30)
