"""Video transforms: callables mapping a sample dict to a sample dict, acting on ``sample["video"]``.

Videos are uint8 or float tensors (C, T, H, W); every random choice is drawn once per clip and applied to all its
frames, and ``pose`` joints (T, J, k), "pixel" or "camera" (``pose_space``), move with the pixels. Conventions:
data/README.md#transforms.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
import torchvision.transforms.v2 as T
import torchvision.transforms.v2.functional as TF
from pytorchvideo.transforms.functional import random_resized_crop, short_side_scale
from pytorchvideo.transforms.rand_augment import RandAugment
from PIL import Image
from timm.data.auto_augment import auto_augment_transform
from timm.data.auto_augment import posterize as timm_posterize
from timm.data.random_erasing import RandomErasing

from data.pose import FLIP_PAIRS

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
    top, left = random_crop_offsets(video, size, rng)
    return TF.crop(video, top, left, size, size)


def random_crop_offsets(video: torch.Tensor, size: int, rng: random.Random | None = None) -> tuple[int, int]:
    """(top, left) of a random ``size`` x ``size`` window inside (..., H, W)."""
    rng = rng or random
    height, width = video.shape[-2:]
    if height < size or width < size:
        raise ValueError(f"cannot crop {size}x{size} from {height}x{width}")
    return rng.randint(0, height - size), rng.randint(0, width - size)


# The official X-ViT code's Kinetics training crop (slowfast/datasets/transform.py, ``random_scale_and_resize``:
# TSN's multi-scale crop): window sides as fractions of the short side, and the 13 window positions, in quarters of
# the room left on each axis (x, y): the corners, the centre, the edge midpoints and the quarter points.
MULTI_SCALE_CROP_SCALES = (1.0, 0.875, 0.75, 0.66)
MULTI_SCALE_CROP_POSITIONS = ((0, 0), (4, 0), (0, 4), (4, 4), (2, 2), (0, 2), (4, 2), (2, 4), (2, 0), (1, 1), (3, 1),
                              (1, 3), (3, 3))


def multi_scale_crop_window(height: int, width: int, size: int, rng: random.Random | None = None
                            ) -> tuple[int, int, int, int]:
    """(top, left, window height, window width) of TSN's multi-scale crop in an H x W frame, as the official X-ViT
    code draws it (``MULTI_SCALE_CROP_SCALES`` of the short side, at one of ``MULTI_SCALE_CROP_POSITIONS``)."""
    rng = rng or random
    sides = [size if abs(int(min(height, width) * s) - size) < 3 else int(min(height, width) * s)
             for s in MULTI_SCALE_CROP_SCALES]
    window_h, window_w = rng.choice([(h, w) for i, h in enumerate(sides) for j, w in enumerate(sides)
                                     if abs(i - j) <= 1])
    x, y = rng.choice(MULTI_SCALE_CROP_POSITIONS)
    return y * ((height - window_h) // 4), x * ((width - window_w) // 4), window_h, window_w


def _posterize_keeping_no_bit_too(img: Image.Image, bits_to_keep: int, **kwargs: Any) -> Image.Image:
    """timm's posterize, and for 0 bits a black image (what older Pillow's lookup table gave): timm's "v0" policy
    asks for 0 bits, which current Pillow refuses (one clip in 31 would stop training with that error)."""
    if bits_to_keep <= 0:
        return Image.new(img.mode, img.size)
    return timm_posterize(img, bits_to_keep, **kwargs)


def make_auto_augment(policy: str, translate_const: int) -> Callable[[Image.Image], Image.Image]:
    """timm's AutoAugment ``policy`` (``auto_augment_transform``'s config string), its posterize as
    ``_posterize_keeping_no_bit_too``; the draws are timm's, unchanged."""
    transform = auto_augment_transform(policy, {"translate_const": translate_const})
    for op in (op for sub_policy in transform.policy for op in sub_policy):
        if op.aug_fn is timm_posterize:
            op.aug_fn = _posterize_keeping_no_bit_too
    return transform


