"""The shift family's benchmark records (``python -m tools shift-family --record FILE``): stamped with where and from
which code they came, merged into their file, rendered as the generated page's tables; a malformed file is named and
kept."""

from __future__ import annotations

import json

import pytest

from reports.benchmarks import STAMP, read_records, shift_tables
from tools.__main__ import main as tools_main
from tools.shift_family import record_shift_benchmark

QUICK = ["--shape", "tiny", "--repeats", "1", "--min-seconds", "0"]  # torch's own thread count: a test sets none


def test_records_are_stamped_merged_and_rendered(tmp_path):
    path = tmp_path / "shift_test.json"
    first = record_shift_benchmark(path, [*QUICK, "--variants", "msca_kv"])
    assert [r["variant"] for r in first] == ["vit", "msca_kv"]
    assert all(r[k] for r in first for k in STAMP)
    assert first[0]["command"] == f"python -m tools shift-family --record {path} {' '.join(QUICK)} --variants msca_kv"

    block = shift_tables(tmp_path)
    (row,) = [line for line in block.splitlines() if line.startswith("| block, tiny, 1")]
    cells = [c.strip() for c in row.strip("|").split("|")]
    vit, msca = first
    assert cells[1] == "eager"
    assert cells[3] == f"{msca['time_min_s'] / vit['time_min_s']:.3f} ({msca['time_s'] / vit['time_s']:.3f})"
    assert cells[4] == cells[5] == cells[6] == cells[7] == "—"  # not measured: MSCA-pKV, TokenShift, TSM, X-ViT
    assert cells[8] == f"{vit['ops']}; +{msca['ops'] - vit['ops']} / — / — / — / —"
    assert "all equal" in cells[9]  # the shifts add no memory
    assert f"commit {vit['commit']}" in block

    # a new run of the setting replaces all of its records: no ratio divides a record of one run by another's ViT
    second = record_shift_benchmark(path, [*QUICK, "--variants", "tsm"])
    assert read_records(path) == second and [r["variant"] for r in second] == ["vit", "tsm"]
    (row,) = [line for line in shift_tables(tmp_path).splitlines() if line.startswith("| block, tiny, 1")]
    cells = [c.strip() for c in row.strip("|").split("|")]
    vit, tsm = second
    assert cells[3] == cells[4] == cells[5] == cells[7] == "—"
    assert cells[6] == f"{tsm['time_min_s'] / vit['time_min_s']:.3f} ({tsm['time_s'] / vit['time_s']:.3f})"

    # another setting (batch 2) is added beside it, and a new run of it leaves batch 1's records as they were
    third = record_shift_benchmark(path, [*QUICK, "--batch", "2", "--variants", "xvit"])
    assert read_records(path) == second + third and [r["batch"] for r in third] == [2, 2]


def test_a_malformed_records_file_is_named_and_left_as_it_was(tmp_path, capsys):
    path = tmp_path / "shift_bad.json"
    path.write_text('{"records": [{"variant": "vit"}]}')
    assert tools_main(["shift-family", "--record", str(path), *QUICK]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "missing key 'records.0.device_name'" in err and err.count("\n") == 1, err
    assert path.read_text() == '{"records": [{"variant": "vit"}]}'

    path.write_text(json.dumps({"records": [{**dict.fromkeys(STAMP, "x"), "unit": "block", "shape": "tiny",
                                             "batch": 1, "compiled": None, "variant": "tsm", "time_s": 1.0,
                                             "time_min_s": 1.0}]}))
    with pytest.raises(ValueError, match="no 'vit' record to divide by") as err:
        shift_tables(tmp_path)
    assert str(path) in str(err.value)


def _smoke(table: str, row: str, shrink: int, status: str = "pass", **fields) -> dict:
    return {"table": table, "row": row, "column": "K-400", "dataset": "kinetics400", "clip": "8x224x224",
            "reduced": [], "batch": 4, "paper_batch": 4, "shrink": shrink, "status": status,
            "error": None if status == "pass" else "models/x.py:1: ValueError: too few tokens", "step_s": 1.0,
            "test_s": 2.0, "device_name": "CPU", "command": "python -m tools smoke all", "commit": "abc1234def",
            "measured_at": "2026-11-25", "torch": "2.13.0", **fields}


def test_a_shrunk_sweep_is_summarised_per_table_and_a_paper_shape_file_per_run(tmp_path):
    from reports.readme import smoke_block

    sweep = [_smoke("t1", "a", 7), _smoke("t1", "b", 1, step_s=9.5), _smoke("t2", "a", 7, status="fail"),
             _smoke("t2", "b", 7, same_as="t1/a/K-400")]
    (tmp_path / "smoke_cpu_sweep.json").write_text(json.dumps({"records": sweep}))
    text = smoke_block(tmp_path)
    assert "3 of 4 runs of 2 table(s) pass" in text
    lines = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
             for line in text.splitlines() if line.startswith("| t")}
    assert lines["t1"][:3] == ["2", "2", "2"] and lines["t1"][4:6] == ["paper, 1/7", "9.5"]
    assert lines["t2"][:3] == ["2", "1", "1"] and lines["t2"][3].startswith("a / K-400: models/x.py:1")


