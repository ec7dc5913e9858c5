"""A run directory is reused or resumed only by the run it was written for; a record of the wrong shape, a training
split with nothing in it, a step schedule cut short by ``--epochs`` and a failing side-by-side run each stop with
one line that names the file, the data or the run."""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor

import pytest

from experiments.__main__ import main as experiments_main
from experiments.harness import jobs, provenance, runner
from experiments.harness.cli import parse_setting
from experiments.harness.execute import NoTrainingDataError
from experiments.harness.plan import planned_steps, resolve_runs
from experiments.harness.records import RUN_STATE, RunConflictError, run_state
from experiments.harness.run_dir import RunDir, RunsTree, pretrained_weights
from experiments.harness.runner import execute
from reports.__main__ import main as reports_main
from reports.records import read_record
from tests.experiments.micro_run import ROW, TABLE


def planned_action(cfg, runs_root, force=False):
    """What ``run --dry-run`` says of one run (``plan.planned_steps``; a refusal raised, as it stops the dry run)."""
    return planned_steps([cfg], runs_root, force)[0].unless_refused().line(runs_root)


# The micro run of tests/experiments/micro_run.py (32 generated training videos, 16 test videos), one thread, no
# workers.
MICRO = {"optim": {"warmup_epochs": 0},
         "data": {"synthetic_params": {"num_train": 32, "num_val": 16, "seed": 0}, "num_workers": 0,
                  "batch_size": 8},
         "trainer": {"num_threads": 1, "log_every_n_steps": 1}}


def micro_config(table=TABLE, row=ROW, **sections):
    overrides = {k: {**MICRO.get(k, {}), **sections.get(k, {})} for k in MICRO.keys() | sections.keys()}
    return resolve_runs(table, "tiny", [row], 1, None, overrides)[0]


def write_done(runs, cfg, into=None, top1=50.0):
    """A finished record of ``cfg``, as the runner writes it, in ``into``'s run directory (default: cfg's)."""
    path = RunDir.of((into or cfg), runs).path / "metrics.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"table": cfg.table, "row": cfg.row, "column": cfg.column, "seed": cfg.seed,
                                "scale": cfg.scale, "dataset": cfg.data.dataset, "metrics": {"top1": top1},
                                "config": cfg.to_dict(), "wall_time_s": 1.0}))
    return path


# --- findings 1 and 9: a finished record is reused only by its own run, configured as it was ---------------------

def test_a_finished_run_is_reused_only_with_the_options_it_was_trained_with(tmp_path):
    cfg = micro_config()
    write_done(tmp_path, cfg)
    assert execute(cfg, tmp_path)["cached"] and planned_action(cfg, tmp_path) == "done"
    # the data folder and loader workers are no part of what a run computes (experiment_key): still the same run
    moved = micro_config(data={"num_workers": 3, "root": str(tmp_path / "elsewhere")})
    assert execute(moved, tmp_path)["cached"]

    asked = micro_config(optim={"lr": 0.01}, trainer={"max_steps": 8})
    for attempt in (lambda: execute(asked, tmp_path), lambda: planned_action(asked, tmp_path)):
        with pytest.raises(RunConflictError) as caught:
            attempt()
        message = str(caught.value)
        assert message.startswith(f"{RunDir.of(cfg, tmp_path).path}: its metrics.json was written for another run")
        assert "optim.lr: 0.001 -> 0.01" in message and "trainer.max_steps: -1 -> 8" in message
        assert "--force" in message and "--runs-dir" in message and "\n" not in message


def test_a_record_of_another_table_or_row_is_not_taken_for_this_cell(tmp_path):
    joint = micro_config("mformer_table4", "joint")
    exact = micro_config("mformer_table3a", "exact")
    write_done(tmp_path, joint, into=exact)  # copied under Table 3a's exact row
    with pytest.raises(RunConflictError, match=r'table: "mformer_table4" -> "mformer_table3a"; '
                                               r'row: "joint" -> "exact"; .*attn_layer'):
        execute(exact, tmp_path)


