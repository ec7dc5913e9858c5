"""The clip ``python -m experiments attention`` draws (``experiments.harness.attention``), and its query.

The clip is the row's frames at its stride from the centre of a video (``centre_clip``), through the row's test
transform (its short-side resize and centre crop): a generated validation sample rendered in memory as the set's
writer renders it, or a user's video file, of which only the clip's frames are decoded, after the frame size its
stream's header states has passed the bound of ``experiments.harness.sizes`` (``check_video_frames``). A set of
untrimmed videos (``SEGMENT_SETS``) and a real dataset give their sample through the row's own test pipeline.

``--query T,Y,X`` is the video's frame T and its pixel (Y, X), mapped to the clip (the nearest of its frames) and
through the resize and crop to the model input's pixel; the mapping is said in the figure's caption
(``place_query``). A sample from the test pipeline, whose video the figure does not see, takes a frame of the clip
and a pixel of the model's input. A video shorter than the clip's span repeats its last frame, and the panels say
which frames are repeats (``Clip.frame_label``). Where a generated sample records its moving thing's box in every
frame, the clip holds the patches inside it at each token step (``ThingBoxes``, ``box_patches``).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from data.command_line import counts

from .row_model import pipeline_data


@dataclass(frozen=True)
class Query:
    frame: int
    y: int
    x: int


# ``--query T,Y,X``: a frame and a pixel of the video, three whole numbers in ASCII digits
parse_query = counts(("T", "Y", "X"), 0, 1_000_000, "frame and pixel indices", into=Query)


def check_query(query: Query, num_frames: int, size: int) -> None:
    """One line naming the query and the clip's bounds when it lies outside the clip."""
    if not 0 <= query.frame < num_frames:
        raise ValueError(f"--query {query.frame},{query.y},{query.x}: frame {query.frame} is outside the clip's "
                         f"{num_frames} frames (0-{num_frames - 1})")
    if not (0 <= query.y < size and 0 <= query.x < size):
        raise ValueError(f"--query {query.frame},{query.y},{query.x}: pixel ({query.y}, {query.x}) is outside the "
                         f"model's {size}x{size} input frame")


