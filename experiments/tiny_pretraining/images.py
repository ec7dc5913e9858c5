"""The tiny scale's image pretraining, in ImageNet-21K's role (docs/tiny_regime_design.md): each tiny video
model's image part, a timm ``VisionTransformer``, is trained on fresh ``synth_images`` every epoch until its
validation loss stops falling under a decaying learning rate, and shipped in the repository as
``tiny_pretrained/<arch>.safetensors`` with its record ``<arch>.json``.

Training follows a cosine decay to zero over a fixed number of epochs (the design's amendment 2: an early stop on
the validation loss ended at a plateau of the peak learning rate, not at convergence). ``python -m experiments
pretrain-images ARCH`` writes both files. A tiny preset names the shipped file as the pretrained source
``tiny_image:<arch>@<sha256 prefix>`` (``tiny_image_source``): the prefix is part of every run's
configuration, so a run trained from other weights is never taken for one trained from these. The file is loaded
through ``models.pretrained.load_pretrained``, the loader that maps ImageNet ViT-B into each paper's video model.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from data.command_line import count, path, printable

from ..harness.commands import register_command
from ..harness.tasks import register_source

TINY_PRETRAINED = Path(__file__).parent / "weights"
SOURCE_PREFIX = "tiny_image"
# The tiny video architectures that start from an image ViT: the Motionformer family's (ViT-B's and ViT-L's
# stand-ins), the frame-wise model of MSCA and X-ViT, and CAST's spatial experts at ``cast_tiny``'s size in CLIP's
# structure (the CLIP stand-in) and in the ImageNet-21K ViT's (CAST Tables 5-6; amendment 8).
CAST_SPATIAL = "cast_tiny_clip"
CAST_SPATIAL_IN21K = "cast_tiny_vit_in21k"
CAST_EXPERT_STRUCTURES = {CAST_SPATIAL: "clip", CAST_SPATIAL_IN21K: "vit_in21k"}  # -> models.cast.build_expert
ARCHITECTURES = ("vit_tiny_video", "vit_tiny_l_video", "vit_tiny_frame", CAST_SPATIAL, CAST_SPATIAL_IN21K)


def image_part(arch: str, **kwargs: Any):
    """The model whose image ViT ``arch`` names: the registered video model, or one of CAST's tiny spatial
    experts."""
    from models import create_model
    from models.cast import build_expert

    if arch not in ARCHITECTURES:
        raise ValueError(f"no tiny image pretraining for {arch!r}; known: {', '.join(ARCHITECTURES)}")
    if arch in CAST_EXPERT_STRUCTURES:
        return build_expert(CAST_EXPERT_STRUCTURES[arch], "tiny", **kwargs)
    return create_model(arch, **kwargs)


def image_backbone(arch: str, num_classes: int, **kwargs: Any):
    """The timm image ViT whose weights ``image_part(arch)`` takes: its width, depth, heads, MLP ratio, patch size,
    frame size, and for CAST's experts their structure (a LayerNorm before the blocks or not, QuickGELU or GELU, the
    LayerNorm epsilon, a patch bias or not), read from that model itself so that the two cannot drift apart."""
    from functools import partial

    import torch
    from timm.layers import QuickGELU
    from timm.models.vision_transformer import VisionTransformer

    with torch.device("meta"):
        target = image_part(arch)
    block = target.blocks[0]
    if arch in CAST_EXPERT_STRUCTURES:
        patch, img_size, structure = target.patch_size, target.img_size, target.arch
        kwargs = {"pre_norm": structure.norm_pre, "norm_layer": partial(torch.nn.LayerNorm, eps=structure.norm_eps),
                  "act_layer": QuickGELU if structure.act == "quick_gelu" else torch.nn.GELU, **kwargs}
        if structure.patch_bias == structure.norm_pre:  # timm's patch projection has a bias unless pre_norm
            raise ValueError(f"{arch}: a patch bias of {structure.patch_bias} with pre_norm {structure.norm_pre} "
                             f"has no timm VisionTransformer")
    else:
        patch = target.patch_embed.patch_size
        img_size = target.patch_embed.grid_size[1] * patch
    return VisionTransformer(img_size=img_size, patch_size=patch, num_classes=num_classes,
                             embed_dim=target.embed_dim, depth=len(target.blocks), num_heads=block.attn.num_heads,
                             mlp_ratio=block.mlp.fc1.out_features / target.embed_dim,
                             qkv_bias=block.attn.qkv.bias is not None, **kwargs)


def weights_path(arch: str, folder: Path = TINY_PRETRAINED) -> Path:
    return Path(folder) / f"{arch}.safetensors"


def file_digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def digest_source(prefix: str, name: str, path: Path) -> str:
    """``<prefix>:<name>@<first 12 hex digits of the shipped file's sha256>``; without the file, the source has no
    digest and fails when it loads, naming the command that writes it."""
    return f"{prefix}:{name}@{file_digest(path)[:12]}" if Path(path).is_file() else f"{prefix}:{name}"


def resolve_digest_source(prefix: str, rest: str, known: Iterable[str], path_of: Callable[[str], Path], what: str,
                          command: str) -> str:
    """The shipped file a ``<prefix>:<name>[@digest]`` source names: refused by name when ``name`` is not ``known``,
    when the file is missing (naming ``command``, which writes it) or when its digest is not the source's."""
    name, _, digest = rest.partition("@")
    known = tuple(known)
    if name not in known:
        raise ValueError(f"pretrained source {prefix}:{rest}: no {what} {name!r}; known: {', '.join(known)}")
    path = path_of(name)
    if not path.is_file():
        raise FileNotFoundError(f"pretrained source {prefix}:{rest}: {path} is missing; write it with "
                                f"`{command} {name}`")
    if digest and not file_digest(path).startswith(digest):
        raise ValueError(f"pretrained source {prefix}:{rest}: {path} has changed since this run was configured "
                         f"(its sha256 now starts {file_digest(path)[:12]}); run the table again")
    return str(path)


