"""The two stand-ins of docs/tiny_regime_design.md ("The sets", "Set checks"): synth_objects (Kinetics: 40
classes, 5 shapes x 8 hues) and synth_motion_pairs (Something-Something V2: 12 classes in 6 time-reversed pairs).

Fast tests: specs, annotation formats, determinism, balance, decoding, the pairs' exact time reversal, progress,
and registration in the data module. Slow tests: the design's set checks, on the sets alone, with
tests/data/synthetic/test_sets.py's probe (its small translation-invariant CNN, Adam 3e-3, batch 64, 150 steps):

- every set: its tiny split (1,200 / 400 videos of 32 frames at 40 px, ``ensure_synthetic``'s defaults under the
  tiny presets) generates in under a minute on one core, with progress lines. Timed on 48 videos and scaled to
  1,600, since generating both full splits (~25-30 s each) would exceed this file's budget; the cost per video is
  constant (each video is drawn and encoded on its own), and the 48 carry the fixed costs on top.
- synth_objects: a one-frame probe reaches at least 3x chance (1/40) and stays below 90% top-1;
- synth_motion_pairs: a one-frame probe is not distinguishable from chance (1/12) by the exact binomial test; a probe
  on two frames in shuffled order is not distinguishable from chance (1/2) at telling a class from its reverse (see
  below); an ordered frame pair reaches at least 3x chance, and tells a class from its reverse above chance.

The probes see the tiny split's counts, 1,200 training and 400 held-out videos, decoded by data.video_io as training
decodes them. synth_objects is generated with 2 frames per clip (each of its frames has the same distribution at
every time, and a one-frame probe needs one), synth_motion_pairs with 8, the frames a model samples from a clip: its
paths are set per clip, so 8 frames step as 8 sampled from 32 do. Held out: one frame (or frame pair) per video, so
the n = 400 test samples are independent and the standard error of an accuracy around chance p0 is
sqrt(p0 (1 - p0) / 400). The whole file takes about 40 s on one core.

The shuffled-order check is within a pair (the design's amendment 4): an unordered set of a clip's frames shows which
of the six things moves (the pair), and only within a pair is it the same in both classes, which is what the
design's construction promises. Measured at 12-way chance, as first worded, the shuffled-pair probe scored 0.273.
"""

from __future__ import annotations

import colorsys
import json
import re
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats

import data  # noqa: F401  (repairs torchvision before anything imports it)
from data.annotations import read_annotations
from data.datamodule import VideoDataModule
from data.synthetic import SYNTHETIC_SETS, ensure_synthetic_sets, generate_synthetic, motion_pairs, objects
from data.synthetic.formats import fill
from data.synthetic.images import HUE_JITTER, HUES
from data.synthetic.seeding import video_rng
from data.video_io import Video
from tests.data.synthetic.test_sets import probe_logits

NAMES = ("synth_objects", "synth_motion_pairs")
TINY = {"synth_objects": dict(num_train=40, num_val=8, num_video_frames=4, seed=3),  # every class once
        "synth_motion_pairs": dict(num_train=24, num_val=12, num_video_frames=8, seed=3)}
TINY_SPLIT = dict(num_train=1200, num_val=400)  # the design's 30 / 10 videos per class of synth_objects
# The design's minute is on the machine that set the budget (2 cores of an AVX-512 EPYC); the slowest machine CI runs
# on, a 2-vCPU AVX2 EPYC, takes 2.5 times as long for the same work (docs/time_on_two_cores.md), and there a tiny split
# took 65-78 s. The check allows that measured ratio, so it holds on every machine CI draws.
SLOWEST_MACHINE = 2.5


