"""X-ViT's data pipeline and view combination against the authors' running code (1adrianb/video-transformers @
82ca176), through the golden files ``tools/pipeline_golden/xvit.py`` made with it (tests/golden/pipelines/xvit/).

Ours is what a paper-scale X-ViT run and ``python -m experiments evaluate`` build: the catalogue's protocols
(experiments/xvit/released_weights.yaml), ``data.clip_sampling``, ``data.datasets.VideoClipDataset`` on frame
folders, ``data.transforms.TestTransform`` / ``TrainTransform``, ``VideoClassifier._video_scores``. Exact where the
draws can be aligned (same generator, same calls), the SSv2 test and training frames included (segment convention
"pyslowfast": their get_seq_frames); a two-sample test at level 1e-3 where not; three training draws deviate, each
pinned below with its size (``test_*_deviation``).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

from data.clip_augment import make_auto_augment
from data.clip_sampling import dense_clip, temporal_views, uniform_segments
from data.datasets import VideoClipDataset
from data.samples import Sample
from data.transforms import (
    TestTransform,
    TrainTransform,
    multi_scale_crop_window,
    random_crop_offsets,
    resize_short_side,
    uniform_crop_offsets,
)
from data.video_io import FRAME_FOLDER_FPS
from experiments.harness.released_weights import find_checkpoint
from experiments.xvit.tables import (
    FPS_SCALED_KINETICS_CLIPS,
    SSV2_YAML_VIEWS,
    XVIT_PAPER_K400,
    XVIT_PAPER_K600,
    XVIT_PAPER_SSV2,
)
from lightning_modules.video_classifier import VideoClassifier, unique_videos

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "pipelines" / "xvit"
LEVEL = 1e-3  # a two-sample test passes at p > LEVEL
DRAWS = 10_000  # the maker's draws of each training choice
K600 = find_checkpoint("xvit:xvit_b16_16_k600").protocol
SSV2 = find_checkpoint("xvit:xvit_b16_16_ss2").protocol


def _golden(name: str):
    return json.loads((GOLDEN / name).read_text())


# Rates of the Kinetics videos a case is read at on our side where their loader has no fps file (it reads none from
# an HDF5 file): the clip must not depend on it
RATES = (25.0, 29.97, FRAME_FOLDER_FPS, 59.94)
FPS_SCALED = FPS_SCALED_KINETICS_CLIPS["dense_convention"]


def _our_indices(case: dict, segment_convention: str = SSV2.segment_convention, fps: float | None = None,
                 dense_convention: str = K600.dense_convention) -> list[list[int]]:
    """Our frames of each temporal view, as the catalogue's protocol samples them, of a video at ``fps`` (None: the
    case's rate where their loader had its fps file, else a frame folder's 30)."""
    if case["dataset"] == "kinetics":
        fps = fps or (case["fps"] if case["fps_file"] else FRAME_FOLDER_FPS)
        views = temporal_views(case["frames"], fps, K600.frames, K600.stride, case["temporal_views"], "dense",
                               dense_convention=dense_convention)
    else:
        views = temporal_views(case["frames"], FRAME_FOLDER_FPS, SSV2.frames, 1, case["temporal_views"], "segments",
                               SSV2.segment_view_offsets, segment_convention=segment_convention)
    return [list(v.frame_indices) for v in views]


def _their_indices(case: dict) -> list[list[int]]:
    return [case["items"][3 * v]["frame_indices"] for v in range(case["temporal_views"])]


# SSv2 test frames: their get_seq_frames cuts (L - 1) / 16-frame segments with rounded ends, as ours ("pyslowfast");
# L / 16-frame segments ("uniform", the offsets 0.5 and 0 of the catalogue) would put this many of the 16 frames of
# (view 0, view 1) one frame off, never more.
SSV2_UNIFORM_FRAMES_OFF = {"ssv2_48f": (7, 7), "ssv2_45f": (6, 4), "ssv2_odd_73f": (6, 4), "ssv2_16f": (7, 7),
                   "ssv2_short_10f": (7, 5), "ssv2_portrait_37f": (2, 4), "ssv2_121f": (6, 4),
                   "px_ssv2_portrait": (6, 4)}


def test_the_protocols_are_the_official_configs():
    """The catalogue and the paper presets hold the yaml's views, frames, crop, normalisation and aggregation."""
    assert (K600.temporal_views, K600.spatial_views, K600.frames, K600.stride) == (1, 3, 16, 16)
    assert K600.dense_convention == "pyslowfast_frames" and K600.sampling == "dense"
    assert (SSV2.temporal_views, SSV2.spatial_views, SSV2.frames, SSV2.sampling) == (2, 3, 16, "segments")
    assert SSV2.segment_view_offsets == (0.5, 0.0) and SSV2.segment_convention == "pyslowfast"
    for protocol in (K600, SSV2):
        assert (protocol.crop, protocol.short_side, protocol.view_average) == (224, 224, "logits")
        assert tuple(protocol.mean) == tuple(protocol.std) == (0.5, 0.5, 0.5)
    k600, ssv2 = XVIT_PAPER_K600.data["K-600"], XVIT_PAPER_SSV2.data["SSv2"]
    assert (k600.num_frames, k600.frame_stride, k600.test_crops, k600.test_view_average) == (16, 16, 3, "logits")
    assert k600.options["dense_convention"] == "pyslowfast_frames" and k600.hflip and k600.options["multi_scale_crop"]
    assert XVIT_PAPER_K400.data["K-400"].options["dense_convention"] == "pyslowfast_frames"
    assert (ssv2.num_frames, ssv2.test_crops, ssv2.hflip, ssv2.train_scale) == (16, 3, False, (256, 320))
    assert SSV2_YAML_VIEWS["test_clips"] == 2 and SSV2_YAML_VIEWS["options"]["segment_view_offsets"] == (0.5, 0.0)
    assert ssv2.options["segment_convention"] == SSV2_YAML_VIEWS["options"]["segment_convention"] == "pyslowfast"


