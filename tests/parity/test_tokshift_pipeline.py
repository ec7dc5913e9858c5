"""Our data pipeline against TokShift-Transformer's (the code MSCA's authors ran, a7abb7e), from the golden files of
tests/golden/pipelines/tokshift/ that ``python -m tools.pipeline_golden.tokshift --official-code DIR`` wrote with it.

Ours is what ``python -m experiments evaluate`` builds for TokShift's released K-400 checkpoints (the catalogue's
``kinetics`` protocol: dense 8 x 32, view placement "tokshift", 10 x 3 views, short side 224, logits averaged) and what
the paper-scale MSCA run trains with. Exact: the frames of every test view and of the per-epoch validation clip, the
resized size, the three crops of every shape (``centre_rounding`` "floor" and ``crop_axis`` "width": TokShift's
centre at int((L - 224) / 2), its crops along the width, so a portrait frame's three are one), the JPEG decode, the
view average (per-video scores, top-1, top-5), the training clip's start (in distribution) and the training
augmentation's draws (flip, short side, the four colour changes, in distribution). Deviations, pinned here: TokShift
resizes with PIL's bicubic from uint8, ours bilinear (pytorchvideo) in float; the training crop offset has one
position more than TokShift's (numpy's exclusive upper bound), and TokShift flips before it crops.
The paper-scale run samples its clips as TokShift's code ("the same settings as TokenShift") and keeps one
documented choice: the short side in [244, 330] (the paper's text; docs/msca_paper_scale.md).
"""

from __future__ import annotations

import dataclasses
import json
import random
import shutil
from collections import Counter
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.transforms.v2 as T
from scipy import stats

import data.transforms as transforms
from data.clip_sampling import dense_clip, temporal_views
from data.datasets import VideoClipDataset
from data.samples import Sample
from data.transforms import TestTransform, TrainTransform, resize_short_side
from data.video_io import FrameFolderVideo
from experiments.harness.evaluate import resolve_evaluation
from experiments.harness.plan import require_spec
from experiments.harness.released_weights import find_checkpoint
from experiments.harness.tasks import video_datamodule
from lightning_modules.video_classifier import VideoClassifier, unique_videos

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "pipelines" / "tokshift"
LEVEL = 1e-3  # a two-sample test passes at p > LEVEL
DRAWS = 10_000
TABLE, ROW, CHECKPOINT = "msca_table2", "tokenshift", "msca:tokshift_b16_8x32x224_k400"
# TokShift's crops (centre, left, right) in our order (left, centre, right): ours[i] is theirs[THEIRS_OF_OURS[i]]
THEIRS_OF_OURS = (1, 0, 2)


@cache
def golden_json(name: str) -> dict:
    return json.loads((GOLDEN / name).read_text())


@cache
def evaluation_data():
    """The data module ``python -m experiments evaluate`` builds for the released TokShift checkpoint, and its
    configuration."""
    entry = find_checkpoint(CHECKPOINT)
    cfg = resolve_evaluation(TABLE, ROW, entry.file, entry=entry).cfg
    return module(cfg.data), cfg.data


@cache
def paper_data():
    """The paper-scale MSCA run's data module (the TokenShift row of Table 2), and its configuration."""
    spec = require_spec(TABLE)
    cfg = spec.resolve(spec.row(ROW), spec.metric_columns[0], "paper", seed=0)
    return module(cfg.data), cfg.data


def module(data):
    """The VideoDataModule of ``data`` (a root named, never read: no split is set up)."""
    return video_datamodule(dataclasses.replace(data, root="kinetics400"), Path("failures"))


def same_distribution(a: Counter, b: Counter) -> float:
    """p of a chi-square test that two samples of counts come from one distribution."""
    keys = sorted(set(a) | set(b))
    return stats.chi2_contingency(np.array([[a.get(k, 0) for k in keys], [b.get(k, 0) for k in keys]])).pvalue


def test_official_sources_recorded():
    for name in ("test_views.json", "indices.json"):
        official = golden_json(name)["official"]
        assert official["repository"] == "VideoNetworks/TokShift-Transformer"
        assert official["official_commit"].startswith("a7abb7e")
        assert official["command"].startswith("python -m tools.pipeline_golden.tokshift")


