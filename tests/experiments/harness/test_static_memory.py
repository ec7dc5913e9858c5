"""Audit of ``models.memory`` and ``experiments.harness.static`` by mutation: what the existing tests let through.

Every expectation is a literal or a byte count worked out by hand from shapes (float32 = 4 bytes); the code under
test never computes its own expectation. Models are small, or stand-ins (monkeypatched builders and counters), so
the file runs in a few seconds:
- ``saved_tensor_bytes``: bytes per element follow the dtype; a parameter saved by a later layer is seen and
  excluded, every excluded tensor (not only the first); ``activation_bytes`` excludes buffers as well as parameters;
- ``LiveBytes``: bytes follow the dtype, a freed tensor leaves the live count but not the peak, and a view of a
  tensor that existed before the probe is not counted as created;
- ``model_activation_bytes``: explicit overrides beat the clip's frames/size, and without a clip the model's own;
- ``lra_training_memory_mb`` without a GPU: MB = 2^20 bytes, the full batch (and both sequences of a dual task);
- ``peak_memory``: ratio = row / reference (not the inverse), each at its own clip, the default reference is the
  first row, GiB = 2^30, a CPU cell says ``needs GPU``; a measured cell is batch 4, 400 classes, ``measured on``;
- ``gflops_views``: the test protocol of the column's dataset (crops x clips); ``paper_gflops`` names our own
  count when it differs from the published one by more than 0.05;
- ``keep_measured``: only a ``needs GPU`` cell yields to an earlier measurement, which keeps its configuration;
  configurations nobody uses are dropped;
- ``compute_static``: the record's cells (value, text, source, configuration), the device, string / float cells;
- ``stale_note``: a cell's ``configuration_note`` is quoted.
"""

from __future__ import annotations

import types

import pytest
import torch
from torch import nn

import experiments.harness.static as static
import models  # noqa: F401  (repairs torchvision before anything imports timm)
import models.memory as memory
from experiments.harness.spec import Computed, StaticColumn, table_spec
from experiments.harness.static import (
    MEASURED,
    NEEDS_GPU,
    compute_static,
    gflops_views,
    keep_measured,
    memory_inputs,
    paper_model_inputs,
    peak_memory,
    stale_note,
)
from models.memory import activation_bytes, model_activation_bytes, peak_bytes, saved_tensor_bytes
from tests.tools.test_measurement import F32

GIB = 2**30


# ---- models.memory ------------------------------------------------------------------------------------------------


def test_a_parameter_saved_by_a_later_layer_is_seen_and_every_excluded_storage_is_left_out():
    """The second Linear's input requires grad, so its matmul saves the weight (a view of a parameter): counted
    when not excluded, left out when it is, whichever position it holds in ``exclude``."""
    torch.manual_seed(0)
    first, second = nn.Linear(6, 8), nn.Linear(8, 5)
    x = torch.randn(3, 6)

    def forward():
        return second(first(x))

    # first saves x (3x6); second saves its input (3x8) and its weight (5x8): x has no grad, so first's weight is not
    assert saved_tensor_bytes(forward) == (3 * 6 + 3 * 8 + 5 * 8) * F32
    assert saved_tensor_bytes(forward, exclude=[*first.parameters(), *second.parameters()]) == (3 * 6 + 3 * 8) * F32
    assert saved_tensor_bytes(forward, exclude=[second.bias, first.weight, second.weight]) == (3 * 6 + 3 * 8) * F32


@pytest.mark.parametrize("dtype,size", [(torch.float16, 2), (torch.bfloat16, 2), (torch.float64, 8)])
def test_saved_bytes_follow_the_dtype(dtype, size):
    """``x * w`` saves x: 3 x 4 elements of ``size`` bytes each, not of float32's 4."""
    x, w = torch.ones(3, 4, dtype=dtype), torch.ones(4, dtype=dtype, requires_grad=True)
    assert saved_tensor_bytes(lambda: x * w, exclude=[w]) == 3 * 4 * size


def test_live_bytes_follow_the_dtype_and_the_peak_outlasts_what_is_left():
    from models.memory import LiveBytes

    with LiveBytes() as probe:
        half = torch.ones(1000, dtype=torch.float16)
        double = torch.ones(100, dtype=torch.float64)
    assert probe.peak == probe.live == 1000 * 2 + 100 * 8
    del half, double
    # w * 2 (1000 floats) is alive when the backward makes w's 1000-float gradient; once it is dropped, what is left
    # is below the peak of both at once
    weight = torch.ones(1000, requires_grad=True)
    with LiveBytes() as probe:
        out = weight * 2
        out.sum().backward()
        del out
    assert probe.live < 2 * 1000 * F32 <= probe.peak


