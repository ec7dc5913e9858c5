"""Our data pipeline against Motionformer's own (facebookresearch/Motionformer @bf43d50), from the golden files
``tools/pipeline_golden/mformer.py`` made by driving the authors' dataset classes on small generated videos.

Test time: every Kinetics (16x4, 32x3, 16x8), SSv2 and EPIC-KITCHENS view as ``python -m experiments evaluate``
builds it (the released-weights catalogue's protocols through ``VideoClipDataset`` and ``TestTransform``), against
the authors' frame indices, resized size, crop boxes and final input. View combination: ``_video_scores`` against
their ``TestMeter`` / ``EPICTestMeter``. Training: our draws against 10,000 of theirs (chi-square, p > 1e-3).

EPIC-KITCHENS is exact: the frames of every view (``segment_placement="epic_slowfast"``: their round(start x fps),
fps 50 / 60 from the video's name, 1-based frame files, clamp to the segment's frames - 1), also minutes into
hour-long videos (``epic_placement.json``), and the input in their BGR order (the catalogue's ``channels: BGR``).

Kinetics is exact: the frames of every test view and training clip (``dense_convention="pyslowfast_pyav"``: their
PyAV selective decoding, which starts a clip at the first frame at or after its fractional start), training starts
aligned with their draws (the same Python generator and seed). SSv2 is exact: the frames of every test view and the
training frames, aligned with their draws (``segment_convention="pyslowfast"``: their get_seq_frames).

Known differences, pinned (each test says by how much): their random crop never takes the last offset.
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from scipy.stats import chisquare

from data.clip_sampling import StreamTiming, dense_clip, epic_frames_fps, sample_clip, temporal_views
from data.datasets import VideoClipDataset
from data.epic_annotations import _epic_source
from data.samples import Sample
from data.schemas import epic_timestamp
from data.transforms import TestTransform, TrainTransform, random_crop_offsets, resize_short_side, uniform_crop_offsets
from data.video_io import open_video
from experiments.harness.released_weights import find_checkpoint
from lightning_modules.video_classifier import VideoClassifier, _accuracy_metrics

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "pipelines" / "mformer"
LEVEL = 1e-3  # a chi-square test passes at p > LEVEL
# Temporal views (of 150) that decoding every frame ("pyslowfast", X-ViT's h5 path) would start one frame earlier
# than the authors' PyAV selective decoding, which begins at the first frame whose pts is at or after
# int(start * pts per frame): what "pyslowfast_pyav" gets right. Training clips (of 300): likewise.
KINETICS_DECODE_ALL_EARLY_VIEWS, KINETICS_DECODE_ALL_EARLY_CLIPS = 40, 100
# EPIC: the recordings' rates EPIC_100_video_info.csv lists (not the extracted frames'), which neither our reader nor
# the authors' loader uses: 59.94 would move these views (the placement test counts them)
CSV_FPS = {"P01_101": 50.0, "P03_123": 50.0, "P02_01": 59.94005994005994, "P30_05": 59.94005994005994}
SSV2_UNIFORM_MOVED_VIEWS = 3  # videos (of 4) whose frames "uniform" segments (L / 16 frames) would move by one


@functools.cache
def golden(name: str) -> dict:
    return json.loads((GOLDEN / name).read_text())


@functools.cache
def probes(name: str) -> dict[str, torch.Tensor]:
    return torch.load(GOLDEN / name, weights_only=True)


def sha(tensor: torch.Tensor) -> str:
    return hashlib.sha256(tensor.contiguous().numpy().tobytes()).hexdigest()[:16]


def probe(tensor: torch.Tensor) -> torch.Tensor:
    return tensor[:, ::4, ::4, ::8].float()


def our_views(sample: Sample, protocol, crop: int) -> tuple[list[list[int]], torch.Tensor]:
    """The frame indices of every temporal view and the (views, C, T, H, W) input, as the evaluation's test set
    makes them: the catalogue protocol's sampling and views, its crop and short side replaced by the golden's."""
    options = protocol.data_options()
    dataset = VideoClipDataset(
        [sample], "test", TestTransform(crop, protocol.spatial_views, crop, protocol.mean, protocol.std,
                                        channel_order=options["channel_order"]),
        segment_placement=options.get("segment_placement", "timestamps"),
        sampling=protocol.sampling, num_frames=protocol.frames, stride=protocol.stride or 1,
        num_clips=protocol.temporal_views, segment_view_offsets=protocol.segment_view_offsets,
        dense_convention=protocol.dense_convention or "frame_stride",
        segment_convention=protocol.segment_convention or "uniform")
    with open_video(sample.path, sample.fps) as video:
        clips = dataset._clips(video, sample)
    return [list(c.frame_indices) for c in clips], dataset[0]["video"]


def decoded(path: Path, indices: list[int], fps: float | None = None) -> torch.Tensor:
    """Our decoded uint8 frames (T, H, W, C)."""
    with open_video(path, fps) as video:
        return video.get_clip(0, 0, frame_indices=indices).permute(1, 2, 3, 0)


@functools.cache
def kinetics_cases() -> list[tuple[dict, list[list[int]], torch.Tensor]]:
    out = []
    for case in golden("kinetics.json")["cases"]:
        protocol = find_checkpoint("mformer:" + case["checkpoint"]).protocol
        sample = Sample(GOLDEN / case["video"], 0, case["video"], 0)
        out.append((case, *our_views(sample, protocol, case["test_crop_size"])))
    return out


def test_kinetics_protocols_are_the_authors_configs():
    for case in golden("kinetics.json")["cases"]:
        protocol = find_checkpoint("mformer:" + case["checkpoint"]).protocol
        assert (protocol.frames, protocol.stride) == (case["num_frames"], case["sampling_rate"]), case["checkpoint"]
        assert (protocol.temporal_views, protocol.spatial_views) == (case["temporal_views"], case["spatial_views"])
        assert (protocol.sampling, protocol.dense_convention, case["target_fps"]) == ("dense", "pyslowfast_pyav", 30)
        assert list(protocol.mean) == case["mean"] and list(protocol.std) == case["std"]
        assert protocol.short_side == protocol.crop  # their TEST_CROP_SIZE is both


def test_kinetics_decoding_is_exact():
    """Our PyAV decode of the authors' frames is theirs, byte for byte (frame counts and rates read alike)."""
    for case, _, _ in kinetics_cases():
        with open_video(GOLDEN / case["video"]) as video:
            assert (video.num_frames, video.fps) == (case["stream_frames"], pytest.approx(case["average_rate"]))
        for view in case["views"][::case["spatial_views"]]:
            assert sha(decoded(GOLDEN / case["video"], view["frame_indices"])) == view["frames_sha"], \
                (case["video"], view["view"])


