"""Plots of figure sweeps, drawn from a spec's ``SweepPlot`` (data) and our values (reports own the drawing)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from experiments.harness.spec import SweepPlot


def plot_sweep(plot: SweepPlot, rows: Sequence[tuple[str, str]], values: Mapping[str, Mapping[str, float | None]],
               path: str | Path, log: bool = False,
               spreads: Mapping[str, Mapping[str, float]] | None = None) -> Path:
    """One panel per ``plot.panels`` entry: each row's values against ``plot.x_values`` (bottom), and with a
    reference row, each row's margin to it (top). ``rows``: (key, label) in legend order; ``values``: row key ->
    metric column -> value (None = not run). Missing points are left out. ``log``: log-log axes (costs, whose
    growth exponent is the slope). ``spreads``: row key -> column -> the standard deviation over seeds, drawn as
    ± bars on the values; a point without one (one seed, a computed cost) has no bar."""
    import matplotlib

    from data.atomic_write import save_figure

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with_margin = plot.reference_row is not None
    fig, axes = plt.subplots(2 if with_margin else 1, len(plot.panels), figsize=(4.5 * len(plot.panels), 6 if
                             with_margin else 3.5), sharex="col", squeeze=False)
    values_axes = axes[-1]
    xs = plot.x_values
    for j, (title, columns) in enumerate(plot.panels.items()):
        reference = values.get(plot.reference_row, {}) if with_margin else {}
        for key, label in rows:
            ys = [values.get(key, {}).get(c) for c in columns]
            points = [(x, y) for x, y in zip(xs, ys) if y is not None]
            if not points:
                continue
            spread = (spreads or {}).get(key, {})
            # NaN draws no bar: a zero-height bar with its caps would read as a spread of 0
            bars = [spread.get(c, math.nan) for c, y in zip(columns, ys) if y is not None]
            if not all(math.isnan(bar) for bar in bars):
                values_axes[j].errorbar(*zip(*points), yerr=bars, marker="o", capsize=3, label=label)
            else:
                values_axes[j].plot(*zip(*points), marker="o", label=label)
            margin = [(x, y - reference[c]) for x, y, c in zip(xs, ys, columns)
                      if y is not None and reference.get(c) is not None]
            if with_margin and margin:
                axes[0, j].plot(*zip(*margin), marker="o", label=label)
        axes[0, j].set_title(title)
        if with_margin:
            axes[0, j].axhline(0, color="grey", lw=0.5)
            axes[0, j].set_ylabel(f"{plot.y_label.split(' (')[0]} margin to {plot.reference_row} (pts)")
        values_axes[j].set_ylabel(plot.y_label)
        values_axes[j].set_xlabel(plot.panel_x_labels.get(title, plot.x_label))
        if log:
            values_axes[j].set_xscale("log")
            values_axes[j].set_yscale("log")
            values_axes[j].set_xticks(xs, plot.panel_ticks.get(title, [f"{x:g}" for x in xs]), minor=False)
            values_axes[j].xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        else:
            values_axes[j].set_xticks(xs, plot.panel_ticks.get(title))
    # on the first panel with a line: a figure whose results are all in a later panel still names its rows
    drawn = [ax for ax in values_axes if ax.get_legend_handles_labels()[0]]
    if drawn:
        drawn[0].legend(fontsize=8)
    fig.tight_layout()
    try:
        return save_figure(path, fig, dpi=100)  # as the reports beside it: whole or not at all
    finally:
        plt.close(fig)
