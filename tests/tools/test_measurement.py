"""The CPU-reachable logic of the measurement code behind the README's speed and memory figures.

Checked against hand counts and literals, never against the code under test:
- ``models.memory``: saved-tensor bytes (a buffer saved through several views counts once, whole), the training
  mode and default clip of ``activation_bytes``, the live/peak bookkeeping of ``LiveBytes`` and that
  ``peak_bytes`` includes the backward;
- ``tools.trajectory_memory``: token counts, slopes recomputed by the formula, the first size of each variant;
- ``tools.trajectory_attention``, ``tools.shift_family``, ``tools.d3da_step``,
  ``models.cast.complexity.measure_training``: with a fake clock that only the layer's forward advances, the timed
  figures are the median (and min) of the timed passes, warm-up and memory passes excluded, passes interleaved;
  the tables' ratios are ours / reference (or reference / ours for "speed-up");
- ``reports.benchmarks``: records merge on (device, unit, shape, batch, compile mode, variant), tables split by
  device and state the memory ratios to the ViT.
"""

from __future__ import annotations

import json
import types

import pytest
import torch
from torch import nn

import models  # noqa: F401  (repairs torchvision before anything imports timm)
from models.cast import complexity as cast_complexity
from models.memory import LiveBytes, activation_bytes, peak_bytes, saved_tensor_bytes
from reports import benchmarks as report_benchmarks
from tools import d3da_step as rgb_pose_benchmark
from tools import shift_family, trajectory_attention, trajectory_memory

F32 = 4  # bytes per float32 element
MIB = 2**20


# ---- helpers: a clock that only a fake layer's forward moves ---------------------------------------------------


class FakeClock:
    """``perf_counter``/``process_time`` stand-in: time passes only when ``advance`` is called (by a fake forward),
    so a timed pass lasts exactly the duration scripted for that forward call; CPU time passes at half that rate
    (as for a process sharing its cores), so that wall and CPU figures cannot be confused."""

    def __init__(self) -> None:
        self.now = self.cpu = 0.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.cpu += seconds / 2

    def module(self) -> types.SimpleNamespace:
        return types.SimpleNamespace(perf_counter=self, process_time=lambda: self.cpu)


class ScriptedLayer(nn.Module):
    """``y = w * x`` whose n-th forward call advances ``clock`` by ``durations(n)`` seconds."""

    def __init__(self, clock: FakeClock, durations, dim: int = 4) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.clock, self.durations, self.calls = clock, durations, 0

    def forward(self, x: torch.Tensor, *rest) -> torch.Tensor:
        self.clock.advance(self.durations(self.calls))
        self.calls += 1
        return x * self.weight


# ---- models.memory ------------------------------------------------------------------------------------------------


def test_saved_views_of_one_buffer_count_once_with_the_whole_buffer():
    """q and k sliced from one projection are saved by the product as two views of one storage: count it once, whole
    (as q, k, v from a qkv projection), plus the projection's saved input."""
    proj = nn.Linear(6, 8)

    def forward(x: torch.Tensor) -> torch.Tensor:
        q, k = proj(x).chunk(2, dim=-1)  # two (3, 4) views of one (3, 8) buffer
        return q * k

    x = torch.randn(3, 6)
    # Linear saves x (3 x 6); mul saves q and k, both views of the (3 x 8) output: 18 + 24 floats.
    assert saved_tensor_bytes(lambda: forward(x), exclude=[*proj.parameters()]) == (3 * 6 + 3 * 8) * F32


class _TrainOnlySaves(nn.Module):
    """Saves its input for backward only in training mode (``x * w``); in eval mode ``x + w`` saves nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.w if self.training else x + self.w


def test_activation_bytes_measures_a_training_forward_and_restores_the_mode():
    model = _TrainOnlySaves().eval()
    assert activation_bytes(model, (2, 5)) == 2 * 5 * F32  # measured in training mode: mul saved its input
    assert not model.training  # and handed back as it came
    model.train()
    assert activation_bytes(model, (2, 5)) == 2 * 5 * F32 and model.training


def test_activation_bytes_default_clip_is_one_16x224x224_rgb_clip():
    """The default input is the paper's clip (1, 3, 16, 224, 224); on ``meta`` it costs nothing to count."""
    with torch.device("meta"):
        model = _TrainOnlySaves()
    assert activation_bytes(model) == 1 * 3 * 16 * 224 * 224 * F32