def test_kinetics_temporal_views_are_theirs():
    """Every temporal view's frames are the authors' (25, 29.97 and 60 fps, a video shorter than a clip whose stored
    duration is not a whole number of frames); decoding every frame instead ("pyslowfast") would start
    ``KINETICS_DECODE_ALL_EARLY_VIEWS`` of them one frame earlier."""
    early = 0
    for case, ours, _ in kinetics_cases():
        for view in case["views"][::case["spatial_views"]]:
            theirs = view["frame_indices"]
            assert ours[view["temporal"]] == theirs, (case["checkpoint"], case["video"], view["temporal"])
            decode_all = dense_clip(case["stream_frames"], case["average_rate"], case["num_frames"],
                                    case["sampling_rate"], view["temporal"], case["temporal_views"],
                                    convention="pyslowfast").frame_indices
            early += list(decode_all) != theirs
    assert early == KINETICS_DECODE_ALL_EARLY_VIEWS


def test_kinetics_training_clips_are_their_draws():
    """The paper preset's training clip (``VideoClipDataset`` in train mode, Python's ``random`` seeded as theirs
    was) is their ``Kinetics(cfg, 'train')`` clip, seed for seed: the start's random.uniform, then their selective
    decoding; decoding every frame would start ``KINETICS_DECODE_ALL_EARLY_CLIPS`` of the clips one frame earlier."""
    from experiments.mformer.tables import PAPER

    assert PAPER.data["K-400"].options["dense_convention"] == PAPER.data["K-600"].options["dense_convention"] \
        == "pyslowfast_pyav"
    early = 0
    for case in golden("train_clips.json")["cases"]:
        sample = Sample(GOLDEN / case["video"], 0, case["video"], 0)
        dataset = VideoClipDataset([sample], "train", sampling="dense", num_frames=case["num_frames"],
                                   stride=case["sampling_rate"],
                                   dense_convention=PAPER.data["K-400"].options["dense_convention"])
        with open_video(sample.path) as video:
            for seed, theirs in zip(case["seeds"], case["frame_indices"], strict=True):
                random.seed(seed)
                (clip,) = dataset._clips(video, sample)
                assert list(clip.frame_indices) == theirs, (case["checkpoint"], case["video"], seed)
                random.seed(seed)
                early += list(dense_clip(video.num_frames, video.fps, case["num_frames"], case["sampling_rate"],
                                         convention="pyslowfast").frame_indices) != theirs
    assert early == KINETICS_DECODE_ALL_EARLY_CLIPS