class _ScaledByBuffer(nn.Module):
    """``x * w * scale``: the first product saves x (w needs its grad), the second saves the buffer ``scale``."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(()))
        self.register_buffer("scale", torch.full((2, 5), 3.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.w * self.scale


def test_activation_bytes_excludes_buffers_as_well_as_parameters():
    model = _ScaledByBuffer()
    assert saved_tensor_bytes(lambda: model(torch.randn(2, 5))) == (2 * 5 + 2 * 5) * F32  # the buffer is saved
    assert activation_bytes(model, (2, 5)) == 2 * 5 * F32  # ... and not counted as an activation


class _ClipModel(nn.Module):
    """A stand-in for a registered video model: saves its input clip, remembers how it was built."""

    def __init__(self, num_frames: int = 2, img_size: int = 3, **kwargs) -> None:
        super().__init__()
        self.num_frames, self.img_size, self.kwargs = num_frames, img_size, kwargs
        self.w = nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.w


def test_model_activation_bytes_overrides_beat_the_clip_and_the_default_clip_is_the_models(monkeypatch):
    built = []

    def create_model(name, **kwargs):
        built.append((name, kwargs))
        return _ClipModel(**kwargs)

    monkeypatch.setattr(memory, "create_model", create_model)
    # no clip given: the model's own (1, 3, 2, 3, 3) clip, 18 floats per channel x 3 channels
    assert model_activation_bytes("fake") == 1 * 3 * 2 * 3 * 3 * F32
    assert built[-1] == ("fake", {})
    # a clip gives the frame count and size, unless an override names them
    assert model_activation_bytes("fake", (2, 3, 4, 5, 5), num_frames=7, depth=1) == 2 * 3 * 4 * 5 * 5 * F32
    assert built[-1] == ("fake", {"num_frames": 7, "img_size": 5, "depth": 1})


class _FakeLRA(nn.Module):
    """Saves its tokens as floats (``w * tokens.float()``): batch x [2 x] length x 4 bytes."""

    def __init__(self, dual: bool, **kwargs) -> None:
        super().__init__()
        self.dual, self.vocab_size, self.num_classes, self.kwargs = dual, 10, 2, kwargs
        self.w = nn.Parameter(torch.ones(()))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.w * tokens.float()


@pytest.mark.parametrize("dual", [False, True])
def test_lra_memory_without_gpu_is_mebibytes_of_the_whole_batch(monkeypatch, dual):
    if torch.cuda.is_available():
        pytest.skip("on a GPU the function measures; this covers the CPU fallback")
    built = []

    def create_model(name, **kwargs):
        built.append((name, kwargs))
        return _FakeLRA(dual, **kwargs)

    monkeypatch.setattr(memory, "create_model", create_model)
    mb, how = memory.lra_training_memory_mb("performer", 256, model="lra_text", batch_size=32, seq_len=2048)
    # 32 x 2048 float tokens = 262,144 bytes = 0.25 MiB (twice that for two sequences)
    assert mb == (0.5 if dual else 0.25)
    assert how == "needs GPU; activations saved for backward, batch 32, meta device"
    assert built == [("lra_text", {"attention": "performer", "budget": 256, "max_len": 2048})]


# ---- experiments.harness.static: the memory column -----------------------------------------------------------------


@pytest.fixture
def fake_memory(monkeypatch):
    """Stand-ins for the model builder and the two memory counters; returns what they were called with."""
    calls = {"bytes": [], "cuda": [], "cuda_result": None,
             "activations": {"exact": 3 * GIB, "performer": GIB + GIB // 2, "orthoformer": GIB // 4,
                             "mformer_b": 2 * GIB, "mformer_h": 5 * GIB}}
    monkeypatch.setattr(static, "build_model", lambda cfg, num_classes, device="cpu": types.SimpleNamespace(
        row=cfg.row, num_classes=num_classes, device=device))

    def activation_bytes(model, shape):
        assert (model.num_classes, model.device) == (400, "meta")
        calls["bytes"].append((model.row, shape))
        return calls["activations"][model.row]

    def cuda_training_peak_gib(name, input_shape, **overrides):
        calls["cuda"].append((name, input_shape, overrides))
        return calls["cuda_result"]

    monkeypatch.setattr(memory, "activation_bytes", activation_bytes)
    monkeypatch.setattr(memory, "cuda_training_peak_gib", cuda_training_peak_gib)
    return calls


def test_memory_cell_without_gpu_is_the_ratio_of_the_rows_activations_to_the_first_rows(fake_memory):
    spec = table_spec("mformer_table3a")
    cell = peak_memory()(spec, spec.row("performer"))  # no reference given: the table's first row, `exact`
    assert cell == Computed(0.5, "needs GPU; activations 1.50 GiB/clip = 0.50× `exact`", "needs GPU")
    assert fake_memory["bytes"] == [("performer", (1, 3, 16, 224, 224)), ("exact", (1, 3, 16, 224, 224))]
    assert peak_memory()(spec, spec.row("orthoformer")).value == 1 / 12


def test_memory_cell_counts_the_reference_at_its_own_clip(fake_memory):
    """Table 7: Mformer-H (336 px) against the Mformer-B reference (224 px)."""
    spec = table_spec("mformer_table7")
    column = spec.static_columns[1]
    cell = column.compute(spec, spec.row("mformer_h"))
    assert cell == Computed(2.5, "needs GPU; activations 5.00 GiB/clip = 2.50× `mformer_b`", NEEDS_GPU)
    assert fake_memory["bytes"] == [("mformer_h", (1, 3, 16, 336, 336)), ("mformer_b", (1, 3, 16, 224, 224))]


def test_memory_cell_measured_on_a_gpu_is_batch_4_of_400_classes_and_says_where(fake_memory, monkeypatch):
    monkeypatch.setattr(static, "measured_device", lambda: "NVIDIA H100")
    fake_memory["cuda_result"] = 7.3
    spec = table_spec("mformer_table7")
    cell = spec.static_columns[1].compute(spec, spec.row("mformer_h"))
    assert cell == Computed(7.3, "7.3 GiB (measured, batch 4, NVIDIA H100)", "measured on NVIDIA H100")
    ((name, shape, overrides),) = fake_memory["cuda"]
    assert (name, shape, overrides["num_classes"]) == ("vit_large_patch16_video", (4, 3, 16, 336, 336), 400)
    assert fake_memory["bytes"] == []  # nothing counted on meta when a GPU measured


# ---- experiments.harness.static: GFLOPs x views --------------------------------------------------------------------


def test_views_cell_uses_the_test_protocol_of_its_columns_dataset(monkeypatch):
    """Table 3a runs K-400 (3 crops x 10 clips) and SSv2 (3 crops x 1 clip): the column's data key picks which."""
    monkeypatch.setattr(static, "gflops", lambda cfg, formulation="published": 100.0)
    spec = table_spec("mformer_table3a")
    assert gflops_views("SSv2")(spec, spec.row("exact")).text == "100.0×3×1 (computed)"
    assert gflops_views("K-400")(spec, spec.row("exact")).text == "100.0×3×10 (computed)"


