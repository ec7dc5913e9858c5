"""Drawing the papers' attention figures (matplotlib, Agg): frames in rows of at most ``PER_ROW`` panels, a map or
points over each frame, the query marked with a cyan cross (``QUERY_COLOUR``). A figure's maps share one colour
scale, drawn as its colour bar: each weight divided by the uniform map's (what attention blind to everything puts
there), on a diverging scale centred at 1, so that a nearly uniform panel looks as neutral as it is and only a map
that concentrates looks hot. Each function returns the figure as an RGB uint8 array (H, W, 3), which
``experiments.harness.attention`` writes as a PNG and as a TensorBoard image."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence

import numpy as np

QUERY_COLOUR = "cyan"  # a cross of its own: the generated sets draw red crosses among their shapes
THING_COLOUR = "white"  # the moving thing's patches (Motionformer's figure), apart from the jet map's colours
UNREACHABLE_COLOUR = "grey"  # a joint the query's windows cannot attend to (3D-Deformable A2)
PER_ROW = 6  # panels a row: a 12-frame clip in two rows, each panel large enough to read
PANEL_INCHES = 1.9
DPI = 120
MAP_ALPHA = 0.6
MAP_COLOURS = "RdBu_r"  # blue below the uniform map, white at it, red above


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


def _panels(count: int, title: str, groups: int = 1):
    """A figure of ``groups`` groups of ``count`` panels each, every group in rows of at most ``PER_ROW``; returns
    (figure, one list of axes per group) with the unused axes hidden."""
    plt = _pyplot()
    columns = min(count, PER_ROW)
    rows_per_group = math.ceil(count / columns)
    rows = rows_per_group * groups
    width = PANEL_INCHES * columns + 1.2  # the colour bar's room
    fig, axes = plt.subplots(rows, columns, figsize=(width, PANEL_INCHES * rows + 0.9), squeeze=False, dpi=DPI)
    fig.suptitle(textwrap.fill(title, int(width * 11)), fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    flat = list(axes.flat)
    out = []
    for group in range(groups):
        mine = flat[group * rows_per_group * columns:(group + 1) * rows_per_group * columns]
        for ax in mine[count:]:
            ax.axis("off")
        out.append(mine[:count])
    return fig, axes, out


def _scale(top: float):
    """The figure's one scale over ratios to the uniform map: 0 to the largest ratio (at least 2), centred at 1."""
    from matplotlib.colors import TwoSlopeNorm

    return TwoSlopeNorm(vmin=0.0, vcenter=1.0, vmax=max(2.0, float(top)))


def _colour_bar(fig, axes, norm, label: str) -> None:
    import matplotlib.cm

    bar = fig.colorbar(matplotlib.cm.ScalarMappable(norm=norm, cmap=MAP_COLOURS), ax=axes.ravel().tolist(),
                       fraction=0.025, pad=0.02)
    bar.set_label(label, fontsize=7)
    bar.ax.tick_params(labelsize=6)


def _overlay(ax, frame: np.ndarray, heat: np.ndarray | None, norm=None) -> None:
    """``frame`` (H, W, 3) uint8 with ``heat`` (h, w, ratios to the uniform map; NaN: not drawn) on the figure's
    colour scale ``norm``, stretched over it."""
    height, width = frame.shape[:2]
    ax.imshow(frame, extent=(0, width, height, 0))
    if heat is not None:
        ax.imshow(heat, cmap=MAP_COLOURS, norm=norm, alpha=MAP_ALPHA, extent=(0, width, height, 0),
                  interpolation="nearest")
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)


def _mark(ax, x: float, y: float) -> None:
    ax.plot([x], [y], marker="x", color=QUERY_COLOUR, markersize=9, markeredgewidth=2)


