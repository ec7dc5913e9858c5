"""The report builder's numbers and labels against values written out by hand: the mean of the raw seed values (not
of rounded ones), the rounding ``ours`` gives the comparison table, the device a cell names for multi-process and
GPU runs, the dirty marker of a commit, chance levels ordered by class count, per-scale tracked/local counts in the
header, and the generated tiny-results page: ``python -m reports readme --check`` refusing a stale page without
writing it, and a results line naming every seed count, device and dataset of its rows."""

from __future__ import annotations

import json

from reports.build import REPORTS_DIR, build_report, ours, short_commit
from reports.cells import device_label
from reports.chance import chance_level
from tests.reports.test_cells_reference import GPU_RUN, record, row_cells, write_local
from tests.reports.test_tracked_results import write_tracked


def test_a_cells_mean_is_over_the_raw_seed_values(tmp_path):
    """10.04, 10.04, 10.14: mean 10.0733 shown 10.1 (rounding each seed first gives 10.0333, shown 10.0); sample std
    √(0.00667/2) = 0.058 shown 0.1 (population std 0.047 would show 0.0)."""
    runs = tmp_path / "runs"
    for seed, top1 in enumerate((10.04, 10.04, 10.14)):
        write_local(runs, record("mformer_table4", "joint", "K-400", seed, top1))
    text = build_report("mformer_table4", runs_root=runs, out_dir=tmp_path, index=False).read_text()
    assert row_cells(text, "Joint Space-Time")[-2] == "10.1 ± 0.1 (n=3; tiny, synth_objects, CPU) · paper 79.2"


def test_ours_rounds_means_to_four_digits_and_static_values_to_two_past_their_column(tmp_path):
    """`python -m experiments compare` reads ``ours``: (60.123456 + 60.2) / 2 = 60.161728 -> 60.1617; the GFLOPS
    column shows 1 digit, so its stored 180.123456 is kept to 3: 180.123."""
    runs = tmp_path / "runs"
    write_local(runs, record("mformer_table4", "joint", "SSv2", 0, 60.123456))
    write_local(runs, record("mformer_table4", "joint", "SSv2", 1, 60.2))
    static = json.loads((REPORTS_DIR / "results" / "mformer_table4" / "static.json").read_text())
    static["cells"]["joint"]["GFLOPS"]["value"] = 180.123456
    (runs / "mformer_table4" / "static.json").write_text(json.dumps(static))
    joint = ours("mformer_table4", scale="tiny", runs_root=runs)[0]
    assert joint["SSv2"] == 60.1617 and joint["GFLOPS"] == 180.123 and joint["K-400"] is None


def test_a_cells_device_names_processes_and_the_gpu_without_its_vendor():
    assert device_label({"accelerator": "CPUAccelerator", "world_size": 2, "devices": ["AMD EPYC"]}) == (
        "2 CPU processes")
    assert device_label({"accelerator": "CPUAccelerator", "world_size": 1, "devices": ["AMD EPYC"]}) == "CPU"
    assert device_label({"accelerator": None, "world_size": 1, "devices": ["AMD EPYC"]}) == "CPU"  # eval-only record
    assert device_label({"accelerator": "CUDAAccelerator", "world_size": 8,
                         "devices": ["NVIDIA H100 80GB HBM3"]}) == "8 × H100 80GB HBM3"
    assert device_label({}) == device_label(None) == "device not recorded"


def test_a_short_commit_keeps_the_dirty_marker():
    """Numbers from uncommitted code must say so: 12 hex digits, then '-dirty'."""
    assert short_commit("0123456789abcdef0123456789abcdef01234567-dirty") == "0123456789ab-dirty"
    assert short_commit("0123456789abcdef0123456789abcdef01234567") == "0123456789ab"


def test_chance_phrases_are_ordered_by_class_count_not_as_text():
    """6 classes before 10 (as text, "10" sorts first)."""
    assert chance_level([{"data": {"num_classes": 10}}, {"data": {"num_classes": 6}}]) == (
        " Chance with 6 classes: top-1 16.7%, top-5 83.3%; with 10 classes: top-1 10.0%, top-5 50.0%.")


