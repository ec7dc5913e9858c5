"""One run of a table stepped at paper scale through the run path, on generated data of the real datasets' shape
(``python -m tools smoke ID`` steps every run of the tables: ``tools.smoke.sweep``).

Each run of the table resolves as ``run --scale paper`` resolves it; its data root is replaced by files written
at the dataset's published size, rate, length and layout (``data.synthetic.paper_shape``), so the real reader,
decoder, transforms and multi-view collation run; its task builds the same data module, model and LightningModule
as ``run`` (``experiments.harness.tasks``), and a Lightning Trainer takes ``steps`` optimizer steps, one validation
batch and one multi-view test batch at the paper's precision (on the CPU: bf16-mixed, Lightning's stand-in for
16-mixed).
A task that trains nothing (other test views, other clip lengths, DAVIS label propagation) runs its own evaluation
on the generated validation split. Only the pretrained weights are not loaded (their shapes are the model's).

Per run it reports pass or the first error (its place in the code and its message), the step time, the loader's
clips per second in one process (decoding and augmenting inside the training loop, ``num_workers`` 0) against the
step's, and peak memory: ``torch.cuda.max_memory_allocated`` on a GPU; on the CPU the tensors that live through the
last step (weights, buffers, optimizer state, the batch) plus the peak of those created in it
(``models.memory.LiveBytes``), extrapolated to the paper's per-GPU batch as if everything created in the step grew
with the batch (an upper estimate), and set against the memory of the GPU the paper names (``runs.paper_gpu``); the test
batch's memory on a GPU only (``CPU_TEST_MEMORY``).
What differs from the paper's run on a CPU is stated per run (``reductions``): the batch, the precision, no
gradient accumulation, one device, a shrunk frame size where asked (``shrink``).
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import Callback

from experiments.harness.provenance import set_threads
from experiments.harness.spec import RunConfig
from experiments.harness.tasks import build_model, evaluation_device, get_task
from lightning_modules.data_wait import TrainFetchTimer

from .runs import SmokeOptions, data_root, first_error, paper_gpu, reductions, smoke_config

# Why a CPU run measures no test memory: the CPU counter is a TorchDispatchMode, and under inference mode (Lightning's
# test and the evaluations) with autocast such a mode receives composite ops (einsum) whole, below autocast, whose
# mixed-dtype inputs then fail (Motionformer's trajectory pooling did): the counter would change what it measures.
CPU_TEST_MEMORY = "training step: live tensors; test: not measured on the CPU"


def smoke_run(cfg: RunConfig, options: SmokeOptions, echo: Callable[[str], None] = print) -> dict[str, Any]:
    """One run of a table stepped at paper scale (see the module docstring); never raises for the run's own
    errors: the record says pass or fail, with the first error."""
    from data.synthetic.paper_shape import describe

    started = time.perf_counter()
    root = data_root(cfg, options, echo)
    smoke = smoke_config(cfg, root, options)
    gpu, gpu_gib, gpu_source = paper_gpu(cfg)
    record: dict[str, Any] = {
        "table": cfg.table, "row": cfg.row, "column": cfg.column, "task": cfg.task, "dataset": cfg.data.dataset,
        "model": cfg.model.name, "clip": _clip(smoke), "batch": smoke.data.batch_size,
        "paper_batch": cfg.data.batch_size, "precision": smoke.trainer.precision,
        "reduced": reductions(cfg, smoke, options), "shrink": options.shrink, "steps": options.steps,
        "paper_gpu": gpu, "paper_gpu_gib": gpu_gib, "paper_gpu_source": gpu_source,
        "data": describe(root) if root is not None else None}
    try:
        measured = _train(smoke, options) if get_task(cfg.task).trains else _evaluate(smoke, options)
        record.update(status="pass", error=None, **measured)
    except Exception as err:  # the record says which run failed and how; the sweep goes on
        record.update(status="fail", error=first_error(err))
    gc.collect()
    lost = release_device()
    record["seconds"] = round(time.perf_counter() - started, 1)
    record.update(_paper_batch_memory(record, gpu_gib))
    if lost is not None:
        record.update(status="fail", paper_batch_peak_gib=None, fits=None,
                      error=f"{record['error'] or 'the run passed'}; then {lost}")
        raise DeviceLost(record)
    return record


class DeviceLost(RuntimeError):
    """The GPU's context is lost (a sticky CUDA error): this process can run nothing more on it. Carries the record
    of the run in which it was found."""

    def __init__(self, record: dict[str, Any]) -> None:
        super().__init__(f"{record['table']} {record['row']} / {record['column']}: {record['error']}")
        self.record = record


def release_device() -> str | None:
    """Return the run's cached GPU memory; None, or what says the context is lost (the error a sticky CUDA error
    raises at the next synchronizing call)."""
    import torch

    if not torch.cuda.is_available():
        return None
    try:
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
    except Exception as err:  # torch.AcceleratorError: the context is unusable from here on
        return f"the CUDA context was lost: {type(err).__name__}: {(str(err).strip().splitlines() or [''])[0]}"
    return None


def _clip(cfg: RunConfig) -> str:
    if cfg.task == "sequence_classification":
        return f"tokens ({cfg.data.dataset})"
    return f"{cfg.data.num_frames}x{cfg.data.crop_size}x{cfg.data.crop_size}"


def _device(options: SmokeOptions) -> Any:
    import torch

    if options.device == "cpu":
        return torch.device("cpu")
    return torch.device(options.device) if ":" in options.device else evaluation_device("gpu")


def _train(cfg: RunConfig, options: SmokeOptions) -> dict[str, Any]:
    """The task's data module and system, ``options.steps`` optimizer steps, one validation batch, one test batch;
    the step, loader and memory figures of ``SmokeMeter``."""
    import tempfile

    import lightning as L

    from experiments.harness.execute import quiet_libraries

    quiet_libraries()
    set_threads(cfg.trainer.num_threads)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    task = get_task(cfg.task)
    device = _device(options)
    with tempfile.TemporaryDirectory() as scratch:
        dm = task.datamodule(cfg, Path(scratch))
        dm.prepare_data()
        dm.setup("fit")
        task.check_classes(dm.num_classes)
        model = build_model(cfg, dm.num_classes)
        module = task.system(cfg, model, dm)
        meter = SmokeMeter(device, options.steps)
        trainer = L.Trainer(
            accelerator=cfg.trainer.accelerator, devices=[device.index or 0] if device.type == "cuda" else 1,
            precision=cfg.trainer.precision, gradient_clip_val=cfg.trainer.gradient_clip_val,
            strategy=cfg.trainer.strategy, deterministic=cfg.trainer.deterministic, max_epochs=1,
            max_steps=options.steps,
            limit_train_batches=options.steps, limit_val_batches=1, limit_test_batches=1, num_sanity_val_steps=0,
            logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
            callbacks=[meter], profiler=meter.fetch_timer)
        trainer.fit(module, datamodule=dm)
        if trainer.global_step != options.steps:
            raise RuntimeError(f"took {trainer.global_step} optimizer steps of {options.steps}")
        trainer.test(module, datamodule=dm, verbose=False)
        if meter.test_batches != 1:
            raise RuntimeError(f"tested {meter.test_batches} batches, not one")
        return meter.summary(cfg.data.batch_size)


def _evaluate(cfg: RunConfig, options: SmokeOptions) -> dict[str, Any]:
    """A task that trains nothing: its own evaluation of the (untrained) model on the generated validation split,
    timed, with its peak memory on a GPU (on the CPU none: ``CPU_TEST_MEMORY``)."""
    import torch

    set_threads(cfg.trainer.num_threads)
    device = _device(options)
    meta = build_model(cfg, get_task(cfg.task).num_classes or 2, device="meta")
    weights = (sum(t.numel() * t.element_size() for t in [*meta.parameters(), *meta.buffers()])
               if cfg.task != "label_propagation" else None)
    started = time.perf_counter()
    peak = None
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    get_task(cfg.task).evaluate(cfg, None, device)
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) / 2**20
    # The test of a trained task's data grows with its batch (beyond the weights); DAVIS goes sequence by sequence.
    return {"test_s": round(time.perf_counter() - started, 2), "test_peak_mib": peak,
            "memory_how": "cuda allocated" if device.type == "cuda" else CPU_TEST_MEMORY,
            "weights_mib": None if weights is None else weights / 2**20}


def _paper_batch_memory(record: dict[str, Any], gpu_gib: float | None) -> dict[str, Any]:
    """The run's memory at the paper's per-GPU batch (measured when the smoke ran at it, else extrapolated: what
    the step created taken to grow with the batch) and whether it fits the paper's GPU."""
    if record["status"] != "pass":
        return {"paper_batch_peak_gib": None, "fits": None}
    scale = record["paper_batch"] / record["batch"]
    peaks = []
    if record.get("train_peak_mib") is not None:
        resident = record["resident_mib"]
        peaks.append(resident + scale * (record["train_peak_mib"] - resident))
    if record.get("test_peak_mib") is not None and record.get("weights_mib") is not None:
        resident = record["weights_mib"]
        peaks.append(resident + scale * (record["test_peak_mib"] - resident))
    elif record.get("test_peak_mib") is not None:  # an evaluation that does not batch (DAVIS): as measured
        peaks.append(record["test_peak_mib"])
    gib = max(peaks) / 1024 if peaks else None
    return {"paper_batch_peak_gib": None if gib is None else round(gib, 2),
            "fits": None if gib is None or gpu_gib is None else gib <= gpu_gib}