def test_a_paper_shape_sweep_of_many_tables_is_summarised_with_its_largest_peak(tmp_path):
    from reports.readme import SWEEP_TABLES, smoke_block

    memory = {"batch": 4, "paper_batch": 4, "paper_gpu": "RTX 3090 24 GB"}
    sweep = [_smoke(f"t{i}", "a", 1, paper_batch_peak_gib=2.0 + i, fits=2.0 + i <= 24, **memory)
             for i in range(SWEEP_TABLES + 1)]
    sweep.append(_smoke("t0", "b", 1, paper_batch_peak_gib=30.0, fits=False, **memory))
    (tmp_path / "smoke_cuda.json").write_text(json.dumps({"records": sweep}))
    lines = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
             for line in smoke_block(tmp_path).splitlines() if line.startswith("| t")}
    assert len(lines) == SWEEP_TABLES + 2  # the header and a line per table, not per run
    assert lines["t0"][:3] == ["2", "2", "2"] and lines["t0"][-1] == "30.0 GiB: does not fit RTX 3090 24 GB"
    assert lines["t1"][-1] == "3.0 GiB: fits RTX 3090 24 GB"


def test_runs_written_interleaved_by_sweeps_side_by_side_render_table_by_table(tmp_path):
    from reports.readme import smoke_block

    shown = {"clip": "8x224x224", "reduced": [], "batch": 4, "paper_batch": 4}
    written = [_smoke(table, row, 1, **shown) for table, row in (("t2", "a"), ("t1", "a"), ("t2", "b"), ("t1", "b"))]
    (tmp_path / "smoke_cuda.json").write_text(json.dumps({"records": written}))
    rows = [[c.strip() for c in line.split("|")[1:3]] for line in smoke_block(tmp_path).splitlines()
            if line.startswith(("| t1", "| t2"))]
    assert rows == [["t2", "a / K-400"], ["t2", "b / K-400"], ["t1", "a / K-400"], ["t1", "b / K-400"]]


def test_a_step_record_renders_each_variant_with_its_ratio_kernels_and_memory(tmp_path):
    from reports.readme import trajectory_step_block

    record = {"device_name": "GPU X", "precision": "bf16 autocast", "torch": "2.0", "command": "python -m x",
              "commit": "abcdef0123", "measured_at": "2026-01-01", "records": [
                  {"variant": "joint", "compiled": False, "step_ms": 40.0, "over_joint_eager": 1.0, "peak_gib": 5.0,
                   "profile": {"kernels_per_step": 1000.0, "per_step_ms": 39.96}},
                  {"variant": "exact_stage_one", "compiled": True, "step_ms": 60.04, "over_joint_eager": 1.501,
                   "peak_gib": 8.04},
                  {"variant": "exact", "compiled": False, "error": "out of memory"}]}
    (tmp_path / "trajectory_step_cuda_stages.json").write_text(json.dumps(record))
    block = trajectory_step_block("trajectory-step", tmp_path)
    rows = [[c.strip() for c in line.split("|")[1:-1]] for line in block.splitlines()
            if line.startswith("| ") and not line.startswith("| variant")]
    assert rows == [["joint", "40.0", "1.00", "1000", "40.0", "5.0"],
                    ["stage one alone (Avg_T), compiled blocks", "60.0", "1.50", "—", "—", "8.0"],
                    ["exact, one frame a pass (the memory cells')", "—", "—", "—", "—", "—"]]
    assert "GPU X, bf16 autocast, torch 2.0: `python -m x`" in block
    assert "commit abcdef0, 2026-01-01" in block
    assert block.startswith("| variant") and block.endswith("commit abcdef0, 2026-01-01)")


def test_a_step_record_without_a_profile_shows_no_profile_columns(tmp_path):
    from reports.readme import trajectory_step_block

    record = {"device_name": "GPU X", "precision": "bf16 autocast", "torch": "2.0", "command": "python -m x",
              "commit": "abcdef0123", "measured_at": "2026-01-01", "records": [
                  {"variant": "joint", "compiled": False, "step_ms": 40.0, "over_joint_eager": 1.0, "peak_gib": 5.0},
                  {"variant": "exact_one_pass", "compiled": True, "step_ms": 80.0, "over_joint_eager": 2.0}]}
    (tmp_path / "trajectory_step_cuda_compiled.json").write_text(json.dumps(record))
    block = trajectory_step_block("trajectory-step-compiled", tmp_path)
    assert "| variant" in block and "kernels per step" not in block and "GPU busy" not in block
    assert any(line.startswith("| exact, one pass, compiled blocks ") for line in block.splitlines())


