"""A training loader that resumes mid-epoch exactly: same order, same augmentations, after a kill.

Three pieces, each through PyTorch's or Lightning's own interfaces:

- ``EpochSampler`` is a ``DistributedSampler`` (one replica on one process; Lightning leaves a distributed sampler
  in place and calls its ``set_epoch``): the order of epoch e is a permutation seeded by (seed, e) alone. It yields
  ``e * len(dataset) + index``, so the epoch travels with each index into any DataLoader worker.
- ``SeededItems`` draws each item's augmentation from generators seeded by (seed, epoch, index), restoring the
  process's generators afterwards: an item's crop, flip and clip start depend neither on the worker that loads it,
  nor on the number of workers, nor on what ran before it in the process.
- ``ResumableLoaderMixin`` gives a DataLoader ``state_dict``/``load_state_dict`` (Lightning stores them in the
  checkpoint as the train loader's state): the epoch and how many batches of it were drawn. Restored, its next
  epoch skips those batches at the index level (nothing is decoded for them) and continues where the killed run
  was.

The model's own random draws (dropout, mixup) come from the process's global generators; their state is saved and
restored by ``lightning_modules.resume.ExactResumeCallback``, which also hands the saved loader state back.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from torch.utils.data.distributed import DistributedSampler


class EpochSampler(DistributedSampler):
    """Shuffled indices seeded by (seed, epoch), split over ``num_replicas`` ranks as ``DistributedSampler``
    does; yields ``epoch * len(dataset) + index`` (decoded by ``SeededItems``)."""

    def __init__(self, dataset: Dataset, seed: int, num_replicas: int = 1, rank: int = 0) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed, drop_last=False)

    def __iter__(self) -> Iterator[int]:
        size, epoch = len(self.dataset), self.epoch
        return (epoch * size + index for index in super().__iter__())


class SeededItems(Dataset):
    """``dataset[index]`` with Python's, NumPy's and torch's CPU generators seeded by (seed, epoch, index) while the
    item is made; takes the indices ``EpochSampler`` yields."""

    def __init__(self, dataset: Dataset, seed: int) -> None:
        self.dataset, self.seed = dataset, seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, position: int) -> Any:
        epoch, index = divmod(position, len(self.dataset))
        item_seed = int(np.random.SeedSequence([self.seed, epoch, index]).generate_state(1, np.uint64)[0])
        saved = random.getstate(), np.random.get_state(), torch.default_generator.get_state()
        random.seed(item_seed)
        np.random.seed(item_seed % 2**32)
        torch.default_generator.manual_seed(item_seed)
        try:
            return self.dataset[index]
        finally:
            random.setstate(saved[0])
            np.random.set_state(saved[1])
            torch.default_generator.set_state(saved[2])


class _SkipFirst:
    """The loader's batch sampler, whose next pass starts after the batches a restored state says were drawn."""

    def __init__(self, batches: Any, loader: ResumableLoaderMixin) -> None:
        self.batches, self.loader = batches, loader

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[list[int]]:
        skip, self.loader._skip = self.loader._skip, 0
        for n, batch in enumerate(self.batches):
            if n >= skip:
                yield batch


class ResumableLoaderMixin:
    """Makes a DataLoader class resumable (``class ResumableDataLoader(ResumableLoaderMixin, SomeDataLoader)``); the
    base must have ``raw_batches()``, an iterator over every batch (None for a batch of unreadable items)."""

    _skip = 0
    _drawn = 0

    @property
    def _index_sampler(self) -> Any:
        return _SkipFirst(super()._index_sampler, self)

    def __iter__(self) -> Iterator[Any]:
        self._drawn = self._skip
        for batch in self.raw_batches():
            self._drawn += 1
            if batch is not None:
                yield batch

    def state_dict(self) -> dict[str, int]:
        return {"epoch": int(self.sampler.epoch), "batches_drawn": int(self._drawn)}

    def load_state_dict(self, state: dict[str, int]) -> None:
        epoch, drawn = state["epoch"], state["batches_drawn"]
        if drawn >= len(self):  # saved at the end of an epoch: the next one starts from its beginning
            epoch, drawn = epoch + 1, 0
        self.sampler.set_epoch(epoch)  # before Lightning's own set_epoch: the iterator may be made first
        self._skip = self._drawn = drawn
