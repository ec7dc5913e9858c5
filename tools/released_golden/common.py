"""What the golden-file makers of ``tools/released_golden/`` share: the authors' code put on the path, random weights
that reach every path, input clips, the files a golden case holds, and the paper-width record. None of the authors'
code is here; each maker imports it from the checkout it is given on its command line.

A golden case is a folder ``tests/golden/released/<case>/`` holding the checkpoint as the authors' save code writes it
(a file, or a DeepSpeed tag folder) and ``expected.pt`` (``write_expected``): the layout, the checkpoint's name in the
folder, the input clip in our layout (B, C, T, H, W): the model's input in float64, or uint8 pixels and the
``normalise`` (mean, std on the [0, 1] scale) that makes it, the authors' logits for it (float64; verbs before nouns),
the facts the checkpoint does not store (``given``: what a catalogue entry supplies) and what made it (``official``: the
authors' repository, its commit, the configuration, the command). The paper-width record
(``reports/benchmarks/released_conversion.json``, ``write_record``) holds one entry per layout and variant: the authors'
model and ours at the released width, in float32, and the largest relative difference of their logits.

Every maker's command line is ``maker_parser``'s; ``run_maker`` is the whole of the makers that build the authors'
networks from their model files (CAST, TokShift), and ``SlowFastMaker`` all but the model and its logits of those
whose authors' code is a PySlowFast fork (Motionformer, X-ViT).
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from data.atomic_write import atomic_write_bytes, atomic_write_text, save_torch
from data.command_line import SEED, OneLineParser, path

REPO = Path(__file__).resolve().parents[2]
GOLDEN_DIR = REPO / "tests" / "golden" / "released"
RECORD = REPO / "reports" / "benchmarks" / "released_conversion.json"
PAPER_WIDTH_LIMIT = 1e-5  # the largest max relative difference a paper-width record may show in float32


def put_official_code_on_path(folder: str | Path, shim: str | Path | None = None) -> str:
    """Make the authors' package (``slowfast``) importable from ``folder`` (and run ``shim``, a file that adapts it
    to today's libraries, if given); returns the folder's git commit."""
    sys.path.insert(0, str(REPO))
    sys.path.insert(0, str(Path(folder).resolve()))
    if shim is not None:
        import runpy

        runpy.run_path(str(shim), run_name="official_shim")
    return git_commit(folder)


def git_commit(folder: str | Path) -> str:
    return subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()


def checkout(repository: str, folder: str | Path) -> dict[str, Any]:
    """The authors' repository, the commit of its checkout, and the Python files changed in it (None: none)."""
    changed = subprocess.run(["git", "-C", str(folder), "diff", "--stat", "--", "*.py"], capture_output=True,
                             text=True, check=True).stdout.strip()
    return {"repository": repository, "official_commit": git_commit(folder), "local_changes": changed or None}


