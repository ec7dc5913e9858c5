"""The measures of docs/attention_windows_and_points.md: CAST Figure 3(c) (where T2S and S2T put their mass: own
token, along time, along space, elsewhere) and 3D-Deformable Figures A3-A5 (the share of the deformable
attention's sampling points inside the person's box), each against the chance the definition states.

The functions here are pure numpy over captured weights and points (``models.attention.capture``); they are
checked on hand-built weights whose answer is known exactly (tests/experiments/harness/test_attention_measures.py).
``batch_measures`` runs a model over one batch of its test pipeline and returns the per-view values that
``attention_score`` averages.
"""

from __future__ import annotations

from typing import Any

import numpy as np

PARTS = ("own", "time", "space", "elsewhere")  # the partition of a CAST query's keys


def key_parts(window: str, num_steps: int, num_patches: int) -> np.ndarray:
    """(L, L) index into ``PARTS`` of each (query, key) pair of a window of shape ``window`` (the token orders of
    ``models.cast.layers.to_windows``: a ``time`` window's tokens are steps, a ``space`` window's patches, a
    ``space_time`` window's (t n))."""
    if window == "time":
        steps, patches = np.arange(num_steps), np.zeros(num_steps, dtype=int)
    elif window == "space":
        steps, patches = np.zeros(num_patches, dtype=int), np.arange(num_patches)
    elif window == "space_time":
        steps, patches = np.divmod(np.arange(num_steps * num_patches), num_patches)
    else:
        raise ValueError(f"a CAST window is time, space or space_time, got {window!r}")
    same_step = steps[:, None] == steps[None, :]
    same_patch = patches[:, None] == patches[None, :]
    return np.select([same_step & same_patch, same_patch, same_step], [0, 1, 2], default=3)


def window_mass(weights: np.ndarray, window: str, num_steps: int, num_patches: int) -> dict[str, dict[str, float]]:
    """Where the queries of one CAST cross-attention put their weight.

    Args:
        weights: (windows, L, L) head-averaged softmax weights, each row a query over its window's keys.
        window, num_steps, num_patches: the window's shape and the (T, N) grid it cuts (``key_parts``).

    Returns ``{"share": {part: mean over queries of the row's mass on that part}, "chance": {part: the uniform
    map's}}`` over ``PARTS`` (a part the window does not hold has share and chance 0).
    """
    parts = key_parts(window, num_steps, num_patches)
    if weights.shape[1:] != parts.shape:
        raise ValueError(f"window weights {weights.shape[1:]} do not fit a {window} window of {num_steps} steps x "
                         f"{num_patches} patches {parts.shape}")
    one_hot = parts[..., None] == np.arange(len(PARTS))  # (L, L, parts)
    share = np.einsum("wqk,qkp->p", weights, one_hot) / (weights.shape[0] * weights.shape[1])
    chance = one_hot.mean(axis=(0, 1))
    return {"share": dict(zip(PARTS, share.tolist())), "chance": dict(zip(PARTS, chance.tolist()))}


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


def _mean_heads(tensor: Any) -> np.ndarray:
    return tensor.double().mean(dim=1).numpy()  # (windows, heads, L, L) -> (windows, L, L)


def read_exchanges(model: Any) -> dict[str, str]:
    """direction -> the exchange measured (docs/attention_windows_and_points.md): the last whose output of that
    direction is read. S2T's output goes to the temporal expert's tokens, which the verb head reads: the last
    exchange. T2S's goes to the spatial expert's patch tokens, which no head reads after the last block (EK-100's
    noun head reads the spatial CLS token): the exchange before the last."""
    if not model.exchange:
        raise ValueError("this CAST row has no exchange (exchange='none'): no T2S or S2T attention to measure")
    order = sorted(model.exchange, key=int)
    chosen = {"s2t": order[-1]} | ({"t2s": order[-2]} if len(order) > 1 else {})
    return {d: index for d, index in chosen.items() if getattr(model.exchange[index], d) is not None}


def cast_batch(model: Any, video: Any) -> list[dict[str, Any]]:
    """The window mass of T2S and S2T, each at the exchange ``read_exchanges`` names, on one batch of views
    ``video`` (V, C, T, H, W): one entry per view, ``{direction: window_mass(...)}`` plus each direction's window
    shape and exchange."""
    import torch

    from models.attention.capture import capture_attention

    exchanges = read_exchanges(model)
    names = [f"exchange.{index}.{d}" for d, index in exchanges.items()]
    with torch.no_grad(), capture_attention(model, names) as records:
        model(video)
    views = []
    for view in range(video.shape[0]):
        entry = {}
        for record in records:
            layout = record.layout
            per_view = layout["num_patches"] if layout["window"] == "time" else \
                layout["num_steps"] if layout["window"] == "space" else 1
            weights = _mean_heads(record.weights["windows"][view * per_view:(view + 1) * per_view])
            direction = record.name.rsplit(".", 1)[1]
            entry[direction] = {"window": layout["window"], "exchange": int(exchanges[direction]),
                                **window_mass(weights, layout["window"], layout["num_steps"], layout["num_patches"])}
        views.append(entry)
    return views


