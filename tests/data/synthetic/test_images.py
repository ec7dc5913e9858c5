"""synth_images, the image-pretraining stand-in (``data.synthetic.images``): its classes, balance, reproducibility,
cache and reader."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from data.synthetic.images import (
    CLASSES,
    HUES,
    SHAPES,
    ensure_synth_images,
    load_synth_images,
    render_image,
    training_epoch,
    write_synth_images,
)
from data.synthetic.render import render_object


def test_64_classes_of_8_shapes_and_8_hues_each_shape_its_own_mask():
    assert len(CLASSES) == 64 and len(set(CLASSES)) == 64 and len(SHAPES) == len(HUES) == 8
    zero = np.zeros(1)
    masks = {shape: render_object(32, shape, zero + 16, zero + 16, zero, 10.0)[0] > 0.5 for shape in SHAPES}
    assert all(mask.sum() > 20 for mask in masks.values())
    for a in SHAPES:
        for b in SHAPES:
            if a < b:
                assert (masks[a] != masks[b]).sum() > 10, (a, b)


def test_labels_are_balanced_and_the_same_seed_gives_the_same_bytes(tmp_path):
    first = write_synth_images(tmp_path / "a", num_train=128, num_val=64, seed=3)
    again = write_synth_images(tmp_path / "b", num_train=128, num_val=64, seed=3)
    images, labels = load_synth_images(first, "train")
    assert images.shape == (128, 32, 32, 3) and images.dtype == np.uint8
    assert np.bincount(labels, minlength=64).tolist() == [2] * 64
    assert np.array_equal(images, load_synth_images(again, "train")[0])
    other = write_synth_images(tmp_path / "c", num_train=128, num_val=64, seed=4)
    assert not np.array_equal(images, load_synth_images(other, "train")[0])


def test_an_image_shows_its_class_hue_where_it_is_drawn():
    """The labelled object is the larger of the two: its most common saturated hue is the class's."""
    rng = np.random.default_rng(0)
    for label in range(0, 64, 9):
        image = render_image(np.random.default_rng(rng.integers(2**31)), label).astype(np.float64) / 255
        top, low = image.max(-1), image.min(-1)
        saturated = (top - low) > 0.3
        r, g, b = (image[..., k][saturated] for k in range(3))
        hue = (np.degrees(np.arctan2(np.sqrt(3) * (g - b), 2 * r - g - b)) / 360) % 1
        counts = np.bincount(np.round(hue * 8).astype(int) % 8, minlength=8)  # the nearest of the 8 hues
        assert HUES[int(np.argmax(counts))] == CLASSES[label][1], label


def test_the_set_is_written_once_and_a_damaged_file_is_named(tmp_path):
    root = ensure_synth_images(tmp_path, num_train=64, num_val=64)
    stamp = (root / "images.npz").stat().st_mtime_ns
    assert ensure_synth_images(tmp_path, num_train=64, num_val=64) == root
    assert (root / "images.npz").stat().st_mtime_ns == stamp
    assert ensure_synth_images(tmp_path, num_train=128, num_val=64) != root
    with pytest.raises(ValueError, match="not a synth_images file with a 'test' split"):
        load_synth_images(root, "test")
    (root / "images.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=f"{root / 'images.npz'}: not a synth_images file"):
        load_synth_images(root, "train")


def test_a_pickled_object_array_is_refused_not_unpickled(tmp_path):
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.array([object()], dtype=object), allow_pickle=True)
    with zipfile.ZipFile(tmp_path / "images.npz", "w") as archive:
        archive.writestr("train_images.npy", buffer.getvalue())
        archive.writestr("train_labels.npy", buffer.getvalue())
    with pytest.raises(ValueError, match="not a synth_images file"):
        load_synth_images(tmp_path, "train")


def test_every_training_epoch_draws_fresh_balanced_images():
    first, labels = training_epoch(seed=0, epoch=0, count=128)
    again, _ = training_epoch(seed=0, epoch=0, count=128)
    second, _ = training_epoch(seed=0, epoch=1, count=128)
    assert first.shape == (128, 32, 32, 3) and np.array_equal(first, again)
    assert np.bincount(labels, minlength=64).tolist() == [2] * 64
    flat = {image.tobytes() for image in first}
    assert len(flat) == 128 and not flat & {image.tobytes() for image in second}