# ---- the measurements ----------------------------------------------------------------------------------------------


def _storage_bytes(tensors: Sequence[Any]) -> int:
    """Bytes of the distinct storages behind ``tensors``."""
    return sum({t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in tensors}.values())


class SmokeMeter(Callback):
    """Times each training step apart from its batch's fetch (``fetch_timer``, the Trainer's profiler, sums the
    fetches), measures the memory of the last training step and of the test batch, and counts test batches.

    Args:
        device: the device the run steps on.
        steps: the run's optimizer steps (the last is measured for memory).
    """

    def __init__(self, device: Any, steps: int) -> None:
        self.device, self.steps, self.fetch_timer = device, steps, TrainFetchTimer()
        self.step_s: list[float] = []
        self.fetch_s: list[float] = []
        self.test_batches = 0
        self.train_peak = self.test_peak = self.resident = self.weights = None
        self._fetched = 0.0
        self._probe: Any = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        self.fetch_s.append(self.fetch_timer.fetch_s - self._fetched)
        self._fetched = self.fetch_timer.fetch_s
        if batch_idx == self.steps - 1:
            self._start_memory()
        self._started = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        self._sync()
        self.step_s.append(time.perf_counter() - self._started)
        if batch_idx == self.steps - 1:
            optimizer_state = [t for opt in trainer.optimizers for state in opt.state.values()
                               for t in state.values() if hasattr(t, "dim") and t.dim()]
            self.train_peak = self._stop_memory(pl_module, [*optimizer_state, *_tensors(batch)])
            self.resident = self.weights + _storage_bytes(optimizer_state)

    def on_test_batch_start(self, trainer, pl_module, batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        if self.device.type == "cuda":  # on the CPU: CPU_TEST_MEMORY
            self._start_memory()
        self._test_started = time.perf_counter()

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._sync()
        self.test_s = time.perf_counter() - self._test_started
        if self.device.type == "cuda":
            self.test_peak = self._stop_memory(pl_module, _tensors(batch))
        self.test_views = _views(batch)
        self.test_batches += 1

    def _sync(self) -> None:
        import torch

        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def _start_memory(self) -> None:
        import torch

        from models.memory import LiveBytes

        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            self._probe = LiveBytes().__enter__()

    def _stop_memory(self, pl_module: Any, held: list[Any]) -> int:
        """Bytes at the peak: CUDA's allocated maximum, or the weights, ``held`` and the peak created on the CPU."""
        import torch

        self.weights = _storage_bytes([*pl_module.parameters(), *pl_module.buffers()])
        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated(self.device)
        self._probe.__exit__(None, None, None)
        return self.weights + _storage_bytes(held) + self._probe.peak

    def summary(self, batch: int) -> dict[str, Any]:
        """The figures of a record: median step and fetch times (the first step left out: it warms up; on the CPU
        the last too, as the memory counter slows it), clips per second, peak memory in MiB."""
        timed = self.step_s[1:-1] if self.device.type == "cpu" and len(self.step_s) > 2 else self.step_s[1:]
        step = statistics.median(timed)
        fetch = statistics.median(self.fetch_s[1:])
        return {"step_s": round(step, 3), "step_clips_s": round(batch / step, 3), "fetch_s": round(fetch, 3),
                "loader_clips_s": round(batch / fetch, 2) if fetch > 0 else None,
                "test_s": round(self.test_s, 2), "test_views": self.test_views,
                "train_peak_mib": self.train_peak / 2**20,
                "test_peak_mib": None if self.test_peak is None else self.test_peak / 2**20,
                "resident_mib": self.resident / 2**20, "weights_mib": self.weights / 2**20,
                "memory_how": "cuda allocated" if self.device.type == "cuda" else CPU_TEST_MEMORY}


def _tensors(batch: Any) -> list[Any]:
    from torch.utils._pytree import tree_leaves

    return [t for t in tree_leaves(batch) if hasattr(t, "untyped_storage")]


def _views(batch: Any) -> int:
    """Views per video in a test batch: (B, V, C, T, H, W) video; 1 otherwise."""
    video = batch.get("video") if isinstance(batch, dict) else None
    return int(video.shape[1]) if video is not None and video.ndim == 6 else 1
