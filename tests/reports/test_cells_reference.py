"""Report cells against hand-computed numbers: which records a cell collects (its own scale, table and configuration,
one record a seed, the newest), mean ± sample std over seeds and its rounding, the scale / data / device each cell
names, the chance level of each column's own data, `needs data` only where no run of the cell's scale read its data,
and the static cell that wins. Every expected value below is written out by hand, never computed by the code."""

from __future__ import annotations

import json
from pathlib import Path

from experiments.harness.plan import resolve_runs
from experiments.harness.spec import column_slug, table_spec
from reports import statistics
from reports.build import REPORTS_DIR, build_report
from reports.cells import Cell
from reports.records import table_records
from tests.reports.test_tracked_results import write_tracked

CPU_RUN = {"accelerator": "CPUAccelerator", "world_size": 1, "devices": ["AMD EPYC"], "precision": "32-true",
           "batch": {"global_batch": 16, "paper_global_batch": None}}
GPU_RUN = {"accelerator": "CUDAAccelerator", "world_size": 4, "devices": ["NVIDIA H100 80GB HBM3"],
           "precision": "bf16-mixed", "batch": {"global_batch": 64, "paper_global_batch": 64}}
# The tiny stand-ins that the Motionformer tables used here read.
TINY_DATA = {"K-400": ("synth_objects", 40), "SSv2": ("synth_motion_pairs", 12)}


def record(table: str, row: str, column: str, seed: int, top1: float, scale: str = "tiny", **extra) -> dict:
    """A record in the shape the runner writes (no configuration: it fills its own cell only)."""
    dataset, classes = TINY_DATA[column]
    return {"table": table, "row": row, "column": column, "seed": seed, "scale": scale, "dataset": dataset,
            "data": {"dataset": dataset, "synthetic": True, "num_classes": classes}, "metrics": {"top1": top1},
            "git_commit": "c" * 40, "provenance": CPU_RUN, **extra}


def configured(table: str, row: str, column: str, seed: int, top1: float, **extra) -> dict:
    """A tiny record carrying the configuration its row resolves to today (it may fill other tables' cells)."""
    cfg = next(c for c in resolve_runs(table, "tiny", [row], seed + 1, None, None)
               if c.column == column and c.seed == seed)
    return {**record(table, row, column, seed, top1), "dataset": cfg.data.dataset, "config": cfg.to_dict(), **extra}


