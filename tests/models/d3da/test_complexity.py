"""Counted FLOPs of Tables A1/A2: full attention grows quadratically in the windowed axis, stride attention
linearly (fitted exponents on the real modules), and the counts match the closed forms."""

import pytest

import models  # noqa: F401  (repairs torchvision before anything imports timm)
from models.d3da.complexity import (
    fit_exponent,
    joint_attention_flops,
    joint_attention_time,
    model_gflops,
    temporal_attention_flops,
    tokens_per_frame,
)
from models.d3da.stride_attention import full_window_starts

JOINTS = [32, 64, 128, 256]
FRAMES = [8, 16, 32, 64]


def test_fit_exponent():
    assert fit_exponent([1, 2, 4], [3, 12, 48]) == pytest.approx(2.0)
    with pytest.raises(ValueError):
        fit_exponent([1], [1])


def test_joint_attention_growth_in_joints():
    full = [joint_attention_flops(r, 8, which="full", dim=32)["attention"] for r in JOINTS]
    stride = [joint_attention_flops(r, 8, 4, which="stride", dim=32)["attention"] for r in JOINTS]
    assert fit_exponent(JOINTS, full) == pytest.approx(2.0, abs=0.1)  # T * (R + 2) tokens, squared
    assert fit_exponent(JOINTS, stride) == pytest.approx(1.0, abs=0.1)  # ~R / 2 windows of fixed size
    assert all(s < f for s, f in zip(stride, full))


def test_temporal_attention_growth_in_frames():
    d_n = tokens_per_frame(32, 13)
    assert d_n == 16 + 13 + 3
    full = [temporal_attention_flops(t, d_n, which="full", dim=32)["attention"] for t in FRAMES]
    stride = [temporal_attention_flops(t, d_n, 4, which="stride", dim=32)["attention"] for t in FRAMES]
    assert fit_exponent(FRAMES, full) == pytest.approx(2.0, abs=0.05)
    assert fit_exponent(FRAMES, stride) == pytest.approx(1.0, abs=0.15)


def test_counts_match_closed_forms():
    """QK^T and AV: 2 * L^2 * C multiply-adds per window of L tokens; projections 4 C^2 per token (q, k, v, out)."""
    r, t, wnd, c = 13, 8, 4, 32
    full = joint_attention_flops(r, t, which="full", dim=c)
    assert full["attention"] == 2 * (t * (r + 2)) ** 2 * c
    assert full["projections"] == 4 * t * (r + 2) * c * c
    windows = len(full_window_starts(r, wnd))
    stride = joint_attention_flops(r, t, wnd, which="stride", dim=c)
    assert stride["attention"] == windows * 2 * (t * (wnd + 2)) ** 2 * c
    printed = joint_attention_flops(r, t, wnd, which="stride", dim=c, cover="as_printed")
    assert printed["attention"] == 4 * 2 * (t * (wnd + 2)) ** 2 * c  # four (query, kv) pairs for R = 13


def test_timing_runs():
    assert joint_attention_time(13, 4, 4, repeats=1) > 0


def test_model_gflops_counts_a_dict_input_model():
    tiny = model_gflops("d3da_tiny")
    assert 0 < tiny < model_gflops("d3da_tiny", num_frames=16)
    assert model_gflops("d3da_tiny", cover="as_printed") < tiny  # fewer windows as printed
    # the ablations read one modality each: their batches hold only that one, and each costs less than both
    assert 0 < model_gflops("d3da_tiny", modalities="pose") < model_gflops("d3da_tiny", modalities="rgb") < tiny


def test_model_gflops_counts_the_3d_token_search_as_8_multiply_adds_per_point_and_channel(monkeypatch):
    from models import create_model
    from models.d3da import complexity

    counted = model_gflops("d3da_tiny")
    monkeypatch.setattr(complexity, "_trilinear_sampling_flops", lambda *args, **kwargs: 0)
    model = create_model("d3da_tiny")
    grid = model.img_size // 8  # tokens per side; every block's A3 samples one point per token (offset_stride 1)
    points = model.num_frames * grid * grid
    expected = len(model.blocks) * 8 * model.pos_embed.shape[-1] * points / 1e9
    assert counted - model_gflops("d3da_tiny") == pytest.approx(expected, rel=1e-9)
