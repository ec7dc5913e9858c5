"""Synthetic benchmark sets: determinism, real annotation formats, decodability, balance, and the bias each set
is built to have (appearance: one frame suffices; motion: one frame is at chance, two frames are not)."""

from __future__ import annotations

import json
import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import data  # noqa: F401  (repairs torchvision before anything imports it)
import pytest
import torch
from torch import nn

from data.annotations import read_annotations
from data.synthetic import SYNTHETIC_SETS, ensure_synthetic, generate_synthetic, synthetic_dir
from data.video_io import Video

TINY = dict(num_train=12, num_val=6, num_video_frames=8, seed=3)


@pytest.fixture(scope="module")
def tiny_sets(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("tiny")
    return {name: generate_synthetic(name, base / name, **TINY) for name in SYNTHETIC_SETS}


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_specs_describe_the_sets():
    appearance, motion = SYNTHETIC_SETS["synth_appearance"], SYNTHETIC_SETS["synth_motion"]
    assert (appearance.annotation_format, appearance.mimics) == ("kinetics_list", "Kinetics-400")
    assert appearance.hflip_ok is True
    assert (motion.annotation_format, motion.mimics) == ("ssv2", "Something-Something V2")
    assert motion.hflip_ok is False
    assert 6 <= appearance.num_classes <= 8 and 4 <= motion.num_classes <= 6
    for spec in SYNTHETIC_SETS.values():
        assert len(spec.class_names) == spec.num_classes == len(set(spec.class_names))


@pytest.mark.parametrize("name", sorted(SYNTHETIC_SETS))
def test_generation_is_deterministic(name, tiny_sets, tmp_path):
    again = generate_synthetic(name, tmp_path / name, **TINY)
    first, second = _files(tiny_sets[name]), _files(again)
    assert first.keys() == second.keys()
    assert [k for k in first if first[k] != second[k]] == [], "same seed must give the same bytes"
    other = _files(generate_synthetic(name, tmp_path / "other", **{**TINY, "seed": 4}))
    assert any(first[k] != other.get(k) for k in first if k.endswith((".mp4", ".webm")))


def test_appearance_set_is_in_kinetics_path_label_format(tiny_sets):
    root = tiny_sets["synth_appearance"]
    for split, count in (("train", TINY["num_train"]), ("val", TINY["num_val"])):
        lines = (root / f"{split}.csv").read_text().splitlines()
        assert len(lines) == count
        assert all(re.fullmatch(r"\S+\.mp4 \d+", line) for line in lines)
        samples, bad = read_annotations("kinetics_list", root, split)
        assert not bad and len(samples) == count
        assert all(s.path.is_file() and s.path.suffix == ".mp4" for s in samples)


def test_motion_set_is_in_ssv2_format(tiny_sets):
    root = tiny_sets["synth_motion"]
    labels = json.loads((root / "labels.json").read_text())
    assert all(isinstance(v, str) and v.isdigit() for v in labels.values())  # SSv2 stores indices as strings
    entries = json.loads((root / "train.json").read_text())
    assert {"id", "label", "template", "placeholders"} <= set(entries[0])
    for entry in entries:
        assert entry["template"].replace("[", "").replace("]", "") in labels
        assert entry["label"] == entry["template"].replace("[something]", entry["placeholders"][0])
    for split, count in (("train", TINY["num_train"]), ("val", TINY["num_val"])):
        samples, bad = read_annotations("ssv2", root, split)
        assert not bad and len(samples) == count
        assert all(s.path.parent.name == "videos" and s.path.suffix == ".webm" and s.path.is_file() for s in samples)
    ids = [s.video_id for split in ("train", "val") for s in read_annotations("ssv2", root, split)[0]]
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("name", sorted(SYNTHETIC_SETS))
def test_videos_decode_to_the_requested_shape(name, tiny_sets):
    samples, _ = read_annotations(SYNTHETIC_SETS[name].annotation_format, tiny_sets[name], "train")
    with Video(samples[0].path) as video:
        assert video.num_frames == TINY["num_video_frames"] and video.fps == 15
        assert video.duration == pytest.approx(TINY["num_video_frames"] / 15, abs=0.01)
        clip = video.get_clip(0.0, video.duration)
        assert clip.shape == (3, TINY["num_video_frames"], 40, 40) and clip.dtype == torch.uint8
        assert video.get_clip(0.1, 0.4, frame_indices=[2, 4]).shape == (3, 2, 40, 40)


@pytest.mark.parametrize("name", sorted(SYNTHETIC_SETS))
def test_classes_are_balanced(name, tiny_sets):
    num_classes = SYNTHETIC_SETS[name].num_classes
    samples, _ = read_annotations(SYNTHETIC_SETS[name].annotation_format, tiny_sets[name], "train")
    counts = Counter(s.label for s in samples)
    assert set(counts) == set(range(num_classes))
    assert max(counts.values()) - min(counts.values()) <= 1


def test_num_classes_keeps_the_first_classes(tmp_path):
    root = generate_synthetic("synth_motion", tmp_path, num_train=8, num_val=4, num_video_frames=4, num_classes=4)
    assert list(json.loads((root / "labels.json").read_text())) == list(SYNTHETIC_SETS["synth_motion"].class_names[:4])
    assert {s.label for s in read_annotations("ssv2", root, "train")[0]} == {0, 1, 2, 3}


def _ensure(cache_dir: str) -> str:
    return str(ensure_synthetic("synth_appearance", Path(cache_dir), num_train=4, num_val=2, num_video_frames=4))


def test_ensure_synthetic_caches_and_is_concurrency_safe(tmp_path):
    # Three generators race for the same set (threads: the same mkdtemp + rename path as processes, but cheap).
    with ThreadPoolExecutor(3) as pool:
        roots = list(pool.map(_ensure, [str(tmp_path)] * 3))
    assert len(set(roots)) == 1
    root = Path(roots[0])
    assert root == synthetic_dir("synth_appearance", tmp_path, num_train=4, num_val=2, num_video_frames=4)
    assert [p.name for p in tmp_path.iterdir()] == [root.name], "no temporary directories may be left behind"
    stamp = (root / "train.csv").stat().st_mtime_ns
    assert ensure_synthetic("synth_appearance", tmp_path, num_train=4, num_val=2, num_video_frames=4) == root
    assert (root / "train.csv").stat().st_mtime_ns == stamp, "a cached set is reused, not regenerated"
    assert ensure_synthetic("synth_appearance", tmp_path, num_train=4, num_val=2, num_video_frames=4, seed=1) != root


# --- the bias each set is built to have ------------------------------------------------------------------------
# A small translation-invariant CNN (global max pooling) on one frame, or on a frame and its difference to the
# frame two steps later, trained for a few seconds on 120 videos and tested on 60 held-out videos.

BIAS = dict(num_train=120, num_val=60, num_video_frames=12, seed=1)
FRAMES_PER_VIDEO = 6
GAP = 2  # frames between the two frames of a pair: the stride the models use


def _frames(name: str, root: Path, split: str, generator: torch.Generator):
    samples, _ = read_annotations(SYNTHETIC_SETS[name].annotation_format, root, split)
    videos = []
    for sample in samples:
        with Video(sample.path) as video:
            videos.append(video.get_clip(0.0, video.duration))
    videos = torch.stack(videos).float() / 255  # (N, C, T, H, W)
    labels = torch.tensor([s.label for s in samples])
    n, t = videos.shape[0], videos.shape[2]
    first = torch.randint(0, t - GAP, (n, FRAMES_PER_VIDEO), generator=generator)
    rows = torch.arange(n)[:, None]
    a = videos[rows, :, first].flatten(0, 1)  # (N * FRAMES_PER_VIDEO, C, H, W)
    b = videos[rows, :, first + GAP].flatten(0, 1)
    return a, b, labels.repeat_interleave(FRAMES_PER_VIDEO)


def _accuracy(x_train, y_train, x_test, y_test, num_classes: int, steps: int = 150) -> float:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(x_train.shape[1], 16, 3, padding=1), nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(),
        nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(32, num_classes))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(steps):
        idx = torch.randint(0, len(x_train), (64,), generator=generator)
        loss = nn.functional.cross_entropy(model(x_train[idx]), y_train[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        return (model(x_test).argmax(1) == y_test).float().mean().item()


@pytest.fixture(scope="module")
def bias_data(tmp_path_factory):
    torch.set_num_threads(2)
    out = {}
    for name in SYNTHETIC_SETS:
        root = generate_synthetic(name, tmp_path_factory.mktemp(name), **BIAS)
        generator = torch.Generator().manual_seed(0)
        out[name] = (_frames(name, root, "train", generator), _frames(name, root, "val", generator))
    return out


def test_motion_set_needs_two_frames(bias_data):
    (a, b, y), (a_test, b_test, y_test) = bias_data["synth_motion"]
    k = SYNTHETIC_SETS["synth_motion"].num_classes
    single = _accuracy(a, y, a_test, y_test, k)
    pair = _accuracy(torch.cat([a, b - a], 1), y, torch.cat([a_test, b_test - a_test], 1), y_test, k)
    chance = 1 / k
    assert single < chance + 0.12, f"single frame {single:.2f} should be near chance {chance:.2f}"
    assert pair > chance + 0.3, f"frame pair {pair:.2f} should be well above chance {chance:.2f}"


def test_appearance_set_needs_one_frame(bias_data):
    (a, _, y), (a_test, _, y_test) = bias_data["synth_appearance"]
    k = SYNTHETIC_SETS["synth_appearance"].num_classes
    single = _accuracy(a, y, a_test, y_test, k)
    assert single > 1 / k + 0.15, f"single frame {single:.2f} should be well above chance {1 / k:.2f}"