def test_protocols_of_evaluate_and_of_the_paper_run():
    dm, data = evaluation_data()
    # k400_tokshift_div4_8x32_base_224.yml: T_SIZE 8, T_STEP 32, VAL_SAMPLE_TIMES 10 (--evaluate), VAL_TEST_AUG 3,
    # VAL_SHORT_SIDE 224, VAL_PATCH_SIZE 224, PIXEL_MEAN 127.5 (of 255), PIXEL_STD 0.5; validate() averages logits
    assert (dm.num_frames, dm.frame_stride, dm.sampling, dm.dense_convention) == (8, 32, "dense", "tokshift")
    assert (dm.test_clips, dm.test_crops, dm.crop_size, dm.test_short_side) == (10, 3, 224, 224)
    assert dm.mean == dm.std == (0.5, 0.5, 0.5)
    assert data.test_view_average == "logits"
    paper, paper_cfg = paper_data()
    assert paper_cfg.test_view_average == "logits"
    assert (paper.num_frames, paper.frame_stride, paper.crop_size, paper.test_clips, paper.test_crops) == (8, 32, 224,
                                                                                                           10, 3)
    assert paper.hflip and paper.augment.tokenshift_photometric == 0.1
    # the paper's short side range (docs/msca_paper_scale.md), TokShift's clips
    assert paper.train_scale == (244, 330) and paper.dense_convention == "tokshift"
    for data_module in (dm, paper):  # TokShift's three test crops
        assert (data_module.test_centre_rounding, data_module.test_crop_axis) == ("floor", "width")


def test_view_frames_for_many_lengths():
    """read_clip's frames (10 views, and the 1 of the per-epoch validation) for videos of 1 to 2400 frames."""
    dm, _ = evaluation_data()
    golden = golden_json("indices.json")
    for count, views in golden["test_10"].items():
        ours = temporal_views(int(count), 30.0, dm.num_frames, dm.frame_stride, dm.test_clips, dm.sampling,
                              dense_convention=dm.dense_convention)
        assert [list(c.frame_indices) for c in ours] == [[i - 1 for i in v] for v in views], f"{count} frames"
    for count, views in golden["val_1"].items():  # VideoDataModule's "val": num_clips 1
        ours = temporal_views(int(count), 30.0, dm.num_frames, dm.frame_stride, 1, dm.sampling,
                              dense_convention=dm.dense_convention)
        assert [list(c.frame_indices) for c in ours] == [[i - 1 for i in v] for v in views], f"{count} frames"


def frame_folder(name: str, folder: Path) -> Path:
    """The golden video as a frame folder in TokShift's layout (``img_00001.jpg``..., its ``frame_format``)."""
    record = golden_json("test_views.json")["videos"][name]
    stored = set(record["manifest_stored"])
    fmt = golden_json("test_views.json")["frame_format"]
    folder.mkdir()
    for n in range(1, record["frames"] + 1):
        shutil.copyfile(GOLDEN / "frames" / name / (fmt.format(n) if n in stored else "filler.jpg"),
                        folder / fmt.format(n))
    return folder


@cache
def golden_pixels() -> dict[str, np.ndarray]:
    with np.load(GOLDEN / "test_pixels.npz") as npz:
        return {k: npz[k] for k in npz.files}