def test_cuda_step_builds_the_model_at_the_clips_frames_and_size_unless_overridden():
    """``cuda_training_peak_gib`` builds its model with ``model_for_input``: (B, C, T, H, W) gives num_frames T,
    img_size H."""
    from models.memory import model_for_input

    model = model_for_input("vit_tiny_video", (2, 3, 4, 48, 48), "meta", {})
    assert (model.num_frames, model.img_size) == (4, 48)
    model = model_for_input("vit_tiny_video", (2, 3, 4, 48, 48), "meta", {"num_frames": 8})
    assert (model.num_frames, model.img_size) == (8, 48)


def test_live_bytes_follow_allocation_and_free_and_keep_the_peak():
    with LiveBytes() as probe:
        first = torch.ones(1000)
        second = torch.ones(2000)
        del first  # freed: no longer live
        third = torch.ones(500)
        second.add_(1)  # in place: the same storage, not a new one
        third.mul_(2)
    assert probe.peak == (1000 + 2000) * F32
    assert probe.live == (2000 + 500) * F32
    del second, third


def test_peak_bytes_includes_the_backward_and_its_gradients():
    """Forward output (1000 floats) and the weight's gradient (1000 floats) are alive at once during the backward."""
    weight = torch.ones(1000, requires_grad=True)
    peak = peak_bytes(lambda: weight * 2)
    assert torch.equal(weight.grad, torch.full((1000,), 2.0))  # the backward ran
    assert peak >= 2 * 1000 * F32


# ---- tools.trajectory_memory ----------------------------------------------------------------------------------


def test_memory_benchmark_rows_count_tokens_and_restart_slopes_per_variant():
    rows = trajectory_memory.run(["orthoformer", "exact"], frames=2, sides=[2, 3, 4], dim=8, heads=2, prototypes=4,
                                batch=1, device="meta")
    assert [(r["variant"], r["side"], r["tokens"]) for r in rows] == [
        (v, s, 2 * s * s) for v in ("orthoformer", "exact") for s in (2, 3, 4)]  # N = T * S, the class token apart
    for i, row in enumerate(rows):
        if row["side"] == 2:  # each variant's first size has nothing to compare with
            assert row["saved_slope"] is None and row["peak_slope"] is None, row
            continue
        prev = rows[i - 1]
        for key in ("saved", "peak"):
            expected = (torch.tensor(row[f"{key}_bytes"] / prev[f"{key}_bytes"], dtype=torch.float64).log()
                        / torch.tensor(row["tokens"] / prev["tokens"], dtype=torch.float64).log()).item()
            assert row[f"{key}_slope"] == pytest.approx(expected, abs=1e-3), (key, row)


def test_memory_benchmark_does_not_count_the_layers_input_as_its_activation(monkeypatch):
    """The layer's input stands for the previous layer's output: the saved bytes exclude it with the parameters."""
    excluded_inputs = []
    real = trajectory_memory.saved_tensor_bytes

    def spy(fn, exclude=()):
        exclude = list(exclude)
        excluded_inputs.extend(tuple(t.shape) for t in exclude if not isinstance(t, nn.Parameter))
        return real(fn, exclude=exclude)

    monkeypatch.setattr(trajectory_memory, "saved_tensor_bytes", spy)
    trajectory_memory.measure("exact", frames=2, side=2, dim=8, heads=2, prototypes=4, batch=1, device="meta")
    assert excluded_inputs == [(1, 1 + 2 * 2 * 2, 8)]  # (batch, class token + T * S, dim)


# ---- tools.trajectory_attention -----------------------------------------------------------------------------------


