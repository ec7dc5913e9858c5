"""Each video draws from its own generator keyed by (seed, split, index), and per-split draws (labels, segment
counts) from one keyed by (seed, stream, split), so no draw depends on the order in which videos, splits or sets
are generated."""

from __future__ import annotations

import numpy as np

LABELS, SEGMENT_COUNTS = 2, 3  # per-split streams; 0 and 1 key the train and val videos themselves


SPLITS = {"train": 0, "val": 1}


def _split_index(split: str) -> int:
    # Any other name would silently repeat val's videos and labels: refuse it.
    if split not in SPLITS:
        raise ValueError(f"synthetic data has splits {', '.join(SPLITS)}; got {split!r}")
    return SPLITS[split]


def video_rng(seed: int, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, _split_index(split), index])


def split_rng(seed: int, split: str, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, stream, _split_index(split)])


def balanced_labels(rng: np.random.Generator, count: int, num_classes: int) -> list[int]:
    """Every class equally often (up to one), in random order."""
    return [int(v) for v in rng.permutation(np.arange(count) % num_classes)]
