"""Where the bytes of one training step go, module by module and tensor by tensor, on the device's own kernels.

    python -m tools memory-breakdown [--configs NAME ...] [--json] [--record FILE]

One step is ``models.memory.peak_bytes``'s (a training-mode forward of one clip, the backward of its logits' sum)
on a real device: the ``meta`` device would take SDPA's math path and count scores that never exist. Per
configuration (``CONFIGURATIONS``: the paper-scale models of Motionformer Tables 3a, 3d and 7, and joint attention)
it reports ``peak`` and ``saved`` (exactly ``peak_bytes`` and ``saved_tensor_bytes``), the saved storages by module,
op and shape in units of one trajectory tensor, and what is alive at the peak. What the figures say:
docs/mformer_memory.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import time
import weakref
from collections import defaultdict
from datetime import UTC
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from data.atomic_write import atomic_write_text
from data.command_line import MEASURED_BATCH, OneLineParser, count
from models.hardware import cpu_name, device_name, source_commit
from models.memory import LiveBytes
from models.registry import create_model

MIB = 2**20

# The paper preset's model (experiments.mformer.tables.PAPER): the official head and stochastic depth, 400 classes.
_VIT_B = {"representation_size": 768, "drop_path_rate": 0.2, "num_frames": 16, "img_size": 224, "num_classes": 400}
_TRAJECTORY = {"attn_layer": "trajectory", "attn_kwargs": {"temporal_pool": "attention", "normalize": "space"}}


def _approximate(approximation: str, num_prototypes: int, **options: Any) -> dict[str, Any]:
    return {"attn_layer": "trajectory_approx",
            "attn_kwargs": {"approximation": approximation, "num_prototypes": num_prototypes, **options}}


CONFIGURATIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "joint": ("vit_base_patch16_video", {**_VIT_B, "attn_layer": "joint"}),
    "exact": ("vit_base_patch16_video", {**_VIT_B, **_TRAJECTORY}),  # Table 3a-3d row E, Table 7 Mformer-B
    "orthoformer": ("vit_base_patch16_video", {**_VIT_B, **_approximate("orthoformer", 128)}),  # 3a
    "nystrom": ("vit_base_patch16_video", {**_VIT_B, **_approximate("nystrom", 128)}),  # 3a
    "performer": ("vit_base_patch16_video", {**_VIT_B, **_approximate("performer", 256)}),  # 3a
    "orthoformer_per_frame": ("vit_base_patch16_video",
                              {**_VIT_B, **_approximate("orthoformer", 128, shared_prototypes=False)}),  # 3d
    "mformer_h": ("vit_large_patch16_video",  # Table 7: ViT-L/336, Orthoformer with 196 shared prototypes
                  {**_VIT_B, "representation_size": 1024, "img_size": 336, **_approximate("orthoformer", 196)}),
}


@dataclasses.dataclass
class _Storage:
    nbytes: int
    shape: tuple[int, ...]  # of the tensor the creating op returned
    dtype: str
    op: str
    where: str  # module path (forward) or autograd node (backward)
    phase: str  # "forward", "loss" or "backward"
    born: int
    died: int | None = None
    saved: bool = False


class _Trace(LiveBytes):
    """``LiveBytes`` that also keeps, for every storage it counts, who created it, when, and when it was freed."""

    def __init__(self, module_names: dict[nn.Module, str]) -> None:
        super().__init__()
        self.storages: list[_Storage] = []
        self.index: dict[int, int] = {}  # live storage key -> its record
        self.clock = self.peak_clock = 0
        self.phase = "forward"
        self.modules: list[str] = []
        self.names = module_names

    def _created(self, key: int, func: Any, tensor: Tensor) -> None:
        self.clock += 1
        if self.phase == "backward":
            node = torch._C._current_autograd_node()
            where = type(node).__name__ if node is not None else "(backward)"
        else:
            where = self.modules[-1] if self.modules else f"({self.phase})"
        self.index[key] = len(self.storages)
        self.storages.append(_Storage(tensor.untyped_storage().nbytes(), tuple(tensor.shape),
                                      str(tensor.dtype).removeprefix("torch."), func.__name__.split(".")[0], where,
                                      self.phase, self.clock))

    def _release(self, key: int, nbytes: int) -> None:
        super()._release(key, nbytes)
        self.clock += 1
        i = self.index.pop(key, None)
        if i is not None:
            self.storages[i].died = self.clock

    def _peaked(self) -> None:
        self.peak_clock = self.clock

    def enter(self, module: nn.Module, args: Any) -> None:
        self.modules.append(self.names.get(module, type(module).__name__))

    def leave(self, module: nn.Module, args: Any, out: Any) -> None:
        self.modules.pop()


def _blockwise(path: str) -> str:
    """``blocks.3.attn`` -> ``blocks.*.attn``: one group for the same module of every block."""
    return re.sub(r"\.\d+(?=\.|$)", ".*", path)


def _groups(storages: list[_Storage], depth: int, unit: int) -> list[dict[str, Any]]:
    groups: dict[tuple, list[_Storage]] = defaultdict(list)
    for s in storages:
        groups[(_blockwise(s.where), s.op, s.shape, s.dtype, s.nbytes)].append(s)
    rows = []
    for (where, op, shape, dtype, nbytes), members in groups.items():
        rows.append({"where": where, "op": op, "shape": list(shape), "dtype": dtype, "count": len(members),
                     "per_block": round(len(members) / depth, 3) if where.startswith("blocks.*") else None,
                     "mib_each": round(nbytes / MIB, 3), "units_each": round(nbytes / unit, 3),
                     "mib": round(nbytes * len(members) / MIB, 2)})
    return sorted(rows, key=lambda r: -r["mib"])


def _by_module(storages: list[_Storage]) -> dict[str, float]:
    totals: dict[str, int] = defaultdict(int)
    for s in storages:
        totals[_blockwise(s.where)] += s.nbytes
    return {k: round(v / MIB, 2) for k, v in sorted(totals.items(), key=lambda kv: -kv[1])}


def trajectory_unit_bytes(thw: tuple[int, int, int], dim: int, itemsize: int = 4) -> int:
    """Bytes of one clip's trajectory tensor (T, T*S, C): T*S queries, each visiting T frames, C channels."""
    t, h, w = thw
    return t * t * h * w * dim * itemsize


