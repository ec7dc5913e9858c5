"""The paper-table inventory as loaded (experiments/paper_tables.py) and what ``list`` / ``show`` print from it.

Expected values are the papers' cells as printed in experiments/paper_tables.yaml (Motionformer Table 4 and 5,
Table 6a, CAST Table 2, MSCA Table 1), written here as literals; nothing is recomputed through the code under test.
"""

import importlib
import json

import pytest

from experiments.__main__ import main
from experiments.harness.plan import resolve_runs
from experiments.harness.run_dir import RunDir
from experiments.paper_tables import (
    PaperRow,
    PaperTable,
    UnknownTableError,
    close_ids,
    paper_table,
    paper_tables,
    printed,
)
from reports.console import show_json

# the module itself: the package re-exports its paper_tables() function under the module's name
paper_tables_module = importlib.import_module("experiments.paper_tables")


def test_printed_numbers_keep_both_their_value_and_their_text():
    """Motionformer Table 5 (LRA): '36.90' keeps its trailing zero, two-decimal cells keep both decimals."""
    lra = paper_table("mformer_table5")
    assert [r.index for r in lra.rows] == [0, 1, 2, 3]
    list_ops = [r.cells["ListOps"] for r in lra.rows]
    assert [str(v) for v in list_ops] == ["36.69", "36.69", "36.90", "33.87"]
    assert [float(v) for v in list_ops] == [36.69, 36.69, 36.9, 33.87]
    gflops = [r.cells["GFLOPS ↓"] for r in lra.rows]
    assert [float(v) for v in gflops] == [1.21, 0.49, 0.62, 0.24]  # not rounded to the one decimal of most tables
    memory = [r.cells["Mem. ↓"] for r in lra.rows]
    assert memory == [4579, 885, 745, 344] and all(type(v) is int for v in memory)
    assert printed(list_ops[2]) == "36.90" and printed(None) == "—"
    msca = paper_table("msca_table1")
    assert [printed(r.cells["top-5"]) for r in msca.rows][:4] == ["92.19", "92.88", "92.61", "92.30"]


def test_a_starred_cell_is_its_printed_text_and_a_dash_cell_is_missing():
    """CAST Table 2: AIM's EK100 action '41.3*' (the authors' own implementation) is neither missing nor 41.3."""
    cast = paper_table("cast_table2")
    aim, evl = cast.rows[3], cast.rows[1]
    assert aim.cells["Method"] == "AIM [72]" and aim.cells["EK100 Top-1 / Act."] == "41.3*"
    assert printed(aim.cells["EK100 Top-1 / Act."]) == "41.3*"
    assert evl.cells["Method"] == "EVL [35]" and evl.cells["EK100 Top-1 / Verb"] is None
    assert printed(evl.cells["EK100 Top-1 / Verb"]) == "—"


def test_bold_underline_group_setup_and_notes_come_from_their_own_fields():
    lra = paper_table("mformer_table5")
    assert lra.rows[0].underline == ("ListOps", "Avg ↑") and lra.rows[0].bold == ()
    assert lra.rows[3].bold == ("Model", "Text", "Avg ↑", "GFLOPS ↓", "Mem. ↓")
    assert lra.rows[3].underline == ("Image", "Pathfinder")
    assert lra.setup.startswith("Training/validation/testing code and parameters from the Nyströmformer")
    assert lra.notes.startswith("Long Range Arena, not video.")
    davis = paper_table("mformer_table9")
    assert [r.group for r in davis.rows][:4] == ["Supervised", "Supervised", "Supervised", "Self-supervised"]


def test_a_duplicate_table_id_is_refused(tmp_path, monkeypatch):
    entry = {"id": "mformer_twice", "paper": "p", "source_file": "f.txt", "label": "Table 1", "caption": "c",
             "kind": "ablation", "columns": ["a"], "rows": [{"cells": {"a": 1.0}}]}
    inventory = tmp_path / "paper_tables.yaml"
    inventory.write_text(json.dumps([entry, entry]))  # JSON is YAML
    monkeypatch.setattr(paper_tables_module, "INVENTORY", inventory)
    paper_tables.cache_clear()
    try:
        with pytest.raises(ValueError, match="duplicate table id 'mformer_twice'"):
            paper_tables()
    finally:
        paper_tables.cache_clear()  # the next test reads the real inventory again


