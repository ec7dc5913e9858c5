"""3D-Deformable's attention figures (supplementary A2: the joint stride attention of the query's joint over the pose
tokens; A3-A5: where the deformable attention sampled in every frame) and their measure
(docs/attention_windows_and_points.md: the share of the sampling points inside the person's box, against the share of
the frame the box covers), over Figure A1's runs of its trained model (``FIGURE_A1_TRAIN_COLUMN``).

``sampled_pixels`` turns a captured record's ``grid_sample`` coordinates into the input's pixels and frames;
``subject_boxes`` and ``points_on_subject`` are pure numpy, checked on hand-built points whose answer is known exactly
(tests/experiments/harness/test_attention_measures.py); ``score_points`` runs a run's model over its test pipeline.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..harness import attention_figures as draw
from ..harness.attention import Clip, Measure, Query, capture_forward, last_record, register_figures
from ..harness.attention_score import pipeline_inputs

DEFINITION = "docs/attention_windows_and_points.md"
FIGURE_A1_TRAIN_COLUMN = "12 frames"  # the model Figure A1 trains (tables.py); its other columns test it
UNREACHABLE_COLOUR = "grey"  # a joint the query's windows cannot attend to (A2)


# ---- the maps and their figures -----------------------------------------------------------------------------------


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


def sampling_points(frames: Sequence[np.ndarray], points: Sequence[np.ndarray], query_frame: int,
                    query_point: np.ndarray | None, query_xy: tuple[float, float], query_step: int,
                    title: str) -> np.ndarray:
    """A3-A5: per frame, the (x, y) pixels of the deformable attention's sampling points that sample that frame (the
    frame nearest each point's time coordinate, as the measure counts them; yellow dots), wherever their reference
    cell lies. The query (cyan cross) in its frame ``query_step``; the query cell's own sampling point circled in
    cyan on the frame it samples, ``query_frame``."""
    fig, _, (panels,) = draw.panels(len(frames), title)
    for step, (ax, frame, xy) in enumerate(zip(panels, frames, points)):
        draw.overlay(ax, frame, None)
        ax.scatter(xy[:, 0], xy[:, 1], s=6, c="yellow", edgecolors="black", linewidths=0.3)
        ax.set_title(f"frame {step}: {len(xy)} points", fontsize=7)
        if step == query_frame and query_point is not None:
            ax.scatter([query_point[0]], [query_point[1]], s=40, facecolors="none", edgecolors=draw.QUERY_COLOUR)
        if step == query_step:
            draw.mark(ax, *query_xy)
    return draw.rendered(fig)


def pose_attention(frames: Sequence[np.ndarray], joints: np.ndarray, weights: np.ndarray, limbs: Sequence[tuple],
                   query_step: int, query_joint: int, title: str) -> np.ndarray:
    """A2: per frame, the skeleton, each joint coloured by the query joint's joint stride attention weight on it
    divided by the mean weight over the joints it can reach (what an even spread over them gives), on the figure's
    one scale; joints outside the query's windows (NaN weights) grey, unfilled: nothing of the query can reach them.
    The query joint circled in cyan in its frame."""
    reachable = ~np.isnan(weights)
    even = float(weights[reachable].mean()) if reachable.any() else 1.0
    ratios = weights / (even if even > 0 else 1.0)
    norm = draw.ratio_scale(float(np.nanmax(ratios)) if reachable.any() else 1.0)
    fig, axes, (panels,) = draw.panels(len(frames), title)
    for step, (ax, frame) in enumerate(zip(panels, frames)):
        draw.overlay(ax, frame, None)
        xy = joints[step]
        for a, b in limbs:
            ax.plot(xy[[a, b], 0], xy[[a, b], 1], color="white", linewidth=0.8)
        seen = reachable[step]
        ax.scatter(xy[seen, 0], xy[seen, 1], s=18, c=ratios[step, seen], cmap=draw.MAP_COLOURS, norm=norm,
                   edgecolors="black", linewidths=0.3)
        ax.scatter(xy[~seen, 0], xy[~seen, 1], s=18, facecolors="none", edgecolors=UNREACHABLE_COLOUR,
                   linewidths=0.8)
        ax.set_title(f"t={step}", fontsize=7)
        if step == query_step:
            ax.scatter([xy[query_joint, 0]], [xy[query_joint, 1]], s=60, facecolors="none",
                       edgecolors=draw.QUERY_COLOUR, linewidths=1.5)
    draw.colour_bar(fig, axes, norm, "weight ÷ mean over reachable joints")
    return draw.rendered(fig)


# ---- the measure: the sampling points on the person ---------------------------------------------------------------


def subject_boxes(joints: np.ndarray, margin: float, size: int) -> np.ndarray:
    """(T, 4) boxes (x0, y0, x1, y1) spanning each frame's joints (T, J, 2), in the input's continuous pixel
    coordinates (pixel i spans [i, i + 1]), widened by ``margin`` on every side and clipped to the frame."""
    low, high = joints.min(axis=1) - margin, joints.max(axis=1) + margin
    return np.concatenate([low, high], axis=1).clip(0, size)


def points_on_subject(points: np.ndarray, boxes: np.ndarray, size: int) -> dict[str, float]:
    """The share of sampling points (..., 3) = (x, y, t) in the input's pixels and frames that fall inside the box of
    their nearest frame (``boxes`` (T, 4) from ``subject_boxes``), and the chance of that: the mean over the points
    of their frame's box area as a share of the frame (``size`` x ``size``)."""
    flat = points.reshape(-1, 3)
    frame = np.clip(np.rint(flat[:, 2]).astype(int), 0, len(boxes) - 1)
    x0, y0, x1, y1 = boxes[frame].T
    inside = (flat[:, 0] >= x0) & (flat[:, 0] <= x1) & (flat[:, 1] >= y0) & (flat[:, 1] <= y1)
    area = (x1 - x0) * (y1 - y0) / size**2
    return {"share": float(inside.mean()), "chance": float(area.mean())}