def step_breakdown(model: nn.Module, x: Tensor, depth: int, unit_bytes: int, top: int = 12) -> dict[str, Any]:
    """Break one training step of ``model`` on ``x`` down (see the module doc); ``depth``: its number of blocks
    (copies per block = count / depth), ``unit_bytes``: the yardstick every storage is also given in."""
    model.train()
    params = {t.untyped_storage()._cdata for t in (*model.parameters(), *model.buffers())}
    trace = _Trace({m: n or "(model)" for n, m in model.named_modules()})
    inputs_saved: dict[int, int] = {}
    packs: dict[int, int] = defaultdict(int)  # storage key -> packed tensors alive (held by a node of the graph)

    def unpacked(key: int) -> None:
        packs[key] -= 1

    def pack(t: Tensor) -> Tensor:
        key = t.untyped_storage()._cdata
        packed = t.detach()  # as saved_tensor_bytes: no reference cycle through a node that saves its output
        if key not in params:
            packs[key] += 1
            weakref.finalize(packed, unpacked, key)
            if key not in trace.index:  # existed before the step: the input clip
                inputs_saved[key] = t.untyped_storage().nbytes()
        return packed

    hooks = [torch.nn.modules.module.register_module_forward_pre_hook(trace.enter),
             torch.nn.modules.module.register_module_forward_hook(trace.leave)]
    start = time.perf_counter()
    try:
        with trace:
            with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
                out = model(x)
            # Kept for backward: what a node of the graph still holds now (a node freed during the forward, e.g.
            # behind a detach, kept nothing).
            for key, count in packs.items():
                if count > 0 and key in trace.index:
                    trace.storages[trace.index[key]].saved = True
            inputs_saved = {key: n for key, n in inputs_saved.items() if packs[key] > 0}
            trace.phase = "loss"
            loss = out.float().sum()
            trace.phase = "backward"
            loss.backward()
            del out, loss
    finally:
        for hook in hooks:
            hook.remove()
    seconds = time.perf_counter() - start
    storages = trace.storages
    saved = [s for s in storages if s.saved]
    at_peak = [s for s in storages if s.born <= trace.peak_clock and (s.died is None or s.died > trace.peak_clock)]
    kinds = {"saved for backward": [s for s in at_peak if s.saved],
             "other forward": [s for s in at_peak if not s.saved and s.phase != "backward"],
             "gradients": [s for s in at_peak if s.phase == "backward" and s.died is None],
             "backward temporaries": [s for s in at_peak if s.phase == "backward" and s.died is not None]}
    model.zero_grad(set_to_none=True)
    return {
        "peak_mib": round(trace.peak / MIB, 2),
        "gradients_at_peak_mib": round(sum(s.nbytes for s in kinds["gradients"]) / MIB, 2),
        "saved_mib": round((sum(s.nbytes for s in saved) + sum(inputs_saved.values())) / MIB, 2),
        "input_saved_mib": round(sum(inputs_saved.values()) / MIB, 2),
        "unit_mib": round(unit_bytes / MIB, 3),
        "depth": depth,
        "seconds": round(seconds, 1),
        "saved_by_module": _by_module(saved),
        "saved_tensors": _groups(saved, depth, unit_bytes)[:top],
        "at_peak": {kind: {"mib": round(sum(s.nbytes for s in members) / MIB, 2),
                           "groups": _groups(members, depth, unit_bytes)[:top]}
                    for kind, members in kinds.items()},
    }


