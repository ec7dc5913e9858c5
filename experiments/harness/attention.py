"""``python -m experiments attention ID --rows ROW``: the papers' attention figures drawn from a row's model.

The row's model is built as the harness builds it (``plan.resolve_runs``, ``tasks.build_model``) at ``--scale``, with
weights from a trained run (``--run RUN_DIR``: its last checkpoint), a file (``--weights FILE``, a state dict of the
row's model) or the authors' released checkpoint (``--released NAME``, read and checked as ``evaluate`` does; paper
scale). Its input is one clip: sample K of the row's generated validation set, rendered in memory exactly as the
set's writer renders it (``--sample K``, default 0), or a user's video file (``--video FILE``); the centre clip of
the row's frames at its stride, through the row's test transform (centre crop). A set of untrimmed videos
(``SEGMENT_SETS``) and a real dataset under ``--data-root`` give sample K through the row's own test pipeline (its
first view, with its joints where the model reads them). The attention of the last block is
taken with ``models.attention.capture`` (the logits unchanged) and drawn in the paper's layout, one PNG per figure
in ``--out`` and the same images in a TensorBoard event file there:

- Motionformer (joint, divided, trajectory rows), Fig. 1 and 4: the query's attention map over every frame;
- CAST, Fig. 3(c): T2S along time at the query's patch, S2T along space in the query's step;
- 3D-Deformable, A2: joint stride attention from the query's joint over the pose tokens; A3-A5: where the deformable
  attention sampled in every frame.

``--query T,Y,X`` is a frame of the clip and a pixel of the model's input frame (default, as the papers' figures: in
the first frame, on the moving thing where the generated sample records its box, else at the centre).
``experiments.harness.attention_tracking`` holds the tracking score of docs/attention_tracking.md.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from data.command_line import count

from .attention_tracking import box_patches

FAMILIES = ("mformer", "cast", "d3da")


@dataclass
class Clip:
    """The model's input and what the figures show: ``video`` (1, C, T, H, W) normalised, ``frames`` (T, H, W, 3)
    uint8 as cropped, ``pose`` (1, T, J, 2) 1-based pixel joints of the crop or None, ``source`` for titles,
    ``query`` the paper's query where the sample knows its moving thing (its centre in the first frame) or None,
    ``thing`` that thing's boxes in the model input's pixels where the sample records them, else None."""

    video: Any
    frames: np.ndarray
    pose: Any
    source: str
    query: Query | None = None
    thing: ThingBoxes | None = None


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


@dataclass(frozen=True)
class Query:
    frame: int
    y: int
    x: int


def parse_query(text: str) -> Query:
    parts = text.split(",")
    try:
        frame, y, x = (int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--query {text!r}: expected T,Y,X (a frame and a pixel, integers)") from None
    return Query(frame, y, x)


def check_query(query: Query, num_frames: int, size: int) -> None:
    """One line naming the query and the clip's bounds when it lies outside the clip."""
    if not 0 <= query.frame < num_frames:
        raise ValueError(f"--query {query.frame},{query.y},{query.x}: frame {query.frame} is outside the clip's "
                         f"{num_frames} frames (0-{num_frames - 1})")
    if not (0 <= query.y < size and 0 <= query.x < size):
        raise ValueError(f"--query {query.frame},{query.y},{query.x}: pixel ({query.y}, {query.x}) is outside the "
                         f"model's {size}x{size} input frame")


# ---- the row's model --------------------------------------------------------------------------------------------


def row_config(table: str, row: str, scale: str, column: str | None, data_root: str | None = None) -> Any:
    from .plan import resolve_runs

    configs = resolve_runs(table, scale, [row], 1, data_root)
    if column is not None:
        configs = [cfg for cfg in configs if cfg.column == column]
        if not configs:
            raise ValueError(f"{table} row {row} has no column {column!r} at {scale} scale")
    return configs[0]


