"""``LRADataModule``: the five Long Range Arena tasks as one LightningDataModule (token batches, not videos).

Batches are dicts {"input": LongTensor (B, L), or (B, 2, L) for retrieval pairs, "label": LongTensor (B,)}; token 0
is padding. ListOps without a ``root`` is generated into ``cache_dir``; everything else is read from ``data.lra``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from data.lra import BYTE_VOCAB, LISTOPS_VOCAB, LRA_TASKS, NUM_CLASSES, ListOpsSpec, LRASplit, ensure_listops, read_lra
from data.worker_signals import StopSafeDataLoader

DEFAULT_MAX_LENGTH = {"listops": 2000, "text": 1000, "retrieval": 4000, "image": 1024, "pathfinder": 1024}
MIMICS = {"listops": "LRA ListOps", "text": "LRA Text (IMDB bytes)", "retrieval": "LRA Retrieval (AAN)",
          "image": "LRA Image (CIFAR-10 grayscale)", "pathfinder": "LRA Pathfinder-32"}


class _TokenDataset(Dataset):
    """Items of an ``LRASplit`` truncated to ``max_length`` tokens, as dicts {"input", "label"}."""

    def __init__(self, split: LRASplit, max_length: int) -> None:
        self.split, self.max_length = split, max_length

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int) -> dict[str, Any]:
        tokens, label = self.split[index]
        if isinstance(tokens, tuple):
            tokens = tuple(t[: self.max_length] for t in tokens)
        else:
            tokens = tokens[: self.max_length]
        return {"input": tokens, "label": label}


def pad_collate(items: list[dict[str, Any]], pad_to: int | None = None) -> dict[str, torch.Tensor]:
    """Right-pad token arrays with 0 to the batch's longest (or ``pad_to``).

    Returns {"input": (B, L), or (B, 2, L) for pairs, "label": (B,)}.
    """
    pair = isinstance(items[0]["input"], tuple)
    seqs = [s for it in items for s in (it["input"] if pair else (it["input"],))]
    length = pad_to or max(len(s) for s in seqs)
    out = np.zeros((len(seqs), length), dtype=np.int64)
    for row, s in zip(out, seqs, strict=True):
        row[: len(s)] = s
    tokens = torch.from_numpy(out)
    if pair:
        tokens = tokens.view(len(items), 2, length)  # (b, two, l): the pair's documents side by side
    return {"input": tokens, "label": torch.tensor([it["label"] for it in items], dtype=torch.long)}


class _PadCollate:
    """A picklable collate function with a fixed ``pad_to``."""

    def __init__(self, pad_to: int | None) -> None:
        self.pad_to = pad_to

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        return pad_collate(items, self.pad_to)


class LRADataModule(L.LightningDataModule):
    """Train/val/test loaders of one LRA task.

    Args:
        task: "listops", "text", "retrieval", "image" or "pathfinder".
        root: directory holding the public files (``data.lra`` lists the layouts); None for a generated ListOps set.
        cache_dir: where generated ListOps sets are cached.
        synthetic_params: ``ListOpsSpec`` fields of a generated set (default: the benchmark's); ListOps only.
        max_length: tokens kept per sequence (per document for retrieval); None = the Nystromformer pipeline's
            (ListOps 2000, Text 1000, Retrieval 4000, Image / Pathfinder 1024).
        pipeline_padding: pad every sequence to ``max_length`` rounded up to a power of two, as the Nystromformer
            pipeline does (Nystrom landmarks and the Performer normaliser see it); else to the batch's longest.
        batch_size, num_workers: sequences per batch; DataLoader worker processes.
        listops_tokenizer: "lra" (``]`` kept, the current LRA pipeline) or "alnum" (``]`` dropped, the first one).
        split_seed: seed of the Pathfinder train/val/test shuffle.
    """

    def __init__(
        self,
        task: str,
        root: str | Path | None = None,
        cache_dir: str | Path = ".cache/lra",
        synthetic_params: Mapping[str, Any] | None = None,
        max_length: int | None = None,
        pipeline_padding: bool = False,
        batch_size: int = 32,
        num_workers: int = 0,
        listops_tokenizer: Literal["lra", "alnum"] = "lra",
        split_seed: int = 0,
    ) -> None:
        super().__init__()
        if task not in LRA_TASKS:
            raise ValueError(f"unknown LRA task {task!r}; tasks: {LRA_TASKS}")
        if root is None and task != "listops":
            raise ValueError(f"LRA {task}: a root directory with the public files is required (only ListOps is "
                             f"generated locally)")
        if synthetic_params and (task != "listops" or root is not None):
            raise ValueError("synthetic_params only apply to a generated ListOps set (task='listops', root=None)")
        self.task = task
        self.root = Path(root) if root is not None else None
        self.cache_dir = Path(cache_dir)
        self.synthetic_params = dict(synthetic_params or {})
        self.synthetic = task == "listops" and root is None
        if self.synthetic:
            ListOpsSpec(**self.synthetic_params)  # unknown names and bad lengths fail here
        self.max_length = max_length or DEFAULT_MAX_LENGTH[task]
        self.pipeline_padding = pipeline_padding
        self.batch_size, self.num_workers = batch_size, num_workers
        self.listops_tokenizer = listops_tokenizer
        self.split_seed = split_seed
        self._splits: dict[str, LRASplit] = {}

    # --- LightningDataModule hooks --------------------------------------------------------------------------------

    def prepare_data(self) -> None:
        """Generate the ListOps set on first use (once per node; no state is kept)."""
        if self.synthetic:
            ensure_listops(self.cache_dir, **self.synthetic_params)

    def setup(self, stage: str | None = None) -> None:
        """Read the splits the stage needs."""
        wanted = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), "predict": ("test",)}
        for split in wanted.get(stage, ("train", "val", "test")):
            if split not in self._splits:
                self._splits[split] = read_lra(self.task, self.data_root, split, **self._reader_options())

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True, drop_last=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False, drop_last=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False, drop_last=False)

    # --- information --------------------------------------------------------------------------------------------

    @property
    def data_root(self) -> Path:
        """The directory read (for a generated ListOps set: its cache directory, generated if needed)."""
        if self.root is not None:
            return self.root
        return ensure_listops(self.cache_dir, **self.synthetic_params)

    @property
    def num_classes(self) -> int:
        return NUM_CLASSES[self.task]

    @property
    def vocab_size(self) -> int:
        """Token ids are below this (0 = padding)."""
        return len(LISTOPS_VOCAB) if self.task == "listops" else BYTE_VOCAB

    def data_report(self) -> dict[str, dict[str, Any]]:
        """Per split read: examples found, and the input lines that were skipped (file, line, reason)."""
        return {
            split: {
                "dataset": f"lra_{self.task}",
                "split": split,
                "expected": len(s) + len(s.bad_lines),
                "found": len(s),
                "bad_annotation_lines": [{"file": b.file, "line": b.line_number, "reason": b.reason}
                                         for b in s.bad_lines],
            }
            for split, s in self._splits.items()
        }

    def describe(self) -> dict[str, Any]:
        """What the runs were trained and tested on, for the run record."""
        out = {
            "dataset": f"lra_{self.task}",
            "task": self.task,
            "root": str(self.root if self.root is not None else self.data_root),
            "mimics": MIMICS[self.task],
            "synthetic": self.synthetic,
            "num_classes": self.num_classes,
            "vocab_size": self.vocab_size,
            "max_length": self.max_length,
            "padded_length": self.padded_length,
            **{f"num_{split}": len(s) for split, s in self._splits.items()},
        }
        if self.task == "listops":
            out["listops_tokenizer"] = self.listops_tokenizer
        if self.synthetic:
            out["synthetic_params"] = asdict(ListOpsSpec(**self.synthetic_params))
        return out

    @property
    def padded_length(self) -> int | None:
        """Tokens every sequence is padded to (``pipeline_padding``), or None: each batch's longest."""
        return 1 << (self.max_length - 1).bit_length() if self.pipeline_padding else None

    # --- helpers --------------------------------------------------------------------------------------------------

    def _reader_options(self) -> dict[str, Any]:
        if self.task == "listops":
            return {"tokenizer": self.listops_tokenizer}
        if self.task == "pathfinder":
            return {"seed": self.split_seed}
        return {}

    def _loader(self, split: str, shuffle: bool, drop_last: bool) -> DataLoader:
        if split not in self._splits:
            raise RuntimeError(f"LRA {self.task}: split {split!r} not read; call setup() first")
        dataset = _TokenDataset(self._splits[split], self.max_length)
        return StopSafeDataLoader(  # its workers leave a stop to the training process (data.worker_signals)
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            drop_last=drop_last and len(dataset) >= self.batch_size,
            num_workers=self.num_workers,
            collate_fn=_PadCollate(self.padded_length),
            persistent_workers=self.num_workers > 0,
            pin_memory=torch.cuda.is_available(),
        )


__all__ = ["DEFAULT_MAX_LENGTH", "LRADataModule", "pad_collate"]
