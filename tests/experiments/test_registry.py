"""The table registry and its CLI: every paper table is listed, shown and resolvable by name."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from experiments.__main__ import main
from experiments.harness import spec as spec_module
from experiments.harness.plan import check_buildable, resolve_runs
from experiments.harness.spec import SCALES, RowSpec, TableSpec, registered_specs, table_spec, table_status
from experiments.harness.static import compute_static
from experiments.harness.tasks import get_task
from experiments.paper_tables import INVENTORY, paper_table, paper_tables
from reports.console import show_json

REPO = Path(__file__).resolve().parents[2]


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "experiments", *args], capture_output=True, text=True)


def test_inventory_has_every_entry_of_its_file_with_its_layout():
    tables = paper_tables()
    entries = [line for line in INVENTORY.read_text(encoding="utf-8").splitlines() if line.startswith("- id: ")]
    assert list(tables) == [line.removeprefix("- id: ") for line in entries]
    t4 = paper_table("mformer_table4")
    assert t4.columns == ("Attention", "Att_T", "Avg_T", "Norm_S", "Norm_ST", "GFLOPS", "K-400", "SSv2")
    assert [r.cells["SSv2"] for r in t4.rows] == [64.0, 64.2, 60.0, 60.9, 66.5]
    assert str(t4.rows[0].cells["SSv2"]) == "64.0"  # printed text kept, trailing zero included


def test_list_prints_one_line_per_table_starting_with_its_id(capsys):
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    tables = len(paper_tables())
    assert [line.split()[0] for line in lines[:tables]] == list(paper_tables())
    assert "synthetic_learnability" in lines[-1]  # the repository's own experiments, after the paper tables
    assert "implemented" in next(line for line in lines if line.startswith("mformer_table4 "))
    for line in lines[:tables]:  # each line ends with the table's status
        assert line.rstrip().endswith(table_status(line.split()[0])), line


def test_show_json_has_paper_numbers_and_static_columns(tmp_path):
    compute_static(table_spec("mformer_table4"), tmp_path, echo=lambda _: None)
    obj = show_json("mformer_table4", "tiny", str(tmp_path), results_root=None)  # no tracked records
    assert obj["id"] == "mformer_table4" and obj["status"] == "implemented"
    assert obj["columns"][-3:] == ["GFLOPS", "K-400", "SSv2"]
    assert [r["paper"]["K-400"] for r in obj["rows"]] == [79.2, 78.5, 76.0, 77.2, 79.7]
    assert obj["rows"][2]["paper"]["Att_T"] == "✗" and obj["rows"][0]["paper"]["Att_T"] is None
    # no runs in tmp_path: measured columns are null, computed GFLOPs are not
    assert all(r["ours"]["K-400"] is None for r in obj["rows"])
    gflops = [r["ours"]["GFLOPS"] for r in obj["rows"]]
    assert all(isinstance(g, float) for g in gflops)
    assert gflops[4] > 1.8 * gflops[0]  # trajectory with Att_T costs about twice joint attention
    assert {r["static"]["GFLOPS"]["source"] for r in obj["rows"]} == {"computed"}


def test_show_labels_a_static_cell_by_its_source_never_by_a_scale(tmp_path):
    compute_static(table_spec("mformer_table3a"), tmp_path, echo=lambda _: None)
    out = cli("show", "mformer_table3a", "--runs-dir", str(tmp_path), "--results-dir", "")
    assert out.returncode == 0, out.stderr
    memory = [line for line in out.stdout.splitlines() if line.strip().startswith("Mem.")]
    assert len(memory) == 4 and all("ours (needs GPU): needs GPU; activations" in line for line in memory), memory
    assert "ours (tiny" not in "\n".join(memory)
    gflops_free = cli("show", "mformer_table3a", "--runs-dir", str(tmp_path / "none"), "--results-dir", "")
    assert "ours (" not in gflops_free.stdout  # no record, no runs: nothing claimed
    # --json: a unitless ratio never sits in the paper's gigabyte column; the static cell says what it is
    rows = show_json("mformer_table3a", "tiny", str(tmp_path), results_root=None)["rows"]
    assert [r["ours"]["Mem."] for r in rows] == [None] * 4
    assert rows[0]["static"]["Mem."]["value"] == 1.0 and "1.00× `exact`" in rows[0]["static"]["Mem."]["text"]


def test_show_takes_the_repositorys_own_experiments(tmp_path):
    obj = show_json("msca_kv_frames", "tiny", str(tmp_path), results_root=None)  # no records at all
    assert obj["status"] == "the repository's own experiment, not a paper table"
    assert obj["columns"] == ["motion top-1"] and obj["default_seeds"] == 3
    assert [r["key"] for r in obj["rows"]] == ["msca_kv_h1", "msca_kv_opposite_h1", "msca_qkv_h1",
                                                "msca_qkv_opposite_h1"]
    assert all(r["ours"]["motion top-1"] is None for r in obj["rows"])
    out = cli("show", "synthetic_learnability", "--runs-dir", str(tmp_path))  # its tracked records
    assert out.returncode == 0, out.stderr
    assert "- tiny Motionformer on synth_motion_pairs (--rows synth_motion_pairs)" in out.stdout
    motion = out.stdout.split("(--rows synth_motion_pairs)")[1].splitlines()[1]
    assert re.fullmatch(r" +top-1 +ours \(tiny runs\): \d+\.\d ± \d+\.\d \(n=\d; tiny, synth_motion_pairs, CPU\)",
                        motion)
    # the verb-noun run logs verb, noun and action top-1, no top1: those lines, and no empty top-1 line
    verbnoun = out.stdout.split("(--rows synth_verbnoun)")[1].split("\n- ")[0].strip().splitlines()
    assert [line.split(" ours")[0].strip() for line in verbnoun] == ["verb top-1", "noun top-1", "action top-1"]
    assert all(re.search(r"\d+\.\d \(n=1; tiny, synth_verbnoun, CPU\)$", line) for line in verbnoun), verbnoun


def test_show_keeps_the_dash_of_an_own_experiments_run_that_has_not_finished(tmp_path, capsys):
    """A column is left out only where its run finished without the metric; mformer_official's two columns are two
    runs, and the one without a record still says so."""
    cfg = next(c for c in resolve_runs("mformer_official", "tiny", None, 1, None, None) if c.column == "K-400")
    record = {"table": cfg.table, "row": cfg.row, "column": cfg.column, "seed": 0, "scale": "tiny",
              "dataset": cfg.data.dataset, "metrics": {"top1": 50.0}, "config": cfg.to_dict(), "git_commit": "a" * 40}
    path = tmp_path / cfg.table / cfg.row / "seed0" / "tiny-k_400" / "metrics.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(record))
    assert main(["show", "mformer_official", "--runs-dir", str(tmp_path), "--results-dir", ""]) == 0
    lines = [line.split(" ours")[0].strip() + ":" + line.split(": ", 1)[1][:4]
             for line in capsys.readouterr().out.splitlines() if " ours (tiny runs)" in line]
    assert lines == ["K-400:50.0", "SSv2:—"]


# Every table of the papers is implemented; the paths for a listed table without a spec (a new paper's) are
# checked on one table taken out of the registry for the test.
@pytest.fixture
def unregistered_table(monkeypatch):
    monkeypatch.delitem(spec_module._TABLE_SPECS, "msca_table3")
    return "msca_table3"


def test_show_json_of_a_table_without_a_spec_is_one_json_object(unregistered_table, capsys):
    assert main(["show", unregistered_table, "--json"]) == 0
    obj = json.loads(capsys.readouterr().out)
    assert obj["status"] == "not implemented"
    assert set(obj) >= {"id", "status", "columns", "rows"} and obj["rows"]
    assert all(set(r) >= {"label", "paper", "ours"} for r in obj["rows"])
    assert all(v is None for r in obj["rows"] for v in r["ours"].values())


def test_running_a_table_without_a_spec_names_its_area(unregistered_table, capsys):
    assert main(["run", unregistered_table, "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "is listed but not implemented yet" in err and "shift family" in err, err


def test_unknown_id_lists_close_matches():
    out = cli("show", "mformer_tabel4")
    assert out.returncode != 0
    assert "mformer_table4" in out.stderr and "unknown table id" in out.stderr


def test_a_run_without_data_names_each_missing_dataset_once(tmp_path, monkeypatch, capsys):
    import experiments.harness.runner as runner

    monkeypatch.setattr(runner, "compute_static", lambda *a, **k: None)  # not what this test is about
    empty = tmp_path / "empty"
    code = main(["run", "mformer_table4", "--scale", "paper", "--data-root", str(empty), "--runs-dir",
                 str(tmp_path / "runs"), "--reports-dir", str(tmp_path / "reports")])
    assert code == 2
    err = capsys.readouterr().err
    assert err == (f"error: no run of mformer_table4 could start; missing data:\n"
                   f"  kinetics400: not found at {empty / 'kinetics400'}\n  ssv2: not found at {empty / 'ssv2'}\n")


def test_an_unknown_id_suggests_only_really_close_ids(capsys):
    assert main(["show", "nonexistent_table"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: unknown table id 'nonexistent_table'. Every id: `python -m experiments list`."
    assert main(["run", "mformer_tabel4", "--dry-run"]) == 2
    assert "Did you mean: mformer_table4? Every id" in capsys.readouterr().err
    assert main(["show", "mformer_table3"]) == 2  # the start of an id
    assert ("Did you mean: mformer_table3a, mformer_table3b, mformer_table3c, mformer_table3d?"
            in capsys.readouterr().err)


def test_run_creates_the_reports_dir_before_training(tmp_path, monkeypatch):
    import experiments.__main__ as entry_point

    reports = tmp_path / "not" / "yet"
    seen = []
    monkeypatch.setattr(entry_point, "run_table", lambda *a, **k: seen.append(reports.is_dir()) or [])
    entry_point.run_and_report("mformer_table4", runs_root=tmp_path / "runs", reports_dir=reports, echo=lambda _: None)
    assert seen == [True] and (reports / "mformer_table4.md").exists()


@pytest.mark.parametrize("table_id,scale", [(t, s) for t in registered_specs() for s in SCALES
                                             if s in table_spec(t).scales])
def test_every_row_of_every_spec_resolves_and_builds_on_meta(table_id, scale):
    spec = table_spec(table_id)
    configs = resolve_runs(table_id, scale=scale, seeds=2, data_root="/datasets")
    assert configs or not spec.metric_columns, table_id  # Table 1 is rendered, not trained
    keys = {(c.row, c.column, c.seed) for c in configs}
    assert len(keys) == len(configs)  # one run directory per (row, column, seed)
    built = set()
    for cfg in configs:
        json.dumps(cfg.to_dict())  # printable by --dry-run
        get_task(cfg.task)  # every run names a registered task
        if scale == "paper" and spec.is_paper_table:
            # ListOps with no lra_listops/ under the data root is generated locally
            assert (cfg.data.dataset, cfg.data.root) == ("lra_listops", None) or cfg.data.root.startswith("/datasets/")
        model = json.dumps(cfg.to_dict()["model"], sort_keys=True) + cfg.data.dataset + str(cfg.data.num_frames)
        if model not in built:  # the same model in another column or seed is built once
            built.add(model)
            check_buildable(cfg)


def test_table4_rows_differ_only_in_attention():
    configs = resolve_runs("mformer_table4", scale="paper")
    by_column = {}
    for cfg in configs:
        d = cfg.to_dict()
        attn = (d["model"]["overrides"].pop("attn_layer"), json.dumps(d["model"]["overrides"].pop("attn_kwargs", {})))
        d.pop("row")
        by_column.setdefault(cfg.column, []).append((attn, json.dumps(d, sort_keys=True)))
    for column, rows in by_column.items():
        assert len({rest for _, rest in rows}) == 1, f"{column}: rows differ in more than the attention"
        assert len({attn for attn, _ in rows}) == 5


def test_paper_scale_matches_the_paper_setup():
    cfg = next(c for c in resolve_runs("mformer_table4", scale="paper") if c.column == "K-400")
    assert cfg.model.name == "vit_base_patch16_video" and "in21k" in cfg.model.pretrained
    assert (cfg.data.num_frames, cfg.data.frame_stride, cfg.data.crop_size) == (16, 4, 224)
    assert (cfg.data.test_clips, cfg.data.test_crops) == (10, 3)
    assert (cfg.optim.lr, cfg.optim.epochs, cfg.optim.milestones, cfg.optim.label_smoothing) == (
        1e-4, 35, (20, 30), 0.2)
    ssv2 = next(c for c in resolve_runs("mformer_table4", scale="paper") if c.column == "SSv2")
    assert ssv2.data.hflip is False and ssv2.data.sampling == "segments"


def test_dry_run_selects_rows_and_trains_nothing(tmp_path):
    out = cli("run", "mformer_table4", "--rows", "joint", "traj_attT_normS", "--seeds", "2", "--dry-run",
              "--verbose", "--runs-dir", str(tmp_path), "--epochs", "3")
    assert out.returncode == 0, out.stderr
    assert out.stdout.count('"table": "mformer_table4"') == 2 * 2 * 2  # rows x columns x seeds
    assert '"epochs": 3' in out.stdout
    assert "# 8 run(s): 8 would train, 0 would be skipped for missing data" in out.stdout
    assert not any(tmp_path.iterdir())


def test_dry_run_ends_with_what_would_train_and_the_missing_data_once(tmp_path, capsys):
    runs = ["run", "mformer_table4", "--scale", "paper", "--dry-run", "--runs-dir", str(tmp_path)]
    assert main(runs + ["--data-root", str(tmp_path / "empty")]) == 0
    lines = capsys.readouterr().out.splitlines()
    import torch

    # the preset's GPUs, on a machine without one: planned, and said once
    note = ("# not on this machine: trainer.accelerator='gpu' (--accelerator): none here (this machine has cpu); "
            "`run` here stops before anything trains, a machine with it runs it")
    notes = [] if torch.cuda.is_available() else [note]
    assert len(lines) == 10 + 3 + len(notes) and '"table"' not in "\n".join(lines)  # a line per run, no configs
    assert all(line.endswith(("skip: needs kinetics400", "skip: needs ssv2")) for line in lines[:10])
    assert lines[10] == "# 10 run(s): 0 would train, 10 would be skipped for missing data"
    assert lines[11] == (f"# missing data: kinetics400 (not found at {tmp_path / 'empty' / 'kinetics400'}); "
                         f"ssv2 (not found at {tmp_path / 'empty' / 'ssv2'})")
    assert lines[12:-1] == notes
    assert main(runs + ["--rows", "joint"]) == 0  # no --data-root: say where to point it
    assert "# missing data: kinetics400 (pass --data-root DIR holding kinetics400/); ssv2 (" in capsys.readouterr().out

    assert main(runs + ["--rows", "joint", "--json"]) == 0
    obj = json.loads(capsys.readouterr().out)
    assert [r["action"] for r in obj["runs"]] == ["skip: needs kinetics400", "skip: needs ssv2"]
    assert obj["runs"][0]["config"]["data"]["dataset"] == "kinetics400"
    assert obj["summary"] == {"runs": 2, "train": 0, "skip": 2, "done": 0, "reuse": 0, "resume": 0, "busy": 0}
    assert set(obj["missing_data"]) == {"kinetics400", "ssv2"}
    assert main(["run", "mformer_table4", "--json"]) == 2  # describes a dry run only
    assert "add --dry-run" in capsys.readouterr().err


def test_table5_listops_is_generated_where_the_data_root_has_no_release(tmp_path, capsys):
    """ListOps' column runs everywhere: with --data-root but no lra_listops/ under it, the run generates the set
    (no data root in its configuration) instead of being skipped; the other LRA tasks still need their files."""
    assert main(["run", "mformer_table5", "--scale", "paper", "--rows", "exact", "--dry-run", "--json",
                 "--data-root", str(tmp_path / "no_listops"), "--runs-dir", str(tmp_path / "runs")]) == 0
    obj = json.loads(capsys.readouterr().out)
    listops = next(r for r in obj["runs"] if r["config"]["data"]["dataset"] == "lra_listops")
    assert listops["action"] == "train" and listops["config"]["data"]["root"] is None
    assert set(obj["missing_data"]) == {"lra_text", "lra_retrieval", "lra_image", "lra_pathfinder"}


def _broken(row: RowSpec) -> TableSpec:
    base = table_spec("mformer_table4")
    return TableSpec("broken_spec", (row,), base.metric_columns, base.scales, is_paper_table=False)


@pytest.mark.parametrize("row,message", [
    (RowSpec("typo", 0, "", {"attn_layer": "trajectory", "attn_kwargs": {"temporal_pol": "average"}}),
     "unknown option(s) 'temporal_pol'; valid options: "),
    (RowSpec("typo", 0, "", {"embed_dims": 32}), "model 'vit_tiny_video': unknown option(s) 'embed_dims'"),
    (RowSpec("typo", 0, "", data={"num_frame": 4}), "unknown DataConfig option(s) ['num_frame']"),
    (RowSpec("typo", 0, "", scales={"tiny": {"optimiser": {}}}), "unknown key(s) ['optimiser'] in scales['tiny']"),
    (RowSpec("typo", 0, "", scales={"tiny": {"optim": {"epoch": 3}}}), "unknown OptimConfig option(s) ['epoch']"),
])
def test_dry_run_builds_every_model_and_names_a_bad_option(monkeypatch, capsys, row, message):
    monkeypatch.setitem(spec_module._TABLE_SPECS, "broken_spec", lambda: _broken(row))
    assert main(["run", "broken_spec", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert message in err, err


def test_unknown_row_is_a_clear_error():
    out = cli("run", "mformer_table4", "--rows", "trajectory", "--dry-run")
    assert out.returncode != 0
    assert "unknown row 'trajectory'" in out.stderr and "traj_attT_normS" in out.stderr
