"""What the golden-file makers of ``tools/released_golden/`` share: putting the authors' code on the path, random
weights, an input clip, the files they write. None of the authors' code is here; it is imported from the folder a
maker is given (``--official-code``).

A golden file is two files under ``tests/golden/released/``: ``NAME.pyth``, the checkpoint as the authors'
``save_checkpoint`` writes it (``epoch``, ``model_state``, ``optimizer_state``, ``cfg``), and ``NAME.io.safetensors``,
the input clip (``clip``, uint8 pixels; the model's input is ``(clip / 255 - 0.5) / 0.5`` in float64, the
normalisation of the authors' configs) and the authors' logits (``logits``, float64), with a JSON ``meta`` entry in
its metadata (the authors' repository, commit, configuration overrides, command).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

REPO = Path(__file__).resolve().parents[2]
GOLDEN_DIR = REPO / "tests" / "golden" / "released"
RECORD = REPO / "reports" / "benchmarks" / "released_conversion.json"


def put_official_code_on_path(folder: str | Path, shim: str | Path | None = None) -> str:
    """Make the authors' package (``slowfast``) importable from ``folder`` (and run ``shim``, a file that adapts it
    to today's libraries, if given); returns the folder's git commit."""
    sys.path.insert(0, str(REPO))
    import data.torchvision_compat  # noqa: F401  (before anything imports torchvision)

    sys.path.insert(0, str(Path(folder).resolve()))
    if shim is not None:
        import runpy

        runpy.run_path(str(shim), run_name="official_shim")
    return git_commit(folder)


def git_commit(folder: str | Path) -> str:
    return subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()


def randomise(model: nn.Module, seed: int) -> None:
    """Random values for every parameter (the authors' initialisation leaves biases at zero, norms at one and the
    tubelet kernel at zero, which would hide layout mistakes): a layer's weight ~ N(0, 1 / fan_in), a norm's weight
    ~ N(1, 0.1^2), a bias ~ N(0, 0.1^2), tokens and tables ~ N(0, 0.5^2); drawn in float64, stored as float32 (so
    float32 checkpoints and float64 runs hold the same values)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module_name, module in model.named_modules():
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


def random_clip(batch: int, frames: int, crop: int, seed: int, channels: int = 3) -> Tensor:
    """(B, C, T, H, W) uint8 pixels."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (batch, channels, frames, crop, crop), generator=generator, dtype=torch.uint8)


def clip_input(clip: Tensor, dtype: torch.dtype = torch.float64) -> Tensor:
    """The model's input for uint8 pixels: (x / 255 - 0.5) / 0.5, the authors' DATA.MEAN and DATA.STD."""
    return (clip.to(dtype) / 255 - 0.5) / 0.5


def write_golden(name: str, checkpoint_file: Path, clip: Tensor, logits: Tensor, meta: dict[str, Any],
                 out_dir: Path = GOLDEN_DIR) -> None:
    """``NAME.pyth`` (the authors' file, copied byte for byte) and ``NAME.io.safetensors``."""
    from safetensors.torch import save_file

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{name}.pyth").write_bytes(Path(checkpoint_file).read_bytes())
    save_file({"clip": clip.contiguous(), "logits": logits.to(torch.float64).contiguous()},
              str(out_dir / f"{name}.io.safetensors"), metadata={"meta": json.dumps(meta, sort_keys=True)})
    print(f"wrote {out_dir / name}.pyth ({(out_dir / f'{name}.pyth').stat().st_size // 1024} KB) and .io.safetensors")


def max_relative_difference(ours: Tensor, official: Tensor) -> float:
    """max |ours - official| / max |official| over all logits."""
    return ((ours.double() - official.double()).abs().max() / official.double().abs().max()).item()


def write_record(layout: str, entry: dict[str, Any], path: Path = RECORD) -> None:
    """Put one layout's paper-width comparison into the JSON record (one entry per layout), stamped with our commit
    ("-dirty" when code differs from it), torch, the device and the date."""
    from datetime import datetime, timezone

    from models.hardware import device_name, source_commit

    records = json.loads(path.read_text()) if path.is_file() else {}
    records[layout] = {**entry, "our_commit": source_commit(), "torch": torch.__version__,
                       "device_name": device_name("cpu"),
                       "measured_at": datetime.now(timezone.utc).date().isoformat()}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(records, indent=2, sort_keys=True) + "\n")
    print(f"wrote {path} [{layout}]")