def test_kinetics_test_views_are_their_frames_resize_and_crops():
    cases = [c for c in _golden("test_views.json")["cases"] if c["dataset"] == "kinetics"]
    assert len(cases) == 27
    for case in cases:
        _check_boxes(case, K600.short_side, K600.crop)


def test_kinetics_test_views_are_their_shipped_loaders_at_any_frame_rate():
    """Their loader as shipped (no annotation/<split>_fps.txt): 16 x 16 of the video's frames, whatever its rate;
    ours by default at 25, 29.97, 30 and 59.94 fps. The span scaled by the rate would take other frames at 25 fps."""
    cases = [c for c in _golden("test_views.json")["cases"] if c["dataset"] == "kinetics" and not c["fps_file"]]
    assert len(cases) == 15
    for case in cases:
        for fps in RATES:
            assert _our_indices(case, fps=fps) == _their_indices(case), (case["name"], fps)
    long = next(c for c in cases if c["name"] == "k600_300f" and c["temporal_views"] == 1)
    assert _their_indices(long)[0][-1] - _their_indices(long)[0][0] == 255
    assert _our_indices(long, fps=25.0, dense_convention=FPS_SCALED) != _their_indices(long)


def test_kinetics_test_views_with_their_fps_file_are_the_fps_scaled_option():
    """Their loader given each video's rate by the fps file (25, 29.97 and 60 fps): ours with
    ``FPS_SCALED_KINETICS_CLIPS``; the shipped span (ours by default) takes other frames at 25 and 60 fps."""
    cases = [c for c in _golden("test_views.json")["cases"] if c["dataset"] == "kinetics" and c["fps_file"]]
    assert len(cases) == 12
    for case in cases:
        assert _our_indices(case, dense_convention=FPS_SCALED) == _their_indices(case), case["name"]
        if case["fps"] in (25.0, 60.0):
            assert _our_indices(case) != _their_indices(case), case["name"]


