"""The attention tracking score of docs/attention_tracking.md (Motionformer Fig. 1 and 4's claim, measured): for
queries on the moving thing in one step, the share of each query's attention in every other step that falls on the
patches that overlap the thing's true box there, against chance (the share of that step's patches that do) and
against two maps that carry no motion information (``baseline_maps``: the thing's box at the query's step held
still, and the query's own location), scored the same way.

``box_patches`` turns a generated clip's boxes (``data.synthetic.motion_pairs.scene``: (cx, cy, half width, half
height) in the video's pixels, on the torus) into the patches inside them at each token step; ``tracking_score``
scores attention maps (``experiments.harness.attention.motionformer_maps``) against them. Pure numpy: the score is
checked on hand-built maps whose answer is known exactly (tests/experiments/harness/test_attention_command.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def box_patches(boxes: np.ndarray, frames: Sequence[int], frames_per_step: int, grid: tuple[int, int], patch: float,
                period: float, offset: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """Which patches hold part of the thing's box at each token step: (T', H, W) bool.

    Args:
        boxes: (frames of the video, 4) rows (cx, cy, half width, half height), in the model input's pixels (the
            video's scaled by the test transform's resize).
        frames: the video frames of the clip, in order (``attention.centre_clip``).
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


def query_cells(inside: np.ndarray, step: int) -> list[tuple[int, int, int]]:
    """The queries of the score: every patch (step, y, x) that overlaps the box at ``step``."""
    return [(step, int(y), int(x)) for y, x in zip(*np.nonzero(inside[step]))]


def tracking_score(maps: np.ndarray, query_step: int, inside: np.ndarray) -> dict[str, float]:
    """The score of one clip: ``maps`` (Q, T', H, W), the Q queries' attention weights over every step's patches
    (mean over heads); ``inside`` (T', H, W) from ``box_patches``. Each step's map is renormalised to sum to 1 over
    its patches (where the query's attention in that step goes, whatever the step's total).

    Returns ``share`` (the mean, over queries and over the steps other than ``query_step``, of the map's mass inside
    the box), ``chance`` (the mean over those steps of the share of patches inside the box: a map that ignores the
    thing), ``excess`` = share - chance, and ``queries`` (Q). With no query, share, chance and excess are NaN.
    """
    others = [t for t in range(inside.shape[0]) if t != query_step]
    if maps.shape[0] == 0 or not others:
        return {"share": float("nan"), "chance": float("nan"), "excess": float("nan"), "queries": 0}
    if maps.shape[1:] != inside.shape:
        raise ValueError(f"attention maps {maps.shape[1:]} and box patches {inside.shape} differ in (T', H, W)")
    mass = maps[:, others].reshape(maps.shape[0], len(others), -1)
    mass = mass / mass.sum(axis=-1, keepdims=True)
    box = inside[others].reshape(len(others), -1)
    share = float((mass * box).sum(axis=-1).mean())
    chance = float(box.mean(axis=-1).mean())
    return {"share": share, "chance": chance, "excess": share - chance, "queries": int(maps.shape[0])}


def baseline_maps(queries: Sequence[tuple[int, int, int]], inside: np.ndarray) -> dict[str, np.ndarray]:
    """The maps of docs/attention_tracking.md's two baselines for ``queries`` (``query_cells``), each (Q, T', H, W):
    ``static``, uniform at every step over the patches in the box at the query's step (where the thing was, held
    still); ``locality``, all the mass on the query's own location at every step."""
    static, locality = np.zeros((len(queries), *inside.shape)), np.zeros((len(queries), *inside.shape))
    for i, (step, y, x) in enumerate(queries):
        held = inside[step] / inside[step].sum()
        static[i] = np.broadcast_to(held, inside.shape)
        locality[i, :, y, x] = 1.0
    return {"static": static, "locality": locality}


def scores_with_baselines(maps: np.ndarray, queries: Sequence[tuple[int, int, int]], inside: np.ndarray
                          ) -> dict[str, float]:
    """``tracking_score`` of ``maps`` for ``queries`` (all at one step), with the share each baseline map
    (``baseline_maps``) gets on the same queries and steps: ``static_share``, ``locality_share``."""
    query_step = queries[0][0] if queries else 0
    score = tracking_score(maps, query_step, inside)
    baselines = baseline_maps(queries, inside) if queries else {}
    for name in ("static", "locality"):
        score[f"{name}_share"] = tracking_score(baselines[name], query_step, inside)["share"] if queries \
            else float("nan")
    return score


def stronger_baseline(static_share: float, locality_share: float) -> tuple[str, float]:
    """(name, share) of the stronger baseline of a run: the larger share over its samples (static on a tie)."""
    return ("locality", locality_share) if locality_share > static_share else ("static", static_share)


__all__ = ["baseline_maps", "box_patches", "query_cells", "scores_with_baselines", "stronger_baseline",
           "tracking_score"]
