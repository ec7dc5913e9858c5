"""What the speed and memory benchmarks pass between their parts, checked against literals and hand formulas.

Complements ``tests/tools/test_measurement.py`` (whose fake clock and scripted layer this file reuses):
- ``tools.step_timing``: ``time_steps`` is the median of the timed steps, warm-up excluded, each step
  synchronised before its clock stops (a fake CUDA queue whose work only ``synchronize`` waits for);
  ``tools.bench.bench_row`` turns seconds per step into clips per second with the batch;
- ``tools.shift_family``: on (fake) CUDA each timed pass is synchronised and the peak is the one pass's rise;
  ``--compile MODE`` reaches ``torch.compile`` for every variant, with room for all of them in dynamo's cache;
  ``run`` hands every option to ``measure``; ratios divide by the ViT of the same shape;
- ``tools.trajectory_attention``: every variant's worker gets the same batch, device, block, repeats and threads,
  the literal baseline included; ratios divide by the literal of the same shape; the memory kept for backward is
  read while the graph is alive;
- ``tools.trajectory_memory``: the batch and the prototype count reach the layer; the table is in MiB (2^20);
- ``tools.d3da_step``: the paper shape builds ``d3da_base``;
- ``reports.benchmarks``: a record's CPU name carries the thread count it was measured with; 1024 MiB is 1 GiB.
"""

from __future__ import annotations

import json
import types

import pytest
import torch

from reports import benchmarks as report_benchmarks
from tests.tools.test_measurement import (
    MIB,
    FakeClock,
    FakeRgbPose,
    ScriptedLayer,
    attention_record,
    numbers,
    shift_record,
)
from tools import bench, shift_family, step_timing, trajectory_attention, trajectory_memory
from tools import d3da_step as rgb_pose_benchmark


@pytest.fixture
def one_thread():
    """Start from one torch thread and give back the caller's count (the code under test sets it globally)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class FakeDeviceQueue:
    """A CUDA stream stand-in: a scripted layer's forward only queues its duration (``advance``), and the clock
    moves by the queued work when ``synchronize`` is called, as a host timer sees an asynchronous GPU."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock, self.pending, self.syncs = clock, 0.0, 0

    def advance(self, seconds: float) -> None:
        self.pending += seconds

    def synchronize(self, device=None) -> None:
        self.clock.advance(self.pending)
        self.pending, self.syncs = 0.0, self.syncs + 1


# ---- tools.bench ---------------------------------------------------------------------------------------------------


def test_a_step_time_is_the_synchronised_median_after_the_warm_up(monkeypatch):
    """Two 100 s warm-up steps, then 3, 1, 4, 1.5, 9 s: the median is 3 (mean 3.7, min 1, unsorted middle 4); a
    step whose clock stops before the queue is drained would time 0 s."""
    clock = FakeClock()
    queue = FakeDeviceQueue(clock)
    durations = [100.0, 100.0, 3.0, 1.0, 4.0, 1.5, 9.0]
    calls = []

    def step() -> None:
        queue.advance(durations[len(calls)])
        calls.append(1)

    monkeypatch.setattr(step_timing, "time", clock.module())
    monkeypatch.setattr(torch.cuda, "synchronize", queue.synchronize)
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda: None)
    assert step_timing.time_steps(step, cuda=True, steps=5, warmup=2) == (3.0, 200.0)
    assert len(calls) == 2 + 5


def test_bench_row_throughput_is_the_batch_over_the_step_time(monkeypatch):
    """With ``time_steps`` giving 0.5 s per training step and 0.125 s per inference step, a batch of 16 clips (the
    row's own batch: none given) is 32 and 128 clips/s."""
    (cfg,) = bench.row_configs("mformer_table4", "tiny", ["traj_attT_normS"])
    seconds = iter([0.5, 0.125])  # training is timed first, then inference
    monkeypatch.setattr(bench, "time_steps", lambda step, cuda, steps, warmup: step_timing.StepTimes(next(seconds), 0))
    result = bench.bench_row(cfg, "cpu")
    assert (result["batch"], result["clip"]) == (16, "3x8x32x32")
    assert (result["train_clips_s"], result["infer_clips_s"]) == (32.0, 128.0)