def data_classes(cfg: Any) -> int | dict[str, int]:
    """The classes of the row's data: its generated set's (after ``num_classes``), or the configured count."""
    from data.synthetic import SYNTHETIC_SETS

    spec = SYNTHETIC_SETS.get(cfg.data.dataset)
    if spec is None:
        configured = cfg.model.overrides.get("num_classes")
        if configured is not None:
            return configured
        if cfg.data.root is None or not Path(cfg.data.root).is_dir():
            raise ValueError(f"{cfg.table}/{cfg.row}: its data {cfg.data.dataset} is not generated and the row names "
                             f"no num_classes: give --data-root DIR holding {cfg.data.dataset}/ (its annotations "
                             f"define the classes), --released NAME, or the row's tiny scale")
        with pipeline_data(cfg) as dm:
            return dm.num_classes
    if spec.verb_names:
        return {"verb": len(spec.verb_names), "noun": len(spec.noun_names)}
    return (cfg.data.synthetic_params or {}).get("num_classes") or spec.num_classes


def load_state_file(model: Any, path: Path) -> None:
    """Load a state dict (possibly a Lightning checkpoint's, wrapper prefixes stripped) strictly; a file that does
    not fit the row's model is one line naming it."""
    from models.weights import read_weights, strip_wrapper_prefixes

    if not path.exists():
        raise FileNotFoundError(f"{path}: no such weights file")
    if not path.is_file():
        raise ValueError(f"{path}: not a regular file (weights are read from a file)")
    state, _ = read_weights(path)
    state = strip_wrapper_prefixes(state, set(model.state_dict()))
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        what = f"lacks {missing[0]!r}" if missing else f"holds {unexpected[0]!r}, which the model has not"
        raise ValueError(f"{path}: not weights of this row's model ({type(model).__name__}): it {what} "
                         f"({len(missing)} missing, {len(unexpected)} unexpected keys)")


def build_row_model(args: argparse.Namespace) -> tuple[Any, Any]:
    """(cfg, model in eval mode) for the command's row and weights."""
    from .tasks import build_model

    if args.released:
        from models.released.base import load_into

        from .evaluate import check_checkpoint, resolve_evaluation

        evaluation = resolve_evaluation(args.table, args.rows, args.released, args.weights_dir, None, args.column)
        checked = check_checkpoint(evaluation)
        model = build_model(evaluation.cfg, evaluation.entry.expects["classes"])
        load_into(model, checked.reader, checked.checkpoint, checked.label, evaluation.entry.known())
        return evaluation.cfg, model.eval()
    cfg = row_config(args.table, args.rows, args.scale, args.column, args.data_root)
    model = build_model(cfg, data_classes(cfg))
    if args.run:
        from .run_dir import RunDir

        load_state_file(model, RunDir(Path(args.run)).last_checkpoint)
    elif args.weights:
        load_state_file(model, Path(args.weights))
    return cfg, model.eval()


def family(model: Any) -> str:
    from models.cast.model import CAST
    from models.d3da.model import CrossModalDeformableTransformer
    from models.video_vit import VideoViT

    if isinstance(model, CAST):
        return "cast"
    if isinstance(model, CrossModalDeformableTransformer):
        return "d3da"
    if isinstance(model, VideoViT):
        return "mformer"
    raise ValueError(f"{type(model).__name__}: no paper figure of its attention (the figures are Motionformer's, "
                     f"CAST's and 3D-Deformable's)")


# ---- the clip ----------------------------------------------------------------------------------------------------