def measure(config: str, device: str = "cpu", batch: int = 1, depth: int | None = None, top: int = 12,
            seed: int = 0, memory_lean: bool = True) -> dict[str, Any]:
    """``step_breakdown`` of ``CONFIGURATIONS[config]`` (``depth`` blocks instead of the model's, when given;
    ``memory_lean=False``: trajectory attention's autograd stage two, for comparison)."""
    name, kwargs = CONFIGURATIONS[config]
    kwargs = {**kwargs, **({} if depth is None else {"depth": depth})}
    if not memory_lean and "attn_kwargs" in kwargs:
        kwargs["attn_kwargs"] = {**kwargs["attn_kwargs"], "memory_lean": False}
    torch.manual_seed(seed)
    with torch.device(device):
        model = create_model(name, **kwargs)
    x = torch.randn(batch, 3, model.num_frames, model.img_size, model.img_size, device=device)
    thw = model.patch_embed.grid_size
    record = step_breakdown(model, x, len(model.blocks), trajectory_unit_bytes(thw, model.embed_dim) * batch, top)
    return {"config": config, "code": "ours", "memory_lean": memory_lean, "model": name, "kwargs": kwargs,
            "batch": batch, "dtype": "float32", "device": device,
            "params": sum(p.numel() for p in model.parameters()), **record}


def _depth(config: str) -> int:
    name, kwargs = CONFIGURATIONS[config]
    with torch.device("meta"):
        return len(create_model(name, **kwargs).blocks)


def _gradients_at_peak(record: dict[str, Any]) -> float:
    if "gradients_at_peak_mib" in record:
        return record["gradients_at_peak_mib"]
    return record.get("at_peak", {}).get("gradients", {}).get("mib", 0.0)


def paper_setting(record: dict[str, Any], params: int, batch: int = 4) -> tuple[float, float]:
    """What one clip's CPU count (batch 1, fp32) says of ``torch.cuda.max_memory_allocated`` over a training step at
    the paper's setting (``batch`` clips per GPU, fp16 autocast, AdamW), in GiB: a floor (12 bytes a parameter plus
    ``batch`` x half the clip's activation peak) and an fp32 estimate (16 bytes a parameter plus ``batch`` x the peak),
    not a ceiling (docs/mformer_memory.md#what-the-paper-measured)."""
    activations = (record["peak_mib"] - _gradients_at_peak(record)) * MIB
    floor = 12 * params + batch * 0.5 * activations
    fp32 = 16 * params + batch * record["peak_mib"] * MIB
    return floor / 2**30, fp32 / 2**30