def test_a_conflict_stops_the_table_before_anything_trains(tmp_path, monkeypatch, capsys):
    trained = []
    monkeypatch.setattr(runner, "prepare_generated_data", lambda *a, **k: None)  # no data to read
    monkeypatch.setattr(runner, "execute", lambda cfg, *a, **k: trained.append(cfg.row))
    monkeypatch.setattr(runner, "compute_static", lambda *a, **k: None)
    other = micro_config(row="mformer_l")
    write_done(tmp_path, micro_config(row="mformer_l", optim={"epochs": 3}), into=other)  # the second run's dir
    with pytest.raises(RunConflictError, match=r"optim\.epochs: 3 -> \d+"):
        runner.run_table(TABLE, rows=[ROW, "mformer_l"], runs_root=tmp_path, jobs=1, echo=lambda _: None,
                         overrides=MICRO)
    assert trained == []
    # the command line: one line naming the run, exit 2; the dry run says the same
    base = ["run", TABLE, "--rows", ROW, "mformer_l", "--seeds", "1", "--runs-dir", str(tmp_path), "--jobs", "1",
            "--set", "optim.warmup_epochs=0", "--set", 'data.synthetic_params={"num_train": 32, "num_val": 16, '
            '"seed": 0}', "--batch-size", "8", "--num-workers", "0", "--threads", "1",
            "--set", "trainer.log_every_n_steps=1"]
    for argv in (base + ["--dry-run"], base + ["--reports-dir", str(tmp_path / "reports")]):
        assert experiments_main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {RunDir.of(other, tmp_path).path}: ") and err.count("\n") == 1
    assert trained == []


def test_a_run_on_part_of_its_split_says_so_on_the_console(tmp_path, monkeypatch):
    """The report's header lists such cells; the console says it when the run ends, with the file listing them."""
    report = {"train": {"missing": ["a.mp4", "b.mp4"], "skipped_at_train": 3}, "test": {"corrupt": ["c.mp4"]}}
    monkeypatch.setattr(runner, "compute_static", lambda *a, **k: None)
    monkeypatch.setattr(runner, "prepare_generated_data", lambda *a, **k: None)  # no data to read
    monkeypatch.setattr(runner, "execute", lambda cfg, *a, **k: {"metrics": {"top1": 50.0}, "wall_time_s": 1.0,
                                                                  "data_report": report})
    lines = []
    runner.run_table(TABLE, rows=[ROW], runs_root=tmp_path, jobs=1, echo=lines.append, overrides=MICRO)
    run_dir = RunDir.of(micro_config(), tmp_path).path
    assert (f"    data left out: test: 1 corrupt videos; train: 2 missing videos, 3 clips skipped in training "
            f"(the files: {run_dir / 'metrics.json'})") in lines
    report.clear()
    lines.clear()
    runner.run_table(TABLE, rows=[ROW], runs_root=tmp_path, jobs=1, echo=lines.append, overrides=MICRO)
    assert not any("data left out" in line for line in lines)


def test_a_multi_node_preset_started_alone_is_refused_before_it_waits_forever(monkeypatch, tmp_path):
    """CAST's paper preset is the paper's 2 nodes x 8 GPUs: `--devices 8` on one machine, without --num-nodes 1,
    would start 8 processes that wait for 8 more."""
    from experiments.harness.provenance import check_multi_node_launch

    for name in ("MASTER_ADDR", "NODE_RANK", "SLURM_NTASKS", "SLURM_JOB_NAME", "TORCHELASTIC_RUN_ID", "LSB_JOBID"):
        monkeypatch.delenv(name, raising=False)
    cfg = resolve_runs("cast_table2", "paper", ["cast"], 1, "/datasets", {"trainer": {"devices": 8}})[0]
    assert cfg.trainer.num_nodes == 2
    with pytest.raises(ValueError, match=r"cast_table2/cast: trainer.num_nodes=2 .* pass --num-nodes 1"):
        check_multi_node_launch(cfg)
    check_multi_node_launch(resolve_runs("cast_table2", "paper", ["cast"], 1, "/datasets",
                                         {"trainer": {"devices": 8, "num_nodes": 1}})[0])
    trained = []
    monkeypatch.setattr(runner, "prepare_generated_data", lambda *a, **k: None)  # no data to read
    monkeypatch.setattr(runner, "execute", lambda cfg, *a, **k: trained.append(cfg.row))
    monkeypatch.setattr(runner, "compute_static", lambda *a, **k: None)
    (tmp_path / "ssv2").mkdir()  # the other columns' data is absent: skipped
    with pytest.raises(ValueError, match="no multi-node launcher"):  # the table stops before anything trains
        runner.run_table("cast_table2", "paper", ["cast"], data_root=tmp_path, runs_root=tmp_path / "runs",
                         overrides={"trainer": {"devices": 8}}, echo=lambda _: None)
    assert trained == []
    monkeypatch.setenv("MASTER_ADDR", "head")  # a launch by hand on each node (Lightning's general cluster)
    monkeypatch.setenv("NODE_RANK", "1")
    check_multi_node_launch(cfg)


