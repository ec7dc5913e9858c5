"""Training-step time of a whole ViT-B at the paper's shape: exact trajectory attention against joint attention.

    python -m tools trajectory-step [--device cuda] [--batch 8] [--variants ...] [--compile VARIANT ...]
                                    [--cuda-graph VARIANT ...] [--check-exact] [--profile] [--shape paper|tiny]
                                    [--record FILE]

One step is what the paper trains (Sec. 6.2, at bf16 here as the issue states it): forward under bf16 autocast,
cross-entropy on random labels, backward, an AdamW step; ViT-B/16 at 16 x 224 x 224 with Motionformer's paper head
and stochastic depth (``tools.memory_breakdown.CONFIGURATIONS``). Variants: ``joint`` (SDPA over all tokens),
``exact_fused`` (trajectory attention's stage two through the fused Triton kernels, the default on a GPU),
``exact_fused_stages`` (both stages in Triton kernels, the trajectory tokens never in memory),
``exact`` (the memory-lean PyTorch stage two, one query frame a pass: the path the tables' memory cells state),
``exact_one_pass`` (the same, every query frame in one pass), ``exact_autograd`` (the same equations through plain
autograd), ``exact_literal`` (Eq. 5-6 as printed, through autograd) and ``exact_stage_one`` (Table 4's Avg_T: exact
stage one, then a mean over t', which splits a trajectory step into its two stages), eager; ``--compile`` names
variants to time again with every block compiled (``torch.compile``; the blocks share one compiled graph), and
``--cuda-graph`` variants to time again with the whole step (forward, backward, AdamW) captured once as a CUDA graph
and replayed (GPU only: a step bound by launching kernels loses the launches). Each variant runs in a fresh process
(its peak memory its own); the median of the timed steps after the warm-up steps is reported, with the peak memory
on a GPU. ``--check-exact`` first compares trajectory attention with the literal reference of Eq. 4-6 in float32
(outputs and gradients, relative error): each compiled variant compiled, and each variant with Triton kernels eager
(also under bf16 autocast, for information). ``--profile`` adds to each
record where a step's time goes: the kernels (on a GPU; operators on the CPU) with the most self time per step and
their count, from ``torch.profiler`` over two steps after the timed ones. ``--shape tiny`` runs a 2-block model on
4 x 16 x 16 clips instead: a check that the command runs end to end (on a CPU, ``exact_fused`` needs
``TRITON_INTERPRET=1``), not a measurement. The GPU run the Motionformer page reports: ``tools/gpu/trajectory_step.sh``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from data.atomic_write import atomic_write_text
from data.command_line import MEASURED_BATCH, SECONDS, OneLineParser, count
from models.hardware import device_name, source_commit
from models.registry import create_model
from tools.memory_breakdown import CONFIGURATIONS
from tools.step_timing import PROFILE_TOP, device_sync, profile_steps, time_steps

VARIANTS = {
    # name: (CONFIGURATIONS key, trajectory options beside the configuration's)
    "joint": ("joint", {}),
    "exact_fused": ("exact", {"stage_two_kernel": "triton"}),  # what "auto" (the default) runs on a GPU
    "exact_fused_stages": ("exact", {"stage_two_kernel": "fused_stages"}),  # both stages in Triton kernels
    "exact": ("exact", {"stage_two_kernel": "pytorch"}),
    # capped at T: every query frame in one pass
    "exact_one_pass": ("exact", {"stage_two_kernel": "pytorch", "frames_per_pass": 16}),
    "exact_autograd": ("exact", {"memory_lean": False}),
    # Eq. 5-6 as printed: every trajectory token projected to keys and values, two large matrix products where the
    # rearranged forms run many small batched ones (more FLOPs, fewer and larger kernels)
    "exact_literal": ("exact", {"stage_two": "literal"}),
    # Table 4's Avg_T row: exact stage one, then a mean over t'; what stage one costs without stage two's pooling
    "exact_stage_one": ("exact", {"temporal_pool": "average"}),
}
SHAPES = {  # model name (None: the configuration's) and options over the configuration's
    "paper": (None, {}),
    "tiny": ("vit_tiny_video", {"num_frames": 4, "img_size": 16, "depth": 2, "representation_size": 64}),
}


def build(variant: str, batch: int, device: str, compiled: bool,
          shape: str = "paper") -> tuple[torch.nn.Module, torch.Tensor]:
    key, extra = VARIANTS[variant]
    name, options = CONFIGURATIONS[key]
    if extra:
        options = {**options, "attn_kwargs": {**options["attn_kwargs"], **extra}}
    tiny_name, shape_options = SHAPES[shape]
    name, options = tiny_name or name, {**options, **shape_options}
    with torch.device(device):
        model = create_model(name, **options).train()
    if compiled:
        for block in model.blocks:
            block.compile()
    clips = torch.randn(batch, 3, options["num_frames"], options["img_size"], options["img_size"], device=device)
    return model, clips


def measure(variant: str, batch: int, device: str, compiled: bool, warmup: int, steps: int,
            profile: bool = False, shape: str = "paper", profile_top: int = PROFILE_TOP,
            cuda_graph: bool = False) -> dict[str, Any]:
    """One variant in this process: median step seconds and (on a GPU) the peak memory of a step; with ``profile``,
    the top kernels of two more steps (``profile_steps``); with ``cuda_graph``, the steps are replays of one
    captured step (``captured``)."""
    cuda = device.startswith("cuda")
    if cuda_graph and not cuda:
        raise ValueError(f"a CUDA graph needs a CUDA device, not {device!r}")
    torch.manual_seed(0)
    model, clips = build(variant, batch, device, compiled, shape)
    labels = torch.randint(0, 400, (batch,), device=device)
    # capturable: AdamW keeps its step count on the device, so a replayed step advances it
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05, capturable=cuda_graph)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        # A captured step cannot reuse autocast's cache of cast weights across replays: off when capturing.
        with torch.autocast(torch.device(device).type, dtype=torch.bfloat16, cache_enabled=not cuda_graph):
            loss = F.cross_entropy(model(clips), labels)
        loss.backward()
        optimizer.step()

    run = captured(step, warmup) if cuda_graph else step
    timed = time_steps(run, cuda, steps, 1 if cuda_graph else warmup)
    record = {"variant": variant, "options": VARIANTS[variant][1], "compiled": compiled, "cuda_graph": cuda_graph,
              "batch": batch, "device": device, "shape": shape, "step_ms": timed.median_s * 1e3, "steps": steps,
              "warmup_s": timed.warmup_s,
              "peak_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None}
    if profile:
        record["profile"] = profile_steps(run, device_sync(cuda), cuda, top=profile_top)
    return record


def captured(step: Callable[[], None], warmup: int) -> Callable[[], None]:
    """``step`` run ``warmup`` times (at least 3: lazy state, autotuning, compiled kernels) on a side stream, then
    captured once as a CUDA graph (PyTorch's whole-network recipe): returns its replay, which reruns every kernel of
    the step on the same memory without launching them one by one."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(max(warmup, 3)):
            step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        step()
    return graph.replay


def check_exact(device: str, variant: str = "exact", compiled: bool = True, bf16: bool = False) -> dict[str, Any]:
    """Trajectory attention with ``variant``'s options, compiled or eager, against the literal Eq. 4-6 (unfused, as
    printed) in float32, small shape: the largest relative error over the output and every gradient. ``bf16``:
    ours under bf16 autocast (the benchmark's precision) against the float32 reference, for information."""
    from models.attention import TrajectoryAttention

    torch.manual_seed(0)
    thw, dim = (4, 4, 4), 64
    with torch.device(device):
        ours = TrajectoryAttention(dim, num_heads=4, qkv_bias=True, **VARIANTS[variant][1])
        literal = TrajectoryAttention(dim, num_heads=4, qkv_bias=True, fused_attn=False, stage_two="literal")
        x = torch.randn(2, 1 + 64, dim)
    literal.load_state_dict(ours.state_dict())
    errors = {}
    outputs = []
    for module in (torch.compile(ours) if compiled else ours, literal):
        xi = x.clone().requires_grad_(True)
        with torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=bf16 and module is not literal):
            out = module(xi, thw)
        out.float().square().sum().backward()
        outputs.append([out.detach().float(), xi.grad, *(p.grad for p in module.parameters())])
    names = ["output", "input grad", *(n + " grad" for n, _ in ours.named_parameters())]
    for name, mine, reference in zip(names, *outputs, strict=True):
        errors[name] = ((mine - reference).norm() / reference.norm()).item()
    how = f"{'compiled' if compiled else 'eager'} {variant}{' under bf16 autocast' if bf16 else ''}"
    return {"check": f"{how} vs literal, float32", "max_relative_error": max(errors.values()), "errors": errors}


