"""The bounds on a run's size, checked when its model is built on the ``meta`` device (``tasks.build_model``: what
``run`` and its dry run do for every run once the runs resolve, before anything is allocated, generated or trained):
the model's integer arguments (before it is built: a depth of a billion would keep even the meta build busy for
years), its parameters (counted on the meta device, where a model costs no memory), the pixels of one batch's clips
in training and at test (clips x views x frames x crop^2: what the loader decodes and the first layer takes), and
the short side frames are scaled to, and the schedule's length (epochs, optimiser steps). The commands that decode a
user's video (``attention``, ``predict``) check its frames, as its stream's header states them, before one is decoded
(``check_video_frames``).

The principle: each bound is 10x the largest paper configuration in the repository, so that every table at paper
scale passes with room for larger hardware, and a size beyond it is taken for a typo (an extra zero), which would
otherwise allocate terabytes or train for years before it failed. ``tests/experiments/harness/test_sizes.py`` walks
every table's paper-scale runs and checks that none comes within 10x of a bound. ``run --allow-large`` lifts them,
for the hardware that has room (``allowing_large``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

    from .spec import RunConfig

# The largest paper configurations (every registered experiment at paper scale, when these bounds were set):
#   parameters: Motionformer's ViT-L (mformer_table7, row mformer_h): 381,377,936
#   a training batch: TokShift's 21 clips x 12 frames x 384^2 (msca_tokshift_sizes, tokshift_large_hr_12f):
#     37,158,912 pixels
#   a test batch: the same 21 videos x 10 x 3 views: 1,114,767,360 pixels
#   a frame's short side, scaled before the crop: 512 (msca_tokshift_sizes)
#   a schedule: 200 epochs, 62,400 optimiser steps, 8,000 of them warm-up (mformer_table5, Long Range Arena)
MAX_PARAMETERS = 4_000_000_000  # 10x 381 M, rounded up
MAX_TRAIN_PIXELS = 380_000_000  # 10x 37.2 M, rounded up
MAX_TEST_PIXELS = 11_200_000_000  # 10x 1.11 G, rounded up
MAX_SHORT_SIDE = 5_120  # 10x 512
MAX_EPOCHS = 2_000  # 10x 200
MAX_STEPS = 1_000_000  # 10x 62,400, rounded up
# A video frame as decoded, before the test transform scales it down: 10x a Full-HD frame (1920 x 1080, the size
# EPIC-KITCHENS-100 is recorded at). Read from the stream's header, so a file that states a larger frame is refused
# before one is decoded.
MAX_FRAME_PIXELS = 20_736_000
# The largest value a paper configuration gives each integer argument of its model (a nested one by its own name);
# the bound is 10x it, and 10x the largest of them all for an argument no paper configuration sets.
LARGEST_MODEL_ARGUMENTS = {
    "embed_dim": 1024, "representation_size": 1024, "img_size": 384, "num_prototypes": 256, "budget": 256,
    "num_verbs": 97, "num_frames": 32, "num_backward": 32, "num_forward": 32, "num_joints": 25, "depth": 24,
    "num_heads": 16, "exchange_blocks": 11, "shift_last_blocks": 8, "pose_dim": 3, "tubelet_size": 2}

ALLOW_FLAG = "--allow-large"
_allowed = False


class RunTooLargeError(ValueError):
    """A run past a bound of its size (parameters, a batch's pixels, its schedule), without ``--allow-large``."""


@contextlib.contextmanager
def allowing_large(allowed: bool = True) -> Iterator[None]:
    """While it lasts (``allowed``), runs past the bounds are planned and built as any other."""
    global _allowed
    before, _allowed = _allowed, _allowed or allowed
    try:
        yield
    finally:
        _allowed = before


def batch_pixels(cfg: RunConfig) -> tuple[int, int]:
    """(pixels of a training batch: clips x frames x crop^2; of a test batch: videos x views x frames x crop^2)."""
    data = cfg.data
    clip = data.num_frames * data.crop_size ** 2
    return data.batch_size * clip, data.batch_size * data.test_clips * data.test_crops * clip


def model_argument_bound(name: str) -> int:
    """The largest value an integer model argument ``name`` may take without ``--allow-large``."""
    return 10 * LARGEST_MODEL_ARGUMENTS.get(name, max(LARGEST_MODEL_ARGUMENTS.values()))


def check_model_arguments(cfg: RunConfig, kwargs: Mapping[str, Any], at: str = "") -> None:
    """Refuse, in one line naming the run and the argument, an integer model argument (``kwargs``, nested mappings
    too) past its bound (``model_argument_bound``); nothing while ``allowing_large``."""
    if _allowed:
        return
    for name, value in kwargs.items():
        if isinstance(value, Mapping):
            check_model_arguments(cfg, value, f"{at}{name}.")
        elif isinstance(value, int) and not isinstance(value, bool) and value > model_argument_bound(name):
            raise RunTooLargeError(f"{cfg.table}/{cfg.row}/{cfg.column}: model {at}{name}={value} is past the bound "
                                   f"of {model_argument_bound(name):,} (10x the largest paper configuration); "
                                   f"pass {ALLOW_FLAG} where the hardware has room")


def check_run_size(cfg: RunConfig, model: nn.Module | None = None) -> None:
    """Refuse, in one line naming the run, the fields and the bound, a run whose batches or schedule (and, given
    its ``model``, parameters) pass the bounds; nothing while ``allowing_large``."""
    if _allowed:
        return
    data, train, test = cfg.data, *batch_pixels(cfg)
    sizes = f"data.batch_size={data.batch_size}, data.num_frames={data.num_frames}, data.crop_size={data.crop_size}"
    found = []
    if train > MAX_TRAIN_PIXELS:
        found.append((f"a training batch of {train:,} pixels ({sizes})", f"{MAX_TRAIN_PIXELS:,}"))
    if test > MAX_TEST_PIXELS:
        found.append((f"a test batch of {test:,} pixels ({sizes}, data.test_clips={data.test_clips}, "
                      f"data.test_crops={data.test_crops})", f"{MAX_TEST_PIXELS:,}"))
    sides = [("data.train_scale", max(data.train_scale, default=0)),
             ("data.options.test_short_side", data.options.get("test_short_side"))]
    for name, side in sides:
        if isinstance(side, (int, float)) and side > MAX_SHORT_SIDE:
            found.append((f"{name} (a frame's short side) of {side:g} pixels", f"{MAX_SHORT_SIDE:,}"))
    if cfg.optim.epochs > MAX_EPOCHS:
        found.append((f"optim.epochs={cfg.optim.epochs}", f"{MAX_EPOCHS:,} epochs"))
    for name, steps in (("trainer.max_steps", cfg.trainer.max_steps), ("optim.warmup_steps", cfg.optim.warmup_steps)):
        if steps is not None and steps > MAX_STEPS:
            found.append((f"{name}={steps}", f"{MAX_STEPS:,} steps"))
    if model is not None and (parameters := sum(p.numel() for p in model.parameters())) > MAX_PARAMETERS:
        found.append((f"a model of {parameters:,} parameters ({cfg.model.name} with model.overrides "
                       f"{_shown(cfg.model.overrides)})", f"{MAX_PARAMETERS:,}"))
    if found:
        what, bound = found[0]
        raise RunTooLargeError(f"{cfg.table}/{cfg.row}/{cfg.column}: {what} is past the bound of {bound} (10x the "
                               f"largest paper configuration); pass {ALLOW_FLAG} where the hardware has room")


def check_video_frames(what: str, width: int, height: int, frames: int) -> None:
    """Refuse, in one line naming the video (``what``), one whose frames, by its stream's header, are past
    ``MAX_FRAME_PIXELS``, or a clip of ``frames`` of them past ``MAX_TEST_PIXELS``: before anything is decoded;
    nothing while ``allowing_large``."""
    if _allowed:
        return
    if width * height > MAX_FRAME_PIXELS:
        raise RunTooLargeError(f"{what}: its frames are {width}x{height} ({width * height:,} pixels), past the bound "
                               f"of {MAX_FRAME_PIXELS:,} (10x a 1920x1080 frame); pass {ALLOW_FLAG} where the "
                               f"hardware has room")
    if frames * width * height > MAX_TEST_PIXELS:
        raise RunTooLargeError(f"{what}: {frames} frames of {width}x{height} to decode ({frames * width * height:,} "
                               f"pixels), past the bound of {MAX_TEST_PIXELS:,}; pass {ALLOW_FLAG} where the "
                               f"hardware has room")


def _shown(overrides: Mapping[str, Any]) -> str:
    text = ", ".join(f"{key}={value}" for key, value in overrides.items())
    return "{" + (text if len(text) <= 120 else text[:117] + "...") + "}"