def test_attention_benchmark_times_the_median_of_the_timed_passes_after_the_untimed_ones(monkeypatch):
    """Forward calls: warm-up, memory pass, then timed passes until at least ``repeats`` and 2 s (scripted:
    1.0, 0.1, 0.2 -> 1.3 s, so a fourth of 5.0 s). Memory: fake /proc figures, in MiB."""
    clock = FakeClock()
    timed = [1.0, 0.1, 0.2, 5.0]
    built = []

    def fake_attention(dim, num_heads, qkv_bias, **options):
        layer = ScriptedLayer(clock, lambda n: 100.0 if n < 2 else timed[n - 2], dim)
        built.append(layer)
        return layer

    status = {"VmRSS": [100 * MIB, 130 * MIB], "VmHWM": [150 * MIB]}
    monkeypatch.setattr(trajectory_attention, "TrajectoryAttention", fake_attention)
    monkeypatch.setattr(trajectory_attention, "time", clock.module())
    monkeypatch.setattr(trajectory_attention, "_reset_peak_resident", lambda: None)
    monkeypatch.setattr(trajectory_attention, "_status_bytes", lambda field: status[field].pop(0))
    record = trajectory_attention.measure("tiny", "literal", batch=1, device="cpu", repeats=3, block=False)
    assert built[0].calls == 2 + 4
    assert record["passes"] == 4
    assert record["time_s"] == pytest.approx(0.6)  # median of 0.1, 0.2, 1.0, 5.0 (the mean would be 1.575)
    assert record["time_min_s"] == pytest.approx(0.1)
    assert record["retained_mib"] == pytest.approx(30.0)  # VmRSS after the forward minus before it
    assert record["peak_mib"] == pytest.approx(50.0)  # VmHWM over the pass minus VmRSS before it


def numbers(row: str) -> list:
    """The cells of a github-format table row, numeric ones as floats (tabulate re-formats numeric strings)."""
    cells = [c.strip() for c in row.strip("|").split("|")]
    out = []
    for cell in cells:
        try:
            out.append(float(cell))
        except ValueError:
            out.append(cell)
    return out


def attention_record(variant: str, time_s: float, peak: float, retained: float) -> dict:
    return {"shape": "tiny", "batch": 1, "variant": variant, "time_s": time_s, "time_min_s": time_s / 2,
            "peak_mib": peak, "retained_mib": retained}


def test_attention_table_speed_up_is_literal_over_variant_and_memory_is_variant_over_literal():
    table = trajectory_attention.records_table([attention_record("literal", 0.3, 80.0, 40.0),
                                        attention_record("rearranged", 0.1, 20.0, 30.0)])
    (row,) = [line for line in table.splitlines() if "rearranged" in line]
    assert numbers(row)[3:] == [100.0, 50.0, "3.00x", 20.0, 0.25, 30.0, 0.75]


# ---- tools.shift_family ---------------------------------------------------------------------------------------


def test_shift_benchmark_interleaves_variants_and_reports_the_median(monkeypatch):
    """Each layer's first 4 forwards are untimed (warm-up, saved bytes, peak, op count: 0.5 s each, shorter than any
    timed pass, so one that got timed would show as the minimum); timed passes run round-robin, so with a drift
    (pass k of all takes k^2 s) ViT gets 1, 9, 25 s (median 9, mean 11.7) and TSM 4, 16, 36 s; run one variant
    after the other, ViT would get 1, 4, 9."""
    clock = FakeClock()
    timed_calls = [0]

    def duration(n: int) -> float:
        if n < 4:
            return 0.5
        timed_calls[0] += 1
        return float(timed_calls[0] ** 2)

    def fake_build(shape, variant, unit, batch, dev, compiled=None):
        return ScriptedLayer(clock, duration), (torch.randn(batch, 4, requires_grad=True),)

    monkeypatch.setattr(shift_family, "build_unit", fake_build)
    monkeypatch.setattr(shift_family, "time", clock.module())
    records = shift_family.measure("tiny", ["vit", "tsm"], "block", batch=2, device="cpu", repeats=3,
                                      min_seconds=0.0)
    got = {r["variant"]: (r["time_s"], r["time_min_s"], r["passes"]) for r in records}
    assert got == {"vit": (9.0, 1.0, 3), "tsm": (16.0, 4.0, 3)}
    # the product saves its (2, 4) input for the weight's gradient, and the weight (a parameter: not counted)
    assert all(r["saved_mib"] * MIB == 2 * 4 * F32 for r in records)