def centre_clip(total: int, num_frames: int, stride: int) -> list[int]:
    """The row's frames at its stride, centred in the video (the last frame repeated in a short video)."""
    span = (num_frames - 1) * stride + 1
    start = max((total - span) // 2, 0)
    return [min(start + i * stride, total - 1) for i in range(num_frames)]


@dataclass
class Frames:
    """A video before the transform: ``frames`` (T, H, W, 3) uint8, ``joints`` (T, J, 2) 1-based pixels or None,
    ``thing_boxes`` (T, 4) the moving thing's box per frame (``motion_pairs.thing_box``) or None."""

    frames: np.ndarray
    joints: np.ndarray | None
    source: str
    thing_boxes: np.ndarray | None = None


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


def video_file_frames(path: Path) -> Frames:
    """All frames of a user's video file; a file that is not a video is one line."""
    from data.video_io import Video, VideoDecodeError

    if not path.exists():
        raise FileNotFoundError(f"{path}: no such video file")
    try:
        video = Video(path)
        frames = video.get_clip(0.0, video.num_frames / video.fps).permute(1, 2, 3, 0).numpy()
    except (VideoDecodeError, ValueError, OSError) as err:
        raise ValueError(f"{path}: not a readable video ({str(err).splitlines()[0] if str(err) else type(err)})"
                         ) from None
    return Frames(frames, None, path.name)


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
    picked = centre_clip(len(video.frames), cfg.data.num_frames, cfg.data.frame_stride or 1)
    pixels = torch.from_numpy(np.ascontiguousarray(video.frames[picked])).permute(3, 0, 1, 2)  # (C, T, H, W)
    sample: dict[str, Any] = {"video": pixels}
    if video.joints is not None:
        sample.update(pose=torch.from_numpy(video.joints[picked]).float(), pose_space="pixel")
    transform = TestTransform(cfg.data.crop_size, 1, options.get("test_short_side"),
                              options.get("mean", (0.5, 0.5, 0.5)), options.get("std", (0.5, 0.5, 0.5)))
    out = transform(sample)
    mean = torch.tensor(transform.mean).view(3, 1, 1, 1)
    std = torch.tensor(transform.std).view(3, 1, 1, 1)
    shown = ((out["video"][0] * std + mean).clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(1, 2, 3, 0).numpy()
    pose = out["pose"][0:1] if video.joints is not None else None
    query = thing = None
    if video.thing_boxes is not None:  # the moving thing's centre in the clip's first frame, in the input's pixels
        scale, top, left = input_geometry(cfg, video.frames.shape[1:3])
        cx, cy = video.thing_boxes[picked[0], :2]
        y, x = int(cy * scale - top), int(cx * scale - left)
        query = Query(0, y, x) if 0 <= y < cfg.data.crop_size and 0 <= x < cfg.data.crop_size else None
        thing = ThingBoxes(video.thing_boxes[picked] * scale, video.frames.shape[2] * scale, (top, left))
    return Clip(out["video"], shown, pose, video.source, query, thing)


def load_clip(cfg: Any, args: argparse.Namespace) -> Clip:
    if args.video:
        if "pose" in cfg.task or cfg.data.dataset == "synth_pose":
            raise ValueError(f"--video {args.video}: {cfg.table}/{cfg.row}'s model reads joints too, which a video "
                             f"file does not give; use --sample K")
        return make_clip(cfg, video_file_frames(Path(args.video)))
    from data.synthetic import SYNTHETIC_SETS

    if cfg.data.dataset in SEGMENT_SETS or cfg.data.dataset not in SYNTHETIC_SETS:
        return pipeline_clip(cfg, args.sample)
    return make_clip(cfg, generated_frames(cfg, args.sample))


# Generated sets of untrimmed videos, whose samples are action segments: a sample is drawn through the row's own test
# pipeline (its first view), not re-rendered. So is a sample of a real dataset under --data-root.
SEGMENT_SETS = ("synth_verbnoun",)


@contextmanager
def pipeline_data(cfg: Any) -> Iterator[Any]:
    """The row's data module, its validation split read (a generated set generated into the cache first), read in
    this process (one sample wants no loader workers); its scratch files go to a temporary folder."""
    import dataclasses
    import tempfile

    from .tasks import get_task

    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, num_workers=0))
    with tempfile.TemporaryDirectory(prefix="vidrepro-attention-") as scratch:
        dm = get_task(cfg.task).datamodule(cfg, Path(scratch))
        dm.prepare_data()
        dm.setup("test")
        yield dm


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


# ---- the maps -----------------------------------------------------------------------------------------------------


