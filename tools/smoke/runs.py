"""What a run of the paper-scale smoke is: a run of a table at paper scale (``smoke_configs``), as the smoke steps it
(``smoke_config``: its data root, batch, device, precision and frame size), in words (``reductions``), on which
generated data (``data_request``, ``data_root``), against which GPU (``paper_gpu``: the one its paper names), and what
every record of a sweep carries (``stamp``, ``first_error``). ``tools.loader_rate`` reads the same runs' data.
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from experiments.harness.plan import resolve_runs
from experiments.harness.provenance import REPO_ROOT, git_commit, measured_on
from experiments.harness.spec import RunConfig
from experiments.harness.tasks import evaluation_precision, get_task
from experiments.paper_tables import paper_code, papers
from reports.smoke_records import SHARED_NOTE

DEFAULT_CACHE = Path(".cache/paper_shape")
RECORD_FILES = {"cpu": REPO_ROOT / "reports" / "benchmarks" / "smoke_cpu.json",
                "cuda": REPO_ROOT / "reports" / "benchmarks" / "smoke_cuda.json"}


@dataclasses.dataclass(frozen=True)
class SmokeOptions:
    """How the runs are stepped.

    Args:
        device: "cpu", "cuda" or "cuda:N".
        steps: optimizer steps per run (the last is measured for memory on the CPU; at least 2).
        batch_size: clips per step; None: 1 on the CPU, the paper's per-GPU batch on a GPU.
        shrink: divide the crop, the scale jitter and the written frame size by this (1: the paper's).
        cache_dir: where the generated datasets are written once.
        strategy: Lightning's strategy on the one device ("auto"; "fsdp" steps through FSDP's sharded wrapping).
        sharing: processes sharing the device at once (this one included): above 1, its step and loader
            times are upper bounds, and the records say so; memory is each process's own.
        epic_frames: write EPIC-KITCHENS-100 as its extracted frames (``rgb_frames``) instead of videos.
    """

    device: str = "cpu"
    steps: int = 3
    batch_size: int | None = None
    shrink: int = 1
    cache_dir: Path = DEFAULT_CACHE
    strategy: str = "auto"
    sharing: int = 1
    epic_frames: bool = False

    def __post_init__(self) -> None:
        if self.steps < 2:
            raise ValueError(f"--steps must be at least 2 (the first warms up), got {self.steps}")
        if self.sharing < 1:
            raise ValueError(f"--sharing counts processes, at least 1, got {self.sharing}")
        if self.shrink < 1:
            raise ValueError(f"--shrink must be at least 1, got {self.shrink}")


# ---- the runs and what changes for a smoke ----------------------------------------------------------------------


def smoke_configs(table_id: str, rows: Sequence[str] | None = None) -> list[RunConfig]:
    """The table's runs at paper scale, seed 0, as ``run --scale paper`` resolves them."""
    return resolve_runs(table_id, "paper", rows, seeds=1)


def batch_for(cfg: RunConfig, options: SmokeOptions) -> int:
    """Clips per step (``SmokeOptions.batch_size``; on the CPU by default 1, or 2 where the recipe mixes clips in
    pairs: mixup and cutmix leave an odd batch's last clip out, and a batch of 1 empty). DAVIS label propagation
    reads whole sequences: its batch is not used, and stays the paper's."""
    if cfg.task == "label_propagation":
        return cfg.data.batch_size
    if options.batch_size is not None:
        return options.batch_size
    if options.device != "cpu":
        return cfg.data.batch_size
    mixes = get_task(cfg.task).trains and (cfg.optim.mixup_alpha > 0 or cfg.optim.cutmix_alpha > 0)
    return min(2, cfg.data.batch_size) if mixes else 1


