"""``python -m experiments predict``: a model's top-k class names for a user's video, at the test protocol of its
row, through the CPU at tiny scale: the same top-5 as the row's test gives the same video (its per-video scores on
a Lightning Trainer), the stand-in's class names in the head's order, a folder's one line per video, the table
``--out`` writes, and one line for each bad input. The names of the real datasets against the annotation readers."""

from __future__ import annotations

import csv
import dataclasses
import json
import random
import shutil

import lightning as L
import numpy as np
import pytest
import torch

from data.annotations import kinetics_class_names
from data.class_lists import committed_names
from data.synthetic import SYNTHETIC_SETS
from data.video_io import write_video
from experiments.__main__ import main as experiments_main
from experiments.harness.predict import head_names, padding
from experiments.harness.row_model import data_classes, row_config
from experiments.harness.tasks import get_task, video_datamodule
from lightning_modules.video_classifier import VideoClassifier

TABLE, ROW, COLUMN = "mformer_table4", "traj_attT_normS", "SSv2"  # tiny: synth_motion_pairs, 12 classes, 2 views
MICRO = {"num_train": 2, "num_val": 4, "seed": 0}
PAIRS = SYNTHETIC_SETS["synth_motion_pairs"].class_names


def _predict(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        status = experiments_main(["predict", *argv])
    except SystemExit as stop:  # an option argparse refuses
        status = stop.code
    out = capsys.readouterr()
    return status, out.out, out.err


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(the row's config on a micro generated set, random weights of its model in a file, the set's test videos in
    the test's order, each one's top-5 class indices as the row's test scores it on a Lightning Trainer)."""
    folder = tmp_path_factory.mktemp("predict")
    cfg = row_config(TABLE, ROW, "tiny", COLUMN)
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, synthetic_params=MICRO, num_workers=0))
    torch.manual_seed(0)
    model = get_task(cfg.task).system  # the row's LightningModule around its model, as a run tests it
    from experiments.harness.tasks import build_model

    net = build_model(cfg, data_classes(cfg)).eval()
    torch.save(net.state_dict(), folder / "weights.pt")
    dm = video_datamodule(cfg.data, folder / "failures")
    dm.prepare_data()
    dm.setup("test")
    scored = []
    original = VideoClassifier._update_metrics

    def keep(self, metrics, probs, label):
        scored.extend(probs[0].double())
        return original(self, metrics, probs, label)

    VideoClassifier._update_metrics = keep
    try:
        L.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                  enable_model_summary=False).test(model(cfg, net, dm), datamodule=dm, verbose=False)
    finally:
        VideoClassifier._update_metrics = original
    videos = [sample.path for sample in dm.test_dataloader().dataset.samples]
    assert len(scored) == len(videos) == MICRO["num_val"]
    return cfg, folder / "weights.pt", videos, [p.topk(5).indices.tolist() for p in scored]


def test_predict_gives_the_tests_top_five_with_the_stand_ins_names(tiny, tmp_path, capsys):
    cfg, weights, videos, top5 = tiny
    mine = tmp_path / "mine"
    mine.mkdir()
    for video in videos:
        shutil.copy(video, mine / video.name)
    status, out, err = _predict(capsys, TABLE, "--rows", ROW, "--weights", str(weights), str(mine), "--out",
                                str(tmp_path / "table.csv"))
    assert status == 0, err
    lines = out.splitlines()
    assert len(lines) == len(videos)  # one line per video
    by_name = {line.split(": ", 1)[0].rsplit("/", 1)[-1]: line.split(": ", 1)[1] for line in lines}
    for video, indices in zip(videos, top5):
        shown = [part.rsplit(" ", 1)[0] for part in by_name[video.name].split(", ")]
        assert shown == [PAIRS[i] for i in indices], (video.name, shown)
    rows = list(csv.DictReader((tmp_path / "table.csv").open()))
    assert len(rows) == 5 * len(videos) and {r["head"] for r in rows} == {"class"}
    first = rows[0]
    assert PAIRS[int(first["index"])] == first["class"] and 0 < float(first["probability"]) <= 1
    # one video, as JSON, its probabilities falling with rank
    status, out, _ = _predict(capsys, TABLE, "--rows", ROW, "--weights", str(weights), str(videos[0]), "--top", "3",
                              "--out", str(tmp_path / "one.json"))
    table = json.loads((tmp_path / "one.json").read_text())
    ranked = table["videos"][0]["predictions"]["class"]
    assert status == 0 and [r["index"] for r in ranked] == top5[0][:3]
    assert ranked[0]["probability"] >= ranked[1]["probability"] >= ranked[2]["probability"]
    assert "generated stand-in synth_motion_pairs" in table["class_names"]