def test_shift_table_ratios_divide_by_the_vit():
    base = {"shape": "tiny", "variant": "vit", "ops": 10, "time_s": 0.2, "time_min_s": 0.1, "saved_mib": 4.0,
            "peak_mib": 8.0}
    other = {**base, "variant": "tsm", "time_s": 0.3, "time_min_s": 0.4, "saved_mib": 5.0, "peak_mib": 2.0}
    table = shift_family.records_table([base, other])
    (row,) = [line for line in table.splitlines() if "| tsm" in line]
    assert numbers(row)[3:] == [300.0, 1.5, 400.0, 4.0, 5.0, 1.25, 2.0, 0.25]


# ---- tools.d3da_step -----------------------------------------------------------------------------------


class FakeRgbPose(ScriptedLayer):
    num_frames, img_size = 2, 4

    def __init__(self, clock: FakeClock, durations) -> None:
        super().__init__(clock, durations, dim=5)
        self.pose_embed = types.SimpleNamespace(num_joints=3, pose_dim=2)

    def forward(self, inputs: dict) -> torch.Tensor:
        return super().forward(inputs["video"].mean(dim=(1, 2, 3, 4))[:, None].expand(-1, 5))


def test_rgb_pose_step_time_is_the_median_after_a_warm_up(monkeypatch):
    """Forwards: warm-up step, saved bytes, peak (0.5 s each: one timed would be the minimum), then 5 timed steps of
    1, 2, 3, 10, 20 s."""
    clock = FakeClock()
    timed = [1.0, 2.0, 3.0, 10.0, 20.0]
    model = FakeRgbPose(clock, lambda n: 0.5 if n < 3 else timed[n - 3])
    monkeypatch.setattr(rgb_pose_benchmark, "create_model", lambda name: model)
    monkeypatch.setattr(rgb_pose_benchmark, "time", clock.module())
    record = rgb_pose_benchmark.measure("tiny", batch=2, device="cpu", repeats=5)
    assert model.calls == 3 + 5
    assert (record["step_s"], record["step_min_s"], record["step_cpu_s"]) == (3.0, 1.0, 1.5)  # mean would be 7.2
    assert record["params_m"] == 5 / 1e6


# ---- models.cast.complexity.measure_training ----------------------------------------------------------------------


class _FakeCast(nn.Module):
    """Expert (frozen unless ``train_experts``) then head: ``logits = (x.flatten(1) @ E) @ H``; a forward advances
    the shared clock by ``durations(name, n)`` for its n-th call."""

    num_frames, img_size, width = 2, 3, 7

    def __init__(self, clock: FakeClock, durations, num_classes: int, train_experts: bool) -> None:
        super().__init__()
        self.num_classes, self.key = num_classes, "full" if train_experts else "frozen"
        self.expert = nn.Parameter(torch.randn(3 * 2 * 3 * 3, self.width), requires_grad=train_experts)
        self.head = nn.Parameter(torch.randn(self.width, num_classes))
        self.clock, self.durations, self.calls = clock, durations, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.clock.advance(self.durations(self.key, self.calls))
        self.calls += 1
        return (x.flatten(1) @ self.expert) @ self.head


def test_measure_training_alternates_the_models_and_counts_what_each_saves(monkeypatch):
    """Per model 3 untimed forwards (warm-up, peak, saved bytes: 100 s), then the timed steps alternate frozen, full,
    frozen, ...; with a drift (step k of all takes k^2 s) frozen gets 1, 9, 25 s (median 9, mean 11.7) and full 4,
    16, 36 s; one model after the other, frozen would get 1, 4, 9."""
    clock = FakeClock()
    timed_calls = [0]

    def duration(key: str, n: int) -> float:
        if n < 3:
            return 100.0
        timed_calls[0] += 1
        return float(timed_calls[0] ** 2)

    built = {}

    def fake_create(name, num_classes, train_experts, **overrides):
        built[train_experts] = _FakeCast(clock, duration, num_classes, train_experts)
        return built[train_experts]

    monkeypatch.setattr(cast_complexity, "create_model", fake_create)
    monkeypatch.setattr(cast_complexity, "time", clock.module())
    cost = cast_complexity.measure_training("fake", batch=2, repeats=3, num_classes=5)
    assert cost["frozen"]["step_ms"] == 9e3 and cost["full"]["step_ms"] == 16e3
    assert built[False].calls == built[True].calls == 3 + 3
    # frozen: only (x @ E) is saved (2 x 7) for the head's gradient; full: x (2 x 54) for the expert's as well
    assert cost["frozen"]["saved_for_backward_mib"] * MIB == 2 * 7 * F32
    assert cost["full"]["saved_for_backward_mib"] * MIB == (2 * 54 + 2 * 7) * F32
    assert cost["frozen"]["trainable_params"] == 7 * 5 and cost["full"]["trainable_params"] == 54 * 7 + 7 * 5
    assert cost["trained_fraction"] == 35 / (54 * 7 + 35)