def _shrunk(cfg: RunConfig, factor: int) -> dict[str, Any]:
    """The data fields a shrink changes: the crop (a multiple of 16, the patch of every paper's model), the scale
    jitter, and DAVIS's short side."""
    if factor == 1:
        return {}
    crop = max(16, cfg.data.crop_size // factor // 16 * 16)
    low, high = cfg.data.train_scale
    changes: dict[str, Any] = {"crop_size": crop, "train_scale": (max(crop, low // factor), max(crop, high // factor))}
    if cfg.task == "label_propagation":
        changes["options"] = {**cfg.data.options, "short_side": max(64, 480 // factor)}
    return changes


def smoke_config(cfg: RunConfig, root: Path | None, options: SmokeOptions) -> RunConfig:
    """``cfg`` as the smoke runs it: data from ``root``, the smoke's batch on one device, one process loading, no
    accumulation, no pretrained weights, the frame size shrunk by ``options.shrink``."""
    data = dataclasses.replace(cfg.data, root=None if root is None else str(root), num_workers=0,
                               batch_size=batch_for(cfg, options), **_shrunk(cfg, options.shrink))
    trainer = dataclasses.replace(cfg.trainer, accelerator="cpu" if options.device == "cpu" else "gpu", devices=1,
                                  num_nodes=1, strategy=options.strategy, accumulate_grad_batches=1,
                                  precision=_precision(cfg.trainer.precision, options.device))
    return dataclasses.replace(cfg, data=data, trainer=trainer, model=dataclasses.replace(cfg.model, pretrained=None))


def _precision(precision: str, device: str) -> str:
    """The paper's precision, or on the CPU what Lightning runs for it (16-mixed -> bf16-mixed)."""
    import torch

    if str(precision) in ("32-true", "32") or not device.startswith("cpu"):
        return str(precision)
    return evaluation_precision(precision, torch.device("cpu"))[0]


def reductions(cfg: RunConfig, smoke: RunConfig, options: SmokeOptions) -> list[str]:
    """What the smoke run does differently from the paper's run (``cfg``), in words."""
    out = []
    if smoke.data.batch_size != cfg.data.batch_size:
        out.append(f"batch {smoke.data.batch_size} of {cfg.data.batch_size}")
    if smoke.trainer.precision != str(cfg.trainer.precision):
        out.append(f"{smoke.trainer.precision} for {cfg.trainer.precision}")
    if cfg.trainer.accumulate_grad_batches > 1 and get_task(cfg.task).trains:
        out.append(f"no accumulation (paper: {cfg.trainer.accumulate_grad_batches})")
    if smoke.data.crop_size != cfg.data.crop_size and cfg.task != "sequence_classification":
        out.append(f"crop {smoke.data.crop_size} of {cfg.data.crop_size}, frames 1/{options.shrink} size")
    if cfg.model.pretrained:
        out.append("pretrained weights not loaded")
    if options.strategy != "auto":
        out.append(f"strategy {options.strategy} on one device")
    if options.sharing > 1:
        out.append(SHARED_NOTE.format(others=options.sharing - 1))
    return out


def paper_gpu(cfg: RunConfig) -> tuple[str | None, float | None, str]:
    """The GPU the run's paper names (``experiments.paper_tables.papers``): name, memory in GiB, and the sentence it
    is read from; a run of none of the papers names none."""
    paper = papers().get(paper_code(cfg.table))
    if paper is None:
        return None, None, "not named"
    return paper.gpu.name, paper.gpu.memory_gib, paper.gpu.source


# ---- the data ------------------------------------------------------------------------------------------------------


def data_request(cfg: RunConfig, options: SmokeOptions) -> dict[str, Any] | None:
    """``ensure_paper_shape``'s arguments for the run's data: the training split holds batch x steps samples, the
    validation split one test batch. None for a dataset without a writer."""
    from data.synthetic.paper_shape import writable

    if not writable(cfg.data.dataset):
        return None
    batch = 1 if cfg.task == "label_propagation" else batch_for(cfg, options)  # one DAVIS sequence
    request = {"dataset": cfg.data.dataset, "cache_dir": str(options.cache_dir), "num_train": batch * options.steps,
               "num_val": batch, "shrink": options.shrink}
    if options.epic_frames and cfg.data.dataset == "epic_kitchens100":
        request["layout"] = "rgb_frames"
    return request


def data_root(cfg: RunConfig, options: SmokeOptions, echo: Callable[[str], None]) -> Path | None:
    """The generated root of the run's dataset (``data_request``), written on first use. None for a dataset without
    a writer (its run then meets the same error as with no data)."""
    from data.synthetic.paper_shape import ensure_paper_shape

    request = data_request(cfg, options)
    if request is None:
        return None
    started = time.perf_counter()
    root = ensure_paper_shape(**request)
    if time.perf_counter() - started > 1:
        echo(f"    wrote {cfg.data.dataset} at paper shape to {root} ({time.perf_counter() - started:.0f}s)")
    return root


# ---- what a record carries -----------------------------------------------------------------------------------


def first_error(err: BaseException) -> str:
    """Where an error was raised in this repository's code (the innermost such frame; else the innermost of all)
    and its message's first line: ``data/video_io.py:120: ValueError: ...``."""
    frames = traceback.extract_tb(err.__traceback__)
    ours = [f for f in frames if Path(f.filename).resolve().is_relative_to(REPO_ROOT)
            and ".venv" not in f.filename and "site-packages" not in f.filename]
    where = (ours or frames or [None])[-1]
    message = (str(err).strip().splitlines() or [""])[0]
    place = f"{Path(where.filename).resolve().relative_to(REPO_ROOT) if ours else where.filename}:{where.lineno}: " \
        if where is not None else ""
    return f"{place}{type(err).__name__}: {message}"


def stamp(device: str, argv: Sequence[str], command: str = "smoke") -> dict[str, Any]:
    """What every record of a sweep carries: the device, torch, the commit (taken before the sweep starts), the
    date and the command that measured it (``python -m tools <command> <argv>``)."""
    import torch

    return {"device_name": measured_on(device), "torch": torch.__version__, "commit": git_commit(),
            "measured_at": datetime.now(UTC).date().isoformat(),
            "command": shlex.join(["python", "-m", "tools", command, *argv])}


# ---- what the commands share ------------------------------------------------------------------------------------


def positive(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"expected a count of at least 1, got {value!r}")
    return int(value)


def echo_err(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def options_line(args: argparse.Namespace, sharing: int | None = None, record: str | None = None) -> list[str]:
    """The smoke options of ``args`` as a command line (``--resume-after`` and ``--jobs`` left out; ``sharing`` and
    ``record`` in place of its own where given): what a resumed sweep or a side-by-side process takes."""
    out = ["--device", args.device, "--steps", str(args.steps), "--shrink", str(args.shrink), "--strategy",
           args.strategy, "--sharing", str(sharing or args.sharing), "--cache-dir", args.cache_dir]
    out += ["--batch-size", str(args.batch_size)] if args.batch_size else []
    out += ["--threads", str(args.threads)] if args.threads else []
    out += ["--rows", *args.rows] if args.rows else []
    out += ["--skip-passed"] if args.skip_passed else []
    out += ["--epic-frames"] if args.epic_frames else []
    record = args.record if record is None else record
    return out + (["--record", record] if record else ["--record"] if record == "" else [])
