"""The video transforms' PySlowFast / pytorchvideo / timm conventions that the other transform tests leave open, each
against a literal or a plain loop written here:

- the short-side resize is bilinear without corner alignment or antialiasing (PySlowFast's
  ``random_short_side_scale_jitter``, pytorchvideo's ``short_side_scale``), checked against a loop over the
  interpolation formula;
- a test transform without ``short_side`` crops from frames resized to the crop size (PySlowFast's 3-crop test:
  TEST_CROP_SIZE for the scale and the crop), checked against literal windows;
- the random resized crop draws its aspect ratio log-uniformly (PySlowFast's and torchvision's ``log_scale``), checked
  against the mean log ratio the two candidate laws give;
- colour jitter is (brightness, contrast, saturation) in that order and no hue (PySlowFast's colour jitter), and
  RandAugment applies each op with timm's probability 0.5, checked against literal ranges and probabilities;
- every augmentation option and the mean / std given to ``VideoDataModule`` reach the transforms it builds for
  training, validation and test, checked against the literal options given.
"""

from __future__ import annotations

import math

import pytest
import torch

import data  # noqa: F401  (repairs torchvision before anything imports it)
from data.datamodule import VideoDataModule
from data.transforms import TestTransform, TrainTransform, resize_short_side
from tests.data.test_sampling_reference import coordinates

TINY_SYNTHETIC = dict(num_train=2, num_val=2, num_video_frames=8)


def _bilinear_taps(out_size: int, in_size: int) -> list[tuple[int, int, float]]:
    """For each output index: (lower source index, upper source index, weight of the upper one) of half-pixel
    bilinear interpolation (align_corners=False, no antialiasing): source coordinate (i + 0.5) * in / out - 0.5,
    clamped at 0."""
    taps = []
    for i in range(out_size):
        source = max((i + 0.5) * in_size / out_size - 0.5, 0.0)
        low = min(int(math.floor(source)), in_size - 1)
        taps.append((low, min(low + 1, in_size - 1), source - low))
    return taps


def test_the_short_side_resize_is_half_pixel_bilinear_without_antialiasing():
    """A 6 x 9 frame to short side 4 becomes 4 x floor(9 * 4 / 6) = 4 x 6; every output pixel is the bilinear mix of
    its four source neighbours. Pixel values are quadratic in x and y so that nearest-neighbour sampling and
    antialiased (area-weighted) downscaling both give other numbers."""
    height, width, short = 6, 9, 4
    ys, xs = torch.meshgrid(torch.arange(height, dtype=torch.float64), torch.arange(width, dtype=torch.float64),
                            indexing="ij")
    frame = xs ** 2 + 7 * ys ** 2
    video = frame.float()[None, None].repeat(3, 2, 1, 1)  # (C, T, H, W), every frame and channel alike
    out = resize_short_side(video, short)
    assert out.shape == (3, 2, 4, 6)
    expected = torch.empty(4, 6, dtype=torch.float64)
    for i, (y0, y1, wy) in enumerate(_bilinear_taps(4, height)):
        for j, (x0, x1, wx) in enumerate(_bilinear_taps(6, width)):
            top = (1 - wx) * frame[y0, x0] + wx * frame[y0, x1]
            bottom = (1 - wx) * frame[y1, x0] + wx * frame[y1, x1]
            expected[i, j] = (1 - wy) * top + wy * bottom
    torch.testing.assert_close(out.double(), expected.expand(3, 2, 4, 6), atol=1e-4, rtol=0)


def test_a_test_transform_without_short_side_crops_frames_resized_to_the_crop_size():
    """PySlowFast's 3-crop test scales the short side to the crop size itself: a 4 x 8 frame at crop 4 is not resized,
    and its three crops are the windows at columns 0, 2 and 4 (one crop: the centre one, at 2)."""
    video = coordinates(3, 2, 4, 8)
    three = TestTransform(4, 3, mean=(0, 0, 0), std=(1, 1, 1))({"video": video})["video"]
    for k, left in enumerate((0, 2, 4)):
        assert torch.equal(three[k], video[:, :, :, left:left + 4]), f"crop {k}"
    one = TestTransform(4, 1, mean=(0, 0, 0), std=(1, 1, 1))({"video": video})["video"]
    assert torch.equal(one[0], video[:, :, :, 2:6])


