"""DAVIS 2017 label propagation (Motionformer Table 9): the reader on a fixture in the official layout, J and F on
masks with known answers, the propagation against a slow reference of DINO's formula, tracking with oracle vs
random features, and the VideoViT feature extractor."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import data  # noqa: F401  (repairs torchvision before anything imports it)
from data.davis import (
    DataNotFoundError,
    DavisDataset,
    DavisReadError,
    davis_available,
    davis_palette,
    find_sequence,
    list_sequences,
    read_sequence,
    write_davis_fixture,
    write_mask_png,
)
from lightning_modules.davis_metrics import boundary_tolerance, f_measure, jaccard, seg2bmap, sequence_scores, summarize
from lightning_modules.label_propagation import (
    DINO_DEFAULTS,
    VideoViTFeatures,
    evaluate_davis,
    labels_to_masks,
    neighborhood_mask,
    propagate_labels,
    resize_shape,
    video_vit_patch_features,
)
from models import create_model


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # Tiny matrices: with several OpenMP threads on a busy 2-core machine each op waits on spinning threads
    # (~100x slower here); one thread keeps the module fast.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def fixture_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("davis")
    write_davis_fixture(root, num_sequences=2, num_frames=10, height=64, width=96, num_objects_per_sequence=2)
    return root


@pytest.fixture(scope="module")
def square_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("davis_square")
    write_davis_fixture(root, num_sequences=2, num_frames=10, height=64, width=96, num_objects_per_sequence=1,
                        seed=1)
    return root


# --- reader ----------------------------------------------------------------------------------------------------


def test_fixture_has_the_official_layout(fixture_root):
    assert (fixture_root / "ImageSets/2017/val.txt").read_text().split() == ["synth-00", "synth-01"]
    assert (fixture_root / "JPEGImages/480p/synth-00/00000.jpg").is_file()
    with Image.open(fixture_root / "Annotations/480p/synth-00/00009.png") as img:
        assert img.mode == "P"
        assert img.getpalette()[:9] == [0, 0, 0, 128, 0, 0, 0, 128, 0]  # DAVIS / VOC colours of ids 0, 1, 2
    assert davis_palette()[3].tolist() == [128, 128, 0]


def test_reader_decodes_frames_and_object_ids(fixture_root):
    assert davis_available(fixture_root) and not davis_available(fixture_root, split="train")
    dataset = DavisDataset(fixture_root, "val")
    assert len(dataset) == 2
    name, frames, masks = dataset[0]
    assert name == "synth-00"
    assert frames.shape == (10, 64, 96, 3) and frames.dtype == np.uint8
    assert masks.shape == (10, 64, 96) and set(np.unique(masks)) == {0, 1, 2}
    # The ids mark the coloured objects: object 1 is red, object 2 green, the background grey.
    red, green = frames[masks == 1].mean(axis=0), frames[masks == 2].mean(axis=0)
    assert red[0] > 180 and red[1] < 90 and green[1] > 150 and green[0] < 90
    assert abs(frames[masks == 0].mean() - 110) < 10


def test_void_label_reads_as_background(tmp_path):
    write_davis_fixture(tmp_path, num_sequences=1, num_frames=3, num_objects_per_sequence=1)
    path = tmp_path / "Annotations/480p/synth-00/00001.png"
    mask = np.array(Image.open(path))
    mask[:4, :4] = 255
    write_mask_png(path, mask)
    _, masks = read_sequence(find_sequence(tmp_path, "synth-00"))
    assert masks[1].max() <= 1 and (masks[1][:4, :4] == 0).all()


def test_missing_data_names_the_path(tmp_path):
    assert not davis_available(tmp_path / "nowhere") and not davis_available(None)
    with pytest.raises(DataNotFoundError, match="nowhere"):
        list_sequences(tmp_path / "nowhere")
    write_davis_fixture(tmp_path, num_sequences=1, num_frames=3)
    (tmp_path / "ImageSets/2017/val.txt").unlink()
    with pytest.raises(DataNotFoundError, match=r"ImageSets/2017/val.txt"):
        DavisDataset(tmp_path)
    (tmp_path / "ImageSets/2017/val.txt").write_text("synth-00\nghost\n")
    with pytest.raises(DataNotFoundError, match="ghost"):
        DavisDataset(tmp_path)
    (tmp_path / "ImageSets/2017/val.txt").write_text("synth-00\n")
    (tmp_path / "Annotations/480p/synth-00/00002.png").unlink()
    with pytest.raises(DataNotFoundError, match="00002.png.*1 of 3 annotations"):
        DavisDataset(tmp_path)


def test_unreadable_files_are_counted_and_reported(tmp_path):
    write_davis_fixture(tmp_path, num_sequences=2, num_frames=4, num_objects_per_sequence=1)
    (tmp_path / "JPEGImages/480p/synth-01/00002.jpg").write_bytes(b"not a jpeg")
    Image.new("RGB", (96, 64)).save(tmp_path / "Annotations/480p/synth-01/00003.png")  # colour, not ids
    with pytest.raises(DavisReadError) as info:
        read_sequence(find_sequence(tmp_path, "synth-01"))
    assert info.value.sequence == "synth-01" and len(info.value.bad_files) == 2
    assert "00002.jpg" in str(info.value) and "'RGB'" in str(info.value)

    oracle = oracle_features(4)
    with pytest.raises(DavisReadError):
        evaluate_davis(oracle, tmp_path, short_side=None)
    result = evaluate_davis(oracle, tmp_path, short_side=None, on_error="skip")
    assert result["sequences"] == 1 and list(result["skipped"]) == ["synth-01"] and result["unreadable_files"] == 2


def test_a_sequence_too_short_to_score_is_named_before_it_is_segmented(tmp_path):
    write_davis_fixture(tmp_path, num_sequences=1, num_frames=2, num_objects_per_sequence=1)
    with pytest.raises(ValueError, match=rf"DAVIS sequence synth-00 \({tmp_path}\): 2 frames leave none"):
        evaluate_davis(oracle_features(4), tmp_path, short_side=None)


# --- metrics ---------------------------------------------------------------------------------------------------


def _strip(height: int, width: int, rows: int) -> np.ndarray:
    mask = np.zeros((height, width), dtype=bool)
    mask[:rows] = True
    return mask


def test_boundary_map_of_a_block():
    seg = np.zeros((5, 5), dtype=bool)
    seg[1:3, 1:3] = True
    expected = np.zeros((5, 5), dtype=bool)  # worked out by hand from _seg2bmap's XORs: shifted up-left by 1/2
    expected[0, 0:3] = expected[2, 0:3] = True
    expected[1, 0] = expected[1, 2] = True
    assert (seg2bmap(seg) == expected).all()


def test_j_and_f_known_answers():
    a = np.zeros((100, 100), dtype=bool)
    a[20:40, 20:40] = True
    far = np.zeros_like(a)
    far[60:80, 60:80] = True
    assert jaccard(a, a) == 1.0 and f_measure(a, a) == 1.0
    assert jaccard(a, far) == 0.0 and f_measure(a, far) == 0.0
    empty = np.zeros_like(a)
    assert jaccard(empty, empty) == 1.0 and f_measure(empty, empty) == 1.0
    assert jaccard(a, empty) == 0.0 and f_measure(a, empty) == 0.0  # precision 1, recall 0
    half = a.copy()
    half[30:40] = False
    assert jaccard(a, half) == 0.5
    void = np.zeros_like(a)
    void[30:40] = True
    assert jaccard(a, half, void) == 1.0


def test_f_tolerance_is_davis_bound_th():
    # 100x100: ceil(0.008 * 141.4) = 2 px. The boundary of a full-width strip is one row; a shift of s rows
    # moves all of it by s, so every boundary pixel matches (F = 1) up to s = 2 and none does from s = 3.
    assert boundary_tolerance((100, 100)) == 2
    gt = _strip(100, 100, 50)
    assert f_measure(gt, _strip(100, 100, 52)) == 1.0 and jaccard(gt, _strip(100, 100, 52)) == 50 / 52
    assert f_measure(gt, _strip(100, 100, 53)) == 0.0 and jaccard(gt, _strip(100, 100, 53)) == 50 / 53
    # At DAVIS 480p (854x480) the tolerance is ceil(0.008 * 979.6) = 8 px.
    assert boundary_tolerance((480, 854)) == 8
    gt = _strip(480, 854, 200)
    assert f_measure(gt, _strip(480, 854, 208)) == 1.0 and f_measure(gt, _strip(480, 854, 209)) == 0.0
    # Half the boundary within tolerance: precision = recall = 1/2 -> F = 1/2.
    pred = gt.copy()
    pred[:, 427:] = _strip(480, 854, 230)[:, 427:]
    f = f_measure(gt, pred)
    assert 0.45 < f < 0.55


def test_sequence_scores_skip_first_and_last_frame():
    gt = np.zeros((5, 20, 20), dtype=np.uint8)
    gt[:, 5:15, 5:15] = 1
    gt[:, 0:3, 0:3] = 2
    pred = gt.copy()
    pred[0] = 0
    pred[4] = 0  # errors on the excluded frames do not count
    scores = sequence_scores(gt, pred)
    assert np.allclose(scores["J"], 1.0) and np.allclose(scores["F"], 1.0)
    pred[2][pred[2] == 1] = 0  # object 1 lost in one of the three evaluated frames
    scores = sequence_scores(gt, pred)
    assert np.allclose(scores["J"], [2 / 3, 1.0]) and np.allclose(scores["F"], [2 / 3, 1.0])
    assert scores["J_frames"].shape == (2, 3)
    assert summarize([1.0, 0.5], [0.5, 0.0]) == {"J&F": 0.5, "J": 0.75, "F": 0.25}
    pred[3, 0, 0] = 3
    with pytest.raises(ValueError, match="id 3"):
        sequence_scores(gt, pred)


# --- propagation -----------------------------------------------------------------------------------------------


def reference_propagation(feats, first, n_last, radius, topk, temperature):
    """DINO's eval_video_segmentation.label_propagation, one target patch at a time, in float64."""
    num_frames, h, w, _ = feats.shape
    norm = feats / np.linalg.norm(feats, axis=-1, keepdims=True)
    labels = [first]
    for t in range(1, num_frames):
        context = [0] + [c for c in range(t - n_last, t) if c >= 1]
        out = np.zeros_like(first)
        for i in range(h):
            for j in range(w):
                cands = []
                for c in context:
                    for p in range(h):
                        for q in range(w):
                            near = abs(p - i) <= radius and abs(q - j) <= radius
                            aff = math.exp(float(norm[t, i, j] @ norm[c, p, q]) / temperature) if near else 0.0
                            cands.append((aff, labels[c][:, p, q]))
                kth = sorted((a for a, _ in cands), reverse=True)[topk - 1]
                kept = [(a, lab) for a, lab in cands if a >= kth]
                total = sum(a for a, _ in kept)
                out[:, i, j] = sum(a * lab for a, lab in kept) / total
        labels.append(out)
    return np.stack(labels)


