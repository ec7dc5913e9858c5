"""Figure plots (``reports.plots.plot_sweep``) and the reports command line (``python -m reports``), checked against
hand-written expectations: which value is drawn at which x, which points are left out (a row never run, a missing
column, but not a real 0), each row's margin to the reference row, axis labels and tick labels per panel, log axes,
the mean over seeds (not another statistic) as the plotted value, and the CLI's exit codes, fail-fast checks and
``--prefer`` / ``readme`` behaviour. The drawn figure is read back from matplotlib's own line objects."""

from __future__ import annotations

import math

import matplotlib
import pytest
from matplotlib.container import ErrorbarContainer

from experiments.harness.spec import SweepPlot
from reports.__main__ import main as reports_main
from reports.plots import plot_sweep
from tests.reports.test_build_numbers import stale_readme
from tests.reports.test_tracked_results import make_record, write_local, write_tracked

matplotlib.use("Agg")


@pytest.fixture
def drawn(monkeypatch):
    """The axes grid each ``plot_sweep`` call draws into, kept after the figure is closed (a spy on subplots)."""
    import matplotlib.pyplot as plt

    grids = []
    subplots = plt.subplots

    def spy(*args, **kwargs):
        fig, axes = subplots(*args, **kwargs)
        grids.append(axes)
        return fig, axes

    monkeypatch.setattr(plt, "subplots", spy)
    return grids


def series(ax) -> dict[str, tuple[list[float], list[float]]]:
    """Label -> (xs, ys) of each labelled line of an axis (axhline's reference line has a private '_' label), a
    line drawn with error bars included (its label is its container's)."""
    lines = {line.get_label(): line for line in ax.get_lines() if not line.get_label().startswith("_")}
    lines.update({bars.get_label(): bars.lines[0] for bars in ax.containers if isinstance(bars, ErrorbarContainer)})
    return {label: ([float(x) for x in line.get_xdata()], [float(y) for y in line.get_ydata()])
            for label, line in lines.items()}


def error_bars(ax) -> dict[str, dict[float, tuple[float, float]]]:
    """Label -> x -> (bottom, top) of each error bar drawn on an axis (a NaN bar has an empty segment)."""
    return {bars.get_label(): {float(segment[0][0]): (float(segment[0][1]), float(segment[1][1]))
                               for segment in bars.lines[2][0].get_segments() if len(segment)}
            for bars in ax.containers if isinstance(bars, ErrorbarContainer)}


def tick_texts(ax) -> list[str]:
    return [t.get_text() for t in ax.get_xticklabels()]


TWO_PANELS = SweepPlot(x_label="stride", x_values=(1, 2, 4),
                       panels={"left": ("L1", "L2", "L4"), "right": ("R1", "R2", "R4")})


def test_each_value_is_drawn_at_its_columns_x_and_missing_points_are_left_out_not_drawn_as_zero(tmp_path, drawn):
    rows = [("a", "Row A"), ("b", "Row B"), ("never", "never ran")]
    values = {"a": {"L1": 10.0, "L2": None, "L4": 0.0, "R1": 5.0, "R2": 6.0, "R4": 7.0},  # 0.0 is a real value
              "b": {"L1": 1.0, "L2": 2.0, "L4": 3.0, "R4": 9.0},  # R1, R2 absent from the mapping
              "never": {"L1": None, "L2": None, "L4": None}}
    path = plot_sweep(TWO_PANELS, rows, values, tmp_path / "fig.png")
    assert path.read_bytes().startswith(b"\x89PNG")
    (grid,) = drawn
    assert grid.shape == (1, 2)  # no reference row: one row of panels, one panel per plot.panels entry
    left, right = grid[0]
    assert series(left) == {"Row A": ([1.0, 4.0], [10.0, 0.0]), "Row B": ([1.0, 2.0, 4.0], [1.0, 2.0, 3.0])}
    assert series(right) == {"Row A": ([1.0, 2.0, 4.0], [5.0, 6.0, 7.0]), "Row B": ([4.0], [9.0])}
    assert [t.get_text() for t in left.get_legend().get_texts()] == ["Row A", "Row B"]  # rows' order, no "never"
    assert (left.get_title(), right.get_title()) == ("left", "right")


