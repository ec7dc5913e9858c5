"""``VideoClipDataset``: annotated videos -> clip samples, skipping (and recording) unreadable videos.

Robustness design. A video that cannot be read (missing, zero-byte, truncated, undecodable) makes
``__getitem__`` return None; ``collate_skip_none`` drops it from the batch. It is never replaced by another video,
so test accuracy is computed over exactly the readable videos, and every skip is accounted for.

Failures must be counted across DataLoader worker processes, whose memory the main process never sees. Each
failure is therefore appended as one JSON line to ``failures_path`` (one ``write`` of a short line on a file opened
with O_APPEND is atomic on local POSIX filesystems, so concurrent workers do not interleave). ``data_report()``
reads that file back, adds a cheap existence/size scan of all annotated paths (done when the report is asked
for, so construction stays instant on large datasets) and the annotation reader's bad lines. Without a
``failures_path`` failures are only kept in memory, which is complete only with ``num_workers=0``.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from torch.utils.data import Dataset, default_collate

from data.annotations import BadAnnotation, Sample
from data.clip_sampling import ClipInfo, sample_clip, temporal_views
from data.video_io import Video, VideoDecodeError

log = logging.getLogger(__name__)

Transform = Callable[[dict[str, Any]], dict[str, Any]]


class VideoClipDataset(Dataset):
    """Clips of annotated videos.

    ``mode="train"``: one random clip per video, ``video`` (C, T, H, W) after the train transform.
    ``mode="test"``: all ``num_clips`` temporal views, each through the test transform (which makes ``num_crops``
    spatial views), stacked clip-major: ``video`` (num_clips * num_crops, C, T, H, W). The frames of all views are
    decoded in one pass.

    Args:
        samples: the annotated videos (``data.annotations``).
        mode: "train" or "test".
        transform: dict -> dict transform; in test mode it must return ``video`` of shape (num_crops, C, T, H, W)
            (``data.transforms.TestTransform``). None = only convert to float in [0, 1].
        sampling: "dense" (``num_frames`` at ``stride``) or "segments" (one frame per ``num_frames`` segments).
        num_frames: frames per clip.
        stride: frame stride of dense sampling.
        num_clips: temporal views in test mode.
        failures_path: JSON-lines file where unreadable videos are recorded (shared by DataLoader workers).
        dataset_name: for the data report.
        split: for the data report ("train", "val").
        bad_annotations: malformed annotation lines found while reading ``samples``, for the data report.
    """

    def __init__(
        self,
        samples: Sequence[Sample],
        mode: Literal["train", "test"],
        transform: Transform | None = None,
        sampling: Literal["dense", "segments"] = "dense",
        num_frames: int = 8,
        stride: int = 2,
        num_clips: int = 1,
        failures_path: str | Path | None = None,
        dataset_name: str = "",
        split: str = "",
        bad_annotations: Sequence[BadAnnotation] = (),
    ) -> None:
        if mode not in ("train", "test"):
            raise ValueError(f"mode must be 'train' or 'test', got {mode!r}")
        if sampling not in ("dense", "segments"):
            raise ValueError(f"sampling must be 'dense' or 'segments', got {sampling!r}")
        self.samples = list(samples)
        self.mode, self.transform, self.sampling = mode, transform, sampling
        self.num_frames, self.stride, self.num_clips = num_frames, stride, num_clips
        self.failures_path = Path(failures_path) if failures_path is not None else None
        self.dataset_name, self.split = dataset_name, split
        self.bad_annotations = list(bad_annotations)
        self._failures: list[dict[str, Any]] = []  # this process's own records

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, Any] | None:
        sample = self.samples[index]
        try:
            with Video(sample.path) as video:
                clips = self._clips(video)
                frames = video.get_clip(
                    min(c.clip_start_sec for c in clips), max(c.clip_end_sec for c in clips),
                    frame_indices=[i for c in clips for i in c.frame_indices])
        except VideoDecodeError as err:
            self._record_failure(index, sample, err.reason)
            return None
        views = frames.split(self.num_frames, dim=1)  # one (C, T, H, W) per temporal clip
        if self.mode == "train":
            video = self._apply({"video": views[0], "label": sample.label, "index": index})["video"]
        else:
            video = torch.cat([self._apply({"video": v, "label": sample.label, "index": index})["video"]
                               for v in views])
        return {"video": video, "label": sample.label, "index": index}

    def _clips(self, video: Video) -> list[ClipInfo]:
        if self.mode == "train":
            return [sample_clip(video.num_frames, video.fps, self.num_frames, self.stride, self.sampling)]
        return temporal_views(video.num_frames, video.fps, self.num_frames, self.stride, self.num_clips, self.sampling)

    def _apply(self, item: dict[str, Any]) -> dict[str, Any]:
        if self.transform is not None:
            return self.transform(item)
        video = item["video"].float() / 255.0
        return {**item, "video": video if self.mode == "train" else video[None]}

    # --- failure accounting -------------------------------------------------------------------------------------

    def _record_failure(self, index: int, sample: Sample, reason: str) -> None:
        kind = "missing" if reason == "missing file" else "corrupt"
        record = {"dataset": self.dataset_name, "split": self.split, "mode": self.mode, "index": index,
                  "path": str(sample.path), "kind": kind, "reason": reason, "line": sample.line}
        self._failures.append(record)
        if self.failures_path is not None:
            self.failures_path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.failures_path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")  # one write: atomic append across workers
        if self.mode == "train":
            log.warning("skipping unreadable training video %s (%s)", sample.path, reason)
        else:
            log.info("skipping unreadable %s video %s (%s)", self.split or "test", sample.path, reason)

    def failures(self) -> list[dict[str, Any]]:
        """Recorded failures of this dataset's split, from every process that wrote to ``failures_path``."""
        if self.failures_path is None or not self.failures_path.exists():
            records = self._failures
        else:
            records = []
            for line in self.failures_path.read_text(encoding="utf-8").splitlines():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:  # a line cut by a crash: ignore it rather than lose the report
                    continue
        return [r for r in records if r.get("dataset") == self.dataset_name and r.get("split") == self.split]

    def data_report(self) -> dict[str, Any]:
        """Expected/found counts, missing and corrupt files, bad annotation lines and skips so far."""
        return build_report(self.dataset_name, self.split, self.samples, self.bad_annotations,
                            [self.failures()])