def box_patches(boxes: np.ndarray, frames: Sequence[int], frames_per_step: int, grid: tuple[int, int], patch: float,
                period: float, offset: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """Which patches hold part of the thing's box at each token step: (T', H, W) bool.

    Args:
        boxes: (frames of the video, 4) rows (cx, cy, half width, half height), in the model input's pixels (the
            video's scaled by the test transform's resize).
        frames: the video frames of the clip, in order (``centre_clip``).
        frames_per_step: clip frames per token step (the tubelet's depth; 1 for a frame-wise model).
        grid: (H, W) patches of a step. patch: a patch's side in the model input's pixels.
        period: the torus' side in the model input's pixels (the generated frame's side, scaled): a box that wraps
            around a border holds the patches on both sides.
        offset: (top, left) of the model's crop in the resized frame.

    A patch is "inside" when it overlaps the box of any of the step's frames (their union): at tiny scale a thing
    is smaller than a patch, and often covers no patch's centre.
    """
    rows, cols = grid
    y = offset[0] + (np.arange(rows) + 0.5) * patch
    x = offset[1] + (np.arange(cols) + 0.5) * patch
    steps = len(frames) // frames_per_step
    inside = np.zeros((steps, rows, cols), dtype=bool)
    for step in range(steps):
        for frame in frames[step * frames_per_step:(step + 1) * frames_per_step]:
            cx, cy, half_w, half_h = boxes[frame]
            dx = (x - cx + period / 2) % period - period / 2
            dy = (y - cy + period / 2) % period - period / 2
            # a patch overlaps the box when their centres are closer than the sum of their half sides
            inside[step] |= (np.abs(dy)[:, None] < half_h + patch / 2) & (np.abs(dx)[None, :] < half_w + patch / 2)
    return inside


@dataclass(frozen=True)
class ThingBoxes:
    """A generated clip's moving thing: ``boxes`` (clip frames, 4) rows (cx, cy, half width, half height) in the model
    input's pixels (the video's, scaled by the test transform's resize), ``period`` the torus' side there, ``offset``
    (top, left) of the model's crop in the resized frame."""

    boxes: np.ndarray
    period: float
    offset: tuple[int, int]

    def patches(self, frames_per_step: int, grid: tuple[int, int], patch: float) -> np.ndarray:
        """The patches inside the thing's box at each token step, (T', H, W) bool (``box_patches``): what the
        tracking score counts as the thing."""
        return box_patches(self.boxes, range(len(self.boxes)), frames_per_step, grid, patch, self.period,
                           self.offset)


@dataclass
class Clip:
    """The model's input and what the figures show: ``video`` (1, C, T, H, W) normalised, ``frames`` (T, H, W, 3)
    uint8 as cropped, ``pose`` (1, T, J, 2) 1-based pixel joints of the crop or None, ``source`` for titles,
    ``query`` the paper's query where the sample knows its moving thing (its centre in the first frame) or None,
    ``thing`` that thing's boxes in the model input's pixels where the sample records them, else None;
    ``frame_indices`` the video's frame of each clip frame and ``geometry`` (scale, top, left) of the resize and
    crop from the video's pixels to the input's, with the video's ``video_size`` (H, W): None for a sample of the
    test pipeline."""

    video: Any
    frames: np.ndarray
    pose: Any
    source: str
    query: Query | None = None
    thing: ThingBoxes | None = None
    frame_indices: tuple[int, ...] | None = None
    geometry: tuple[float, int, int] | None = None
    video_size: tuple[int, int] | None = None

    def frame_label(self, position: int) -> str:
        """Clip frame ``position`` as a panel names it: the video's frame, and whether it repeats the one before
        (a video shorter than the clip's span)."""
        if self.frame_indices is None:
            return f"frame {position}"
        index = self.frame_indices[position]
        repeated = position > 0 and self.frame_indices[position - 1] == index
        return f"frame {index}" + (" repeated" if repeated else "")

    def repeats(self) -> str:
        """The caption's words on repeated frames, '' where the clip has none."""
        if self.frame_indices is None or len(set(self.frame_indices)) == len(self.frame_indices):
            return ""
        first = next(i for i in range(1, len(self.frame_indices))
                     if self.frame_indices[i] == self.frame_indices[i - 1])
        return (f"the video is shorter than the clip's span: clip frames {first}-{len(self.frame_indices) - 1} "
                f"repeat its frame {self.frame_indices[first]}")


def place_query(clip: Clip, query: Query | None, size: int) -> tuple[Query, str]:
    """(the query as a clip frame and a pixel of the model's ``size`` x ``size`` input, the caption's words on it).
    ``query``: the video's frame and pixel (a pipeline sample's: the clip's frame and the input's pixel); None:
    the sample's paper query, else the first frame's centre. One line naming the query where it lies outside the
    clip, the video or the crop."""
    if query is None:
        placed = clip.query or Query(0, size // 2, size // 2)
        what = "the moving thing's centre" if clip.query else "the centre"
        return placed, f"query: {what} of clip frame 0, input pixel ({placed.y}, {placed.x})"
    if clip.frame_indices is None or clip.geometry is None:
        check_query(query, len(clip.frames), size)
        return query, f"query: clip frame {query.frame}, pixel ({query.y}, {query.x}) of the model's input"
    named = f"--query {query.frame},{query.y},{query.x}"
    indices = clip.frame_indices
    if not min(indices) - 1 < query.frame <= max(indices) + max(1, _step(indices)) - 1:
        raise ValueError(f"{named}: frame {query.frame} is outside the clip's video frames {min(indices)}-"
                         f"{max(indices)} ({len(indices)} frames from the video's centre)")
    position = min(range(len(indices)), key=lambda i: (abs(indices[i] - query.frame), i))
    height, width = clip.video_size
    if not (0 <= query.y < height and 0 <= query.x < width):
        raise ValueError(f"{named}: pixel ({query.y}, {query.x}) is outside the video's {height}x{width} frame")
    scale, top, left = clip.geometry
    y, x = int((query.y + 0.5) * scale) - top, int((query.x + 0.5) * scale) - left
    if not (0 <= y < size and 0 <= x < size):
        rows = _span(top, size, scale, height)
        columns = _span(left, size, scale, width)
        raise ValueError(f"{named}: pixel ({query.y}, {query.x}) of the video is outside the model's centre crop "
                         f"(rows {rows}, columns {columns} of the video)")
    nearest = "" if indices[position] == query.frame else f" (nearest in the clip: frame {indices[position]})"
    caption = (f"query: video frame {query.frame}{nearest}, pixel ({query.y}, {query.x}) of its {height}x{width} "
               f"frame -> clip frame {position}, input pixel ({y}, {x}) after the test view's resize (x{scale:.3g}) "
               f"and {size}x{size} centre crop")
    return Query(position, y, x), caption


def _step(indices: tuple[int, ...]) -> int:
    steps = [b - a for a, b in zip(indices, indices[1:]) if b > a]
    return min(steps) if steps else 1


def _span(offset: int, size: int, scale: float, limit: int) -> str:
    """The video's pixels along one axis that the crop [offset, offset + size) of the resized frame keeps."""
    # video pixel v lands in resized pixel floor((v + 0.5) * scale): kept where that lies in the crop
    first = max(0, int(np.ceil(offset / scale - 0.5)))
    last = min(limit - 1, int(np.ceil((offset + size) / scale - 0.5)) - 1)
    return f"{first}-{last}"


def centre_clip(total: int, num_frames: int, stride: int) -> list[int]:
    """The row's frames at its stride, centred in the video (the last frame repeated in a short video)."""
    span = (num_frames - 1) * stride + 1
    start = max((total - span) // 2, 0)
    return [min(start + i * stride, total - 1) for i in range(num_frames)]


@dataclass
class Frames:
    """A video before the transform: ``frames`` (N, H, W, 3) uint8, all of its frames or, with ``held``, those of
    ``held`` (the video's frame of each row; ``total`` the video's count); ``joints`` (N, J, 2) 1-based pixels or
    None, ``thing_boxes`` (N, 4) the moving thing's box per frame (``motion_pairs.thing_box``) or None."""

    frames: np.ndarray
    joints: np.ndarray | None
    source: str
    thing_boxes: np.ndarray | None = None
    held: tuple[int, ...] | None = None
    total: int | None = None

    @property
    def num_frames(self) -> int:
        """The video's frame count."""
        return len(self.frames) if self.total is None else self.total

    def rows(self, indices: list[int]) -> list[int]:
        """The rows of ``frames`` that hold the video's frames ``indices``."""
        if self.held is None:
            return list(indices)
        where = {index: row for row, index in enumerate(self.held)}
        return [where[i] for i in indices]


def generated_frames(cfg: Any, index: int) -> Frames:
    """Sample ``index`` of the row's generated validation set, rendered with the set's own renderer, seed and label
    order; with the moving thing's boxes where the set records them (``synth_motion_pairs``)."""
    from data.synthetic import SYNTHETIC_SETS, synthetic_params
    from data.synthetic.seeding import LABELS, balanced_labels, split_rng, video_rng

    spec = SYNTHETIC_SETS.get(cfg.data.dataset)
    module = importlib.import_module(spec.write.__module__) if spec else None
    render = getattr(module, "_render", None)
    if render is None:
        raise ValueError(f"{cfg.table}/{cfg.row}: its data {cfg.data.dataset} is not a generated set of trimmed clips; "
                         f"give a video with --video FILE")
    params = synthetic_params(**(cfg.data.synthetic_params or {}))
    if not 0 <= index < params["num_val"]:
        raise ValueError(f"--sample {index}: the generated {spec.name} validation set of {cfg.table} has "
                         f"{params['num_val']} samples (0-{params['num_val'] - 1})")
    classes = params["num_classes"] or spec.num_classes
    label = balanced_labels(split_rng(params["seed"], "val", LABELS), params["num_val"], classes)[index]
    source = f"{spec.name} val sample {index} ({spec.class_names[label]})"
    rng, shape = video_rng(params["seed"], "val", index), (label, params["size"], params["num_video_frames"])
    if hasattr(module, "scene"):  # the set records its things' boxes: the paper's query goes on the moving one
        frames, _, boxes = module.scene(rng, *shape)
        return Frames(frames, None, source, boxes[module.MOVING_THING[module.CLASSES[label][1]]])
    out = render(rng, *shape)
    frames, extra = (out if isinstance(out, tuple) else (out, None))
    joints = extra + 0.5 if spec.annotation_format == "pennaction" else None  # as written: 1-based pixels
    return Frames(frames, joints, source)


def video_file_frames(path: Path, cfg: Any) -> Frames:
    """The frames of a user's video file that the row's clip takes (``centre_clip``), and only those, decoded
    after the frame size in the stream's header has passed the bound (``sizes.check_video_frames``); a file that
    is not a video is one line."""
    from data.video_io import Video, VideoDecodeError

    from .sizes import check_video_frames

    if not path.exists():
        raise FileNotFoundError(f"{path}: no such video file")
    try:
        with Video(path) as video:
            held = sorted(set(centre_clip(video.num_frames, cfg.data.num_frames, cfg.data.frame_stride or 1)))
            check_video_frames(str(path), video.width, video.height, len(held))
            start = held[0] / video.fps  # from the clip's first frame: the decoder seeks there
            frames = video.get_clip(start, start, frame_indices=held).permute(1, 2, 3, 0).numpy()
            total = video.num_frames
    except (VideoDecodeError, OSError) as err:
        raise ValueError(f"{path}: not a readable video ({str(err).splitlines()[0] if str(err) else type(err)})"
                         ) from None
    return Frames(frames, None, path.name, held=tuple(held), total=total)


def input_geometry(cfg: Any, frame_shape: tuple[int, int]) -> tuple[float, int, int]:
    """How the row's test transform maps a video's pixels to the model input's: (scale, top, left) of the short-side
    resize and the centre crop (``data.transforms.TestTransform``)."""
    from data.transforms import uniform_crop_offsets

    height, width = frame_shape
    short_side = (cfg.data.options or {}).get("test_short_side") or cfg.data.crop_size
    scale = short_side / min(height, width)
    top, left = uniform_crop_offsets(round(height * scale), round(width * scale), cfg.data.crop_size, 1)
    return scale, top, left


def make_clip(cfg: Any, video: Frames) -> Clip:
    import torch

    from data.transforms import TestTransform

    options = cfg.data.options or {}
    picked = centre_clip(video.num_frames, cfg.data.num_frames, cfg.data.frame_stride or 1)
    rows = video.rows(picked)
    pixels = torch.from_numpy(np.ascontiguousarray(video.frames[rows])).permute(3, 0, 1, 2)  # (C, T, H, W)
    sample: dict[str, Any] = {"video": pixels}
    if video.joints is not None:
        sample.update(pose=torch.from_numpy(video.joints[rows]).float(), pose_space="pixel")
    transform = TestTransform(cfg.data.crop_size, 1, options.get("test_short_side"),
                              options.get("mean", (0.5, 0.5, 0.5)), options.get("std", (0.5, 0.5, 0.5)))
    out = transform(sample)
    mean = torch.tensor(transform.mean).view(3, 1, 1, 1)
    std = torch.tensor(transform.std).view(3, 1, 1, 1)
    shown = ((out["video"][0] * std + mean).clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(1, 2, 3, 0).numpy()
    pose = out["pose"][0:1] if video.joints is not None else None
    geometry = input_geometry(cfg, video.frames.shape[1:3])
    query = thing = None
    if video.thing_boxes is not None:  # the moving thing's centre in the clip's first frame, in the input's pixels
        scale, top, left = geometry
        cx, cy = video.thing_boxes[rows[0], :2]
        y, x = int(cy * scale - top), int(cx * scale - left)
        query = Query(0, y, x) if 0 <= y < cfg.data.crop_size and 0 <= x < cfg.data.crop_size else None
        thing = ThingBoxes(video.thing_boxes[rows] * scale, video.frames.shape[2] * scale, (top, left))
    return Clip(out["video"], shown, pose, video.source, query, thing, tuple(picked), geometry,
                tuple(video.frames.shape[1:3]))


def load_clip(cfg: Any, args: argparse.Namespace) -> Clip:
    if args.video:
        if "pose" in cfg.task or cfg.data.dataset == "synth_pose":
            raise ValueError(f"--video {args.video}: {cfg.table}/{cfg.row}'s model reads joints too, which a video "
                             f"file does not give; use --sample K")
        return make_clip(cfg, video_file_frames(Path(args.video), cfg))
    from data.synthetic import SYNTHETIC_SETS

    if cfg.data.dataset in SEGMENT_SETS or cfg.data.dataset not in SYNTHETIC_SETS:
        return pipeline_clip(cfg, args.sample)
    return make_clip(cfg, generated_frames(cfg, args.sample))


def captioned(clip: Clip, caption: str) -> Clip:
    """``clip`` whose source, the figures' titles, also says ``caption`` and its repeated frames."""
    words = "; ".join(w for w in (clip.source, caption, clip.repeats()) if w)
    return dataclasses.replace(clip, source=words)


# Generated sets of untrimmed videos, whose samples are action segments: a sample is drawn through the row's own test
# pipeline (its first view), not re-rendered. So is a sample of a real dataset under --data-root.
SEGMENT_SETS = ("synth_verbnoun",)


def pipeline_clip(cfg: Any, index: int) -> Clip:
    """Validation sample ``index`` of the row's data as the row's test pipeline gives it (the first of its views),
    with its joints for a model that reads them."""
    import torch

    with pipeline_data(cfg) as dm:
        loader = dm.test_dataloader()
        total = len(loader.dataset)
        if not 0 <= index < total:
            raise ValueError(f"--sample {index}: the {cfg.data.dataset} validation set of {cfg.table} has {total} "
                             f"samples (0-{total - 1})")
        batch = next(b for i, b in enumerate(loader) if i == index // loader.batch_size)
    video = batch["video"][index % loader.batch_size]
    pose = batch["pose"][index % loader.batch_size] if "pose" in batch else None
    if video.ndim == 5:  # (V, C, T, H, W): the first view
        video, pose = video[0], (pose[0] if pose is not None else None)
    mean, std = (torch.tensor(v, dtype=video.dtype).view(3, 1, 1, 1) for v in (dm.mean, dm.std))
    shown = ((video * std + mean).clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(1, 2, 3, 0).numpy()
    shown = shown[..., ::-1].copy() if dm.channel_order == "BGR" else shown  # the figures show RGB
    return Clip(video[None], shown, None if pose is None else pose[None], f"{cfg.data.dataset} val sample {index}")


__all__ = ["SEGMENT_SETS", "Clip", "Frames", "Query", "ThingBoxes", "box_patches", "captioned", "centre_clip",
           "check_query", "generated_frames", "input_geometry", "load_clip", "make_clip", "parse_query",
           "pipeline_clip", "place_query", "video_file_frames"]