def test_kinetics_resize_and_crop_boxes():
    for case, _, ours in kinetics_cases():
        crop, height, width = case["test_crop_size"], case["height"], case["width"]
        resized = list(resize_short_side(torch.zeros(1, 1, height, width), crop).shape[-2:])
        for view in case["views"]:
            assert resized == view["resized"], (case["video"], view["view"])
            assert list(uniform_crop_offsets(*resized, crop, view["spatial"])) in view["crop_boxes"], \
                (case["video"], crop, view["view"], view["crop_boxes"])
        assert ours.shape[1:] == torch.Size(case["views"][0]["input_shape"])


def test_kinetics_input_matches_where_the_frames_do():
    """Same frames -> the same input: bit for bit without a resize; with one, within float32 rounding (they
    normalise before resizing, we after)."""
    tensors = probes("kinetics_tensors.pt")
    exact = 0
    for case, ours_idx, ours in kinetics_cases():
        resizes = min(case["height"], case["width"]) != case["test_crop_size"]
        for view in case["views"]:
            assert ours_idx[view["temporal"]] == view["frame_indices"], (case["video"], view["view"])
            mine = ours[view["view"]]
            if not resizes:
                assert sha(mine) == view["input_sha"], (case["checkpoint"], case["video"], view["view"])
                exact += 1
            assert float(mine.double().sum()) == pytest.approx(view["input_sum"], abs=1e-3)
            key = f"{case['checkpoint']}/{Path(case['video']).stem}/{view['view']}"
            if key in tensors:
                assert (probe(mine) - tensors[key]).abs().max() <= 2e-6, key
    assert exact >= 90


def test_ssv2_views():
    """SSv2, 1 x 3 views of 16 segments: each segment's middle frame, theirs (segments of (L - 1) / 16 frames with
    rounded ends; L / 16-frame segments would move ``SSV2_UNIFORM_MOVED_VIEWS`` videos' frames); JPEG frames
    decoded alike (theirs BGR by cv2, reversed by REVERSE_INPUT_CHANNEL); crops and input as Kinetics'."""
    content = golden("ssv2.json")
    protocol = find_checkpoint("mformer:ssv2_motionformer_224_16x4").protocol
    assert (protocol.frames, protocol.temporal_views, protocol.spatial_views) == (16, 1, 3)
    assert protocol.segment_convention == "pyslowfast"
    tensors, moved = probes("ssv2_tensors.pt"), 0
    for case in content["cases"]:
        assert case["reverse_input_channel"]
        sample = Sample(GOLDEN / case["video"], 0, case["video"], 0)
        ours_idx, ours = our_views(sample, protocol, case["test_crop_size"])
        for view in case["views"]:
            theirs = view["frame_indices"]
            assert ours_idx[0] == theirs, (case["video"], view["view"])
            bgr = decoded(GOLDEN / case["video"], theirs, 30.0).flip(-1)
            assert sha(bgr) == view["frames_sha"], case["video"]
            resized = list(resize_short_side(torch.zeros(1, 1, case["height"], case["width"]),
                                             case["test_crop_size"]).shape[-2:])
            assert resized == view["resized"]
            assert list(uniform_crop_offsets(*resized, case["test_crop_size"], view["spatial"])) in view["crop_boxes"]
            key = f"{Path(case['video']).name}/{view['view']}"
            assert (probe(ours[view["view"]]) - tensors[key]).abs().max() <= 2e-6, key
        uniform = temporal_views(case["frames"], 30.0, 16, 1, 1, "segments", protocol.segment_view_offsets)
        moved += list(uniform[0].frame_indices) != case["views"][0]["frame_indices"]
    assert moved == SSV2_UNIFORM_MOVED_VIEWS