class _ViewRecord:
    """One view's slice of a deformable-attention record, in the shape ``sampled_pixels`` reads."""

    def __init__(self, weights: dict[str, Any], layout: dict[str, Any]) -> None:
        self.weights, self.layout = weights, layout


def d3da_batch(model: Any, inputs: dict[str, Any], margin: float) -> list[dict[str, Any]]:
    """The sampling points of the last block's RGB deformable attention on one batch of views ``inputs`` ({"video":
    (V, C, T, H, W), "pose": (V, T, J, 2) 1-based pixels of the input}), against each view's person boxes (margin
    in the input's pixels): one entry per view, ``{"deformed": points_on_subject(...), "reference": ...}``."""
    last = len(model.blocks) - 1
    if model.blocks[last].rgb is None:
        raise ValueError("this 3D-Deformable row has no RGB branch: no sampling points to measure")
    _, records = capture_forward(model, inputs, [f"blocks.{last}.rgb.attn"])
    record, size = records[0], model.img_size
    views = []
    for view in range(inputs["video"].shape[0]):
        boxes = subject_boxes(inputs["pose"][view].double().numpy() - 0.5, margin, size)
        one = {name: record.weights[name][view:view + 1] for name in ("sampling_points", "offsets")}
        deformed = sampled_pixels(_ViewRecord(one, record.layout), size)
        reference = sampled_pixels(_ViewRecord({"sampling_points": one["sampling_points"] - one["offsets"]},
                                               record.layout), size)
        views.append({"deformed": points_on_subject(deformed, boxes, size),
                      "reference": points_on_subject(reference, boxes, size)})
    return views


def score_points(cfg: Any, model: Any, limit: int | None, prepared: dict | None = None) -> dict[str, Any]:
    """A 3D-Deformable run's sampling points on the person (docs/attention_windows_and_points.md): share, chance and
    excess over every view of every test video, the same for the reference points, and the offsets' gain."""
    from data.synthetic import synthetic_params
    from data.synthetic.pose import subject_margin

    from ..harness.attention_clip import input_geometry

    size = synthetic_params(**(cfg.data.synthetic_params or {}))["size"]
    margin = subject_margin(size) * input_geometry(cfg, (size, size))[0]
    views, samples = [], 0
    for x, videos in pipeline_inputs(cfg, model, limit):
        views += d3da_batch(model, x, margin)
        samples += videos

    def mean(kind: str, name: str) -> float:
        return float(np.mean([view[kind][name] for view in views]))

    share, chance, reference = mean("deformed", "share"), mean("deformed", "chance"), mean("reference", "share")
    reference_chance = mean("reference", "chance")
    return {"share": share, "chance": chance, "excess": share - chance, "reference_share": reference,
            "reference_chance": reference_chance, "reference_excess": reference - reference_chance,
            "offsets_gain": share - reference, "samples": samples, "views": len(views)}


POINTS = Measure("attention_points", "attention_points.json", DEFINITION,
                 lambda cfg: cfg.model.name.startswith("d3da_") and cfg.data.dataset == "synth_pose"
                 and cfg.column == FIGURE_A1_TRAIN_COLUMN, score_points,
                 lambda run: f"excess {run['excess']:+.4f}, offsets' gain {run['offsets_gain']:+.4f}",
                 f"3D-Deformable's Figure A1 (d3da_figureA1), its {FIGURE_A1_TRAIN_COLUMN} column")


@register_figures("models.d3da.model.CrossModalDeformableTransformer", "3D-Deformable A2-A5", measure=POINTS)
def d3da_figures(model: Any, clip: Clip, query: Query) -> dict[str, np.ndarray]:
    """A3-A5 where the last block has an RGB branch, A2 where it has a pose branch."""
    from data.synthetic import POSE_LIMBS

    last = len(model.blocks) - 1
    names = [f"blocks.{last}.{branch}.attn" for branch in ("rgb", "pose") if getattr(model.blocks[last], branch)]
    _, records = capture_forward(model, {"video": clip.video, "pose": clip.pose}, names)
    figures = {}
    size = model.img_size
    if model.blocks[last].rgb is not None:
        pixels = sampled_pixels(last_record(records, "rgb.attn"), size)
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
        weights = joint_stride_weights(last_record(records, "pose.attn"), query.frame, nearest)
        title = f"joint stride attention of joint {nearest}, block {last}, mean over heads: {clip.source}"
        figures["d3da_a2_joint_stride"] = pose_attention(clip.frames, joints, weights, POSE_LIMBS, query.frame,
                                                         nearest, title)
    return figures


__all__ = ["DEFINITION", "FIGURE_A1_TRAIN_COLUMN", "POINTS", "d3da_batch", "d3da_figures", "joint_stride_weights",
           "points_on_subject", "pose_attention", "sampled_pixels", "sampling_points", "score_points",
           "subject_boxes"]
