"""The GPU training-step records rendered as tables: each paper's step against the authors' code
(``tools.paper_step``, ``reports/benchmarks/paper_step_*.json``) and where a profiled trajectory-attention step's
kernel time goes (``tools.trajectory_step --profile``), by kind of kernel."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from tabulate import tabulate

REPO = Path(__file__).resolve().parent.parent
BENCHMARKS = REPO / "reports" / "benchmarks"
# tools.paper_step's record files, each a section of the page: its heading there
PAPER_STEP_RECORDS = {"paper_step_cuda.json": "ViT-B/16 at 224, batch 8, AdamW"}
PROFILE_RECORD = "trajectory_step_cuda_profile.json"
# Kinds of CUDA kernel, by what their names contain (the first match wins): a reading aid, not a measurement
KERNEL_KINDS = (("attention (SDPA)", ("sdpa", "flash", "compute_dot_do_o")), ("fused stage two (Triton)", ("_pool_",)),
                ("matrix products", ("nvjet", "gemm", "cutlass", "sgemm")),
                ("copies and concatenation", ("direct_copy", "CatArray")), ("reductions", ("reduce_kernel",)),
                ("layer norms", ("LayerNorm", "layer_norm", "GammaBeta")),
                ("optimizer", ("multi_tensor", "Adam")), ("other element-wise", ("elementwise", "vectorized")))


def _shown(path: Path) -> str:
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def _number(value: float | None, digits: int) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _scientific(value: float | None) -> str:
    return "—" if value is None else f"{value:.1e}"


def paper_step_block(name: str, records_dir: str | Path = BENCHMARKS) -> str:
    """One ``tools.paper_step`` record file as a table (ours over the authors' in time and peak memory, the logit
    checks), then its device, command and commit."""
    from .benchmark_schemas import PaperStepFile, read_benchmark

    path = Path(records_dir) / name
    data = read_benchmark(path, PaperStepFile, "a record file of `tools.paper_step`",
                          f"restore it with `git checkout -- {_shown(path)}`, or measure again with "
                          f"`tools/gpu/measure.sh --paper-step` on a GPU")
    rows = []
    for r in data["records"]:
        theirs, ours, logits = r.get("authors") or {}, r.get("ours") or {}, r.get("logits") or {}
        rows.append([r.get("paper") or r["pair"], r.get("precision") or "—", _number(theirs.get("step_ms"), 1),
                     _number(ours.get("step_ms"), 1), _number(r.get("time_ratio"), 2),
                     _number(theirs.get("peak_gib"), 1), _number(ours.get("peak_gib"), 1),
                     _number(r.get("memory_ratio"), 2), _scientific(logits.get("ours_vs_authors_fp32")),
                     _scientific(logits.get("ours_bf16_vs_fp32")), r.get("error") or r.get("authors_note") or ""])
    table = tabulate(rows, headers=["paper", "precision", "authors' step (ms)", "ours (ms)", "ours / authors'",
                                    "authors' peak GiB", "ours GiB", "ours / authors'", "fp32 logits vs authors'",
                                    "our bf16 vs fp32", "note"], tablefmt="github")
    batch = sorted({r["batch"] for r in data["records"] if r.get("batch")})
    source = (f"{data['device_name']}, torch {data['torch']}, batch {', '.join(map(str, batch))}: "
              f"`{data['command']}` (`{_shown(path)}`, commit {data['commit'][:7]}, {data['measured_at']})")
    return f"{table}\n\n{source}"


def paper_step_text(records_dir: str | Path = BENCHMARKS) -> str:
    return "\n\n".join(f"## {heading}\n\n{paper_step_block(name, records_dir)}"
                       for name, heading in PAPER_STEP_RECORDS.items())


def kernel_kind(name: str) -> str:
    for kind, parts in KERNEL_KINDS:
        if any(part in name for part in parts):
            return kind
    return "other"


def profile_block(records_dir: str | Path = BENCHMARKS) -> str:
    """The profiled variants' kernel time per step by kind of kernel (``KERNEL_KINDS``), each against the first
    variant's (joint attention's): where the extra time of a trajectory step goes."""
    from .benchmark_schemas import StepFile, read_benchmark

    path = Path(records_dir) / PROFILE_RECORD
    data = read_benchmark(path, StepFile, "a record file of `tools.trajectory_step`",
                          f"restore it with `git checkout -- {_shown(path)}`, or measure again with "
                          f"`python -m tools trajectory-step --profile --profile-top 80` on a GPU")
    kinds: dict[str, dict[str, float]] = {}
    calls: dict[str, dict[str, float]] = {}
    for r in data["records"]:
        kinds[r["variant"]], calls[r["variant"]] = defaultdict(float), defaultdict(float)
        for kernel in (r.get("profile") or {}).get("top", []):
            kinds[r["variant"]][kernel_kind(kernel["name"])] += kernel["ms_per_step"]
            calls[r["variant"]][kernel_kind(kernel["name"])] += kernel["calls_per_step"]
    variants = list(kinds)
    order = [kind for kind, _ in KERNEL_KINDS] + ["other"]
    rows = [[kind, *(f"{kinds[v][kind]:.1f} ({calls[v][kind]:.0f})" for v in variants),
             *([f"{kinds[variants[-1]][kind] - kinds[variants[0]][kind]:+.1f}"] if len(variants) > 1 else [])]
            for kind in order if any(kinds[v][kind] for v in variants)]
    totals = {v: sum(kinds[v].values()) for v in variants}
    walls = {r["variant"]: r.get("step_ms") for r in data["records"]}
    rows.append(["all kernels listed", *(f"{totals[v]:.1f}" for v in variants),
                 *([f"{totals[variants[-1]] - totals[variants[0]]:+.1f}"] if len(variants) > 1 else [])])
    rows.append(["the step (wall)", *(_number(walls[v], 1) for v in variants),
                 *([f"{walls[variants[-1]] - walls[variants[0]]:+.1f}"] if len(variants) > 1 else [])])
    headers = ["kernel kind: ms per step (calls)", *variants, *(["difference"] if len(variants) > 1 else [])]
    source = (f"{data['device_name']}, {data['precision']}, torch {data['torch']}: `{data['command']}` "
              f"(`{_shown(path)}`, commit {data['commit'][:7]}, {data['measured_at']}); kinds read from the kernels' "
              f"names (`reports.gpu_steps.KERNEL_KINDS`)")
    return f"{tabulate(rows, headers=headers, tablefmt='github')}\n\n{source}"
