"""The output gradient every SDPA call hands its backward kernel: one layout per layout of q, k and v.

PyTorch's cuDNN attention caches a backward graph per (q, k, v) layout with the first call's output-gradient strides
built in (``models.attention.joint._DenseOutputGrad``). These tests run on the CPU and record, at each SDPA call of a
training step, the layouts a GPU would key and bake, for models that one process may train one after another (the
rows of a table, a smoke sweep's lane).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import models.attention.joint as joint
from models import create_model

# Models one process may train in turn at one shape: Motionformer Table 4's rows and Table 3's approximations.
TABLE_ROWS = {
    "joint": {"attn_layer": "joint"},
    "divided": {"attn_layer": "divided"},
    "traj_avgT_normS": {"attn_layer": "trajectory", "attn_kwargs": {"temporal_pool": "average"}},
    "traj_attT_normST": {"attn_layer": "trajectory", "attn_kwargs": {"normalize": "spacetime"}},
    "traj_attT_normS": {"attn_layer": "trajectory"},
    "traj_attT_autograd": {"attn_layer": "trajectory", "attn_kwargs": {"memory_lean": False}},
    "orthoformer": {"attn_layer": "trajectory_approx", "attn_kwargs": {"num_prototypes": 8}},
}


def _layouts(monkeypatch, rows, batch=2, model="vit_tiny_video", frames=8, size=32, device="cpu"):
    """Per SDPA call of one training step of each row: (row, (q, k, v) sizes and strides, dO strides, dO offset in
    bytes modulo 16, dO contiguous)."""
    seen = []
    sdpa = F.scaled_dot_product_attention

    def recording(q, k, v, *args, **kwargs):
        out = sdpa(q, k, v, *args, **kwargs)
        key = tuple((tuple(t.shape), tuple(t.stride())) for t in (q, k, v))

        def hook(grad):
            seen.append((row, key, tuple(grad.stride()), grad.data_ptr() % 16, grad.is_contiguous()))
        out.register_hook(hook)
        return out

    monkeypatch.setattr(F, "scaled_dot_product_attention", recording)
    for row in rows:
        torch.manual_seed(0)
        with torch.device(device):
            net = create_model(model, num_classes=3, **TABLE_ROWS[row])
            net(torch.randn(batch, 3, frames, size, size)).sum().backward()
    return seen


def _shared_keys_with_other_grads(seen):
    """The (q, k, v) layouts whose calls got more than one output-gradient layout: {key: {dO strides: rows}}."""
    by_key: dict = {}
    for row, key, strides, _, _ in seen:
        by_key.setdefault(key, {}).setdefault(strides, set()).add(row)
    return {key: grads for key, grads in by_key.items() if len(grads) > 1}


def test_without_the_guard_avg_t_and_att_t_hand_one_cached_graph_two_gradient_layouts(monkeypatch):
    """The failure the guard exists for, as the GPU sweeps met it (an illegal memory access in the Att_T run after
    the Avg_T run, in one process): the CLS query's attention has the same q, k, v in both rows, and its output
    gradient reaches the kernel with another batch stride."""
    monkeypatch.setattr(joint, "GRAD_LAYOUT_DEVICES", frozenset())
    clashes = _shared_keys_with_other_grads(_layouts(monkeypatch, ["traj_avgT_normS", "traj_attT_normS"]))
    assert len(clashes) == 1
    (key, grads), = clashes.items()
    assert key[0][0][2] == 1  # one query: the CLS token
    assert sorted(map(sorted, grads.values())) == [["traj_attT_normS"], ["traj_avgT_normS"]]


def test_the_clash_at_the_paper_shape(monkeypatch):
    """Table 4's K-400 runs (ViT-B, 16 x 224^2, the paper's batch of 4; on the meta device): the CLS call's output
    gradient differs in the stride of its one-query axis (C after Avg_T, d after the lean Att_T)."""
    seen = _layouts(monkeypatch, ["traj_avgT_normS", "traj_attT_normS"], batch=4, model="vit_base_patch16_video",
                    frames=16, size=224, device="meta")
    (key, grads), = _shared_keys_with_other_grads(seen).items()
    assert key[0] == ((4, 12, 1, 64), (1569 * 2304, 64, 2304, 1))  # q of the CLS token, a slice of qkv
    assert grads == {(1569 * 768, 64, 768, 1): {"traj_avgT_normS"}, (1569 * 768, 64, 64, 1): {"traj_attT_normS"}}


def test_at_the_benchmark_shape_only_the_cls_gradient_needs_a_copy(monkeypatch):
    """What the guard costs at tools.trajectory_step's shape (ViT-B, 16 x 224^2, batch 8; one block, on meta):
    stage one's output gradient already has a fresh tensor's strides (the reshape before it copies); only the CLS
    query's (8 x 12 x 1 x 64 values) is copied."""
    seen = _layouts(monkeypatch, ["traj_avgT_normS", "traj_attT_normS"], batch=8, model="vit_base_patch16_video",
                    frames=16, size=224, device="meta")
    fresh = {(row, key[0][0]): strides == joint._fresh_strides(torch.Size(key[0][0])) for row, key, strides, *_ in seen}
    assert fresh == {("traj_avgT_normS", (96, 8, 1568, 64)): True, ("traj_avgT_normS", (8, 12, 1, 64)): False,
                     ("traj_attT_normS", (96, 8, 1568, 64)): True, ("traj_attT_normS", (8, 12, 1, 64)): False}


