"""Each paper's whole training step, ours against the authors' code, side by side on one device.

    python -m tools paper-step --official-code FOLDER [--xvit-shim FILE] [--pairs ...] [--device cuda]
                               [--batch 8] [--warmup 3] [--steps 10] [--profile] [--timeout S] [--record FILE]
    python -m tools paper-step --cpu-check [--official-code FOLDER ...]

A pair is one paper's network at the width of the authors' released checkpoint, built twice: by the authors' code
(a checkout of theirs under FOLDER, named as their repository: ``Motionformer``, ``video-transformers``,
``TokShift-Transformer``, ``CAST``; built as ``tools/released_golden``'s makers build it, with random weights), and by
ours from the file their save code writes for it (``models.released``: the same function, the same weights). MSCA-KV
and 3D-Deformable have no authors' code: ours alone, MSCA-KV as ``run --scale paper`` builds its row, 3D-Deformable's
``d3da_base``. None of the authors' code is in this repository; X-ViT's of 2021 needs ``--xvit-shim`` (the file
``tools/released_golden/xvit.py`` describes) to build with today's timm.

A step, the same on both sides: forward under bf16 autocast (CAST: float16, the only half precision its code runs,
and its authors'; with a loss scaler), cross-entropy against class 0 summed over the heads,
backward, AdamW (lr 1e-4, weight decay 0.05, torch's default implementation), gradients set to None. Per side: the
median of ``--steps`` timed steps after ``--warmup`` untimed ones, and the peak memory allocated over the timed
steps (weights, gradients and optimizer state included); ``--profile`` adds the top kernels of two more steps
(``tools.step_timing.profile_steps``). Beside the times, on the same device: the largest relative difference of
our float32 logits from theirs (eval mode, one clip, TF32 off), and of our bf16 and fp16 autocast logits from our
float32 ones. Each pair runs in a fresh process (two of the authors' forks are both called ``slowfast``); its record
is written as soon as it is measured, so a run stopped by a time limit keeps what it has.

``--cpu-check`` runs the whole command on the CPU at batch 1, one warm-up and one timed step, every pair in float32
with no half-precision logit check (a CPU without bf16 instructions multiplies bf16 and float16 in software: a ViT-B
MLP product took 48 times float32's on a 2-vCPU AVX2 EPYC, and the seven pairs ran past the check's half hour): that
it runs end to end (pairs whose authors' checkout is not given run ours alone, said in the record), not a
measurement. The GPU run: ``tools/gpu/measure.sh --paper-step`` (after trajectory attention's step and ``evaluate``).
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from data.atomic_write import atomic_write_text
from data.command_line import MEASURED_BATCH, SECONDS, OneLineParser, count
from models.hardware import device_name, source_commit

OPTIMIZER = {"name": "AdamW", "lr": 1e-4, "weight_decay": 0.05}
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}  # fp32: no autocast


@dataclass
class Side:
    """One network of a pair and how it is called: ``forward(net, clip)`` gives its logits (a tensor, or one per
    head), ``clip`` a (B, C, T, H, W) float tensor or, for the RGB+pose model, ``inputs`` builds its input."""

    net: nn.Module
    forward: Callable[[nn.Module, Any], Any]
    description: dict[str, Any]
    softmax_heads: tuple[str, ...] = ()  # the classifiers whose outputs an eval forward normalises (PySlowFast's)


@dataclass
class Pair:
    paper: str
    frames: int
    crop: int
    build: Callable[[Path | None, dict[str, Any]], tuple[Side | None, Side]]
    official: str | None  # the authors' checkout's folder name under --official-code; None: they released no code
    inputs: Callable[[int, int, int, torch.device], Any] | None = None
    # The autocast dtype of both sides' steps: bf16, but CAST's code runs only in float16 or float32 (its LayerNorm
    # returns for those alone) and the authors train it in float16 (DeepSpeed): float16 with a loss scaler there.
    precision: str = "bf16"


def heads(out: Any) -> list[Tensor]:
    return list(out) if isinstance(out, (tuple, list)) else [out]


def ours_from(checkpoint: Any, layout: str | None = None, known: dict[str, Any] | None = None) -> Side:
    """Our model for an authors' checkpoint (a file or its contents), loaded from it."""
    from models import create_model
    from models.released import describe_released, load_released, required_model

    needed = required_model(describe_released(checkpoint, layout, known=known))
    ours = create_model(needed.name, **needed.overrides)
    load_released(ours, checkpoint, layout, known=known)
    return Side(ours, lambda net, clip: net(clip), {"model": needed.name, "overrides": needed.overrides})