def test_the_margin_panels_show_each_rows_value_minus_the_reference_rows_at_the_same_column(tmp_path, drawn):
    plot = SweepPlot(x_label="stride", x_values=(1, 2, 4), panels={"left": ("L1", "L2", "L4")},
                     y_label="top-1 (%)", reference_row="ref")
    rows = [("a", "Row A"), ("ref", "Reference")]
    values = {"a": {"L1": 50.0, "L2": 61.5, "L4": 70.0}, "ref": {"L1": 40.0, "L2": None, "L4": 72.5}}
    plot_sweep(plot, rows, values, tmp_path / "fig.png")
    (grid,) = drawn
    assert grid.shape == (2, 1)  # margins on top, values below
    margin, value = grid[0, 0], grid[1, 0]
    assert series(value) == {"Row A": ([1.0, 2.0, 4.0], [50.0, 61.5, 70.0]), "Reference": ([1.0, 4.0], [40.0, 72.5])}
    # L2 has no reference value: no margin there, though Row A's value is drawn
    assert series(margin) == {"Row A": ([1.0, 4.0], [50.0 - 40.0, 70.0 - 72.5]), "Reference": ([1.0, 4.0], [0.0, 0.0])}
    assert margin.get_ylabel() == "top-1 margin to ref (pts)" and value.get_ylabel() == "top-1 (%)"
    assert value.get_xlabel() == "stride" and margin.get_title() == "left"


def test_a_panel_takes_its_own_x_label_and_tick_labels_and_the_others_the_plots(tmp_path, drawn):
    plot = SweepPlot(x_label="stride (frames)", x_values=(1, 2, 4), panels=TWO_PANELS.panels, y_label="acc",
                     panel_x_labels={"right": "stride (S = whole video)"}, panel_ticks={"right": ("S/4", "S/2", "S")})
    plot_sweep(plot, [("a", "Row A")], {"a": {"L1": 1.0, "R1": 2.0}}, tmp_path / "fig.png")
    left, right = drawn[0][0]
    assert (left.get_xlabel(), right.get_xlabel()) == ("stride (frames)", "stride (S = whole video)")
    assert [float(x) for x in right.get_xticks()] == [1.0, 2.0, 4.0] and tick_texts(right) == ["S/4", "S/2", "S"]
    assert [float(x) for x in left.get_xticks()] == [1.0, 2.0, 4.0]
    assert left.get_ylabel() == right.get_ylabel() == "acc"


def test_cost_plots_are_log_log_with_the_sizes_as_ticks(tmp_path, drawn):
    plot = SweepPlot(x_label="frames", x_values=(8, 16, 32), panels={"cost": ("c8", "c16", "c32")}, y_label="ms")
    plot_sweep(plot, [("full", "Full")], {"full": {"c8": 1.0, "c16": 4.0, "c32": 16.0}}, tmp_path / "fig.png",
               log=True)
    (ax,) = drawn[0][0]
    assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")
    assert [float(x) for x in ax.get_xticks()] == [8.0, 16.0, 32.0] and tick_texts(ax) == ["8", "16", "32"]
    assert series(ax) == {"Full": ([8.0, 16.0, 32.0], [1.0, 4.0, 16.0])}


def test_a_figure_report_plots_the_mean_over_seeds_at_each_crop_count(tmp_path, drawn):
    """X-ViT Figure 1 from records: 3 seeds at 1 crop (mean 62, sample std √7), one at 5 crops, none elsewhere;
    only the point with several seeds has a ± bar, and the report says what the bars are."""
    runs = tmp_path / "runs"
    for seed, top1 in enumerate((60.0, 61.0, 65.0)):
        write_local(runs, make_record("xvit_figure1", "xvit", "1x3 views", seed, top1))
    write_local(runs, make_record("xvit_figure1", "xvit", "5x3 views", 0, 70.0))
    assert reports_main(["build", "xvit_figure1", "--runs-dir", str(runs), "--out-dir", str(tmp_path),
                         "--results-dir", ""]) == 0
    assert (tmp_path / "xvit_figure1-tiny.png").read_bytes().startswith(b"\x89PNG")
    tiny = [grid for grid in drawn if series(grid[-1][0])]  # the tiny scale's plot (the paper scale has no runs)
    (grid,) = tiny
    assert series(grid[-1][0]) == {"X-ViT (temporal attention)": ([1.0, 5.0], [62.0, 70.0])}
    ((label, bars),) = error_bars(grid[-1][0]).items()
    assert label == "X-ViT (temporal attention)" and list(bars) == [1.0]  # 5 crops: one seed, no bar
    assert bars[1.0] == pytest.approx((62.0 - math.sqrt(7.0), 62.0 + math.sqrt(7.0)), abs=1e-12)
    assert "Bars: ± one standard deviation over seeds" in (tmp_path / "xvit_figure1.md").read_text()


def test_an_unknown_id_among_known_ones_fails_before_any_report_is_written(tmp_path, capsys):
    code = reports_main(["build", "mformer_table4", "no_such_table", "--runs-dir", str(tmp_path / "runs"),
                         "--out-dir", str(tmp_path), "--results-dir", ""])
    assert code == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("error: ") and "no_such_table" in captured.err and captured.out == ""
    assert list(tmp_path.iterdir()) == []


