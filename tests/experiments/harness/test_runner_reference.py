"""The runner's configuration logic against values written out by hand: how a table's rows, columns and scales
resolve into runs, which options the user's flags set, what makes two runs the same experiment, and what a run
directory's state means (done, resumable, reusable, conflicting). No training: records and checkpoints are written
by hand, laid out as ``execute`` writes them."""

from __future__ import annotations

import json

import pytest

from experiments.harness import spec as spec_module
from experiments.harness.plan import missing_data, planned_steps, resolve_runs
from experiments.harness.records import RUN_STATE, RunConflictError, experiment_key, run_state
from experiments.harness.run_dir import RunDir, find_equivalent_run
from experiments.harness.runner import execute
from experiments.harness.spec import (
    DataConfig,
    MetricColumn,
    ModelConfig,
    OptimConfig,
    RowSpec,
    ScalePreset,
    TableSpec,
    TrainerConfig,
)


def planned_action(cfg, runs_root, force=False):
    """What ``run --dry-run`` says of one run (``plan.planned_steps``; a refusal raised, as it stops the dry run)."""
    return planned_steps([cfg], runs_root, force)[0].unless_refused().line(runs_root)


TOY = "toy_runner_spec"


def _toy() -> TableSpec:
    """Two scales whose presets differ everywhere; rows and columns that each set something at each level."""
    tiny = ScalePreset(
        "tiny", ModelConfig("toy_tiny", {"depth": 2, "heads": 2}),
        {"A": DataConfig("synth_motion", "video_classification", num_frames=8, crop_size=32),
         "B": DataConfig("kinetics400", "video_classification", num_frames=8, crop_size=32)},
        OptimConfig(lr=1e-3, epochs=4, schedule="cosine"))
    paper = ScalePreset(
        "paper", ModelConfig("toy_paper", {"depth": 12, "heads": 12}, pretrained="preset.pth"),
        {"A": DataConfig("synth_motion", "video_classification", num_frames=16, crop_size=224, batch_size=16),
         "B": DataConfig("kinetics400", "video_classification", num_frames=16, crop_size=224, batch_size=16)},
        OptimConfig(lr=1e-4, epochs=35, schedule="step", milestones=(20, 30)),
        TrainerConfig(devices=2))
    rows = (
        RowSpec("base", 1, "Base"),
        RowSpec("wide", 2, "Wide", model={"heads": 4}, data={"num_frames": 4},
                scales={"tiny": {"model": {"depth": 3}, "data": {"crop_size": 24, "batch_size": 4},
                                 "optim": {"lr": 0.5}, "name": "row_tiny"},
                        "paper": {"optim": {"lr": 0.25}, "trainer": {"max_steps": 7}, "pretrained": "row.pth"}}),
        RowSpec("deep", 3, "Deep", model={"depth": 6}),
    )
    columns = (
        MetricColumn("A"),
        MetricColumn("A top-5", metric="top5", run="A"),  # the same run as "A"
        MetricColumn("B", model={"heads": 8}, data={"num_frames": 2, "batch_size": 8},
                     scales={"tiny": {"model": {"depth": 5}, "data": {"crop_size": 16}, "name": "col_tiny"},
                             "paper": {"optim": {"lr": 0.125}}}),
    )
    return TableSpec(TOY, rows, columns, {"tiny": tiny, "paper": paper}, is_paper_table=False)


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setitem(spec_module._TABLE_SPECS, TOY, _toy)
    return TOY


def _summary(cfg):
    return (cfg.model.name, dict(cfg.model.overrides), cfg.model.pretrained, cfg.data.num_frames, cfg.data.crop_size,
            cfg.data.batch_size, cfg.optim.lr, cfg.trainer.max_steps)


# --- resolve_runs: rows, columns, scales, seeds, --rows, data root --------------------------------------------------

