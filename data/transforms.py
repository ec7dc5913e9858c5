"""Video transforms: callables mapping a sample dict to a sample dict, acting on ``sample["video"]``.

Videos are uint8 or float tensors (C, T, H, W); every random choice is drawn once per clip and applied to all its
frames, and ``pose`` joints (T, J, k), "pixel" or "camera" (``pose_space``), move with the pixels. Conventions:
data/README.md#transforms.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
import torchvision.transforms.v2 as T
import torchvision.transforms.v2.functional as TF
from pytorchvideo.transforms.functional import random_resized_crop, short_side_scale
from pytorchvideo.transforms.rand_augment import RandAugment
from timm.data.random_erasing import RandomErasing

from data.clip_augment import (
    ReseededOp,
    make_auto_augment,
    make_timm_rand_augment,
    numpy_random_from,
    pyslowfast_color_jitter,
    python_random_from,
    tokenshift_photometric_ops,
    torch_random_from,
)
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


CHANNEL_ORDERS = ("RGB", "BGR")


def check_channel_order(order: str) -> str:
    if order not in CHANNEL_ORDERS:
        raise ValueError(f"channel_order must be RGB or BGR, got {order!r}")
    return order


def in_channel_order(video: torch.Tensor, order: str) -> torch.Tensor:
    """Decoded RGB (C, T, H, W) in the order the model reads: "RGB" as it is, "BGR" reversed (the frames OpenCV
    decodes, which Motionformer's EPIC-KITCHENS models read). Applied before ``normalize``: mean and std are given
    in the model's order."""
    return video.flip(0) if check_channel_order(order) == "BGR" else video


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


CentreRounding = Literal["ceil", "floor"]
CropAxis = Literal["long_side", "width"]


def uniform_crop_offsets(height: int, width: int, size: int, index: int,
                         centre_rounding: CentreRounding = "ceil", axis: CropAxis = "long_side") -> tuple[int, int]:
    """(top, left) of pytorchvideo's ``uniform_crop(video, size, index)``: index 0/1/2 = start/centre/end of the
    long side, centred on the short side (PySlowFast's 3-crop test views; a test checks the two agree). Centring
    rounds the offset up (``centre_rounding`` "ceil", PySlowFast's and pytorchvideo's) or down ("floor": VideoMAE's,
    CAST's and TokShift's ``int((L - size) / 2)``): one pixel apart when the excess is odd. ``axis`` "width" moves the
    crops along the width whatever the frame's shape, centred in height (TokShift's ``clip_crop``: a portrait frame's
    three crops are then one)."""
    if centre_rounding not in ("ceil", "floor"):
        raise ValueError(f"centre_rounding must be 'ceil' or 'floor', got {centre_rounding!r}")
    if axis not in ("long_side", "width"):
        raise ValueError(f"the crops' axis must be 'long_side' or 'width', got {axis!r}")
    centre = (lambda excess: math.ceil(excess / 2)) if centre_rounding == "ceil" else (lambda excess: excess // 2)
    top, left = centre(height - size), centre(width - size)
    if index != 1:
        if height > width and axis == "long_side":
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


@dataclass(frozen=True)
class AugmentOptions:
    """The training augmentations of ``TrainTransform`` besides its crop and flip, each off by default: declared once
    here, taken by name by ``TrainTransform`` and by ``data.datamodule.VideoDataModule`` (a run's ``data.options``),
    which passes them on. ``TrainTransform`` checks them against each other and its crop.

    Fields:
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
        timm_rand_augment: timm's RandAugment config string (e.g. "rand-m9-n4-mstd0.5-inc1"), as VideoMAE's and
            CAST's ``create_random_augment`` build it (``make_timm_rand_augment``), on the whole uint8 frames as PIL
            images, one draw for the clip; instead of ``rand_augment`` (pytorchvideo's); None = off.
        timm_rand_augment_seeded: ``timm_rand_augment`` as Motionformer's seeded copy of timm's draws it
            (``_seeded_rand_augment_clip``): one seed per clip, every op reseeding with it, timm's random bilinear or
            bicubic resampling and the fill of ``mean`` in [0, 255]; False = one draw per clip (VideoMAE's, CAST's).
        pyslowfast_color_jitter: ``color_jitter`` (probability ``color_jitter_prob``) as PySlowFast's
            ``frames_augmentation`` does it, on the normalised crop (``pyslowfast_color_jitter``), instead of
            torchvision's ``ColorJitter`` on [0, 1] frames.
    """

    color_jitter: float | tuple[float, float, float] | None = None
    color_jitter_prob: float = 1.0
    inverse_uniform_scale: bool = False
    rand_augment: tuple[int, int] | None = None
    rand_augment_std: float = 0.5
    auto_augment: str | None = None
    random_erasing: float = 0.0
    multi_scale_crop: bool = False
    tokenshift_photometric: float = 0.0
    random_resized_crop: tuple[tuple[float, float], tuple[float, float]] | None = None
    timm_rand_augment: str | None = None
    timm_rand_augment_seeded: bool = False
    pyslowfast_color_jitter: bool = False

    def __post_init__(self) -> None:
        if self.rand_augment is not None:  # a configuration read back from JSON gives a list
            object.__setattr__(self, "rand_augment", tuple(self.rand_augment))


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
        channel_order: "RGB", or "BGR": the channels reversed before normalisation (``in_channel_order``).
        augment: the augmentations, ``AugmentOptions``' fields by name (all off by default).
    """

    def __init__(
        self,
        crop_size: int,
        scale: tuple[int, int],
        hflip: bool,
        mean: Sequence[float] = (0.5, 0.5, 0.5),
        std: Sequence[float] = (0.5, 0.5, 0.5),
        rng: random.Random | None = None,
        channel_order: str = "RGB",
        **augment: Any,
    ) -> None:
        if not crop_size <= scale[0] <= scale[1]:
            raise ValueError(f"need crop_size <= scale[0] <= scale[1], got {crop_size}, {scale}")
        options = AugmentOptions(**augment)
        if not 0.0 <= options.random_erasing <= 1.0:
            raise ValueError(f"random_erasing is a probability, got {options.random_erasing}")
        if not 0.0 <= options.tokenshift_photometric <= 1.0:
            raise ValueError(f"tokenshift_photometric is a probability, got {options.tokenshift_photometric}")
        self.crop_size, self.scale, self.hflip = crop_size, tuple(scale), hflip
        if options.inverse_uniform_scale and (options.multi_scale_crop or options.random_resized_crop is not None):
            raise ValueError("inverse_uniform_scale draws the short side of the scale jitter, which multi_scale_crop "
                             "and random_resized_crop replace")
        self.inverse_uniform_scale = options.inverse_uniform_scale
        self.mean, self.std, self.rng = tuple(mean), tuple(std), rng
        self.color_jitter, self.rand_augment = options.color_jitter, options.rand_augment
        self.auto_augment, self.random_erasing = options.auto_augment, options.random_erasing
        self.multi_scale_crop, self.tokenshift_photometric = options.multi_scale_crop, options.tokenshift_photometric
        self.random_resized_crop = _checked_resized_crop(options.random_resized_crop, options.multi_scale_crop)
        self._auto_augment = (None if options.auto_augment is None else
                              make_auto_augment(options.auto_augment, translate_const=int(0.45 * crop_size)))
        self._eraser = RandomErasing(options.random_erasing, device="cpu") if options.random_erasing > 0 else None
        self.channel_order = check_channel_order(channel_order)
        self._make_rand_augment(options.rand_augment, options.rand_augment_std, options.timm_rand_augment,
                                options.timm_rand_augment_seeded)
        self._make_photometric(options.color_jitter, options.color_jitter_prob, options.pyslowfast_color_jitter,
                               options.tokenshift_photometric)

    def _make_rand_augment(self, rand_augment: tuple[int, int] | None, rand_augment_std: float,
                           timm_rand_augment: str | None, timm_rand_augment_seeded: bool) -> None:
        """pytorchvideo's RandAugment (``rand_augment``) or timm's (``timm_rand_augment``, Motionformer's seeded form
        with ``timm_rand_augment_seeded``), checked."""
        crop_size = self.crop_size
        if timm_rand_augment is not None and rand_augment is not None:
            raise ValueError("rand_augment (pytorchvideo's) and timm_rand_augment (timm's) are two RandAugments; "
                             "choose one")
        self.timm_rand_augment = timm_rand_augment
        if timm_rand_augment_seeded and timm_rand_augment is None:
            raise ValueError("timm_rand_augment_seeded says how timm_rand_augment draws; set timm_rand_augment")
        self.timm_rand_augment_seeded = timm_rand_augment_seeded
        if timm_rand_augment is None:
            self._timm_rand_augment = None
        elif timm_rand_augment_seeded:  # Motionformer's aa_params: no interpolation, img_mean from DATA.MEAN
            self._timm_rand_augment = make_timm_rand_augment(
                timm_rand_augment, int(0.45 * crop_size), interpolation=None,
                img_mean=tuple(min(255, round(255 * m)) for m in self.mean))
            self._seeded_clip: dict[str, Any] = {}
            self._timm_rand_augment.ops = [ReseededOp(op, self._seeded_clip) for op in self._timm_rand_augment.ops]
        else:
            self._timm_rand_augment = make_timm_rand_augment(timm_rand_augment, translate_const=int(0.45 * crop_size))
        self._rand_augment = None
        if rand_augment is not None:
            magnitude, num_ops = rand_augment
            if not 0 <= magnitude <= 10 or num_ops < 1:
                raise ValueError(f"rand_augment must be (magnitude in [0, 10], num_ops >= 1), got {rand_augment}")
            self._rand_augment = RandAugment(magnitude=magnitude, num_layers=num_ops, prob=0.5,
                                             sampling_hparas={"sampling_std": rand_augment_std})

    def _make_photometric(self, color_jitter: float | tuple[float, float, float] | None, color_jitter_prob: float,
                          pyslowfast_color_jitter: bool, tokenshift_photometric: float) -> None:
        """The colour changes applied to the float clip (torchvision's jitter, TokenShift's four), checked;
        PySlowFast's jitter (``pyslowfast_color_jitter``) is applied on the normalised clip instead."""
        self._photometric: list[Callable[[torch.Tensor], torch.Tensor]] = []
        if not 0.0 < color_jitter_prob <= 1.0 or (color_jitter is None and color_jitter_prob != 1.0):
            raise ValueError(f"color_jitter_prob must be in (0, 1] and goes with color_jitter; got "
                             f"{color_jitter_prob} with color_jitter={color_jitter}")
        self.color_jitter_prob = color_jitter_prob
        if pyslowfast_color_jitter and color_jitter is None:
            raise ValueError("pyslowfast_color_jitter says how color_jitter is applied; set color_jitter")
        self.pyslowfast_color_jitter = pyslowfast_color_jitter
        if color_jitter is not None and not pyslowfast_color_jitter:
            b, c, s = (color_jitter,) * 3 if isinstance(color_jitter, (int, float)) else color_jitter
            jitter = T.ColorJitter(brightness=b, contrast=c, saturation=s)
            self._photometric.append(jitter if color_jitter_prob == 1.0 else
                                     T.RandomApply([jitter], p=color_jitter_prob))
        if tokenshift_photometric > 0:
            self._photometric += tokenshift_photometric_ops(tokenshift_photometric)

    def __call__(self, sample: Sample) -> Sample:
        rng = self.rng or random
        video = sample["video"]
        if "pose" in sample and (self._auto_augment or self._rand_augment or self._timm_rand_augment):
            raise ValueError("AutoAugment and RandAugment rotate, shear and translate pixels but not pose joints")
        if self._auto_augment is not None:
            video = self._auto_augment_clip(video)
        if self._timm_rand_augment is not None:
            video = (self._seeded_rand_augment_clip(video) if self.timm_rand_augment_seeded else
                     self._timm_rand_augment_clip(video))
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
        video = normalize(in_channel_order(video, self.channel_order), self.mean, self.std)
        if self.pyslowfast_color_jitter:
            b, c, s = ((self.color_jitter,) * 3 if isinstance(self.color_jitter, (int, float)) else
                       tuple(self.color_jitter))
            with numpy_random_from(self.rng):
                video = pyslowfast_color_jitter(video, (b, c, s), self.color_jitter_prob)
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

    def _timm_rand_augment_clip(self, video: torch.Tensor) -> torch.Tensor:
        """timm's RandAugment on (C, T, H, W), every frame as a uint8 PIL image, returned uint8.

        timm draws the ops from NumPy's global generator and whether each applies, its magnitude and its sign from
        Python's ``random``; restoring both states before each frame gives every frame the clip's single draw, as
        the official video copies (VideoMAE's, CAST's ``util_tools/rand_augment.py``) draw once for the frame list.
        """
        frames = TF.to_dtype(video, torch.uint8, scale=True).transpose(0, 1)
        augmented = []
        with python_random_from(self.rng), numpy_random_from(self.rng):
            state, numpy_state = random.getstate(), np.random.get_state()
            for frame in frames:
                random.setstate(state)
                np.random.set_state(numpy_state)
                augmented.append(TF.pil_to_tensor(self._timm_rand_augment(TF.to_pil_image(frame))))
        return torch.stack(augmented, dim=1)

    def _seeded_rand_augment_clip(self, video: torch.Tensor) -> torch.Tensor:
        """timm's RandAugment on (C, T, H, W) as Motionformer's datasets apply their seeded copy of it (kinetics.py,
        ssv2.py, epickitchens.py: ``rand_augment_transform(config, aa_params, seed)(frame)`` for each frame): a seed
        ``randint(0, 100000000)`` from Python's generator, then every frame's ops chosen from NumPy's (frame 0 from
        the stream as it is, the others after the previous frame's ops reseeded it: frames 1.. share one choice,
        frame 0 has its own), every op reseeding both generators with the seed first (``ReseededOp``): the same
        apply coin (both ops or neither), magnitude, sign and resampling for every op and frame. Their ops leave
        both generators reseeded; here Python's is left after the seed's draw and NumPy's after frame 0's choice."""
        frames = TF.to_dtype(video, torch.uint8, scale=True).transpose(0, 1)
        with python_random_from(self.rng), numpy_random_from(self.rng):
            self._seeded_clip.clear()
            self._seeded_clip["seed"] = random.randint(0, 100_000_000)
            state = random.getstate()
            augmented = [TF.pil_to_tensor(self._timm_rand_augment(TF.to_pil_image(frame))) for frame in frames]
            random.setstate(state)
            np.random.set_state(self._seeded_clip["numpy_after_choice"])
        return torch.stack(augmented, dim=1)

    def _erase(self, video: torch.Tensor) -> torch.Tensor:
        """Random erasing of normalised (C, T, H, W) with one box for the whole clip: timm's eraser gets the clip as
        one (C * T, H, W) image, so the box it draws covers the same pixels of every channel of every frame."""
        video = video.contiguous()
        with python_random_from(self.rng):
            self._eraser(video.view(-1, *video.shape[-2:]))  # erases in place, through the view
        return video

    def __repr__(self) -> str:
        augments = ("color_jitter", "pyslowfast_color_jitter", "rand_augment", "timm_rand_augment",
                    "timm_rand_augment_seeded", "auto_augment", "random_erasing",
                    "multi_scale_crop", "tokenshift_photometric", "random_resized_crop", "inverse_uniform_scale")
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
        centre_rounding: how the centre crop's offset is rounded when the excess over the crop is odd: "ceil"
            (PySlowFast's and pytorchvideo's) or "floor" (VideoMAE's and CAST's ``int((L - crop) / 2)``);
            ``uniform_crop_offsets``.
        channel_order: "RGB", or "BGR": the channels reversed before normalisation (``in_channel_order``).
        crop_axis: where the 3 crops move: "long_side", or "width" whatever the shape (TokShift's;
            ``uniform_crop_offsets``' ``axis``).
    """

    __test__ = False  # not a pytest test class, despite the name

    def __init__(
        self,
        crop_size: int,
        num_crops: int = 1,
        short_side: int | None = None,
        mean: Sequence[float] = (0.5, 0.5, 0.5),
        std: Sequence[float] = (0.5, 0.5, 0.5),
        centre_rounding: CentreRounding = "ceil",
        channel_order: str = "RGB",
        crop_axis: CropAxis = "long_side",
    ) -> None:
        if num_crops not in (1, 3):
            raise ValueError(f"num_crops must be 1 or 3, got {num_crops}")
        self.crop_size, self.num_crops = crop_size, num_crops
        self.short_side = short_side or crop_size
        if self.short_side < crop_size:
            raise ValueError(f"short_side {self.short_side} < crop_size {crop_size}")
        self.mean, self.std = tuple(mean), tuple(std)
        uniform_crop_offsets(crop_size, crop_size, crop_size, 1, centre_rounding, crop_axis)  # a bad name fails here
        self.centre_rounding, self.crop_axis = centre_rounding, crop_axis
        self.channel_order = check_channel_order(channel_order)

    def __call__(self, sample: Sample) -> Sample:
        video = to_float(sample["video"])
        height, width = video.shape[-2:]
        video = in_channel_order(resize_short_side(video, self.short_side), self.channel_order)
        spatial = [1] if self.num_crops == 1 else [0, 1, 2]  # start/centre/end of the long side
        offsets = [uniform_crop_offsets(*video.shape[-2:], self.crop_size, i, self.centre_rounding, self.crop_axis)
                   for i in spatial]
        crops = [normalize(TF.crop(video, top, left, self.crop_size, self.crop_size), self.mean, self.std)
                 for top, left in offsets]
        out = {**sample, "video": torch.stack(crops)}
        if "pose" in sample:  # one pose per crop: (num_crops, T, J, k)
            scale = (video.shape[-2] / height, video.shape[-1] / width)
            out["pose"] = torch.stack([transform_joints(sample["pose"], sample.get("pose_space", "pixel"), scale,
                                                        top, left) for top, left in offsets])
        return out

    def __repr__(self) -> str:
        rounding = "" if self.centre_rounding == "ceil" else f", centre_rounding={self.centre_rounding}"
        rounding += "" if self.crop_axis == "long_side" else f", crop_axis={self.crop_axis}"
        return (f"TestTransform(crop_size={self.crop_size}, num_crops={self.num_crops}, "
                f"short_side={self.short_side}{rounding})")