def test_epic_views():
    """EPIC-KITCHENS, 10 x 3 views inside each segment of a frame folder (``mformer:ek_motionformer_224_16x4``'s
    protocol), the folder's Sample as our reader makes it (``_epic_source``: the folder, at its name's 50 / 60 fps):
    the frames are the authors' (``pack_frames_to_video_clip``), exactly; crops alike; the input is theirs in their
    channel order (BGR: cv2, no REVERSE_INPUT_CHANNEL in configs/EK), within float32 rounding (they normalise before
    resizing)."""
    content = golden("epic.json")
    protocol = find_checkpoint("mformer:ek_motionformer_224_16x4").protocol
    assert (protocol.frames, protocol.stride, protocol.temporal_views, protocol.spatial_views) == (16, 4, 10, 3)
    assert protocol.channels == "BGR" and protocol.segment_placement == "epic_slowfast"
    tensors, compared = probes("epic_tensors.pt"), 0
    for case in content["cases"]:
        assert not case["reverse_input_channel"]
        video_id = Path(case["video"]).name
        path, fps = _epic_source(GOLDEN / "videos" / "epic", video_id.split("_")[0], video_id)
        assert (path, fps) == (GOLDEN / case["video"], case["official_fps"])
        sample = Sample(path, (case["label"]["verb"], case["label"]["noun"]), case["narration_id"], 0,
                        segment=(epic_timestamp(case["start_timestamp"]), epic_timestamp(case["stop_timestamp"])),
                        fps=fps)
        ours_idx, ours = our_views(sample, protocol, case["test_crop_size"])
        for view in case["views"]:
            theirs = view["frame_indices"]
            assert ours_idx[view["temporal"]] == theirs, (case["narration_id"], view["temporal"])
            bgr = decoded(GOLDEN / case["video"], theirs, fps)
            assert sha(bgr.flip(-1)) == view["frames_sha"], case["narration_id"]
            resized = list(resize_short_side(torch.zeros(1, 1, case["height"], case["width"]),
                                             case["test_crop_size"]).shape[-2:])
            assert resized == view["resized"]
            assert list(uniform_crop_offsets(*resized, case["test_crop_size"], view["spatial"])) in view["crop_boxes"]
            mine = ours[view["view"]]
            assert float(mine.double().sum()) == pytest.approx(view["input_sum"], abs=1e-3), case["narration_id"]
            key = f"{case['narration_id']}/{view['view']}"
            if key in tensors:
                assert (probe(mine) - tensors[key]).abs().max() <= 2e-6, key
                compared += 1
    assert compared == 2 * len(content["cases"])


class _FrameCount(SimpleNamespace):
    """A video of ``num_frames`` at ``fps`` whose frames are never read (placement only)."""