@pytest.mark.parametrize("ours,text", [(99.9, "100.0 (computed; 99.9 as we compute it)"), (100.04, "100.0 (computed)")])
def test_gflops_cell_names_our_count_when_it_differs_by_a_tenth(monkeypatch, ours, text):
    monkeypatch.setattr(static, "gflops", lambda cfg, formulation="published": 100.0 if formulation == "published"
                        else ours)
    spec = table_spec("mformer_table4")
    assert static.paper_gflops(spec, spec.row("joint")) == Computed(100.0, text)


# ---- experiments.harness.static: the record ------------------------------------------------------------------------


def _cell(source, value=1.0, configuration="today"):
    return {"value": value, "text": f"{value} ({source})", "source": source, "configuration": configuration}


def test_only_a_needs_gpu_cell_yields_to_an_earlier_measurement_which_keeps_its_configuration():
    previous = {"cells": {"a": {"Mem.": _cell("measured on NVIDIA A100", 9.0, "old")},
                          "b": {"Mem.": _cell("measured on NVIDIA A100", 9.0, "old")},
                          "c": {"Mem.": _cell(NEEDS_GPU, 0.9, "old")}},
                "configurations": {"old": {"model": "old"}, "unused": {"model": "unused"}}}
    record = {"cells": {"a": {"Mem.": _cell(NEEDS_GPU, 0.5)},
                        "b": {"Mem.": _cell("measured on NVIDIA H100", 7.0)},
                        "c": {"Mem.": _cell(NEEDS_GPU, 0.6)}},
              "configurations": {"today": {"model": "today"}}}
    merged = keep_measured(previous, record)
    assert merged["cells"]["a"]["Mem."] == _cell("measured on NVIDIA A100", 9.0, "old")  # kept: this run can't measure
    assert merged["cells"]["b"]["Mem."] == _cell("measured on NVIDIA H100", 7.0)  # a new measurement wins
    assert merged["cells"]["c"]["Mem."] == _cell(NEEDS_GPU, 0.6)  # an old stand-in does not
    # the kept cell's configuration stays with it; one no cell refers to is dropped
    assert merged["configurations"] == {"old": {"model": "old"}, "today": {"model": "today"}}


