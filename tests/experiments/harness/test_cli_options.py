"""The command line's options as a run receives them, and what a record's provenance says about its run.

Checked against literal expectations and plain arithmetic written here, never against the code under test:
``--set SECTION.FIELD=VALUE`` parsing (JSON types, '=' inside a value, unknown sections, the order flags and
``--set`` apply in), every ``run`` option flag as it reaches ``--dry-run --json``, the dry run's counts, the paper
preset's global batch (per-device x devices x nodes x accumulation), which process is global rank 0, the launchers
that may start a multi-node run, the config hash's independence from key order, a staged change marking the tree
dirty, the "data left out" line, and ``python -m data`` exit statuses and synthetic splits.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
import types

import pytest

from data.__main__ import main as data_main
from data.annotations import EPIC_COLUMNS
from data.video_io import write_video
from experiments.__main__ import main as experiments_main
from experiments.harness.cli import build_parser, parse_jobs, parse_setting
from experiments.harness.plan import resolve_runs
from experiments.harness.provenance import (
    check_multi_node_launch,
    config_hash,
    data_left_out,
    git_commit,
    launched_as_global_zero,
    with_paper_batch,
)
from experiments.harness.records import run_state
from experiments.harness.run_dir import RunDir
from experiments.presets import AMENDED_SEEDS
from reports.console import show_json
from tests.data.test_cli import random_frames
from tests.experiments.harness.test_run_guards import write_last_checkpoint
from tests.experiments.micro_run import ROW, TABLE

RANK_VARIABLES = ("RANK", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK", "SLURM_PROCID")
LAUNCHER_VARIABLES = ("MASTER_ADDR", "NODE_RANK", "SLURM_NTASKS", "SLURM_JOB_NAME", "TORCHELASTIC_RUN_ID",
                      "LSB_JOBID", "LSB_DJOB_RANKFILE", "JSM_NAMESPACE_LOCAL_RANK", "JSM_NAMESPACE_SIZE")


def _dry_run_json(capsys, *args: str) -> dict:
    """``python -m experiments run TABLE --rows ROW --seeds 1 --dry-run --json ARGS`` as one parsed object."""
    assert experiments_main(["run", TABLE, "--rows", ROW, "--seeds", "1", "--dry-run", "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


# --- --set SECTION.FIELD=VALUE ------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("optim.lr=1e-3", ("optim.lr", 0.001)),  # a float in exponent form, not the string "1e-3"
    ("optim.milestones=[6, 9]", ("optim.milestones", [6, 9])),
    ("model.pretrained=null", ("model.pretrained", None)),
    ("trainer.deterministic=true", ("trainer.deterministic", True)),
    ("trainer.deterministic=True", ("trainer.deterministic", "True")),  # not JSON: kept as the string it is
    ("model.pretrained=None", ("model.pretrained", "None")),
    ("trainer.precision=16-mixed", ("trainer.precision", "16-mixed")),
    ("data.root=/data/a=b", ("data.root", "/data/a=b")),  # only the first '=' separates KEY from VALUE
    ('data.synthetic_params={"num_train": 32}', ("data.synthetic_params", {"num_train": 32})),
])
def test_a_set_value_is_read_as_json_else_kept_as_its_text(text, expected):
    key, value = parse_setting(text)
    assert (key, value) == expected and type(value) is type(expected[1])


def test_a_set_key_outside_the_config_sections_stops_the_dry_run_by_name(capsys):
    code = experiments_main(["run", TABLE, "--rows", ROW, "--seeds", "1", "--dry-run", "--set", "optimiser.lr=0.1"])
    assert code == 2
    assert "--set optimiser.lr=...: KEY is SECTION.FIELD with SECTION one of model, data, optim, trainer" in (
        capsys.readouterr().err)


def test_set_overrides_a_flag_and_several_set_fields_of_one_section_all_apply(capsys):
    obj = _dry_run_json(capsys, "--epochs", "3", "--set", "optim.epochs=5", "--set", "optim.lr=0.01",
                        "--set", "optim.warmup_epochs=0", "--batch-size", "4", "--set", "data.num_frames=4")
    optim, data = obj["runs"][0]["config"]["optim"], obj["runs"][0]["config"]["data"]
    assert (optim["epochs"], optim["lr"], optim["warmup_epochs"]) == (5, 0.01, 0)  # --set comes after the flags
    assert (data["batch_size"], data["num_frames"]) == (4, 4)


def test_a_dotted_set_key_changes_one_key_of_a_mapping_field_and_keeps_the_others(capsys):
    """``--set model.overrides.attn_kwargs.frames_per_pass=8`` on Motionformer Table 4's trajectory row: the row's
    other constructor arguments stay as the spec sets them."""
    base = ["run", "mformer_table4", "--rows", "traj_attT_normS", "--seeds", "1", "--dry-run", "--json"]
    assert experiments_main(base) == 0
    before = json.loads(capsys.readouterr().out)["runs"][0]["config"]["model"]["overrides"]
    assert experiments_main([*base, "--set", "model.overrides.attn_kwargs.frames_per_pass=8",
                             "--set", "model.overrides.drop_path_rate=0.25"]) == 0
    after = json.loads(capsys.readouterr().out)["runs"][0]["config"]["model"]["overrides"]
    assert after["attn_kwargs"] == {**before["attn_kwargs"], "frames_per_pass": 8}
    assert after["drop_path_rate"] == 0.25
    assert {k: v for k, v in after.items() if k not in ("attn_kwargs", "drop_path_rate")} == {
        k: v for k, v in before.items() if k not in ("attn_kwargs", "drop_path_rate")}


def test_a_dotted_set_key_into_a_field_that_is_not_a_mapping_is_refused_by_name(capsys):
    code = experiments_main(["run", TABLE, "--rows", ROW, "--seeds", "1", "--dry-run",
                             "--set", "model.name.depth=4"])
    assert code == 2
    assert "--set model.name.depth=...: model.name is not a mapping (str)" in capsys.readouterr().err


# --- run's option flags as the dry run reports them -------------------------------------------------------------

def test_every_run_flag_reaches_the_dry_run_configuration(capsys, tmp_path):
    obj = _dry_run_json(capsys, "--runs-dir", str(tmp_path), "--batch-size", "4", "--num-workers", "3",
                        "--accelerator", "cpu", "--devices", "2", "--num-nodes", "1", "--strategy", "ddp",
                        "--precision", "bf16-mixed", "--accumulate-grad-batches", "3", "--threads", "2",
                        "--epochs", "2")
    assert (obj["table"], obj["scale"], obj["missing_data"]) == (TABLE, "tiny", {})
    assert obj["summary"] == {"runs": 1, "train": 1, "skip": 0, "done": 0, "reuse": 0, "resume": 0, "busy": 0}
    (run,) = obj["runs"]
    assert run["run_dir"] == str(tmp_path / TABLE / ROW / "seed0" / "tiny-k_400") and run["action"] == "train"
    config = run["config"]
    assert config["trainer"] == {**config["trainer"], "accelerator": "cpu", "devices": 2, "num_nodes": 1,
                                 "strategy": "ddp", "precision": "bf16-mixed", "accumulate_grad_batches": 3,
                                 "num_threads": 2}
    assert type(config["trainer"]["devices"]) is int  # a count, not the string "2"
    assert (config["data"]["batch_size"], config["data"]["num_workers"]) == (4, 3)
    assert config["optim"]["epochs"] == 2
    import torch

    if not 0 < torch.cuda.device_count() < 3:  # GPUs 0 and 2: here, or none (a dry run plans for another machine)
        indices = _dry_run_json(capsys, "--accelerator", "gpu", "--devices", "0,2")["runs"][0]["config"]["trainer"]
        assert indices["devices"] == "0,2"  # device indices stay Lightning's string


def test_the_dry_run_json_names_its_scale(capsys, tmp_path):
    obj = _dry_run_json(capsys, "--scale", "paper", "--runs-dir", str(tmp_path), "--data-root", str(tmp_path))
    assert obj["scale"] == "paper" and obj["runs"][0]["run_dir"].startswith(str(tmp_path / TABLE / ROW / "seed0"))


def test_a_run_with_a_checkpoint_of_its_own_is_counted_as_resumed(capsys, tmp_path):
    cfg = resolve_runs(TABLE, "tiny", [ROW], 1, None, None)[0]  # what the dry run below resolves
    write_last_checkpoint(tmp_path, cfg, run_state(cfg, world_size=1))
    obj = _dry_run_json(capsys, "--runs-dir", str(tmp_path))
    assert obj["runs"][0]["action"] == f"resume from {RunDir.of(cfg, tmp_path).path / 'checkpoints' / 'last.ckpt'}"
    assert obj["summary"] == {"runs": 1, "train": 0, "skip": 0, "done": 0, "reuse": 0, "resume": 1, "busy": 0}


@pytest.mark.parametrize("argv", [["--seeds", "0"], ["--epochs", "0"], ["--batch-size", "0"]])
def test_a_count_option_of_zero_is_refused_by_the_parser(argv):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", TABLE, *argv])


def test_jobs_auto_leaves_the_choice_to_the_runner():
    assert parse_jobs("auto") is None and parse_jobs("3") == 3


def test_show_json_gives_the_default_seed_count_of_the_scale_shown(tmp_path):
    """Table 6b: amendment 9's 8 seeds at tiny scale (the design's seed rule), 1 at paper scale."""
    assert show_json(TABLE, "tiny", str(tmp_path), results_root=None)["default_seeds"] == AMENDED_SEEDS[TABLE] == 8
    assert show_json(TABLE, "paper", str(tmp_path), results_root=None)["default_seeds"] == 1


# --- provenance ---------------------------------------------------------------------------------------------------

def test_the_paper_global_batch_is_per_device_times_devices_times_nodes_times_accumulation():
    cfg = resolve_runs("msca_table1", scale="paper", rows=["msca_kv_h1"])[0]
    unstated = dataclasses.replace(cfg, trainer=dataclasses.replace(
        cfg.trainer, devices=3, num_nodes=2, accumulate_grad_batches=5, reference_batch=None))
    per_device = cfg.data.batch_size
    assert with_paper_batch(unstated).trainer.reference_batch == per_device * 3 * 2 * 5
    auto = dataclasses.replace(unstated, trainer=dataclasses.replace(unstated.trainer, devices="auto"))
    assert with_paper_batch(auto).trainer.reference_batch is None  # devices not pinned: no hardware to read


def test_a_batch_the_spec_states_is_kept_over_the_presets_hardware():
    """CAST's paper runs state 256 (its lr's batch) although 6 clips x 8 GPUs x 2 nodes x 4 steps make 384."""
    cfg = resolve_runs("cast_table2", "paper", ["cast"], 1, "/datasets")[0]
    trainer = cfg.trainer
    assert cfg.data.batch_size * trainer.devices * trainer.num_nodes * trainer.accumulate_grad_batches != 256
    assert trainer.reference_batch == 256


def test_global_rank_zero_reads_the_node_from_group_rank_too(monkeypatch):
    cases = [({"LOCAL_RANK": "0", "GROUP_RANK": "1"}, False),  # torchelastic names the node GROUP_RANK
             ({"LOCAL_RANK": "0", "GROUP_RANK": "0"}, True),
             ({"LOCAL_RANK": "0", "NODE_RANK": "0", "GROUP_RANK": "1"}, True),  # NODE_RANK first
             ({"RANK": "0", "LOCAL_RANK": "1", "SLURM_PROCID": "2"}, True)]  # RANK first
    for env, zero in cases:
        for key in RANK_VARIABLES:
            monkeypatch.delenv(key, raising=False)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        assert launched_as_global_zero() is zero, env


def test_a_multi_node_run_started_by_a_launcher_is_let_through(monkeypatch):
    launchers = {"srun": {"SLURM_NTASKS": "16", "SLURM_JOB_NAME": "train"}, "torchrun": {"TORCHELASTIC_RUN_ID": "job"},
                 "LSF": {"LSB_JOBID": "1", "LSB_DJOB_RANKFILE": "f", "JSM_NAMESPACE_LOCAL_RANK": "0",
                         "JSM_NAMESPACE_SIZE": "16"},
                 "by hand": {"MASTER_ADDR": "10.0.0.1", "NODE_RANK": "1"}}
    cfg = resolve_runs("cast_table2", "paper", ["cast"], 1, "/datasets")[0]
    assert cfg.trainer.num_nodes == 2
    for env in launchers.values():
        for name in LAUNCHER_VARIABLES:
            monkeypatch.delenv(name, raising=False)
        with pytest.raises(ValueError, match="no multi-node launcher"):
            check_multi_node_launch(cfg)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        check_multi_node_launch(cfg)


@pytest.mark.parametrize("alone", ["MASTER_ADDR", "NODE_RANK"])
def test_a_launch_by_hand_needs_both_the_master_address_and_the_node_rank(monkeypatch, alone):
    """Without MASTER_ADDR a node other than 0 would wait on localhost; without NODE_RANK every node is node 0."""
    cfg = resolve_runs("cast_table2", "paper", ["cast"], 1, "/datasets")[0]
    for name in LAUNCHER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(alone, "1")
    with pytest.raises(ValueError, match="no multi-node launcher"):
        check_multi_node_launch(cfg)


def test_the_config_hash_does_not_depend_on_key_order():
    cfg = resolve_runs(TABLE, "tiny", [ROW], 1, None, None)[0]

    def reversed_keys(value):
        return {k: reversed_keys(value[k]) for k in reversed(list(value))} if isinstance(value, dict) else value

    same_config = types.SimpleNamespace(to_dict=lambda: reversed_keys(cfg.to_dict()))
    assert config_hash(same_config) == config_hash(cfg)
    canonical = json.dumps(cfg.to_dict(), sort_keys=True, separators=(",", ":"))
    assert config_hash(cfg) == hashlib.sha256(canonical.encode()).hexdigest()[:16]


def test_a_staged_but_uncommitted_change_marks_the_tree_dirty(tmp_path):
    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    (tmp_path / "model.py").write_text("x = 1\n")
    git("init", "-q")
    git("add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c")
    commit = git_commit(tmp_path)
    (tmp_path / "model.py").write_text("x = 2\n")
    git("add", "model.py")  # staged: the working tree equals the index, not the commit
    assert git_commit(tmp_path) == commit + "-dirty"


def test_data_left_out_names_only_what_was_lost_splits_in_order():
    report = {"val": {"missing": ["a.mp4"], "corrupt": [], "skipped_at_test": 2, "bad_annotation_lines": []},
              "train": {"missing": [], "corrupt": [], "skipped_at_train": 0, "bad_annotation_lines": []}}
    assert data_left_out(report) == "val: 1 missing videos, 2 clips skipped at test"
    report["train"]["skipped_at_train"] = 4
    assert data_left_out(report) == "train: 4 clips skipped in training; val: 1 missing videos, 2 clips skipped at test"


# --- python -m data -----------------------------------------------------------------------------------------------

def test_synth_keeps_a_validation_video_for_the_smallest_set(tmp_path, capsys):
    assert data_main(["synth", "synth_motion", "--out", str(tmp_path / "two"), "--videos", "2"]) == 0
    assert "1 train + 1 val" in capsys.readouterr().out
    assert data_main(["synth", "synth_motion", "--out", str(tmp_path / "one"), "--videos", "1"]) == 2
    assert "argument --videos: expected a video count from 2 to 150,000, got '1'" in capsys.readouterr().err


def test_check_fails_on_a_missing_video_alone_and_names_the_all_splits_manifest(tmp_path, capsys):
    root = tmp_path / "k400"
    for split in ("train", "val"):
        (root / split).mkdir(parents=True)
        (root / split / "present.mp4").write_bytes(b"not decoded under --quick")
        (root / f"{split}.csv").write_text(f"{split}/present.mp4 0\n{split}/absent.mp4 1\n")
    assert data_main(["check", "kinetics400", "--root", str(root), "--split", "val", "--quick", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert (report["missing"], report["corrupt"], report["bad_annotation_lines"], report["empty_splits"]) == (
        1, 0, 0, [])
    assert data_main(["check", "kinetics400", "--root", str(root), "--quick", "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["manifest"] == str(root / "manifest-kinetics400-all.json")


# An EPIC narration of video P01_01 (0.6 s): id P01_01_{n}, from 0.{a} s to 0.{b} s.
EPIC_SEGMENT_ROW = "P01_01_{n},P01,P01_01,00:00:00.00,00:00:00.{a}0,00:00:00.{b}0,0,1,x,x,1,y,0,\"['y']\",\"[0]\"\n"


def epic_root_with_one_short_video(tmp_path):
    """An EPIC-KITCHENS-100 root with one video of 0.6 s (P01_01) and two verb and noun classes, no split file."""
    epic = tmp_path / "epic"
    (epic / "P01" / "videos").mkdir(parents=True)
    write_video(epic / "P01" / "videos" / "P01_01.MP4", random_frames(30), fps=50)  # 0.6 s
    for kind in ("verb", "noun"):
        (epic / f"EPIC_100_{kind}_classes.csv").write_text("id,key,instances,category\n0,a,1,c\n1,b,1,c\n")
    return epic


def test_check_fails_on_a_segment_past_its_videos_end_alone(tmp_path, capsys):
    epic = epic_root_with_one_short_video(tmp_path)
    lines = [EPIC_SEGMENT_ROW.format(n=0, a=0, b=2), EPIC_SEGMENT_ROW.format(n=1, a=8, b=9)]  # the second starts
    (epic / "EPIC_100_train.csv").write_text(",".join(EPIC_COLUMNS) + "\n" + "".join(lines))  # after the end
    assert data_main(["check", "epic_kitchens100", "--root", str(epic), "--split", "train", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert (report["missing"], report["corrupt"], report["bad_annotation_lines"], len(report["bad_segments"])) == (
        0, 0, 0, 1)
