"""Reports are rebuilt from flat records only: paper layout, mean ± std over seeds, scale tags, missing = '—'."""

import json
import shutil
from pathlib import Path

import pytest

from experiments.harness.run_dir import RunDir
from experiments.harness.spec import table_spec
from experiments.harness.static import compute_static
from experiments.paper_tables import paper_tables
from reports.__main__ import main as reports_main
from reports.build import build_report, load_records, ours

CPU_RUN = {"accelerator": "CPUAccelerator", "world_size": 1, "devices": ["AMD EPYC"], "precision": "32-true",
           "batch": {"global_batch": 16, "paper_global_batch": None},
           "cpu_kernels": {"capability": "AVX512", "switches": {}}}


def write_record(runs: Path, row: str, column: str, seed: int, top1: float, scale: str = "tiny",
                 provenance: dict = CPU_RUN, dataset: str | None = None) -> None:
    dataset = dataset or {"K-400": "synth_appearance", "SSv2": "synth_motion"}[column]
    d = runs / "mformer_table4" / row / f"seed{seed}" / f"{scale}-{column.lower().replace('-', '_')}"
    d.mkdir(parents=True, exist_ok=True)
    (d / "metrics.json").write_text(json.dumps({
        "table": "mformer_table4", "row": row, "column": column, "seed": seed, "scale": scale,
        "dataset": dataset, "metrics": {"top1": top1, "loss": 1.0}, "git_commit": "abc123",
        "provenance": provenance,
    }))


@pytest.fixture(scope="module")
def computed_static(tmp_path_factory) -> Path:
    """A runs folder holding the static records of Motionformer's Tables 4, 3a and 1, computed once (seconds each):
    a test copies it (``static_runs``) and computes again only where the second computation is what it checks."""
    runs = tmp_path_factory.mktemp("static") / "runs"
    for table_id in ("mformer_table4", "mformer_table3a", "mformer_table1"):
        compute_static(table_spec(table_id), runs, echo=lambda _: None)
    return runs


def static_runs(tmp_path: Path, computed: Path) -> Path:
    """The test's own copy of ``computed_static``: ``tmp_path/runs``."""
    return Path(shutil.copytree(computed, tmp_path / "runs"))


def test_report_in_paper_layout_with_seeds_and_missing_rows(tmp_path, computed_static):
    runs = static_runs(tmp_path, computed_static)
    write_record(runs, "joint", "K-400", 0, 70.0)
    write_record(runs, "joint", "K-400", 1, 74.0)
    write_record(runs, "traj_attT_normS", "K-400", 0, 80.0)
    write_record(runs, "divided", "K-400", 0, 60.0)
    text = build_report("mformer_table4", runs_root=runs, out_dir=tmp_path).read_text()
    header = next(line for line in text.splitlines() if line.startswith("| Attention"))
    assert [c.strip() for c in header.strip("|").split("|")] == [
        "Attention", "Att_T", "Avg_T", "Norm_S", "Norm_ST", "GFLOPS", "K-400", "SSv2"]
    body = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert [line.split("|")[1].strip() for line in body] == [
        "Joint Space-Time", "Divided Space-Time", "Trajectory", "Trajectory", "Trajectory"]  # paper row order
    assert "72.0 ± 2.8 (n=2; tiny, synth_appearance, CPU) · paper 79.2" in body[0]
    assert "— · paper 64.0" in body[0]  # SSv2 never ran: a dash beside the paper's number
    assert "(computed) · paper 180.6" in body[0]
    assert "NOT comparable" in text and "synth_motion" in text
    assert "- K-400: +1.00 over 3 rows" in text  # ours 72 > 60, 80 > 72: same order as the paper's rows
    assert (tmp_path / "README.md").exists()


def test_ours_is_the_mean_over_seeds(tmp_path):
    write_record(tmp_path, "joint", "SSv2", 0, 30.0)
    write_record(tmp_path, "joint", "SSv2", 1, 40.0)
    write_record(tmp_path, "joint", "SSv2", 0, 99.0, scale="paper")
    rows = ours("mformer_table4", scale="tiny", runs_root=tmp_path)
    assert rows[0]["SSv2"] == 35.0 and rows[0]["K-400"] is None and rows[1]["SSv2"] is None
    assert ours("mformer_table4", scale="paper", runs_root=tmp_path)[0]["SSv2"] == 99.0