def _tiny_static_spec(compute):
    """Table 4's rows with one cheap static column whose inputs name the row's key."""
    import dataclasses

    spec = table_spec("mformer_table4")
    column = StaticColumn("Cost", compute, digits=3, inputs=lambda spec, row: {"model": row.key})
    return dataclasses.replace(spec, static_columns=(column,)), column


def test_compute_static_records_each_cell_its_source_configuration_and_device(tmp_path, monkeypatch):
    monkeypatch.setattr(static, "measured_device", lambda: "NVIDIA H100")
    values = {"joint": 1.23456, "divided": "rendered text"}

    def compute(spec, row):
        return values.get(row.key, Computed(2.0, "2.0 (measured)", MEASURED + "NVIDIA H100"))

    spec, _ = _tiny_static_spec(compute)
    record = compute_static(spec, tmp_path, commit="abc", echo=lambda _: None)
    assert record["device"] == "NVIDIA H100" and record["git_commit"] == "abc"
    joint, divided = record["cells"]["joint"]["Cost"], record["cells"]["divided"]["Cost"]
    assert (joint["value"], joint["text"], joint["source"]) == (1.23456, "1.235 (computed)", "computed")
    assert (divided["value"], divided["text"], divided["source"]) == (None, "rendered text", "rendered")
    assert {c["Cost"]["source"] for k, c in record["cells"].items() if k not in values} == {"measured on NVIDIA H100"}
    # every cell points at its own configuration, stored once
    assert {record["configurations"][c["Cost"]["configuration"]]["model"] for c in record["cells"].values()} == {
        row.key for row in spec.rows}
    assert len(record["configurations"]) == len(spec.rows)


def test_a_measurement_kept_across_runs_keeps_the_configuration_it_was_measured_for(tmp_path, monkeypatch):
    spec, column = _tiny_static_spec(lambda spec, row: Computed(GIB, "1.0 GiB (measured)", "measured on H100"))
    compute_static(spec, tmp_path, echo=lambda _: None)
    # the configuration changes, and this machine can no longer measure
    import dataclasses

    spec = dataclasses.replace(spec, static_columns=(StaticColumn(
        "Cost", lambda spec, row: Computed(0.5, "needs GPU; 0.50×", NEEDS_GPU),
        inputs=lambda spec, row: {"model": row.key, "depth": 2}),))
    record = compute_static(spec, tmp_path, echo=lambda _: None)
    cell = record["cells"]["joint"]["Cost"]
    assert cell["source"] == "measured on H100"
    assert record["configurations"][cell["configuration"]] == {"model": "joint"}
    assert stale_note(spec.static_columns[0], spec, spec.row("joint"), record, cell) == (
        "measured for another configuration: depth (absent) → 2; `python -m experiments static mformer_table4` "
        "on such a device makes it again")


def test_stale_note_quotes_the_cells_configuration_note(tmp_path):
    spec, column = _tiny_static_spec(lambda spec, row: 1.0)
    record = {"configurations": {"k": {"model": "other"}}}
    cell = {"source": "computed", "configuration": "k", "configuration_note": "as tracked before the rename"}
    assert stale_note(column, spec, spec.row("joint"), record, cell) == (
        'computed for another configuration (as tracked before the rename): model "other" → "joint"; '
        "`python -m experiments static mformer_table4` makes it again")