# ---- reports.benchmarks -------------------------------------------------------------------------------------------


def shift_record(variant: str, **fields) -> dict:
    return {"shape": "tiny", "variant": variant, "unit": "block", "batch": 1, "device": "cpu", "compiled": None,
            "ops": 10, "time_s": 2.0, "time_min_s": 1.0, "saved_mib": 4.0, "peak_mib": 8.0, "threads": 1,
            **fields}


def test_records_merge_on_their_setting_and_are_stamped(tmp_path, monkeypatch):
    """A new record replaces the kept one of the same device, unit, shape, batch, compile mode and variant only."""
    import experiments.harness.provenance as provenance
    import models.hardware as hardware
    def fake_run(args):
        return [shift_record(v, batch=args.batch, compiled=args.compile, time_s=float(args.repeats))
                for v in ("vit", *args.variants)]

    monkeypatch.setattr(shift_family, "run", fake_run)
    monkeypatch.setattr(provenance, "git_commit", lambda: "abc123")
    monkeypatch.setattr(hardware, "cpu_name", lambda: "Fake CPU")
    path = tmp_path / "shift_fake.json"
    shift_family.record_shift_benchmark(path, ["--variants", "tsm", "--batch", "1", "--repeats", "1"])
    shift_family.record_shift_benchmark(path, ["--variants", "tsm", "--batch", "2", "--repeats", "2"])
    shift_family.record_shift_benchmark(path, ["--variants", "tsm", "--batch", "1", "--repeats", "3",
                                                    "--compile"])
    new = shift_family.record_shift_benchmark(path, ["--variants", "tsm", "--batch", "2", "--repeats", "4"])
    merged = json.loads(path.read_text())["records"]
    assert [(r["variant"], r["batch"], r["compiled"], r["time_s"]) for r in merged] == [
        ("vit", 1, None, 1.0), ("tsm", 1, None, 1.0), ("vit", 1, "default", 3.0), ("tsm", 1, "default", 3.0),
        ("vit", 2, None, 4.0), ("tsm", 2, None, 4.0)]
    assert merged[-2:] == new
    assert new[0]["device_name"] == f"Fake CPU, {torch.get_num_threads()} thread(s)"
    assert new[0]["commit"] == "abc123" and new[0]["torch"] == torch.__version__
    assert new[0]["command"] == (f"python -m tools shift-family --record {path} --variants tsm --batch 2 --repeats 4")


def test_shift_tables_split_by_device_and_state_memory_ratios(tmp_path):
    stamp = {"torch": "2.x", "commit": "abc", "measured_at": "2026-01-01", "command": "cmd"}
    records = [
        shift_record("vit", device_name="A", time_min_s=0.001, time_s=0.002, saved_mib=2048.0, peak_mib=8.0, **stamp),
        shift_record("tsm", device_name="A", time_min_s=0.002, time_s=0.003, saved_mib=3072.0, peak_mib=8.0, **stamp),
        shift_record("xvit", device_name="A", saved_mib=4096.0, peak_mib=8.0, **stamp),
        shift_record("vit", device_name="B", time_min_s=0.004, time_s=0.005, **stamp),
        shift_record("tsm", device_name="B", time_min_s=0.002, time_s=0.010, **stamp),
    ]
    (tmp_path / "shift_x.json").write_text(json.dumps({"records": records}))
    out = report_benchmarks.shift_tables(tmp_path)
    blocks = out.split("\n\n**")
    assert [b.lstrip("*").split("**")[0] for b in blocks] == ["A", "B"]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in out.splitlines()
            if line.startswith("| block, tiny, 1")]
    assert [r[2] for r in rows] == ["1.00 (2.00)", "4.00 (5.00)"]  # ViT ms: min (median), each device's own ViT
    assert rows[0][6] == "2.000 (1.500)" and rows[1][6] == "0.500 (2.000)"  # TSM / ViT by min (median)
    assert rows[0][9] == "saved for backward 2.00 GiB, 1.500–2.000×; peak 8.00 MiB, all equal"