@pytest.mark.parametrize("row, column, scale, expected", [
    ("base", "A", "tiny", ("toy_tiny", {"depth": 2, "heads": 2}, None, 8, 32, 16, 1e-3, -1)),
    ("wide", "A", "tiny", ("row_tiny", {"depth": 3, "heads": 4}, None, 4, 24, 4, 0.5, -1)),
    ("wide", "B", "tiny", ("col_tiny", {"depth": 5, "heads": 8}, None, 2, 16, 8, 0.5, -1)),
    ("deep", "B", "tiny", ("col_tiny", {"depth": 5, "heads": 8}, None, 2, 16, 8, 1e-3, -1)),
    ("base", "A", "paper", ("toy_paper", {"depth": 12, "heads": 12}, "preset.pth", 16, 224, 16, 1e-4, -1)),
    ("wide", "A", "paper", ("toy_paper", {"depth": 12, "heads": 4}, "row.pth", 4, 224, 16, 0.25, 7)),
    ("wide", "B", "paper", ("toy_paper", {"depth": 12, "heads": 8}, "row.pth", 2, 224, 8, 0.125, 7)),
    ("deep", "A", "paper", ("toy_paper", {"depth": 6, "heads": 12}, "preset.pth", 16, 224, 16, 1e-4, -1)),
])
def test_a_cell_takes_preset_then_row_then_row_at_scale_then_column_then_column_at_scale(toy, row, column, scale,
                                                                                         expected):
    """Each level overrides the one before it, and a row's or scale's entry reaches no other row or scale."""
    (cfg,) = [c for c in resolve_runs(toy, scale, seeds=1) if c.row == row and c.column == column]
    assert _summary(cfg) == expected


def test_rows_run_in_the_tables_order_once_each_whatever_order_rows_are_asked_in(toy):
    """--rows deep base deep: the paper's row order, no run twice, every seed 0..N-1, a shared column run once."""
    configs = resolve_runs(toy, "tiny", ["deep", "base", "deep"], seeds=2)
    assert [(c.row, c.column, c.seed) for c in configs] == [
        ("base", "A", 0), ("base", "A", 1), ("base", "B", 0), ("base", "B", 1),
        ("deep", "A", 0), ("deep", "A", 1), ("deep", "B", 0), ("deep", "B", 1)]
    assert [(c.row, c.seed) for c in resolve_runs(toy, "tiny", None, seeds=1)] == [
        ("base", 0), ("base", 0), ("wide", 0), ("wide", 0), ("deep", 0), ("deep", 0)]


def test_an_unknown_row_among_known_ones_is_refused_naming_every_row(toy):
    with pytest.raises(KeyError, match=r"toy_runner_spec: unknown row 'wid'; rows are: base, wide, deep"):
        resolve_runs(toy, "tiny", ["base", "wid"], seeds=1)


def test_the_data_root_reaches_a_real_dataset_and_leaves_a_generated_one_at_none(toy, tmp_path):
    roots = {c.column: c.data.root for c in resolve_runs(toy, "tiny", ["base"], seeds=1, data_root=tmp_path)}
    assert roots == {"A": None, "B": str(tmp_path / "kinetics400")}
    assert {c.data.root for c in resolve_runs(toy, "tiny", ["base"], seeds=1)} == {None}


def test_the_paper_batch_is_pinned_before_the_users_batch_size(toy):
    """The preset's 2 devices x 16 clips are the batch its lr is stated for; --batch-size 4 then scales the lr."""
    (cfg,) = [c for c in resolve_runs(toy, "paper", ["base"], seeds=1, overrides={"data": {"batch_size": 4}})
              if c.column == "A"]
    assert (cfg.data.batch_size, cfg.trainer.devices, cfg.trainer.reference_batch) == (4, 2, 32)


# --- options: flags, --set, values, milestones ---------------------------------------------------------------------