# --- finding 2: a checkpoint is resumed only by the configuration that wrote it ---------------------------------

def write_last_checkpoint(tmp_path, cfg, state):
    import torch

    path = RunDir.of(cfg, tmp_path).path / "checkpoints" / "last.ckpt"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"global_step": 4, "callbacks": {} if state is None else {RUN_STATE: state}}, path)
    return path


def test_a_checkpoint_written_with_other_options_is_not_resumed(tmp_path):
    cfg = micro_config()
    write_last_checkpoint(tmp_path, cfg, run_state(cfg, world_size=1))
    assert RunDir.of(cfg, tmp_path).checkpoint_run(cfg, tmp_path)["world_size"] == 1
    assert planned_action(cfg, tmp_path).startswith("resume from")
    asked = micro_config(optim={"lr": 0.01})
    with pytest.raises(RunConflictError, match=r"its checkpoints/last\.ckpt was written for another run \(recorded "
                                               r"-> asked: optim\.lr: 0\.001 -> 0\.01\), run again with the original"):
        execute(asked, tmp_path)
    with pytest.raises(RunConflictError, match="optim.lr"):
        planned_action(asked, tmp_path)
    write_last_checkpoint(tmp_path, cfg, None)  # written before checkpoints said whose they are: resumed, unchecked
    assert RunDir.of(asked, tmp_path).checkpoint_run(asked, tmp_path) is None
    cut = write_last_checkpoint(tmp_path, cfg, run_state(cfg, world_size=1))
    cut.write_bytes(cut.read_bytes()[:200])  # a file cut short
    with pytest.raises(ValueError, match=rf"last\.ckpt: not a readable PyTorch checkpoint .*; delete the run folder "
                                         rf"{re.escape(str(RunDir.of(cfg, tmp_path).path))} \(or move it away\), or "
                                         rf"run that run again with --force$"):
        planned_action(cfg, tmp_path)


