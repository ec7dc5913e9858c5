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

import pytest

from experiments.__main__ import run_and_report
from reports.build import GENERATED_DIR, load_records

pytestmark = pytest.mark.slow

MICRO = {"optim": {"epochs": 1, "warmup_epochs": 0},
         "data": {"synthetic_params": {"num_train": 32, "num_val": 16, "seed": 0}, "num_workers": 0,
                  "batch_size": 8},
         "trainer": {"log_every_n_steps": 2}}  # 4 steps an epoch: log (and record the lr) every other step
ROWS = ["joint", "traj_attT_normS"]


@pytest.fixture(scope="module")
def micro_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    runs = root / "runs"
    logs = []
    records = run_and_report("mformer_table4", rows=ROWS, runs_root=runs, overrides=MICRO, progress_bar=False,
                             echo=logs.append, reports_dir=root / "reports" / "new")  # created before training
    return runs, records, logs


def test_each_row_and_column_writes_a_complete_record(micro_runs):
    runs, records, _ = micro_runs
    assert len(records) == 4
    for rec in records:
        path = runs / "mformer_table4" / rec["row"] / "seed0" / f"tiny-{rec['column'].lower().replace('-', '_')}"
        on_disk = json.loads((path / "metrics.json").read_text())
        assert on_disk["scale"] == "tiny" and on_disk["seed"] == 0
        assert on_disk["dataset"] in ("synth_objects", "synth_motion_pairs")
        assert 0.0 <= on_disk["metrics"]["top1"] <= 100.0
        assert on_disk["config"]["model"]["overrides"]["attn_layer"] in ("joint", "trajectory")
        assert on_disk["git_commit"] and on_disk["data_report"]
        assert list(path.glob("events.out.tfevents.*")), "no TensorBoard events"
        assert (path / "hparams.yaml").exists() and (path / "checkpoints" / "last.ckpt").exists()
    assert (runs.parent / "reports" / "new" / "mformer_table4.md").exists()  # in reports_dir, made up front


def test_run_shows_the_users_cells_and_writes_their_report_beside_their_runs_never_into_reports(micro_runs):
    runs, _, _ = micro_runs
    committed = {p.name: p.read_bytes() for p in GENERATED_DIR.iterdir() if p.is_file()}
    logs = []
    run_and_report("mformer_table4", rows=ROWS, runs_root=runs, overrides=MICRO, progress_bar=False,
                   echo=logs.append)  # every run done: nothing trains, the report and the comparison are made again
    assert {p.name: p.read_bytes() for p in GENERATED_DIR.iterdir() if p.is_file()} == committed
    mine = runs / "reports" / "mformer_table4.md"
    assert any(line.startswith(f"\nyour report: {mine} (from your runs") for line in logs)
    assert "4 tracked in `reports/results/`" not in mine.read_text() and ", 4 local." in mine.read_text()
    shown = next(line for line in logs if line.startswith("\nYour tiny runs beside the tracked records"))
    assert "Joint Space-Time" in shown and "4 cell(s):" in shown and "79.2" in shown  # the paper's K-400 value
    for committed_dir in (GENERATED_DIR, GENERATED_DIR.parent):  # the committed reports, and the code beside them
        with pytest.raises(ValueError, match="reports/generated/ holds the committed reports"):
            run_and_report("mformer_table4", rows=ROWS, runs_root=runs, overrides=MICRO, reports_dir=committed_dir,
                           echo=logs.append)


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
                          "--out-dir", str(tmp_path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    text = (tmp_path / "mformer_table4.md").read_text()
    joint_k400 = next(r for r in records if r["row"] == "joint" and r["column"] == "K-400")
    assert f"{joint_k400['metrics']['top1']:.1f} (n=1; tiny, synth_objects, CPU) · paper 79.2" in text
    assert "— · paper 64.2" in text  # divided did not run


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get_json(url: str, body: dict | None = None):
    """GET ``url``, or POST ``body`` as JSON (the HParams plugin's API)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:  # loopback only
        return json.loads(response.read())


def test_tensorboard_serves_both_rows_with_lr_and_hparams(micro_runs, tmp_path):
    """TensorBoard's own server shows each run's curves (test/top1, the lr of each named parameter group) and, in
    the HParams dashboard, each run's configuration beside its scalars, with columns built from every run (no run
    carries an experiment summary that would fix them to its own)."""
    runs, records, _ = micro_runs
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
        tested = next(r for r in records if f"{r['row']}/seed0/tiny-{r['column'].lower().replace('-', '_')}" == run)
        assert points[0][2] == pytest.approx(tested["metrics"]["top1"])  # in percent, as the record and reports
        lr_tags = [t for t in tags[run] if t == "lr" or t.startswith("lr/")]  # LearningRateMonitor
        assert sorted(lr_tags) == ["lr/decay", "lr/no_decay"], sorted(tags[run])  # timm's groups, named
        lr = _get_json(f"http://127.0.0.1:{port}/data/plugin/scalars/scalars?run={urllib.request.quote(run)}"
                       f"&tag={urllib.request.quote(lr_tags[0])}")
        assert len(lr) >= 2 and all(0.0 < p[2] <= 1e-3 for p in lr)  # the tiny recipe's peak lr, decaying
        assert lr[-1][2] < lr[0][2]

        hparams = f"http://127.0.0.1:{port}/data/plugin/hparams"
        experiment = _get_json(f"{hparams}/experiment", {"experimentName": ""})
        assert {"row", "column", "model/overrides/attn_layer", "optim/lr", "num_params"} <= {
            h["name"] for h in experiment["hparamInfos"]}
        assert {"test/top1", "test/loss", "train/loss"} <= {m["name"]["tag"] for m in experiment["metricInfos"]}
        assert not any(m["name"]["tag"].startswith("hp/") for m in experiment["metricInfos"])
        groups = _get_json(f"{hparams}/session_groups", {
            "experimentName": "", "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS"], "colParams": [],
            "startIndex": 0, "sliceSize": 100})["sessionGroups"]
        by_run = {g["name"]: g for g in groups}
        assert len(by_run) == 4, sorted(by_run)  # one session per run, side by side
        for rec in records:
            group = by_run[f"{rec['row']}/seed0/tiny-{rec['column'].lower().replace('-', '_')}"]
            assert group["hparams"]["row"] == rec["row"] and group["hparams"]["column"] == rec["column"]
            assert group["hparams"]["model/overrides/attn_layer"] == rec["config"]["model"]["overrides"]["attn_layer"]
            top1 = next(m["value"] for m in group["metricValues"] if m["name"]["tag"] == "test/top1")
            assert top1 == pytest.approx(rec["metrics"]["top1"], abs=1e-4)  # the record's, in percent
    finally:
        server.terminate()
        server.wait(timeout=30)