def test_colour_jitter_is_brightness_contrast_saturation_in_that_order_and_rand_augment_ops_apply_half_the_time():
    """A triple (0.1, 0.2, 0.3) is brightness, contrast and saturation factors in [1 - s, 1 + s], no hue (PySlowFast's
    colour jitter, Motionformer's); RandAugment samples ``num_ops`` of its ops, each applied with probability 0.5
    (timm's rand-m*-n* policy)."""
    transform = TrainTransform(32, (32, 40), True, color_jitter=(0.1, 0.2, 0.3), rand_augment=(9, 3))
    (jitter,) = transform._photometric
    assert list(jitter.brightness) == pytest.approx([0.9, 1.1]) and list(jitter.contrast) == pytest.approx([0.8, 1.2])
    assert list(jitter.saturation) == pytest.approx([0.7, 1.3]) and jitter.hue is None
    sampler = transform._rand_augment.randaug_fn
    assert sampler.num_sample_op == 3 and {op.prob for op in sampler.transforms_list} == {0.5}


def _datamodule(cache: str, **options) -> VideoDataModule:
    dm = VideoDataModule("synth_appearance", cache_dir=cache, synthetic_params=TINY_SYNTHETIC, num_frames=4,
                         num_workers=0, batch_size=2, crop_size=32, train_scale=(36, 40), **options)
    dm.prepare_data()
    dm.setup("fit")
    return dm


def test_every_augmentation_option_and_the_normalisation_reach_the_transforms_the_datamodule_builds(tmp_path):
    """Each option given to the datamodule is the one its training transform uses, and its mean / std and test short
    side are the ones its validation and test transforms use (ImageNet's mean / std for CAST at paper scale, the
    Motionformer recipes' colour-jitter probability, inverse-uniform jitter and magnitude std)."""
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    dm = _datamodule(str(tmp_path), mean=mean, std=std, test_short_side=36, test_crops=3, color_jitter=0.4,
                     color_jitter_prob=0.8, inverse_uniform_scale=True, rand_augment=(10, 2), rand_augment_std=0.0,
                     tokenshift_photometric=0.1)
    train = dm._datasets["train"].transform
    assert (train.mean, train.std) == (mean, std)
    assert (train.color_jitter, train.color_jitter_prob, train.inverse_uniform_scale) == (0.4, 0.8, True)
    assert train.tokenshift_photometric == 0.1 and train.rand_augment == (10, 2)
    torch.manual_seed(0)  # magnitude std 0: every RandAugment op at exactly magnitude 10, never spread below it
    assert {op._get_magnitude() for op in train._rand_augment.randaug_fn.transforms_list for _ in range(5)} == {10}
    for split, crops in (("val", 1), ("test", 3)):
        test = dm._datasets[split].transform
        assert (test.mean, test.std, test.short_side, test.num_crops) == (mean, std, 36, crops), split
    cropped = _datamodule(str(tmp_path), random_resized_crop=[[0.08, 1.0], [0.75, 1.3333]],
                          timm_rand_augment="rand-m9-n4-mstd0.5-inc1", test_centre_rounding="floor")
    assert cropped._datasets["train"].transform.random_resized_crop == ((0.08, 1.0), (0.75, 1.3333))
    assert cropped._datasets["train"].transform.timm_rand_augment == "rand-m9-n4-mstd0.5-inc1"
    assert cropped._datasets["test"].transform.centre_rounding == "floor"
    assert cropped._datasets["val"].transform.centre_rounding == "ceil"  # per-epoch validation: the default


def test_the_random_resized_crop_draws_log_uniform_aspect_ratios(monkeypatch):
    """PySlowFast's random_resized_crop (CAST's training crop) draws log(w / h) uniformly, so over [3/4, 4/3] the mean
    log ratio is 0; a ratio uniform in [a, b] = [3/4, 4/3] would give ((b ln b - b) - (a ln a - a)) / (b - a) = 0.027.
    The windows come from pytorchvideo's own parameter draw, recorded as the transform calls it; areas of at most
    half the frame always fit (sides at most sqrt(0.5 x 4/3) x 64 = 52), so no draw is rejected and the law is seen
    unbiased."""
    import pytorchvideo.transforms.functional as pv

    windows = []
    draw = pv._get_param_spatial_crop
    monkeypatch.setattr(pv, "_get_param_spatial_crop", lambda *args: windows.append(draw(*args)) or windows[-1])
    # No rng: the crop draws from torch's global generator, seeded here and restored after (much faster than a
    # fresh seed per call).
    transform = TrainTransform(8, (8, 8), hflip=False, random_resized_crop=((0.08, 0.5), (0.75, 4 / 3)))
    clip = torch.zeros(3, 1, 64, 64, dtype=torch.uint8)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        for _ in range(3000):
            transform({"video": clip})
    log_ratios = [math.log(w / h) for _, _, h, w in windows]
    assert len(log_ratios) == 3000
    a, b = 0.75, 4 / 3
    uniform_mean = ((b * math.log(b) - b) - (a * math.log(a) - a)) / (b - a)
    assert uniform_mean > 0.025  # the law the test tells apart; the standard error of 3000 draws is 0.003
    assert abs(sum(log_ratios) / len(log_ratios)) < uniform_mean / 2
