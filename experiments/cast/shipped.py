"""CAST's tiny experts (docs/tiny_regime_design.md, amendment 7), shipped in the repository as the image stand-ins
are, so that a table loads a released file as the paper does, the same file on every machine, and never pretrains
one at its start.

- The spatial expert (CLIP's role) is the image stand-in ``cast_tiny_clip`` (``experiments.tiny_pretraining.images``).
- The temporal experts (VideoMAE's role, and MVD's) are ``SHIPPED``: masked video autoencoding of the set that
  stands in for the paper's pretraining data, to the image stand-ins' rule (a cosine to zero over 40 epochs). They
  are written by ``python -m experiments pretrain-experts NAME`` into
  ``experiments/tiny_pretraining/weights/cast_tiny_<NAME>.safetensors`` (the expert's own layout) beside a record of
  each epoch's validation loss, and read through the source ``tiny_expert:<NAME>@<sha256 prefix>``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from data.command_line import path, printable

from ..harness.commands import register_command
from ..harness.spec import DataConfig, _plain
from ..harness.tasks import register_source
from ..presets import TINY_STAND_INS
from ..tiny_pretraining.experts import EXPERT_FILE, ExpertPretraining, pretrain_expert
from ..tiny_pretraining.images import TINY_PRETRAINED, digest_source, file_digest, resolve_digest_source

SOURCE_PREFIX = "tiny_expert"
# The design's check of a shipped temporal expert: its last epoch's validation loss at most this fraction above its
# best (amendment 7: the masked-pixel loss is near 0.05, where the image stand-ins' absolute 0.01 would be 20%).
CONVERGED_RELATIVE = 0.01


def _pretraining_data(stand_in: str) -> DataConfig:
    return dataclasses.replace(TINY_STAND_INS[stand_in], num_workers=0)


# VideoMAE pretrained on EK100 / SSV2 / K400: masked video autoencoding of the set standing in for each, 40 epochs.
SHIPPED: dict[str, ExpertPretraining] = {
    "videomae_ek100": ExpertPretraining("videomae", "mae", _pretraining_data("EK-100"), epochs=40, lr=1.5e-3),
    "videomae_ssv2": ExpertPretraining("videomae", "mae", _pretraining_data("SSv2"), epochs=40, lr=1.5e-3),
    "videomae_k400": ExpertPretraining("videomae", "mae", _pretraining_data("K-400"), epochs=40, lr=1.5e-3),
    # MVD distils teachers' features into VideoMAE's structure; the tiny stand-in does not reproduce the
    # distillation: it is the same masked autoencoding with another seed (see Table 7's notes).
    "mvd_ek100": ExpertPretraining("mvd", "mae", _pretraining_data("EK-100"), epochs=40, lr=1.5e-3, seed=1),
}
SHIPPED_NOTE = ("Tiny experts, shipped in `experiments/tiny_pretraining/weights/` (the design's amendment 7): the "
                "spatial expert (CLIP's role) pretrained on `synth_images`, never on a table's set; VideoMAE "
                "pretrained on EK100 / SSV2 / K400 = 40 epochs of masked video autoencoding of `synth_verbnoun` / "
                "`synth_motion_pairs` / `synth_objects`.")


def shipped_path(name: str, folder: Path = TINY_PRETRAINED) -> Path:
    return Path(folder) / f"cast_tiny_{name}.safetensors"


def shipped_source(name: str, folder: Path = TINY_PRETRAINED) -> str:
    """``tiny_expert:<name>@<sha256 prefix>`` (``experiments.tiny_pretraining.images.digest_source``)."""
    if name not in SHIPPED:
        raise ValueError(f"no shipped tiny expert {name!r}; known: {', '.join(SHIPPED)}")
    return digest_source(SOURCE_PREFIX, name, shipped_path(name, folder))


def resolve_shipped_source(rest: str, folder: Path = TINY_PRETRAINED) -> str:
    return resolve_digest_source(SOURCE_PREFIX, rest, SHIPPED, lambda name: shipped_path(name, folder),
                                 "shipped tiny expert", "python -m experiments pretrain-experts")


register_source(SOURCE_PREFIX, resolve_shipped_source, check_early=True)


def pretrain_and_ship(name: str, out_dir: Path = TINY_PRETRAINED) -> Path:
    """Pretrain ``SHIPPED[name]``, validating after every epoch, and write its weights (safetensors, the expert's
    own layout) and record (each epoch's validation loss) into ``out_dir``. Returns the weights' path."""
    import torch

    from data.atomic_write import atomic_write_text, save_safetensors
    from lightning_modules.image_classifier import EpochHistory

    from ..harness.provenance import cpu_kernels, git_commit, library_versions

    config, history = SHIPPED[name], EpochHistory()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        pretrain_expert(config, Path(tmp), history)
        expert_file = Path(tmp) / EXPERT_FILE
        state = torch.load(expert_file, map_location="cpu", weights_only=True)
        final_train = json.loads((Path(tmp) / "pretraining.json").read_text())["final"]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = shipped_path(name, out_dir)
    save_safetensors(path, {k: v.contiguous() for k, v in state.items()}, metadata={"expert": name})
    record: dict[str, Any] = {
        "expert": name, "file": path.name, "sha256": file_digest(path), "config": _plain(dataclasses.asdict(config)),
        "command": f"python -m experiments pretrain-experts {name}",
        "validation": "masked-pixel loss on the set's validation split, the same masks every epoch",
        "epochs_trained": len(history.epochs), "final": history.epochs[-1] if history.epochs else None,
        "final_train": final_train, "epochs": history.epochs, "seconds": round(time.perf_counter() - start, 1),
        "git_commit": git_commit(), "cpu_kernels": cpu_kernels(), "libraries": library_versions(),
    }
    atomic_write_text(path.with_suffix(".json"), json.dumps(record, indent=1) + "\n")
    return path


@register_command
def add_command(sub: argparse._SubParsersAction) -> None:
    """``pretrain-experts NAME [...]``: the subcommand of ``python -m experiments``."""
    parser = sub.add_parser("pretrain-experts", help="pretrain CAST's tiny temporal experts and write "
                                                      "experiments/tiny_pretraining/weights/cast_tiny_<name>.safetensors")
    parser.add_argument("names", nargs="+", choices=sorted(SHIPPED), metavar="NAME",
                        help=f"one or more of: {', '.join(SHIPPED)}")
    parser.add_argument("--out", type=path("a folder"), default=TINY_PRETRAINED,
                        help="folder of the weights and records")
    parser.set_defaults(fn=_cmd_pretrain_experts)


def _cmd_pretrain_experts(args: argparse.Namespace) -> int:
    for name in args.names:
        path = pretrain_and_ship(name, args.out)
        print(f"wrote {printable(str(path))} and {printable(str(path.with_suffix('.json')))}", flush=True)
    return 0
