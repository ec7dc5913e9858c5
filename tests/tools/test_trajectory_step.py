"""``python -m tools trajectory-step``: its ratios, a failed variant recorded, and the compiled trajectory attention
it times exact against the literal Eq. 4-6."""

import pytest
import torch

import tools.trajectory_step as benchmark_step
from tools.step_timing import profile_steps
from tools.trajectory_step import (
    VARIANTS,
    check_exact,
    exactness_checks,
    measure,
    ratios,
    run_worker,
    table,
)


def test_ratios_divide_by_joint_in_the_same_mode():
    records = [{"variant": "joint", "compiled": False, "step_ms": 40.0},
               {"variant": "joint", "compiled": True, "step_ms": 20.0},
               {"variant": "exact", "compiled": True, "step_ms": 50.0},
               {"variant": "exact", "compiled": False, "error": "out of memory"}]
    out = ratios(records)
    assert out[2]["over_joint_eager"] == pytest.approx(1.25) and out[2]["over_joint_compiled"] == pytest.approx(2.5)
    assert "over_joint_eager" not in out[3]
    assert "out of memory" in table(out)


def test_a_cuda_graphs_ratio_divides_by_joints_cuda_graph():
    records = [{"variant": "joint", "compiled": False, "step_ms": 40.0},
               {"variant": "joint", "compiled": False, "cuda_graph": True, "step_ms": 32.0},
               {"variant": "exact_fused_stages", "compiled": False, "cuda_graph": True, "step_ms": 48.0}]
    out = ratios(records)
    assert out[2]["over_joint_graphed"] == pytest.approx(1.5) and out[2]["over_joint_eager"] == pytest.approx(1.2)
    assert "one CUDA graph" in table(out)


def test_a_cuda_graph_on_the_cpu_is_refused_in_one_line(capsys):
    from tools.trajectory_step import main

    with pytest.raises(SystemExit) as stopped:
        main(["--device", "cpu", "--variants", "joint", "--cuda-graph", "joint"])
    assert stopped.value.code == 2
    assert "--cuda-graph needs a CUDA device, not --device cpu" in capsys.readouterr().err
    with pytest.raises(ValueError, match="a CUDA graph needs a CUDA device"):
        measure("joint", batch=1, device="cpu", compiled=False, warmup=0, steps=1, shape="tiny", cuda_graph=True)


def test_a_failing_variant_is_recorded_not_raised():
    record = run_worker({"variant": "exact", "batch": 1, "device": "no-such-device", "compiled": False,
                         "warmup": 1, "steps": 1}, timeout=120)
    assert record["variant"] == "exact" and "error" in record and "step_ms" not in record


def test_the_profile_ranks_the_operators_a_step_spends_its_time_in():
    big, small = torch.randn(384, 384), torch.randn(8, 8)

    def step() -> None:
        with torch.profiler.record_function("Optimizer.step#AdamW.step"):  # a range over ops, not an op
            for _ in range(3):
                big @ big
            small.sin()

    step()  # warm: a first call's one-time setup (sin's kernel dispatch) is not a step's cost, as in the tool
    found = profile_steps(step, lambda: None, cuda=False)
    assert found["top"][0]["name"] == "aten::mm" and found["top"][0]["calls_per_step"] == 3
    assert not any(e["name"].startswith("Optimizer.step") for e in found["top"])
    assert found["kernels_per_step"] >= 4 and found["per_step_ms"] > 0
    assert sum(e["share"] for e in found["top"]) == pytest.approx(1.0)


@pytest.mark.slow  # one torch.compile of the layer and its backward: ~15 s
@pytest.mark.parametrize("variant", ["exact", "exact_one_pass"])
def test_compiled_lean_trajectory_attention_equals_the_literal_equations_in_float32(variant):
    result = check_exact("cpu", variant)
    assert result["max_relative_error"] < 1e-5
    assert {"output", "input grad", "proj_kv.weight grad"} <= set(result["errors"])


def test_a_cuda_device_without_cuda_is_refused_in_one_line(monkeypatch, capsys):
    from tools.trajectory_step import main

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit) as stopped:
        main(["--device", "cuda", "--variants", "joint"])
    assert stopped.value.code == 2
    assert "--device cuda requested but torch.cuda.is_available() is False" in capsys.readouterr().err


def test_todays_paths_are_pinned_and_the_fused_one_is_named():
    """On a GPU "auto" runs the fused kernel: the variants that time the PyTorch paths pin them, so a record's
    ``exact`` is one query frame a pass wherever it was measured."""
    assert VARIANTS["exact"][1] == {"stage_two_kernel": "pytorch"}
    assert VARIANTS["exact_one_pass"][1]["stage_two_kernel"] == "pytorch"
    assert VARIANTS["exact_autograd"][1] == {"memory_lean": False}
    assert VARIANTS["exact_fused"][1] == {"stage_two_kernel": "triton"}
    assert VARIANTS["exact_fused_stages"][1] == {"stage_two_kernel": "fused_stages"}


def test_the_checks_cover_the_compiled_and_the_triton_variants_and_record_a_failure(monkeypatch):
    calls = []

    def fake_check(device, variant, compiled, bf16):
        calls.append((variant, compiled, bf16))
        if bf16:
            raise RuntimeError("PassManager::run failed\nno kernel image")
        return {"check": variant, "max_relative_error": 0.0}

    monkeypatch.setattr(benchmark_step, "check_exact", fake_check)
    results = exactness_checks("cuda", ["joint", "exact", "exact_fused"], ["exact_one_pass"])
    assert calls == [("exact_one_pass", True, False), ("exact_fused", False, False), ("exact_fused", False, True)]
    assert results[2]["error"] == "RuntimeError: no kernel image"
    calls.clear()
    exactness_checks("cpu", ["exact_fused", "exact_fused_stages"], [])  # the interpreter's bf16 products are not
    assert calls == [("exact_fused", False, False), ("exact_fused_stages", False, False)]  # a check
    calls.clear()
    exactness_checks("cpu", ["joint", "exact"], [])  # neither: the compiled default, as before
    assert calls == [("exact", True, False)]


def test_the_tiny_shape_measures_a_variant_in_seconds():
    record = measure("exact", batch=1, device="cpu", compiled=False, warmup=0, steps=1, shape="tiny")
    assert record["shape"] == "tiny" and record["options"] == {"stage_two_kernel": "pytorch"}
    assert record["step_ms"] > 0 and record["peak_gib"] is None