def test_a_flag_not_given_leaves_the_preset_and_set_null_replaces_it(toy):
    (cfg,) = resolve_runs(toy, "paper", ["base"], seeds=1, overrides={"model": {"pretrained": None},
                                                                     "optim": {"epochs": None, "lr": 0.5}})[:1]
    assert (cfg.model.pretrained, cfg.optim.epochs, cfg.optim.lr) == ("preset.pth", 35, 0.5)
    (cfg,) = resolve_runs(toy, "paper", ["base"], seeds=1, settings=[("model.pretrained", None)])[:1]
    assert cfg.model.pretrained is None


def test_true_is_not_a_count():
    """JSON ``true`` is a Python int subclass; an epoch count of True is a typo, not 1 epoch."""
    with pytest.raises(ValueError, match=r"^optim\.epochs=True: expects an integer, got a bool$"):
        resolve_runs("mformer_table6b", "tiny", ["mformer"], 1, settings=[("optim.epochs", True)])


def test_epochs_ending_at_a_milestone_are_refused(toy):
    """Epochs 0..29 of a 30-epoch run: a milestone at epoch 30 never happens."""
    with pytest.raises(ValueError, match=r"--epochs 30 ends before the step schedule's milestone\(s\) \[30\]"):
        resolve_runs(toy, "paper", ["base"], seeds=1, overrides={"optim": {"epochs": 30}})
    (cfg,) = resolve_runs(toy, "paper", ["base"], seeds=1, overrides={"optim": {"epochs": 31}})[:1]
    assert cfg.optim.milestones == (20, 30)


# --- what makes two runs the same experiment --------------------------------------------------------------------

def _cfg(table="mformer_table2b", row="traj_separatepe", seed=0, **sections):
    return [c for c in resolve_runs(table, "tiny", [row], seed + 1, None, sections) if c.column == "K-400"][seed]


def test_the_experiment_key_leaves_out_the_place_seed_data_folder_and_loader_workers():
    key = json.loads(experiment_key(_cfg().to_dict()))
    assert sorted(key) == ["data", "model", "optim", "scale", "trainer"]
    assert "root" not in key["data"] and "num_workers" not in key["data"] and key["scale"] == "tiny"
    other = _cfg("mformer_table3a", "exact", seed=1, data={"root": "/elsewhere", "num_workers": 7})
    assert experiment_key(other.to_dict()) == experiment_key(_cfg().to_dict())
    assert experiment_key(_cfg(optim={"lr": 0.5}).to_dict()) != experiment_key(_cfg().to_dict())


def _write(runs, cfg, into=None, **extra):
    """A finished record of ``cfg``, as ``execute`` writes it, in ``into``'s run directory (default: cfg's)."""
    path = RunDir.of((into or cfg), runs).path / "metrics.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"table": cfg.table, "row": cfg.row, "column": cfg.column, "seed": cfg.seed, "scale": cfg.scale,
              "metrics": {"top1": 50.0}, "config": cfg.to_dict(), "wall_time_s": 1.0, **extra}
    path.write_text(json.dumps(record))
    return record


def test_a_record_written_before_a_field_existed_is_still_this_run_and_reusable(tmp_path):
    """A field left at today's default is the same configuration as one recorded without it."""
    old = _cfg("mformer_table2b")
    record = _write(tmp_path, old)
    del record["config"]["optim"]["layer_decay"], record["config"]["trainer"]["checkpoint_every_n_steps"]
    (RunDir.of(old, tmp_path).path / "metrics.json").write_text(json.dumps(record))
    assert planned_action(old, tmp_path) == "done"
    assert planned_action(_cfg("mformer_table3a", "exact"), tmp_path) == \
        "reuse mformer_table2b/traj_separatepe/seed0/tiny-k_400"


