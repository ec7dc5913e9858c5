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

``--query T,Y,X`` is the video's frame and pixel, mapped to the clip and through the test view's resize and crop
(``attention_clip.place_query``; the caption says where it landed); default, as the papers' figures: in the clip's
first frame, on the moving thing where the generated sample records its box, else at the centre. The clip and its
video are ``experiments.harness.attention_clip``'s, the model and its weights ``experiments.harness.row_model``'s.
``experiments.harness.attention_tracking`` holds the tracking score of docs/attention_tracking.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from data.command_line import count

from .attention_clip import (  # noqa: F401  (the clip's names, read from here too)
    SEGMENT_SETS,
    Clip,
    Frames,
    Query,
    ThingBoxes,
    captioned,
    centre_clip,
    check_query,
    generated_frames,
    input_geometry,
    load_clip,
    make_clip,
    parse_query,
    pipeline_clip,
    place_query,
    video_file_frames,
)
from .row_model import build_row_model, data_classes, load_state_file, pipeline_data, row_config  # noqa: F401

FAMILIES = ("mformer", "cast", "d3da")


# ---- the row's model ----------------------------------------------------------------------------------------------


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
    the query windows that hold the joint (the module averages their outputs); modal tokens left out. A joint in
    none of those windows' keys is NaN: the query cannot attend to it (0 would say it could, and did not)."""
    frames, joints = record.layout["frames"], record.layout["joints"]
    out = np.zeros((frames, joints))
    reached = np.zeros(joints, dtype=bool)
    windows = [d for d, held in enumerate(record.layout["query_windows"]) if joint in held]
    for d in windows:
        position = record.layout["query_windows"][d].index(joint)
        weights = record.weights["windows"][0, d].mean(0)[position * frames + frame]  # over (l a) keys
        keys = record.layout["key_windows"][d]
        grid = weights[: len(keys) * frames].reshape(len(keys), frames).double().numpy()
        for slot, key_joint in enumerate(keys):
            out[:, key_joint] += grid[slot] / len(windows)
            reached[key_joint] = True
    out[:, ~reached] = np.nan
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
    labels = [f"t={step} ({clip.frame_label(step * embed.tubelet_size)})" for step in range(len(frames))]
    thing = None if clip.thing is None else clip.thing.patches(embed.tubelet_size, tuple(embed.grid_size[1:]),
                                                                embed.patch_size)
    # divided attention's temporal stage has one key a step, the query's own location: its map there is the design's
    construction = "the temporal stage's map at the other steps is the query's own location, by construction" \
        if kind == "divided" else None
    image = frame_maps(frames, maps, token[0], (query.x + 0.5, query.y + 0.5), title, labels, thing, construction)
    return {f"mformer_fig1_fig4_{kind}": image}


def cast_figures(model: Any, clip: Clip, query: Query) -> dict[str, np.ndarray]:
    from models.cast.experts import FRAME_OFFSET, FRAME_STRIDE

    from .attention_figures import cast_windows
    from .attention_measures import read_exchanges

    exchanges = read_exchanges(model)  # each direction where its output is read, as the measure takes it
    names = [f"exchange.{index}.{d}" for d, index in exchanges.items()]
    _, records = _forward(model, clip.video, names)
    if len(records) != 2 or {r.layout["window"] for r in records} != {"time", "space"}:
        raise ValueError("Figure 3(c) needs both directions with T2S over time and S2T over space; this row's "
                         f"exchange has {[(r.name, r.layout['window']) for r in records]}")
    patch = model.spatial.patch_size
    side = model.img_size // patch
    step, cell = query.frame // FRAME_STRIDE, (query.y // patch, query.x // patch)
    t2s, s2t = cast_maps(_last(records, "t2s"), _last(records, "s2t"), step, cell[0] * side + cell[1])
    frames = clip.frames[FRAME_OFFSET::FRAME_STRIDE]
    title = (f"B-CAST T2S of exchange {exchanges['t2s']}, S2T of exchange {exchanges['s2t']} (the last whose output "
             f"a head reads), mean over heads: {clip.source}")
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
        grid = pixels.shape[:3]  # the reference cells tile the clip: (steps, rows, columns)
        # each point on the frame it samples, the one nearest its time coordinate (as the measure counts it)
        flat = pixels.reshape(-1, 3)
        sampled = np.clip(np.rint(flat[:, 2]), 0, len(clip.frames) - 1).astype(int)
        points = [flat[sampled == frame] for frame in range(len(clip.frames))]
        reference = (query.frame * grid[0] // len(clip.frames), query.y * grid[1] // size, query.x * grid[2] // size)
        query_point = pixels[reference]
        title = f"3DTS sampling points, block {last}, each on the frame it samples: {clip.source}"
        figures["d3da_a3_a5_sampling_points"] = sampling_points(
            clip.frames, points, int(np.clip(np.rint(query_point[2]), 0, len(clip.frames) - 1)), query_point,
            (query.x + 0.5, query.y + 0.5), query.frame, title)
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
    from .sizes import allowing_large

    with allowing_large(args.allow_large):  # the bound on a video's frames (sizes.check_video_frames)
        cfg, model = build_row_model(args)
        kind = family(model)
        clip = load_clip(cfg, args)
    query, caption = place_query(clip, args.query, cfg.data.crop_size)
    clip = captioned(clip, caption)
    out = Path(args.out) if args.out else Path(args.runs_dir) / cfg.table / cfg.row / "attention"
    for path in write_figures(FIGURES[kind](model, clip, query), out):
        print(path)
    return 0


def add_command(sub: Any) -> None:
    """Adds ``attention`` to ``python -m experiments``."""
    from .sizes import ALLOW_FLAG
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
                        help="the video's frame and pixel of the query, mapped through the test view's resize and "
                             "crop (a sample of the test pipeline: the clip's frame and the model input's pixel; "
                             "default: the moving thing's centre in the clip's first frame where the generated "
                             "sample records it, else that frame's centre)")
    parser.add_argument("--out", metavar="DIR", help="where the PNGs and the TensorBoard file go "
                                                     "(default: <runs-dir>/<table>/<row>/attention)")
    parser.add_argument("--runs-dir", default="runs")
    parser.add_argument(ALLOW_FLAG, action="store_true",
                        help="decode a video whose frames are past the size bound (10x a 1920x1080 frame)")
    parser.set_defaults(fn=cmd_attention)


__all__ = ["Clip", "Frames", "Query", "add_command", "centre_clip", "cmd_attention", "motionformer_maps"]