def test_propagation_matches_reference_formula():
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(6, 4, 5, 8))
    first = rng.dirichlet(np.ones(3), size=(4, 5)).transpose(2, 0, 1)
    params = dict(n_last_frames=2, size_mask_neighborhood=1, topk=4, temperature=0.3)
    ours = propagate_labels(torch.from_numpy(feats), torch.from_numpy(first), **params).numpy()
    ref = reference_propagation(feats, first, 2, 1, 4, 0.3)
    assert ours.dtype == np.float64
    assert np.abs(ours - ref).max() / np.abs(ref).max() < 1e-10
    assert np.allclose(ours.sum(axis=1), 1.0)  # soft labels stay distributions


def test_neighborhood_and_defaults():
    mask = neighborhood_mask(3, 3, 1).reshape(3, 3, 3, 3)
    assert mask[1, 1].all() and mask[0, 0].sum() == 4 and not mask[0, 0, 2, 2]
    assert neighborhood_mask(3, 4, 0).all()
    assert DINO_DEFAULTS == dict(n_last_frames=7, size_mask_neighborhood=12, topk=5, temperature=0.1)
    assert resize_shape(480, 854) == (480, 832) and resize_shape(854, 480) == (832, 480)
    assert resize_shape(64, 96, None) == (64, 96)
    with pytest.raises(ValueError, match="multiple of 64"):
        resize_shape(64, 96, short_side=32)