def test_ssv2_test_views_are_their_frames():
    """Each segment's middle frame (view 0) and first frame (view 1), theirs for every length (10 to 121 frames);
    "uniform" segments would be one frame off (``SSV2_UNIFORM_FRAMES_OFF``)."""
    cases = [c for c in _golden("test_views.json")["cases"] if c["dataset"] == "ssv2"]
    cases += [{**c, "temporal_views": c["views"]} for c in _golden("pixel_views.json")["cases"]
              if c["dataset"] == "ssv2"]
    for case in cases:
        theirs = _their_indices(case)
        assert _our_indices(case) == theirs, case["name"]
        uniform = _our_indices(case, "uniform")
        off = tuple(sum(a != b for a, b in zip(o, t)) for o, t in zip(uniform, theirs))
        assert off == SSV2_UNIFORM_FRAMES_OFF[case["name"]], (case["name"], uniform, theirs)
        if "resize" in case["items"][0] and case["items"][0]["crop"][2] == 224:
            _check_boxes(case, SSV2.short_side, SSV2.crop)


def _check_boxes(case: dict, short_side: int, crop: int) -> None:
    height, width = case["size"]
    resized = list(resize_short_side(torch.zeros(1, 1, height, width), short_side).shape[-2:])
    for k, item in enumerate(case["items"]):
        assert item["resize"] == [[height, width], resized], (case["name"], k)
        assert item["crop"] == [*uniform_crop_offsets(*resized, crop, k % 3), crop], (case["name"], k)


def _pixel_dataset(case: dict, indices_only: bool = False) -> VideoClipDataset:
    protocol = K600 if case["dataset"] == "kinetics" else SSV2
    crop = case["overrides"]["DATA.TEST_CROP_SIZE"]  # the pixel cases' small crop, short side = crop as in 224
    sample = Sample(path=GOLDEN / "frames" / case["name"], label=0, video_id=case["name"], line=0)
    transform = TestTransform(crop, protocol.spatial_views, crop, protocol.mean, protocol.std)
    if protocol is K600:
        return VideoClipDataset([sample], "test", transform, "dense", protocol.frames,
                                case["overrides"]["DATA.SAMPLING_RATE"], case["views"],
                                dense_convention=protocol.dense_convention)
    return VideoClipDataset([sample], "test", transform, "segments", protocol.frames, 1, case["views"],
                            segment_view_offsets=protocol.segment_view_offsets,
                            segment_convention=protocol.segment_convention)


def test_the_input_tensor_of_every_view_is_theirs():
    """Our dataset item from the frame folder (the h5 file's JPEG bytes) equals their item, view for view (float
    noise: they normalise before the bilinear resize, we after)."""
    golden, tensors = _golden("pixel_views.json"), torch.load(GOLDEN / "pixel_views.pt")
    for case in golden["cases"]:
        video = _pixel_dataset(case)[0]["video"].double()
        expected = tensors[case["name"]]
        assert video.shape[0] == 3 * case["views"]
        torch.testing.assert_close(video.sum((1, 2, 3, 4)), expected["sum"], atol=1e-3, rtol=0)
        torch.testing.assert_close((video ** 2).sum((1, 2, 3, 4)), expected["sum_sq"], atol=1e-3, rtol=0)
        torch.testing.assert_close(video[..., ::6, ::6].float(), expected["every_6th"], atol=1e-5, rtol=0)