def test_epic_placement_exact_in_long_videos():
    """Every test view of segments minutes into hour-long videos, starting on half frames, one hundredth long, for
    both EK clip shapes: the authors' frames (``epic_placement.json``), exactly, through the catalogue's protocols;
    a frame folder at the rate our reader gives it (its name's 50 / 60 fps, the authors'), a video file at its own;
    at the video-info list's 59.94 fps every case of the EPIC-55 videos would move."""
    shapes = {(16, 4): "mformer:ek_motionformer_224_16x4", (32, 3): "mformer:ek_motionformer_224_32x3"}
    cases, moved = golden("epic_placement.json")["cases"], 0
    for case in cases:
        protocol = find_checkpoint(shapes[case["num_frames"], case["sampling_rate"]]).protocol
        options = protocol.data_options()
        dataset = VideoClipDataset([], "test", sampling=protocol.sampling, num_frames=protocol.frames,
                                   stride=protocol.stride, num_clips=protocol.temporal_views,
                                   dense_convention=options["dense_convention"],
                                   segment_placement=options["segment_placement"])
        video_id, segment = case["video_id"], (epic_timestamp(case["start_timestamp"]),
                                               epic_timestamp(case["stop_timestamp"]))
        assert epic_frames_fps(video_id) == case["official_fps"], video_id  # the reader's rate of its frames folder
        folder = Sample(Path(video_id[:3]) / "rgb_frames" / video_id, (0, 0), case["narration_id"], 1,
                        segment=segment, fps=float(epic_frames_fps(video_id)))
        ours = [list(c.frame_indices) for c in dataset._clips(_FrameCount(fps=folder.fps, num_frames=10**7), folder)]
        assert ours == case["views"], (case["config"], case["narration_id"])
        at_csv_rate = dataset._clips(_FrameCount(fps=CSV_FPS[video_id], num_frames=10**7), folder)
        moved += [list(c.frame_indices) for c in at_csv_rate] != case["views"]
        file = folder._replace(path=Path(video_id[:3]) / "videos" / f"{video_id}.MP4", fps=None)
        at_own_rate = dataset._clips(_FrameCount(fps=float(case["official_fps"]), num_frames=10**7), file)
        assert [list(c.frame_indices) for c in at_own_rate] == case["views"], case["narration_id"]
    assert len(cases) == 20 and sum(len(c["views"]) for c in cases) == 200
    assert moved == 10  # at 59.94 fps: the views of all 10 cases of the EPIC-55 videos (P02_01, P30_05) move


def test_epic_presets_and_catalogue():
    """The released EK files are tested on BGR, placed as the authors' loader places them; the paper preset places
    segments alike but trains and tests on RGB (ImageNet's order, through the K-400 model); the tiny preset neither;
    the Kinetics and SSv2 files read RGB."""
    from experiments.mformer.tables import PAPER_EPIC, TINY_EPIC

    for name in ("ek_motionformer_224_16x4", "ek_motionformer_336_16x4", "ek_motionformer_224_32x3"):
        options = find_checkpoint(f"mformer:{name}").protocol.data_options()
        assert (options["channel_order"], options["segment_placement"]) == ("BGR", "epic_slowfast"), name
    for name in ("k400_motionformer_224_16x4", "ssv2_motionformer_224_16x4"):
        assert "segment_placement" not in (options := find_checkpoint(f"mformer:{name}").protocol.data_options())
        assert options["channel_order"] == "RGB"
    paper = PAPER_EPIC.data["EK-100"].options
    assert paper["segment_placement"] == "epic_slowfast" and paper.get("channel_order", "RGB") == "RGB"
    assert all("segment_placement" not in d.options and "channel_order" not in d.options
               for d in TINY_EPIC.data.values())


class _Scores:
    """The view combination of ``VideoClassifier`` (its own methods) around a model that returns its input: a test
    batch's ``video`` (B, V, K, 1, 1, 1) is the views' logits."""

    input_key = "video"
    model_input = VideoClassifier.model_input
    fold_views = VideoClassifier.fold_views
    _split = VideoClassifier._split
    _targets = VideoClassifier._targets
    video_probabilities = VideoClassifier.video_probabilities
    _video_scores = VideoClassifier._video_scores
    _update_metrics = VideoClassifier._update_metrics

    def __init__(self, num_classes):
        self.num_classes = num_classes
        self.hparams = SimpleNamespace(view_average="probabilities")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)

    def scores(self, logits: torch.Tensor, label: torch.Tensor) -> list[torch.Tensor]:
        batch = {"video": logits[..., None, None, None], "label": label}
        return self._video_scores(batch)[0]