def randomise_by_fan_in(model: nn.Module, seed: int) -> None:
    """Random values for every parameter (the authors' initialisation leaves biases at zero, norms at one and the
    tubelet kernel at zero, which would hide layout mistakes): a layer's weight ~ N(0, 1 / fan_in), a norm's weight
    ~ N(1, 0.1^2), a bias ~ N(0, 0.1^2), tokens and tables ~ N(0, 0.5^2); drawn in float64, stored as float32 (so
    float32 checkpoints and float64 runs hold the same values)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            for name, p in module.named_parameters(recurse=False):
                if isinstance(module, (nn.Linear, nn.Conv2d, nn.Conv3d)) and name == "weight":
                    std, mean = math.prod(p.shape[1:]) ** -0.5, 0.0
                elif isinstance(module, nn.LayerNorm) and name == "weight":
                    std, mean = 0.1, 1.0
                elif name == "bias":
                    std, mean = 0.1, 0.0
                else:
                    std, mean = 0.5, 0.0
                values = torch.randn(p.shape, generator=generator, dtype=torch.float64) * std + mean
                p.copy_(values.float().to(p.dtype))


def randomise_around(module: nn.Module, generator: torch.Generator, std: float) -> None:
    """Every parameter drawn afresh with one spread, so that none is left at an initialisation that hides it (zero
    adapters and up-projections, a zero head): a 1-D ``*.weight`` (a LayerNorm's) around 1, everything else around
    0."""
    with torch.no_grad():
        for name, param in module.named_parameters():
            noise = torch.randn(param.shape, generator=generator, dtype=torch.float64) * std
            param.copy_(noise + 1.0 if param.ndim == 1 and name.endswith("weight") else noise)


def random_clip(batch: int, frames: int, crop: int, seed: int, channels: int = 3) -> Tensor:
    """(B, C, T, H, W) uint8 pixels."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (batch, channels, frames, crop, crop), generator=generator, dtype=torch.uint8)


PIXEL_NORMALISE = {"mean": 0.5, "std": 0.5}  # Motionformer's and X-ViT's DATA.MEAN and DATA.STD, on [0, 1]


def clip_input(clip: Tensor, dtype: torch.dtype = torch.float64) -> Tensor:
    """The model's input for uint8 pixels: (x / 255 - 0.5) / 0.5, the authors' DATA.MEAN and DATA.STD."""
    return (clip.to(dtype) / 255 - PIXEL_NORMALISE["mean"]) / PIXEL_NORMALISE["std"]


def command_line() -> str:
    return "python -m tools.released_golden." + Path(sys.argv[0]).stem + " " + " ".join(sys.argv[1:])


def write_expected(case: str, layout: str, checkpoint: str, clip: Tensor, logits: Tensor, given: dict[str, Any],
                   official: dict[str, Any], command: str | None = None,
                   normalise: dict[str, float] | None = None) -> Path:
    """``tests/golden/released/<case>/expected.pt`` beside the checkpoint the maker wrote there (``checkpoint``, its
    name in the folder): ``clip`` the model's input, or uint8 pixels with the ``normalise`` that makes it (a tenth
    of the size); returns the folder."""
    folder = GOLDEN_DIR / case
    if not (folder / checkpoint).exists():
        raise FileNotFoundError(f"{folder / checkpoint}: write the checkpoint before its expected.pt")
    if (clip.dtype == torch.uint8) != (normalise is not None):
        raise ValueError("a clip of uint8 pixels needs its normalise (mean, std), and only such a clip")
    save_torch(folder / "expected.pt", {"layout": layout, "checkpoint": checkpoint,
                "clip": clip.contiguous() if normalise else clip.to(torch.float64).contiguous(),
                **({"normalise": normalise} if normalise else {}),
                "logits": logits.to(torch.float64).contiguous(), "given": given,
                "official": {**official, "command": command or command_line()}})
    print(f"wrote {folder}: logits {tuple(logits.shape)}")
    return folder


def difference(ours: Tensor, official: Tensor) -> dict[str, float]:
    """max |ours - official| relative to max |official| (logits near zero make an element-wise ratio meaningless)."""
    diff = (ours.double() - official.double()).abs().max().item()
    scale = official.double().abs().max().item()
    return {"max_abs_difference": diff, "max_abs_official": scale, "max_relative_difference": diff / scale}


def write_record(record: dict[str, Any], path: Path = RECORD) -> None:
    """Put one paper-width comparison (``layout``, ``variant``, ``max_relative_difference``, ...) into the JSON record
    ``{"records": [...]}``, replacing one of the same layout and variant, stamped with our commit ("-dirty" when the
    code differs from it), torch, the device, the threads and the date; exits non-zero beyond the limit."""
    from datetime import datetime

    from models.hardware import device_name, source_commit
    from reports.released import read_conversion_record

    records = read_conversion_record(path)["records"] if path.exists() else []  # a damaged record stops here
    stamped = {**record, "limit": PAPER_WIDTH_LIMIT,
               "within_limit": record["max_relative_difference"] <= PAPER_WIDTH_LIMIT,
               "our_commit": source_commit(), "torch": torch.__version__, "device_name": device_name("cpu"),
               "threads": torch.get_num_threads(), "measured_at": datetime.now(UTC).date().isoformat(),
               "command": command_line()}
    records = [r for r in records if (r["layout"], r["variant"]) != (record["layout"], record["variant"])]
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps({"records": records + [stamped]}, indent=1) + "\n")
    print(f"wrote {path} [{record['layout']} {record['variant']}]: max relative difference "
          f"{record['max_relative_difference']:.3g}")
    if not stamped["within_limit"]:
        sys.exit(f"max relative difference {record['max_relative_difference']:.3g} exceeds {PAPER_WIDTH_LIMIT}")


def maker_parser(description: str, repository: str) -> argparse.ArgumentParser:
    """A maker's command line (``description``: its module docstring): the checkout of the authors' ``repository``
    and ``--record``."""
    parser = OneLineParser(description=description.split("\n\n")[0])
    parser.add_argument("--official-code", type=path("a folder"), required=True, help=f"a checkout of {repository}")
    parser.add_argument("--record", action="store_true", help="the paper-width records instead of golden files")
    return parser


def run_maker(argv: list[str] | None, description: str, repository: str, load: Callable[[Path], Any],
              make_golden: Callable[[Any, dict[str, Any]], None],
              paper_width: Callable[[Any, dict[str, Any]], None]) -> None:
    """The command of a maker that builds the authors' networks from their files: ``load`` the checkout (its
    resolved folder), then ``make_golden`` or (``--record``) ``paper_width``, each given what ``load`` returned and
    the checkout's facts (``checkout``)."""
    args = maker_parser(description, repository).parse_args(argv)
    facts = checkout(repository, args.official_code)
    official = load(args.official_code.resolve())
    (paper_width if args.record else make_golden)(official, facts)