@pytest.mark.parametrize("damage, said", [
    ({"rows": 5}, "table 1 (mformer_x): rows: Input should be a valid list"),
    ({"rows": [{"bold": ["a"]}]}, "table 1 (mformer_x): missing key 'rows.0.cells'"),
    ({"caption": None}, "table 1 (mformer_x): caption: Input should be a valid string"),
    ({"columns": "a"}, "table 1 (mformer_x): columns: Input should be a valid list"),
    ({"id": 7}, "table 1: id: Input should be a valid string"),
])
def test_an_inventory_table_of_the_wrong_shape_is_one_line_naming_it(tmp_path, monkeypatch, damage, said):
    entry = {"id": "mformer_x", "paper": "p", "source_file": "f.txt", "label": "Table 1", "caption": "c",
             "kind": "ablation", "columns": ["a"], "rows": [{"cells": {"a": 1.0}}], **damage}
    inventory = tmp_path / "paper_tables.yaml"
    inventory.write_text(json.dumps([entry]))
    monkeypatch.setattr(paper_tables_module, "INVENTORY", inventory)
    paper_tables.cache_clear()
    try:
        with pytest.raises(ValueError) as caught:
            paper_tables()
    finally:
        paper_tables.cache_clear()
    assert str(caught.value).startswith(f"{inventory}: {said}") and "\n" not in str(caught.value), caught.value


def test_row_labels_are_the_descriptor_cells_joined_and_integer_columns_are_results():
    lra = paper_table("mformer_table5")
    # Mem. holds only integers: still a result column, never part of a row's label
    assert lra.numeric_columns() == ["ListOps", "Text", "Retrieval", "Image", "Pathfinder", "Avg ↑", "GFLOPS ↓",
                                     "Mem. ↓"]
    assert lra.descriptor_columns() == ["Model"] and lra.row_label(lra.rows[0]) == "Exact [83]"
    ssv2 = paper_table("mformer_table6a")
    assert ssv2.row_label(ssv2.rows[0]) == "SlowFast [27] | K-400 | 65.7×3×1"
    numbers_only = PaperTable("t", "p", "f", "Table 1", "c", "ablation", (), (), ("a",),
                              (PaperRow(0, {"a": 1.0}), PaperRow(1, {"a": None})))
    assert numbers_only.row_label(numbers_only.rows[1]) == "row 2"  # 1-based, as a reader counts rows


def test_close_ids_suggest_typos_and_prefixes_only():
    ids = list(paper_tables())
    assert close_ids("xvit_tabel1", ids) == ["xvit_table1"]
    assert close_ids("table4", ids) == []  # shares '_table4' with three ids, but is no typo of any
    assert close_ids("mfo", ids) == []  # too short to be taken as the start of an id
    cast_ids = [f"cast_table{n}" for n in ("1a", "1b", "1c", "1d", "1e", "1f", "1g", "1h", 2, 3, 4, 5, 6, 7, 8, 9,
                                            10, 11)]
    assert close_ids("cast", ids) == cast_ids
    err = UnknownTableError("cast_table1", ids)
    assert str(err) == ("unknown table id 'cast_table1'. Did you mean: cast_table1a, cast_table1b, cast_table1c, "
                        "cast_table1d, cast_table1e, cast_table1f (and 4 more)? "
                        "Every id: `python -m experiments list`.")
    assert len(err.close_matches) == 10