# ---- tools.shift_family ---------------------------------------------------------------------------------------


def test_shift_benchmark_on_cuda_synchronises_each_timed_pass_and_takes_the_passes_own_peak(monkeypatch):
    """On CUDA each layer's first 3 forwards are untimed (warm-up, memory pass, op count: 0.5 s each); then ViT
    passes queue 1, 2, 3 s and TSM passes 4, 5, 6 s, round-robin. Only ``synchronize`` moves the clock. Allocated:
    10 MiB before the pass, 25 MiB at its peak."""
    clock = FakeClock()
    queue = FakeDeviceQueue(clock)
    scripted = {"vit": [1.0, 2.0, 3.0], "tsm": [4.0, 5.0, 6.0]}

    def fake_build(shape, variant, unit, batch, dev, compiled=None):
        layer = ScriptedLayer(queue, lambda n: 0.5 if n < 3 else scripted[variant][n - 3])
        return layer, (torch.randn(batch, 4, requires_grad=True),)

    monkeypatch.setattr(shift_family, "build_unit", fake_build)
    monkeypatch.setattr(shift_family, "time", clock.module())
    monkeypatch.setattr(torch.cuda, "synchronize", queue.synchronize)
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda *a, **k: None)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda *a, **k: 10 * MIB)
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda *a, **k: 25 * MIB)
    records = shift_family.measure("tiny", ["vit", "tsm"], "block", batch=2, device="cuda", repeats=3,
                                      min_seconds=0.0)
    got = {r["variant"]: (r["time_s"], r["time_min_s"], r["passes"], r["peak_mib"]) for r in records}
    assert got == {"vit": (2.0, 1.0, 3, 15.0), "tsm": (5.0, 4.0, 3, 15.0)}


def test_shift_build_hands_the_compile_mode_to_torch_compile(monkeypatch):
    modes = []

    def fake_compile(layer, mode=None, **options):
        modes.append(mode)
        return layer

    monkeypatch.setattr(torch, "compile", fake_compile)
    shift_family.build_unit("tiny", "tsm", "block", 1, torch.device("cpu"), "max-autotune")
    assert modes == ["max-autotune"]


def test_shift_benchmark_compiles_every_variant_with_room_for_all_in_dynamos_cache(monkeypatch):
    """Dynamo compiles one code object for at most ``recompile_limit`` modules, then runs the rest eagerly without
    a word: with 12 variants the limit in force while they are built and timed must be at least 12."""
    clock = FakeClock()
    seen = []

    def fake_build(shape, variant, unit, batch, dev, compiled=None):
        seen.append((compiled, torch._dynamo.config.recompile_limit))
        return ScriptedLayer(clock, lambda n: 1.0), (torch.randn(batch, 4, requires_grad=True),)

    monkeypatch.setattr(shift_family, "build_unit", fake_build)
    monkeypatch.setattr(shift_family, "time", clock.module())
    variants = ["vit", *(f"variant_{i}" for i in range(11))]
    records = shift_family.measure("tiny", variants, "block", batch=1, device="cpu", repeats=1, min_seconds=0.0,
                                      compiled="reduce-overhead")
    assert [compiled for compiled, _ in seen] == ["reduce-overhead"] * 12
    assert all(limit >= 12 for _, limit in seen), seen
    assert all(r["compiled"] == "reduce-overhead" and "ops" not in r for r in records)