def frame_maps(frames: Sequence[np.ndarray], maps: np.ndarray, query_step: int, query_xy: tuple[float, float],
               title: str, labels: Sequence[str], thing: np.ndarray | None = None,
               by_construction: str | None = None) -> np.ndarray:
    """Motionformer Fig. 1/4: one panel per time step, its frame under that step's map, the query's pixel marked
    (cyan cross) in its own step. Each step's map is renormalised to sum to 1 over the step's patches (where in
    that frame the query looks, as the tracking score reads it) and drawn as its ratio to the uniform map's share
    (1 / patches), every step on the figure's one scale. Where the sample knows its moving thing,
    ``thing`` (steps, h, w) bool: the white outline of the patches the tracking score counts as on it. A map fixed by
    the model's design rather than its weights says so: ``by_construction`` is added to the title and every step
    but the query's is marked "by construction"."""
    totals = maps.reshape(maps.shape[0], -1).sum(axis=1)
    ratios = maps / np.where(totals > 0, totals, 1.0)[:, None, None] * (maps.shape[1] * maps.shape[2])
    norm = _scale(float(ratios.max()))
    fig, axes, (panels,) = _panels(len(frames), title + (f"; {by_construction}" if by_construction else ""))
    for step, (ax, frame, heat, label) in enumerate(zip(panels, frames, ratios, labels)):
        _overlay(ax, frame, heat, norm)
        construction = "\nby construction" if by_construction and step != query_step else ""
        ax.set_title(label + construction, fontsize=7)
        if thing is not None:
            _outline(ax, thing[step], frame.shape[0] / thing.shape[1], frame.shape[1] / thing.shape[2])
        if step == query_step:
            _mark(ax, *query_xy)
    _colour_bar(fig, axes, norm, "step's share ÷ uniform's")
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
    """CAST Fig. 3(c): first group T2S, the query's weights over the T steps at its own patch (its cell in each
    frame, the weight in the panel's title); second group S2T, its weights over the patches of its own step (one
    frame). Each direction's weights drawn as their ratio to its uniform map's (1/T, 1/N), both on one scale; the
    query is the cyan cross."""
    t2s_ratio, s2t_ratio = t2s * len(t2s), s2t * s2t.size
    norm = _scale(float(max(t2s_ratio.max(), s2t_ratio.max())))
    fig, axes, (top, bottom) = _panels(len(frames), title, groups=2)
    for step, (ax, frame) in enumerate(zip(top, frames)):
        cell = np.full(grid, np.nan)  # only the query's own patch is a key of T2S's time window
        cell[query_cell] = t2s_ratio[step]
        _overlay(ax, frame, cell, norm)
        ax.set_title(f"T2S t={step}: {t2s[step]:.2f}", fontsize=7)
        if step == query_step:
            _mark(ax, *query_xy)
    for step, ax in enumerate(bottom):
        if step == query_step:
            _overlay(ax, frames[step], s2t_ratio, norm)
            _mark(ax, *query_xy)
            ax.set_title(f"S2T t={step}", fontsize=7)
        else:
            ax.axis("off")
    _colour_bar(fig, axes, norm, f"weight ÷ uniform's (1/{len(t2s)}, 1/{s2t.size})")
    return _rendered(fig)


def sampling_points(frames: Sequence[np.ndarray], points: Sequence[np.ndarray], query_frame: int,
                    query_point: np.ndarray | None, query_xy: tuple[float, float], query_step: int,
                    title: str) -> np.ndarray:
    """3D-Deformable A3-A5: per frame, the (x, y) pixels of the deformable attention's sampling points that sample
    that frame (the frame nearest each point's time coordinate, as the measure counts them; yellow dots), wherever
    their reference cell lies. The query (cyan cross) in its frame ``query_step``; the query cell's own sampling
    point circled in cyan on the frame it samples, ``query_frame``."""
    fig, _, (panels,) = _panels(len(frames), title)
    for step, (ax, frame, xy) in enumerate(zip(panels, frames, points)):
        _overlay(ax, frame, None)
        ax.scatter(xy[:, 0], xy[:, 1], s=6, c="yellow", edgecolors="black", linewidths=0.3)
        ax.set_title(f"frame {step}: {len(xy)} points", fontsize=7)
        if step == query_frame and query_point is not None:
            ax.scatter([query_point[0]], [query_point[1]], s=40, facecolors="none", edgecolors=QUERY_COLOUR)
        if step == query_step:
            _mark(ax, *query_xy)
    return _rendered(fig)


def pose_attention(frames: Sequence[np.ndarray], joints: np.ndarray, weights: np.ndarray, limbs: Sequence[tuple],
                   query_step: int, query_joint: int, title: str) -> np.ndarray:
    """3D-Deformable A2: per frame, the skeleton, each joint coloured by the query joint's joint stride attention
    weight on it divided by the mean weight over the joints it can reach (what an even spread over them gives), on
    the figure's one scale; joints outside the query's windows (NaN weights) grey, unfilled: nothing of the query
    can reach them. The query joint circled in cyan in its frame."""
    reachable = ~np.isnan(weights)
    even = float(weights[reachable].mean()) if reachable.any() else 1.0
    ratios = weights / (even if even > 0 else 1.0)
    norm = _scale(float(np.nanmax(ratios)) if reachable.any() else 1.0)
    fig, axes, (panels,) = _panels(len(frames), title)
    for step, (ax, frame) in enumerate(zip(panels, frames)):
        _overlay(ax, frame, None)
        xy = joints[step]
        for a, b in limbs:
            ax.plot(xy[[a, b], 0], xy[[a, b], 1], color="white", linewidth=0.8)
        seen = reachable[step]
        ax.scatter(xy[seen, 0], xy[seen, 1], s=18, c=ratios[step, seen], cmap=MAP_COLOURS, norm=norm,
                   edgecolors="black", linewidths=0.3)
        ax.scatter(xy[~seen, 0], xy[~seen, 1], s=18, facecolors="none", edgecolors=UNREACHABLE_COLOUR,
                   linewidths=0.8)
        ax.set_title(f"t={step}", fontsize=7)
        if step == query_step:
            ax.scatter([xy[query_joint, 0]], [xy[query_joint, 1]], s=60, facecolors="none",
                       edgecolors=QUERY_COLOUR, linewidths=1.5)
    _colour_bar(fig, axes, norm, "weight ÷ mean over reachable joints")
    return _rendered(fig)


__all__ = ["cast_windows", "frame_maps", "pose_attention", "sampling_points"]