def test_labels_to_masks_upsamples_and_resizes():
    soft = torch.zeros(1, 2, 2, 3)
    soft[0, 0] = 0.9
    soft[0, 1, :, 2] = 1.0  # the right column is object 1
    soft[0, 0, :, 2] = 0.1
    masks = labels_to_masks(soft, (8, 12), (16, 24))
    assert masks.shape == (1, 16, 24) and masks.dtype == np.uint8
    assert (masks[0, :, :12] == 0).all() and (masks[0, :, -4:] == 1).all()


def oracle_features(patch: int):
    def features(frames: torch.Tensor) -> torch.Tensor:  # mean colour of each patch: the objects' identity
        return torch.nn.functional.avg_pool2d(frames, patch).permute(0, 2, 3, 1)
    return features


def test_oracle_features_track_a_moving_square_and_random_ones_do_not(square_root, tmp_path):
    oracle = evaluate_davis(oracle_features(4), square_root, short_side=None, output_dir=tmp_path)
    generator = torch.Generator().manual_seed(0)

    def random_features(frames):
        return torch.randn(frames.shape[0], frames.shape[2] // 4, frames.shape[3] // 4, 16, generator=generator)

    chance = evaluate_davis(random_features, square_root, short_side=None)
    assert oracle["sequences"] == 2 and oracle["objects"] == 2
    assert oracle["J"] > 0.8 and oracle["F"] > 0.8
    assert chance["J"] < oracle["J"] - 0.3 and chance["J&F"] < oracle["J&F"] - 0.3
    assert oracle["J&F"] == pytest.approx((oracle["J"] + oracle["F"]) / 2)
    # Predictions are written as palette PNGs in the official results layout, frame 0 being the given mask.
    written = sorted((tmp_path / "synth-00").glob("*.png"))
    assert len(written) == 10
    with Image.open(written[0]) as img, Image.open(square_root / "Annotations/480p/synth-00/00000.png") as gt:
        assert img.mode == "P" and (np.array(img) == np.array(gt)).all()


# --- VideoViT features -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_vit():
    torch.manual_seed(0)
    return create_model("vit_tiny_video", num_classes=0).eval()  # 8 frames, 32x32, 2x8x8 tubelets, 64-d


def test_patch_features_equal_forward_features_at_training_size(tiny_vit):
    video = torch.randn(2, 3, 8, 32, 32)
    with torch.no_grad():
        tokens = video_vit_patch_features(tiny_vit, video, "tokens")
        expected = tiny_vit.forward_features(video)[:, 1:].reshape(2, 4, 4, 4, 64)
        keys = video_vit_patch_features(tiny_vit, video, "keys")
        x, thw = tiny_vit.patch_embed(video)
        x = tiny_vit._pos_embed(x, thw)
        for block in tiny_vit.blocks[:-1]:
            x = block(x, thw)
        last = tiny_vit.blocks[-1]
        expected_keys = last.attn.qkv(last.norm1(x))[:, 1:, 64:128].reshape(2, 4, 4, 4, 64)
    assert torch.allclose(tokens, expected, atol=1e-5)
    assert torch.allclose(keys, expected_keys, atol=1e-5)


@pytest.mark.parametrize("attn", ["joint", "divided", "trajectory"])
@pytest.mark.parametrize("pos_embed", ["separate", "joint"])
def test_patch_features_at_another_frame_size(attn, pos_embed):
    model = create_model("vit_tiny_video", num_classes=0, attn_layer=attn, pos_embed=pos_embed).eval()
    with torch.no_grad():
        for feature in ("tokens", "keys"):
            out = video_vit_patch_features(model, torch.randn(1, 3, 8, 40, 64), feature)
            assert out.shape == (1, 4, 5, 8, 64) and torch.isfinite(out).all()


def test_videovit_feature_fn_modes(tiny_vit):
    frames = torch.rand(10, 3, 32, 48)
    clip = VideoViTFeatures(tiny_vit, feature="tokens", mode="clip")
    out = clip(frames)
    assert out.shape == (10, 4, 6, 64)
    # Clips [0, 8) and [2, 10): frames 2i and 2i+1 share a tubelet; 8 and 9 come from the second clip.
    assert torch.equal(out[0], out[1]) and torch.equal(out[8], out[9]) and not torch.equal(out[1], out[2])
    with torch.no_grad():
        first_clip = video_vit_patch_features(tiny_vit, (frames[:8].transpose(0, 1)[None] - 0.5) / 0.5)
    assert torch.allclose(out[2], first_clip[0, 1], atol=1e-5)
    assert clip(frames[:5]).shape == (5, 4, 6, 64)  # shorter than a clip: padded with the last frame
    static = VideoViTFeatures(tiny_vit, feature="keys", mode="static")(frames[:3])
    assert static.shape == (3, 4, 6, 64) and not torch.equal(static[0], static[1])


def test_evaluate_davis_runs_a_videovit(fixture_root, tiny_vit):
    result = evaluate_davis(VideoViTFeatures(tiny_vit, feature="keys"), fixture_root, short_side=32,
                            size_multiple=16)
    assert result["sequences"] == 2 and result["objects"] == 4
    assert all(0.0 <= result[k] <= 1.0 for k in ("J&F", "J", "F"))
    assert result["params"]["temperature"] == 0.1 and result["params"]["short_side"] == 32


def test_command_line_entry(fixture_root, tmp_path):
    from lightning_modules.label_propagation import main

    out = tmp_path / "result.json"
    result = main(["--root", str(fixture_root), "--model", "vit_tiny_video", "--device", "cpu", "--feature", "keys",
                   "--short-side", "32", "--size-multiple", "16", "--out", str(out),
                   "--predictions", str(tmp_path / "pred")])
    assert result["sequences"] == 2 and result["setup"]["feature"] == "keys"
    assert out.is_file() and len(list((tmp_path / "pred" / "synth-01").glob("*.png"))) == 10


@pytest.mark.parametrize("option, value", [("--short-side", "nan"), ("--short-side", "9" * 5001),
                                           ("--short-side", "-5"), ("--size-multiple", "0"),
                                           ("--size-multiple", "١٢"), ("--device", "xyz")])
def test_the_command_line_refuses_a_bad_number_or_device_in_one_line(option, value, capsys):
    """It read plain argparse ints: nan and 5,001 digits were answered with usage blocks, --size-multiple 0 and
    --short-side -5 were taken (a ZeroDivisionError's traceback later)."""
    from lightning_modules.label_propagation import main

    with pytest.raises(SystemExit) as stop:
        main(["--root", "x", option, value])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.count("\n") == 1 and f"argument {option}: expected" in err, err


def test_the_command_line_names_a_missing_folder_in_one_line(tmp_path, capsys):
    from data.command_line import exit_status
    from lightning_modules.label_propagation import main

    assert exit_status(lambda: main(["--root", str(tmp_path / "none"), "--device", "cpu"])) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{tmp_path / 'none'} not found" in err, err