def test_a_short_video_is_predicted_as_the_protocol_pads_it_and_said_in_one_line(tiny, tmp_path, capsys):
    _, weights, _, _ = tiny
    video = write_video(tmp_path / "short.mp4", np.random.default_rng(0).integers(0, 255, (5, 40, 40, 3),
                                                                                 np.uint8), 15)
    status, out, err = _predict(capsys, TABLE, "--rows", ROW, "--weights", str(weights), str(video))
    assert status == 2 and out.count("\n") == 1 and out.startswith(str(video))
    assert err.count("\n") == 1 and "5 frames, shorter than a clip" in err and "padded" in err, err


@pytest.mark.parametrize("argv, named", [
    (["{tmp}/notes.mp4"], "notes.mp4: not a readable video"),
    (["{tmp}/empty"], "empty: a folder without videos"),
    (["{tmp}/missing.mp4"], "missing.mp4: no such video or folder"),
    (["{tmp}/clip.mp4", "--top", "\u0661\u0662"], "expected a count of classes"),
    (["{tmp}/clip.mp4", "--out", "{tmp}/table.txt"], "the table is a .csv or .json file"),
    (["{tmp}/clip.mp4", "--out", "{tmp}/empty.csv"], "not a regular file"),
])
def test_bad_input_is_one_line(tiny, tmp_path, capsys, argv, named):
    _, weights, _, _ = tiny
    (tmp_path / "notes.mp4").write_text("not a video\n")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty.csv").mkdir()
    write_video(tmp_path / "clip.mp4", np.zeros((20, 40, 40, 3), np.uint8), 15)
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    status, out, err = _predict(capsys, TABLE, "--rows", ROW, "--weights", str(weights), *argv)
    assert status == 2 and err.count("\n") == 1 and named in err, err


def test_weights_of_another_model_are_one_line(tmp_path, capsys):
    from experiments.harness.tasks import build_model

    other = row_config(TABLE, "joint", "tiny", COLUMN)
    torch.save(build_model(other, data_classes(other)).state_dict(), tmp_path / "joint.pt")
    write_video(tmp_path / "clip.mp4", np.zeros((20, 40, 40, 3), np.uint8), 15)
    status, _, err = _predict(capsys, TABLE, "--rows", ROW, "--weights", str(tmp_path / "joint.pt"),
                              str(tmp_path / "clip.mp4"))
    assert status == 2 and err.count("\n") == 1 and "not weights of any column" in err, err


def test_the_table_replaces_a_link_and_never_writes_through_it(tiny, tmp_path, capsys):
    _, weights, videos, _ = tiny
    outside = tmp_path / "outside.csv"
    outside.write_text("someone else's\n")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "table.csv").symlink_to(outside)
    status, _, _ = _predict(capsys, TABLE, "--rows", ROW, "--weights", str(weights), str(videos[0]), "--out",
                            str(tmp_path / "out" / "table.csv"))
    assert status == 0 and outside.read_text() == "someone else's\n"
    assert not (tmp_path / "out" / "table.csv").is_symlink()


def test_padding_is_read_from_the_views_frames():
    from data.clip_sampling import ClipInfo

    def clip(*frames):
        return ClipInfo(0.0, 1.0, frames, 0, 1)

    assert padding([clip(0, 2, 4, 6)]) is None
    assert padding([clip(0, 2, 4, 4, 4)]) == "by repeating its last frame (2 times in a view)"
    assert padding([clip(3, 4, 0, 1)]) == "by wrapping round to its first frame"
    assert padding([clip(0, 0, 1, 1, 2, 2)]).startswith("by repeating frames")


# ---- the names of the real datasets, in the order of the heads ---------------------------------------------------


def _cfg(dataset: str, root) -> object:
    from types import SimpleNamespace

    return SimpleNamespace(data=SimpleNamespace(dataset=dataset, root=None if root is None else str(root)))