def run_worker(config: dict[str, Any], timeout: float | None) -> dict[str, Any]:
    """``measure`` in a fresh process; a failure (an error, out of memory, the timeout) is recorded, not raised."""
    cmd = [sys.executable, "-m", "tools.trajectory_step", "--worker", json.dumps(config)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {**config, "error": f"timed out after {timeout} s"}
    if done.returncode != 0:
        return {**config, "error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "no output"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _mode(record: dict[str, Any]) -> str:
    return "compiled" if record["compiled"] else "graphed" if record.get("cuda_graph") else "eager"


def ratios(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each record's step time over joint attention's: eager, compiled and replayed as a CUDA graph (where joint was
    measured so)."""
    joint = {_mode(r): r["step_ms"] for r in records if r["variant"] == "joint" and "step_ms" in r}
    return [{**r, **{f"over_joint_{mode}": r["step_ms"] / ms for mode, ms in joint.items() if "step_ms" in r}}
            for r in records]


def table(records: list[dict[str, Any]]) -> str:
    from tabulate import tabulate

    def number(value: float | None, digits: int) -> str:
        return "—" if value is None else f"{value:.{digits}f}"

    modes = {"eager": "eager", "compiled": "compiled blocks", "graphed": "one CUDA graph"}
    rows = [[r["variant"], modes[_mode(r)], number(r.get("step_ms"), 1), number(r.get("over_joint_eager"), 2),
             number(r.get("over_joint_compiled"), 2), number(r.get("over_joint_graphed"), 2),
             number((r.get("profile") or {}).get("kernels_per_step"), 0), number(r.get("peak_gib"), 2),
             r.get("error", "")] for r in records]
    return tabulate(rows, headers=["variant", "mode", "step (ms, median)", "/ joint eager", "/ joint compiled",
                                   "/ joint graphed", "kernels per step", "peak GiB", "error"], tablefmt="github")


def exactness_checks(device: str, variants: list[str], compiled: list[str]) -> list[dict[str, Any]]:
    """``check_exact`` for each compiled trajectory variant and, eager, for each variant whose stage two is a Triton
    kernel, in float32 and (on a GPU) under bf16 autocast; the compiled default stage two where neither is timed.
    A check that fails to run is recorded with its error, so the timings still follow."""
    checks = [(v, True, False) for v in compiled if v != "joint"]
    # Triton's CPU interpreter multiplies bf16 operands of tl.dot wrongly (bf16 loads are exact; float16 is right):
    # the bf16 check is a GPU check.
    precisions = (False, True) if device.startswith("cuda") else (False,)
    checks += [(v, False, bf16) for v in variants
               if VARIANTS[v][1].get("stage_two_kernel") in ("triton", "fused_stages") for bf16 in precisions]
    checks = checks or [("exact", True, False)]
    results = []
    for variant, is_compiled, bf16 in checks:
        try:
            results.append(check_exact(device, variant, is_compiled, bf16))
        except Exception as err:  # recorded beside the timings, which still run
            results.append({"check": f"{'compiled' if is_compiled else 'eager'} {variant}, bf16={bf16}",
                            "error": f"{type(err).__name__}: {str(err).strip().splitlines()[-1][:300]}"})
        print(json.dumps(results[-1]), flush=True)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=MEASURED_BATCH, default=8, help="clips per step (default 8, the issue's)")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--compile", nargs="*", choices=list(VARIANTS), default=[], metavar="VARIANT",
                        help="variants to time again with their blocks compiled")
    parser.add_argument("--cuda-graph", nargs="*", choices=list(VARIANTS), default=[], metavar="VARIANT",
                        help="variants to time again as one captured CUDA graph a step (GPU only)")
    parser.add_argument("--warmup", type=count(0, 1000, "a step count"), default=3,
                        help="untimed steps first (compilation happens there)")
    parser.add_argument("--steps", type=count(1, 10_000, "a step count"), default=10, help="timed steps (median)")
    parser.add_argument("--timeout", type=SECONDS, default=None, help="seconds per variant before it is recorded "
                                                                    "as timed out")
    parser.add_argument("--check-exact", action="store_true", help="first: trajectory attention (compiled, and the "
                                                                  "Triton stage two) against the literal Eq. 4-6")
    parser.add_argument("--profile", action="store_true",
                        help="also record each variant's top kernels per step")
    parser.add_argument("--profile-top", type=count(1, 10_000, "a kernel count"), default=PROFILE_TOP,
                        help="kernels kept per profiled variant")
    parser.add_argument("--shape", choices=list(SHAPES), default="paper",
                        help="tiny: a 2-block model on 4x16x16 clips, to check the command end to end")
    parser.add_argument("--record", metavar="FILE", help="write the records and the device as JSON")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # internal: one measurement, JSON config
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(measure(**json.loads(args.worker))))
        return
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error(f"--device {args.device} requested but torch.cuda.is_available() is False")
    if args.cuda_graph and not args.device.startswith("cuda"):
        parser.error(f"--cuda-graph needs a CUDA device, not --device {args.device}")
    header = {"device_name": device_name(args.device), "torch": torch.__version__, "commit": source_commit(),
              "measured_at": datetime.now(UTC).date().isoformat(),
              "command": " ".join(["python", "-m", "tools", "trajectory-step", *(argv or sys.argv[1:])]),
              "precision": "bf16 autocast",
              "model": ("ViT-B/16, 16x224x224 (tools.memory_breakdown: joint, exact)" if args.shape == "paper" else
                        "tiny: vit_tiny_video, 2 blocks, 4x16x16 (an end-to-end check, not a measurement)")}
    if args.check_exact:
        header["exactness"] = exactness_checks(args.device, args.variants, args.compile)
    records = []
    runs = [*((v, False, False) for v in args.variants), *((v, True, False) for v in args.compile),
            *((v, False, True) for v in args.cuda_graph)]
    for variant, compiled, graphed in runs:
        config = {"variant": variant, "batch": args.batch, "device": args.device, "compiled": compiled,
                  "cuda_graph": graphed, "warmup": args.warmup, "steps": args.steps, "profile": args.profile,
                  "shape": args.shape, "profile_top": args.profile_top}
        records.append(run_worker(config, args.timeout))
        print(json.dumps(records[-1]), flush=True)
        if args.record:  # after every variant: a stopped run keeps what it measured
            atomic_write_text(Path(args.record), json.dumps({**header, "records": ratios(records)}, indent=1) + "\n")
    print(f"{header['device_name']}, batch {args.batch}, {header['precision']}:")
    print(table(ratios(records)))
    for r in records:
        if "profile" in r:
            top = r["profile"]["top"][:5]
            print(f"{r['variant']}: {r['profile']['per_step_ms']:.1f} ms of {r['profile']['what']} per step, "
                  f"{r['profile']['kernels_per_step']:.0f} calls; top: "
                  + "; ".join(f"{e['name'][:60]} {e['ms_per_step']:.1f} ms" for e in top))


if __name__ == "__main__":
    main()