def test_a_view_of_a_tensor_that_existed_before_is_not_counted_as_created():
    """``F.linear`` takes ``weight.t()``, a model reshapes its input: views of storages that existed before the
    probe. They once counted as created at their storage's full size (a 1000-weight Linear's peak: 8012 bytes, its
    weight twice over with its gradient); the peak is now the one of the same step written without the views."""
    weight = torch.nn.Parameter(torch.ones(1, 1000))
    weight_t = torch.nn.Parameter(torch.ones(1000, 1))  # the same matrix, already transposed
    x = torch.ones(1, 1000)
    linear = peak_bytes(lambda: torch.nn.functional.linear(x, weight))
    assert linear == peak_bytes(lambda: x @ weight_t)
    assert 1000 * F32 <= linear < 2 * 1000 * F32  # the weight's gradient, not the weight itself as well
    scale = torch.nn.Parameter(torch.ones(()))
    flat = torch.ones(1000)
    assert peak_bytes(lambda: (x.view(1000) * scale).sum()) == peak_bytes(lambda: (flat * scale).sum())


def test_a_memory_cell_names_the_trajectory_backward_it_was_measured_with():
    """The lean trajectory backward (the default) and the autograd stage two keep different bytes under the same
    model options: Table 3a's memory cells are a function of which one ran, and a cell measured before the
    configuration said so is flagged."""
    spec = table_spec("mformer_table3a")
    column = next(c for c in spec.static_columns if c.column == "Mem.")
    exact = spec.row("exact")
    today = memory_inputs(spec, exact)
    assert today["trajectory_backward"] == "lean"
    assert today == {**paper_model_inputs(spec, exact), "trajectory_backward": "lean",
                     "training_step": "adamw_moments_made_first"}
    base = paper_model_inputs(spec, exact)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(static, "paper_model_inputs", lambda spec, row: {
            **base, "attn_kwargs": {**base["attn_kwargs"], "memory_lean": False}})
        assert memory_inputs(spec, exact)["trajectory_backward"] == "autograd"
    before = paper_model_inputs(spec, exact)  # what a record of the autograd days stored
    record = {"configurations": {"k": before}}
    cell = {"source": "measured on NVIDIA H100", "configuration": "k"}
    assert stale_note(column, spec, exact, record, cell) == (
        'measured for another configuration: training_step (absent) → "adamw_moments_made_first", '
        'trajectory_backward (absent) → "lean"; `python -m experiments static mformer_table3a` on such a device '
        'makes it again')
    record = {"configurations": {"k": today}}
    assert stale_note(column, spec, exact, record, cell) is None
    joint = table_spec("mformer_table4").row("joint")
    assert "trajectory_backward" not in memory_inputs(table_spec("mformer_table4"), joint)


def test_a_memory_cell_is_measured_with_the_stage_two_it_states(fake_memory, monkeypatch):
    """On a GPU trajectory attention's stage two defaults to the fused kernel; a memory cell that states the lean
    path (the default statement) is measured with it, pinned by ``stage_two_kernel="pytorch"``. A row that asks for
    the kernel states "fused" and is measured as it asks; joint attention gets no such option."""
    monkeypatch.setattr(static, "measured_device", lambda: "NVIDIA H100")
    fake_memory["cuda_result"] = 5.0
    spec = table_spec("mformer_table3a")
    column = next(c for c in spec.static_columns if c.column == "Mem.")
    for row in ("exact", "orthoformer"):
        column.compute(spec, spec.row(row))
        assert fake_memory["cuda"][-1][2]["attn_kwargs"]["stage_two_kernel"] == "pytorch", row
        assert memory_inputs(spec, spec.row(row))["trajectory_backward"] == "lean"
    exact = spec.row("exact")
    base = paper_model_inputs(spec, exact)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(static, "paper_model_inputs", lambda spec, row: {
            **base, "attn_kwargs": {**base["attn_kwargs"], "stage_two_kernel": "triton"}})
        assert memory_inputs(spec, exact)["trajectory_backward"] == "fused"
    joint_spec = table_spec("mformer_table4")
    peak_memory()(joint_spec, joint_spec.row("joint"))
    assert "stage_two_kernel" not in (fake_memory["cuda"][-1][2].get("attn_kwargs") or {})


def test_a_static_record_names_the_cpu_it_was_computed_on_as_the_benchmarks_do(monkeypatch):
    import torch

    from models.hardware import cpu_name, device_name

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert static.measured_device() == device_name("cpu") and static.measured_device().startswith(cpu_name())
