"""``python -m tools smoke`` over a representative subset of runs, each at paper depth and width but with the
frame size shrunk 7x (crop 32 for 224) so that the subset takes well under a minute on one core: one run per paper
and per distinct data path (Kinetics lists and dense clips, SSv2 webm segments, EPIC-KITCHENS verb/noun heads on
untrimmed video, PennAction RGB + pose dict inputs, a test-only evaluation of other views, Long Range Arena token
sequences, DAVIS label propagation), through the real readers, data modules, LightningModules and multi-view test
collation. The full sweep at the paper's shape is the command's (docs/paper_scale_smoke.md)."""

import dataclasses
import json

import pytest

from reports.smoke_records import markdown, read_records
from tools.__main__ import main
from tools.smoke.runs import SmokeOptions, smoke_configs
from tools.smoke.step import smoke_run

pytestmark = pytest.mark.slow  # seven paper-depth models, a few steps each: ~40 s on one core

SUBSET = [  # (table, row, column): what each adds
    ("mformer_table4", "joint", "K-400"),  # Kinetics `path label` lists, dense clips, 10 x 3 test views
    ("msca_table1", "msca_kv_h1", "SSv2"),  # SSv2 webm, segments, RandAugment, the frame-wise ViT with shifts
    ("cast_table2", "cast", "EK-100"),  # EPIC untrimmed video, verb/noun heads, CAST's two experts
    ("d3da_figureA1", "pennaction", "12 frames"),  # JPEG frames + .mat joints, {"video", "pose"} inputs
    ("xvit_figure1", "xvit", "2x3 views"),  # a task that only tests (other views), its own Trainer
    ("mformer_table5", "exact", "ListOps"),  # LRA token sequences of 500-2000
    ("mformer_table9", "mformer_b", "DAVIS"),  # DAVIS label propagation, no training
]


@pytest.fixture(scope="module")
def options(tmp_path_factory):
    return SmokeOptions(device="cpu", steps=2, shrink=7, cache_dir=tmp_path_factory.mktemp("paper_shape"))


@pytest.fixture(scope="module")
def records(options):
    out = {}
    for table, row, column in SUBSET:
        (cfg,) = [c for c in smoke_configs(table, [row]) if c.column == column]
        out[table] = (cfg, smoke_run(cfg, options, echo=lambda line: None))
    return out


def test_every_run_of_the_subset_passes(records):
    failed = {table: record["error"] for table, (_, record) in records.items() if record["status"] != "pass"}
    assert not failed, markdown([record for _, record in records.values()])


def test_trained_runs_step_validate_and_test_one_multi_view_batch(records):
    for table in ("mformer_table4", "msca_table1", "cast_table2", "d3da_figureA1"):
        cfg, record = records[table]
        mixes = cfg.optim.mixup_alpha > 0 or cfg.optim.cutmix_alpha > 0  # mixup pairs clips: 2 (CAST's)
        assert record["batch"] == (2 if mixes else 1) and record["paper_batch"] == cfg.data.batch_size
        assert record["step_s"] > 0 and record["loader_clips_s"] > 0
        assert record["test_views"] == cfg.data.test_clips * cfg.data.test_crops  # all of one video's views
        assert record["clip"] == f"{cfg.data.num_frames}x32x32"
        assert "crop 32 of 224" in "; ".join(record["reduced"])
        assert record["resident_mib"] > record["weights_mib"] > 0  # AdamW's moments beside the weights
        assert record["train_peak_mib"] > record["resident_mib"]
        assert record["paper_batch_peak_gib"] * 1024 > record["train_peak_mib"]  # extrapolated to the paper's batch


def test_the_data_is_written_at_the_datasets_rate_and_length(records):
    _, kinetics = records["mformer_table4"]
    assert kinetics["data"]["shape"]["fps"] == 30 and kinetics["data"]["frames"] == 300
    assert (kinetics["data"]["shape"]["width"], kinetics["data"]["shape"]["height"]) == (340 // 7 // 2 * 2, 36)
    _, epic = records["cast_table2"]
    assert epic["data"]["shape"]["fps"] == 50 and epic["data"]["kbit_s"] > 0


def test_fit_says_which_gpu_the_paper_names(records):
    _, cast = records["cast_table2"]
    assert cast["paper_gpu"] == "RTX 3090 24 GB" and cast["fits"] in (True, False)
    _, mformer = records["mformer_table4"]
    assert mformer["paper_gpu"] is None and mformer["fits"] is None


def test_finegym_steps_through_its_reader_with_17_keypoints(options):
    """FineGYM's element lists, cut elements and .npz keypoints: the d3da model takes COCO's 17 joints."""
    (cfg,) = [c for c in smoke_configs("d3da_figureA1", ["finegym"]) if c.column == "12 frames"]
    record = smoke_run(cfg, options, echo=lambda line: None)
    assert record["status"] == "pass", record["error"]
    assert record["step_s"] > 0 and record["test_views"] == cfg.data.test_clips * cfg.data.test_crops


def test_a_failing_run_is_recorded_with_its_first_error_and_the_command_exits_1(tmp_path, options, monkeypatch):
    """A planted error in DAVIS label propagation (Table 9's one run): the run fails, named with its place."""
    from experiments.harness import tasks

    def planted(cfg, weights, device):
        raise ValueError("planted evaluation error")

    task = tasks.get_task("label_propagation")
    monkeypatch.setitem(tasks._TASKS, task.name, dataclasses.replace(task, evaluate=planted))
    path = tmp_path / "smoke.json"
    status = main(["smoke", "mformer_table9", "--shrink", "7", "--cache-dir", str(options.cache_dir),
                   "--record", str(path)])
    assert status == 1
    (record,) = read_records(path)
    assert record["status"] == "fail" and record["commit"]
    assert record["command"].startswith("python -m tools smoke")
    assert record["error"].startswith("tests/tools/smoke/test_smoke.py:")
    assert "planted evaluation error" in record["error"]
    json.dumps(record)  # the file holds plain JSON