def test_build_without_runs_does_not_crash(tmp_path):
    path = build_report("mformer_table4", runs_root=tmp_path / "none", out_dir=tmp_path)
    assert "— · paper 79.7" in path.read_text()
    assert "— (not computed: `python -m experiments static mformer_table4`) · paper 180.6" in path.read_text()


def test_reports_only_read_records_and_never_build_a_model(tmp_path, monkeypatch, computed_static):
    """Static cells come from the record written when the table ran; building a report builds nothing."""
    runs = static_runs(tmp_path, computed_static)

    def no_models(*args, **kwargs):
        raise AssertionError("a report built a model")

    monkeypatch.setattr("models.registry.create_model", no_models)
    monkeypatch.setattr("models.create_model", no_models)
    table4 = build_report("mformer_table4", runs_root=runs, out_dir=tmp_path).read_text()
    assert "369.4 (computed; 216.5 as we compute it) · paper 369.5" in table4
    table3a = build_report("mformer_table3a", runs_root=runs, out_dir=tmp_path).read_text()
    assert "needs GPU; activations" in table3a and "1.00×" in table3a
    table1 = build_report("mformer_table1", runs_root=runs, out_dir=tmp_path).read_text()
    assert "| Trajectory" in table1 and "Cubic" in table1


def _measured_exact_cell(runs, table="mformer_table3a"):
    """Mark the exact row's memory cell of a freshly computed record as measured on a GPU; returns the record."""
    import json

    path = runs / table / "static.json"
    record = json.loads(path.read_text())
    record["cells"]["exact"]["Mem."].update(value=7.0, text="7.0 GB (measured, batch 4, NVIDIA H100)",
                                            source="measured on NVIDIA H100")
    path.write_text(json.dumps(record))
    return record


def test_a_measured_static_cell_survives_a_later_run_without_gpu(tmp_path, computed_static):
    import json

    runs = static_runs(tmp_path, computed_static)
    path = runs / "mformer_table3a" / "static.json"
    _measured_exact_cell(runs)
    compute_static(table_spec("mformer_table3a"), runs, echo=lambda _: None)  # this machine has no GPU
    cells = json.loads(path.read_text())["cells"]
    assert cells["exact"]["Mem."]["source"] == "measured on NVIDIA H100"
    assert cells["performer"]["Mem."]["source"] == "needs GPU"
    report = build_report("mformer_table3a", runs_root=runs, out_dir=tmp_path).read_text()
    assert "7.0 GB (measured, batch 4, NVIDIA H100) · paper 7.4" in report


def test_tracking_a_record_computed_without_gpu_keeps_the_tracked_measurement(tmp_path, computed_static):
    import json

    from reports.records import track

    runs, results = static_runs(tmp_path, computed_static), tmp_path / "results"
    spec = table_spec("mformer_table3a")
    _measured_exact_cell(runs)
    track(spec, runs, results)
    (runs / "mformer_table3a" / "static.json").unlink()  # a fresh clone: no local record to keep it from
    compute_static(spec, runs, echo=lambda _: None)
    track(spec, runs, results)
    cells = json.loads((results / "mformer_table3a" / "static.json").read_text())["cells"]
    assert cells["exact"]["Mem."]["text"] == "7.0 GB (measured, batch 4, NVIDIA H100)"
    assert cells["performer"]["Mem."]["source"] == "needs GPU"


def test_a_static_cell_made_for_another_configuration_says_what_changed(tmp_path, computed_static):
    import json

    from experiments.harness.static import inputs_key

    runs = static_runs(tmp_path, computed_static)
    record = _measured_exact_cell(runs)
    report = build_report("mformer_table3a", runs_root=runs, out_dir=tmp_path).read_text()
    assert "7.0 GB (measured, batch 4, NVIDIA H100) · paper 7.4" in report and "⚠" not in report

    exact = record["cells"]["exact"]["Mem."]
    older = {**record["configurations"][exact["configuration"]], "drop_path_rate": 0.0}
    record["configurations"][inputs_key(older)] = older
    exact["configuration"] = inputs_key(older)
    (runs / "mformer_table3a" / "static.json").write_text(json.dumps(record))
    report = build_report("mformer_table3a", runs_root=runs, out_dir=tmp_path).read_text()
    assert ("7.0 GB (measured, batch 4, NVIDIA H100) ⚠ measured for another configuration: drop_path_rate 0.0 → 0.2; "
            "`python -m experiments static mformer_table3a` on such a device makes it again · paper 7.4") in report

    del exact["configuration"]  # a record written before cells kept their configuration
    (runs / "mformer_table3a" / "static.json").write_text(json.dumps(record))
    report = build_report("mformer_table3a", runs_root=runs, out_dir=tmp_path).read_text()
    assert "⚠ measured before static records kept their configuration" in report