def motionformer_maps(record: Any, query_token: tuple[int, int, int]) -> np.ndarray:
    """The query token's (t, y, x) attention over every step's patches, (T, H, W), mean over heads, each step's
    weights as the model normalises them: joint attention's row restricted to the step; trajectory attention's
    stage one (Eq. 4); divided attention's spatial stage in the query's step and its temporal stage elsewhere (the
    weight on the query's own location, the only key there besides, in the official block, the class token)."""
    t, h, w = record.layout["thw"]
    qt, qy, qx = query_token
    location = qy * w + qx
    index = qt * h * w + location  # among the patch tokens
    if record.kind == "joint":
        row = record.weights["all"][0].mean(0)[1 + index, 1:]
        return row.reshape(t, h, w).double().numpy()
    if record.kind == "trajectory":
        return record.weights["stage_one"][0].mean(0)[index].reshape(t, h, w).double().numpy()
    temporal = record.weights["temporal"][0].mean(0)[location, qt]  # (T,), or (1 + T) with the class token first
    if record.layout["temporal_keys"] == "cls+steps":  # the official divided block's temporal stage
        temporal = temporal[1:]
    maps = np.zeros((t, h, w))
    maps[:, qy, qx] = temporal.double().numpy()
    maps[qt] = record.weights["spatial"][0].mean(0)[qt, location, 1:].reshape(h, w).double().numpy()
    return maps


def cast_maps(t2s: Any, s2t: Any, step: int, patch: int) -> tuple[np.ndarray, np.ndarray]:
    """(T2S weights over the T steps at the query's patch, (T,); S2T weights over the N patches of its step, (N,)),
    mean over heads, for the first video of the batch (window b*N + n along time, b*T + t along space)."""
    along_time = t2s.weights["windows"][patch].mean(0)[step]
    along_space = s2t.weights["windows"][step].mean(0)[patch]
    return along_time.double().numpy(), along_space.double().numpy()


def sampled_pixels(record: Any, size: int) -> np.ndarray:
    """3DTS's sampling points of the first video as pixels (T~, H~, W~, 3): x, y in the input frame, t a frame
    index; from ``grid_sample``'s [-1, 1] coordinates with align_corners False."""
    points = record.weights["sampling_points"][0].double().numpy()
    t, _, _ = record.layout["thw"]
    pixels = np.empty_like(points)
    pixels[..., :2] = (points[..., :2] + 1) / 2 * size  # -1 is the frame's left/top edge, 1 its right/bottom edge
    pixels[..., 2] = (points[..., 2] + 1) / 2 * t - 0.5  # frame i's centre is at (2i + 1) / T - 1
    return pixels


def joint_stride_weights(record: Any, frame: int, joint: int) -> np.ndarray:
    """The query (joint, frame)'s joint stride attention on every (frame, joint), (T, J), mean over heads and over
    the query windows that hold the joint (the module averages their outputs); modal tokens left out."""
    frames, joints = record.layout["frames"], record.layout["joints"]
    out = np.zeros((frames, joints))
    windows = [d for d, held in enumerate(record.layout["query_windows"]) if joint in held]
    for d in windows:
        position = record.layout["query_windows"][d].index(joint)
        weights = record.weights["windows"][0, d].mean(0)[position * frames + frame]  # over (l a) keys
        keys = record.layout["key_windows"][d]
        grid = weights[: len(keys) * frames].reshape(len(keys), frames).double().numpy()
        for slot, key_joint in enumerate(keys):
            out[:, key_joint] += grid[slot] / len(windows)
    return out


# ---- the figures --------------------------------------------------------------------------------------------------


def _last(records: list, suffix: str) -> Any:
    """The record of the last module whose name ends with ``suffix``."""
    return [r for r in records if r.name.endswith(suffix)][-1]


def _forward(model: Any, batch: Any, names: list[str]) -> tuple[Any, list]:
    import torch

    from models.attention.capture import capture_attention

    with torch.no_grad(), capture_attention(model, names) as records:
        logits = model(batch)
    return logits, records