def test_shift_benchmark_starts_every_pass_with_no_input_gradient(monkeypatch):
    """A block's input gradient flows on inside the network, never summed over steps; summed into the benchmark's
    input tensor, it would be an op the network has not and, under CUDA graphs, a read of a replay's overwritten
    output. Every forward (the memory counters' forward-only passes too) sees an input with no gradient, and every
    backward still computes one."""
    clock, grads_seen, backwards = FakeClock(), [], []

    class LoggedLayer(ScriptedLayer):
        def forward(self, x, *rest):
            grads_seen.append(x.grad)
            return super().forward(x, *rest)

    def fake_build(shape, variant, unit, batch, dev, compiled=None):
        x = torch.randn(batch, 4, requires_grad=True)
        x.register_hook(backwards.append)
        return LoggedLayer(clock, lambda n: 1.0), (x,)

    monkeypatch.setattr(shift_family, "build_unit", fake_build)
    monkeypatch.setattr(shift_family, "time", clock.module())
    shift_family.measure("tiny", ["vit", "tsm"], "block", batch=1, device="cpu", repeats=2, min_seconds=0.0)
    assert len(backwards) >= 2 * (1 + 1 + 2)  # per variant: warm-up, op count, 2 timed passes
    assert len(grads_seen) > len(backwards) and all(grad is None for grad in grads_seen)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU")
def test_shift_benchmark_times_a_block_through_cuda_graphs():
    """Summing the block's input gradient over passes stopped the second replay with 'accessing tensor output of
    CUDAGraphs that has been overwritten by a subsequent run'."""
    records = shift_family.measure("tiny", ["vit", "tokenshift"], "block", batch=1, device="cuda", repeats=3,
                                      min_seconds=0.0, compiled="reduce-overhead")
    assert [(r["variant"], r["compiled"], r["passes"]) for r in records] == [("vit", "reduce-overhead", 3),
                                                                            ("tokenshift", "reduce-overhead", 3)]
    assert all(r["time_min_s"] > 0 and r["peak_mib"] > 0 for r in records)

def test_shift_run_hands_every_option_to_measure(monkeypatch, one_thread):
    """``--compile`` alone means the "default" mode; every shape gets the same options, the ViT first, and the
    thread count is set before measuring."""
    calls = []

    def fake_measure(shape, variants, unit, batch, device, repeats, min_seconds=2.0, compiled=None):
        calls.append((shape, variants, unit, batch, device, repeats, min_seconds, compiled, torch.get_num_threads()))
        return []

    monkeypatch.setattr(shift_family, "measure", fake_measure)
    args = shift_family.parse_args(["--shape", "all", "--unit", "model", "--batch", "3", "--repeats", "7",
                                       "--min-seconds", "0.25", "--variants", "tsm", "--threads", "2", "--compile"])
    shift_family.run(args)
    assert calls == [(shape, ["vit", "tsm"], "model", 3, "cpu", 7, 0.25, "default", 2) for shape in ("tiny", "paper")]


def test_shift_table_divides_each_shape_by_its_own_vit():
    """Tiny ViT 0.1 s, TSM 0.2 s; paper ViT 1.0 s, TSM 1.5 s: paper TSM's ratio is 1.5, not 15 (the tiny ViT)."""
    records = [{"shape": shape, "variant": variant, "ops": 10, "time_s": t, "time_min_s": t, "saved_mib": 4.0,
                "peak_mib": 8.0} for shape, variant, t in
               [("tiny", "vit", 0.1), ("tiny", "tsm", 0.2), ("paper", "vit", 1.0), ("paper", "tsm", 1.5)]]
    (row,) = [line for line in shift_family.records_table(records).splitlines() if "| paper" in line and "tsm" in line]
    assert numbers(row)[3:7] == [1500.0, 1.5, 1500.0, 1.5]


# ---- tools.trajectory_attention -----------------------------------------------------------------------------------


