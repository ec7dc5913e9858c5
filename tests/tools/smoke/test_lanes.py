"""A sweep resumed after a lost GPU context, and `smoke --jobs N`: tables dealt into lanes, the data written first,
a lane started again after the run that lost its context (fast: no run steps)."""

import json
import sys

import pytest

from tools.__main__ import main
from tools.smoke import lanes as smoke_lanes
from tools.smoke import runs, sweep
from tools.smoke.runs import SmokeOptions, smoke_configs


def test_tables_are_dealt_into_lanes_of_about_equal_runs_in_sweep_order():
    lanes = smoke_lanes.balance({"a": 2, "b": 9, "c": 4, "d": 4, "e": 1}, 3)
    assert lanes == [["b"], ["a", "c"], ["d", "e"]]
    assert smoke_lanes.balance({"a": 3}, 4) == [["a"]]  # no empty lane


SHOWN = {"clip": "8x224x224", "reduced": [], "batch": 4, "paper_batch": 4}  # what a record's line shows
# the rest of what a record file holds: its stamp, the dataset and the frame-size divisor
FILED = {"dataset": "kinetics400", "shrink": 1, "device_name": "GPU A", "torch": "2.x", "commit": "abc",
         "measured_at": "2026-01-01", "command": "python -m tools smoke"}


def _fake_run(cfg, options, echo=print):
    return {"table": cfg.table, "row": cfg.row, "column": cfg.column, "status": "pass", "error": None,
            "seconds": 0.0, "dataset": cfg.data.dataset, "shrink": options.shrink, **SHOWN}


def test_a_table_goes_on_after_the_named_run(monkeypatch):
    monkeypatch.setattr(sweep, "smoke_run", _fake_run)
    runs = [(c.row, c.column) for c in smoke_configs("mformer_table4")]
    after = runs[2]
    records = sweep.smoke_table("mformer_table4", SmokeOptions(), after=after, echo=lambda line: None)
    assert [(r["row"], r["column"]) for r in records] == runs[3:]
    with pytest.raises(ValueError, match="has no run joint / EK-100 to go on after; its runs: joint/K-400"):
        sweep.smoke_table("mformer_table4", SmokeOptions(), after=("joint", "EK-100"))


def test_resume_after_starts_at_its_table_and_refuses_one_not_swept(monkeypatch, tmp_path):
    seen = []

    def recording_table(table_id, options, rows=None, echo=print, done=None, on_record=None, after=None, skip=()):
        seen.append((table_id, after))
        return []

    monkeypatch.setattr(sweep, "smoke_table", recording_table)
    argv = ["smoke", "mformer_table9", "mformer_table4", "mformer_table8", "--resume-after", "mformer_table4",
            "joint", "SSv2"]
    assert main(argv) == 0
    assert seen == [("mformer_table4", ("joint", "SSv2")), ("mformer_table8", None)]
    assert main(["smoke", "mformer_table9", "--resume-after", "mformer_table4", "joint", "SSv2"]) == 2


def _lane_script(tmp_path):
    """A stand-in for a lane's smoke process: it loses its context after its first run unless told to resume."""
    script = tmp_path / "lane.py"
    script.write_text(
        "import json, sys\n"
        "argv = sys.argv[1:]\n"
        "print('ran', json.dumps(argv))\n"
        "if '--resume-after' not in argv:\n"
        f"    print({smoke_lanes.RESUME_PREFIX!r} + json.dumps(['t2', 'r1', 'c1']), file=sys.stderr, flush=True)\n"
        "    import os; os.abort()  # as a process whose lost context fails again at exit\n")
    return script


def test_a_lane_that_loses_its_context_goes_on_after_that_run_even_if_it_aborts(monkeypatch, tmp_path):
    script = _lane_script(tmp_path)
    monkeypatch.setattr(smoke_lanes, "lane_command", lambda tables, options, after: [
        sys.executable, str(script), *tables, *options, *(["--resume-after", *after] if after else [])])
    log = tmp_path / "lane0.log"
    assert smoke_lanes.run_lane(["t1", "t2", "t3"], ["--device", "cuda"], log) == 0
    ran = [json.loads(line[4:]) for line in log.read_text().splitlines() if line.startswith("ran ")]
    assert ran == [["t1", "t2", "t3", "--device", "cuda"],
                   ["t2", "t3", "--device", "cuda", "--resume-after", "t2", "r1", "c1"]]


def test_a_table_larger_than_a_lanes_share_is_cut_by_rows_and_each_part_runs_in_a_process_of_its_own():
    runs = {"small": ["a", "a"], "big": ["r1", "r1", "r2", "r2", "r3", "r3", "r4"], "one_row": ["x"] * 5}
    parts = smoke_lanes.split(runs, 3)  # 14 runs: a lane's share is 5
    assert parts == {("small", ()): 2, ("big", ("r1", "r2")): 4, ("big", ("r3", "r4")): 3, ("one_row", ()): 5}
    assert smoke_lanes.split(runs, 1) == {("small", ()): 2, ("big", ()): 7, ("one_row", ()): 5}
    lane = [("small", ()), ("one_row", ()), ("big", ("r3", "r4")), "plain"]
    assert smoke_lanes.lane_commands(lane) == [(["small", "one_row"], []), (["big"], ["--rows", "r3", "r4"]),
                                              (["plain"], [])]