def test_corrupt_record_is_named(tmp_path):
    bad = tmp_path / "mformer_table4" / "joint" / "seed0" / "tiny-k_400"
    bad.mkdir(parents=True)
    (bad / "metrics.json").write_text("{not json")
    with pytest.raises(ValueError, match="tiny-k_400/metrics.json"):
        load_records("mformer_table4", tmp_path)


def test_cli_builds_every_table_and_the_index(tmp_path):
    assert reports_main(["build", "--runs-dir", str(tmp_path / "runs"), "--out-dir", str(tmp_path)]) == 0
    assert len(list(tmp_path.glob("*_*.md"))) == len(paper_tables())  # one report per table of the inventory
    index = (tmp_path / "README.md").read_text()
    assert "| mformer_table4 " in index and "implemented" in index
    assert reports_main(["build", "nope"]) == 2


def test_a_column_the_paper_lacks_follows_its_columns_marked_as_ours(tmp_path, monkeypatch):
    """A spec may add a control column (here Table 4 with a motion-set column renamed out of the paper's layout):
    it is shown after the paper's columns, marked, with no 'paper' value and no rank line."""
    import dataclasses

    from experiments.harness import spec as spec_module
    from experiments.harness.spec import MetricColumn

    base = table_spec("mformer_table4")
    extra = MetricColumn("motion control", dataset="SSv2", run="SSv2")
    patched = dataclasses.replace(base, metric_columns=(base.metric_columns[0], extra), static_columns=())
    monkeypatch.setitem(spec_module._TABLE_SPECS, "mformer_table4", lambda: patched)
    runs = tmp_path / "runs"
    write_record(runs, "joint", "SSv2", 0, 40.0)
    text = build_report("mformer_table4", runs_root=runs, out_dir=tmp_path).read_text()
    header = next(line for line in text.splitlines() if line.startswith("| Attention"))
    assert [c.strip() for c in header.strip("|").split("|")][-2:] == ["SSv2", "motion control †"]
    joint = next(line for line in text.splitlines() if line.startswith("| Joint"))
    assert joint.rstrip(" |").endswith("40.0 (n=1; tiny, synth_motion, CPU)")
    assert "† Not in the paper's table" in text and "- motion control:" not in text


