"""TrainTransform's colour jitter and RandAugment: one parameter draw per clip, applied to every frame alike;
seeded by the transform's rng; off by default, leaving the default outputs unchanged."""

from __future__ import annotations

import random

import data  # noqa: F401  (repairs torchvision before anything imports it)
import pytest
import torch
import torchvision.transforms.v2.functional as TF

from data.transforms import TrainTransform, normalize, random_crop, resize_short_side, to_float

AUGMENTS = {"color_jitter": dict(color_jitter=0.4), "rand_augment": dict(rand_augment=(9, 2)),
            "both": dict(color_jitter=0.4, rand_augment=(9, 2))}


def _clip(frames: int = 4, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (3, frames, 40, 48), dtype=torch.uint8, generator=g)


def test_defaults_are_unchanged():
    clip = _clip()
    out = TrainTransform(32, (32, 40), hflip=True, rng=random.Random(7))({"video": clip})["video"]
    rng = random.Random(7)  # the pre-augmentation pipeline, step by step with the same draws
    video = random_crop(resize_short_side(to_float(clip), rng.randint(32, 40)), 32, rng)
    if rng.random() < 0.5:
        video = TF.horizontal_flip(video)
    assert torch.equal(out, normalize(video, (0.5,) * 3, (0.5,) * 3))


@pytest.mark.parametrize("name", sorted(AUGMENTS))
def test_every_frame_gets_the_same_augmentation(name):
    clip = _clip()
    changed = 0
    for seed in range(8):
        kwargs = dict(crop_size=32, scale=(32, 40), hflip=True, **AUGMENTS[name])
        out = TrainTransform(rng=random.Random(seed), **kwargs)({"video": clip})["video"]
        plain = TrainTransform(32, (32, 40), hflip=True, rng=random.Random(seed))({"video": clip})["video"]
        changed += not torch.allclose(out, plain)
        # The same transform, rng and seed on each frame alone must give that frame of the whole clip: the
        # operations and magnitudes were drawn once for the clip.
        for t in range(clip.shape[1]):
            alone = TrainTransform(rng=random.Random(seed), **kwargs)({"video": clip[:, t:t + 1]})["video"]
            assert torch.allclose(alone[:, 0], out[:, t], atol=1e-5), f"seed {seed}: frame {t} differs"
        # A clip of identical frames stays a clip of identical frames.
        still = TrainTransform(rng=random.Random(seed), **kwargs)({"video": clip[:, :1].repeat(1, 4, 1, 1)})
        assert torch.allclose(still["video"], still["video"][:, :1].expand_as(still["video"]), atol=1e-6)
        assert out.shape == (3, 4, 32, 32) and out.dtype == torch.float32
        assert out.min() >= -1 - 1e-6 and out.max() <= 1 + 1e-6  # normalised from [0, 1]
    assert changed >= 4, f"the augmentation changed only {changed} of 8 clips"


def test_rng_makes_augmentation_reproducible():
    clip = _clip()
    make = lambda seed: TrainTransform(32, (32, 40), True, color_jitter=0.4, rand_augment=(9, 2),  # noqa: E731
                                       rng=random.Random(seed))
    assert torch.equal(make(3)({"video": clip})["video"], make(3)({"video": clip})["video"])
    assert not torch.equal(make(3)({"video": clip})["video"], make(4)({"video": clip})["video"])
    state = torch.random.get_rng_state()
    make(5)({"video": clip})
    assert torch.equal(state, torch.random.get_rng_state()), "an explicit rng must leave torch's generator alone"


def test_bad_rand_augment_raises():
    with pytest.raises(ValueError, match="rand_augment"):
        TrainTransform(32, (32, 40), True, rand_augment=(12, 2))
    assert "rand_augment=(7, 4)" in repr(TrainTransform(32, (32, 40), True, rand_augment=(7, 4)))
