"""synth_images: the image-pretraining stand-in of the tiny scale, in ImageNet-21K's role
(docs/tiny_regime_design.md). 64 classes = 8 shapes x 8 hues; every image draws its position (anywhere,
wrapping), size, rotation, saturation, brightness and background, and carries a smaller distractor of another
class, so a classifier must tell what is in the image wherever it is.

Images are 32 x 32 RGB (the tiny crop). The validation images live in one ``.npz`` per set
(``ensure_synth_images``), read back with ``allow_pickle=False`` (``load_synth_images``). Training draws fresh
images every epoch (``training_epoch``), as ImageNet-21K holds more images than a ViT memorises in its schedule
(docs/tiny_regime_design.md, amendment 3). Image k of a split depends only on (seed, split, k) and its label.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np

from data.atomic_write import atomic_write_text, save_arrays
from data.cache import build_once
from data.synthetic.render import background, composite, hsv_to_rgb, render_object, to_uint8
from data.synthetic.seeding import LABELS, balanced_labels, split_rng, video_rng

SHAPES = ("disk", "square", "triangle", "cross", "ell", "ring", "bar", "tee")
HUES = tuple(k / 8 for k in range(8))  # 0.125 apart on the hue circle
HUE_JITTER = 0.04  # under half the spacing: neighbouring hues are close but apart
CLASSES = tuple((shape, hue) for shape in SHAPES for hue in HUES)
IMAGE_SIZE = 32
VERSION = 1  # bump when the images change: cached sets are keyed by it


def render_image(rng: np.random.Generator, label: int, size: int = IMAGE_SIZE) -> np.ndarray:
    """One (size, size, 3) uint8 image of class ``label``."""
    image = background(rng, size, 1)
    other = (label + int(rng.integers(1, len(CLASSES)))) % len(CLASSES)
    for drawn, radius in ((other, rng.uniform(0.08, 0.14) * size), (label, rng.uniform(0.15, 0.35) * size)):
        shape, hue = CLASSES[drawn]
        cx, cy = rng.uniform(0, size, (2, 1))
        mask = render_object(size, shape, cx, cy, np.array([rng.uniform(0, 2 * math.pi)]), radius)
        colour = hsv_to_rgb((hue + rng.uniform(-HUE_JITTER, HUE_JITTER)) % 1.0, rng.uniform(0.6, 0.95),
                            rng.uniform(0.6, 0.95))
        image = composite(image, mask, colour)
    return to_uint8(image[0])


def training_epoch(seed: int, epoch: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Epoch ``epoch``'s ``count`` training images (N, 32, 32, 3) uint8 and labels (N,) int64: image k is training
    image ``epoch * count + k`` of ``seed``, so no two epochs share an image; labels are balanced within the epoch."""
    labels = balanced_labels(np.random.default_rng([seed, LABELS, 0, epoch]), count, len(CLASSES))
    images = np.stack([render_image(video_rng(seed, "train", epoch * count + k), label)
                       for k, label in enumerate(labels)]) if count else np.zeros((0, IMAGE_SIZE, IMAGE_SIZE, 3),
                                                                                   np.uint8)
    return images, np.asarray(labels, dtype=np.int64)


def write_synth_images(root: Path, num_train: int, num_val: int, seed: int = 0) -> Path:
    """``root/images.npz`` (``{split}_images`` (N, 32, 32, 3) uint8, ``{split}_labels`` (N,) int64) and
    ``root/meta.json``."""
    arrays = {}
    for split, count in (("train", num_train), ("val", num_val)):
        labels = balanced_labels(split_rng(seed, split, LABELS), count, len(CLASSES))
        images = np.zeros((count, IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)
        for k, label in enumerate(labels):
            images[k] = render_image(video_rng(seed, split, k), label)
        arrays[f"{split}_images"] = images
        arrays[f"{split}_labels"] = np.asarray(labels, dtype=np.int64)
    root.mkdir(parents=True, exist_ok=True)
    save_arrays(root / "images.npz", sync=False, **arrays)
    meta = {"set": "synth_images", "classes": [f"{hue:.3f} {shape}" for shape, hue in CLASSES],
            "num_train": num_train, "num_val": num_val, "seed": seed, "version": VERSION}
    atomic_write_text(root / "meta.json", json.dumps(meta, indent=1), sync=False)
    return root


def ensure_synth_images(cache_dir: str | Path, num_train: int = 20_000, num_val: int = 2_000, seed: int = 0) -> Path:
    """The set's folder under ``cache_dir``, written on first use and reused afterwards."""
    params = {"num_train": num_train, "num_val": num_val, "seed": seed, "version": VERSION}
    key = hashlib.sha1(json.dumps(params, sort_keys=True).encode()).hexdigest()[:10]
    target = Path(cache_dir) / f"synth_images-{key}"
    return build_once(target, lambda tmp: write_synth_images(tmp, num_train, num_val, seed))


def load_synth_images(root: str | Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(images (N, 32, 32, 3) uint8, labels (N,) int64) of ``split``; a ValueError naming the file if it is not the
    set's ``.npz``."""
    path = Path(root) / "images.npz"
    try:
        with np.load(path, allow_pickle=False) as archive:
            images, labels = archive[f"{split}_images"], archive[f"{split}_labels"]
    except (OSError, KeyError, ValueError, EOFError) as err:
        raise ValueError(f"{path}: not a synth_images file with a {split!r} split ({err})") from err
    if images.ndim != 4 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE, 3) or labels.shape != images.shape[:1]:
        raise ValueError(f"{path}: {split} images {images.shape} and labels {labels.shape} do not match")
    return images, labels