def test_every_cell_names_its_device_and_the_header_how_the_runs_trained(tmp_path):
    """Scale, data and device in each cell; devices, precision and global batch (against the paper's) in the
    header, per value with a count where the runs differ."""
    runs = tmp_path / "runs"
    gpus = {"accelerator": "CUDAAccelerator", "world_size": 8, "devices": ["NVIDIA H100 80GB HBM3"],
            "precision": "bf16-mixed", "batch": {"global_batch": 64, "paper_global_batch": 64}}
    write_record(runs, "joint", "K-400", 0, 70.0)
    write_record(runs, "joint", "K-400", 1, 72.0, provenance=gpus)
    write_record(runs, "divided", "K-400", 0, 60.0, provenance=gpus)
    write_record(runs, "divided", "SSv2", 0, 50.0, provenance={})  # written before provenance existed
    write_record(runs, "traj_attT_normS", "K-400", 0, 65.0, provenance={**CPU_RUN, "accelerator": None})  # tested only
    text = build_report("mformer_table4", runs_root=runs, out_dir=tmp_path).read_text()
    joint = next(line for line in text.splitlines() if line.startswith("| Joint"))
    divided = next(line for line in text.splitlines() if line.startswith("| Divided"))
    assert "71.0 ± 1.4 (n=2; tiny, synth_appearance, 8 × H100 80GB HBM3 / CPU)" in joint
    assert "60.0 (n=1; tiny, synth_appearance, 8 × H100 80GB HBM3)" in divided
    assert "50.0 (n=1; tiny, synth_motion, device not recorded)" in divided
    assert "65.0 (n=1; tiny, synth_appearance, CPU)" in text
    assert ("- Ran on: devices 1 × AMD EPYC (2 runs) / 8 × NVIDIA H100 80GB HBM3 (2 runs) / not recorded (1 runs); "
            "CPU kernels AVX512 (2 runs) / not recorded (3 runs); "
            "precision 32-true (2 runs) / bf16-mixed (2 runs) / not recorded (1 runs); global batch 16 (2 runs) / "
            "64 (2 runs) / not recorded (1 runs) (the paper's global batch: 64 / not stated).") in text
    single = tmp_path / "single"
    write_record(single, "joint", "K-400", 0, 70.0)
    report = build_report("mformer_table4", runs_root=single, out_dir=tmp_path).read_text()
    assert ("- Ran on: devices 1 × AMD EPYC; CPU kernels AVX512; precision 32-true; global batch 16 (the paper's "
            "global batch: not stated).") in report
    # kernels chosen by a switch say which (their float rounding differs from the machine's own)
    forced = tmp_path / "forced"
    write_record(forced, "joint", "K-400", 0, 70.0, provenance={
        **CPU_RUN, "cpu_kernels": {"capability": "AVX2", "switches": {"ATEN_CPU_CAPABILITY": "avx2"}}})
    assert "CPU kernels AVX2 (ATEN_CPU_CAPABILITY=avx2);" in build_report("mformer_table4", runs_root=forced,
                                                                         out_dir=tmp_path).read_text()


def test_a_cell_computed_on_part_of_its_split_says_so_in_the_header(tmp_path):
    runs = tmp_path / "runs"
    write_record(runs, "joint", "K-400", 0, 70.0)
    write_record(runs, "divided", "K-400", 0, 60.0)
    path = runs / "mformer_table4" / "divided" / "seed0" / "tiny-k_400" / "metrics.json"
    record = json.loads(path.read_text())
    record["data_report"] = {
        "train": {"bad_annotation_lines": [{"file": "train.csv", "line": 3, "reason": "no label"}] * 15,
                  "missing": [], "corrupt": [], "skipped_at_train": 2, "skipped_at_test": 0},
        "val": {"bad_annotation_lines": [], "missing": ["a.mp4", "b.mp4", "c.mp4", "d.mp4"], "corrupt": [],
                "skipped_at_train": 0, "skipped_at_test": 0}}
    path.write_text(json.dumps(record))
    text = build_report("mformer_table4", runs_root=runs, out_dir=tmp_path).read_text()
    assert ("- Data left out (these cells' numbers come from part of their splits; each run's `metrics.json` lists "
            "the files): divided · K-400: seed 0 (train: 15 bad annotation lines, 2 clips skipped in training; "
            "val: 4 missing videos).") in text
    assert "joint · K-400" not in text


def test_the_header_gives_chance_from_the_classes_the_runs_recorded():
    """Top-5 of 6 classes is 83.3% by guessing, so a top-5 cell near 100 says little: each data line states the
    chance levels of the class counts its runs recorded (data.num_classes), one phrase per distinct count."""
    from reports.chance import chance_level

    def run(classes):
        return {"data": {"num_classes": classes}}

    assert chance_level([run(6), run(6)]) == " Chance with 6 classes: top-1 16.7%, top-5 83.3%."
    assert chance_level([run(400)]) == " Chance with 400 classes: top-1 0.2%, top-5 1.2%."
    assert chance_level([run(3)]) == " Chance with 3 classes: top-1 33.3%, top-5 100.0%."
    assert chance_level([run({"verb": 6, "noun": 5})]) == (
        " Chance with 6 verbs, 5 nouns: top-1 verb 16.7%, noun 20.0%, action 3.3%; top-5 verb 83.3%, action 16.7%.")
    assert chance_level([run(8), run(6)]) == (
        " Chance with 6 classes: top-1 16.7%, top-5 83.3%; with 8 classes: top-1 12.5%, top-5 62.5%.")
    assert chance_level([{"data": {}}]) == "" and chance_level([]) == ""