def _kinetics_annotations(root, names):
    (root / "annotations").mkdir(parents=True)
    rows = [f"{name},id{i:05d},0,10,train" for i, name in enumerate(names)]
    random.Random(0).shuffle(rows)
    quoted = ['"' + r.rsplit(",", 4)[0] + '",' + r.rsplit(",", 4)[1] + "," + ",".join(r.rsplit(",", 4)[2:])
              if "," in r.rsplit(",", 4)[0] else r for r in rows]
    (root / "annotations" / "train.csv").write_text("label,youtube_id,time_start,time_end,split\n" +
                                                      "\n".join(quoted) + "\n")


@pytest.mark.parametrize("dataset,count,source", [("kinetics400", 400, "torchvision"),
                                                    ("kinetics600", 600, "mmaction2")])
def test_the_committed_kinetics_list_is_the_readers_order(dataset, count, source, tmp_path):
    names = committed_names(dataset)
    assert len(names) == len(set(names)) == count and names == sorted(names)
    shuffled = names[:]
    random.Random(1).shuffle(shuffled)
    _kinetics_annotations(tmp_path / dataset, shuffled)
    assert kinetics_class_names(tmp_path / dataset) == names
    got, where = head_names(_cfg(dataset, None), count)
    assert got == {"class": names} and source in where
    got, where = head_names(_cfg(dataset, tmp_path / dataset), count)  # the user's files first
    assert got == {"class": names} and "annotations" in where


def test_a_users_annotations_come_before_the_committed_list(tmp_path):
    names = [f"action {i:03d}" for i in range(600)]
    _kinetics_annotations(tmp_path / "kinetics600", list(reversed(names)))
    got, where = head_names(_cfg("kinetics600", tmp_path / "kinetics600"), 600)
    assert got == {"class": sorted(names)} and "annotations" in where


def test_a_dataset_without_a_committed_list_asks_for_its_annotation_files():
    with pytest.raises(ValueError, match="ntu60: no class list of it is committed"):
        head_names(_cfg("ntu60", None), 60)


def test_the_committed_epic_lists_are_the_readers_order(tmp_path):
    """The committed verbs and nouns written as the dataset's class lists (id, key, instances, category; rows
    shuffled, each key keeping its id): the reader gives the committed order; without the user's files the committed
    lists name the two heads."""
    from data.epic_annotations import epic_class_names

    names = committed_names("epic_kitchens100")
    assert {head: len(set(n)) for head, n in names.items()} == {"verb": 97, "noun": 300}
    root = tmp_path / "epic_kitchens100"
    root.mkdir()
    for head, keys in names.items():
        rows = [f"{i},{key},[],x" for i, key in enumerate(keys)]
        random.Random(4).shuffle(rows)
        (root / f"EPIC_100_{head}_classes.csv").write_text("id,key,instances,category\n" + "\n".join(rows) + "\n")
    assert epic_class_names(root) == names
    got, where = head_names(_cfg("epic_kitchens100", None), {"verb": 97, "noun": 300})
    assert got == names and "epic-kitchens-100-annotations" in where


def test_ssv2_names_are_labels_json_in_index_order(tmp_path):
    root = tmp_path / "ssv2"
    root.mkdir()
    templates = ["Pushing something from left to right", "Approaching something with your camera", "Moving away"]
    (root / "labels.json").write_text(json.dumps({templates[0]: "2", templates[1]: "0", templates[2]: "1"}))
    got, _ = head_names(_cfg("ssv2", root), 3)
    assert got == {"class": [templates[1], templates[2], templates[0]]}


def test_the_committed_ssv2_list_is_the_readers_order_of_labels_json(tmp_path):
    """A labels.json written as the dataset's (each template's index its rank in the list), its entries shuffled:
    the reader's order is the committed list's; without the user's files the committed list names the head."""
    names = committed_names("ssv2")
    assert len(names) == len(set(names)) == 174 and names == sorted(names)
    root = tmp_path / "ssv2"
    root.mkdir()
    entries = [(name, str(index)) for index, name in enumerate(names)]
    random.Random(2).shuffle(entries)
    (root / "labels.json").write_text(json.dumps(dict(entries)))
    assert head_names(_cfg("ssv2", root), 174)[0] == {"class": names}
    got, where = head_names(_cfg("ssv2", None), 174)
    assert got == {"class": names} and "mmaction2" in where