def test_attention_table_divides_each_shape_by_its_own_literal():
    """Tiny literal 0.3 s, paper literal 2.0 s and 100 MiB: paper rearranged (0.5 s, 25 MiB) is 4x faster and at
    0.25 of the memory, not 0.6x and 1.25 (the tiny literal's)."""
    records = [attention_record("literal", 0.3, 20.0, 10.0), attention_record("rearranged", 0.1, 5.0, 5.0),
               {**attention_record("literal", 2.0, 100.0, 40.0), "shape": "paper"},
               {**attention_record("rearranged", 0.5, 25.0, 30.0), "shape": "paper"}]
    (row,) = [line for line in trajectory_attention.records_table(records).splitlines() if "| paper" in line
              and "rearranged" in line]
    assert numbers(row)[3:] == [500.0, 250.0, "4.00x", 25.0, 0.25, 30.0, 0.75]


def test_attention_cli_measures_every_variant_with_the_same_options_and_the_literal_baseline(monkeypatch, capsys):
    configs = []

    def fake_worker(config):
        configs.append(config)
        return {**config, "time_s": 1.0, "time_min_s": 1.0, "peak_mib": 1.0, "retained_mib": 1.0,
                "memory_method": "fake", "threads": 2}

    monkeypatch.setattr(trajectory_attention, "_run_subprocess", fake_worker)
    trajectory_attention.main(["--shape", "all", "--batch", "3", "--repeats", "4", "--variants", "rearranged",
                              "--threads", "2", "--block"])
    same = {"batch": 3, "device": "cpu", "repeats": 4, "block": True, "threads": 2}
    assert configs == [{"shape": s, "variant": v, **same} for s in ("tiny", "paper") for v in ("literal", "rearranged")]
    assert "4.00x" not in capsys.readouterr().out  # every ratio is 1: all fake times are equal


class _GraphAlive(torch.autograd.Function):
    """Identity that marks ``state.alive`` from its forward until its backward (when autograd frees the graph)."""

    @staticmethod
    def forward(ctx, x, state):
        state.alive = True
        ctx.state = state
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        ctx.state.alive = False
        return grad, None


def _fake_attention_layers(monkeypatch, state) -> list:
    """``TrajectoryAttention`` replaced by a scripted layer whose output keeps ``state.alive`` set until backward;
    /proc/self/status: VmRSS 100 MiB, plus 30 MiB while a graph is alive; VmHWM 150 MiB."""
    clock, built = FakeClock(), []

    class Layer(ScriptedLayer):
        def forward(self, x, *rest):
            return _GraphAlive.apply(super().forward(x), state)

    def fake_attention(dim, num_heads, qkv_bias, **options):
        built.append(Layer(clock, lambda n: 1.0, dim))
        return built[-1]

    status = {"VmRSS": lambda: (130 if state.alive else 100) * MIB, "VmHWM": lambda: 150 * MIB}
    monkeypatch.setattr(trajectory_attention, "TrajectoryAttention", fake_attention)
    monkeypatch.setattr(trajectory_attention, "time", clock.module())
    monkeypatch.setattr(trajectory_attention, "_reset_peak_resident", lambda: None)
    monkeypatch.setattr(trajectory_attention, "_status_bytes", lambda field: status[field]())
    return built


def test_attention_memory_kept_for_backward_is_read_while_the_graph_is_alive(monkeypatch):
    state = types.SimpleNamespace(alive=False)
    _fake_attention_layers(monkeypatch, state)
    record = trajectory_attention.measure("tiny", "literal", batch=1, device="cpu", repeats=1, block=False)
    assert (record["retained_mib"], record["peak_mib"]) == (30.0, 50.0)


def test_attention_worker_runs_with_the_requested_threads(monkeypatch, one_thread):
    _fake_attention_layers(monkeypatch, types.SimpleNamespace(alive=False))
    record = trajectory_attention.measure("tiny", "literal", batch=1, device="cpu", repeats=1, block=False, threads=2)
    assert record["threads"] == 2


# ---- tools.trajectory_memory --------------------------------------------------------------------------------------