@pytest.fixture(scope="module")
def tiny_sets(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("stand_ins")
    return {name: generate_synthetic(name, base / name, **TINY[name]) for name in NAMES}


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_specs_are_the_designs_sets():
    objects_spec, pairs_spec = SYNTHETIC_SETS["synth_objects"], SYNTHETIC_SETS["synth_motion_pairs"]
    assert (objects_spec.annotation_format, objects_spec.mimics, objects_spec.hflip_ok) == (
        "kinetics_list", "Kinetics-400", True)
    assert (pairs_spec.annotation_format, pairs_spec.mimics, pairs_spec.hflip_ok) == (
        "ssv2", "Something-Something V2", False)
    # 40 = 5 shapes x 8 hues, each hue 0.125 from its neighbours with a jitter under half of that
    assert objects_spec.num_classes == len(set(objects.CLASSES)) == 40 == len(objects.SHAPES) * len(HUES)
    assert np.allclose(np.diff(HUES), 0.125) and HUE_JITTER == 0.04
    assert len(set(objects_spec.class_names)) == 40
    # 12 classes in 6 adjacent pairs: one mover each, run in opposite directions
    assert pairs_spec.num_classes == len(motion_pairs.CLASSES) == 12
    for first, second in zip(motion_pairs.CLASSES[::2], motion_pairs.CLASSES[1::2]):
        assert first[1] == second[1] and first[2] == -second[2]
    assert sorted({mover for _, mover, _ in motion_pairs.CLASSES}) == sorted(motion_pairs.MOVERS)
    assert len(set(pairs_spec.class_names)) == 12


@pytest.mark.parametrize("name", NAMES)
def test_generation_is_deterministic(name, tiny_sets, tmp_path):
    first, again = _files(tiny_sets[name]), _files(generate_synthetic(name, tmp_path / "again", **TINY[name]))
    assert first.keys() == again.keys()
    assert [k for k in first if first[k] != again[k]] == [], "same seed must give the same bytes"
    other = _files(generate_synthetic(name, tmp_path / "other", **{**TINY[name], "seed": 4}))
    assert any(first[k] != other.get(k) for k in first if k.endswith((".mp4", ".webm")))


def test_objects_set_is_in_kinetics_path_label_format(tiny_sets):
    root = tiny_sets["synth_objects"]
    names = SYNTHETIC_SETS["synth_objects"].class_names
    for split in ("train", "val"):
        lines = (root / f"{split}.csv").read_text().splitlines()
        assert len(lines) == TINY["synth_objects"][f"num_{split}"]
        assert all(re.fullmatch(r"\S+\.mp4 \d+", line) for line in lines)
        samples, bad = read_annotations("kinetics_list", root, split)
        assert not bad and len(samples) == len(lines)
        assert all(s.path.is_file() and s.path.parent.name == names[s.label].replace(" ", "_") for s in samples)


def test_motion_pairs_set_is_in_ssv2_format(tiny_sets):
    root = tiny_sets["synth_motion_pairs"]
    labels = json.loads((root / "labels.json").read_text())
    assert list(labels) == list(SYNTHETIC_SETS["synth_motion_pairs"].class_names)
    assert list(labels.values()) == [str(i) for i in range(12)]  # SSv2 stores indices as strings
    for file in ("train.json", "validation.json"):
        for entry in json.loads((root / file).read_text()):
            assert set(entry) == {"id", "label", "template", "placeholders"}
            assert entry["template"].replace("[", "").replace("]", "") in labels
            assert len(entry["placeholders"]) == entry["template"].count("[something]")
            assert entry["label"] == fill(entry["template"], entry["placeholders"])
            assert "[" not in entry["label"]
    ids = []
    for split in ("train", "val"):
        samples, bad = read_annotations("ssv2", root, split)
        assert not bad and len(samples) == TINY["synth_motion_pairs"][f"num_{split}"]
        assert all(s.path.parent.name == "videos" and s.path.suffix == ".webm" and s.path.is_file() for s in samples)
        ids += [s.video_id for s in samples]
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("name", NAMES)
def test_classes_are_balanced_and_videos_decode(name, tiny_sets):
    spec, frames = SYNTHETIC_SETS[name], TINY[name]["num_video_frames"]
    samples, _ = read_annotations(spec.annotation_format, tiny_sets[name], "train")
    counts = Counter(s.label for s in samples)
    assert set(counts) == set(range(spec.num_classes)) and max(counts.values()) - min(counts.values()) <= 1
    with Video(samples[0].path) as video:
        assert video.num_frames == frames and video.fps == 15
        clip = video.get_clip(0.0, video.duration)
    assert clip.shape == (3, frames, 40, 40) and clip.dtype == torch.uint8


def test_objects_show_the_labelled_object_and_a_smaller_one_of_another_class(monkeypatch):
    drawn = []  # (shape, radius) of each object, then its colour's hue
    real_render, real_composite = objects.render_object, objects.composite
    monkeypatch.setattr(objects, "render_object", lambda size, shape, cx, cy, angle, radius: drawn.append(
        [shape, radius]) or real_render(size, shape, cx, cy, angle, radius))
    monkeypatch.setattr(objects, "composite", lambda frames, mask, colour: drawn[-1].append(
        colorsys.rgb_to_hsv(*colour)[0]) or real_composite(frames, mask, colour))

    def near(hue: float, k: int) -> bool:  # within the jitter of hue k, on the circle
        return abs((hue - HUES[k] + 0.5) % 1 - 0.5) <= HUE_JITTER + 1e-9

    for index in range(80):
        label = index % 40
        drawn.clear()
        objects._render(video_rng(0, "train", index), label, 40, 2)
        (other_shape, other_radius, other_hue), (shape, radius, hue) = drawn
        assert shape == objects.CLASSES[label][0] and near(hue, objects.CLASSES[label][1])
        assert other_radius < radius
        assert any(objects.CLASSES[k] == (other_shape, k % 8) and near(other_hue, k % 8) for k in range(40)
                   if k != label), "the distractor is of another class"


def test_reversing_time_maps_each_class_onto_its_pair(monkeypatch):
    # Same draws, the per-frame noise replaced by its mean over time (which the order cannot change): a class's
    # clip played backwards is its partner's clip, pixel for pixel. Classes of other pairs differ.
    real = motion_pairs.background
    monkeypatch.setattr(motion_pairs, "background",
                        lambda rng, size, t: np.repeat(real(rng, size, t).mean(0, keepdims=True), t, 0))
    for index in range(3):
        clips = [motion_pairs._render(video_rng(0, "train", index), label, 40, 8)[0] for label in range(12)]
        for label in range(0, 12, 2):
            assert np.array_equal(clips[label][::-1], clips[label + 1])
            assert not np.array_equal(clips[label], clips[label + 1])
            assert not np.array_equal(clips[label][::-1], clips[(label + 2) % 12 + 1])


def test_every_class_draws_the_same_scene():
    # The label picks which mover runs and nothing else: every draw is made in every class, so each mover rests at
    # the same frame's state in the ten classes that do not run it, and runs its whole path in the two that do.
    phases = [motion_pairs._phases(video_rng(0, "val", 5), label, 8) for label in range(12)]
    steps = np.arange(8) / 7
    for mover in motion_pairs.MOVERS:
        resting = [p[mover] for label, p in enumerate(phases) if motion_pairs.CLASSES[label][1] != mover]
        assert len(resting) == 10 and all(np.array_equal(r, resting[0]) for r in resting)
        assert len(set(resting[0])) == 1 and resting[0][0] in steps
        for label, (_, running, direction) in enumerate(motion_pairs.CLASSES):
            if running == mover:
                assert np.array_equal(phases[label][mover], steps if direction > 0 else steps[::-1])


@pytest.mark.parametrize("name", NAMES)
def test_progress_is_called_once_per_video(name, tmp_path):
    done = []
    generate_synthetic(name, tmp_path, num_train=5, num_val=3, num_video_frames=2, progress=done.append)
    assert done == [1] * 8


def test_motion_pairs_refuses_frames_too_small_for_its_scene(tmp_path):
    with pytest.raises(ValueError, match="at least 40 px"):
        generate_synthetic("synth_motion_pairs", tmp_path, num_train=2, num_val=2, num_video_frames=2, size=32)


@pytest.mark.parametrize("name,count,sampling", [("synth_objects", 40, "dense"),
                                                 ("synth_motion_pairs", 12, "segments")])
def test_data_module_loads_the_sets(name, count, sampling, tmp_path):
    dm = VideoDataModule(name, cache_dir=tmp_path, synthetic_params=dict(num_train=40, num_val=12,
                                                                         num_video_frames=8), num_workers=0)
    assert dm.sampling == sampling and dm.hflip is SYNTHETIC_SETS[name].hflip_ok
    dm.prepare_data()
    dm.setup("fit")
    assert dm.num_classes == count
    batch = next(iter(dm.train_dataloader()))
    assert batch["video"].shape == (16, 3, 8, 32, 32)
    assert dm.describe()["mimics"] == SYNTHETIC_SETS[name].mimics


# --- the design's set checks -----------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_tiny_split_generates_within_a_minute_with_progress(name, tmp_path):
    lines: list[str] = []
    sample = dict(num_train=36, num_val=12, seed=0)  # the tiny presets' 32 frames at 40 px: the defaults
    start = time.perf_counter()
    ensure_synthetic_sets([(name, sample)], echo=lines.append, cache_dir=tmp_path, every_s=0.0)
    per_video = (time.perf_counter() - start) / 48
    estimate = per_video * (TINY_SPLIT["num_train"] + TINY_SPLIT["num_val"])
    print(f"{name}: {per_video * 1000:.1f} ms per video; the tiny split in ~{estimate:.0f} s")  # pytest -s
    assert estimate < 60 * SLOWEST_MACHINE, f"{name}: its tiny split would take ~{estimate:.0f} s on one core"
    assert lines[0].startswith("generating 1 data set(s)") and f"{name} (48 samples)" in lines[0]
    assert f"    {name}: 1/48 samples" in lines[1] and lines[-1].startswith(f"    {name}: done")


def _decoded(name: str, root: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    samples, _ = read_annotations(SYNTHETIC_SETS[name].annotation_format, root, split)
    clips = []
    for sample in samples:
        with Video(sample.path) as video:
            clips.append(video.get_clip(0.0, video.duration))
    return torch.stack(clips), torch.tensor([s.label for s in samples])  # (N, C, T, H, W) uint8


def _frames(clips: torch.Tensor, per_video: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Frames t and t + 1 at random t, ``per_video`` per clip: each (N * per_video, C, H, W) in [0, 1]."""
    n, t = clips.shape[0], clips.shape[2]
    first = torch.randint(0, t - 1, (n, per_video), generator=generator)
    rows = torch.arange(n)[:, None]
    return clips[rows, :, first].flatten(0, 1).float() / 255, clips[rows, :, first + 1].flatten(0, 1).float() / 255


def _one_thread(compute):
    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # the design's budget is one core
    try:
        return compute()
    finally:
        torch.set_num_threads(previous)


def _binomial_p(rate: float, n: int, chance: float) -> float:
    """The exact two-sided binomial test of ``rate`` of ``n`` held-out clips against ``chance``: the set checks'
    "at chance" is p ≥ 0.05, "beyond chance" p < 0.05 above it."""
    return float(stats.binomtest(round(rate * n), n, chance).pvalue)


@pytest.fixture(scope="module")
def objects_probe(tmp_path_factory) -> dict[str, float]:
    def compute():
        root = generate_synthetic("synth_objects", tmp_path_factory.mktemp("objects"), num_video_frames=2, seed=1,
                                  **TINY_SPLIT)
        (clips, y), (test_clips, y_test) = (_decoded("synth_objects", root, split) for split in ("train", "val"))
        x = clips.transpose(1, 2).flatten(0, 1).float() / 255  # both frames of every training clip
        x_test = test_clips[:, :, 0].float() / 255  # one frame per held-out clip
        logits = probe_logits(x, y.repeat_interleave(2), x_test, 40)
        top1 = (logits.argmax(1) == y_test).float().mean().item()
        top5 = (logits.topk(5, 1).indices == y_test[:, None]).any(1).float().mean().item()
        return {"top1": top1, "top5": top5, "n": len(y_test)}
    return _one_thread(compute)


@pytest.mark.slow
def test_objects_one_frame_suffices_without_saturating(objects_probe):
    chance = 1 / 40
    print(f"synth_objects one frame: top-1 {objects_probe['top1']:.3f}, top-5 {objects_probe['top5']:.3f} "
          f"(chance {chance:.3f}, n={objects_probe['n']})")
    assert objects_probe["top1"] >= 3 * chance, f"one frame {objects_probe['top1']:.3f} < 3x chance"
    assert objects_probe["top1"] < 0.9, f"one frame {objects_probe['top1']:.3f}: saturated for a simple model"


@pytest.fixture(scope="module")
def pairs_probes(tmp_path_factory) -> dict[str, dict[str, float]]:
    def compute():
        root = generate_synthetic("synth_motion_pairs", tmp_path_factory.mktemp("pairs"), num_video_frames=8,
                                  seed=1, **TINY_SPLIT)
        (clips, y), (test_clips, y_test) = (_decoded("synth_motion_pairs", root, split) for split in ("train", "val"))
        generator = torch.Generator().manual_seed(0)
        a, b = _frames(clips, 4, generator)
        y = y.repeat_interleave(4)
        a_test, b_test = _frames(test_clips, 1, generator)
        swap, swap_test = (torch.rand(len(v), generator=generator) < 0.5 for v in (y, y_test))
        inputs = {  # (training inputs, held-out inputs), built one probe at a time to keep memory down
            "one frame": lambda: (a, a_test),
            "ordered pair": lambda: (torch.cat([a, b - a], 1), torch.cat([a_test, b_test - a_test], 1)),
            "shuffled pair": lambda: (_unordered(a, b, swap), _unordered(a_test, b_test, swap_test)),
        }
        return {probe: _scores(build, y, y_test) for probe, build in inputs.items()}
    return _one_thread(compute)


def _scores(build, y: torch.Tensor, y_test: torch.Tensor) -> dict[str, float]:
    x, x_test = build()
    return _pair_scores(probe_logits(x, y, x_test, 12), y_test)


def _unordered(a: torch.Tensor, b: torch.Tensor, swap: torch.Tensor) -> torch.Tensor:
    """The pair as the ordered probe sees it, but in a random order (a coin per sample)."""
    first = torch.where(swap[:, None, None, None], b, a)
    second = torch.where(swap[:, None, None, None], a, b)
    return torch.cat([first, second - first], 1)


def _pair_scores(logits: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """12-way top-1; the pair found (6-way); and the choice between a class and its reverse given the pair (the
    two logits of the true pair compared)."""
    within = logits.view(-1, 6, 2)[torch.arange(len(y)), y // 2].argmax(1) == y % 2
    return {"top1": (logits.argmax(1) == y).float().mean().item(),
            "pair": (logits.argmax(1) // 2 == y // 2).float().mean().item(),
            "within_pair": within.float().mean().item(), "n": len(y)}


def _say(probes: dict[str, dict[str, float]], probe: str) -> str:
    s = probes[probe]
    return (f"synth_motion_pairs {probe}: top-1 {s['top1']:.3f} (chance {1 / 12:.3f}, binomial p "
            f"{_binomial_p(s['top1'], s['n'], 1 / 12):.3f}), pair {s['pair']:.3f} (chance {1 / 6:.3f}), within the "
            f"pair {s['within_pair']:.3f} (chance 0.5, binomial p {_binomial_p(s['within_pair'], s['n'], 0.5):.3f}), "
            f"n={s['n']}")


@pytest.mark.slow
def test_motion_pairs_one_frame_is_at_chance(pairs_probes):
    print(_say(pairs_probes, "one frame"))
    s = pairs_probes["one frame"]
    assert _binomial_p(s["top1"], s["n"], 1 / 12) >= 0.05, _say(pairs_probes, "one frame")


@pytest.mark.slow
def test_motion_pairs_ordered_pair_tells_the_class(pairs_probes):
    print(_say(pairs_probes, "ordered pair"))
    s = pairs_probes["ordered pair"]
    assert s["top1"] >= 3 / 12, _say(pairs_probes, "ordered pair")
    # and the order is what decides within a pair ("every frame pair at a fixed offset still tells them apart")
    assert s["within_pair"] > 0.5 and _binomial_p(s["within_pair"], s["n"], 0.5) < 0.05, \
        _say(pairs_probes, "ordered pair")


@pytest.mark.slow
def test_motion_pairs_shuffled_frames_cannot_tell_a_class_from_its_reverse(pairs_probes):
    print(_say(pairs_probes, "shuffled pair"))
    s = pairs_probes["shuffled pair"]
    assert _binomial_p(s["within_pair"], s["n"], 0.5) >= 0.05, _say(pairs_probes, "shuffled pair")