def test_list_prints_paper_label_and_kind_in_their_columns(capsys):
    assert main(["list"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.strip()}
    assert lines["mformer_table4"] == "mformer_table4     Motionformer   Table 4      ablation   implemented"
    assert lines["xvit_table1"] == "xvit_table1        X-ViT          Table 1      speed      implemented"
    assert lines["cast_table1a"] == "cast_table1a       CAST           Table 1 (a)  ablation   implemented"
    assert paper_table("cast_table2").area == "CAST (B-CAST spatial/temporal experts)"


def _write_record(runs_root, table_id: str, row: str, column: str, top1: float) -> None:
    """One tiny-scale metrics.json, laid out as a finished run writes it (as in tests.experiments.test_registry)."""
    cfg = next(c for c in resolve_runs(table_id, "tiny", [row], 1, None, None) if c.column == column)
    record = {"table": cfg.table, "row": cfg.row, "column": cfg.column, "seed": 0, "scale": "tiny",
              "dataset": cfg.data.dataset, "metrics": {"top1": top1}, "config": cfg.to_dict(), "git_commit": "a" * 40}
    path = runs_root / RunDir.of(cfg, runs_root).path.relative_to(runs_root) / "metrics.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(record))


def _show(capsys, *args: str) -> list[str]:
    assert main(["show", *args]) == 0
    return capsys.readouterr().out.splitlines()


def test_show_puts_our_number_beside_the_paper_number_of_its_own_row(tmp_path, capsys):
    """Divided space-time (paper row 2) has a K-400 run; its line, and no other, shows it, with two decimals."""
    _write_record(tmp_path, "mformer_table4", "divided", "K-400", 50.126)
    lines = _show(capsys, "mformer_table4", "--runs-dir", str(tmp_path), "--results-dir", "")
    rows = "\n".join(lines).split("\n- ")[1:]
    assert [r.splitlines()[0] for r in rows] == [
        "Joint Space-Time (--rows joint)", "Divided Space-Time (--rows divided)",
        "Trajectory (Avg_T, Norm_S) (--rows traj_avgT_normS)", "Trajectory (Att_T, Norm_ST) (--rows traj_attT_normST)",
        "Trajectory (Att_T, Norm_S) (--rows traj_attT_normS)"]
    k400 = [line.strip() for line in lines if line.strip().startswith("K-400")]
    assert k400 == ["K-400                        paper: 79.2", "K-400                        paper: 78.5        "
                    "   ours (tiny runs): 50.13", "K-400                        paper: 76.0",
                    "K-400                        paper: 77.2", "K-400                        paper: 79.7"]
    divided = rows[1].splitlines()[1:]
    assert [line.split()[0] for line in divided] == ["Attention", "Att_T", "Avg_T", "Norm_S", "Norm_ST", "GFLOPS",
                                                     "K-400", "SSv2"]  # descriptor columns too, in paper order
    assert divided[1].strip() == "Att_T                        paper: —"
    setup = next(line for line in lines if line.startswith("Paper setup: "))
    assert setup.startswith("Paper setup: Default Motionformer: ViT-B (12 layers, 12 heads, dim 768)")


def test_show_labels_rows_without_a_run_by_their_own_paper_cells(tmp_path):
    """Motionformer Table 6a: the other methods' rows keep their own label; only the paper's own rows have keys."""
    rows = show_json("mformer_table6a", "tiny", str(tmp_path), results_root=None)["rows"]
    assert rows[0]["label"] == "SlowFast [27] | K-400 | 65.7×3×1" and rows[0]["key"] is None
    assert rows[1]["label"] == "TSM [51] | K-400 | 62.4×3×2" and rows[1]["key"] is None
    assert [r["paper"]["Top-1"] for r in rows[:2]] == [61.7, 63.4]
    assert sum(r["key"] is not None for r in rows) == 3


def test_show_of_a_figure_lists_the_specs_rows_with_their_keys_and_our_means(tmp_path):
    """A figure has no printed rows (``rows: []``): its rows and --rows keys are the spec's, one entry per run column,
    the paper's value absent (it is a plot). Two seeds of joint at K-400 stride 2: mean (60 + 63) / 2."""
    from tests.reports.test_cells_reference import write_local
    from tests.reports.test_tracked_results import make_record

    runs = tmp_path / "runs"
    for seed, top1 in enumerate((60.0, 63.0)):
        write_local(runs, {**make_record("mformer_figure3", "joint", "K-400 stride 2", seed, top1)})
    shown = show_json("mformer_figure3", "tiny", str(runs), "")
    assert [(row["key"], row["label"]) for row in shown["rows"]] == [
        ("joint", "Joint Space-Time"), ("divided", "Divided Space-Time"), ("trajectory", "Trajectory")]
    assert shown["columns"] == ["K-400 stride 1", "K-400 stride 2", "K-400 stride 4", "SSv2 stride S/4",
                                "SSv2 stride S/2", "SSv2 stride S"]
    joint = shown["rows"][0]
    assert joint["ours"] == {**dict.fromkeys(shown["columns"]), "K-400 stride 2": 61.5}
    assert set(joint["paper"].values()) == {None}


def test_show_of_a_figure_prints_our_values_without_an_empty_paper_column(tmp_path, capsys):
    from tests.reports.test_cells_reference import write_local
    from tests.reports.test_tracked_results import make_record

    runs = tmp_path / "runs"
    write_local(runs, make_record("mformer_figure3", "joint", "K-400 stride 2", 0, 60.0))
    lines = _show(capsys, "mformer_figure3", "--runs-dir", str(runs), "--results-dir", "")
    assert "The paper plots these values without printing them; each line is ours." in lines
    assert not [line for line in lines if "paper: " in line]
    joint = lines.index("- Joint Space-Time (--rows joint)")
    assert lines[joint + 2] == "    K-400 stride 2               ours (tiny runs): 60.00"
