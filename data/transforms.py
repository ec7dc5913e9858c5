"""Video transforms: callables mapping a sample dict to a sample dict, acting on ``sample["video"]``.

Videos are uint8 or float tensors (C, T, H, W). Resizing and the 1/3-crop test views are pytorchvideo's
(``short_side_scale``, ``uniform_crop``: the PySlowFast conventions the papers evaluate with); flips and crops
are torchvision.transforms.v2 functional ops, applied to all frames at once so a clip stays consistent in time.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torchvision.transforms.v2.functional as TF
from pytorchvideo.transforms.functional import short_side_scale, uniform_crop

Sample = dict[str, Any]


def to_float(video: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float32 [0, 1]; float input is returned as float32 unchanged."""
    return video.float() / 255.0 if video.dtype == torch.uint8 else video.float()


def resize_short_side(video: torch.Tensor, size: int) -> torch.Tensor:
    """Scale (C, T, H, W) float so that min(H, W) == size, keeping the aspect ratio."""
    if min(video.shape[-2:]) == size:
        return video
    return short_side_scale(video, size)


def normalize(video: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Per-channel normalisation of (C, T, H, W): (x - mean) / std."""
    # torchvision's normalize expects (..., C, H, W); move time in front of the channels and back.
    return TF.normalize(video.transpose(0, 1), list(mean), list(std)).transpose(0, 1)


def random_crop(video: torch.Tensor, size: int, rng: random.Random | None = None) -> torch.Tensor:
    """The same random ``size`` x ``size`` window from every frame of (C, T, H, W)."""
    rng = rng or random
    height, width = video.shape[-2:]
    if height < size or width < size:
        raise ValueError(f"cannot crop {size}x{size} from {height}x{width}")
    top, left = rng.randint(0, height - size), rng.randint(0, width - size)
    return TF.crop(video, top, left, size, size)


class TrainTransform:
    """Random short-side scale jitter, random crop, optional horizontal flip, normalisation.

    Args:
        crop_size: side of the square output crop.
        scale: (min, max) range for the random short side, inclusive; min must be >= crop_size.
        hflip: flip horizontally with probability 0.5 (never for direction-dependent labels such as SSv2's).
        mean: per-channel mean, on the [0, 1] scale.
        std: per-channel standard deviation, on the [0, 1] scale.
        rng: random source; None = the ``random`` module (seeded per DataLoader worker by PyTorch).
    """

    def __init__(
        self,
        crop_size: int,
        scale: tuple[int, int],
        hflip: bool,
        mean: Sequence[float] = (0.5, 0.5, 0.5),
        std: Sequence[float] = (0.5, 0.5, 0.5),
        rng: random.Random | None = None,
    ) -> None:
        if not crop_size <= scale[0] <= scale[1]:
            raise ValueError(f"need crop_size <= scale[0] <= scale[1], got {crop_size}, {scale}")
        self.crop_size, self.scale, self.hflip = crop_size, tuple(scale), hflip
        self.mean, self.std, self.rng = tuple(mean), tuple(std), rng

    def __call__(self, sample: Sample) -> Sample:
        rng = self.rng or random
        video = to_float(sample["video"])
        video = resize_short_side(video, rng.randint(*self.scale))
        video = random_crop(video, self.crop_size, rng)
        if self.hflip and rng.random() < 0.5:
            video = TF.horizontal_flip(video)
        return {**sample, "video": normalize(video, self.mean, self.std)}

    def __repr__(self) -> str:
        return f"TrainTransform(crop_size={self.crop_size}, scale={self.scale}, hflip={self.hflip})"


class TestTransform:
    """Short-side resize, then ``num_crops`` spatial views, normalised.

    The output ``video`` is (num_crops, C, T, H, W): 1 crop = centre; 3 crops = left/centre/right (or top/centre/
    bottom when the video is portrait), along the long side, as in PySlowFast's 3-crop testing.

    Args:
        crop_size: side of the square crops.
        num_crops: 1 or 3.
        short_side: short side to resize to before cropping; None = crop_size (the crops then span the short side).
        mean: per-channel mean, on the [0, 1] scale.
        std: per-channel standard deviation, on the [0, 1] scale.
    """

    __test__ = False  # not a pytest test class, despite the name

    def __init__(
        self,
        crop_size: int,
        num_crops: int = 1,
        short_side: int | None = None,
        mean: Sequence[float] = (0.5, 0.5, 0.5),
        std: Sequence[float] = (0.5, 0.5, 0.5),
    ) -> None:
        if num_crops not in (1, 3):
            raise ValueError(f"num_crops must be 1 or 3, got {num_crops}")
        self.crop_size, self.num_crops = crop_size, num_crops
        self.short_side = short_side or crop_size
        if self.short_side < crop_size:
            raise ValueError(f"short_side {self.short_side} < crop_size {crop_size}")
        self.mean, self.std = tuple(mean), tuple(std)

    def __call__(self, sample: Sample) -> Sample:
        video = resize_short_side(to_float(sample["video"]), self.short_side)
        spatial = [1] if self.num_crops == 1 else [0, 1, 2]  # uniform_crop: 0/1/2 = start/centre/end
        crops = [normalize(uniform_crop(video, self.crop_size, i), self.mean, self.std) for i in spatial]
        return {**sample, "video": torch.stack(crops)}

    def __repr__(self) -> str:
        return f"TestTransform(crop_size={self.crop_size}, num_crops={self.num_crops}, short_side={self.short_side})"


def compose(*transforms: Callable[[Sample], Sample]) -> Callable[[Sample], Sample]:
    """Apply dict -> dict transforms in order."""

    def apply(sample: Sample) -> Sample:
        for transform in transforms:
            sample = transform(sample)
        return sample

    return apply