def test_memory_benchmark_batch_reaches_the_layer():
    """Nearly all saved bytes are per clip (a few small batch-independent tensors apart): two clips save almost
    twice, three almost three times what one clip saves."""
    saved = [trajectory_memory.measure("exact", frames=2, side=2, dim=8, heads=2, prototypes=4, batch=b,
                                      device="meta")["saved_bytes"] for b in (1, 2, 3)]
    assert saved[1] >= 1.9 * saved[0] and saved[2] >= 2.9 * saved[0], saved


def test_memory_benchmark_prototype_count_reaches_the_layer():
    """2 or 4 prototypes of 16 candidate tokens: both valid (the layer's default, 128, is not), saving different
    amounts."""
    saved = [trajectory_memory.measure("orthoformer", frames=2, side=2, dim=8, heads=2, prototypes=r, batch=1,
                                      device="meta")["saved_bytes"] for r in (2, 4)]
    assert saved[0] < saved[1], saved


def test_memory_benchmark_table_is_in_mib_of_two_to_the_twenty_bytes():
    """3.5 * 2^20 and 5 * 2^20 bytes are 3.5 and 5 MiB (3.67 and 5.24 in units of 10^6 bytes)."""
    row = {"variant": "exact", "frames": 2, "side": 4, "tokens": 32, "saved_bytes": 7 * 2**19,
           "peak_bytes": 5 * 2**20, "saved_slope": 1.0, "peak_slope": 2.0, "seconds": 0.1}
    (line,) = [line for line in trajectory_memory.format_table([row]).splitlines() if line.startswith("exact")]
    # columns: variant, N, S, saved MiB, slope, peak MiB, slope, s (tabulate drops trailing zeros)
    assert [float(cell) for cell in line.split()[3:6:2]] == [3.5, 5.0]


# ---- tools.d3da_step -------------------------------------------------------------------------------------


def test_rgb_pose_paper_shape_builds_the_base_model(monkeypatch):
    names = []

    def fake_create(name):
        names.append(name)
        return FakeRgbPose(FakeClock(), lambda n: 1.0)

    monkeypatch.setattr(rgb_pose_benchmark, "create_model", fake_create)
    record = rgb_pose_benchmark.measure("paper", batch=1, device="cpu", repeats=1)
    assert names == ["d3da_base"] and record["model"] == "d3da_base"


# ---- reports.benchmarks -------------------------------------------------------------------------------------------


def test_recorded_cpu_name_carries_the_thread_count_it_was_measured_with(tmp_path, monkeypatch, one_thread):
    """``--threads 2`` is set by the run: the stamp must be taken after it (the process started with 1 thread)."""
    import experiments.harness.provenance as provenance
    import models.hardware as hardware
    monkeypatch.setattr(shift_family, "measure", lambda shape, variants, *a, **k: [
        shift_record(v, threads=torch.get_num_threads()) for v in variants])
    monkeypatch.setattr(provenance, "git_commit", lambda: "abc123")
    monkeypatch.setattr(hardware, "cpu_name", lambda: "Fake CPU")
    new = shift_family.record_shift_benchmark(tmp_path / "shift_fake.json", ["--threads", "2", "--variants",
                                                                                  "tsm"])
    assert [(r["device_name"], r["threads"]) for r in new] == [("Fake CPU, 2 thread(s)", 2)] * 2


def test_shift_table_states_1024_mib_as_one_gib(tmp_path):
    stamp = {"device_name": "A", "torch": "2.x", "commit": "abc", "measured_at": "2026-01-01", "command": "cmd"}
    record = shift_record("vit", saved_mib=1024.0, peak_mib=1023.0, **stamp)
    (tmp_path / "shift_x.json").write_text(json.dumps({"records": [record]}))
    (row,) = [line for line in report_benchmarks.shift_tables(tmp_path).splitlines()
              if line.startswith("| block, tiny, 1")]
    assert row.strip("|").split("|")[9].strip() == "saved for backward 1.00 GiB; peak 1023.00 MiB"
