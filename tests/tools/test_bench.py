"""``python -m tools bench``: per row, parameters, GFLOPs per view, training and inference clips/s and peak
memory on the device at hand, as a markdown table."""

import math

import pytest

from experiments.harness.static import gflops
from experiments.harness.tasks import build_model
from tools.__main__ import main
from tools.bench import NUM_CLASSES, bench_row, row_configs


def test_a_row_is_measured_on_this_device():

    (cfg,) = row_configs("mformer_table4", "tiny", ["traj_attT_normS"])
    result = bench_row(cfg, "cpu", batch=2, steps=3, warmup=1)  # a cold first step could invert the order
    params = sum(p.numel() for p in build_model(cfg, NUM_CLASSES, device="meta").parameters())
    assert result["params_m"] == pytest.approx(params / 1e6)
    assert result["gflops_per_view"] == pytest.approx(gflops(cfg, "computed", NUM_CLASSES))
    assert result["clip"] == "3x8x32x32" and result["batch"] == 2
    for key in ("train_clips_s", "infer_clips_s"):
        assert math.isfinite(result[key]) and result[key] > 0
    assert result["infer_clips_s"] > result["train_clips_s"]  # no backward, no optimiser step
    # live tensors of a training step: at least the weights, their gradients and AdamW's two moments
    assert result["peak_mib"] * 2**20 >= 4 * 4 * params and result["peak_how"] == "live tensors"


def test_the_cpu_peak_counts_weights_buffers_moments_and_batch_beside_what_the_step_creates(monkeypatch):
    """With the forward and backward creating a scripted 1 MiB, the peak is 1 MiB plus, in fp32: the weights and
    AdamW's two moments (3 × 4 bytes a parameter), the buffers, the 2 clips of 3×8×32×32 and 2 int64 labels."""
    monkeypatch.setattr("models.memory.peak_bytes", lambda fn: 2**20)
    (cfg,) = row_configs("mformer_table4", "tiny", ["traj_attT_normS"])
    result = bench_row(cfg, "cpu", batch=2, steps=1, warmup=1)
    model = build_model(cfg, NUM_CLASSES, device="meta")
    params = sum(p.numel() for p in model.parameters())
    buffers = sum(b.numel() * b.element_size() for b in model.buffers())
    expected = 2**20 + 3 * 4 * params + buffers + 2 * 3 * 8 * 32 * 32 * 4 + 2 * 8
    assert result["peak_mib"] * 2**20 == pytest.approx(expected, rel=1e-12)


def test_the_command_prints_a_markdown_table(capsys):
    assert main(["bench", "mformer_table4", "--rows", "joint", "--batch-size", "2", "--steps", "1", "--warmup",
                 "0", "--threads", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("`mformer_table4` at tiny scale on ")
    header = next(line for line in lines if line.startswith("| row"))
    assert "GFLOPs/view" in header and "train clips/s" in header and "inference clips/s" in header
    assert sum(line.startswith("| joint") for line in lines) == 1


def test_paper_scale_rows_resolve_to_the_papers_clips():
    cfgs = row_configs("mformer_table4", "paper")
    assert len(cfgs) == 5 and {(c.data.num_frames, c.data.crop_size) for c in cfgs} == {(16, 224)}
    with pytest.raises(KeyError, match="unknown row"):
        row_configs("mformer_table4", "tiny", ["nope"])
