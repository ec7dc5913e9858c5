"""Per-clip augmentation ops as the authors' codebases draw them: every random choice made once for the whole clip.

timm's AutoAugment and RandAugment on PIL frames (X-ViT's, CAST's, and Motionformer's seeded copy, which reseeds
before every op), PySlowFast's colour jitter on normalised frames, TokenShift's colour changes, and the context
managers that let an explicit ``random.Random`` decide the draws of Python's, numpy's and torch's global generators
(which timm, torchvision and pytorchvideo draw from). ``data.transforms.TrainTransform`` applies them; each is proven
against the authors' code in tests/parity/ (docs/pipeline_parity.md).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
import torchvision.transforms.v2 as T
import torchvision.transforms.v2.functional as TF
from PIL import Image
from timm.data.auto_augment import auto_augment_transform, rand_augment_transform
from timm.data.auto_augment import posterize as timm_posterize


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


def make_timm_rand_augment(config: str, translate_const: int, interpolation: int | None = Image.BICUBIC,
                           img_mean: tuple[int, ...] | None = None) -> Callable[[Image.Image], Image.Image]:
    """timm's RandAugment of config string ``config`` (``rand_augment_transform``'s, e.g. "rand-m9-n4-mstd0.5-inc1")
    with the hparams of VideoMAE's and CAST's ``create_random_augment``: ``translate_const``, bicubic resampling (their
    ``--train_interpolation`` default) and timm's grey fill (no ``img_mean``); posterize as
    ``_posterize_keeping_no_bit_too`` (at magnitude 10, 4 - int(10 / 10 * 4) = 0 bits); the draws are timm's.
    ``interpolation`` None: timm's own, bilinear or bicubic at random per op (Motionformer's ``aa_params`` name
    none); ``img_mean``: the fill of the borders the geometric ops uncover (None: timm's grey, 128)."""
    hparams: dict[str, Any] = {"translate_const": translate_const}
    if interpolation is not None:
        hparams["interpolation"] = interpolation
    if img_mean is not None:
        hparams["img_mean"] = tuple(img_mean)
    transform = rand_augment_transform(config, hparams)
    for op in transform.ops:
        if op.aug_fn is timm_posterize:
            op.aug_fn = _posterize_keeping_no_bit_too
    return transform


class ReseededOp:
    """One op of timm's RandAugment that first seeds Python's and NumPy's global generators with ``seed``: the ops of
    Motionformer's seeded copy of timm's (its slowfast/datasets/autoaugment.py, ``rand_augment_transform(config,
    hparams, seed)``) do so on every call, so that every op of every frame of a clip draws the same apply coin,
    magnitude, sign and resampling."""

    def __init__(self, op: Callable[[Image.Image], Image.Image], clip: dict[str, Any]) -> None:
        # clip: shared by the ops of one RandAugment: the clip's "seed", and "numpy_after_choice", NumPy's state
        # when the first op is called (after the first frame's choice of ops)
        self.op, self.clip = op, clip

    def __call__(self, img: Image.Image) -> Image.Image:
        self.clip.setdefault("numpy_after_choice", np.random.get_state())
        random.seed(self.clip["seed"])
        np.random.seed(self.clip["seed"])
        return self.op(img)


def pyslowfast_color_jitter(video: torch.Tensor, strength: tuple[float, float, float], prob: float) -> torch.Tensor:
    """PySlowFast's training colour jitter (``utils.frames_augmentation(colorjitter=True)``, whose
    ``transform.color_jitter`` Motionformer's Kinetics configs use) on a NORMALISED (C, T, H, W) clip, drawing from
    NumPy's global generator as it does: a coin u = U(0, 1), jitter when u >= 1 - ``prob`` (theirs: 0.8); then
    brightness, contrast and saturation (those of non-zero ``strength``) in the order of a random permutation, each
    with its factor a = 1 + U(-s, s): brightness x * a (towards 0, the normalised frames' mid grey), contrast a blend
    with each frame's mean grey, saturation a blend with the grey image, x * a + grey * (1 - a). Grey is 0.299 x[2] +
    0.587 x[1] + 0.114 x[0], weights for BGR frames, whatever the order (on RGB frames red and blue swap weights, as
    theirs do). Nothing is clamped."""
    if np.random.uniform() < 1 - prob:
        return video
    ops = [(name, s) for name, s in zip(("brightness", "contrast", "saturation"), strength, strict=True) if s != 0]
    for index in np.random.permutation(len(ops)):
        name, s = ops[index]
        alpha = 1.0 + np.random.uniform(-s, s)
        if name == "brightness":
            video = video * alpha
            continue
        grey = (0.299 * video[2] + 0.587 * video[1] + 0.114 * video[0]).expand_as(video)
        if name == "contrast":
            grey = grey.mean(dim=(0, 2, 3), keepdim=True).expand_as(video)
        video = video * alpha + grey * (1 - alpha)
    return video


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
def numpy_random_from(rng: random.Random | None) -> Iterator[None]:
    """NumPy's global generator (timm's RandAugment draws its ops from it), seeded from ``rng`` inside the block and
    restored after it, as ``python_random_from`` does for Python's; ``rng`` None: the global generator as it is."""
    if rng is None:
        yield
        return
    saved = np.random.get_state()
    np.random.seed(rng.getrandbits(32))
    try:
        yield
    finally:
        np.random.set_state(saved)


@contextmanager
def torch_random_from(rng: random.Random | None) -> Iterator[None]:
    """torch's global CPU generator, which torchvision's and pytorchvideo's augmentations draw from, seeded from
    ``rng`` inside the block and restored after it (as ``python_random_from`` does for Python's); ``rng`` None: the
    global generator as it is."""
    with torch.random.fork_rng(devices=[], enabled=rng is not None):
        if rng is not None:
            torch.manual_seed(rng.getrandbits(63))
        yield
