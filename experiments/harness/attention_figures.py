"""Drawing the papers' attention figures (matplotlib, Agg): frames in a row, a map or points over each frame, the
query marked. Each function returns the figure as an RGB uint8 array (H, W, 3), which ``experiments.harness.attention``
writes as a PNG and as a TensorBoard image."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import numpy as np

QUERY_COLOUR = "cyan"  # a cross of its own: the generated sets draw red crosses among their shapes
THING_COLOUR = "white"  # the moving thing's patches (Motionformer's figure), apart from the jet map's colours


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: no display is needed or touched
    import matplotlib.pyplot as plt

    return plt


def _rendered(fig) -> np.ndarray:
    fig.canvas.draw()
    image = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    _pyplot().close(fig)
    return image


def _panels(rows: int, columns: int, title: str):
    plt = _pyplot()
    width = max(1.8 * columns, 6.0)
    fig, axes = plt.subplots(rows, columns, figsize=(width, 1.9 * rows + 0.6), squeeze=False)
    fig.suptitle(textwrap.fill(title, int(width * 14)), fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    return fig, axes


def _overlay(ax, frame: np.ndarray, heat: np.ndarray | None) -> None:
    """``frame`` (H, W, 3) uint8 with ``heat`` (h, w), scaled to its own maximum, stretched over it."""
    height, width = frame.shape[:2]
    ax.imshow(frame, extent=(0, width, height, 0))
    if heat is not None:
        top = float(heat.max())
        ax.imshow(heat / top if top > 0 else heat, cmap="jet", alpha=0.5, vmin=0, vmax=1,
                  extent=(0, width, height, 0), interpolation="nearest")


def _mark(ax, x: float, y: float) -> None:
    ax.plot([x], [y], marker="x", color=QUERY_COLOUR, markersize=9, markeredgewidth=2)


def frame_maps(frames: Sequence[np.ndarray], maps: np.ndarray, query_step: int, query_xy: tuple[float, float],
               title: str, labels: Sequence[str], thing: np.ndarray | None = None) -> np.ndarray:
    """Motionformer Fig. 1/4: one panel per time step, its frame under that step's map (each map scaled to its own
    maximum: where in this frame the query looks), the query's pixel marked in its own step; where the sample knows
    its moving thing, ``thing`` (steps, h, w) bool, the outline of the patches the tracking score counts as on it."""
    fig, axes = _panels(1, len(frames), title)
    for step, (ax, frame, heat, label) in enumerate(zip(axes[0], frames, maps, labels)):
        _overlay(ax, frame, heat)
        ax.set_title(label, fontsize=7)
        if thing is not None:
            _outline(ax, thing[step], frame.shape[0] / thing.shape[1], frame.shape[1] / thing.shape[2])
        if step == query_step:
            _mark(ax, *query_xy)
    return _rendered(fig)


def _outline(ax, cells: np.ndarray, cell_h: float, cell_w: float) -> None:
    """The border of the region ``cells`` (h, w) bool of the patch grid: each edge between a cell in it and one out
    of it (or the frame's edge)."""
    padded = np.pad(cells, 1)
    for row, col in zip(*np.nonzero(cells)):
        y0, y1, x0, x1 = row * cell_h, (row + 1) * cell_h, col * cell_w, (col + 1) * cell_w
        for outside, xs, ys in ((not padded[row, col + 1], (x0, x1), (y0, y0)),  # above
                                (not padded[row + 2, col + 1], (x0, x1), (y1, y1)),  # below
                                (not padded[row + 1, col], (x0, x0), (y0, y1)),  # left
                                (not padded[row + 1, col + 2], (x1, x1), (y0, y1))):  # right
            if outside:
                ax.plot(xs, ys, color=THING_COLOUR, linewidth=1.2)


def cast_windows(frames: Sequence[np.ndarray], t2s: np.ndarray, s2t: np.ndarray, query_step: int,
                 query_cell: tuple[int, int], grid: tuple[int, int], query_xy: tuple[float, float],
                 title: str) -> np.ndarray:
    """CAST Fig. 3(c): top row T2S, the query's weights over the T steps at its own patch (a cell per frame);
    bottom row S2T, its weights over the patches of its own step (one frame)."""
    fig, axes = _panels(2, len(frames), title)
    for step, (ax, frame) in enumerate(zip(axes[0], frames)):
        cell = np.zeros(grid)
        cell[query_cell] = t2s[step]
        _overlay(ax, frame, cell if t2s.max() > 0 else None)
        ax.set_title(f"T2S t={step}: {t2s[step]:.2f}", fontsize=7)
        if step == query_step:
            _mark(ax, *query_xy)
    for step, ax in enumerate(axes[1]):
        if step == query_step:
            _overlay(ax, frames[step], s2t)
            _mark(ax, *query_xy)
            ax.set_title(f"S2T t={step}", fontsize=7)
        else:
            ax.axis("off")
    return _rendered(fig)


def sampling_points(frames: Sequence[np.ndarray], points: Sequence[np.ndarray], query_step: int,
                    query_point: np.ndarray, query_xy: tuple[float, float], title: str) -> np.ndarray:
    """3D-Deformable A3-A5: per frame, the (x, y) pixels where the deformable attention sampled the tokens of that
    frame's reference cells; the query cell's sample (red circle) and the query (cross) in its frame."""
    fig, axes = _panels(1, len(frames), title)
    for step, (ax, frame, xy) in enumerate(zip(axes[0], frames, points)):
        _overlay(ax, frame, None)
        ax.scatter(xy[:, 0], xy[:, 1], s=6, c="yellow", edgecolors="black", linewidths=0.3)
        ax.set_xlim(0, frame.shape[1])
        ax.set_ylim(frame.shape[0], 0)
        ax.set_title(f"t={step}", fontsize=7)
        if step == query_step:
            ax.scatter([query_point[0]], [query_point[1]], s=40, facecolors="none", edgecolors=QUERY_COLOUR)
            _mark(ax, *query_xy)
    return _rendered(fig)


def pose_attention(frames: Sequence[np.ndarray], joints: np.ndarray, weights: np.ndarray, limbs: Sequence[tuple],
                   query_step: int, query_joint: int, title: str) -> np.ndarray:
    """3D-Deformable A2: per frame, the skeleton, each joint coloured by the query joint's joint stride attention
    weight on it (joints outside the query's windows: grey); the query joint circled in its frame."""
    fig, axes = _panels(1, len(frames), title)
    top = float(weights.max()) or 1.0
    for step, (ax, frame) in enumerate(zip(axes[0], frames)):
        _overlay(ax, frame, None)
        xy = joints[step]
        for a, b in limbs:
            ax.plot(xy[[a, b], 0], xy[[a, b], 1], color="white", linewidth=0.8)
        ax.scatter(xy[:, 0], xy[:, 1], s=18, c=weights[step] / top, cmap="jet", vmin=0, vmax=1,
                   edgecolors="black", linewidths=0.3)
        ax.set_xlim(0, frame.shape[1])
        ax.set_ylim(frame.shape[0], 0)
        ax.set_title(f"t={step}", fontsize=7)
        if step == query_step:
            ax.scatter([xy[query_joint, 0]], [xy[query_joint, 1]], s=60, facecolors="none",
                       edgecolors=QUERY_COLOUR, linewidths=1.5)
    return _rendered(fig)


__all__ = ["cast_windows", "frame_maps", "pose_attention", "sampling_points"]