@dataclass(frozen=True)
class SlowFastMaker:
    """The golden files and the paper-width record of a layout whose authors' code is a PySlowFast fork: the model
    built from one of their configs (``config``: merged with ``every_run`` and the overrides), random weights
    (``randomise_by_fan_in``), saved by their ``save_checkpoint`` with their ``construct_optimizer``'s state;
    the golden logits in float64 on two clips, the record's in float32 on one, both of uint8 pixels normalised by
    ``PIXEL_NORMALISE``."""

    layout: str  # the golden files' layout and the maker's module: tools.released_golden.<layout>
    repository: str  # the authors' repository on GitHub
    every_run: dict[str, Any]  # config overrides of every model built
    variants: dict[str, tuple[str, dict[str, Any]]]  # golden case: (the authors' config, its overrides)
    record: tuple[str, str]  # the released model's config, and the record's variant
    build: Callable[[Any], nn.Module]  # their model for a config
    logits: Callable[[nn.Module, Tensor], Tensor]  # their model's logits for a (B, C, T, H, W) input
    given: dict[str, Any] = field(default_factory=dict)  # what a golden file's checkpoint does not tell
    seed_offset: int = 0  # the first golden case's seed, after --seed
    shim: bool = False  # the maker takes --shim, a file run before their model is built (see its docstring)

    def config(self, code: Path, config: str, overrides: dict[str, Any]):
        from slowfast.config.defaults import get_cfg

        cfg = get_cfg()
        cfg.merge_from_file(str(code / config))
        cfg.merge_from_list([item for key, value in {**self.every_run, **overrides}.items() for item in (key, value)])
        return cfg

    def checkpoint(self, cfg, seed: int, folder: Path) -> tuple[nn.Module, Path]:
        """Their model with random weights, and the file their save_checkpoint writes for it."""
        import slowfast.utils.checkpoint as checkpoint_utils
        from slowfast.models.optimizer import construct_optimizer

        model = self.build(cfg)
        randomise_by_fan_in(model, seed)
        path = checkpoint_utils.save_checkpoint(str(folder), model, construct_optimizer(model, cfg), 0, cfg)
        return model, Path(path)

    def make_golden(self, code: Path, commit: str, name: str, seed: int) -> None:
        """``tests/golden/released/<name>/``: the file their save_checkpoint wrote, and ``expected.pt``."""
        config, overrides = self.variants[name]
        cfg = self.config(code, config, overrides)
        with tempfile.TemporaryDirectory() as folder:
            model, path = self.checkpoint(cfg, seed, Path(folder))
            clip = random_clip(2, cfg.DATA.NUM_FRAMES, cfg.DATA.TEST_CROP_SIZE, seed)
            logits = self.logits(model.double(), clip_input(clip))
            (GOLDEN_DIR / name).mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(GOLDEN_DIR / name / path.name, path.read_bytes())  # byte for byte
        official = {"repository": self.repository, "official_commit": commit, "config": config,
                    "overrides": {**self.every_run, **overrides}, "seed": seed}
        shim = " --shim SHIM" if self.shim else ""
        write_expected(name, self.layout, path.name, clip, logits, given=self.given, official=official,
                       normalise=PIXEL_NORMALISE,
                       command=f"python -m tools.released_golden.{self.layout} --official-code OFFICIAL{shim} "
                               f"--variants {name}")

    def make_record(self, code: Path, commit: str, seed: int) -> None:
        """Their released model and ours, loaded from the file their save_checkpoint wrote, on one clip."""
        from models import create_model
        from models.released import describe_released, load_released, required_model

        config, variant = self.record
        cfg = self.config(code, config, {})
        with tempfile.TemporaryDirectory() as folder:
            model, path = self.checkpoint(cfg, seed, Path(folder))
            clip = random_clip(1, cfg.DATA.NUM_FRAMES, cfg.DATA.TEST_CROP_SIZE, seed)
            video = clip_input(clip, torch.float32)
            official = self.logits(model, video)
            del model
            needed = required_model(describe_released(path))
            ours = create_model(needed.name, **needed.overrides).eval()
            load_released(ours, path)
            with torch.no_grad():
                logits = ours(video)
        write_record({
            "layout": self.layout, "variant": variant,
            "official": {"repository": self.repository, "official_commit": commit, "config": config},
            "model": needed.name, "overrides": needed.overrides, "dtype": "float32", "clip": list(video.shape),
            "input": f"uniform random uint8 pixels normalised by mean 0.5 and std 0.5 (seed {seed})",
            "weights": f"random (tools/released_golden/common.py randomise_by_fan_in, seed {seed})",
            **difference(logits, official)})

    def main(self, argv: list[str] | None, description: str) -> None:
        """The maker's command (``description``: its module docstring): the golden files of ``--variants`` (each
        its own seed, whichever are made), or the record."""
        parser = maker_parser(description, self.repository)
        if self.shim:
            parser.add_argument("--shim", type=path("a file"), required=True,
                                help="the file that adapts it to today's libraries (the module docstring)")
        parser.add_argument("--variants", nargs="+", choices=sorted(self.variants), default=sorted(self.variants))
        parser.add_argument("--seed", type=SEED, default=0)
        args = parser.parse_args(argv)
        commit = put_official_code_on_path(args.official_code, args.shim if self.shim else None)
        if args.record:
            self.make_record(args.official_code, commit, args.seed)
            return
        for name in args.variants:
            self.make_golden(args.official_code, commit, name, args.seed + self.seed_offset
                             + list(self.variants).index(name))