def test_a_finished_run_is_reused_only_at_the_same_seed_and_data_folder_but_whatever_its_workers(tmp_path):
    target = _cfg("mformer_table3a", "exact")
    source = _cfg("mformer_table2b", "traj_separatepe", data={"root": str(tmp_path / "other")})
    _write(tmp_path, source)
    assert find_equivalent_run(target, tmp_path) is None
    seed1 = _cfg("mformer_table2b", "traj_separatepe", seed=1)
    _write(tmp_path, seed1, into=_cfg("mformer_table2b", "traj_separatepe"))  # seed 1's record in seed 0's folder
    assert find_equivalent_run(target, tmp_path) is None
    _write(tmp_path, _cfg("mformer_table2b", "traj_separatepe", data={"num_workers": 0}))
    assert find_equivalent_run(target, tmp_path) == \
        RunDir(tmp_path / "mformer_table2b" / "traj_separatepe" / "seed0" / "tiny-k_400")


def test_a_reused_record_is_never_the_source_of_another_reuse(tmp_path):
    """Table 3a's copy of Table 2b's run sorts first; Table 4's reuse names the run that trained."""
    _write(tmp_path, _cfg("mformer_table2b"))
    _write(tmp_path, _cfg("mformer_table3a", "exact"), reused_from="mformer_table2b/traj_separatepe/seed0/tiny-k_400")
    assert planned_action(_cfg("mformer_table4", "traj_attT_normS"), tmp_path) == \
        "reuse mformer_table2b/traj_separatepe/seed0/tiny-k_400"


# --- what a run directory's state means -------------------------------------------------------------------------

def _checkpoint(runs, cfg, state):
    import torch

    path = RunDir.of(cfg, runs).path / "checkpoints" / "last.ckpt"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"global_step": 4, "callbacks": {} if state is None else {RUN_STATE: state}}, path)
    return path


def test_a_checkpoint_names_its_place_configuration_and_process_count():
    cfg = _cfg()
    assert run_state(cfg, 2) == {"table": "mformer_table2b", "row": "traj_separatepe", "column": "K-400", "seed": 0,
                                 "scale": "tiny", "config": cfg.to_dict(), "world_size": 2}


def test_planned_action_by_directory_state(tmp_path, monkeypatch):
    cfg = _cfg()
    assert planned_action(cfg, tmp_path) == "train"
    last = _checkpoint(tmp_path, cfg, None)  # a checkpoint that predates RUN_STATE: resumed unchecked
    assert planned_action(cfg, tmp_path) == f"resume from {last}"
    _write(tmp_path, _cfg("mformer_table3a", "exact"))  # an identical run finished: reused, not resumed
    assert planned_action(cfg, tmp_path) == "reuse mformer_table3a/exact/seed0/tiny-k_400"
    _write(tmp_path, cfg)  # its own record, beside its checkpoint: done, neither resumed nor reused
    assert planned_action(cfg, tmp_path) == "done"
    assert planned_action(cfg, tmp_path, force=True) == "train (--force)"
    absent = _cfg("mformer_table2b", data={"dataset": "kinetics400", "synthetic_params": {}})
    assert planned_action(absent, tmp_path, force=True) == "skip: needs kinetics400"


def _check_run_dir(cfg, runs_root):
    return RunDir.of(cfg, runs_root).check(cfg, runs_root)


def test_check_run_dir_refuses_another_runs_checkpoint_or_another_seeds_record(tmp_path):
    cfg = _cfg()
    _check_run_dir(cfg, tmp_path)  # empty
    _checkpoint(tmp_path, cfg, run_state(_cfg(optim={"lr": 0.5}), 1))
    with pytest.raises(RunConflictError, match=r"last\.ckpt was written for another run \(recorded -> asked: "
                                               r"optim\.lr: 0\.5 -> 0\.001\)"):
        _check_run_dir(cfg, tmp_path)
    _checkpoint(tmp_path, cfg, run_state(cfg, 1))
    _check_run_dir(cfg, tmp_path)
    _write(tmp_path, _cfg(seed=1), into=cfg)
    with pytest.raises(RunConflictError, match=r"metrics\.json was written for another run \(recorded -> asked: "
                                               r"seed: 1 -> 0\);"):
        _check_run_dir(cfg, tmp_path)