def test_each_process_of_a_lane_reads_only_its_own_resume_point(monkeypatch, tmp_path):
    # the first process stops at a lost context and goes on; the second fails a run (exit 1) without losing it
    script = tmp_path / "lane.py"
    script.write_text(
        "import json, sys\n"
        "argv = sys.argv[1:]\n"
        "print('ran', json.dumps(argv))\n"
        "if argv[0] == 't1' and '--resume-after' not in argv:\n"
        f"    print({smoke_lanes.RESUME_PREFIX!r} + json.dumps(['t1', 'r1', 'c1']), flush=True)\n"
        "    sys.exit(2)\n"
        "sys.exit(1 if argv[0] == 'big' else 0)\n")
    monkeypatch.setattr(smoke_lanes, "lane_command", lambda tables, options, after: [
        sys.executable, str(script), *tables, *options, *(["--resume-after", *after] if after else [])])
    log = tmp_path / "lane0.log"
    assert smoke_lanes.run_lane([("t1", ()), ("big", ("r2",))], [], log) == 1
    ran = [json.loads(line[4:]) for line in log.read_text().splitlines() if line.startswith("ran ")]
    assert ran == [["t1"], ["t1", "--resume-after", "t1", "r1", "c1"], ["big", "--rows", "r2"]]


def test_a_lane_that_stops_without_a_resume_point_is_not_started_again(monkeypatch, tmp_path):
    monkeypatch.setattr(smoke_lanes, "lane_command", lambda tables, options, after: [
        sys.executable, "-c", "import sys; print('once'); sys.exit(2)"])
    log = tmp_path / "lane0.log"
    assert smoke_lanes.run_lane(["t1"], [], log) == 2
    assert log.read_text().count("once") == 1


def _fake_lanes(monkeypatch) -> tuple[list, list]:
    """The datasets a sweep writes and the (parts, options) of its lanes, recorded instead of done, on a fake GPU."""
    written, lanes = [], []
    monkeypatch.setattr(smoke_lanes, "write_data", lambda requests, processes, echo: written.extend(requests))
    monkeypatch.setattr(smoke_lanes, "run_lane", lambda tables, options, log: lanes.append((tables, options)) or 0)
    monkeypatch.setattr(sweep, "require_device", lambda device: None)  # this machine may have no GPU
    return written, lanes


def test_jobs_write_each_dataset_once_then_run_the_lanes_with_one_record_file(monkeypatch, tmp_path):
    written, lanes = _fake_lanes(monkeypatch)
    record = tmp_path / "smoke.json"
    code = main(["smoke", "mformer_table4", "mformer_table9", "--device", "cuda", "--jobs", "2", "--record",
                 str(record), "--log-dir", str(tmp_path / "logs")])
    assert code == 0
    # 11 runs in 2 lanes: Table 4's 10 are more than a lane's share (6), so its rows are cut into two parts
    rows = list(dict.fromkeys(cfg.row for cfg in smoke_configs("mformer_table4")))
    assert [parts for parts, _ in lanes] == [[("mformer_table4", tuple(rows[:3]))],
                                              [("mformer_table4", tuple(rows[3:])), ("mformer_table9", ())]]
    options = lanes[0][1]
    assert options[options.index("--sharing") + 1] == "2" and options[options.index("--record") + 1] == str(record)
    assert {(r["dataset"], r["num_train"], r["num_val"]) for r in written} >= {("kinetics400", 12, 4),
                                                                               ("ssv2", 12, 4)}
    assert main(["smoke", "mformer_table4", "--jobs", "2"]) == 2  # no --record: refused


@pytest.mark.slow  # writes data in processes of its own
def test_the_data_is_written_once_per_dataset_in_processes_of_its_own(tmp_path):
    request = {"dataset": "lra_listops", "cache_dir": str(tmp_path), "num_train": 2, "num_val": 1, "shrink": 1}
    said = []
    smoke_lanes.write_data([request, dict(request), {**request, "num_train": 3}], 2, said.append)
    assert len(said) == 2 and len(list(tmp_path.glob("lra_listops-*"))) == 2


def _records(path, *runs):
    from reports.smoke_records import write_records

    write_records(path, [{"table": t, "row": r, "column": c, "status": s, "error": None, **SHOWN, **FILED}
                         for t, r, c, s in runs])


def test_skip_passed_leaves_out_the_runs_recorded_as_passed_and_steps_the_failed_again(monkeypatch, tmp_path):
    stepped = []
    monkeypatch.setattr(sweep, "smoke_run", lambda cfg, options, echo=print: stepped.append((cfg.row, cfg.column))
                        or _fake_run(cfg, options))
    monkeypatch.setattr(runs, "measured_on", lambda device: "a CPU")
    path = tmp_path / "smoke.json"
    _records(path, ("mformer_table4", "joint", "K-400", "pass"), ("mformer_table4", "joint", "SSv2", "fail"))
    assert main(["smoke", "mformer_table4", "--rows", "joint", "--record", str(path), "--skip-passed"]) == 0
    assert stepped == [("joint", "SSv2")]
    assert main(["smoke", "mformer_table4", "--skip-passed"]) == 2  # it reads the record file: --record needed