class RandomGamma(torch.nn.Module):
    """Gamma correction with an exponent drawn uniformly from ``gamma`` (torch's generator), one draw per call."""

    def __init__(self, gamma: tuple[float, float]) -> None:
        super().__init__()
        self.gamma = gamma

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        low, high = self.gamma
        return TF.adjust_gamma(frames, low + (high - low) * torch.rand(()).item())


def tokenshift_photometric_ops(prob: float) -> list[Callable[[torch.Tensor], torch.Tensor]]:
    """TokenShift's training colour changes (its data/augmentation.py, ``Train_ClipAug``), in its order: brightness
    x U(0.5, 2), saturation x U(0.5, 3), gamma U(0.8, 1.2), hue + U(-0.5, 0.5), each applied with probability
    ``prob`` (its ``random.randint(10)`` test: 0.1), one draw per clip."""
    ops = [T.ColorJitter(brightness=(0.5, 2.0)), T.ColorJitter(saturation=(0.5, 3.0)), RandomGamma((0.8, 1.2)),
           T.ColorJitter(hue=(-0.5, 0.5))]
    return [T.RandomApply([op], p=prob) for op in ops]


@contextmanager
def python_random_from(rng: random.Random | None) -> Iterator[None]:
    """Python's global generator, which timm's augmentations draw from, seeded from ``rng`` inside the block and
    restored after it, so that an explicit rng decides the draws and leaves the global stream alone. ``rng`` None:
    the global generator as it is (``data.resumable`` seeds it per item)."""
    if rng is None:
        yield
        return
    saved = random.getstate()
    random.seed(rng.getrandbits(63))
    try:
        yield
    finally:
        random.setstate(saved)


@contextmanager
def torch_random_from(rng: random.Random | None) -> Iterator[None]:
    """torch's global CPU generator, which torchvision's and pytorchvideo's augmentations draw from, seeded from
    ``rng`` inside the block and restored after it (as ``python_random_from`` does for Python's); ``rng`` None: the
    global generator as it is."""
    with torch.random.fork_rng(devices=[], enabled=rng is not None):
        if rng is not None:
            torch.manual_seed(rng.getrandbits(63))
        yield


def uniform_crop_offsets(height: int, width: int, size: int, index: int) -> tuple[int, int]:
    """(top, left) of pytorchvideo's ``uniform_crop(video, size, index)``: index 0/1/2 = start/centre/end of the
    long side, centred on the short side (PySlowFast's 3-crop test views; a test checks the two agree)."""
    top, left = math.ceil((height - size) / 2), math.ceil((width - size) / 2)
    if index != 1:
        if height > width:
            top = 0 if index == 0 else height - size
        else:
            left = 0 if index == 0 else width - size
    return top, left


def transform_joints(joints: torch.Tensor, space: str, scale: tuple[float, float], top: int, left: int,
                     flip_width: int | None = None) -> torch.Tensor:
    """Joints (..., J, k) of frames resized by ``scale`` = (sy, sx), cropped at (top, left) and, when
    ``flip_width`` is given, mirrored inside a crop that wide. The spaces: data/README.md#transforms."""
    if space not in ("pixel", "camera"):
        raise ValueError(f"pose_space must be 'pixel' or 'camera', got {space!r}")
    out = joints.clone()
    if space == "pixel":  # 1-based pixel centres: pixel i spans [i - 0.5, i + 0.5)
        out[..., 1] = (joints[..., 1] - 0.5) * scale[0] - top + 0.5
        out[..., 0] = (joints[..., 0] - 0.5) * scale[1] - left + 0.5
    if flip_width is not None:
        out[..., 0] = flip_width + 1 - out[..., 0] if space == "pixel" else -out[..., 0]
        pairs = FLIP_PAIRS.get(joints.shape[-2])
        if pairs is None:
            raise ValueError(f"no left/right joint pairs known for {joints.shape[-2]} joints (known: "
                             f"{sorted(FLIP_PAIRS)}); cannot flip the pose")
        order = list(range(joints.shape[-2]))
        for i, j in pairs:
            order[i], order[j] = j, i
        out = out[..., order, :]
    return out