def d3da_batch(model: Any, inputs: dict[str, Any], margin: float) -> list[dict[str, Any]]:
    """The sampling points of the last block's RGB deformable attention on one batch of views ``inputs`` ({"video":
    (V, C, T, H, W), "pose": (V, T, J, 2) 1-based pixels of the input}), against each view's person boxes (margin
    in the input's pixels): one entry per view, ``{"deformed": points_on_subject(...), "reference": ...}``."""
    import torch

    from models.attention.capture import capture_attention

    from .attention import sampled_pixels

    last = len(model.blocks) - 1
    if model.blocks[last].rgb is None:
        raise ValueError("this 3D-Deformable row has no RGB branch: no sampling points to measure")
    with torch.no_grad(), capture_attention(model, [f"blocks.{last}.rgb.attn"]) as records:
        model(inputs)
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


class _ViewRecord:
    """One view's slice of a deformable-attention record, in the shape ``attention.sampled_pixels`` reads."""

    def __init__(self, weights: dict[str, Any], layout: dict[str, Any]) -> None:
        self.weights, self.layout = weights, layout





# ---- a run's score over its test pipeline ----------------------------------------------------------------------------


def test_inputs(cfg: Any, model: Any, limit: int | None) -> Any:
    """The model inputs of the row's test pipeline, batch by batch, the views folded into the batch as the test
    folds them (the task's own data module and LightningModule): yields (inputs, videos in the batch), at most
    ``limit`` videos. The data module is ``attention.pipeline_data``'s (read in this process, scratch files in a
    temporary folder, never the run's)."""
    from .attention import pipeline_data
    from .tasks import get_task

    with pipeline_data(cfg) as dm:
        system = get_task(cfg.task).system(cfg, model, dm)
        seen = 0
        for batch in dm.test_dataloader():
            x, views = system.fold_views(system.model_input(batch))
            videos = len(batch["label"]) if not isinstance(batch["label"], dict) else \
                len(next(iter(batch["label"].values())))
            if limit is not None and seen + videos > limit:
                keep = (limit - seen) * (views or 1)
                x = {k: v[:keep] for k, v in x.items()} if isinstance(x, dict) else x[:keep]
                videos = limit - seen
            yield x, videos
            seen += videos
            if limit is not None and seen >= limit:
                return


def score_windows(cfg: Any, model: Any, limit: int | None) -> dict[str, Any]:
    """A CAST run's window mass (docs/attention_windows_and_points.md): per direction, its window shape and each
    part's mean share over every view of every test video, beside the uniform map's."""
    views, samples = [], 0
    for x, videos in test_inputs(cfg, model, limit):
        views += cast_batch(model, x)
        samples += videos
    out: dict[str, Any] = {}
    for direction in views[0]:
        first = views[0][direction]
        out[direction] = {"window": first["window"], "exchange": first["exchange"], "chance": first["chance"],
                          "share": {part: float(np.mean([v[direction]["share"][part] for v in views]))
                                    for part in PARTS}}
    return {**out, "samples": samples, "views": len(views)}


def score_points(cfg: Any, model: Any, limit: int | None) -> dict[str, Any]:
    """A 3D-Deformable run's sampling points on the person (docs/attention_windows_and_points.md): share, chance and
    excess over every view of every test video, the same for the reference points, and the offsets' gain."""
    from data.synthetic import synthetic_params
    from data.synthetic.pose import subject_margin

    from .attention import input_geometry

    size = synthetic_params(**(cfg.data.synthetic_params or {}))["size"]
    margin = subject_margin(size) * input_geometry(cfg, (size, size))[0]
    views, samples = [], 0
    for x, videos in test_inputs(cfg, model, limit):
        views += d3da_batch(model, x, margin)
        samples += videos

    def mean(kind: str, name: str) -> float:
        return float(np.mean([view[kind][name] for view in views]))

    share, chance, reference = mean("deformed", "share"), mean("deformed", "chance"), mean("reference", "share")
    reference_chance = mean("reference", "chance")
    return {"share": share, "chance": chance, "excess": share - chance, "reference_share": reference,
            "reference_chance": reference_chance, "reference_excess": reference - reference_chance,
            "offsets_gain": share - reference, "samples": samples, "views": len(views)}


__all__ = ["PARTS", "cast_batch", "d3da_batch", "key_parts", "points_on_subject", "read_exchanges", "score_points",
           "score_windows", "subject_boxes", "test_inputs", "window_mass"]