def tiny_image_source(arch: str, folder: Path = TINY_PRETRAINED) -> str:
    return digest_source(SOURCE_PREFIX, arch, weights_path(arch, folder))


def resolve_tiny_image_source(rest: str, folder: Path = TINY_PRETRAINED) -> str:
    return resolve_digest_source(SOURCE_PREFIX, rest, ARCHITECTURES, lambda arch: weights_path(arch, folder),
                                 "tiny image backbone", "python -m experiments pretrain-images")


register_source(SOURCE_PREFIX, resolve_tiny_image_source, check_early=True)


def pretrain_image_backbone(arch: str, out_dir: Path = TINY_PRETRAINED, *, epochs: int = 40, lr: float = 1e-3,
                            weight_decay: float = 0.05, warmup_epochs: float = 1.0, batch_size: int = 128,
                            num_train: int = 20_000, num_val: int = 2_000, seed: int = 0,
                            cache_dir: Path = Path(".cache/synthetic")) -> Path:
    """Train ``arch``'s image ViT on ``synth_images``, ``num_train`` fresh images an epoch, for ``epochs`` (warm-up,
    then a cosine to zero); write its final weights (timm's layout, head included) and the record, with each epoch's
    validation loss and top-1. Returns the weights' path."""
    import lightning as L

    from data.atomic_write import atomic_write_text, save_safetensors
    from data.image_datamodule import SynthImagesDataModule
    from lightning_modules.image_classifier import EpochHistory, ImageClassifier

    from ..harness.provenance import cpu_kernels, git_commit, library_versions

    L.seed_everything(seed, workers=True, verbose=False)
    dm = SynthImagesDataModule(cache_dir, num_train, num_val, seed, batch_size)
    model = image_backbone(arch, dm.num_classes)
    system = ImageClassifier(model, dm.num_classes, lr=lr, weight_decay=weight_decay, warmup_epochs=warmup_epochs)
    history = EpochHistory()
    trainer = L.Trainer(max_epochs=epochs, accelerator="cpu", devices=1, logger=False, deterministic=True,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        num_sanity_val_steps=0, callbacks=[history],
                        reload_dataloaders_every_n_epochs=1)  # fresh training images every epoch
    start = time.perf_counter()
    trainer.fit(system, datamodule=dm)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = weights_path(arch, out_dir)
    save_safetensors(path, {k: v.contiguous() for k, v in model.state_dict().items()},
                     metadata={"arch": arch, "set": "synth_images"})
    record = {
        "arch": arch, "file": path.name, "sha256": file_digest(path), "set": "synth_images", **dm.params,
        "fresh_images_every_epoch": True,
        "command": f"python -m experiments pretrain-images {arch}",
        "schedule": {"optimizer": "adamw", "lr": lr, "weight_decay": weight_decay, "warmup_epochs": warmup_epochs,
                     "cosine_over_epochs": epochs, "batch_size": batch_size},
        "epochs_trained": trainer.current_epoch,
        "final": history.epochs[-1] if history.epochs else None, "epochs": history.epochs,
        "seconds": round(time.perf_counter() - start, 1), "git_commit": git_commit(), "cpu_kernels": cpu_kernels(),
        "libraries": library_versions(),
    }
    atomic_write_text(out_dir / f"{arch}.json", json.dumps(record, indent=1) + "\n")
    return path


@register_command
def add_command(sub: argparse._SubParsersAction) -> None:
    """``pretrain-images ARCH [...]``: the subcommand of ``python -m experiments``."""
    parser = sub.add_parser("pretrain-images", help="train a tiny video model's image ViT on synth_images and "
                                                     "write experiments/tiny_pretraining/weights/<arch>.safetensors")
    parser.add_argument("arch", choices=ARCHITECTURES)
    parser.add_argument("--out", type=path("a folder"), default=TINY_PRETRAINED,
                        help="folder of the weights and record")
    # at most 10x the design's (40 epochs of 20,000 + 2,000 images)
    parser.add_argument("--epochs", type=count(1, 400, "an epoch count"), default=40,
                        help="the cosine's length (default 40: the design's; at most 400)")
    parser.add_argument("--num-train", type=count(1, 200_000, "an image count"), default=20_000)
    parser.add_argument("--num-val", type=count(1, 20_000, "an image count"), default=2_000)
    parser.set_defaults(fn=_cmd_pretrain_images)


def _cmd_pretrain_images(args: argparse.Namespace) -> int:
    path = pretrain_image_backbone(args.arch, args.out, epochs=args.epochs, num_train=args.num_train,
                                   num_val=args.num_val)
    print(f"wrote {printable(str(path))} and {printable(str(path.with_suffix('.json')))}")
    return 0