def test_every_checkpoint_says_which_run_wrote_it(tmp_path):
    """A real micro run (one step, a checkpoint each step): each checkpoint holds its run's place, configuration and
    process count; a later command with other options refuses it, and one process cannot resume what two wrote."""
    import torch

    cfg = micro_config(trainer={"max_steps": 1, "checkpoint_every_n_steps": 1})
    record = execute(cfg, tmp_path, progress_bar=False, echo=lambda _: None)
    run_path = RunDir.of(cfg, tmp_path).path
    checkpoint = torch.load(run_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["callbacks"][RUN_STATE] == run_state(cfg, world_size=1)
    assert checkpoint["callbacks"][RUN_STATE]["config"] == record["config"]
    (run_path / "metrics.json").unlink()  # interrupted after training, before the test
    with pytest.raises(RunConflictError, match="trainer.max_steps: 1 -> 2"):
        execute(micro_config(trainer={"max_steps": 2, "checkpoint_every_n_steps": 1}), tmp_path, progress_bar=False,
                echo=lambda _: None)
    checkpoint["callbacks"][RUN_STATE]["world_size"] = 2
    torch.save(checkpoint, run_path / "checkpoints" / "last.ckpt")
    with pytest.raises(RunConflictError, match="written by 2 process"):
        execute(cfg, tmp_path, progress_bar=False, echo=lambda _: None)
    assert not (run_path / "metrics.json").exists()


# --- finding 3: no samples, or no step, records nothing --------------------------------------------------------

def test_an_empty_training_split_fails_naming_its_annotation_file(tmp_path):
    root = tmp_path / "ssv2"
    root.mkdir()
    (root / "labels.json").write_text(json.dumps({"Moving something up": "0"}))
    (root / "train.json").write_text('[{"id": "1", "template": "Moving something up"}, {"id": "2", "templ')
    (root / "validation.json").write_text("[]")
    cfg = micro_config("mformer_table4", "joint", data={"dataset": "ssv2", "root": str(root), "synthetic_params": {}})
    runs = tmp_path / "runs"
    with pytest.raises(NoTrainingDataError) as caught:
        execute(cfg, runs, progress_bar=False, echo=lambda _: None)
    message = str(caught.value)
    assert "its training split has no samples" in message and f"{root / 'train.json'}" in message
    assert "invalid JSON" in message and f"python -m data check ssv2 --root {root}" in message
    assert not (RunDir.of(cfg, runs).path / "metrics.json").exists()


def test_a_fit_that_takes_no_step_records_nothing(tmp_path):
    cfg = micro_config(data={"batch_size": 64})  # 32 training videos, whole batches only: no step
    with pytest.raises(NoTrainingDataError, match=r"it took no optimizer step \(batches of 64 per process x 1"):
        execute(cfg, tmp_path, progress_bar=False, echo=lambda _: None)
    run_path = RunDir.of(cfg, tmp_path).path
    assert not (run_path / "metrics.json").exists() and not (run_path / "checkpoints" / "last.ckpt").exists()


# --- finding 7: --epochs and a step schedule's milestones -------------------------------------------------------

def test_epochs_before_a_step_milestone_are_refused_with_the_scaled_milestones():
    with pytest.raises(ValueError, match=r"--epochs 10 ends before the step schedule's milestone\(s\) \[20, 30\] "
                                         r".*--set 'optim\.milestones=\[6, 9\]'"):
        resolve_runs("mformer_table4", "paper", ["joint"], 1, None, {"optim": {"epochs": 10}})
    key, value = parse_setting("optim.milestones=[6, 9]")  # the suggestion, as --set parses it
    cfg = resolve_runs("mformer_table4", "paper", ["joint"], 1, None, {"optim": {"epochs": 10, key[6:]: value}})[0]
    assert cfg.optim.epochs == 10 and list(cfg.optim.milestones) == [6, 9]
    assert resolve_runs("mformer_table4", "paper", ["joint"], 1, None, {"optim": {"epochs": 31}})  # both decay
    with pytest.raises(ValueError, match=r"milestone\(s\) \[10\].*optim\.milestones=\[7\]"):
        resolve_runs("msca_table1", "paper", None, 1, None, {"optim": {"epochs": 8}})
    assert resolve_runs(TABLE, "tiny", [ROW], 1, None, {"optim": {"epochs": 2}})  # cosine: it shrinks with N


# --- finding 10: valid JSON of the wrong shape ------------------------------------------------------------------

@pytest.mark.parametrize("content, why", [("[]", "a list, not an object"),
                                          ('{"table": "mformer_table6b", "row": "mformer", "column": "K-400"}',
                                           "no seed, scale, metrics"),
                                          ('{"table": "t", "row": "r", "column": "c", "seed": 0, "scale": "tiny", '
                                           '"metrics": {"top1": "fifty", "top5": 90.0}, "config": {}}',
                                           "metric(s) top1 not numbers")])
def test_a_record_of_the_wrong_shape_is_named_by_the_runner_and_the_reports(tmp_path, capsys, content, why):
    cfg = micro_config()
    path = RunDir.of(cfg, tmp_path).path / "metrics.json"
    path.parent.mkdir(parents=True)
    path.write_text(content)
    named = re.escape(f"{path}: not a run record ({why}")
    with pytest.raises(ValueError, match=rf"^{named}.*\); delete the run folder .*, or run that run again with "
                                         rf"--force$"):
        execute(cfg, tmp_path)
    with pytest.raises(ValueError, match=rf"^{named}"):
        read_record(path)
    assert reports_main(["build", TABLE, "--runs-dir", str(tmp_path), "--out-dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: not a run record") and "--force" in err and "Traceback" not in err


# --- finding 6: the file and the run are named -----------------------------------------------------------------

def test_an_invalid_ssv2_labels_file_is_named(tmp_path):
    from data.annotations import ssv2_label_index

    (tmp_path / "labels.json").write_text('{"Moving something up": "0",\n "Push')
    labels = re.escape(str(tmp_path / "labels.json"))
    with pytest.raises(ValueError, match=rf"^{labels}:2: not valid JSON"):
        ssv2_label_index(tmp_path)
    (tmp_path / "labels.json").write_text('["Moving something up"]')
    with pytest.raises(ValueError, match=rf"^{labels}: expected one JSON object"):
        ssv2_label_index(tmp_path)


def test_a_run_that_fails_side_by_side_is_named(monkeypatch, tmp_path):
    def failing(cfg, runs_root, force):
        if cfg.row == "mformer_l":
            raise ValueError("labels.json: not valid JSON")
        if cfg.row == "mformer_hr":
            raise RuntimeError("an internal error")
        return {"metrics": {}}

    monkeypatch.setattr(jobs, "ProcessPoolExecutor", lambda max_workers, **_: ThreadPoolExecutor(max_workers))
    monkeypatch.setattr(jobs, "_run_job", failing)
    configs = resolve_runs(TABLE, "tiny", [ROW, "mformer_l"], 1, None, None)
    with pytest.raises(ValueError, match=r"^mformer_table6b row=mformer_l column=K-400 seed=0 scale=tiny: "
                                         r"labels\.json: not valid JSON$"):
        list(jobs.run_side_by_side(configs, 2, tmp_path, False))
    with pytest.raises(RuntimeError, match="an internal error") as caught:  # not ours: its type and traceback kept
        list(jobs.run_side_by_side(resolve_runs(TABLE, "tiny", ["mformer_hr"], 1, None, None), 1, tmp_path, False))
    assert "in the run mformer_table6b row=mformer_hr" in "".join(getattr(caught.value, "__notes__", []))


def test_tracked_records_are_run_records():
    """Every committed record passes the shape check the reports and the runner apply."""
    from reports.records import RESULTS_DIR

    paths = sorted(RESULTS_DIR.glob("*/*/seed*/*.json"))
    assert paths and all(read_record(p) for p in paths)


# --- a test that reads no video records nothing; a test-only run records its data ----------------------------------

def _kinetics_list(root, train=4, val=3, missing_val=0):
    """A Kinetics "path label" dataset: ``train`` and ``val`` short videos, the last ``missing_val`` val videos
    listed but absent."""
    import numpy as np

    from data.video_io import write_video

    for split, count in (("train", train), ("val", val)):
        lines = []
        for i in range(count):
            path = root / split / f"v{i}.mp4"
            if split == "train" or i < val - missing_val:
                path.parent.mkdir(parents=True, exist_ok=True)
                frames = np.random.default_rng(i).integers(0, 256, (16, 32, 40, 3), dtype=np.uint8)
                write_video(path, frames, fps=8)
            lines.append(f"{split}/v{i}.mp4 {i % 2}")
        (root / f"{split}.csv").write_text("\n".join(lines) + "\n")
    return root


def _on(root, task="video_classification"):
    """The micro run on ``root`` for one epoch; ``task="video_test_views"``: its test-only version (a fresh model)."""
    return micro_config(data={"dataset": "kinetics400", "root": str(root), "synthetic_params": {}, "batch_size": 2,
                      "task": task}, optim={"epochs": 1})


def test_a_test_that_reads_no_video_fails_naming_its_split_and_records_nothing(tmp_path, capsys):
    from experiments.harness.execute import NoTestDataError

    root = _kinetics_list(tmp_path / "kinetics400", missing_val=3)
    runs = tmp_path / "runs"
    cfg = _on(root)
    for _ in range(2):  # nothing recorded: the second run tests again (from the trained checkpoint)
        with pytest.raises(NoTestDataError) as caught:
            execute(cfg, runs, progress_bar=False, echo=lambda _: None)
        message = str(caught.value)
        assert message.startswith(f"{TABLE} row={ROW} column=K-400 seed=0: its test read no sample of its val split")
        assert "val split: 3 of 3 video(s) missing" in message
        assert f"`python -m data check kinetics400 --root {root} --split val` lists each unusable file" in message
        assert not (RunDir.of(cfg, runs).path / "metrics.json").exists()
    # a test-only run on the same split says the same
    with pytest.raises(NoTestDataError, match=r"val split: 3 of 3 video\(s\) missing"):
        execute(_on(root, "video_test_views"), tmp_path / "runs2", echo=lambda _: None)
    # the command line: one line, exit 2
    cli_runs = tmp_path / "cli_runs"
    argv = ["run", TABLE, "--rows", ROW, "--seeds", "1", "--runs-dir", str(cli_runs), "--jobs", "1", "--epochs", "1",
            "--batch-size", "2", "--num-workers", "0", "--threads", "1", "--no-progress-bar",
            "--set", "data.dataset=kinetics400", "--set", f"data.root={root}", "--set", "data.synthetic_params={}",
            "--set", "trainer.log_every_n_steps=1", "--reports-dir", str(tmp_path / "reports")]
    assert experiments_main(argv) == 2
    error = capsys.readouterr().err.splitlines()[-1]
    assert error.startswith(f"error: {TABLE} row={ROW}") and "val split: 3 of 3" in error
    assert not list(cli_runs.rglob("metrics.json"))


def test_a_test_only_run_records_its_data_report_and_test_videos(tmp_path):
    """As a trained run's record: the split it tested on, with the file it could not read, and the videos it
    counted."""
    root = _kinetics_list(tmp_path / "kinetics400", missing_val=1)
    record = execute(_on(root, "video_test_views"), tmp_path / "runs", echo=lambda _: None)
    assert record["data_report"]["val"]["missing"] == [str(root / "val" / "v2.mp4")]
    assert record["data_report"]["val"]["expected"] == 3 and record["test_videos"] == 2
    assert record["provenance"]["dataset"]["videos"] == {"val": {"expected": 3, "found": 2, "missing": 1,
                                                                  "corrupt": 0}}
    assert provenance.data_left_out(record["data_report"]) == "val: 1 missing videos, 1 clips skipped at test"
    # and its TensorBoard files, as a trained run's test writes them: test/* in the Scalars' units, an HParams
    # session (no experiment summary: the dashboard's columns come from every run), hparams.yaml
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = _on(root, "video_test_views")
    events = EventAccumulator(str(RunDir.of(cfg, tmp_path / "runs").path)).Reload()
    assert events.Scalars("test/top1")[0].value == pytest.approx(record["metrics"]["top1"] / 100)
    plugin = events.PluginTagToContent("hparams")
    assert "_hparams_/session_start_info" in plugin and "_hparams_/experiment" not in plugin
    assert (RunDir.of(cfg, tmp_path / "runs").path / "hparams.yaml").exists()


# --- a verb-noun model's verb count is the data's --------------------------------------------------------------

def test_a_configured_verb_count_that_differs_from_the_datas_stops_the_run_before_it_trains(tmp_path):
    """CAST's tiny row on generated verb-noun data (6 verbs) configured for 7: the classifier would split its logits
    at 6 and read the seventh 'verb' as a noun."""
    cfg = resolve_runs("cast_table1c", "tiny", ["cast"], 1, None, {
        "model": {"pretrained": "", "overrides": {"num_verbs": 7}},
        "data": {"synthetic_params": {"num_train": 8, "num_val": 4, "seed": 0}, "num_workers": 0, "batch_size": 4},
        "optim": {"epochs": 1, "warmup_epochs": 0}, "trainer": {"max_steps": 1, "num_threads": 1}})[0]
    with pytest.raises(ValueError, match=r"^cast_table1c/cast: model num_verbs=7 but the data \(synth_verbnoun\) has "
                                         r"6 verbs and \d+ nouns"):
        execute(cfg, tmp_path, progress_bar=False, echo=lambda _: None)
    assert not (RunDir.of(cfg, tmp_path).path / "checkpoints").exists()


# --- --set SECTION.FIELD=null sets the field; a flag not given leaves it ------------------------------------------

def test_an_explicit_null_sets_a_field_and_a_flag_not_given_leaves_it():
    """As the command line parses them: option flags not given are None (argparse's default) and change nothing;
    ``--set`` values are taken as given, null included."""
    from experiments.harness.cli import build_parser

    args = build_parser().parse_args(["run", "mformer_table4", "--set", "model.pretrained=null",
                                      "--set", "optim.layer_decay=null"])
    flags = {"model": {"pretrained": args.pretrained}, "optim": {"epochs": args.epochs}}
    spec = resolve_runs("mformer_table4", "paper", ["joint"], 1, None, flags)[0]
    assert spec.model.pretrained == "timm:vit_base_patch16_224.orig_in21k_ft_in1k"
    cfg = resolve_runs("mformer_table4", "paper", ["joint"], 1, None, flags, args.set)[0]
    assert cfg.model.pretrained is None and cfg.optim.layer_decay is None and cfg.optim.epochs == spec.optim.epochs
    assert pretrained_weights(cfg, "runs") is None
    with pytest.raises(ValueError, match=r"--set pretrained=\.\.\.: KEY is SECTION\.FIELD with SECTION one of model"):
        resolve_runs("mformer_table4", "paper", ["joint"], 1, None, None, [parse_setting("pretrained=null")])
    with pytest.raises(ValueError, match=r"unknown model option\(s\) \['pretrain'\]"):
        resolve_runs("mformer_table4", "paper", ["joint"], 1, None, None, [parse_setting("model.pretrain=null")])


def test_set_null_from_the_command_line_reaches_the_runs_configuration(capsys):
    """Through ``python -m experiments run ... --dry-run --json`` itself: the paper preset's pretrained weights are
    replaced by none, and a flag not given leaves the preset's value."""
    def pretrained(*extra: str) -> object:
        assert experiments_main(["run", "mformer_table4", "--scale", "paper", "--rows", "joint", "--seeds", "1",
                                 "--dry-run", "--json", *extra]) == 0
        return json.loads(capsys.readouterr().out)["runs"][0]["config"]["model"]["pretrained"]

    assert pretrained() == "timm:vit_base_patch16_224.orig_in21k_ft_in1k"
    assert pretrained("--set", "model.pretrained=null") is None


def test_loader_workers_set_with_set_are_kept_side_by_side(monkeypatch, tmp_path):
    seen = []

    def side_by_side(configs, steps, to_train, jobs, runs_root, force, echo, finished):
        for cfg in configs:
            seen.append(cfg)
            finished(cfg, {"metrics": {"top1": 50.0}, "wall_time_s": 1.0})

    monkeypatch.setattr(runner, "compute_static", lambda *a, **k: None)
    monkeypatch.setattr(runner, "_run_side_by_side", side_by_side)
    monkeypatch.setattr(runner, "prepare_generated_data", lambda *a, **k: None)  # no data to read
    runner.run_table(TABLE, rows=[ROW, "mformer_l"], runs_root=tmp_path, jobs=2, echo=lambda _: None,
                     settings=[("data.num_workers", 3)])
    assert [c.data.num_workers for c in seen] == [3, 3]


def test_a_misspelt_data_option_stops_the_dry_run_and_the_run_by_name(tmp_path, capsys):
    """A data option the task does not read (here ``segment_view_offset``, one letter short) is named with the valid
    ones by ``--dry-run`` and by the run itself, before its run directory is written; not a TypeError from deep in
    the data module."""
    typo = '--set=data.options={"segment_view_offset": [0.0, 0.5]}'
    assert experiments_main(["run", "xvit_table2", "--rows", "xvit_average", "--seeds", "1", "--dry-run", typo]) == 2
    message = capsys.readouterr().err
    assert ("error: xvit_table2/xvit_average/SSv2: unknown data option(s) ['segment_view_offset'] for the task "
            "video_classification; valid: [") in message and "'segment_view_offsets'" in message
    cfg = micro_config(data={"options": {"segment_view_offset": [0.0, 0.5]}})
    with pytest.raises(ValueError, match=r"unknown data option\(s\) \['segment_view_offset'\]"):
        execute(cfg, tmp_path, progress_bar=False, echo=lambda _: None)
    assert not RunDir.of(cfg, tmp_path).path.exists()


@pytest.mark.parametrize("setting, message", [
    ("optim.lr=abc", "optim.lr='abc': expects a number, got a str (VALUE is read as JSON"),
    ('data.synthetic_params={num_train:3}', "data.synthetic_params='{num_train:3}': expects an object, got a str"),
    ("optim.epochs=1.5", "optim.epochs=1.5: expects an integer, got a float"),
    ('data.num_frames="8"', "data.num_frames='8': expects an integer, got a str"),
    ("data.test_clips=0", "data.test_clips=0: must be at least 1"),
    ("trainer.num_threads=0", "trainer.num_threads=0: must be at least 1"),
    ("trainer.checkpoint_every_n_steps=0", "trainer.checkpoint_every_n_steps=0: must be at least 1"),
    ("optim.lr=NaN", "optim.lr=nan: must be finite (not NaN or infinite)"),
    ("optim.gradient_clip_val=1", "unknown optim option(s) ['gradient_clip_val']"),
    ("trainer.gradient_clip_val=Infinity", "trainer.gradient_clip_val=inf: must be finite"),
    ('data.synthetic_params={"noise": -Infinity}', "data.synthetic_params={'noise': -inf}: must be finite"),
    ("trainer.lr_scaling=lin", "trainer.lr_scaling='lin': expects one of 'linear', 'sqrt', 'none', got a str"),
    ("data.train_scale=[32]", "data.train_scale=[32]: expects a list of 2 integers, got a list"),
    ('trainer.devices=[0, "1"]', "trainer.devices=[0, '1']: expects an integer or a string or a list of integers"),
])
def test_a_set_value_of_the_wrong_type_or_range_stops_the_dry_run_by_name(setting, message, capsys):
    assert experiments_main(["run", TABLE, "--rows", ROW, "--seeds", "1", "--dry-run", "--set", setting]) == 2
    assert capsys.readouterr().err.startswith(f"error: {message}")


def test_set_takes_a_list_of_device_indices():
    """Lightning takes ``devices`` as a count, a string or a list of indices; ``--set`` takes the list too."""
    cfg = resolve_runs(TABLE, "tiny", [ROW], 1, None, settings=[("trainer.devices", [0, 2])])[0]
    assert list(cfg.trainer.devices) == [0, 2]


class Stop(Exception):
    pass


def raise_stop(*_):
    raise Stop


@pytest.mark.parametrize("env, moved", [({"LOCAL_RANK": "0", "NODE_RANK": "1"}, False),
                                        ({"LOCAL_RANK": "0", "NODE_RANK": "0"}, True)])
def test_force_moves_a_run_away_on_the_first_node_only(tmp_path, monkeypatch, env, moved):
    """Every rank of a multi-node job runs the command; Lightning's launcher sets LOCAL_RANK and NODE_RANK, and only
    global rank 0 may move the previous run aside (local rank 0 of node 1 is not rank 0)."""
    from experiments.harness import provenance

    for name in ("RANK", "SLURM_PROCID", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(provenance, "set_threads", raise_stop)  # the first step after the move
    runs, cfg = tmp_path / "runs", micro_config()
    write_done(runs, cfg)
    with pytest.raises(Stop):
        execute(cfg, runs, force=True, echo=lambda _: None)
    assert (RunDir.of(cfg, runs).path / "metrics.json").exists() is not moved
    assert RunsTree(runs).replaced_root.exists() is moved