def test_jobs_deal_and_write_only_what_is_left_after_the_passed_runs(monkeypatch, tmp_path):
    written, lanes = _fake_lanes(monkeypatch)
    path = tmp_path / "smoke.json"
    (run,) = smoke_configs("mformer_table9")
    _records(path, ("mformer_table9", run.row, run.column, "pass"))
    assert main(["smoke", "mformer_table4", "mformer_table9", "--device", "cuda", "--jobs", "2", "--record",
                 str(path), "--skip-passed", "--log-dir", str(tmp_path / "logs")]) == 0
    # Table 9's one run has passed; Table 4's 10 runs are cut by rows into parts of at most 5 runs
    assert sorted({table for parts, _ in lanes for table, _ in parts}) == ["mformer_table4"]
    rows = [row for parts, _ in lanes for _, part_rows in parts for row in part_rows]
    assert sorted(rows) == sorted({cfg.row for cfg in smoke_configs("mformer_table4")})
    assert "--skip-passed" in lanes[0][1]
    assert {r["dataset"] for r in written} == {"kinetics400", "ssv2"}


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_jobs_share_the_cpu_cores_between_the_processes_on_either_device(device, monkeypatch, tmp_path, capsys):
    lanes = []
    monkeypatch.setattr(smoke_lanes, "write_data", lambda requests, processes, echo: None)
    monkeypatch.setattr(smoke_lanes, "run_lane", lambda tables, options, log: lanes.append(options) or 0)
    monkeypatch.setattr(sweep, "require_device", lambda device: None)
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    common = ["smoke", "mformer_table4", "mformer_table9", "--device", device, "--jobs", "2", "--record",
              str(tmp_path / "s.json"), "--log-dir", str(tmp_path / "logs")]
    assert main(common) == 0
    assert all(options[options.index("--threads") + 1] == "4" for options in lanes)
    lanes.clear()
    assert main([*common, "--threads", "1"]) == 0  # as asked
    assert all(options[options.index("--threads") + 1] == "1" for options in lanes)
    assert "warning" not in capsys.readouterr().err
    assert main([*common, "--threads", "5"]) == 0  # as asked, and said to contend: 2 x 5 on 8 cores
    assert all(options[options.index("--threads") + 1] == "5" for options in lanes[-2:])
    assert "warning: 2 processes x 5 torch threads on 8 cores" in capsys.readouterr().err


SHARED = ["device shared with 1 other process(es): times are upper bounds"]


def test_a_run_out_of_memory_beside_the_other_lanes_is_stepped_again_alone(monkeypatch, tmp_path):
    from reports.smoke_records import write_records

    path = tmp_path / "smoke.json"
    rows = list(dict.fromkeys(cfg.row for cfg in smoke_configs("mformer_table4")))
    oom = "models/x.py:1: OutOfMemoryError: CUDA out of memory. Tried to allocate 14.00 MiB."

    def lane(parts, options, log):  # the lanes write their records: two crowded out, one failed for its own sake
        write_records(path, [
            {"table": "mformer_table4", "row": rows[0], "column": "K-400", "status": "fail", "error": oom,
             **SHOWN, **FILED, "reduced": SHARED},
            {"table": "mformer_table4", "row": rows[4], "column": "SSv2", "status": "fail",
             "error": "models/x.py:1: RuntimeError: CUDA error: CUBLAS_STATUS_ALLOC_FAILED", **SHOWN, **FILED,
             "reduced": SHARED},
            {"table": "mformer_table4", "row": rows[1], "column": "K-400", "status": "fail",
             "error": "models/x.py:1: ValueError: too few tokens", **SHOWN, **FILED, "reduced": SHARED},
            {"table": "mformer_table9", "row": "r", "column": "c", "status": "fail", "error": oom, **SHOWN, **FILED,
             "reduced": SHARED}])  # crowded out, but not one of this sweep's runs
        return 0

    alone = []
    monkeypatch.setattr(smoke_lanes, "write_data", lambda requests, processes, echo: None)
    monkeypatch.setattr(smoke_lanes, "run_lane", lane)
    monkeypatch.setattr(smoke_lanes, "_run_command", lambda tables, options, log: alone.append((tables, options)) or 0)
    monkeypatch.setattr(sweep, "require_device", lambda device: None)
    assert main(["smoke", "mformer_table4", "--device", "cuda", "--jobs", "2", "--record", str(path),
                 "--log-dir", str(tmp_path / "logs")]) == 0
    ((tables, options),) = alone
    assert tables == ["mformer_table4"] and options[-3:] == ["--rows", rows[0], rows[4]]
    assert options[options.index("--sharing") + 1] == "1" and "--skip-passed" in options
    assert "--threads" not in options  # alone, the process has every core