def grouped(logits: list, order: list, views: int) -> torch.Tensor:
    """(videos, views, K) from the authors' rows in the shuffled order they were fed, each video's views in a
    shuffled order of their own (the order must not matter)."""
    rows = torch.tensor(logits)
    by_video: dict[int, list[int]] = {}
    for clip in order:
        by_video.setdefault(clip // views, []).append(clip)
    return torch.stack([rows[by_video[v]] for v in sorted(by_video)])


def _preds(values: list) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def test_view_combination_is_their_sum_of_softmax_over_views():
    """Our per-video probabilities x views = their TestMeter's summed softmax; the same top-1 / top-5."""
    content = golden("meter.json")["single_head"]
    views = golden("meter.json")["views_per_video"]
    labels = torch.tensor(content["labels"])
    probs = _Scores(10).scores(grouped(content["logits"], content["order"], views), labels)[0]
    torch.testing.assert_close(probs.double() * views, _preds(content["video_preds"]), atol=1e-5, rtol=0)
    metrics = _accuracy_metrics(10, "", sync=False)
    metrics.update(probs, labels)
    ours = {k: round(100 * float(v), 2) for k, v in metrics.compute().items()}
    assert ours == {"top1": float(content["stats"]["top1_acc"]), "top5": float(content["stats"]["top5_acc"])}


def test_epic_view_combination_verb_noun_action():
    """Verb and noun: their EPICTestMeter's sums, top-1 and top-5. Action top-1 (both right) agrees; action
    top-5 differs by definition: theirs counts a video when its verb is in the verb top-5 and its noun in the noun
    top-5, ours ranks the verb x noun pairs (the top-5 pairs)."""
    content = golden("meter.json")["epic"]
    views = golden("meter.json")["views_per_video"]
    logits = torch.cat([grouped(content["verb_logits"], content["order"], views),
                        grouped(content["noun_logits"], content["order"], views)], -1)
    label = torch.tensor([content["verbs"], content["nouns"]]).T
    scorer = _Scores({"verb": 6, "noun": 8})
    verb, noun = scorer.scores(logits, label)
    torch.testing.assert_close(verb.double() * views, _preds(content["verb_preds"]), atol=1e-5, rtol=0)
    torch.testing.assert_close(noun.double() * views, _preds(content["noun_preds"]), atol=1e-5, rtol=0)
    metrics = _accuracy_metrics({"verb": 6, "noun": 8}, "", sync=False)
    scorer._update_metrics(metrics, [verb, noun], label)
    ours = {k: round(100 * float(v), 2) for k, v in metrics.compute().items()}
    theirs = {k.replace("_acc", ""): float(v) for k, v in content["stats"].items() if k.endswith("_acc")}
    assert {k: v for k, v in ours.items() if k != "action_top5"} == \
        {k: v for k, v in theirs.items() if k != "action_top5"}
    assert 0 < theirs["action_top1"] < 100


def _chi2(observed: list[int], theirs: list[int]) -> float:
    """p of a two-sample chi-square test of two count vectors over the same bins (bins empty in both dropped)."""
    table = np.array([observed, theirs], dtype=float)
    table = table[:, table.sum(0) > 0]
    expected = table.sum(0) * (table.sum(1, keepdims=True) / table.sum())
    return float(chisquare(table.ravel(), expected.ravel(), ddof=table.shape[1] - 1).pvalue)


def _counts(values, low: int, high: int) -> list[int]:
    return np.bincount(np.asarray(values) - low, minlength=high - low + 1).tolist()


DRAWS = 10_000


def _their_python_draws() -> tuple[random.Random, list[int]]:
    """The maker's Python generator replayed (random.seed(0), then its only users: 10,000 clip starts, then the SSv2
    segments; the other draws are numpy's): a Random(0) and our clips' first frames from its first 10,000 draws, on
    their 300-frame 30 fps video of 512 pts a frame (as our mp4 files at 30 fps)."""
    start, rng = golden("train.json")["start"], random.Random(0)
    timing = StreamTiming(start["video_frames"], start["video_frames"] * 512, 0, 512.0)
    firsts = [dense_clip(start["video_frames"], start["fps"], start["num_frames"], start["sampling_rate"], "random",
                         rng=rng, convention="pyslowfast_pyav", timing=timing).frame_indices[0] for _ in range(DRAWS)]
    return rng, firsts


def test_training_clip_start_is_their_draw():
    """Clip start: their random.uniform(0, delta), then PyAV selective decoding's first frame (``first_decoded``,
    the draw rounded up to a frame); ours from the same draws: the same 10,000 first frames (counts equal)."""
    start = golden("train.json")["start"]
    _, firsts = _their_python_draws()
    assert _counts(firsts, 0, start["delta"]) == start["first_decoded"]


@pytest.mark.parametrize("key,inverse", [("scale", False), ("scale_inverse_uniform", True)])
def test_training_scale_jitter_in_distribution(key, inverse):
    """Short side: theirs int(round(U(256, 320))) (Kinetics, EPIC) or round(1 / U(1/320, 1/256)) (SSv2), ours
    ``TrainTransform._short_side`` (randint, or the same inverse draw). Theirs gives 256 and 320 half the chance
    of the others (rounding), ours the same chance: alike inside, the ends pinned."""
    draws = golden("train.json")[key]
    transform = TrainTransform(224, (draws["min"], draws["max"]), True, inverse_uniform_scale=inverse)
    rng = random.Random(0)
    ours = _counts([transform._short_side(rng) for _ in range(DRAWS)], draws["min"], draws["max"])
    assert _chi2(ours[1:-1], draws["counts"][1:-1]) > LEVEL
    ends = (ours[0] + ours[-1]) / DRAWS, (draws["counts"][0] + draws["counts"][-1]) / DRAWS
    assert ends[1] == pytest.approx(ends[0] / 2, abs=0.006) if not inverse else ends[1] == pytest.approx(ends[0],
                                                                                                       abs=0.006)
    shifted = [0] * 4 + ours[:-4]  # every short side 4 pixels longer
    assert _chi2(shifted[1:-1], draws["counts"][1:-1]) < LEVEL


def test_training_crop_offsets_and_flip_in_distribution():
    """Random crop (theirs np.random.randint(0, room): never the last offset, ours randint(0, room) inclusive: one
    position in room + 1 differs, pinned) and the flip rate (theirs 0.5, SSv2 none: RANDOM_FLIP False)."""
    draws = golden("train.json")["crop"]
    rng, frame = random.Random(0), torch.empty(0, draws["height"], draws["width"])
    tops, lefts = zip(*(random_crop_offsets(frame, draws["size"], rng) for _ in range(DRAWS)), strict=True)
    for ours, theirs, room in ((tops, draws["top"], draws["height"] - draws["size"]),
                               (lefts, draws["left"], draws["width"] - draws["size"])):
        counts = _counts(ours, 0, room)
        assert theirs[-1] == 0 and counts[-1] > 0  # the authors' crop never reaches the last offset
        assert _chi2(counts[:-1], theirs[:-1]) > LEVEL  # the others alike
    flips = golden("train.json")["flip"]
    transform, rng = TrainTransform(2, (2, 2), hflip=True, rng=random.Random(0)), None
    video = torch.arange(4, dtype=torch.uint8).view(1, 1, 1, 4).expand(3, 1, 2, 4)
    ours = sum(bool(out[0, 0, 0, 0] > out[0, 0, 0, -1]) for out in
               (transform({"video": video})["video"] for _ in range(2000)))
    assert _chi2([ours, 2000 - ours], [flips["flipped"], flips["draws"] - flips["flipped"]]) > LEVEL
    assert find_checkpoint("mformer:ssv2_motionformer_224_16x4") and not _ssv2_flips()


def _ssv2_flips() -> bool:
    from experiments.mformer.tables import PAPER

    return bool(PAPER.data["SSv2"].hflip)


def test_training_ssv2_segments_are_their_draws():
    """SSv2 training frames: one random frame per segment, randint over the rounded ends of (L - 1) / 16 segments
    (both ends inclusive: neighbours share a frame); ours (the paper preset's segment convention) from the same
    draws: every segment's 10,000 frames counted alike."""
    from experiments.mformer.tables import PAPER

    draws = golden("train.json")["ssv2_segments"]
    convention = PAPER.data["SSv2"].options["segment_convention"]
    rng, length = _their_python_draws()[0], draws["video_frames"]
    ours = np.array([sample_clip(length, 30.0, draws["num_frames"], 1, "segments", rng=rng,
                                 segment_convention=convention).frame_indices for _ in range(DRAWS)])
    assert [_counts(ours[:, i], 0, length - 1) for i in range(draws["num_frames"])] == draws["counts"]