@pytest.mark.parametrize("batch", [1, 2])
def test_with_the_guard_every_qkv_layout_gets_one_dense_aligned_gradient(monkeypatch, batch):
    """At batch 1 the two CLS gradients are both "contiguous" to torch, which ignores the strides of size-1 axes;
    cuDNN's graph still holds them, so the guard hands on the canonical strides, those of a fresh tensor."""
    monkeypatch.setattr(joint, "GRAD_LAYOUT_DEVICES", frozenset({"cpu", "cuda"}))
    seen = _layouts(monkeypatch, list(TABLE_ROWS), batch=batch)
    assert {row for row, *_ in seen} == set(TABLE_ROWS)
    assert _shared_keys_with_other_grads(seen) == {}
    assert all(contiguous and offset == 0 for *_, offset, contiguous in seen), seen


def test_the_guard_changes_no_value(monkeypatch):
    """Outputs and every gradient are the same bits with and without it."""
    def step():
        torch.manual_seed(0)
        model = create_model("vit_tiny_video", num_classes=3, **TABLE_ROWS["traj_avgT_normS"])
        x = torch.randn(2, 3, 8, 32, 32, requires_grad=True)
        out = model(x)
        out.sum().backward()
        return [out.detach(), x.grad, *(p.grad for p in model.parameters())]

    monkeypatch.setattr(joint, "GRAD_LAYOUT_DEVICES", frozenset())
    plain = step()
    monkeypatch.setattr(joint, "GRAD_LAYOUT_DEVICES", frozenset({"cpu"}))
    assert all(torch.equal(a, b) for a, b in zip(plain, step(), strict=True))


def test_the_guard_is_on_for_cuda_only_by_default():
    assert joint.GRAD_LAYOUT_DEVICES == frozenset({"cuda"})
    out = joint.sdpa(*(torch.randn(1, 1, 2, 4, requires_grad=True) for _ in range(3)))
    assert out.grad_fn.name() != "_DenseOutputGradBackward"


@pytest.mark.parametrize("shape", [(2, 4, 1, 16), (1, 12, 1, 64), (3, 0, 2), (5,)])
def test_fresh_strides_are_those_of_a_new_tensor(shape):
    assert joint._fresh_strides(torch.Size(shape)) == torch.empty(shape).stride()


def test_every_sdpa_call_of_the_models_goes_through_the_guard():
    """A variant that called ``F.scaled_dot_product_attention`` itself would bring the shared-graph hazard back."""
    import models

    root = Path(models.__file__).parent
    calls = [(path.relative_to(root).as_posix(), line.strip()) for path in sorted(root.rglob("*.py"))
             for line in path.read_text().splitlines()
             if "scaled_dot_product_attention(" in line and "``" not in line and not line.lstrip().startswith("#")]
    assert calls == [("attention/joint.py", "out = F.scaled_dot_product_attention(q, k, v, **options)")], calls