def official_commit(folder: Path) -> str | None:
    """The checkout's commit: git's, or a ``COMMIT`` file beside a copy made without its .git."""
    from tools.released_golden.common import git_commit

    if (folder / ".git").exists():
        return git_commit(folder)
    return (folder / "COMMIT").read_text().strip() if (folder / "COMMIT").is_file() else None


# ---- the pairs ---------------------------------------------------------------------------------------------------


def tokenshift(code: Path | None, options: dict[str, Any]) -> tuple[Side | None, Side]:
    """TokShift's VideoNet (ViT-B/16, 8 frames of 224, 400 classes) as main_ddp_shift_v3.py builds it."""
    from tools.released_golden import tokshift as maker

    if code is None:
        return None, ours_alone("msca_table2", "tokenshift")
    official = maker.official_modules(code)
    net = maker.official_net(official, "tokshift", maker.PAPER["backbone"], maker.PAPER["frames"],
                             maker.PAPER["classes"], maker.PAPER["img_size"])
    known = {"variant": "tokshift", "frames": maker.PAPER["frames"]}
    ours = ours_from(maker.training_checkpoint(net), "tokshift", known)
    authors = Side(net, lambda n, clip: n(clip.transpose(1, 2).contiguous()),  # theirs takes (B, T, C, H, W)
                   {"repository": "VideoNetworks/TokShift-Transformer", "net": "TokShift", "config": maker.PAPER})
    return authors, ours


def slowfast_pair(maker_module: str, config: str, code: Path | None, options: dict[str, Any],
                  forward: Callable[[nn.Module, Tensor], Any], fallback: tuple[str, str],
                  softmax: bool = False) -> tuple[Side | None, Side]:
    """A PySlowFast fork's model from one of their configs, saved by their save_checkpoint; ours loaded from it."""
    import importlib

    from tools.released_golden.common import put_official_code_on_path

    if code is None:
        return None, ours_alone(*fallback)
    maker = importlib.import_module(f"tools.released_golden.{maker_module}").MAKER
    put_official_code_on_path(code, options.get("xvit_shim") if maker.shim else None)
    cfg = maker.config(code, config, {})
    with tempfile.TemporaryDirectory() as folder:
        net, path = maker.checkpoint(cfg, 0, Path(folder))
        ours = ours_from(path)
    described = {"repository": maker.repository, "config": config}
    return Side(net, forward, described, softmax_heads=("head", "head0", "head1") if softmax else ()), ours


def mformer(code: Path | None, options: dict[str, Any]) -> tuple[Side | None, Side]:
    """Motionformer-B (K400, 16x224, trajectory attention as released: their original stage two)."""
    return slowfast_pair("mformer", "configs/K400/motionformer_224_16x4.yaml", code, options,
                         lambda net, clip: net([clip]), ("mformer_table6b", "mformer"), softmax=True)


def xvit_forward(net: nn.Module, clip: Tensor) -> Any:
    """Their loader's packing: the clip and its frame indices (which their head does not use)."""
    return net([clip, torch.arange(clip.shape[2], device=clip.device).expand(clip.shape[0], -1)])


def xvit_k600(code: Path | None, options: dict[str, Any]) -> tuple[Side | None, Side]:
    return slowfast_pair("xvit", "configs/Kinetics/xvit_B16_16x16_k600.yaml", code, options, xvit_forward,
                         ("xvit_table2", "xvit_attention"))


def xvit_ssv2(code: Path | None, options: dict[str, Any]) -> tuple[Side | None, Side]:
    return slowfast_pair("xvit", "configs/SSv2/xvit_B16_16x16.yaml", code, options, xvit_forward,
                         ("xvit_table2", "xvit_attention"))


def cast(code: Path | None, options: dict[str, Any]) -> tuple[Side | None, Side]:
    """B-CAST with both experts (CLIP ViT-B/16 and VideoMAE ViT-B/16), 16 frames of 224, 400 classes: their
    ``bidir_vit_base_patch16_224`` entry point."""
    from tools.released_golden import cast as maker

    if code is None:
        return None, ours_alone("cast_table2", "cast")
    from tools.released_golden.common import randomise_around

    module = maker.official_module(code)
    net = module.bidir_vit_base_patch16_224(num_classes=400, all_frames=maker.PAPER_FRAMES, tubelet_size=2,
                                            down_ratio=2, init_scale=0.001)
    # Their initialisation leaves the adapters' up-projections at zero, which hides a wrong layout from the logit
    # check: every weight drawn afresh, as the paper-width record draws them.
    randomise_around(net, torch.Generator().manual_seed(224), std=0.02)
    ours = ours_from({"module": net.state_dict(), "epoch": 1}, "cast")
    return Side(net, lambda n, clip: n(clip), {"repository": "KHU-VLL/CAST",
                                               "entry_point": "bidir_vit_base_patch16_224"}), ours


