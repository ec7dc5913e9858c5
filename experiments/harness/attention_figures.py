"""The drawing every paper's attention figures share (matplotlib, Agg): frames in rows of at most ``PER_ROW`` panels,
a map or points over each frame, the query marked with a cyan cross (``QUERY_COLOUR``). A figure's maps share one
colour scale, drawn as its colour bar: each weight divided by the uniform map's (what attention blind to everything
puts there), on a diverging scale centred at 1 (``ratio_scale``), so that a nearly uniform panel looks as neutral as
it is and only a map that concentrates looks hot. Each paper's figures (``experiments/<paper>/figures.py``) are drawn
with these and returned as an RGB uint8 array (H, W, 3) (``rendered``), which ``experiments.harness.attention``
writes as a PNG and as a TensorBoard image."""

from __future__ import annotations

import math
import textwrap

import numpy as np

QUERY_COLOUR = "cyan"  # a cross of its own: the generated sets draw red crosses among their shapes
THING_COLOUR = "white"  # the moving thing's patches (Motionformer's figure), apart from the jet map's colours
PER_ROW = 6  # panels a row: a 12-frame clip in two rows, each panel large enough to read
PANEL_INCHES = 1.9
DPI = 120
MAP_ALPHA = 0.6
MAP_COLOURS = "RdBu_r"  # blue below the uniform map, white at it, red above


def pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: no display is needed or touched
    import matplotlib.pyplot as plt

    return plt


def rendered(fig) -> np.ndarray:
    fig.canvas.draw()
    image = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    pyplot().close(fig)
    return image


def panels(count: int, title: str, groups: int = 1):
    """A figure of ``groups`` groups of ``count`` panels each, every group in rows of at most ``PER_ROW``; returns
    (figure, one list of axes per group) with the unused axes hidden."""
    plt = pyplot()
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


def ratio_scale(top: float):
    """The figure's one scale over ratios to the uniform map: 0 to the largest ratio (at least 2), centred at 1."""
    from matplotlib.colors import TwoSlopeNorm

    return TwoSlopeNorm(vmin=0.0, vcenter=1.0, vmax=max(2.0, float(top)))


def colour_bar(fig, axes, norm, label: str) -> None:
    import matplotlib.cm

    bar = fig.colorbar(matplotlib.cm.ScalarMappable(norm=norm, cmap=MAP_COLOURS), ax=axes.ravel().tolist(),
                       fraction=0.025, pad=0.02)
    bar.set_label(label, fontsize=7)
    bar.ax.tick_params(labelsize=6)


def overlay(ax, frame: np.ndarray, heat: np.ndarray | None, norm=None) -> None:
    """``frame`` (H, W, 3) uint8 with ``heat`` (h, w, ratios to the uniform map; NaN: not drawn) on the figure's
    colour scale ``norm``, stretched over it."""
    height, width = frame.shape[:2]
    ax.imshow(frame, extent=(0, width, height, 0))
    if heat is not None:
        ax.imshow(heat, cmap=MAP_COLOURS, norm=norm, alpha=MAP_ALPHA, extent=(0, width, height, 0),
                  interpolation="nearest")
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)


def mark(ax, x: float, y: float) -> None:
    ax.plot([x], [y], marker="x", color=QUERY_COLOUR, markersize=9, markeredgewidth=2)


def outline(ax, cells: np.ndarray, cell_h: float, cell_w: float) -> None:
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


__all__ = ["DPI", "PANEL_INCHES", "QUERY_COLOUR", "colour_bar", "mark", "outline", "overlay", "panels", "pyplot",
           "ratio_scale", "rendered"]
