"""What a run's record says about how it was produced, so that a number that differs from the paper's (or from the
same run elsewhere) can be explained: code, configuration, data found, hardware, libraries, batch and precision.

``provenance`` is the ``provenance`` entry of a run's record; ``batch_and_lr`` is also written to
``hparams.yaml``. ``set_threads`` fixes torch's intra-op thread count before a run: a float sum split over another
number of threads rounds differently, so the count is part of "same command, same numbers".
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import platform
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .spec import RunConfig
from .tasks import evaluation_precision

if TYPE_CHECKING:
    import lightning as L
    import torch

REPO_ROOT = Path(__file__).resolve().parents[2]
LIBRARIES = ("torch", "lightning", "timm", "av", "torchvision", "numpy", "torchmetrics")


def launched_as_global_zero() -> bool:
    """Whether this process is rank 0 of its job, from the variables a launcher sets before any trainer exists
    (torchrun: RANK; Lightning's own launcher: LOCAL_RANK and NODE_RANK; SLURM: SLURM_PROCID). Only rank 0 writes
    the table's shared files (static.json, reports): every rank runs the same command."""
    env = os.environ
    if "RANK" in env:
        return int(env["RANK"]) == 0
    if "LOCAL_RANK" in env:
        return int(env["LOCAL_RANK"]) == 0 and int(env.get("NODE_RANK", env.get("GROUP_RANK", "0"))) == 0
    return int(env.get("SLURM_PROCID", "0")) == 0


def leave_process_group() -> None:
    """End a distributed command's training together: every rank waits for the others, then destroys its process
    group (a no-op in one process). Left to interpreter exit, the group's threads could outlive its store (hosted by
    rank 0 or by torchrun's agent on another node) and abort the process after its work was done: torchrun then
    reports the finished job failed. Rank 0 goes on to write the report without a group."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def check_multi_node_launch(cfg: RunConfig) -> None:
    """A run on ``num_nodes`` > 1 needs the other nodes started by a launcher (SLURM's srun, torchrun, LSF, or by
    hand with MASTER_ADDR and NODE_RANK set on each node, Lightning's general cluster); started alone, Lightning
    would wait for ranks that never come. Raises, naming the preset's hardware and the ways out."""
    t = cfg.trainer
    if t.num_nodes <= 1:
        return
    from lightning.fabric.plugins.environments import LSFEnvironment, SLURMEnvironment, TorchElasticEnvironment

    if (SLURMEnvironment.detect() or TorchElasticEnvironment.detect() or LSFEnvironment.detect()
            or {"MASTER_ADDR", "NODE_RANK"} <= os.environ.keys()):  # by hand: a node needs both to find node 0
        return
    raise ValueError(
        f"{cfg.table}/{cfg.row}: trainer.num_nodes={t.num_nodes} (devices={t.devices}; the paper's hardware) but "
        f"no multi-node launcher started this process (srun, torchrun, LSF, or MASTER_ADDR and NODE_RANK set): "
        f"it would wait for the other nodes forever. Launch it on {t.num_nodes} nodes, or pass --num-nodes 1 "
        f"(the global batch and lr then follow trainer.lr_scaling; the record says both)")


def set_threads(num_threads: int | None) -> int:
    """Fix torch's intra-op threads (None: keep torch's default for this machine); returns the count in use."""
    import torch

    if num_threads is not None:
        if num_threads < 1:
            raise ValueError(f"trainer.num_threads must be >= 1, got {num_threads}")
        torch.set_num_threads(num_threads)
    return torch.get_num_threads()


def config_hash(cfg: RunConfig) -> str:
    """sha256 of the resolved configuration (canonical JSON), first 16 hex digits: equal hashes, equal configs."""
    text = json.dumps(cfg.to_dict(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def git_state(root: Path = REPO_ROOT) -> dict[str, Any]:
    """``models.hardware.git_state``: the commit and whether code differs from it (imported when called, as
    ``cpu_name``)."""
    from models.hardware import git_state as state

    return state(root)


def git_commit(root: Path = REPO_ROOT) -> str:
    """``models.hardware.source_commit``: the commit, "-dirty" when code differs from it, "unknown" outside git."""
    from models.hardware import source_commit

    return source_commit(root)


def library_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version("av" if name == "av" else name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def decoder() -> dict[str, Any]:
    """The video decoder the data module uses (PyAV over FFmpeg; folders of frames need none)."""
    try:
        import av
    except ImportError:
        return {"name": None}
    versions = getattr(av, "library_versions", {})
    return {"name": "PyAV", "av": av.__version__,
            "libavcodec": ".".join(map(str, versions["libavcodec"])) if "libavcodec" in versions else None}


def with_paper_batch(cfg: RunConfig) -> RunConfig:
    """A paper-scale preset that pins its devices describes the paper's hardware (MSCA: 21 clips x 2 GPUs x 10
    accumulated steps): its global batch is the one the lr is stated for, unless the spec states another. Applied
    before the user's options, so that ``--devices``/``--batch-size`` then scale the lr (``batch_and_lr``)."""
    t = cfg.trainer
    if cfg.scale != "paper" or t.reference_batch is not None or not isinstance(t.devices, int):
        return cfg
    stated = cfg.data.batch_size * t.devices * t.num_nodes * t.accumulate_grad_batches
    return dataclasses.replace(cfg, trainer=dataclasses.replace(t, reference_batch=stated))


def batch_and_lr(cfg: RunConfig, world_size: int) -> dict[str, Any]:
    """The run's global batch (devices x nodes x per-device batch x accumulation) against the one its lr is stated
    for (``trainer.reference_batch``, the paper's), and the lr it therefore trains with under
    ``trainer.lr_scaling``. With no reference, or an equal global batch, the lr is used as given."""
    t = cfg.trainer
    global_batch = cfg.data.batch_size * world_size * t.accumulate_grad_batches
    reference = t.reference_batch
    rule = None if reference is None or reference == global_batch or t.lr_scaling == "none" else t.lr_scaling
    if rule not in (None, "linear", "sqrt"):
        raise ValueError(f"{cfg.table}/{cfg.row}: unknown lr_scaling {t.lr_scaling!r}; use linear, sqrt or none")
    factor = 1.0 if rule is None else (global_batch / reference if rule == "linear"
                                       else math.sqrt(global_batch / reference))
    return {"per_device_batch": cfg.data.batch_size, "world_size": world_size,
            "accumulate_grad_batches": t.accumulate_grad_batches, "global_batch": global_batch,
            "paper_global_batch": reference, "lr_scaling": rule, "lr_stated": cfg.optim.lr,
            "lr": cfg.optim.lr * factor}


def device_names(trainer: L.Trainer) -> list[str]:
    """The device of every process, in rank order (GPU model, or the CPU's model name); a collective call in a
    distributed run, so every rank calls it."""
    import torch

    root = trainer.strategy.root_device
    name = torch.cuda.get_device_name(root) if root.type == "cuda" else cpu_name() if root.type == "cpu" else str(root)
    if trainer.world_size > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
        names: list[str | None] = [None] * trainer.world_size
        torch.distributed.all_gather_object(names, name)
        return [str(n) for n in names]
    return [name]


# Switches that change which CPU kernels run (and so the float rounding of every run on that machine).
CPU_KERNEL_SWITCHES = ("ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS", "ONEDNN_MAX_CPU_ISA", "MKL_DEBUG_CPU_TYPE")


def cpu_kernels() -> dict[str, Any]:
    """The instruction set torch's CPU kernels dispatch to ("AVX512", "AVX2", ...) and the switches set in the
    environment that choose other kernels: same seed and command give the same bits only with the same kernels."""
    import torch

    return {"capability": torch.backends.cpu.get_cpu_capability(),
            "switches": {name: os.environ[name] for name in CPU_KERNEL_SWITCHES if name in os.environ}}


def cpu_name() -> str:
    """``models.hardware.cpu_name``, imported when called: ``python -m experiments list`` imports no model."""
    from models.hardware import cpu_name as model_name

    return model_name()


def measured_on(device: str) -> str:
    """The device a sweep or benchmark measured on, as the smoke records name it: ``models.hardware.device_name``
    with "torch thread(s)", the wording of the records already tracked."""
    from models.hardware import device_name

    return device_name(device, unit="torch thread(s)")


def data_counts(data_report: dict[str, dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Per split: videos expected by the annotations, found on disk, missing, corrupt (``data_report``)."""
    return {split: {"expected": r.get("expected"), "found": r.get("found"), "missing": len(r.get("missing", [])),
                    "corrupt": len(r.get("corrupt", []))}
            for split, r in data_report.items()}


DATA_LOSSES = {  # data_report field of a split -> what it is called
    "bad_annotation_lines": "bad annotation lines", "missing": "missing videos", "corrupt": "corrupt videos",
    "skipped_at_train": "clips skipped in training", "skipped_at_test": "clips skipped at test"}


def data_left_out(data_report: dict[str, dict[str, Any]]) -> str:
    """What a run's splits did not use of what their annotations list, per split ("train: 2 missing videos; test: 1
    clips skipped at test"); "" when nothing: otherwise its numbers come from part of its splits."""
    parts = []
    for split, report in sorted(data_report.items()):
        counts = {name: value if isinstance(value, int) else len(value)
                  for field, name in DATA_LOSSES.items() if (value := report.get(field))}
        if counts:
            parts.append(f"{split}: " + ", ".join(f"{n} {name}" for name, n in counts.items()))
    return "; ".join(parts)


def provenance(cfg: RunConfig, trainer: L.Trainer | None, data_report: dict[str, dict[str, Any]],
               batch: dict[str, Any] | None, threads: int, git: dict[str, Any],
               device: torch.device | None = None) -> dict[str, Any]:
    """The record's ``provenance`` entry (``git``: ``git_state()`` taken when the run started); an evaluation-only
    run has no trainer of its own and gives the ``device`` it evaluated on."""
    import torch

    out = {
        "git": git,
        "config_hash": config_hash(cfg),
        "dataset": {"name": cfg.data.dataset, "root": cfg.data.root, "videos": data_counts(data_report)},
        "decoder": decoder(),
        "test_views": {"clips": cfg.data.test_clips, "crops": cfg.data.test_crops,
                       "per_video": cfg.data.test_clips * cfg.data.test_crops},
        "batch": batch,
        "torch_threads": threads,
        "deterministic": cfg.trainer.deterministic,
        "seed": cfg.seed,
        "libraries": library_versions(),
        "cuda": torch.version.cuda,
        "cpu_kernels": cpu_kernels(),
    }
    if trainer is not None:
        out.update({
            "precision": str(trainer.precision),
            "accelerator": type(trainer.accelerator).__name__,
            "strategy": type(trainer.strategy).__name__,
            "world_size": trainer.world_size,
            "num_nodes": trainer.num_nodes,
            "devices": device_names(trainer),
            "written_by": {"global_rank": trainer.global_rank, "pid": os.getpid()},
        })
    else:
        if device is None:
            raise ValueError(f"{cfg.table}/{cfg.row}: a record without a trainer needs the device it ran on")
        on_gpu = device.type == "cuda"
        out.update({"precision": evaluation_precision(cfg.trainer.precision, device)[0],
                    "accelerator": "CUDAAccelerator" if on_gpu else "CPUAccelerator", "world_size": 1, "num_nodes": 1,
                    "devices": [torch.cuda.get_device_name(device) if on_gpu else cpu_name()]})
    return out