def format_paper_setting(records: list[dict[str, Any]], batch: int = 4) -> str:
    from tabulate import tabulate

    rows = []
    for r in records:
        if r["config"] == "joint" or "params" not in r:
            continue
        floor, fp32 = paper_setting(r, r["params"], batch)
        form = {True: "lean", False: "autograd", None: f"original code {r.get('use_original_code')}"}[
            r.get("memory_lean")]
        rows.append([r["config"], r["code"], form, r["depth"], "yes" if "extrapolated_from" in r else "",
                     f"{r['params'] / 1e6:.1f}", f"{r['peak_mib']:.0f}", f"{floor:.1f}", f"{fp32:.1f}"])
    return tabulate(rows, headers=["config", "code", "form", "depth", "extrapolated", "params (M)",
                                   "peak MiB, 1 clip fp32", f"floor GiB, {batch} clips fp16",
                                   f"fp32 estimate GiB, {batch} clips"])


def extrapolate(shallow: dict[str, Any], deep: dict[str, Any], depth: int) -> dict[str, Any]:
    """The record of a ``depth``-block model from two measured at fewer blocks: every block keeps the same bytes, so
    saved bytes and the peak (at the start of backward) are linear in depth."""
    d1, d2 = shallow["depth"], deep["depth"]

    def line(key: str) -> float:
        return round(deep[key] + (depth - d2) * (deep[key] - shallow[key]) / (d2 - d1), 2)

    kwargs = {k: v for k, v in deep["kwargs"].items() if k != "depth"} if "kwargs" in deep else None
    # The parameter gradients alive at the peak are the last block's and the head's, the same at any depth.
    record = {**deep, "depth": depth, "peak_mib": line("peak_mib"), "saved_mib": line("saved_mib"),
              "extrapolated_from": [d1, d2], "measured": [{k: r[k] for k in ("depth", "peak_mib", "saved_mib")}
                                                          for r in (shallow, deep)]}
    if kwargs is not None:
        record["kwargs"] = kwargs
    if "params" in deep:  # every block has the same parameters
        record["params"] = deep["params"] + (depth - d2) * (deep["params"] - shallow["params"]) // (d2 - d1)
    record["gradients_at_peak_mib"] = _gradients_at_peak(deep)
    for key in ("saved_by_module", "at_peak", "seconds"):
        record.pop(key, None)
    return record