def test_epic_kitchens_verbs_nouns_and_actions_in_the_heads_order(tmp_path):
    root = tmp_path / "epic_kitchens100"
    root.mkdir()
    (root / "EPIC_100_verb_classes.csv").write_text("id,key,instances,category\n1,put,[],x\n0,take,[],x\n")
    (root / "EPIC_100_noun_classes.csv").write_text("id,key,instances,category\n0,tap,[],x\n2,cup,[],x\n1,pan,[],x\n")
    (root / "EPIC_100_validation.csv").write_text("narration_id,participant_id,video_id,narration_timestamp,"
                                                  "start_timestamp,stop_timestamp,start_frame,stop_frame,narration,"
                                                  "verb,verb_class,noun,noun_class,all_nouns,all_noun_classes\n")
    got, _ = head_names(_cfg("epic_kitchens100", root), {"verb": 2, "noun": 3})
    assert got == {"verb": ["take", "put"], "noun": ["tap", "pan", "cup"]}
    from experiments.harness.predict import ranked

    probs = [torch.tensor([[0.3, 0.7]]), torch.tensor([[0.1, 0.2, 0.7]])]
    top = ranked(probs, got, 2)
    assert [n for _, n, _ in top["verb"]] == ["put", "take"] and [n for _, n, _ in top["noun"]] == ["cup", "pan"]
    assert top["action"][0][1] == "put cup" and top["action"][0][2] == pytest.approx(0.49)
    with pytest.raises(ValueError, match="not the dataset"):
        head_names(_cfg("epic_kitchens100", root), {"verb": 97, "noun": 300})


# ---- an authors' released checkpoint, as evaluate tests it ---------------------------------------------------------


@pytest.mark.slow
def test_predict_gives_evaluates_top_five_for_a_released_checkpoint(tmp_path, capsys, monkeypatch):
    """Motionformer's K-400 entry at its protocol (10 x 3 views, PySlowFast's selective decoding) with the crop
    shrunk to 16 (as the evaluate smoke runs it on a CPU), random weights written in the authors' layout, on two
    generated videos of Kinetics' published shape: predict's top-5 are those of evaluate's per-video scores, named
    from the committed Kinetics-400 list (the generated set's "path label" lists name no class)."""
    from data.synthetic.paper_shape import ensure_paper_shape
    from experiments.harness import evaluate as evaluate_module
    from experiments.harness import released_weights
    from experiments.harness.evaluate import evaluate, resolve_evaluation
    from experiments.harness.released_weights import find_checkpoint

    from .released_files import write_released

    name, table, row = "mformer:k400_motionformer_224_16x4", "mformer_table6b", "mformer"
    entry = find_checkpoint(name)
    tested = dataclasses.replace(entry, protocol=dataclasses.replace(entry.protocol, crop=16, short_side=16))
    monkeypatch.setattr(released_weights, "find_checkpoint", lambda n: tested if n == name else find_checkpoint(n))
    monkeypatch.setattr(evaluate_module, "find_checkpoint", released_weights.find_checkpoint)
    data_root = tmp_path / "data"
    data_root.mkdir()
    (data_root / "kinetics400").symlink_to(ensure_paper_shape("kinetics400", tmp_path / "shape", num_train=1,
                                                              num_val=2, shrink=14))
    folder = tmp_path / "weights"
    evaluation = resolve_evaluation(table, row, name, folder, data_root=data_root,
                                    overrides={"trainer": {"accelerator": "cpu"}, "data": {"num_workers": 0}})
    write_released(evaluation, folder, tiny=False)
    scored = []
    original = VideoClassifier._update_metrics

    def keep(self, metrics, probs, label):
        scored.extend(probs[0].double())
        return original(self, metrics, probs, label)

    monkeypatch.setattr(VideoClassifier, "_update_metrics", keep)
    evaluate(evaluation, runs_root=tmp_path / "runs", progress_bar=False, echo=lambda _: None)
    monkeypatch.setattr(VideoClassifier, "_update_metrics", original)
    dm = video_datamodule(evaluation.cfg.data, tmp_path / "failures")
    dm.setup("test")
    videos = [s.path for s in dm.test_dataloader().dataset.samples]
    names = committed_names("kinetics400")
    assert len(scored) == len(videos) == 2 and len(names) == 400
    for video, scores in zip(videos, scored):
        status, out, err = _predict(capsys, "--released", name, "--weights-dir", str(folder), "--data-root",
                                    str(data_root), str(video))
        assert status == 0, err
        shown = [part.rsplit(" ", 1)[0] for part in out.strip().split(": ", 1)[1].split(", ")]
        assert shown == [names[i] for i in scores.topk(5).indices.tolist()]
