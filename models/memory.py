"""Activation memory of one training forward: the bytes of every tensor autograd saves for the backward pass.

This is the CPU-measurable stand-in for the "max CUDA memory" columns of Motionformer Tables 3 and 7, which need
a GPU: during training the saved activations dominate peak memory and are what an attention approximation
shrinks. It is not the peak (weights, gradients, optimizer state and transient buffers are not counted).

Counting: ``torch.autograd.graph.saved_tensors_hooks`` sees every tensor an op saves; tensors are grouped by
their storage (views of one buffer, e.g. q, k, v sliced from the qkv projection, count once, with the whole
buffer's size) and parameter/buffer storages are excluded. The input clip is counted (the patch embedding saves
it). The model can live on the ``meta`` device: ops then only propagate shapes, so paper-scale models cost no
memory and little time. Which tensors an op saves can depend on the device's kernels (SDPA on a CPU saves its
output and log-sum-exp, the math path its attention matrix), so compare numbers measured on the same device.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from .registry import create_model


def saved_tensor_bytes(fn: Callable[[], Any], exclude: Iterable[Tensor] = ()) -> int:
    """Bytes of the distinct storages that autograd saves for backward while ``fn()`` runs.

    Storages of the tensors in ``exclude`` (parameters, buffers) are not counted. The result of ``fn`` is kept
    alive until the count is done, so the graph holds every saved tensor and storage identities stay unique.
    """
    excluded = {t.untyped_storage()._cdata for t in exclude}
    saved: dict[int, int] = {}

    def pack(t: Tensor) -> Tensor:
        storage = t.untyped_storage()
        if storage._cdata not in excluded:
            saved[storage._cdata] = storage.nbytes()
        # Detached: a node that saves its own output would otherwise hold that output, and through its grad_fn
        # itself, in a reference cycle inside autograd that Python's collector cannot see (the graph leaked).
        return t.detach()

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    total = sum(saved.values())
    del out
    return total


class LiveBytes(TorchDispatchMode):
    """Tracks the bytes of the storages created by aten ops while active and still alive; keeps the maximum.

    A storage is counted from the op that first returns it until it is freed (a finalizer on its Python object,
    which torch keeps alive exactly as long as the storage). A storage an op reads before any op returned it
    existed before (a weight, the input) and is never counted, not even when an op returns a view of it
    (``F.linear``'s ``weight.t()``, a reshaped input). Memory an op allocates internally and frees before
    returning (workspaces), allocator caching and fragmentation are not seen.
    """

    def __init__(self) -> None:
        super().__init__()
        self.live = self.peak = 0
        self._counted: set[int] = set()
        self._existing: set[int] = set()

    def _release(self, key: int, nbytes: int) -> None:
        self.live -= nbytes
        self._counted.discard(key)

    def _forget(self, key: int) -> None:  # a freed storage's address may be reused by a new one
        self._existing.discard(key)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        for t in tree_leaves((args, kwargs)):
            if isinstance(t, Tensor):
                storage = t.untyped_storage()
                key = storage._cdata
                if key not in self._counted and key not in self._existing:
                    self._existing.add(key)
                    weakref.finalize(storage, self._forget, key)
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else [out]:
            if isinstance(t, Tensor):
                storage = t.untyped_storage()
                key = storage._cdata
                if key not in self._counted and key not in self._existing:
                    self._counted.add(key)
                    self.live += storage.nbytes()
                    weakref.finalize(storage, self._release, key, storage.nbytes())
                    self._created(key, func, t)
        if self.live > self.peak:
            self.peak = self.live
            self._peaked()
        return out

    def _created(self, key: int, func: Any, tensor: Tensor) -> None:
        """Called once for each storage counted, after ``func`` returned it as (part of) ``tensor``; a subclass
        that attributes bytes records what it needs here (``tools.memory_breakdown``)."""

    def _peaked(self) -> None:
        """Called whenever the live bytes reach a new maximum."""


def peak_bytes(fn: Callable[[], Tensor]) -> int:
    """Peak bytes of tensors created and alive at once during ``fn()`` and the backward of its sum.

    Counts what aten ops return (forward activations, gradients, temporaries), on top of whatever existed before
    (parameters, inputs); ``.grad`` buffers created by the backward stay alive and are included. See
    ``LiveBytes`` for what is not seen. Runs on any device, ``meta`` included.
    """
    with LiveBytes() as probe:
        out = fn()
        out.float().sum().backward()
        del out
    return probe.peak


def activation_bytes(model: nn.Module, input_shape: tuple[int, ...] = (1, 3, 16, 224, 224)) -> int:
    """Bytes of the distinct storages that one training-mode forward of ``model`` saves for backward.

    Args:
        model: any module taking one tensor; its parameters must require gradients (they do by default).
        input_shape: shape of the random input, created on the device of the model's first parameter.
    """
    device = next(model.parameters()).device
    x = torch.empty(input_shape, device=device) if device.type == "meta" else torch.randn(input_shape, device=device)
    was_training = model.training
    model.train()
    try:
        return saved_tensor_bytes(lambda: model(x), exclude=[*model.parameters(), *model.buffers()])
    finally:
        model.train(was_training)


def model_activation_bytes(name: str, input_shape: tuple[int, ...] | None = None, device: str = "meta",
                           **overrides: Any) -> int:
    """Activation bytes of the registered model ``name`` built with ``overrides`` on ``device``.

    As ``models.flops.model_gflops``: without ``input_shape`` the model's own clip (1, 3, num_frames, img_size,
    img_size) is used; with one, its frame count and size become ``num_frames``/``img_size`` unless ``overrides``
    set them. ``device="meta"`` (default) measures paper-scale models without allocating them.
    """
    if input_shape is not None:
        overrides = {"num_frames": input_shape[2], "img_size": input_shape[3], **overrides}
    with torch.device(device):
        model = create_model(name, **overrides)
    if input_shape is None:
        input_shape = (1, 3, model.num_frames, model.img_size, model.img_size)
    return activation_bytes(model, input_shape)


def model_for_input(name: str, input_shape: tuple[int, ...], device: str, overrides: dict[str, Any]) -> nn.Module:
    overrides = {"num_frames": input_shape[2], "img_size": input_shape[3], **overrides}
    with torch.device(device):
        return create_model(name, **overrides)


def cuda_training_peak_gib(name: str, input_shape: tuple[int, ...] = (4, 3, 16, 224, 224),
                           **overrides: Any) -> float | None:
    """Max CUDA memory (GiB, 2^30 bytes: PySlowFast's ``gpu_mem_usage``, which Motionformer's code logs as "GB") of
    one training step (``cuda_step_peak_bytes``) of the video model ``name``; None without a GPU.

    ``input_shape`` is (batch, C, T, H, W); T and H become the model's ``num_frames``/``img_size`` unless
    ``overrides`` set them.
    """
    if not torch.cuda.is_available():
        return None
    torch.cuda.empty_cache()
    model = model_for_input(name, input_shape, "cuda", overrides).train()
    x = torch.randn(input_shape, device="cuda")
    labels = torch.randint(0, max(getattr(model, "num_classes", 1), 1), (input_shape[0],), device="cuda")
    peak = cuda_step_peak_bytes(model, x, labels)
    del model, x
    torch.cuda.empty_cache()
    return peak / 2**30


def cuda_step_peak_bytes(model: nn.Module, inputs: Any, labels: Tensor) -> int:
    """``torch.cuda.max_memory_allocated`` over one training step of ``model`` (on the GPU, in train mode) as in
    the paper's training (Sec. 6.2): fp16 autocast with a gradient scaler, cross-entropy, backward, an AdamW step
    (lr 1e-4, weight decay 0.05); the model, its gradients and the optimizer state included.

    AdamW's moments are made before the measured step, by a step on zero gradients: they exist in every step after
    a run's first, and a first step the scaler skips (fp16 gradients overflow at its initial scale, common from a
    random initialisation) would otherwise leave them out of the peak.
    """
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    scaler = torch.amp.GradScaler("cuda")
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    with torch.autocast("cuda", dtype=torch.float16):
        loss = F.cross_entropy(model(inputs), labels)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated()
    del optimizer, loss
    return peak


def lra_training_memory_mb(attention: str = "exact", budget: int | None = None, model: str = "lra_listops",
                           batch_size: int = 32, seq_len: int = 2048) -> tuple[float, str]:
    """Memory (MB, 2^20 bytes) of one LRA training step and how it was obtained (Table 5's "Mem." column).

    On a GPU: ``torch.cuda.max_memory_allocated`` of forward, backward and an AdamW step in fp32, no autocast
    (the Nystromformer LRA configuration's exact softmax also uses gradient checkpointing; this does not). Without
    one: the bytes of activations saved for backward in one training forward
    (``saved_tensor_bytes``), counted on the meta device at the full shape - not a peak, and SDPA on meta takes
    the math path, so exact attention counts its materialised scores. Defaults: ListOps, batch 32 (lra_config.py),
    2048 tokens (2000 + the pipeline's 48 padding), every token real.
    """
    if torch.cuda.is_available():
        device = torch.device("cuda")
        torch.cuda.empty_cache()
        with torch.device("cuda"):
            net = create_model(model, attention=attention, budget=budget, max_len=seq_len).train()
        optimizer = torch.optim.AdamW(net.parameters(), lr=1e-4, weight_decay=0.0)
        shape = (batch_size, 2, seq_len) if net.dual else (batch_size, seq_len)
        tokens = torch.randint(1, net.vocab_size, shape, device=device)
        labels = torch.randint(0, net.num_classes, (batch_size,), device=device)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        F.cross_entropy(net(tokens), labels).backward()
        optimizer.step()
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated()
        del net, optimizer, tokens
        torch.cuda.empty_cache()
        return peak / 2**20, f"measured, batch {batch_size}, {torch.cuda.get_device_name()}"
    with torch.device("meta"):
        net = create_model(model, attention=attention, budget=budget, max_len=seq_len).train()
    shape = (batch_size, 2, seq_len) if net.dual else (batch_size, seq_len)
    tokens = torch.empty(shape, dtype=torch.long, device="meta")
    saved = saved_tensor_bytes(lambda: net(tokens), exclude=[*net.parameters(), *net.buffers()])
    return saved / 2**20, f"needs GPU; activations saved for backward, batch {batch_size}, meta device"


__all__ = ["activation_bytes", "cuda_training_peak_gib", "lra_training_memory_mb", "model_activation_bytes",
           "peak_bytes", "saved_tensor_bytes"]
