"""``python -m tools paper-step`` and ``tools/gpu/measure.sh``: the logits read from the authors' side, a failed pair
recorded, the committed GPU record consistent and rendered, and (slow) the whole GPU script end to end on the CPU."""

import json
import os
import subprocess
from pathlib import Path

import pytest
import torch
from torch import nn

from reports.benchmark_schemas import PaperStepFile, StepFile, read_benchmark
from reports.gpu_steps import KERNEL_KINDS, PAPER_STEP_RECORDS, PROFILE_RECORD, kernel_kind, profile_block
from tools.paper_step import PAIRS, capture_logits, order_like_ours, run_worker

REPO = Path(__file__).resolve().parents[2]
BENCHMARKS = REPO / "reports" / "benchmarks"


class SoftmaxHead(nn.Module):
    """PySlowFast's way: a classifier ``head`` whose eval output the model normalises."""

    def __init__(self):
        super().__init__()
        self.head = nn.Linear(4, 3)

    def forward(self, x):
        logits = self.head(x)
        return logits if self.training else logits.softmax(-1)


def test_the_authors_logits_are_read_before_their_softmax():
    net = SoftmaxHead().eval()
    x = torch.randn(2, 4)
    captured = capture_logits(net, ("head", "head0", "head1"), lambda: net(x))
    assert len(captured) == 1 and torch.equal(captured[0], net.head(x))
    assert torch.equal(capture_logits(net, (), lambda: net(x))[0], net(x))  # no softmax heads: the output


def test_two_heads_are_ordered_verbs_first_as_ours():
    verbs, nouns = torch.randn(1, 97), torch.randn(1, 300)
    assert torch.equal(order_like_ours([nouns, verbs]), torch.cat([verbs, nouns], -1))  # CAST's (nouns, verbs)
    assert torch.equal(order_like_ours([verbs, nouns]), torch.cat([verbs, nouns], -1))  # PySlowFast's head0, head1


def test_a_failing_pair_is_recorded_not_raised():
    record = run_worker({"name": "d3da", "official_code": None, "options": {}, "batch": 1,
                         "device": "no-such-device", "warmup": 1, "steps": 1, "profile": False}, timeout=300)
    assert record["pair"] == "d3da" and "error" in record and "ours" not in record


def test_the_committed_gpu_record_is_consistent():
    """Each pair's ratios are its two sides' quotients, every pair the authors wrote code for was measured against
    it on an NVIDIA GPU, and on the same weights our float32 logits are theirs there."""
    data = read_benchmark(BENCHMARKS / "paper_step_cuda.json", PaperStepFile, "a paper-step record", "")
    assert data["device_name"].startswith("NVIDIA")
    by_pair = {r["pair"]: r for r in data["records"]}
    assert set(by_pair) == set(PAIRS)
    for name, record in by_pair.items():
        assert "error" not in record, name
        if PAIRS[name].official is None:
            assert record["authors"] is None and "ours_vs_authors_fp32" not in record["logits"]
            continue
        ours, theirs = record["ours"], record["authors"]
        assert record["time_ratio"] == pytest.approx(ours["step_ms"] / theirs["step_ms"])
        assert record["memory_ratio"] == pytest.approx(ours["peak_gib"] / theirs["peak_gib"])
        assert record["logits"]["ours_vs_authors_fp32"] < 1e-5, name
    assert list(PAPER_STEP_RECORDS) == ["paper_step_cuda.json"]


def test_the_kernel_kinds_add_up_to_the_profiled_kernel_time():
    assert kernel_kind("_pool_backward_kernel") == "fused stage two (Triton)"
    assert kernel_kind("cudnn_generated_fort_native_sdpa_sm90_flash_bprop") == "attention (SDPA)"
    assert kernel_kind("nvjet_sm90_tst_192x192_64x4_2x1_v_bz_coopB_bias_TNN") == "matrix products"
    assert kernel_kind("something_new") == "other" and len(KERNEL_KINDS) == len({k for k, _ in KERNEL_KINDS})
    data = read_benchmark(BENCHMARKS / PROFILE_RECORD, StepFile, "a trajectory-step record", "")
    block = profile_block()
    for record in data["records"]:  # every kernel of the step is listed, so the kinds sum to the kernel time
        listed = sum(k["ms_per_step"] for k in record["profile"]["top"])
        assert listed == pytest.approx(record["profile"]["per_step_ms"], rel=1e-6)
        assert f"{listed:.1f}" in block


@pytest.mark.slow  # ~8 min on 2 cores: the tiny trajectory step through Triton's interpreter, evaluate's smoke
# collected, then every pair at the paper's width, batch 1, one step (ours alone: no checkout of the authors' code)
def test_the_gpu_script_runs_end_to_end_on_the_cpu(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    done = subprocess.run(["bash", str(REPO / "tools" / "gpu" / "measure.sh"), "--cpu-check", "--paper-step",
                           "--records", str(tmp_path)], capture_output=True, text=True, env=env, timeout=1800,
                          check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    trajectory = json.loads((tmp_path / "trajectory_step_cpu_check.json").read_text())
    assert [r["variant"] for r in trajectory["records"]] == ["joint", "exact_fused_stages", "exact_fused"]
    assert all("step_ms" in r and "profile" in r for r in trajectory["records"])
    assert [c["check"] for c in trajectory["exactness"]] == ["eager exact_fused_stages vs literal, float32",
                                                            "eager exact_fused vs literal, float32"]
    assert all(check["max_relative_error"] < 1e-4 for check in trajectory["exactness"])
    assert "4 tests collected" in (tmp_path / "evaluate_collected.log").read_text()
    paper = json.loads((tmp_path / "paper_step_cpu_check.json").read_text())
    assert paper["what"].startswith("an end-to-end check") and [r["pair"] for r in paper["records"]] == list(PAIRS)
    for record in paper["records"]:
        assert "error" not in record and record["ours"]["step_ms"] > 0, record
        assert record["authors"] is None and record["authors_note"]


def test_a_float16_step_goes_through_the_loss_scaler():
    """CAST's pair runs in float16 with a loss scaler: the step trains (the weights move, nothing is left
    unscaled), as the bf16 one does."""
    from tools.paper_step import Side, step_time

    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 2 * 4 * 4, 5))
    before = net[1].weight.detach().clone()
    side = Side(net, lambda n, clip: n(clip), {})
    record = step_time(side, torch.randn(2, 3, 2, 4, 4), 2, torch.device("cpu"), warmup=1, steps=1, profile=False,
                       precision="fp16")
    assert record["step_ms"] > 0 and record["peak_gib"] is None
    assert not torch.equal(before, net[1].weight.detach()) and torch.isfinite(net[1].weight).all()
