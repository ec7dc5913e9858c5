"""``ExactResumeCallback``: what a killed run needs, beyond weights and optimiser, to continue as if it had not
stopped.

- The training loader's position. Lightning saves a stateful loader's ``state_dict`` in the checkpoint (the fit
  loop's ``combined_loader`` entry) but restores it only if the loader is first built after the restore; a module
  whose ``configure_optimizers`` asks ``trainer.estimated_stepping_batches`` (ours do, for the schedule) builds it
  before, and Lightning then silently starts the epoch over. This callback hands the saved state to the loader
  when training starts, before its first batch is drawn (``data.resumable`` loaders draw lazily); a state saved at
  the end of an epoch the trainer cut short (``limit_train_batches``) resumes at the next epoch's start.
- The process's random generators (dropout masks, mixup): saved with each checkpoint and applied just before the
  first training batch after the resume; between those two points an uninterrupted run draws nothing from them
  (the loaders carry their own generator and seed each item themselves), so the streams continue identically.
  Stored as tensors and plain Python values, so the checkpoint still loads with ``weights_only=True``.
"""

from __future__ import annotations

import random
from typing import Any

import lightning as L
import numpy as np
import torch


class ExactResumeCallback(L.Callback):
    def __init__(self) -> None:
        self._pending_rng: dict[str, Any] | None = None
        self._loader_states: list[dict[str, Any]] = []

    def state_dict(self) -> dict[str, Any]:
        return _rng_state()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._pending_rng = state_dict

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        fit_loop = checkpoint.get("loops", {}).get("fit_loop", {})
        self._loader_states = list(fit_loop.get("state_dict", {}).get("combined_loader", []))

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self._loader_states:
            return
        states, self._loader_states = self._loader_states, []
        loader = trainer.train_dataloader
        if len(states) != 1 or not hasattr(loader, "load_state_dict"):
            raise RuntimeError(f"the checkpoint holds {len(states)} training-loader state(s), but the training loader "
                               f"is {type(loader).__name__}: cannot resume it where it stopped")
        state = states[0]
        if state.get("batches_drawn", 0) >= trainer.num_training_batches:
            # an epoch that ended at the trainer's batch limit (``limit_train_batches``), before the loader's own
            # end: the next one starts from its beginning, as after a loader's last batch
            state = {**state, "epoch": state["epoch"] + 1, "batches_drawn": 0}
        loader.load_state_dict(state)

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        if self._pending_rng is not None:
            state, self._pending_rng = self._pending_rng, None
            _set_rng_state(state)


def _rng_state() -> dict[str, Any]:
    version, mt_state, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "python": [version, list(mt_state), gauss],
        "numpy": [name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    version, mt_state, gauss = state["python"]
    random.setstate((version, tuple(mt_state), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