def test_gpu_coverage_counts_every_paper_run_and_names_the_tables_not_stepped(tmp_path):
    from experiments.harness.spec import implemented_tables
    from reports.readme import gpu_coverage, gpu_coverage_block
    from tools.smoke.runs import smoke_configs

    first, second = smoke_configs("mformer_table7")
    records = [_smoke("mformer_table7", first.row, 1, column=first.column, device_name="GPU A"),
               _smoke("mformer_table7", second.row, 1, status="fail", column=second.column, device_name="GPU B"),
               _smoke("mformer_table4", "joint", 7, device_name="GPU A")]  # a shrunk run is not the paper shape's
    (tmp_path / "smoke_cuda.json").write_text(json.dumps({"records": records}))
    total = sum(len(smoke_configs(table)) for table in implemented_tables())
    table4 = len(smoke_configs("mformer_table4"))

    coverage = gpu_coverage(tmp_path)
    assert coverage["devices"] == ["GPU A", "GPU B"]
    assert (coverage["runs"], coverage["stepped"], coverage["passed"]) == (total, 2, 1)
    assert (coverage["stepped_tables"], coverage["full_tables"]) == (1, 1)
    assert "mformer_table7" not in coverage["missing"] and coverage["missing"]["mformer_table4"] == (table4, table4)

    text = " ".join(gpu_coverage_block(tmp_path).splitlines())
    assert text.startswith(f"**Stepped on a GPU to a verdict** (GPU A and GPU B; `{tmp_path / 'smoke_cuda.json'}`")
    assert f": 2 of the {total} runs" in text and "in 1 tables (1 with every run stepped); 1 pass, 1 fail." in text
    assert f"not verified on a GPU:** {total - 2} runs (not yet stepped): " in text
    assert f"mformer_table4 ({table4} of {table4})" in text and "mformer_table7 (" not in text


SHARED = ["device shared with 9 other process(es): times are upper bounds"]
OOM = "models/cast/experts.py:124: OutOfMemoryError: CUDA out of memory. Tried to allocate 14.00 MiB."


def test_a_run_out_of_device_memory_beside_other_processes_is_no_verdict(tmp_path):
    from reports.readme import gpu_coverage, gpu_coverage_block, smoke_block
    from tools.smoke.runs import smoke_configs

    first, second = smoke_configs("mformer_table7")
    shown = {"clip": "8x224x224", "batch": 4, "paper_batch": 4, "device_name": "GPU A"}
    crowded = _smoke("mformer_table7", second.row, 1, status="fail", column=second.column, reduced=SHARED, error=OOM,
                     **shown)
    records = [_smoke("mformer_table7", first.row, 1, column=first.column, reduced=[], **shown), crowded]
    (tmp_path / "smoke_cuda.json").write_text(json.dumps({"records": records}))
    coverage = gpu_coverage(tmp_path)
    assert (coverage["stepped"], coverage["passed"], coverage["crowded"]) == (1, 1, 1)
    assert coverage["missing"]["mformer_table7"] == (1, 2)
    text = " ".join(gpu_coverage_block(tmp_path).splitlines())
    assert "; 1 pass, 0 fail." in text and "out of device memory beside other processes of the sweep)" in text
    block = smoke_block(tmp_path)
    assert "1 of 2 runs of 1 table(s) pass; 1 ran out of device memory beside other processes" in block
    assert "| no verdict: out of device memory beside 9 other processes |" in block
    # alone on the device, the same error is a verdict: the run does not fit
    records[1] = {**crowded, "reduced": []}
    (tmp_path / "smoke_cuda.json").write_text(json.dumps({"records": records}))
    assert (gpu_coverage(tmp_path)["stepped"], gpu_coverage(tmp_path)["crowded"]) == (2, 0)


def test_a_sweep_summary_names_a_real_failure_before_one_of_crowding(tmp_path):
    from reports.readme import smoke_summary

    rows = [_smoke("t1", "a", 1, status="fail", reduced=SHARED, error=OOM), _smoke("t1", "b", 1, status="fail"),
            _smoke("t2", "a", 1, status="fail", reduced=SHARED, error=OOM)]
    lines = {line.split("|")[1].strip(): line.split("|")[5].strip() for line in smoke_summary(rows).splitlines()[2:]}
    assert lines == {"t1": "b / K-400: models/x.py:1: ValueError: too few tokens",
                     "t2": "a / K-400: no verdict, out of device memory beside 9 other processes"}


def test_each_device_block_names_the_files_its_runs_read_and_both_shapes_of_a_changed_dataset(tmp_path):
    from reports.readme import smoke_block

    def data(width, height):
        return {"shape": {"width": width, "height": height, "fps": 50, "seconds": 3.0, "what": "x"}}

    shown = {"clip": "8x224x224", "reduced": [], "batch": 4, "paper_batch": 4}
    written = [_smoke("t1", "a", 1, dataset="epic", data=data(1920, 1080), **shown),
               _smoke("t1", "b", 1, dataset="epic", data=data(456, 256), **shown),
               _smoke("t2", "a", 1, dataset="epic", data=data(456, 256), **shown),
               _smoke("t3", "a", 1, dataset="lra", data={"what": "LRA release layout"}, **shown)]
    (tmp_path / "smoke_cuda.json").write_text(json.dumps({"records": written}))
    assert ("Files read, as written for these runs: epic 1920×1080 at 50 fps (1 run), 456×256 at 50 fps (2 runs)."
            in smoke_block(tmp_path).splitlines())