def test_a_foreign_checkpoint_stops_the_dry_run_and_the_run_even_when_an_identical_run_finished(tmp_path):
    """``run_table`` stops on it (``RunDir.check``); ``--dry-run`` said "reuse ..." and ``execute`` would have
    written the reused record beside that checkpoint."""
    _write(tmp_path, _cfg("mformer_table2b"))
    cfg = _cfg("mformer_table3a", "exact")
    _checkpoint(tmp_path, cfg, run_state(_cfg("mformer_table3a", "exact", optim={"lr": 0.5}), 1))
    for stop in (_check_run_dir, planned_action, lambda c, r: execute(c, r, echo=lambda _: None)):
        with pytest.raises(RunConflictError, match=r"optim\.lr: 0\.5 -> 0\.001"):
            stop(cfg, tmp_path)
    assert not (RunDir.of(cfg, tmp_path).path / "metrics.json").exists()


def test_missing_data_says_where_the_dataset_was_expected(tmp_path):
    real = {"dataset": "kinetics400", "synthetic_params": {}}
    assert missing_data(_cfg(data=real)) == "needs data: kinetics400 (pass --data-root DIR holding kinetics400/)"
    absent = tmp_path / "kinetics400"
    assert missing_data(_cfg(data={**real, "root": str(absent)})) == f"needs data: kinetics400 (not found at {absent})"
    absent.mkdir()
    assert missing_data(_cfg(data={**real, "root": str(absent)})) is None
    assert missing_data(_cfg()) is None  # generated


def test_a_columns_pretrained_parts_replace_the_rows_and_add_none():
    """Precedence for weights: the column's, else the row's, else the preset's; where the row and the column both
    load parts, the column replaces the parts the row loads (CAST's CLIP* in Table 2's SSv2 column keeps its one
    expert), and a column sharing no part with the row is refused by name."""
    preset = ScalePreset("p", ModelConfig("m", pretrained={"spatial": "preset_s", "temporal": "preset_t"}),
                         {"A": DataConfig("synth_motion", "video_classification")}, OptimConfig())
    rows = (RowSpec("both", 1, "both", scales={"tiny": {"pretrained": {"spatial": "s", "temporal": "t"}}}),
            RowSpec("alone", 2, "alone", scales={"tiny": {"pretrained": {"spatial": "s"}}}),
            RowSpec("preset", 3, "preset"),
            RowSpec("file", 4, "file", scales={"tiny": {"pretrained": "whole.pth"}}),
            RowSpec("other", 5, "other", scales={"tiny": {"pretrained": {"audio": "a"}}}))
    columns = (MetricColumn("A", scales={"tiny": {"pretrained": {"spatial": "s", "temporal": "col_t"}}}),
               MetricColumn("A plain", run="plain", dataset="A"))
    spec = TableSpec("toy_pretrained", rows, columns, {"tiny": preset}, is_paper_table=False)
    weights = {(row.key, column.run_name): spec.resolve(row, column, "tiny", 0).model.pretrained
               for row in rows[:4] for column in columns}
    assert weights == {
        ("both", "A"): {"spatial": "s", "temporal": "col_t"}, ("both", "plain"): {"spatial": "s", "temporal": "t"},
        ("alone", "A"): {"spatial": "s"}, ("alone", "plain"): {"spatial": "s"},
        ("preset", "A"): {"spatial": "s", "temporal": "col_t"},
        ("preset", "plain"): {"spatial": "preset_s", "temporal": "preset_t"},
        ("file", "A"): {"spatial": "s", "temporal": "col_t"}, ("file", "plain"): "whole.pth"}
    with pytest.raises(ValueError, match=r"row 'other', column 'A', scale 'tiny': the column's pretrained parts "
                                         r"\['spatial', 'temporal'\] share none with the row's \['audio'\]"):
        spec.resolve(rows[4], columns[0], "tiny", 0)
