"""The attention figures draw what was measured (experiments/harness/attention_figures.py and each paper's
figures.py): one colour scale a figure, every map as its ratio to the uniform map's (so a uniform panel is neutral,
not as hot as a peaked one), divided attention's temporal panels marked "by construction", joints the query cannot
reach in grey, a 12-frame clip in rows of legible panels. Hand-built maps and weights; nothing trains."""

from __future__ import annotations

import types

import matplotlib.axes
import numpy as np
import pytest

from experiments.d3da import figures as d3da
from experiments.d3da.figures import joint_stride_weights
from experiments.harness import attention_figures
from experiments.mformer import figures as mformer


@pytest.fixture
def overlays(monkeypatch):
    """Every map an ``overlay`` draws, with the scale it is drawn on."""
    drawn = []
    real = attention_figures.overlay

    def spy(ax, frame, heat, norm=None):
        drawn.append((None if heat is None else np.array(heat), norm))
        real(ax, frame, heat, norm)

    monkeypatch.setattr(attention_figures, "overlay", spy)
    return drawn


def test_a_uniform_step_is_neutral_and_every_step_shares_one_scale(overlays):
    """Step 0 uniform over 16 patches, step 1 all on one patch: drawn as ratios to uniform, 1 everywhere in step 0
    (the scale's centre, white) and 16 on the peak, both on the same scale."""
    frames = [np.zeros((32, 32, 3), np.uint8)] * 2
    maps = np.stack([np.full((4, 4), 1 / 16), np.eye(1, 16).reshape(4, 4)])
    image = mformer.frame_maps(frames, maps, 0, (4.0, 4.0), "t", ["a", "b"])
    (uniform, scale_a), (peak, scale_b) = overlays
    assert scale_a is scale_b and scale_a(1.0) == pytest.approx(0.5)  # 1 = uniform: the diverging scale's centre
    assert np.allclose(uniform, 1.0) and peak.max() == pytest.approx(16.0) and scale_a.vmax == pytest.approx(16.0)
    assert image.ndim == 3 and image.shape[2] == 3


def test_divided_attentions_other_steps_say_by_construction(monkeypatch):
    titles = []
    monkeypatch.setattr(matplotlib.axes.Axes, "set_title", lambda self, text, **kw: titles.append(text))
    frames = [np.zeros((32, 32, 3), np.uint8)] * 3
    mformer.frame_maps(frames, np.full((3, 4, 4), 1 / 16), 1, (4.0, 4.0), "t", ["a", "b", "c"],
                       by_construction="own location")
    assert ["by construction" in t for t in titles] == [True, False, True]


def test_a_twelve_frame_clip_is_drawn_in_two_rows_of_legible_panels():
    frames = [np.zeros((32, 32, 3), np.uint8)] * 12
    image = d3da.sampling_points(frames, [np.zeros((3, 3))] * 12, 0, np.zeros(3), (4.0, 4.0), 0, "t")
    height, width = image.shape[:2]
    assert width / height < 3 and height >= 2 * attention_figures.PANEL_INCHES * attention_figures.DPI  # not 2160 x 250


def test_joints_outside_the_querys_windows_are_nan_and_drawn_grey(monkeypatch):
    """A query joint 0 in window 0 only, whose keys are joints 0 and 1 of 3: joint 2 cannot be reached (NaN); the
    figure draws it unfilled in grey, the reachable ones on the colour scale."""
    import torch

    weights = torch.zeros(1, 1, 1, 2 * 2, 2 * 2)  # (batch, windows, heads, (slot frame), keys)
    weights[0, 0, 0] = torch.tensor([[0.4, 0.1, 0.3, 0.2]] * 4)
    record = types.SimpleNamespace(layout={"frames": 2, "joints": 3, "query_windows": [[0]], "key_windows": [[0, 1]]},
                                   weights={"windows": weights})
    got = joint_stride_weights(record, 0, 0)
    assert np.isnan(got[:, 2]).all() and np.allclose(got[:, :2], [[0.4, 0.3], [0.1, 0.2]])
    calls = []
    real = matplotlib.axes.Axes.scatter
    monkeypatch.setattr(matplotlib.axes.Axes, "scatter",
                        lambda self, x, y, **kw: calls.append((len(np.atleast_1d(x)), kw)) or real(self, x, y, **kw))
    frames = [np.zeros((32, 32, 3), np.uint8)] * 2
    joints = np.array([[[5.0, 5.0], [10.0, 10.0], [20.0, 20.0]]] * 2)
    d3da.pose_attention(frames, joints, got, [(0, 1), (1, 2)], 0, 0, "t")
    grey = [n for n, kw in calls if kw.get("edgecolors") == d3da.UNREACHABLE_COLOUR]
    coloured = [n for n, kw in calls if "c" in kw]
    assert grey == [1, 1] and coloured == [2, 2]  # per frame: joint 2 grey, joints 0 and 1 on the scale


def test_each_papers_figures_are_registered_from_its_folder_with_its_measure():
    from experiments.harness.attention import registered_figures

    assert [(f.paper, f.draw.__module__, f.measure.kind) for f in registered_figures()] == [
        ("cast", "experiments.cast.figures", "attention_windows"),
        ("d3da", "experiments.d3da.figures", "attention_points"),
        ("mformer", "experiments.mformer.figures", "attention_tracking")]


def test_a_row_is_drawn_by_its_own_papers_figures_or_refused_in_one_line(monkeypatch):
    """Two papers' figures read ints, one reads strings: an int of either paper's table is drawn by that paper's;
    another paper's figures are never borrowed (MSCA's and X-ViT's video ViTs are Motionformer's class, but do not
    attend as its figure reads), so an int of a third paper's table, a string of Motionformer's and a float are each
    refused in one line naming every paper's figures."""
    from experiments.harness import attention

    def figures(paper: str, model_class: str) -> attention.PaperFigures:
        return attention.PaperFigures(paper, model_class, f"{paper} Fig. 1", lambda *args: {}, None)

    monkeypatch.setattr(attention, "_FIGURES", {"mformer": figures("mformer", "builtins.int"),
                                                "toy": figures("toy", "builtins.int"),
                                                "cast": figures("cast", "builtins.str")})
    assert attention.figures_of(3, "toy_table1").paper == "toy"
    assert attention.figures_of(3, "mformer_table4").paper == "mformer"
    assert attention.figures_of("x", "cast_table1e").paper == "cast"
    for model, table in ((3, "msca_table1"), ("x", "mformer_table4"), (2.0, "xvit_table1")):
        with pytest.raises(ValueError, match=rf"^{table}: its paper has no attention figure of its "
                                             rf"{type(model).__name__} \(the figures: mformer Fig. 1 \(mformer\), "
                                             r"toy Fig. 1 \(toy\), cast Fig. 1 \(cast\)\)$"):
            attention.figures_of(model, table)
