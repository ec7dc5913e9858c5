"""Linear probes of CAST's frozen tiny experts: what do the features a frozen expert hands to CAST carry, verbs
(motion) or nouns (looks)? ``python -m experiments probe-experts`` fits one multinomial logistic regression per
expert, feature and label on `synth_verbnoun`'s training clips and scores it on its validation clips.

Two features per clip: the pooled feature the expert's head reads (the mean over time loses the order of frames),
and the per-time-step means concatenated, which keep it. A probe reads what is linearly there; the adapters and
B-CAST that CAST trains can build more, at the cost of training it.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from data.command_line import count

from ..harness.commands import register_command

# the shipped temporal and spatial experts, and the temporal expert's structure at its random initialisation; by
# default the three the README's first probe table reads
PROBED = ("videomae_ek100", "clip", "videomae_init")
PROBEABLE = (*PROBED, "videomae_ssv2", "videomae_k400", "mvd_ek100")  # every shipped temporal expert besides
CHANCE = {"verb": 100 / 6, "noun": 100 / 5}  # synth_verbnoun's 6 verbs and 5 nouns, balanced


def clip_features(expert: Any, batches: Iterable[dict[str, Any]]) -> tuple[Any, Any, Any]:
    """(pooled (N, D), per-time-step means concatenated (N, T*D), labels (N, 2)) of ``expert`` frozen."""
    import torch
    from einops import rearrange

    pooled, steps, labels = [], [], []
    expert.eval()
    with torch.no_grad():
        for batch in batches:
            video = batch["video"]
            tokens = expert.forward_features(video)
            _, grid = expert.split(tokens, video.shape[0])  # (B, T, N, D) patch tokens of each time step
            pooled.append(expert.pool(tokens, video.shape[0]))
            steps.append(rearrange(grid.mean(dim=2), "b t d -> b (t d)"))
            labels.append(batch["label"])
    return torch.cat(pooled), torch.cat(steps), torch.cat(labels)


def probe_top1(train_x: Any, train_y: Any, val_x: Any, val_y: Any, l2: float = 1e-3, steps: int = 200) -> float:
    """Validation top-1 (%) of a multinomial logistic regression (L2 ``l2`` on the weights, full-batch L-BFGS) on
    features standardised by the training split's mean and std."""
    import torch
    import torch.nn.functional as F

    mean, std = train_x.mean(dim=0), train_x.std(dim=0).clamp_min(1e-6)
    train_x, val_x = (train_x - mean) / std, (val_x - mean) / std
    classes = int(max(train_y.max(), val_y.max())) + 1
    linear = torch.nn.Linear(train_x.shape[1], classes, dtype=train_x.dtype)
    torch.nn.init.zeros_(linear.weight)
    torch.nn.init.zeros_(linear.bias)
    optimizer = torch.optim.LBFGS(linear.parameters(), max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> Any:
        optimizer.zero_grad()
        loss = F.cross_entropy(linear(train_x), train_y) + l2 * linear.weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        return 100.0 * (linear(val_x).argmax(dim=1) == val_y).float().mean().item()


def _expert(name: str) -> Any:
    import torch

    from models.cast import build_expert
    from models.cast.checkpoints import load_expert

    from ..harness.tasks import resolve_source
    from .experts import tiny_source

    arch = "clip" if name == "clip" else "videomae"
    torch.manual_seed(0)
    expert = build_expert(arch, "tiny")
    if name != "videomae_init":
        load_expert(expert, resolve_source(tiny_source(name)))
    return expert


def probe_experts(names: Iterable[str] = PROBED, passes: int = 2) -> list[dict[str, Any]]:
    """One row per expert: verb and noun top-1 of the probes on its pooled and its per-time-step features, trained
    on ``passes`` augmented passes over the training clips."""
    import lightning as L
    import torch

    from ..harness.tasks import get_task
    from ..tiny_pretraining.experts import pretraining_run
    from .shipped import SHIPPED

    L.seed_everything(0, workers=True, verbose=False)
    cfg = pretraining_run(SHIPPED["videomae_ek100"])  # synth_verbnoun as its expert's pretraining reads it, labels kept
    with tempfile.TemporaryDirectory() as tmp:
        dm = get_task(cfg.task).datamodule(cfg, Path(tmp))
        dm.prepare_data()
        dm.setup("fit")
        rows = []
        for name in names:
            expert = _expert(name)
            train = [clip_features(expert, dm.train_dataloader()) for _ in range(passes)]
            train_pooled, train_steps, train_labels = (torch.cat(parts) for parts in zip(*train))
            val_pooled, val_steps, val_labels = clip_features(expert, dm.val_dataloader())
            row: dict[str, Any] = {"expert": name}
            for i, label in enumerate(("verb", "noun")):
                for feature, train_x, val_x in (("pooled", train_pooled, val_pooled),
                                                ("per step", train_steps, val_steps)):
                    row[f"{label}, {feature}"] = round(probe_top1(train_x.double(), train_labels[:, i],
                                                                  val_x.double(), val_labels[:, i]), 1)
            rows.append(row)
    return rows


@register_command
def add_command(sub: argparse._SubParsersAction) -> None:
    """``probe-experts [NAME ...]``: the subcommand of ``python -m experiments``."""
    parser = sub.add_parser("probe-experts", help="linear probes of CAST's frozen tiny experts on synth_verbnoun: "
                                                   "verb and noun top-1 of their pooled and per-time-step features")
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"one or more of {', '.join(PROBEABLE)}; default: {', '.join(PROBED)}")
    parser.add_argument("--passes", type=count(1, 100, "a count of passes"), default=2,
                        help="augmented passes over the training clips (1 to 100)")
    parser.set_defaults(fn=_cmd_probe_experts)


def _cmd_probe_experts(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    unknown = sorted(set(args.names) - set(PROBEABLE))
    if unknown:  # checked here: argparse refuses an empty list against ``choices`` with nargs="*" (Python 3.11)
        raise SystemExit(f"probe-experts: unknown expert(s) {unknown}; choose from {', '.join(PROBEABLE)}")
    rows = probe_experts(args.names or PROBED, args.passes)
    print(tabulate(rows, headers="keys", tablefmt="github"))
    print(f"chance: verb {CHANCE['verb']:.1f}%, noun {CHANCE['noun']:.1f}% (validation clips of synth_verbnoun)")
    return 0