def write_local(runs: Path, rec: dict) -> Path:
    path = (runs / rec["table"] / rec["row"] / f"seed{rec['seed']}" / f"{rec['scale']}-{column_slug(rec['column'])}"
            / "metrics.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rec))
    return path


def row_cells(text: str, label: str, nth: int = 0) -> list[str]:
    """The cells of the ``nth`` report table row whose first cell is ``label``, stripped of tabulate's padding."""
    lines = [line for line in text.splitlines() if line.startswith("| ") and line.split("|")[1].strip() == label]
    return [cell.strip() for cell in lines[nth].strip().strip("|").split("|")]


def test_a_cell_is_the_mean_and_sample_std_of_its_seeds_rounded_to_one_digit(tmp_path):
    """61, 63, 65: mean 63.0, sample std 2.0 (population std would be 1.6); 61, 62, 66: mean 63.0 (median 62),
    sample std √(14/2) = 2.6; 64.06, 64.10: mean 64.08 shown 64.1, std 0.03 shown 0.0."""
    runs = tmp_path / "runs"
    for seed, top1 in enumerate((61.0, 63.0, 65.0)):
        write_local(runs, record("mformer_table4", "joint", "K-400", seed, top1))
    for seed, top1 in enumerate((61.0, 62.0, 66.0)):
        write_local(runs, record("mformer_table4", "traj_attT_normS", "K-400", seed, top1))
    for seed, top1 in enumerate((64.06, 64.10)):
        write_local(runs, record("mformer_table4", "divided", "K-400", seed, top1))
    text = build_report("mformer_table4", runs_root=runs, out_dir=tmp_path, index=False).read_text()
    assert row_cells(text, "Joint Space-Time")[-2] == "63.0 ± 2.0 (n=3; tiny, synth_objects, CPU) · paper 79.2"
    assert row_cells(text, "Divided Space-Time")[-2] == "64.1 ± 0.0 (n=2; tiny, synth_objects, CPU) · paper 78.5"
    assert row_cells(text, "Trajectory", nth=2)[-2] == "63.0 ± 2.6 (n=3; tiny, synth_objects, CPU) · paper 79.7"


def test_seeds_that_agree_show_a_zero_spread_not_a_single_run(tmp_path):
    """n=2 with equal values is still two seeds: '± 0.0 (n=2', never the n=1 form."""
    runs = tmp_path / "runs"
    for seed in (0, 1):
        write_local(runs, record("mformer_table4", "joint", "SSv2", seed, 40.0))
    write_local(runs, record("mformer_table4", "divided", "SSv2", 0, 30.0))
    text = build_report("mformer_table4", runs_root=runs, out_dir=tmp_path, index=False).read_text()
    assert row_cells(text, "Joint Space-Time")[-1] == "40.0 ± 0.0 (n=2; tiny, synth_motion_pairs, CPU) · paper 64.0"
    assert row_cells(text, "Divided Space-Time")[-1] == "30.0 (n=1; tiny, synth_motion_pairs, CPU) · paper 64.2"


def test_differences_beyond_noise_are_judged_on_the_cells_shown(tmp_path):
    """Joint 61, 63, 65 (n=3), divided 64.5, 65.5 and trajectory 70, 71 (n=2; records naming no data root: Welch's
    test). By scipy's Welch t: trajectory − joint +7.5, p = 0.0135 (2.6 df); trajectory − divided +5.5, p = 0.0161
    (2 df); divided − joint +2.0, p = 0.222. Benjamini-Hochberg over the three: q = 0.024, 0.024, 0.222: two pairs
    beyond noise, one within."""
    runs = tmp_path / "runs"
    for seed, top1 in enumerate((61.0, 63.0, 65.0)):
        write_local(runs, record("mformer_table4", "joint", "K-400", seed, top1))
    for seed in (0, 1):
        write_local(runs, record("mformer_table4", "divided", "K-400", seed, 64.5 + seed))
        write_local(runs, record("mformer_table4", "traj_attT_normS", "K-400", seed, 70.0 + seed))
    text = build_report("mformer_table4", runs_root=runs, out_dir=tmp_path, index=False).read_text()
    assert ("- K-400: 2 of 3 row pairs differ beyond noise: Trajectory (Att_T, Norm_S) > Joint Space-Time +7.5 "
            "[+3.2, +11.8], p = 0.014, q = 0.024 (Welch t, 2.6 df); Trajectory (Att_T, Norm_S) > Divided Space-Time "
            "+5.5 [+2.5, +8.5], p = 0.016, q = 0.024 (Welch t, 2 df); 1 within noise") in text.splitlines()
    assert "; of its 3 row pairs 1 are within noise" in text


def test_a_cell_names_every_device_and_only_its_own_scale_runs(tmp_path):
    """Seeds from two machines are named both; a paper-scale run of the same row and column is its own cell."""
    runs = tmp_path / "runs"
    write_local(runs, record("mformer_table4", "joint", "K-400", 0, 60.0))
    write_local(runs, record("mformer_table4", "joint", "K-400", 1, 62.0, provenance=GPU_RUN))
    write_local(runs, {**record("mformer_table4", "joint", "K-400", 0, 90.0, scale="paper"), "dataset": "kinetics400",
                       "data": {"dataset": "kinetics400", "synthetic": False, "num_classes": 400}})
    text = build_report("mformer_table4", runs_root=runs, out_dir=tmp_path, index=False).read_text()
    tiny, paper = text.split("**Scale: paper**")
    assert row_cells(tiny, "Joint Space-Time")[-2] == (
        "61.0 ± 1.4 (n=2; tiny, synth_objects, 4 × H100 80GB HBM3 / CPU) · paper 79.2")
    assert row_cells(paper, "Joint Space-Time")[-2] == "90.0 (n=1; paper, kinetics400, CPU) · paper 79.2"
    assert "- Runs found: 2 (seeds [0, 1];" in tiny and "- Runs found: 1 (seeds [0];" in paper


def test_a_cell_whose_seeds_read_different_data_names_both(tmp_path):
    """ListOps at paper scale: seed 0 generated in place of the release (no lra_listops/ under --data-root), seed 1
    read the release: 35 and 37 give 36.0 ± 1.4, and the cell names both sources, not whichever came first."""
    release, absent, runs = tmp_path / "release", tmp_path / "absent", tmp_path / "runs"
    (release / "lra_listops").mkdir(parents=True)
    absent.mkdir()
    spec = table_spec("mformer_table5")
    for seed, (root, top1) in enumerate(((absent, 35.0), (release, 37.0))):
        cfg = spec.resolve(spec.row("exact"), "ListOps", "paper", seed, root)
        write_local(runs, {"table": cfg.table, "row": cfg.row, "column": cfg.column, "seed": seed, "scale": "paper",
                           "dataset": cfg.data.dataset, "data": {"dataset": cfg.data.dataset,
                                                                 "synthetic": cfg.data.root is None},
                           "metrics": {"top1": top1}, "config": cfg.to_dict(), "git_commit": "c" * 40,
                           "provenance": CPU_RUN})
    text = build_report("mformer_table5", runs_root=runs, out_dir=tmp_path, index=False).read_text()
    assert row_cells(text, "Exact [83]")[1] == (
        "36.0 ± 1.4 (n=2; paper, lra_listops / lra_listops generated locally, CPU) · paper 36.69")


def test_each_data_line_gives_the_chance_level_of_its_own_columns_classes(tmp_path):
    """K-400 runs recorded 40 classes (top-1 2.5%, top-5 12.5%), SSv2 runs 12 (8.3%, 41.7%): neither line may
    borrow the other's (Table 2b: its tiny scale reads those sets)."""
    runs = tmp_path / "runs"
    write_local(runs, record("mformer_table2b", "joint_separatepe", "K-400", 0, 60.0))
    write_local(runs, record("mformer_table2b", "joint_separatepe", "SSv2", 0, 40.0))
    text = build_report("mformer_table2b", runs_root=runs, out_dir=tmp_path, index=False).read_text()
    k400 = next(line for line in text.splitlines() if line.startswith("- **K-400**"))
    ssv2 = next(line for line in text.splitlines() if line.startswith("- **SSv2**"))
    assert k400.endswith("paper's. Chance with 40 classes: top-1 2.5%, top-5 12.5%.")
    assert ssv2.endswith("paper's. Chance with 12 classes: top-1 8.3%, top-5 41.7%.")


def test_needs_data_counts_only_the_runs_of_the_cells_own_scale(tmp_path):
    """A paper-scale run read lra_text, so the other paper rows' Text cells are '—' (not run yet); no tiny run read
    it, so the tiny Text cells still say 'needs data'."""
    runs = tmp_path / "runs"
    write_local(runs, {**record("mformer_table5", "exact", "K-400", 0, 60.0, scale="paper"), "column": "Text",
                       "dataset": "lra_text", "data": {"dataset": "lra_text", "num_classes": 2}})
    write_local(runs, {**record("mformer_table5", "exact", "K-400", 0, 30.0), "column": "ListOps",
                       "dataset": "lra_listops", "data": {"dataset": "lra_listops", "num_classes": 10}})
    text = build_report("mformer_table5", runs_root=runs, out_dir=tmp_path, index=False).read_text()
    tiny, paper = text.split("**Scale: paper**")
    assert row_cells(paper, "Exact [83]")[2] == "60.0 (n=1; paper, lra_text, CPU) · paper 63.09"
    assert row_cells(paper, "Performer-256 [16]")[2] == "— · paper 63.22"
    assert row_cells(tiny, "Exact [83]")[1] == "30.0 (n=1; tiny, lra_listops, CPU) · paper 36.69"
    assert row_cells(tiny, "Exact [83]")[2] == "needs data (`lra_text`) · paper 63.09"
    assert row_cells(tiny, "Performer-256 [16]")[2] == "needs data (`lra_text`) · paper 63.22"


def test_columns_sharing_one_run_each_show_their_own_metric(tmp_path):
    """Table 6a's Top-1 and Top-5 come from one SSv2 run (paper scale, 174 classes): 40.0 and 90.0, each in its
    column."""
    runs = tmp_path / "runs"
    write_local(runs, {**record("mformer_table6a", "mformer", "SSv2", 0, 40.0, scale="paper"), "dataset": "ssv2",
                       "data": {"dataset": "ssv2", "synthetic": False, "num_classes": 174},
                       "metrics": {"top1": 40.0, "top5": 90.0}})
    text = build_report("mformer_table6a", runs_root=runs, out_dir=tmp_path, index=False).read_text()
    assert row_cells(text, "Mformer")[2:4] == ["40.0 (n=1; paper, ssv2, CPU) · paper 66.5",
                                               "90.0 (n=1; paper, ssv2, CPU) · paper 90.1"]


def test_a_top5_cell_over_few_classes_is_not_read(tmp_path):
    """Over synth_motion_pairs' 12 classes, guessing puts the true class in the top five 5/12 = 41.7% of the time,
    above SSv2's 5/174 = 2.9%: Table 6a's Top-5 cells say so instead of a number, and no rank or noise line reads
    them; Top-1 (1/12 = 8.3%, not a top-k over k > 1) is shown."""
    runs = tmp_path / "runs"
    for row, seeds in {"mformer": (40.0, 42.0), "mformer_l": (50.0, 52.0)}.items():
        for seed, top1 in enumerate(seeds):
            write_local(runs, {**record("mformer_table6a", row, "SSv2", seed, top1),
                               "metrics": {"top1": top1, "top5": 99.0 + seed}})
    text = build_report("mformer_table6a", runs_root=runs, out_dir=tmp_path, index=False).read_text()
    assert row_cells(text, "Mformer")[2:4] == ["41.0 ± 1.4 (n=2; tiny, synth_motion_pairs, CPU) · paper 66.5",
                                               "not read: 41.7% by chance (12 classes) · paper 90.1"]
    assert row_cells(text, "Mformer-L")[3] == "not read: 41.7% by chance (12 classes) · paper 91.2"
    assert "- Top-1: +1.00 over 2 rows; of its 1 row pairs 0 are within noise" in text.splitlines()
    assert "- Top-5" not in text
    assert "A top-5 cell is *not read* where guessing scores more on it than the 2.9% it scores in" in text


def test_top_k_chance_counts_the_classes_each_metric_ranks():
    """k / classes, with verbs, nouns and their pairs apart; None for top-1, other metrics and unknown classes."""
    from reports.chance import top_k_chance

    verb_noun = {"verb": 6, "noun": 8}
    assert top_k_chance("top5", 40) == 5 / 40 and top_k_chance("top5", 400) == 5 / 400
    assert top_k_chance("top5", 3) == 1.0  # fewer classes than k: every guess holds the class
    assert (top_k_chance("verb_top5", verb_noun), top_k_chance("noun_top5", verb_noun),
            top_k_chance("action_top5", verb_noun)) == (5 / 6, 5 / 8, 5 / 48)
    assert [top_k_chance(m, c) for m, c in (("top1", 40), ("top5", None), ("J&F", 40), ("verb_top5", 40))] == [
        None, None, None, None]


def test_a_derived_column_is_the_difference_of_the_row_means(tmp_path):
    """Table 8's Δ = 8 frames − 1 frame: (60 + 64)/2 − (50 + 52)/2 = 11.0; a row missing an input shows '—'."""
    runs = tmp_path / "runs"
    for seed, (one, eight) in enumerate(((50.0, 60.0), (52.0, 64.0))):
        write_local(runs, {**record("mformer_table8", "k400", "K-400", seed, one), "column": "1frame"})
        write_local(runs, {**record("mformer_table8", "k400", "K-400", seed, eight), "column": "mformer"})
    write_local(runs, {**record("mformer_table8", "ssv2", "SSv2", 0, 45.0), "column": "mformer"})
    text = build_report("mformer_table8", runs_root=runs, out_dir=tmp_path, index=False).read_text()
    assert row_cells(text, "Kinetics-400")[-1] == "11.0 · paper 6.5"
    assert row_cells(text, "Something–Something V2")[-1] == "— · paper 39.4"


def test_a_run_configured_as_another_tables_cell_fills_it_under_that_cells_column(tmp_path):
    """Figure 3's trajectory run at K-400 stride 2 is Table 4's trajectory run (column "K-400" there): its two seeds,
    65 and 69, fill Figure 3's cell as 67.0 ± 2.8 and the header names both reused records."""
    runs = tmp_path / "runs"
    for seed, top1 in enumerate((65.0, 69.0)):
        write_local(runs, configured("mformer_table4", "traj_attT_normS", "K-400", seed, top1))
    text = build_report("mformer_figure3", runs_root=runs, out_dir=tmp_path, index=False).read_text()
    assert row_cells(text, "Trajectory")[1:4] == ["—", "67.0 ± 2.8 (n=2; tiny, synth_objects, CPU)", "—"]
    assert ("- 2 of them reuse a run with an identical configuration trained for another table: "
            "`mformer_table4/traj_attT_normS/seed0/tiny-k_400`, `mformer_table4/traj_attT_normS/seed1/tiny-k_400`."
            ) in text.splitlines()


def test_a_run_of_another_table_with_the_same_row_and_column_names_is_not_the_cells(tmp_path):
    """mformer_official's mformer_b K-400 is configured otherwise than Table 7's row of that name: Table 7's cell
    keeps its own 50.0 (n=1), never a mean with the other configuration's 90.0."""
    runs = tmp_path / "runs"
    write_local(runs, configured("mformer_table7", "mformer_b", "K-400", 0, 50.0))
    write_local(runs, configured("mformer_official", "mformer_b", "K-400", 1, 90.0))
    found = table_records(table_spec("mformer_table7"), runs)
    assert [(r["table"], r["seed"], r["metrics"]["top1"]) for r in found.records] == [("mformer_table7", 0, 50.0)]
    assert found.differing == []
    text = build_report("mformer_table7", runs_root=runs, out_dir=tmp_path, index=False).read_text()
    assert "50.0 (n=1; tiny, synth_objects, CPU)" in text and "n=2" not in text


def test_the_newest_run_of_a_cell_and_seed_fills_it_once_and_a_tie_goes_to_the_tables_own(tmp_path):
    """Table 3b's exact row is configured as Table 3a's: for one seed the newer of the two records fills the cell
    (one record, not both); at the same finish time Table 3b's own run does."""
    def found(name: str, own_at: str, other_at: str) -> list[tuple[float, str | None]]:
        runs = tmp_path / name
        write_local(runs, configured("mformer_table3b", "exact", "K-400", 0, 50.0, finished_at=own_at))
        write_local(runs, configured("mformer_table3a", "exact", "K-400", 0, 70.0, finished_at=other_at))
        return [(r["metrics"]["top1"], r.get("reused_from")) for r in table_records(table_spec("mformer_table3b"),
                                                                                    runs).records]

    older, newer = "2026-01-01T00:00:00+00:00", "2026-02-01T00:00:00+00:00"
    assert found("other_newer", older, newer) == [(70.0, "mformer_table3a/exact/seed0/tiny-k_400")]
    assert found("own_newer", newer, older) == [(50.0, None)]
    assert found("tie", newer, newer) == [(50.0, None)]


def test_a_tracked_copy_of_the_local_run_is_not_reported_as_passed_over(tmp_path):
    """`python -m reports track` copies the local run: the same run in both places is one run, not a local record
    passed over for a tracked one; a different local run of the cell and seed is."""
    runs, results = tmp_path / "runs", tmp_path / "results"
    same = record("mformer_table4", "joint", "K-400", 0, 60.0, finished_at="2026-01-01T00:00:00+00:00")
    write_local(runs, same)
    write_tracked(results, same)
    found = table_records(table_spec("mformer_table4"), runs, results)
    assert [(r["_source"], r["metrics"]["top1"]) for r in found.records] == [("tracked", 60.0)]
    assert found.passed_over == []
    text = build_report("mformer_table4", runs_root=runs, out_dir=tmp_path, results_root=results,
                        index=False).read_text()
    assert "passed over" not in text and "1 tracked in `reports/results/`, 0 local" in text

    write_local(runs, {**same, "metrics": {"top1": 66.0}, "finished_at": "2026-03-01T00:00:00+00:00"})
    assert len(table_records(table_spec("mformer_table4"), runs, results).passed_over) == 1


def test_a_run_configured_otherwise_that_was_passed_over_is_not_said_to_fill_its_cell(tmp_path):
    """A local ``--epochs 1`` run of a cell whose tracked run has today's configuration: the report that shows the
    tracked run does not name the cell as filled by a run configured otherwise; the one that shows the local run
    does."""
    runs, results = tmp_path / "runs", tmp_path / "results"
    write_tracked(results, configured("mformer_table4", "joint", "K-400", 0, 60.0,
                                      finished_at="2026-01-01T00:00:00+00:00"))
    other = configured("mformer_table4", "joint", "K-400", 0, 10.0, finished_at="2026-02-01T00:00:00+00:00")
    other["config"]["optim"]["epochs"] = 1
    write_local(runs, other)

    def report(prefer):
        return build_report("mformer_table4", runs_root=runs, out_dir=tmp_path, results_root=results, prefer=prefer,
                            index=False).read_text()

    tracked, local = report("tracked"), report("local")
    assert row_cells(tracked, "Joint Space-Time")[-2] == "60.0 (n=1; tiny, synth_objects, CPU) · paper 79.2"
    assert "configured otherwise" not in tracked
    assert row_cells(local, "Joint Space-Time")[-2] == "10.0 (n=1; tiny, synth_objects, CPU) · paper 79.2"
    assert ("- Cells filled by runs configured otherwise than the row is today (options given on the command line, "
            "or a spec changed since): joint · K-400.") in local.splitlines()


def test_the_tracked_static_cell_wins_unless_local_is_preferred_and_names_its_source(tmp_path):
    """Static cells follow the records' rule: tracked first; a text that does not say its source gets it in
    brackets ('170.0 [computed]')."""
    runs, results = tmp_path / "runs", tmp_path / "results"
    tracked = results / "mformer_table4" / "static.json"
    tracked.parent.mkdir(parents=True)
    record = json.loads((REPORTS_DIR / "results" / "mformer_table4" / "static.json").read_text())
    record["cells"]["joint"]["GFLOPS"].update(value=181.0, text="181.0 (computed)")
    tracked.write_text(json.dumps(record))
    local = json.loads(tracked.read_text())
    local["cells"]["joint"]["GFLOPS"].update(value=170.0, text="170.0")
    (runs / "mformer_table4").mkdir(parents=True)
    (runs / "mformer_table4" / "static.json").write_text(json.dumps(local))

    def joint(prefer: str) -> str:  # the GFLOPS cell
        return row_cells(build_report("mformer_table4", runs_root=runs, out_dir=tmp_path, results_root=results,
                                      prefer=prefer, index=False).read_text(), "Joint Space-Time")[5]

    assert joint("tracked") == "181.0 (computed) · paper 180.6"
    assert joint("local") == "170.0 [computed] · paper 180.6"


def test_a_column_line_counts_the_pairs_it_cannot_compare():
    one = Cell(60.0, 0.0, 1, "tiny", "x", "CPU", (60.0,), (0,))
    three = Cell(50.0, 1.0, 3, "tiny", "x", "CPU", (49.0, 50.0, 51.0), (0, 1, 2))

    def line(cells):
        return statistics.column_line("SSv2", statistics.table_pairs({"SSv2": cells}))

    assert line([("A", one), ("B", one), ("C", None)]) == (
        "- SSv2: none of its 1 row pairs can be compared (one seed per row)")
    assert line([("A", one), ("B", three), ("C", three)]) == (
        "- SSv2: 0 of 3 row pairs differ beyond noise; 1 within noise; 2 not comparable (one seed)")
    assert line([("A", one), ("B", None)]) is None