def test_each_scales_header_counts_its_own_tracked_and_local_runs(tmp_path):
    """Tiny: seed 0 tracked, seed 1 local; paper: one local run. Each scale's line counts only its runs."""
    runs, results = tmp_path / "runs", tmp_path / "results"
    write_tracked(results, record("mformer_table4", "joint", "K-400", 0, 60.0))
    write_local(runs, record("mformer_table4", "joint", "K-400", 1, 62.0))
    write_local(runs, {**record("mformer_table4", "joint", "K-400", 3, 90.0, scale="paper"),
                       "dataset": "kinetics400", "data": {"dataset": "kinetics400", "synthetic": False},
                       "git_commit": "0123456789abcdef-dirty"})
    text = build_report("mformer_table4", runs_root=runs, out_dir=tmp_path, results_root=results,
                        index=False).read_text()
    tiny, paper = text.split("**Scale: paper**")
    assert f"- Runs found: 2 (seeds [0, 1]; commits {'c' * 12}): 1 tracked in `reports/results/`, 1 local." in tiny
    assert ("- Runs found: 1 (seeds [3]; commits 0123456789ab-dirty): 0 tracked in `reports/results/`, 1 local."
            in paper)


def stale_readme(tmp_path, monkeypatch):
    """A copy of reports/generated/tiny_results.md whose first results cell has one digit changed (same length), as
    ``reports.readme``'s ``TINY_RESULTS``; returns its path and text."""
    from reports import readme

    text = readme.TINY_RESULTS.read_text()
    first = text.index(" ± ") + 3  # the first spread's leading digit
    stale = text[:first] + ("1" if text[first] != "1" else "2") + text[first + 1:]
    assert stale != text and len(stale) == len(text)
    path = tmp_path / "tiny_results.md"
    path.write_text(stale)
    monkeypatch.setattr(readme, "TINY_RESULTS", path)
    only = {path: readme.generated_pages()[path]}  # the repository's own pages stay as they are
    monkeypatch.setattr(readme, "generated_pages", lambda: only)
    return path, stale


def test_readme_check_fails_on_a_stale_page_and_writes_nothing(tmp_path, monkeypatch, capsys):
    from reports.__main__ import main
    from reports.readme import rewrite_generated_pages

    path, stale = stale_readme(tmp_path, monkeypatch)
    assert main(["readme", "--check"]) == 1
    assert path.read_text() == stale  # --check writes nothing
    assert f"{path}: the generated page differs from the records" in capsys.readouterr().err
    assert rewrite_generated_pages(write=False)[path] is True and path.read_text() == stale
    assert rewrite_generated_pages()[path] is True and path.read_text() != stale  # the rewrite restores the page
    assert rewrite_generated_pages(write=False)[path] is False  # and writing again changes nothing


def test_the_readme_results_line_names_every_seed_count_and_device_of_its_rows(tmp_path):
    """Joint 60, 62, 64 on a CPU (62.0 ± 2.0, n=3) and divided 50 on four GPUs (n=1, no spread): one K-400 line whose
    seeds are 1/3 and whose devices are both, not the first row's or the largest count only."""
    from reports.readme import results_block

    results = tmp_path / "results"
    for seed, top1 in enumerate((60.0, 62.0, 64.0)):
        write_tracked(results, record("mformer_table4", "joint", "K-400", seed, top1))
    write_tracked(results, record("mformer_table4", "divided", "K-400", 0, 50.0, provenance=GPU_RUN))
    results_table = results_block(results).split("\n\n")[0]  # the costs table follows after a blank line
    lines = [line for line in results_table.splitlines() if line.startswith("| [mformer_table4]")]
    assert [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in lines] == [[
        "[mformer_table4](mformer_table4.md)", "Table 4", "K-400 (`synth_objects`)",
        "4 × H100 80GB HBM3 / CPU", "1/3", "Joint Space-Time 62.0 ± 2.0; Divided Space-Time 50.0"]]


def test_a_readme_results_line_whose_rows_trained_on_other_data_names_each_rows_data(tmp_path):
    """Table 8's rows are datasets: its K-400 row trains on `synth_objects`, its SSv2 row on `synth_motion_pairs`. The
    line must not put the SSv2 row's number under the first row's data."""
    from reports.readme import results_block

    results = tmp_path / "results"
    write_tracked(results, {**record("mformer_table8", "k400", "K-400", 0, 60.0), "column": "mformer"})
    write_tracked(results, {**record("mformer_table8", "ssv2", "SSv2", 0, 40.0), "column": "mformer"})
    results_table = results_block(results).split("\n\n")[0]
    lines = [line for line in results_table.splitlines() if line.startswith("| [mformer_table8]")]
    assert [[cell.strip() for cell in line.strip().strip("|").split("|")][2:] for line in lines] == [[
        "Top-1 accuracy (8 frames) (`synth_objects` / `synth_motion_pairs`)", "CPU", "1",
        "Kinetics-400 column data 60.0 (`synth_objects`); "
        "Something-Something V2 column data 40.0 (`synth_motion_pairs`)"]]