def _checked_resized_crop(crop: Any, multi_scale_crop: bool) -> tuple[tuple[float, float], tuple[float, float]] | None:
    """``TrainTransform``'s ``random_resized_crop`` as tuples (a configuration read from JSON gives lists), or a
    ValueError naming what is wrong."""
    if crop is None:
        return None
    try:
        (a0, a1), (r0, r1) = crop
    except (TypeError, ValueError):
        raise ValueError(f"random_resized_crop must be ((min area, max area), (min ratio, max ratio)), "
                         f"got {crop!r}") from None
    if not (0 < a0 <= a1 <= 1 and 0 < r0 <= r1):
        raise ValueError(f"random_resized_crop needs 0 < min area <= max area <= 1 and 0 < min ratio <= max ratio, "
                         f"got {crop!r}")
    if multi_scale_crop:
        raise ValueError("random_resized_crop and multi_scale_crop are two training crops; choose one")
    return (float(a0), float(a1)), (float(r0), float(r1))


class TrainTransform:
    """Optional AutoAugment or RandAugment, random short-side scale jitter and random crop (or another crop),
    optional horizontal flip, optional colour jitter, normalisation, optional random erasing (Auto/RandAugment on
    the whole frames, erasing on the normalised crop, where the official codes apply them). Paper settings: their
    READMEs.

    Args:
        crop_size: side of the square output crop.
        scale: (min, max) range for the random short side, inclusive; min must be >= crop_size.
        hflip: flip horizontally with probability 0.5 (never for direction-dependent labels such as SSv2's).
        mean, std: per-channel mean and standard deviation, on the [0, 1] scale.
        rng: random source (also seeding colour jitter and RandAugment); None = ``random`` and torch's generator.
        color_jitter: brightness, contrast and saturation strength (a float or a triple); None = off.
        color_jitter_prob: probability that a clip is colour-jittered at all.
        inverse_uniform_scale: draw the short side as 1 / U(1 / max, 1 / min) (PySlowFast's INV_UNIFORM_SAMPLE).
        rand_augment: (magnitude, num_ops), magnitudes drawn from N(magnitude, ``rand_augment_std``) clipped to [0, 10].
        rand_augment_std: standard deviation of the magnitude draws (timm's "mstd").
        auto_augment: timm's AutoAugment policy string (e.g. "v0"); translations at most int(0.45 * crop_size) pixels.
        random_erasing: probability of timm's ``RandomErasing`` (one box of 2% to 1/3 of the frame, filled with 0).
        multi_scale_crop: the official X-ViT Kinetics crop (``multi_scale_crop_window``) resized to ``crop_size``,
            instead of the short-side jitter and random crop.
        tokenshift_photometric: probability of each of TokenShift's four colour changes (on float frames); 0 = off.
        random_resized_crop: ((min, max) area fraction, (min, max) aspect ratio w / h) of an Inception-style crop
            resized to ``crop_size`` (pytorchvideo's), instead of the short-side jitter and random crop; None = off.
    """

    def __init__(
        self,
        crop_size: int,
        scale: tuple[int, int],
        hflip: bool,
        mean: Sequence[float] = (0.5, 0.5, 0.5),
        std: Sequence[float] = (0.5, 0.5, 0.5),
        rng: random.Random | None = None,
        color_jitter: float | tuple[float, float, float] | None = None,
        color_jitter_prob: float = 1.0,
        inverse_uniform_scale: bool = False,
        rand_augment: tuple[int, int] | None = None,
        rand_augment_std: float = 0.5,
        auto_augment: str | None = None,
        random_erasing: float = 0.0,
        multi_scale_crop: bool = False,
        tokenshift_photometric: float = 0.0,
        random_resized_crop: tuple[tuple[float, float], tuple[float, float]] | None = None,
    ) -> None:
        if not crop_size <= scale[0] <= scale[1]:
            raise ValueError(f"need crop_size <= scale[0] <= scale[1], got {crop_size}, {scale}")
        if not 0.0 <= random_erasing <= 1.0:
            raise ValueError(f"random_erasing is a probability, got {random_erasing}")
        if not 0.0 <= tokenshift_photometric <= 1.0:
            raise ValueError(f"tokenshift_photometric is a probability, got {tokenshift_photometric}")
        self.crop_size, self.scale, self.hflip = crop_size, tuple(scale), hflip
        if inverse_uniform_scale and (multi_scale_crop or random_resized_crop is not None):
            raise ValueError("inverse_uniform_scale draws the short side of the scale jitter, which multi_scale_crop "
                             "and random_resized_crop replace")
        self.inverse_uniform_scale = inverse_uniform_scale
        self.mean, self.std, self.rng = tuple(mean), tuple(std), rng
        self.color_jitter, self.rand_augment = color_jitter, rand_augment
        self.auto_augment, self.random_erasing = auto_augment, random_erasing
        self.multi_scale_crop, self.tokenshift_photometric = multi_scale_crop, tokenshift_photometric
        self.random_resized_crop = _checked_resized_crop(random_resized_crop, multi_scale_crop)
        self._auto_augment = (None if auto_augment is None else
                              make_auto_augment(auto_augment, translate_const=int(0.45 * crop_size)))
        self._eraser = RandomErasing(random_erasing, device="cpu") if random_erasing > 0 else None
        self._rand_augment = None
        if rand_augment is not None:
            magnitude, num_ops = rand_augment
            if not 0 <= magnitude <= 10 or num_ops < 1:
                raise ValueError(f"rand_augment must be (magnitude in [0, 10], num_ops >= 1), got {rand_augment}")
            self._rand_augment = RandAugment(magnitude=magnitude, num_layers=num_ops, prob=0.5,
                                             sampling_hparas={"sampling_std": rand_augment_std})
        self._photometric: list[Callable[[torch.Tensor], torch.Tensor]] = []
        if not 0.0 < color_jitter_prob <= 1.0 or (color_jitter is None and color_jitter_prob != 1.0):
            raise ValueError(f"color_jitter_prob must be in (0, 1] and goes with color_jitter; got "
                             f"{color_jitter_prob} with color_jitter={color_jitter}")
        self.color_jitter_prob = color_jitter_prob
        if color_jitter is not None:
            b, c, s = (color_jitter,) * 3 if isinstance(color_jitter, (int, float)) else color_jitter
            jitter = T.ColorJitter(brightness=b, contrast=c, saturation=s)
            self._photometric.append(jitter if color_jitter_prob == 1.0 else
                                     T.RandomApply([jitter], p=color_jitter_prob))
        if tokenshift_photometric > 0:
            self._photometric += tokenshift_photometric_ops(tokenshift_photometric)

    def __call__(self, sample: Sample) -> Sample:
        rng = self.rng or random
        video = sample["video"]
        if "pose" in sample and (self._auto_augment or self._rand_augment):
            raise ValueError("AutoAugment and RandAugment rotate, shear and translate pixels but not pose joints")
        if self._auto_augment is not None:
            video = self._auto_augment_clip(video)
        video = to_float(video)
        if self._rand_augment is not None:
            video = self._per_clip([self._rand_augment], video)
        if self.random_resized_crop is not None:
            if "pose" in sample:
                raise ValueError("random_resized_crop stretches the window to a square; pose joints are not moved "
                                 "with it")
            area, ratio = self.random_resized_crop
            with torch_random_from(self.rng):
                video = random_resized_crop(video, self.crop_size, self.crop_size, area, ratio)
        elif self.multi_scale_crop:
            if "pose" in sample:
                raise ValueError("multi_scale_crop stretches the window to a square; pose joints are not moved with it")
            top, left, window_h, window_w = multi_scale_crop_window(*video.shape[-2:], self.crop_size, rng)
            video = TF.resize(TF.crop(video, top, left, window_h, window_w), [self.crop_size, self.crop_size],
                              antialias=True)
        else:
            height, width = video.shape[-2:]
            video = resize_short_side(video, self._short_side(rng))
            scale = (video.shape[-2] / height, video.shape[-1] / width)
            top, left = random_crop_offsets(video, self.crop_size, rng)
            video = TF.crop(video, top, left, self.crop_size, self.crop_size)
        flip = self.hflip and rng.random() < 0.5
        if flip:
            video = TF.horizontal_flip(video)
        if self._photometric:
            video = self._per_clip(self._photometric, video)
        video = normalize(video, self.mean, self.std)
        if self._eraser is not None:
            video = self._erase(video)
        out = {**sample, "video": video}
        if "pose" in sample:
            out["pose"] = transform_joints(sample["pose"], sample.get("pose_space", "pixel"), scale, top, left,
                                           self.crop_size if flip else None)
        return out

    def _short_side(self, rng: random.Random) -> int:
        low, high = self.scale
        if self.inverse_uniform_scale:  # PySlowFast's random_short_side_scale_jitter(inverse_uniform_sampling=True)
            return int(round(1.0 / rng.uniform(1.0 / high, 1.0 / low)))
        return rng.randint(low, high)

    def _per_clip(self, augments: Sequence[Callable[[torch.Tensor], torch.Tensor]], video: torch.Tensor
                  ) -> torch.Tensor:
        """``augments`` (RandAugment, colour changes) in turn on (C, T, H, W) in [0, 1], one parameter draw each for
        the whole clip: they treat the leading axis of (T, C, H, W) as a batch of frames and draw from torch's
        generator."""
        frames = video.transpose(0, 1)
        with torch_random_from(self.rng):
            for augment in augments:
                frames = augment(frames)
        return frames.clamp(0, 1).transpose(0, 1)

    def _auto_augment_clip(self, video: torch.Tensor) -> torch.Tensor:
        """AutoAugment on (C, T, H, W), every frame as a uint8 PIL image (timm's ops are PIL's), returned uint8.

        timm draws the sub-policy, whether each op applies, its sign and its interpolation from Python's ``random``;
        restoring one generator state before each frame gives every frame the clip's single draw.
        """
        frames = TF.to_dtype(video, torch.uint8, scale=True).transpose(0, 1)
        augmented = []
        with python_random_from(self.rng):
            state = random.getstate()
            for frame in frames:
                random.setstate(state)
                augmented.append(TF.pil_to_tensor(self._auto_augment(TF.to_pil_image(frame))))
        return torch.stack(augmented, dim=1)

    def _erase(self, video: torch.Tensor) -> torch.Tensor:
        """Random erasing of normalised (C, T, H, W) with one box for the whole clip: timm's eraser gets the clip as
        one (C * T, H, W) image, so the box it draws covers the same pixels of every channel of every frame."""
        video = video.contiguous()
        with python_random_from(self.rng):
            self._eraser(video.view(-1, *video.shape[-2:]))  # erases in place, through the view
        return video

    def __repr__(self) -> str:
        augments = ("color_jitter", "rand_augment", "auto_augment", "random_erasing", "multi_scale_crop",
                    "tokenshift_photometric", "random_resized_crop", "inverse_uniform_scale")
        extras = "".join(f", {k}={v}" for k in augments if (v := getattr(self, k)) not in (None, 0, False))
        return f"TrainTransform(crop_size={self.crop_size}, scale={self.scale}, hflip={self.hflip}{extras})"