def ours_alone(table: str, row: str) -> Side:
    """The row's model as ``run --scale paper`` builds it (no pretrained weights)."""
    import dataclasses

    from experiments.harness.plan import resolve_runs
    from experiments.harness.tasks import build_model

    cfg = resolve_runs(table, "paper", [row], seeds=1)[0]
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, pretrained=None))
    net = build_model(cfg, 400, device="cpu")
    return Side(net, lambda n, clip: n(clip), {"model": cfg.model.name, "table": table, "row": row,
                                               "overrides": cfg.model.overrides})


def msca_kv(code: Path | None, options: dict[str, Any]) -> tuple[Side | None, Side]:
    return None, ours_alone("msca_table2", "msca_kv_h1")


def d3da(code: Path | None, options: dict[str, Any]) -> tuple[Side | None, Side]:
    from models import create_model

    return None, Side(create_model("d3da_base"), lambda n, inputs: n(inputs), {"model": "d3da_base"})


def d3da_inputs(batch: int, frames: int, crop: int, device: torch.device) -> dict[str, Tensor]:
    joints = 13
    return {"video": torch.randn(batch, 3, frames, crop, crop, device=device),
            "pose": torch.rand(batch, frames, joints, 2, device=device) * crop + 0.5}


PAIRS = {
    "tokenshift": Pair("MSCA (TokenShift, its baseline)", 8, 224, tokenshift, "TokShift-Transformer"),
    "msca_kv": Pair("MSCA (MSCA-KV)", 8, 224, msca_kv, None),
    "xvit_k600": Pair("X-ViT (K600 configuration)", 16, 224, xvit_k600, "video-transformers"),
    "xvit_ssv2": Pair("X-ViT (SSv2 configuration)", 16, 224, xvit_ssv2, "video-transformers"),
    "cast": Pair("CAST (B-CAST, both experts)", 16, 224, cast, "CAST", precision="fp16"),
    "mformer": Pair("Motionformer-B", 16, 224, mformer, "Motionformer"),
    "d3da": Pair("3D-Deformable (RGB+pose)", 12, 224, d3da, None, d3da_inputs),
}


# ---- measuring ---------------------------------------------------------------------------------------------------


def step_time(side: Side, inputs: Any, batch: int, device: torch.device, warmup: int, steps: int,
              profile: bool, precision: str = "bf16") -> dict[str, Any]:
    """One side's training steps on ``device`` under ``precision`` autocast: median step milliseconds, peak GiB,
    optionally the profile."""
    from tools.step_timing import device_sync, profile_steps, time_steps

    net = side.net.to(device)
    net.train()  # not chained: TokShift's and X-ViT's train() return None
    optimizer = torch.optim.AdamW(net.parameters(), lr=OPTIMIZER["lr"], weight_decay=OPTIMIZER["weight_decay"])
    target = torch.zeros(batch, dtype=torch.long, device=device)
    cuda = device.type == "cuda"
    dtype = DTYPES[precision]
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
            out = side.forward(net, inputs)
        scaler.scale(sum(F.cross_entropy(head.float(), target) for head in heads(out))).backward()
        scaler.step(optimizer)
        scaler.update()

    timed = time_steps(step, cuda, steps, warmup)
    record = {"step_ms": timed.median_s * 1e3, "steps": steps, "warmup_s": timed.warmup_s,
              "peak_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
              "params_m": sum(p.numel() for p in net.parameters()) / 1e6}
    if profile:
        record["profile"] = profile_steps(step, device_sync(cuda), cuda)
    optimizer.zero_grad(set_to_none=True)
    optimizer.state.clear()
    net.to("cpu")
    release(device)
    return record