class _Lookup(nn.Module):
    """A model whose logits are looked up: each input clip holds its row number."""

    def __init__(self, table: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("table", table)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.table[x.flatten(1)[:, 0].long()]


def test_view_combination_ranks_as_their_test_meter():
    """Their TestMeter sums the views' logits; ours averages them (view_average "logits") and takes the softmax:
    log ours = log_softmax(theirs / V), whatever the order the views come in; so the same top-1 and top-5."""
    golden = torch.load(GOLDEN / "view_combination.pt")
    logits, labels = golden["logits"], golden["labels"]
    videos, views, classes = logits.shape
    assert golden["clip_count"].tolist() == [views] * videos  # every view of every video reached their meter
    classifier = VideoClassifier(_Lookup(logits.reshape(-1, classes)), classes, view_average="logits")
    order = torch.stack([torch.randperm(views, generator=torch.Generator().manual_seed(v)) for v in range(videos)])
    rows = (torch.arange(videos)[:, None] * views + order).double()  # views shuffled inside each video
    batch = {"video": rows.view(videos, views, 1, 1, 1, 1), "label": labels}
    (probs,), _ = classifier._video_scores(batch)
    torch.testing.assert_close(probs.log(), torch.log_softmax(golden["video_preds"] / views, -1))
    parts = [{"index": torch.tensor(rows), "probs": [probs[rows]], "label": labels[rows]}
             for rows in ([4, 0, 2, 6, 8], [1, 3, 5, 7, 0])]
    merged = unique_videos(parts)  # two processes, video 0 repeated by a distributed sampler's padding
    assert merged["index"].tolist() == list(range(videos))
    metrics = classifier.test_metrics
    metrics.update(merged["probs"][0], merged["label"])
    values = {k: float(v) for k, v in metrics.compute().items()}
    assert values["test/top1"] == pytest.approx(golden["top1_correct"] / videos)
    assert values["test/top5"] == pytest.approx(golden["top5_correct"] / videos)


# ---- training ------------------------------------------------------------------------------------------------------

def test_kinetics_training_clips_are_their_draws():
    """Their decode draws random.uniform(0, delta) from Python's generator; ours from the Random it is given: the
    presets' clips at any rate where they had no fps file, the fps-scaled option at the video's rate where they had
    it."""
    convention = XVIT_PAPER_K600.data["K-600"].options["dense_convention"]
    for case in _golden("train.json")["k600_clip_starts"]["cases"]:
        for seed, expected in zip(case["seeds"], case["frame_indices"]):
            for fps, rule in (((case["fps"], FPS_SCALED),) if case["fps"] else
                              ((fps, convention) for fps in RATES)):
                clip = dense_clip(case["frames"], fps, 16, 16, "random", rng=random.Random(seed), convention=rule)
                assert list(clip.frame_indices) == expected, (case["frames"], fps, rule, seed)


def test_kinetics_multi_scale_crop_windows_are_their_draws():
    for case in _golden("train.json")["k600_multi_scale_crop"]["cases"]:
        for seed, expected in zip(case["seeds"], case["windows_top_left_h_w"]):
            assert list(multi_scale_crop_window(*case["size"], case["crop"], random.Random(seed))) == expected


def test_kinetics_multi_scale_crop_pixels_deviation():
    """The same window (their random.seed(3), our Random(3)); they resize uint8 PIL frames (PIL's bilinear, which
    antialiases), we float frames (torchvision's antialiased bilinear), rounding apart: ours within 1 grey level of
    theirs (deviates on purpose, by rounding)."""
    draws = torch.load(GOLDEN / "train_draws.pt")
    video = draws["k600_multi_scale_input"].permute(3, 0, 1, 2)  # (C, T, H, W) uint8
    ours = TrainTransform(24, (24, 24), False, multi_scale_crop=True, rng=random.Random(3))({"video": video})["video"]
    grey = (ours.permute(1, 2, 3, 0).double() * 0.5 + 0.5) * 255
    difference = (grey - draws["k600_multi_scale_pixels"].double()).abs()
    assert difference.max() <= 1.0 and difference.mean() < 0.3, (difference.max(), difference.mean())


def test_ssv2_random_erasing_boxes_are_their_draws():
    golden = _golden("train.json")["ssv2_random_erasing"]
    eraser = TrainTransform(16, (16, 16), False, random_erasing=0.5)
    for seed, expected in zip(golden["seeds"], golden["boxes"]):
        random.seed(seed)
        erased = eraser._erase(torch.ones(3, 4, 16, 20)) == 0
        if expected is None:
            assert not erased.any(), seed
            continue
        top, left, height, width = expected
        box = torch.zeros(16, 20, dtype=torch.bool)
        box[top:top + height, left:left + width] = True
        assert (erased == box).all(), seed


def test_auto_augment_is_their_policy():
    golden = _golden("train.json")["auto_augment_v0"]
    ours = make_auto_augment("v0", int(0.45 * 224))
    names = {"_posterize_keeping_no_bit_too": "posterize"}
    policy = [[[names.get(op.aug_fn.__name__, op.aug_fn.__name__), op.prob, op.magnitude] for op in sub]
              for sub in ours.policy]
    assert policy == golden["policy"]
    assert ours.policy[0][0].hparams["translate_const"] == golden["hparams"]["translate_const"] == 100
    assert list(ours.policy[0][0].kwargs["fillcolor"]) == golden["fillcolor"]


def _chi_square(a: np.ndarray, b: np.ndarray) -> float:
    """p of a chi-square test that two histograms over the same bins come from one distribution."""
    keep = (a + b) > 0
    return stats.chi2_contingency(np.stack([a[keep], b[keep]]))[1]


def test_flip_and_mixup_draws_match_in_distribution():
    golden, draws = _golden("train.json")["draws"], torch.load(GOLDEN / "train_draws.pt")
    rng, n = random.Random(0), len(draws["mixup_lambda"])
    ours = sum(rng.random() < 0.5 for _ in range(n))  # TrainTransform's flip
    table = lambda k: np.array([k, n - k])  # noqa: E731
    assert _chi_square(table(golden["k600_flip_count"]), table(ours)) > LEVEL
    shifted = sum(rng.random() < 0.45 for _ in range(n))
    assert _chi_square(table(golden["k600_flip_count"]), table(shifted)) < LEVEL
    np.random.seed(0)
    mixup = VideoClassifier(nn.Identity(), 600, mixup_alpha=0.4, label_smoothing=0.3).mixup
    lams = np.array([mixup._params_per_batch()[0] for _ in range(n)])
    assert stats.ks_2samp(draws["mixup_lambda"].numpy(), lams).pvalue > LEVEL
    assert stats.ks_2samp(draws["mixup_lambda"].numpy(), np.clip(lams + 0.03, 0, 1)).pvalue < LEVEL


def test_ssv2_scale_jitter_and_crop_deviation():
    """PySlowFast's int(round(U(256, 320))) gives the two end sizes half the chance of the others, and its
    np.random.randint(0, room) never crops at the last offset; ours draws every size and offset alike: the same
    distribution inside (chi-square), the ends as stated (deviates: 1/128 vs 1/65 per end size; 1 of room + 1
    offsets)."""
    draws = torch.load(GOLDEN / "train_draws.pt")
    transform, rng = TrainTransform(224, (256, 320), False), random.Random(0)
    ours = np.bincount([transform._short_side(rng) - 256 for _ in range(10_000)], minlength=65)
    theirs = np.bincount(draws["ssv2_short_side"].numpy() - 256, minlength=65)
    assert _chi_square(theirs[1:-1], ours[1:-1]) > LEVEL
    shifted = TrainTransform(224, (259, 323), False)  # the range 3 pixels up
    moved = np.bincount([shifted._short_side(rng) - 256 for _ in range(10_000)], minlength=68)[:65]
    assert _chi_square(theirs[1:-1], moved[1:-1]) < LEVEL
    assert 0.3 < theirs[[0, -1]].sum() / theirs[1:-1].mean() / 2 < 0.7  # the ends at half weight in theirs
    offsets = draws["ssv2_crop_offsets"].numpy()
    assert offsets[:, 0].max() == 256 - 224 - 1 and offsets[:, 1].max() == 341 - 224 - 1
    ours = np.array([random_crop_offsets(torch.zeros(256, 341), 224, rng) for _ in range(10_000)])
    assert ours[:, 0].max() == 256 - 224 and ours[:, 1].max() == 341 - 224
    inside = ours[(ours[:, 0] < 32) & (ours[:, 1] < 117)]
    assert _chi_square(np.bincount(offsets[:, 1], minlength=117), np.bincount(inside[:, 1], minlength=117)) > LEVEL


def test_ssv2_training_frames_are_their_draws():
    """Their training frame of segment i: random.randint over [round(s i), round(s (i + 1))], s = (L - 1) / 16,
    both ends in (neighbouring segments share a frame); ours (the paper preset's segment convention) from the same
    generator and seed (random.seed(L)): the same 10,000 draws, counted per segment and frame."""
    convention = XVIT_PAPER_SSV2.data["SSv2"].options["segment_convention"]
    for case in _golden("train.json")["ssv2_train_frames"]["cases"]:
        frames, theirs = case["frames"], np.array(case["counts"])
        rng, ours = random.Random(frames), np.zeros_like(theirs)
        for _ in range(DRAWS):
            ours[np.arange(16), uniform_segments(frames, 30.0, 16, "random", rng=rng,
                                                 convention=convention).frame_indices] += 1
        assert (ours == theirs).all(), frames