class TestTransform:
    """Short-side resize, then ``num_crops`` spatial views, normalised: ``video`` (num_crops, C, T, H, W).

    1 crop = centre; 3 crops = left/centre/right (top/centre/bottom for a portrait video), as PySlowFast's.

    Args:
        crop_size: side of the square crops.
        num_crops: 1 or 3.
        short_side: short side to resize to before cropping; None = crop_size (the crops then span the short side).
        mean, std: per-channel mean and standard deviation, on the [0, 1] scale.
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
        video = to_float(sample["video"])
        height, width = video.shape[-2:]
        video = resize_short_side(video, self.short_side)
        spatial = [1] if self.num_crops == 1 else [0, 1, 2]  # start/centre/end of the long side
        offsets = [uniform_crop_offsets(*video.shape[-2:], self.crop_size, i) for i in spatial]
        crops = [normalize(TF.crop(video, top, left, self.crop_size, self.crop_size), self.mean, self.std)
                 for top, left in offsets]
        out = {**sample, "video": torch.stack(crops)}
        if "pose" in sample:  # one pose per crop: (num_crops, T, J, k)
            scale = (video.shape[-2] / height, video.shape[-1] / width)
            out["pose"] = torch.stack([transform_joints(sample["pose"], sample.get("pose_space", "pixel"), scale,
                                                        top, left) for top, left in offsets])
        return out

    def __repr__(self) -> str:
        return f"TestTransform(crop_size={self.crop_size}, num_crops={self.num_crops}, short_side={self.short_side})"