@pytest.mark.parametrize("name", ["odd_4x3", "wide_16x9", "portrait_short", "portrait_odd"])
def test_test_views_on_frame_folders(name, tmp_path, monkeypatch):
    """The evaluate path's dataset and transform on the golden frame folders: frames read, resize, crop boxes, decode,
    normalisation and the input tensor, against TokShift's DataRepo and Test_ClipAug."""
    golden = golden_json("test_views.json")
    record = golden["videos"][name]
    folder = frame_folder(name, tmp_path / name)
    read, boxes = [], []
    real_get_clip, real_crop = FrameFolderVideo.get_clip, transforms.TF.crop

    def get_clip(self, *args, frame_indices=None, **kwargs):
        read.extend(frame_indices)
        return real_get_clip(self, *args, frame_indices=frame_indices, **kwargs)

    def crop(video, top, left, height, width):
        boxes.append([left, top, width, height])
        return real_crop(video, top, left, height, width)

    monkeypatch.setattr(FrameFolderVideo, "get_clip", get_clip)
    monkeypatch.setattr(transforms.TF, "crop", crop)
    dm, _ = evaluation_data()
    dataset = VideoClipDataset([Sample(folder, record["label"], name, 1, root=tmp_path)], "test",
                               TestTransform(dm.crop_size, dm.test_crops, dm.test_short_side, dm.mean, dm.std,
                                             centre_rounding=dm.test_centre_rounding, crop_axis=dm.test_crop_axis),
                               sampling=dm.sampling, num_frames=dm.num_frames, stride=dm.frame_stride,
                               num_clips=dm.test_clips, dense_convention=dm.dense_convention)
    video = dataset[0]["video"]  # (views: temporal-major, crops left/centre/right, C, T, H, W)
    assert read == [i - 1 for view in record["views"] for i in view]
    # resize: the same size (short side 224, the long side floored)
    width, height = record["resized"]
    width0, height0 = record["size"]
    assert tuple(resize_short_side(torch.zeros(1, 1, height0, width0), 224).shape[-2:]) == (height, width)
    # crops: each temporal view the same three boxes
    assert len(boxes) == 30 and all(boxes[i] == boxes[i % 3] for i in range(30))
    centre, left, right = record["boxes_centre_left_right"]
    ours = boxes[:3]
    assert ours == [left, centre, right], (ours, record["boxes_centre_left_right"])  # ours left, centre, right
    if width < height:  # TokShift's three crops are one: x 0, y centred (rounded down)
        assert left == centre == right == [0, (height - 224) // 2, 224, 224]
    # decode: PIL, as TokShift's Image.open(...).convert('RGB')
    from PIL import Image

    frame = FrameFolderVideo(folder).get_clip(0, 1, frame_indices=[0])[:, 0].permute(1, 2, 0).numpy()
    with Image.open(folder / golden["frame_format"].format(1)) as image:
        assert np.array_equal(frame, np.asarray(image.convert("RGB")))
    # the input tensor: (x / 255 - 0.5) / 0.5 on both sides; their resize (PIL bicubic of uint8) and ours
    # (bilinear in float) differ by a few levels of 255, compared where the boxes agree
    assert video.shape == (30, 3, 8, 224, 224)
    theirs = golden_pixels()[name].astype(np.float64)  # (distinct views, crops c/l/r, 2 frames, C, h, w)
    step, frames = golden["pixel_step"], golden["pixel_frames"]
    levels = video.view(10, 3, 3, 8, 224, 224)[record["distinct_views"]][:, :, :, frames, ::step, ::step]
    levels = ((levels.double() * 0.5 + 0.5) * 255).permute(0, 1, 3, 2, 4, 5).numpy()
    diff = np.concatenate([np.abs(levels[:, i] - theirs[:, THEIRS_OF_OURS[i]]).ravel() for i in range(3)])
    assert diff.mean() < 2.0 and np.quantile(diff, 0.99) < 20, (diff.mean(), np.quantile(diff, 0.99))


def test_view_average_as_validate():
    """TokShift's validate() averages a video's 30 views' logits; ours (view_average "logits") gives the same
    per-video scores (as probabilities) and the same top-1 and top-5, whatever the order of the views, and a
    distributed test counts each video once."""
    golden = torch.load(GOLDEN / "view_average.pt", weights_only=True)
    logits, labels, views = golden["logits"], golden["labels"], golden["views"]
    videos, classes = len(labels), logits.shape[1]

    class Table(torch.nn.Module):  # the logits of the view whose number the clip holds
        def forward(self, x):
            return logits[x.flatten(1)[:, 0].long()]

    _, data = evaluation_data()
    module = VideoClassifier(Table(), classes, view_average=data.test_view_average)
    generator = torch.Generator().manual_seed(0)
    order = torch.stack([torch.randperm(views, generator=generator) + v * views for v in range(videos)])
    batch = {"video": order.double().view(videos, views, 1, 1, 1, 1), "label": labels, "index": torch.arange(videos)}
    probs, _ = module._video_scores(batch)
    torch.testing.assert_close(probs[0].log(), golden["per_video"].log_softmax(-1), atol=1e-12, rtol=0)
    module._update_metrics(module.test_metrics, probs, labels)
    values = module.test_metrics.compute()
    assert float(values["test/top1"]) * 100 == pytest.approx(golden["top1"], abs=1e-4)  # float32 metric
    assert float(values["test/top5"]) * 100 == pytest.approx(golden["top5"], abs=1e-4)
    # two ranks, the second padded with the first two videos (a DistributedSampler's repeats)
    cut = 7
    parts = [{"index": batch["index"][:cut], "probs": [probs[0][:cut]], "label": labels[:cut]},
             {"index": torch.cat([batch["index"][cut:], batch["index"][:2]]),
              "probs": [torch.cat([probs[0][cut:], probs[0][:2]])], "label": torch.cat([labels[cut:], labels[:2]])}]
    merged = unique_videos(parts)
    assert torch.equal(merged["index"], batch["index"]) and torch.equal(merged["probs"][0], probs[0])


@pytest.mark.parametrize("count", [45, 257, 258, 300, 600])
def test_training_clip_start(count):
    """read_random_clip's start over 10,000 draws against ours ("tokshift" convention, the paper-scale run's); a
    start a tenth of the range late, and the "frame_stride" convention, are told apart."""
    theirs = Counter({int(k): v for k, v in golden_json("indices.json")["train_start_histogram"][str(count)].items()})
    rng = random.Random(count)
    clips = [dense_clip(count, 30.0, 8, 32, "random", rng=rng, convention="tokshift") for _ in range(DRAWS)]
    assert all(c.frame_indices == tuple((c.frame_indices[0] + 32 * k) % count for k in range(8)) for c in clips)
    ours = Counter(c.frame_indices[0] for c in clips)
    if len(theirs) == 1:  # too short for a choice: frame 0
        assert ours == theirs == Counter({0: DRAWS})
        return
    assert same_distribution(theirs, ours) > LEVEL
    shift = max(1, len(theirs) // 10)  # a tenth of the range later
    assert same_distribution(theirs, Counter({k + shift: v for k, v in ours.items()})) < LEVEL
    stride_rule = Counter(dense_clip(count, 30.0, 8, 32, "random", rng=rng).frame_indices[0] for _ in range(DRAWS))
    assert same_distribution(theirs, stride_rule) < LEVEL  # "frame_stride": starts anywhere in N - 225, no wrap


@cache
def golden_draws() -> dict[str, np.ndarray]:
    with np.load(GOLDEN / "train_draws.npz") as npz:
        return {k: npz[k] for k in npz.files}


def test_training_geometry(monkeypatch):
    """Flip, short side, resized size and crop offsets of 10,000 training clips of a 588 x 331 frame: TrainTransform
    with TokShift's short side range ([224, 330) in numpy's randint: 224 to 329) against Train_ClipAug's draws.
    The pixels are left out (the resize returns an empty frame of the real function's size)."""
    golden = golden_draws()
    height, width = 331, 588
    real_resize, sizes, drawn = transforms.resize_short_side, {}, []

    def resize(video, size):
        if size not in sizes:
            sizes[size] = tuple(real_resize(torch.zeros(1, 1, height, width), size).shape[-2:])
        drawn.append([0, size, *sizes[size][::-1], 0, 0])
        return torch.empty(*video.shape[:2], *sizes[size])

    def crop(video, top, left, h, w):
        drawn[-1][4:] = [left, top]
        return video[..., :1, :1]

    def flip(video):
        drawn[-1][0] = 1
        return video

    monkeypatch.setattr(transforms, "resize_short_side", resize)
    monkeypatch.setattr(transforms.TF, "crop", crop)
    monkeypatch.setattr(transforms.TF, "horizontal_flip", flip)
    paper, _ = paper_data()
    train = TrainTransform(paper.crop_size, (224, 329), paper.hflip, paper.mean, paper.std, rng=random.Random(0))
    video = torch.empty(3, 1, height, width)
    for _ in range(DRAWS):
        train({"video": video})
    ours = np.array(drawn)
    theirs = np.stack([golden[k].astype(np.int64) for k in ("flip", "short_side", "width", "height", "x", "y")], 1)
    assert same_distribution(Counter(theirs[:, 0]), Counter(ours[:, 0])) > LEVEL  # flip at 1/2
    assert same_distribution(Counter(theirs[:, 1]), Counter(ours[:, 1])) > LEVEL  # short side
    assert same_distribution(Counter(theirs[:, 1]), Counter(ours[:, 1] + 2)) < LEVEL
    assert {tuple(r[1:4]) for r in theirs} <= {tuple(r[1:4]) for r in ours}  # the same size for each short side
    for axis, side in ((4, 2), (5, 3)):  # x within the width, y within the height
        room_theirs, room_ours = theirs[:, side] - 224, ours[:, side] - 224
        # TokShift's offset is < room (numpy's exclusive bound), ours <= room: one position more
        assert (theirs[:, axis] <= np.maximum(room_theirs - 1, 0)).all() and (ours[:, axis] <= room_ours).all()
        assert (theirs[:, axis] == room_theirs - 1).any() and (ours[:, axis] == room_ours).any()
        u_theirs = theirs[room_theirs > 1, axis] / (room_theirs[room_theirs > 1] - 1)
        u_ours = ours[room_ours > 1, axis] / room_ours[room_ours > 1]
        assert stats.ks_2samp(u_theirs, u_ours).pvalue > LEVEL
        assert stats.ks_2samp(u_theirs, np.minimum(u_ours + 0.05, 1)).pvalue < LEVEL


def test_training_colour_changes(monkeypatch):
    """The four colour changes the paper-scale run applies (TrainTransform(tokenshift_photometric=0.1)): how often
    each applies and its factor, over 10,000 clips, against Train_ClipAug's brightness, saturation, gamma and hue."""
    golden = golden_draws()
    paper, _ = paper_data()
    train = TrainTransform(paper.crop_size, paper.train_scale, paper.hflip, paper.mean, paper.std,
                           tokenshift_photometric=paper.augment.tokenshift_photometric)
    applied = np.zeros((DRAWS, 4), dtype=bool)
    factors: list[list[float]] = [[], [], [], []]
    row = [0]
    real_params, real_gamma = T.ColorJitter.make_params, transforms.TF.adjust_gamma

    def make_params(self, flat_inputs):
        params = real_params(self, flat_inputs)
        for column, key in ((0, "brightness_factor"), (1, "saturation_factor"), (3, "hue_factor")):
            if params[key] is not None:
                applied[row[0], column] = True
                factors[column].append(params[key])
        return params

    def adjust_gamma(frames, gamma, gain=1):
        applied[row[0], 2] = True
        factors[2].append(gamma)
        return real_gamma(frames, gamma, gain)

    monkeypatch.setattr(T.ColorJitter, "make_params", make_params)
    monkeypatch.setattr(transforms.TF, "adjust_gamma", adjust_gamma)
    frames = torch.full((1, 3, 1, 1), 0.5)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        for i in range(DRAWS):
            row[0] = i
            for op in train._photometric:
                op(frames)
    ranges = {"brightness": (0.5, 2.0), "saturation": (0.5, 3.0), "gamma": (0.8, 1.2), "hue": (-0.5, 0.5)}
    for j, (name, (low, high)) in enumerate(ranges.items()):
        theirs = golden[f"factor_{name}"]
        assert same_distribution(Counter(golden["applied"][:, j]), Counter(applied[:, j])) > LEVEL, name
        assert stats.ks_2samp(theirs, factors[j]).pvalue > LEVEL, name
        assert low <= min(theirs) and max(theirs) <= high and low <= min(factors[j]) and max(factors[j]) <= high
        assert stats.ks_2samp(theirs, np.array(factors[j]) + (high - low) / 10).pvalue < LEVEL, name