def test_a_missing_cell_needs_data_only_where_no_run_read_its_dataset(tmp_path):
    """`--rows joint` on a data root holding both datasets: the other rows were not run, their data is there (the
    joint row read it), so their cells say '—'; a dataset no run read still says 'needs data'."""
    runs = tmp_path / "runs"
    write_record(runs, "joint", "K-400", 0, 70.0, scale="paper", dataset="kinetics400")
    text = build_report("mformer_table4", runs_root=runs, out_dir=tmp_path).read_text()
    joint = next(line for line in text.splitlines() if line.startswith("| Joint"))
    divided = next(line for line in text.splitlines() if line.startswith("| Divided"))
    assert "70.0 (n=1; paper, kinetics400, CPU) · paper 79.2" in joint
    assert "— · paper 78.5" in divided and "needs data (`kinetics400`)" not in text
    assert "needs data (`ssv2`) · paper 64.0" in joint and "needs data (`ssv2`) · paper 64.2" in divided


def write_listops_record(runs: Path, row: str, top1: float, scale: str, data_root: Path) -> None:
    """A Table 5 ListOps record as the runner writes it, from the configuration ``--data-root data_root`` resolves
    to: the LRA release when ``data_root`` holds ``lra_listops/``, else a generated set (``data.synthetic``)."""
    cfg = table_spec("mformer_table5").resolve(table_spec("mformer_table5").row(row), "ListOps", scale, 0, data_root)
    d = RunDir.of(cfg, runs).path
    d.mkdir(parents=True)
    (d / "metrics.json").write_text(json.dumps({
        "table": cfg.table, "row": cfg.row, "column": cfg.column, "seed": 0, "scale": scale,
        "dataset": cfg.data.dataset, "data": {"dataset": cfg.data.dataset, "synthetic": cfg.data.root is None},
        "metrics": {"top1": top1}, "config": cfg.to_dict(), "git_commit": "abc123", "provenance": CPU_RUN}))


def test_listops_cells_say_whether_they_ran_on_the_release_or_on_generated_data(tmp_path):
    """At paper scale ListOps reads the LRA release under --data-root, or is generated locally when it is absent:
    each cell names which, and the header says which cells are which. Tiny scale's set (its size in the spec)
    is named as before: its scale says it is generated."""
    release, absent = tmp_path / "release", tmp_path / "absent"
    (release / "lra_listops").mkdir(parents=True)
    absent.mkdir()
    runs = tmp_path / "runs"
    write_listops_record(runs, "exact", 36.0, "paper", absent)
    write_listops_record(runs, "performer", 35.0, "paper", release)
    write_listops_record(runs, "exact", 30.0, "tiny", release)
    text = build_report("mformer_table5", runs_root=runs, out_dir=tmp_path).read_text()
    exact, performer = (next(line for line in text.split("**Scale: paper**")[1].splitlines()
                             if line.startswith(f"| {name}")) for name in ("Exact", "Performer"))
    assert "36.0 (n=1; paper, lra_listops generated locally, CPU) · paper 36.69" in exact
    assert "35.0 (n=1; paper, lra_listops, CPU) · paper 36.69" in performer
    assert ("- **ListOps** results come from `lra_listops`: the real dataset, except in exact · ListOps: generated "
            "locally with the benchmark's own generator.") in text
    assert "30.0 (n=1; tiny, lra_listops, CPU) · paper 36.69" in text
    tiny_header = text.split("**Scale: tiny**")[1].split("**Scale:")[0]
    assert "- **ListOps** results come from `lra_listops`, generated locally with the benchmark's own " in tiny_header

    generated_only = tmp_path / "generated_only"
    write_listops_record(generated_only, "exact", 36.0, "paper", absent)
    text = build_report("mformer_table5", runs_root=generated_only, out_dir=tmp_path).read_text()
    assert "- **ListOps** results come from `lra_listops`, generated locally with the benchmark's own " in text
    release_only = tmp_path / "release_only"
    write_listops_record(release_only, "exact", 36.0, "paper", release)
    text = build_report("mformer_table5", runs_root=release_only, out_dir=tmp_path).read_text()
    assert "- **ListOps** results come from `lra_listops` (the real dataset)." in text