def release(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def relative(a: Tensor, b: Tensor) -> float:
    return ((a.float() - b.float()).norm() / b.float().norm()).item()


def logit_checks(authors: Side | None, ours: Side, inputs: Any, device: torch.device,
                 half: bool = True) -> dict[str, Any]:
    """On one clip, eval mode, TF32 off: ours in float32 against theirs; with ``half``, our bf16 and fp16 autocast
    against our float32."""
    tf32 = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    one = {k: v[:1] for k, v in inputs.items()} if isinstance(inputs, dict) else inputs[:1]
    out: dict[str, Any] = {}
    try:
        with torch.no_grad():
            net = ours.net.to(device)
            net.eval()
            fp32 = torch.cat(heads(ours.forward(net, one)), -1)
            for name, dtype in (("bf16", torch.bfloat16), ("fp16", torch.float16)) if half else ():
                with torch.autocast(device.type, dtype=dtype):
                    out[f"ours_{name}_vs_fp32"] = relative(torch.cat(heads(ours.forward(net, one)), -1), fp32)
            net.to("cpu")
            if authors is not None:
                theirs = authors.net.to(device)
                theirs.eval()
                captured = capture_logits(theirs, authors.softmax_heads, lambda: authors.forward(theirs, one))
                reference = order_like_ours(captured)
                out["ours_vs_authors_fp32"] = relative(fp32, reference)
                theirs.to("cpu")
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32
        release(device)
    return out


def capture_logits(net: nn.Module, names: tuple[str, ...], call: Callable[[], Any]) -> list[Tensor]:
    """The logits of the authors' eval forward: its output, or where it normalises them (PySlowFast's softmax after
    ``head``, ``head0`` and ``head1``) the outputs of those classifiers."""
    modules = [getattr(net, n) for n in names if isinstance(getattr(net, n, None), nn.Module)]
    if not modules:
        return heads(call())
    captured: list[Tensor] = []
    handles = [m.register_forward_hook(lambda m, a, o: captured.append(o)) for m in modules]
    try:
        call()
    finally:
        for handle in handles:
            handle.remove()
    return captured


def order_like_ours(outputs: list[Tensor]) -> Tensor:
    """CAST's two-head network returns (nouns, verbs); ours and PySlowFast's give verbs first."""
    if len(outputs) == 2 and outputs[0].shape[-1] == 300 and outputs[1].shape[-1] == 97:
        outputs = [outputs[1], outputs[0]]
    return torch.cat(outputs, -1)


# ---- one pair in a process; the command ----------------------------------------------------------------------------


def measure_pair(name: str, official_code: str | None, options: dict[str, Any], batch: int, device: str,
                 warmup: int, steps: int, profile: bool, cpu_check: bool = False) -> dict[str, Any]:
    """Both sides of one pair in this process: theirs first, then ours, each alone on the device. ``cpu_check``:
    every pair in float32, no autocast (half precision is what the GPU measures; the module docstring says why)."""
    pair = PAIRS[name]
    precision = "fp32" if cpu_check else pair.precision
    dev = torch.device(device)
    code = None
    if pair.official and official_code and (Path(official_code) / pair.official).is_dir():
        code = (Path(official_code) / pair.official).resolve()
    torch.manual_seed(0)
    authors, ours = pair.build(code, options)
    inputs = (pair.inputs or (lambda b, t, s, d: torch.randn(b, 3, t, s, s, device=d)))(batch, pair.frames,
                                                                                         pair.crop, dev)
    record: dict[str, Any] = {"pair": name, "paper": pair.paper, "batch": batch, "frames": pair.frames,
                              "crop": pair.crop, "device": device,
                              "precision": "fp32" if precision == "fp32" else f"{precision} autocast"}
    # before any step: the weights still the same
    record["logits"] = logit_checks(authors, ours, inputs, dev, half=not cpu_check)
    if authors is None:
        record["authors"] = None
        record["authors_note"] = ("the authors released no code" if pair.official is None else
                                  f"no checkout of theirs given (--official-code FOLDER/{pair.official})")
    else:
        commit = official_commit(code)
        record["authors"] = {**authors.description, "official_commit": commit,
                             **step_time(authors, inputs, batch, dev, warmup, steps, profile,
                                                       precision)}
    record["ours"] = {**ours.description, **step_time(ours, inputs, batch, dev, warmup, steps, profile,
                                                                   precision)}
    if authors is not None:
        record["time_ratio"] = record["ours"]["step_ms"] / record["authors"]["step_ms"]
        if record["ours"]["peak_gib"] is not None:
            record["memory_ratio"] = record["ours"]["peak_gib"] / record["authors"]["peak_gib"]
    return record


def run_worker(config: dict[str, Any], timeout: float | None) -> dict[str, Any]:
    """``measure_pair`` in a fresh process; a failure (an error, out of memory, the timeout) is recorded."""
    cmd = [sys.executable, "-m", "tools.paper_step", "--worker", json.dumps(config)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"pair": config["name"], "error": f"timed out after {timeout} s"}
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        return {"pair": config["name"], "error": lines[-1] if lines else f"exit status {done.returncode}",
                "stderr_tail": lines[-15:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(records: list[dict[str, Any]]) -> str:
    from tabulate import tabulate

    def number(value: float | None, digits: int) -> str:
        return "—" if value is None else f"{value:.{digits}f}"

    rows = []
    for r in records:
        theirs, ours = r.get("authors") or {}, r.get("ours") or {}
        rows.append([r["pair"], number(theirs.get("step_ms"), 1), number(ours.get("step_ms"), 1),
                     number(r.get("time_ratio"), 2), number(theirs.get("peak_gib"), 2),
                     number(ours.get("peak_gib"), 2), number(r.get("memory_ratio"), 2),
                     number((r.get("logits") or {}).get("ours_vs_authors_fp32"), 7), r.get("error", "")])
    return tabulate(rows, headers=["pair", "authors ms", "ours ms", "ours/authors", "authors GiB", "ours GiB",
                                   "ours/authors", "fp32 logits rel. diff", "error"], tablefmt="github")


def main(argv: list[str] | None = None) -> None:
    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--official-code", metavar="FOLDER", help="the authors' checkouts, one folder each, named "
                                                                  "as their repositories")
    parser.add_argument("--xvit-shim", metavar="FILE", help="the file that adapts X-ViT's code to today's timm")
    parser.add_argument("--pairs", nargs="+", choices=list(PAIRS), default=list(PAIRS))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=MEASURED_BATCH, default=8, help="clips per step (default 8)")
    parser.add_argument("--warmup", type=count(0, 1000, "a step count"), default=3,
                        help="untimed steps first (default 3)")
    parser.add_argument("--steps", type=count(1, 10_000, "a step count"), default=10,
                        help="timed steps (median; default 10)")
    parser.add_argument("--profile", action="store_true", help="also each side's top kernels per step")
    parser.add_argument("--timeout", type=SECONDS, default=None, help="seconds per pair before it is recorded as "
                                                                    "timed out")
    parser.add_argument("--cpu-check", action="store_true", help="end to end on the CPU: batch 1, one warm-up and "
                                                                 "one timed step; not a measurement")
    parser.add_argument("--record", metavar="FILE", help="write the records and the device as JSON")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # internal: one pair, JSON config
    args = parser.parse_args(argv)
    if args.worker:
        config = json.loads(args.worker)
        print(json.dumps(measure_pair(config.pop("name"), **config)))
        return
    if args.cpu_check:
        args.device, args.batch, args.warmup, args.steps = "cpu", 1, 1, 1
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error(f"--device {args.device} requested but torch.cuda.is_available() is False")
    if args.xvit_shim and not Path(args.xvit_shim).is_file():
        parser.error(f"--xvit-shim {args.xvit_shim}: no such file")
    header = {"device_name": device_name(args.device), "torch": torch.__version__, "commit": source_commit(),
              "measured_at": datetime.now(UTC).date().isoformat(),
              "command": " ".join(["python", "-m", "tools", "paper-step", *(argv or sys.argv[1:])]),
              "precision": "bf16 autocast (each record says its own)", "optimizer": OPTIMIZER,
              "what": "an end-to-end check on the CPU, not a measurement" if args.cpu_check else "measurement"}
    options = {"xvit_shim": str(Path(args.xvit_shim).resolve()) if args.xvit_shim else None}
    records = []
    for name in args.pairs:
        config = {"name": name, "official_code": args.official_code, "options": options, "batch": args.batch,
                  "device": args.device, "warmup": args.warmup, "steps": args.steps, "profile": args.profile,
                  "cpu_check": args.cpu_check}
        records.append(run_worker(config, args.timeout))
        print(json.dumps(records[-1]), flush=True)
        if args.record:  # after every pair: a stopped run keeps what it measured
            atomic_write_text(Path(args.record), json.dumps({**header, "records": records}, indent=1) + "\n")
    print(f"{header['device_name']}, batch {args.batch}:")
    print(table(records))


if __name__ == "__main__":
    main()