def mformer_figures(model: Any, clip: Clip, query: Query) -> dict[str, np.ndarray]:
    from .attention_figures import frame_maps

    embed = model.patch_embed
    last = f"blocks.{len(model.blocks) - 1}.attn"
    _, records = _forward(model, clip.video, [last])
    token = (query.frame // embed.tubelet_size, query.y // embed.patch_size, query.x // embed.patch_size)
    maps = motionformer_maps(records[0], token)
    frames = clip.frames[:: embed.tubelet_size][: maps.shape[0]]
    kind = records[0].kind
    title = f"{kind} attention, last block, mean over heads: {clip.source}"
    labels = [f"t={step} (frame {step * embed.tubelet_size})" for step in range(len(frames))]
    thing = None if clip.thing is None else clip.thing.patches(embed.tubelet_size, tuple(embed.grid_size[1:]),
                                                                embed.patch_size)
    image = frame_maps(frames, maps, token[0], (query.x + 0.5, query.y + 0.5), title, labels, thing)
    return {f"mformer_fig1_fig4_{kind}": image}


def cast_figures(model: Any, clip: Clip, query: Query) -> dict[str, np.ndarray]:
    from models.cast.experts import FRAME_OFFSET, FRAME_STRIDE

    from .attention_figures import cast_windows

    if not model.exchange:
        raise ValueError("this CAST row has no exchange (exchange='none'): no T2S or S2T attention to draw")
    last = max(model.exchange, key=int)
    exchange = model.exchange[last]
    names = [f"exchange.{last}.{d}" for d in ("t2s", "s2t") if getattr(exchange, d) is not None]
    _, records = _forward(model, clip.video, names)
    if len(records) != 2 or {r.layout["window"] for r in records} != {"time", "space"}:
        raise ValueError("Figure 3(c) needs both directions with T2S over time and S2T over space; this row's "
                         f"exchange has {[(r.name, r.layout['window']) for r in records]}")
    patch = model.spatial.patch_size
    side = model.img_size // patch
    step, cell = query.frame // FRAME_STRIDE, (query.y // patch, query.x // patch)
    t2s, s2t = cast_maps(_last(records, "t2s"), _last(records, "s2t"), step, cell[0] * side + cell[1])
    frames = clip.frames[FRAME_OFFSET::FRAME_STRIDE]
    title = f"B-CAST block {last}, mean over heads: {clip.source}"
    image = cast_windows(frames, t2s, s2t.reshape(side, side), step, cell, (side, side),
                         (query.x + 0.5, query.y + 0.5), title)
    return {"cast_fig3c": image}


def d3da_figures(model: Any, clip: Clip, query: Query) -> dict[str, np.ndarray]:
    from data.synthetic import POSE_LIMBS

    from .attention_figures import pose_attention, sampling_points

    last = len(model.blocks) - 1
    names = [f"blocks.{last}.{branch}.attn" for branch in ("rgb", "pose") if getattr(model.blocks[last], branch)]
    _, records = _forward(model, {"video": clip.video, "pose": clip.pose}, names)
    figures = {}
    size = model.img_size
    if model.blocks[last].rgb is not None:
        pixels = sampled_pixels(_last(records, "rgb.attn"), size)
        cell = 8 * pixels.shape[1] // size  # stride of the sampled grid in tokens (offset_stride)
        points = [pixels[step // cell].reshape(-1, 3) for step in range(len(clip.frames))]
        query_point = pixels[query.frame // cell, query.y // (8 * cell), query.x // (8 * cell)]
        title = f"3DTS sampling points, block {last}: {clip.source}"
        figures["d3da_a3_a5_sampling_points"] = sampling_points(clip.frames, points, query.frame, query_point,
                                                                (query.x + 0.5, query.y + 0.5), title)
    if model.blocks[last].pose is not None:
        joints = clip.pose[0].double().numpy() - 0.5  # 1-based pixel centres -> the frame's own coordinates
        nearest = int(np.argmin(((joints[query.frame] - [query.x + 0.5, query.y + 0.5]) ** 2).sum(-1)))
        weights = joint_stride_weights(_last(records, "pose.attn"), query.frame, nearest)
        title = f"joint stride attention of joint {nearest}, block {last}, mean over heads: {clip.source}"
        figures["d3da_a2_joint_stride"] = pose_attention(clip.frames, joints, weights, POSE_LIMBS, query.frame,
                                                         nearest, title)
    return figures


FIGURES = {"mformer": mformer_figures, "cast": cast_figures, "d3da": d3da_figures}


def write_figures(figures: dict[str, np.ndarray], out: Path) -> list[Path]:
    """Each figure as ``out/<name>.png`` and as an image of one TensorBoard event file in ``out``."""
    from PIL import Image
    from torch.utils.tensorboard import SummaryWriter

    out.mkdir(parents=True, exist_ok=True)
    paths = []
    writer = SummaryWriter(log_dir=str(out))
    try:
        for name, image in figures.items():
            path = out / f"{name}.png"
            Image.fromarray(image).save(path)
            writer.add_image(f"attention/{name}", image, 0, dataformats="HWC")
            paths.append(path)
    finally:
        writer.close()
    return paths


def cmd_attention(args: argparse.Namespace) -> int:
    cfg, model = build_row_model(args)
    kind = family(model)
    clip = load_clip(cfg, args)
    query = args.query or clip.query or Query(0, cfg.data.crop_size // 2, cfg.data.crop_size // 2)
    check_query(query, clip.frames.shape[0], cfg.data.crop_size)
    out = Path(args.out) if args.out else Path(args.runs_dir) / cfg.table / cfg.row / "attention"
    for path in write_figures(FIGURES[kind](model, clip, query), out):
        print(path)
    return 0


def add_command(sub: Any) -> None:
    """Adds ``attention`` to ``python -m experiments``."""
    from .spec import SCALES

    parser = sub.add_parser("attention", help="draw a row's attention in the layout of its paper's figures "
                                              "(Motionformer Fig. 1/4, CAST Fig. 3c, 3D-Deformable A2-A5)")
    parser.add_argument("table")
    parser.add_argument("--rows", required=True, metavar="ROW", help="the row whose model is drawn (see `show`)")
    parser.add_argument("--scale", choices=SCALES, default="tiny")
    parser.add_argument("--column", help="the column whose run is drawn, where the row has several (default: first)")
    weights = parser.add_mutually_exclusive_group()
    weights.add_argument("--run", metavar="RUN_DIR", help="a trained run folder: its last checkpoint")
    weights.add_argument("--released", metavar="NAME", help="an authors' checkpoint from the catalogue (paper scale)")
    weights.add_argument("--weights", metavar="FILE", help="a state dict of the row's model")
    parser.add_argument("--weights-dir", help="where --released names are found")
    parser.add_argument("--data-root", metavar="DIR",
                        help="where a paper-scale row's real dataset is (DIR/<dataset>/): --sample K is then its "
                             "validation sample K through the row's test pipeline")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--video", metavar="FILE", help="a video file (the row's frames from its centre)")
    source.add_argument("--sample", type=count(0, 100_000, "a sample index"), default=0,
                        help="sample K of the row's validation set: generated, or under --data-root (default 0)")
    parser.add_argument("--query", type=parse_query, metavar="T,Y,X",
                        help="frame and pixel of the query in the model's input (default: the moving thing's centre "
                             "in frame 0 where the generated sample records it, else frame 0's centre)")
    parser.add_argument("--out", metavar="DIR", help="where the PNGs and the TensorBoard file go "
                                                     "(default: <runs-dir>/<table>/<row>/attention)")
    parser.add_argument("--runs-dir", default="runs")
    parser.set_defaults(fn=cmd_attention)


__all__ = ["Clip", "Frames", "Query", "add_command", "centre_clip", "cmd_attention", "motionformer_maps"]