def _scan(samples: Sequence[Sample]) -> tuple[list[str], list[dict[str, str]]]:
    """Missing and zero-byte files, by a stat of each path (no decoding)."""
    missing, empty = [], []
    for sample in samples:
        try:
            if os.stat(sample.path).st_size == 0:
                empty.append({"path": str(sample.path), "reason": "zero-byte file"})
        except FileNotFoundError:
            missing.append(str(sample.path))
    return missing, empty


def build_report(
    dataset: str,
    split: str,
    samples: Sequence[Sample],
    bad_annotations: Sequence[BadAnnotation],
    failure_lists: Sequence[Sequence[dict[str, Any]]],
) -> dict[str, Any]:
    """The data report of one split; ``failure_lists`` may come from several datasets over the same samples."""
    missing, corrupt = _scan(samples)
    known_missing, corrupt_paths = set(missing), {c["path"] for c in corrupt}
    skipped = {"train": set(), "test": set()}
    for failures in failure_lists:
        for record in failures:
            skipped[record["mode"]].add(record["path"])
            if record["kind"] == "missing" and record["path"] not in known_missing:
                missing.append(record["path"])  # vanished after the scan
                known_missing.add(record["path"])
            elif record["kind"] == "corrupt" and record["path"] not in corrupt_paths:
                corrupt.append({"path": record["path"], "reason": record["reason"]})
                corrupt_paths.add(record["path"])
    return {
        "dataset": dataset,
        "split": split,
        "expected": len(samples),
        "found": len(samples) - len(known_missing),
        "missing": sorted(known_missing),
        "corrupt": sorted(corrupt, key=lambda c: c["path"]),
        "bad_annotation_lines": [{"file": b.file, "line": b.line_number, "reason": b.reason} for b in bad_annotations],
        "skipped_at_train": len(skipped["train"]),
        "skipped_at_test": len(skipped["test"]),
    }


def collate_skip_none(batch: list[dict[str, Any] | None]) -> dict[str, Any] | None:
    """``default_collate`` over the readable items; None when a whole batch was unreadable.

    A LightningModule step receiving None should return None (Lightning then skips the batch).
    """
    items = [item for item in batch if item is not None]
    return default_collate(items) if items else None