def test_track_checks_every_id_before_tracking_any(tmp_path, monkeypatch, capsys):
    import reports.__main__ as cli
    import reports.records
    calls = []
    monkeypatch.setattr(reports.records, "track", lambda *args: calls.append(("track", args)) or [])
    monkeypatch.setattr(cli, "build_report", lambda *args, **kwargs: calls.append(("build", args)) or "")
    assert reports_main(["track", "mformer_table4", "no_such_table", "--runs-dir", str(tmp_path)]) == 2
    assert calls == [] and "no_such_table" in capsys.readouterr().err


def test_track_of_a_table_without_a_spec_is_an_error(tmp_path, monkeypatch, capsys):
    import experiments.harness.spec
    import reports.records
    # a paper table not implemented yet
    monkeypatch.setattr(experiments.harness.spec, "table_spec", lambda table_id: None)
    monkeypatch.setattr(reports.records, "track", lambda *args: pytest.fail("tracked a table without a spec"))
    assert reports_main(["track", "mformer_table4", "--runs-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err == "error: mformer_table4 is not implemented: nothing to track\n"


def test_build_prefer_local_reaches_the_report(tmp_path):
    runs, results = tmp_path / "runs", tmp_path / "results"
    write_tracked(results, make_record("mformer_table4", "joint", "K-400", 0, 60.0))
    write_local(runs, make_record("mformer_table4", "joint", "K-400", 0, 70.0))

    def joint_k400(prefer: str | None) -> str:
        out = tmp_path / (prefer or "default")
        flags = ["--prefer", prefer] if prefer else []
        assert reports_main(["build", "mformer_table4", "--runs-dir", str(runs), "--out-dir", str(out),
                             "--results-dir", str(results), *flags]) == 0
        joint = next(line for line in (out / "mformer_table4.md").read_text().splitlines()
                     if line.startswith("| Joint"))
        return joint.split("|")[7].strip()

    assert joint_k400(None).startswith("60.0 (n=1;")  # tracked wins by default
    assert joint_k400("tracked").startswith("60.0 (n=1;")
    assert joint_k400("local").startswith("70.0 (n=1;")


def test_readme_rewrites_a_stale_page_exits_0_and_then_check_passes(tmp_path, monkeypatch, capsys):
    path, stale = stale_readme(tmp_path, monkeypatch)
    assert reports_main(["readme"]) == 0
    assert path.read_text() != stale and len(path.read_text()) == len(stale)  # the one changed digit is restored
    assert f"{path}: generated page rewritten" in capsys.readouterr().out.splitlines()  # one line per page
    rewritten = path.read_text()
    assert reports_main(["readme", "--check"]) == 0 and path.read_text() == rewritten
    captured = capsys.readouterr()
    assert f"{path}: generated page already up to date" in captured.out.splitlines() and captured.err == ""


def test_a_report_built_outside_reports_shows_only_local_runs_unless_a_results_dir_is_named(tmp_path):
    """Without --results-dir, a report written to another folder ignores the tracked records (reports/results/
    holds mformer_table4 runs); naming the folder brings them in."""
    runs = tmp_path / "runs"
    write_local(runs, make_record("mformer_table4", "joint", "K-400", 0, 70.0))
    assert reports_main(["build", "mformer_table4", "--runs-dir", str(runs), "--out-dir", str(tmp_path / "a")]) == 0
    cells = [cell for line in (tmp_path / "a" / "mformer_table4.md").read_text().splitlines()
             for cell in line.split("|") if "(n=" in cell]
    assert [cell.strip().split(" (")[0] for cell in cells] == ["70.0"]  # the one local run, nothing tracked


def test_the_legend_is_drawn_on_the_first_panel_with_a_line(tmp_path, drawn):
    """Only the right panel's columns have run (Figure 3 with its SSv2 columns alone): its rows are still named."""
    values = {"a": {"R1": 1.0, "R2": 2.0}, "b": {"R1": 3.0}}
    plot_sweep(TWO_PANELS, [("a", "Row A"), ("b", "Row B")], values, tmp_path / "fig.png")
    (grid,) = drawn
    left, right = grid[0]
    assert left.get_legend() is None
    assert [t.get_text() for t in right.get_legend().get_texts()] == ["Row A", "Row B"]


def test_a_generated_page_not_yet_written_is_stale_to_check_and_written_whole(tmp_path, monkeypatch, capsys):
    from reports import readme

    page = tmp_path / "generated" / "tiny_results.md"
    monkeypatch.setattr(readme, "TINY_RESULTS", page)
    only = {page: readme.generated_pages()[page]}  # the repository's own pages stay as they are
    monkeypatch.setattr(readme, "generated_pages", lambda: only)
    assert reports_main(["readme", "--check"]) == 1 and not page.exists()  # --check writes nothing
    assert f"{page}: the generated page differs from the records" in capsys.readouterr().err
    assert reports_main(["readme"]) == 0
    assert page.read_text().startswith("# Tiny-scale results and costs\n\nGenerated by `python -m reports readme` ")
    assert reports_main(["readme", "--check"]) == 0  # written once, it is what the records give