def test_shift_table_rows_follow_unit_shape_batch_and_mode_not_the_order_measured(tmp_path):
    """A re-measured row is appended to its file; the table still reads block before model, tiny before paper, the
    smaller batch first, then eager, compiled (default), CUDA graphs."""
    stamp = {"device_name": "A", "torch": "2.x", "commit": "abc", "measured_at": "2026-01-01", "command": "cmd"}
    settings = [("model", "tiny", 1, None), ("block", "paper", 1, None), ("block", "tiny", 1, "reduce-overhead"),
                ("block", "tiny", 16, None), ("block", "tiny", 1, None), ("block", "tiny", 1, "default")]
    records = [shift_record(v, unit=u, shape=s, batch=b, compiled=c, **stamp)
               for u, s, b, c in settings for v in ("vit", "tsm")]
    (tmp_path / "shift_x.json").write_text(json.dumps({"records": records}))
    rows = [[c.strip() for c in line.strip("|").split("|")][:2] for line in
            report_benchmarks.shift_tables(tmp_path).splitlines() if line.startswith(("| block", "| model"))]
    assert rows == [["block, tiny, 1", "eager"], ["block, tiny, 1", "compiled (default)"],
                    ["block, tiny, 1", "compiled (reduce-overhead)"], ["block, tiny, 16", "eager"],
                    ["block, paper, 1", "eager"], ["model, tiny, 1", "eager"]]

def test_a_file_measured_for_the_vit_alone_renders_its_memory_without_ratios(tmp_path):
    """``shift-family --variants vit`` writes the baseline alone: its row states the ViT's memory (it once
    failed on the minimum of no ratios)."""
    stamp = {"device_name": "A", "torch": "2.x", "commit": "abc", "measured_at": "2026-01-01", "command": "cmd"}
    record = shift_record("vit", time_min_s=0.001, time_s=0.002, saved_mib=2048.0, peak_mib=8.0, **stamp)
    (tmp_path / "shift_x.json").write_text(json.dumps({"records": [record]}))
    (row,) = [line for line in report_benchmarks.shift_tables(tmp_path).splitlines()
              if line.startswith("| block, tiny, 1")]
    assert row.strip("|").split("|")[9].strip() == "saved for backward 2.00 GiB; peak 8.00 MiB"


@pytest.mark.parametrize("missing", ["command", "time_min_s"])
def test_a_record_without_its_command_or_minimum_time_is_refused_by_name(tmp_path, missing):
    """Every table row names the command that re-measures it and divides minimum times: a record lacking either is
    an error naming the file and the field, not a row rendered without it."""
    stamp = {"device_name": "A", "torch": "2.x", "commit": "abc", "measured_at": "2026-01-01", "command": "cmd"}
    record = shift_record("vit", **stamp)
    del record[missing]
    path = tmp_path / "shift_x.json"
    path.write_text(json.dumps({"records": [record]}))
    with pytest.raises(ValueError, match=f"^{path}: not a benchmark file \\(missing key 'records.0.{missing}'\\)"):
        report_benchmarks.read_records(path)


@pytest.mark.parametrize("damage, said", [
    ({"time_s": "fast"}, "records.0.time_s: Input should be a valid number"),
    ({"time_min_s": float("inf")}, "records.0.time_min_s: Input should be a finite number"),
    ({"batch": "16"}, "records.0.batch: Input should be a valid integer"),
    ({"variant": None}, "records.0.variant: Input should be a valid string"),
])
def test_a_shift_record_of_the_wrong_type_is_one_line_naming_the_file_and_field(tmp_path, damage, said):
    stamp = {"device_name": "A", "torch": "2.x", "commit": "abc", "measured_at": "2026-01-01", "command": "cmd"}
    path = tmp_path / "shift_x.json"
    path.write_text(json.dumps({"records": [{**shift_record("vit", **stamp), **damage}]}))
    with pytest.raises(ValueError) as caught:
        report_benchmarks.shift_tables(tmp_path)
    message = str(caught.value)
    assert message.startswith(f"{path}: not a benchmark file ({said}") and "\n" not in message, message
