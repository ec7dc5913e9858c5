"""DAVIS 2017 label propagation (Motionformer Table 9) against plain-loop references of the sources it follows.

Checked against slow loops written here, never against the code under test:

* boundary F (``davis2017-evaluation`` ``davis2017/metrics.py``): ``_seg2bmap``'s XOR rules pixel by pixel and the
  ``skimage.morphology.disk`` match (Euclidean distance <= ``ceil(bound_th * diagonal)``, or ``bound_th`` pixels if
  >= 1) on random blobs that touch the image border;
* the prediction step of DINO's ``eval_video_segmentation.py``: bilinear (half-pixel) upsampling of the soft labels,
  ``norm_mask``'s per-channel min-max, argmax, PIL nearest resize to the annotation size;
* DINO's ``read_frame``: frames divided by 255, resized like ``cv2.resize`` INTER_LINEAR (half-pixel bilinear) to a
  short side with the long side floored to a multiple of 64;
* ``evaluate_davis``: the propagation parameters and ``bound_th`` reach the code that uses them, J_m / F_m are means
  over objects (``evaluation.py`` appends one value per object), the objects are those of the first annotation and
  a ``sequences`` subset is honoured;
* ``VideoViTFeatures``: a short sequence is padded with its last frame, the static mode averages the tubelets.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from PIL import Image

import data  # noqa: F401  (repairs torchvision before anything imports it)
import lightning_modules.label_propagation as label_propagation
from data.davis import DavisDataset, num_objects, write_davis_fixture, write_mask_png
from lightning_modules.davis_metrics import f_measure, seg2bmap
from lightning_modules.label_propagation import (
    VideoViTFeatures,
    evaluate_davis,
    labels_to_masks,
    resize_shape,
    segment_sequence,
    video_vit_patch_features,
)
from models import create_model

# mean colour of each patch: features that identify the objects
from tests.lightning_modules.test_label_propagation import (
    one_thread,  # noqa: F401  (autouse: one thread for tiny tensors)
    oracle_features,
)

# --- boundary F: davis2017/metrics.py, pixel by pixel ------------------------------------------------------------


def _reference_bmap(seg: np.ndarray) -> np.ndarray:
    """``_seg2bmap`` one pixel at a time: XOR with the east, south and south-east neighbours (0 outside); the last
    row uses only the east neighbour, the last column only the south one, the bottom-right corner is never set."""
    height, width = seg.shape
    out = np.zeros((height, width), dtype=bool)
    # A pixel can be on the boundary only if it or its east, south or south-east neighbour is set.
    candidates = {(y - dy, x - dx) for y, x in np.argwhere(seg) for dy in (0, 1) for dx in (0, 1)}
    for i, j in sorted(c for c in candidates if c[0] >= 0 and c[1] >= 0):
        here = bool(seg[i, j])
        east = bool(seg[i, j + 1]) if j + 1 < width else False
        south = bool(seg[i + 1, j]) if i + 1 < height else False
        south_east = bool(seg[i + 1, j + 1]) if i + 1 < height and j + 1 < width else False
        if i == height - 1 and j == width - 1:
            out[i, j] = False
        elif i == height - 1:
            out[i, j] = here != east
        elif j == width - 1:
            out[i, j] = here != south
        else:
            out[i, j] = here != east or here != south or here != south_east
    return out


def _matched(points: list[tuple[int, int]], others: set[tuple[int, int]], radius: int) -> int:
    """How many of ``points`` have a point of ``others`` within Euclidean distance ``radius`` (skimage's disk)."""
    offsets = [(dy, dx) for dy in range(-radius, radius + 1) for dx in range(-radius, radius + 1)
               if dy * dy + dx * dx <= radius * radius]
    return sum(any((y + dy, x + dx) in others for dy, dx in offsets) for y, x in points)


def _reference_f(gt: np.ndarray, pred: np.ndarray, bound_th: float) -> float:
    """``davis2017/metrics.py::f_measure`` without void, as plain loops."""
    radius = int(bound_th) if bound_th >= 1 else math.ceil(bound_th * math.sqrt(gt.shape[0] ** 2 + gt.shape[1] ** 2))
    pred_points = [tuple(p) for p in np.argwhere(_reference_bmap(pred))]
    gt_points = [tuple(p) for p in np.argwhere(_reference_bmap(gt))]
    if not pred_points and not gt_points:
        precision, recall = 1.0, 1.0
    elif not pred_points:
        precision, recall = 1.0, 0.0
    elif not gt_points:
        precision, recall = 0.0, 1.0
    else:
        precision = _matched(pred_points, set(gt_points), radius) / len(pred_points)
        recall = _matched(gt_points, set(pred_points), radius) / len(gt_points)
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def _blob(rng: np.random.Generator, height: int, width: int, count: int) -> np.ndarray:
    """A union of random discs and rectangles, some cut by the image border."""
    yy, xx = np.mgrid[0:height, 0:width]
    mask = np.zeros((height, width), dtype=bool)
    for _ in range(count):
        cy, cx = rng.uniform(-3, height + 3), rng.uniform(-3, width + 3)
        size = rng.uniform(3, 9)
        if rng.random() < 0.5:
            mask |= (yy - cy) ** 2 + (xx - cx) ** 2 <= size ** 2
        else:
            mask |= (np.abs(yy - cy) <= size) & (np.abs(xx - cx) <= size * rng.uniform(0.3, 1.5))
    return mask


def test_seg2bmap_matches_the_pixel_rules_on_random_blobs():
    rng = np.random.default_rng(0)
    for _ in range(6):
        seg = _blob(rng, 23, 31, 4)
        assert (seg2bmap(seg) == _reference_bmap(seg)).all()


@pytest.mark.parametrize("bound_th", [0.008, 1, 4])  # 40x48: 0.008 -> ceil(0.5) = 1 pixel; >= 1: pixels
def test_f_measure_matches_a_plain_loop_reference(bound_th):
    rng = np.random.default_rng(int(bound_th * 1000))
    values = []
    for _ in range(5):
        gt = _blob(rng, 40, 48, 3)
        pred = gt.copy()
        shift_y, shift_x = rng.integers(-4, 5, size=2)  # a diagonal shift: the disk's shape matters
        pred = np.roll(np.roll(pred, shift_y, axis=0), shift_x, axis=1) | _blob(rng, 40, 48, 1)
        expected = _reference_f(gt, pred, bound_th)
        values.append(expected)
        assert f_measure(gt, pred, bound_th=bound_th) == pytest.approx(expected, abs=1e-12)
    assert len({round(v, 6) for v in values}) > 1  # the cases are not all 0 or all 1


def test_f_measure_masks_both_boundaries_with_void():
    """metrics.py multiplies both masks by ``not void`` before ``_seg2bmap``: a ground-truth blob wholly in void is
    not missed (F = 1), as a predicted one is not a false positive."""
    gt = np.zeros((40, 40), dtype=bool)
    gt[:20] = True
    void = np.zeros_like(gt)
    void[25:35, 5:15] = True
    with_blob = gt.copy()
    with_blob[27:32, 7:12] = True
    assert f_measure(with_blob, gt, void) == 1.0 and f_measure(gt, with_blob, void) == 1.0
    assert f_measure(with_blob, gt) < 1.0 and f_measure(gt, with_blob) < 1.0


def test_f_tolerance_is_a_euclidean_disk_at_davis_size():
    """At 854x480 the tolerance is 8 pixels. A one-pixel object's boundary is a 2x2 block; moving the object by
    (6, 6) puts the nearest boundary pixels sqrt(50) < 8 apart and the farthest pairs of corners sqrt(2 * 7^2)
    or more, so the match depends on the disk, not a square or a diamond of radius 8."""
    gt = np.zeros((480, 854), dtype=bool)
    gt[200, 300] = True
    for dy, dx in [(6, 6), (5, 6), (7, 3), (8, 0), (9, 0), (4, 7)]:
        pred = np.zeros_like(gt)
        pred[200 + dy, 300 + dx] = True
        assert f_measure(gt, pred) == pytest.approx(_reference_f(gt, pred, 0.008), abs=1e-12), (dy, dx)


# --- DINO's prediction step and frame reading ---------------------------------------------------------------------


def _half_pixel_bilinear(image: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """(C, H, W) -> (C, out_h, out_w): ``cv2.resize`` INTER_LINEAR / ``F.interpolate(align_corners=False)``, with
    source coordinate (dst + 0.5) * in / out - 0.5 clamped at 0 and the last pixel repeated past the edge."""
    channels, in_h, in_w = image.shape
    out = np.zeros((channels, out_h, out_w))
    for y in range(out_h):
        sy = max((y + 0.5) * in_h / out_h - 0.5, 0.0)
        y0 = int(sy)
        y1, ly = min(y0 + 1, in_h - 1), sy - y0
        for x in range(out_w):
            sx = max((x + 0.5) * in_w / out_w - 0.5, 0.0)
            x0 = int(sx)
            x1, lx = min(x0 + 1, in_w - 1), sx - x0
            out[:, y, x] = ((1 - ly) * ((1 - lx) * image[:, y0, x0] + lx * image[:, y0, x1])
                            + ly * ((1 - lx) * image[:, y1, x0] + lx * image[:, y1, x1]))
    return out


def _pil_nearest(ids: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """PIL NEAREST: destination pixel d takes source floor((d + 0.5) * in / out) (sizes are chosen so that this is
    never an integer, where PIL's rounding of in / out would decide)."""
    in_h, in_w = ids.shape
    return np.array([[ids[int((y + 0.5) * in_h / out_h), int((x + 0.5) * in_w / out_w)] for x in range(out_w)]
                     for y in range(out_h)], dtype=np.uint8)


def test_labels_to_masks_is_dinos_upsample_min_max_argmax_resize():
    rng = np.random.default_rng(3)
    h, w, frame_h, frame_w, out_h, out_w = 3, 5, 12, 20, 20, 28  # out / frame = 5/3 and 7/5: odd numerators
    soft = np.stack([0.5 + 0.1 * rng.random((h, w)),  # high but nearly flat: min-max makes it compete
                     0.6 * rng.random((h, w)),
                     0.3 * rng.random((h, w))])[None]
    expected = []
    for labels in soft:
        up = _half_pixel_bilinear(labels, frame_h, frame_w)
        for c in range(len(up)):  # DINO's norm_mask
            if up[c].max() > 0:
                up[c] = (up[c] - up[c].min()) / (up[c] - up[c].min()).max()
        expected.append(_pil_nearest(up.argmax(axis=0).astype(np.uint8), out_h, out_w))
    ours = labels_to_masks(torch.from_numpy(soft).float(), (frame_h, frame_w), (out_h, out_w))
    assert ours.shape == (1, out_h, out_w)
    assert len(np.unique(expected[0])) == 3  # every class wins somewhere
    assert (ours == np.stack(expected)).all()


def test_resize_shape_floors_the_long_side_to_a_multiple_of_64():
    # DINO read_frame: th = 480, tw = int((480 * w / h) // 64 * 64); 880 -> 832 (round or ceil would give 896).
    assert resize_shape(480, 880) == (480, 832) and resize_shape(880, 480) == (832, 480)
    assert resize_shape(240, 440) == (480, 832)  # the short side is scaled up to 480 first
    assert resize_shape(480, 480) == (480, 448)  # DINO too: 480 is no multiple of 64


def test_segment_sequence_feeds_frames_in_0_1_resized_half_pixel_bilinear():
    rng = np.random.default_rng(4)
    frames = rng.integers(0, 256, size=(3, 6, 9, 3), dtype=np.uint8)
    first_mask = np.zeros((6, 9), dtype=np.uint8)
    first_mask[2:5, 3:7] = 1
    seen = []

    def features(video: torch.Tensor) -> torch.Tensor:
        seen.append(video.clone())
        return torch.nn.functional.avg_pool2d(video, 4).permute(0, 2, 3, 1)

    pred = segment_sequence(features, frames, first_mask, num_classes=2, short_side=8, size_multiple=4)
    assert pred.shape == (3, 6, 9) and (pred[0] == first_mask).all()
    (video,) = seen
    assert video.shape == (3, 3, 8, 12)  # resize_shape(6, 9, 8, 4): 8 x floor(12 / 4) * 4
    for t in range(3):
        expected = _half_pixel_bilinear(frames[t].transpose(2, 0, 1).astype(np.float64) / 255.0, 8, 12)
        assert np.abs(video[t].double().numpy() - expected).max() < 1e-5


# --- evaluate_davis wiring ----------------------------------------------------------------------------------------


def spy_on_propagation_and_scores(monkeypatch) -> tuple[list[dict], list[dict]]:
    """The keyword arguments of each ``propagate_labels`` and ``sequence_scores`` call ``evaluate_davis`` makes."""
    propagation_calls, score_calls = [], []
    propagate, scores = label_propagation.propagate_labels, label_propagation.sequence_scores

    def spy_propagate(*args, **kwargs):
        propagation_calls.append(kwargs)
        return propagate(*args, **kwargs)

    def spy_scores(*args, **kwargs):
        score_calls.append(kwargs)
        return scores(*args, **kwargs)

    monkeypatch.setattr(label_propagation, "propagate_labels", spy_propagate)
    monkeypatch.setattr(label_propagation, "sequence_scores", spy_scores)
    return propagation_calls, score_calls


def test_evaluate_davis_passes_its_parameters_on(tmp_path, monkeypatch):
    write_davis_fixture(tmp_path, num_sequences=1, num_frames=4, height=32, width=48, num_objects_per_sequence=1)
    propagation_calls, score_calls = spy_on_propagation_and_scores(monkeypatch)
    evaluate_davis(oracle_features(4), tmp_path, short_side=None, n_last_frames=2, size_mask_neighborhood=3,
                   topk=7, temperature=0.25, bound_th=0.02)
    assert propagation_calls == [dict(n_last_frames=2, size_mask_neighborhood=3, topk=7, temperature=0.25)]
    assert score_calls == [dict(bound_th=0.02)]


def test_evaluate_davis_means_are_over_objects_not_sequences(tmp_path):
    """Sequence synth-00 keeps its 2 objects, synth-01 is cut to 1: J_m and F_m weigh the 3 objects equally, as
    ``evaluation.py`` appends one mean per object."""
    write_davis_fixture(tmp_path, num_sequences=2, num_frames=5, height=32, width=48, num_objects_per_sequence=2,
                        seed=3)
    for path in sorted((tmp_path / "Annotations/480p/synth-01").glob("*.png")):
        mask = np.array(Image.open(path))
        mask[mask == 2] = 0
        write_mask_png(path, mask)
    generator = torch.Generator().manual_seed(0)
    oracle, calls = oracle_features(4), []

    def features(frames):  # oracle features for the first sequence, random ones for the second: uneven scores
        calls.append(len(frames))
        if len(calls) == 1:
            return oracle(frames)
        return torch.randn(frames.shape[0], frames.shape[2] // 4, frames.shape[3] // 4, 8, generator=generator)

    result = evaluate_davis(features, tmp_path, short_side=None)
    seq0, seq1 = result["per_sequence"]["synth-00"], result["per_sequence"]["synth-01"]
    assert (seq0["objects"], seq1["objects"], result["objects"]) == (2, 1, 3)
    assert abs(seq0["J"] - seq1["J"]) > 0.05 and abs(seq0["F"] - seq1["F"]) > 0.05
    assert result["J"] == pytest.approx((2 * seq0["J"] + seq1["J"]) / 3, abs=1e-12)
    assert result["F"] == pytest.approx((2 * seq0["F"] + seq1["F"]) / 3, abs=1e-12)


def test_objects_are_the_ids_of_the_first_annotation():
    masks = np.zeros((3, 4, 4), dtype=np.uint8)
    masks[0, 0, 0] = 1
    masks[0, 1, 1] = 3  # ids need not be contiguous: davis2017 takes the largest id of frame 0
    masks[1, 2, 2] = 4  # an object that shows up later is not one to segment
    assert num_objects(masks) == 3


def test_frames_are_read_in_name_order(tmp_path):
    """``find_sequence`` sorts by name (DINO's ``read_frame_list`` and davis2017 ``np.sort(glob(...))``), whatever
    order the directory lists: the files are rewritten in a shuffled order here."""
    write_davis_fixture(tmp_path, num_sequences=1, num_frames=6, height=16, width=16, num_objects_per_sequence=1)
    _, ordered_frames, ordered_masks = DavisDataset(tmp_path)[0]
    rng = np.random.default_rng(5)
    for folder in (tmp_path / "JPEGImages/480p/synth-00", tmp_path / "Annotations/480p/synth-00"):
        files = {p.name: p.read_bytes() for p in folder.iterdir()}
        for p in folder.iterdir():
            p.unlink()
        for name in rng.permutation(sorted(files)):
            (folder / name).write_bytes(files[name])
    sequence = DavisDataset(tmp_path).sequences[0]
    assert [p.name for p in sequence.frame_paths] == [f"{t:05d}.jpg" for t in range(6)]
    assert [p.name for p in sequence.mask_paths] == [f"{t:05d}.png" for t in range(6)]
    _, frames, masks = DavisDataset(tmp_path)[0]
    assert (frames == ordered_frames).all() and (masks == ordered_masks).all()


def test_dataset_honours_a_sequence_subset(tmp_path):
    write_davis_fixture(tmp_path, num_sequences=3, num_frames=3, height=16, width=16, num_objects_per_sequence=1)
    assert [s.name for s in DavisDataset(tmp_path, sequences=["synth-02", "synth-00"]).sequences] == [
        "synth-00", "synth-02"]  # in the split file's order


# --- VideoViT features --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_vit():
    torch.manual_seed(0)
    return create_model("vit_tiny_video", num_classes=0).eval()  # 8 frames, 32x32, 2x8x8 tubelets, 64-d


def _model_input(frames: torch.Tensor) -> torch.Tensor:
    """(T, 3, H, W) in [0, 1] -> (1, 3, T, H, W) normalised with Motionformer's 0.5 / 0.5."""
    return ((frames - 0.5) / 0.5).transpose(0, 1)[None]


def test_patch_features_add_every_position_table():
    """At the training size the features are ``forward_features``' patch tokens; with position tables (CLS slot
    included) and a temporal table far from their near-zero initialisation, a dropped term would show. Joint
    attention: under trajectory attention the patch tokens never attend to the CLS token."""
    torch.manual_seed(1)
    model = create_model("vit_tiny_video", num_classes=0, attn_layer="joint").eval()
    with torch.no_grad():
        model.pos_embed.normal_()
        model.time_embed.normal_()
        model.cls_token.normal_()
        video = torch.randn(1, 3, 8, 32, 32)
        expected = model.forward_features(video)[:, 1:].reshape(1, 4, 4, 4, 64)
        assert torch.allclose(video_vit_patch_features(model, video), expected, atol=1e-4)


def test_short_sequence_is_padded_with_its_last_frame(tiny_vit):
    frames = torch.rand(5, 3, 32, 32)
    padded = torch.cat([frames, frames[-1:].expand(3, -1, -1, -1)])  # 8 frames: the last one repeated
    with torch.no_grad():
        expected = video_vit_patch_features(tiny_vit, _model_input(padded))[0]  # (4 tubelets, h, w, D)
    out = VideoViTFeatures(tiny_vit, mode="clip")(frames)
    for frame in range(5):
        assert torch.allclose(out[frame], expected[frame // 2], atol=1e-5)


def test_static_mode_averages_the_tubelets_of_a_still_clip(tiny_vit):
    model = copy.deepcopy(tiny_vit)
    with torch.no_grad():  # a temporal table that is not zero, so that the tubelets of a still clip differ
        model.time_embed.normal_(std=0.5)
    frames = torch.rand(2, 3, 32, 32)
    out = VideoViTFeatures(model, feature="keys", mode="static")(frames)
    for frame in range(2):
        with torch.no_grad():
            still = video_vit_patch_features(model, _model_input(frames[frame:frame + 1].expand(8, -1, -1, -1)),
                                             "keys")[0]
        expected = sum(still[i] for i in range(4)) / 4
        assert not torch.allclose(still[0], still[3], atol=1e-4)  # the tubelets differ (temporal positions)
        assert torch.allclose(out[frame], expected, atol=1e-5)