def format_record(r: dict[str, Any]) -> str:
    from tabulate import tabulate

    lines = [f"== {r['config']}: {r['model']} {json.dumps(r['kwargs'])}, batch {r['batch']}, {r['dtype']}, "
             f"{r['device']}",
             f"peak {r['peak_mib']:.1f} MiB, saved {r['saved_mib']:.1f} MiB (input clip {r['input_saved_mib']:.1f}), "
             f"unit (T, T*S, C) = {r['unit_mib']:.2f} MiB, {r['depth']} blocks, {r['seconds']} s",
             "saved by module (MiB): " + ", ".join(f"{k} {v}" for k, v in list(r["saved_by_module"].items())[:8])]

    def table(rows: list[dict[str, Any]]) -> str:
        return tabulate([[g["where"], g["op"], "x".join(map(str, g["shape"])), g["count"], g["per_block"],
                          g["mib_each"], g["units_each"], g["mib"]] for g in rows],
                        headers=["created in", "op", "shape", "n", "per block", "MiB each", "units", "MiB"])

    lines += ["saved for backward, largest groups:", table(r["saved_tensors"])]
    for kind, part in r["at_peak"].items():
        lines += [f"at the peak, {kind}: {part['mib']:.1f} MiB", table(part["groups"][:6])]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=list(CONFIGURATIONS), choices=list(CONFIGURATIONS))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=MEASURED_BATCH, default=1)
    parser.add_argument("--depth", type=count(1, 240, "a depth"), default=None,
                        help="build the models with this many blocks")
    parser.add_argument("--extrapolate", type=count(1, 240, "a depth"), nargs=2, default=None, metavar=("D1", "D2"),
                        help="measure at D1 and D2 blocks and extrapolate to the model's depth (``extrapolate``)")
    parser.add_argument("--top", type=count(1, 1000, "a count"), default=12, help="groups kept per list")
    parser.add_argument("--autograd-stage-two", action="store_true",
                        help="trajectory attention with memory_lean=False (the autograd form, for comparison)")
    parser.add_argument("--json", action="store_true", help="print the records as JSON")
    parser.add_argument("--record", default=None, help="stamp the records and merge them into this JSON file")
    parser.add_argument("--paper-setting", default=None, metavar="FILE",
                        help="measure nothing: print what FILE's records say of the paper's setting (paper_setting)")
    parser.add_argument("--paper-batch", type=MEASURED_BATCH, default=4,
                        help="clips per GPU for --paper-setting (the paper's 4)")
    args = parser.parse_args(argv)
    if args.paper_setting:
        print(format_paper_setting(read_memory_records(args.paper_setting), args.paper_batch))
        return
    records = []
    for config in args.configs:
        if args.extrapolate:
            shallow, deep = (measure(config, args.device, args.batch, d, args.top,
                                     memory_lean=not args.autograd_stage_two) for d in args.extrapolate)
            depth = _depth(config)
            record = extrapolate(shallow, deep, depth)
            if not args.json:
                print(f"== {config}: extrapolated from {args.extrapolate} blocks to {depth}: peak "
                      f"{record['peak_mib']:.1f} MiB, saved {record['saved_mib']:.1f} MiB ({record['measured']})",
                      flush=True)
        else:
            record = measure(config, args.device, args.batch, args.depth, args.top,
                             memory_lean=not args.autograd_stage_two)
            if not args.json:
                print(format_record(record), flush=True)
        records.append(record)
    if args.json:
        print(json.dumps(records, indent=1))
    if args.record:
        merge_records(args.record, records, argv)


def read_memory_records(path: str | Path) -> list[dict[str, Any]]:
    """The records of a ``--record`` file, checked against their schema (``reports.benchmark_schemas``): one line
    naming the file and the field where they are not."""
    from reports.benchmark_schemas import MemoryFile, read_benchmark

    return read_benchmark(path, MemoryFile, "a record file of `memory-breakdown`",
                          f"restore it with `git checkout -- {path}`, or measure again with "
                          f"`python -m tools memory-breakdown --record` (docs/mformer_memory.md)")


def merge_records(path: str, records: list[dict[str, Any]], argv: list[str] | None) -> None:
    """Stamp ``records`` (device, torch, commit, time, command) and merge them into ``path``: a record replaces the
    file's record of the same code, configuration, device, batch, depth, stage-two form and extrapolation."""
    import shlex
    import sys
    from datetime import datetime

    devices = {r["device"] for r in records}
    cuda = next((d for d in devices if d.startswith("cuda")), None)
    stamp = {"device_name": device_name(cuda) if cuda else cpu_name(), "torch": torch.__version__,
             "commit": source_commit(), "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
             "command": "python -m tools memory-breakdown " + shlex.join(sys.argv[1:] if argv is None else argv)}
    file = Path(path)
    kept = read_memory_records(file) if file.exists() else []

    def setting(r: dict[str, Any]) -> tuple:
        return (r.get("code", "ours"), r["config"], r["device"], r["batch"], r["depth"],
                r.get("memory_lean", True), tuple(r.get("extrapolated_from", ())))

    new = {setting(r) for r in records}
    merged = [r for r in kept if setting(r) not in new] + [{**r, **stamp} for r in records]
    atomic_write_text(file, json.dumps(merged, indent=1) + "\n")
