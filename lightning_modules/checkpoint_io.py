"""``SafeCheckpointIO``: Lightning's checkpoint input/output with an atomic write and a load that runs no code.

Lightning's own ``TorchCheckpointIO`` stages a checkpoint in the system temporary directory and moves it into
place; when that directory is on another filesystem than the runs (a node's local /tmp, runs on a shared disk),
the move is a copy onto the run's last checkpoint itself, and a run killed during it leaves a truncated checkpoint.
Here the temporary file sits beside the target (``data.atomic_write``), so the rename is atomic on every POSIX
filesystem.
Loading always goes through ``models.weights.load_weights_file`` (``torch.load(weights_only=True)``): a planted
checkpoint that would execute code, a TorchScript archive included, is refused with its path.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lightning.pytorch.plugins.io import TorchCheckpointIO

from data.atomic_write import save_torch
from models.weights import load_weights_file


class SafeCheckpointIO(TorchCheckpointIO):
    """Checkpoints written through a temporary file in their own directory, read with ``weights_only=True``."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | os.PathLike,
                        storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        save_torch(path, checkpoint)

    def load_checkpoint(self, path: str | os.PathLike, map_location: Callable | None = None,
                        weights_only: bool | None = None) -> dict[str, Any]:
        if not Path(path).exists():
            raise FileNotFoundError(f"Checkpoint file not found: {path}")
        if weights_only is False:
            raise ValueError(f"{path}: checkpoints are only loaded with weights_only=True here")
        # on the CPU; Lightning moves the states to the run's device
        return load_weights_file(path, fix="a run's checkpoint never is one: delete it, or run again with --force")
