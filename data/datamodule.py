"""``VideoDataModule``: one LightningDataModule for the synthetic sets and the real datasets.

The dataset name fixes the papers' conventions (sampling, flips, class count); explicit arguments override them,
except that a flip is never applied where it changes the label (SSv2, synth_motion). Verb/noun datasets carry
``label`` (B, 2) and ``num_classes={"verb": V, "noun": N}``; pose datasets can add ``pose`` (``with_pose=True``).
"""

from __future__ import annotations

import gc
import logging
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from data.annotations import (
    BadAnnotation,
    Sample,
    annotation_layout,
    annotation_source,
    class_counts,
    detect_format,
    read_annotations,
)
from data.clip_sampling import (
    DenseConvention,
    SegmentConvention,
    SegmentPlacement,
    check_dense_convention,
    check_segment_convention,
    check_segment_placement,
    check_segment_span,
    check_view_offsets,
)
from data.datasets import VideoClipDataset, build_report, collate_skip_none
from data.decoded_store import keep_decoded_set
from data.pose import PENNACTION_ACTIONS
from data.resumable import EpochSampler, ResumableLoaderMixin, SeededItems
from data.synthetic import SYNTHETIC_SETS, ensure_synthetic
from data.synthetic import synthetic_params as resolve_synthetic_params
from data.transforms import (
    AugmentOptions,
    CentreRounding,
    CropAxis,
    TestTransform,
    TrainTransform,
    check_channel_order,
    uniform_crop_offsets,
)
from data.worker_signals import StopSafeDataLoader

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DatasetInfo:
    """A dataset's conventions."""

    num_classes: int | None  # None: read from the annotations (SSv2 labels.json, EPIC class lists)
    annotation_format: str | None  # None: detected from the files under root
    sampling: Literal["dense", "segments"]
    hflip: bool  # whether a horizontal flip keeps the label
    mimics: str  # the real dataset (itself for real datasets)
    pose: bool = False  # samples carry a pose file (``with_pose`` is available)


DATASETS: dict[str, DatasetInfo] = {
    "synth_appearance": DatasetInfo(SYNTHETIC_SETS["synth_appearance"].num_classes, "kinetics_list", "dense",
                                    SYNTHETIC_SETS["synth_appearance"].hflip_ok, "Kinetics-400"),
    "synth_motion": DatasetInfo(SYNTHETIC_SETS["synth_motion"].num_classes, "ssv2", "segments",
                                SYNTHETIC_SETS["synth_motion"].hflip_ok, "Something-Something V2"),
    "kinetics400": DatasetInfo(400, None, "dense", True, "Kinetics-400"),
    "kinetics600": DatasetInfo(600, None, "dense", True, "Kinetics-600"),
    "ssv2": DatasetInfo(None, "ssv2", "segments", False, "Something-Something V2"),
    # Untrimmed kitchen videos, one sample per narration segment, label (verb, noun); by default one frame per
    # uniform segment of the action, as CAST's code (Motionformer's preset samples dense clips inside it instead).
    "epic_kitchens100": DatasetInfo(None, "epic_kitchens100", "segments", True, "EPIC-KITCHENS-100"),
    "pennaction": DatasetInfo(15, "pennaction", "segments", True, "PennAction", pose=True),
    # NTU RGB+D: the bare names are the cross-subject protocols; the other protocol has its own name.
    "ntu60": DatasetInfo(60, "ntu60_xsub", "segments", True, "NTU RGB+D 60", pose=True),
    "ntu60_xview": DatasetInfo(60, "ntu60_xview", "segments", True, "NTU RGB+D 60", pose=True),
    "ntu120": DatasetInfo(120, "ntu120_xsub", "segments", True, "NTU RGB+D 120", pose=True),
    "ntu120_xset": DatasetInfo(120, "ntu120_xset", "segments", True, "NTU RGB+D 120", pose=True),
    # Gym99 names its elements by skill (leaps, turns, saltos), not by side, so a flip keeps the label (our reading
    # of its class list; the joints are mirrored with the pixels).
    "finegym": DatasetInfo(99, "finegym99", "segments", True, "FineGYM (Gym99)", pose=True),
}
# The tiny scale's stand-ins (docs/tiny_regime_design.md): Kinetics' (dense clips,
# flips keep the label) and Something-Something V2's (segments, no flips), as the sets above they replace.
for _name, _sampling in (("synth_objects", "dense"), ("synth_motion_pairs", "segments")):
    _spec = SYNTHETIC_SETS[_name]
    DATASETS[_name] = DatasetInfo(_spec.num_classes, _spec.annotation_format, _sampling, _spec.hflip_ok,
                                  _spec.mimics)
# Synthetic stand-ins for EPIC (verb/noun) and PennAction (pose), described by their specs in data.synthetic.
for _name in ("synth_verbnoun", "synth_pose"):
    _spec = SYNTHETIC_SETS[_name]
    DATASETS[_name] = DatasetInfo(
        None if _spec.annotation_format == "epic_kitchens100" else _spec.num_classes, _spec.annotation_format,
        "segments", _spec.hflip_ok, _spec.mimics, pose=_spec.annotation_format == "pennaction")


# What each annotation format reads under the dataset's root (None: Kinetics, whose two layouts are detected); the
# one text behind ``python -m data check``'s hints and the data module's errors.
LAYOUTS: dict[str | None, str] = {
    None: "annotations/{train,val}.csv (label, youtube_id, time_start, time_end) with "
          "{train,val}/<youtube_id>_<start:06d>_<end:06d>.mp4, or `path label` lists train.csv / val.csv",
    "kinetics": "annotations/{train,val}.csv (label, youtube_id, time_start, time_end) with "
                "{train,val}/<youtube_id>_<start:06d>_<end:06d>.mp4",
    "kinetics_list": "`path label` lists train.csv / val.csv and the videos they name",
    "ssv2": "labels.json, train.json, validation.json and videos/<id>.webm, or the 20BN archives as they unpack: "
            "labels/{labels,train,validation}.json and 20bn-something-something-v2/<id>.webm",
    "epic_kitchens100": "EPIC_100_train.csv, EPIC_100_validation.csv, EPIC_100_verb_classes.csv, "
                        "EPIC_100_noun_classes.csv (in the root or annotations/) and <participant>/videos/<video>.MP4",
    "pennaction": "frames/<id>/<frame:06d>.jpg and labels/<id>.mat",
    **{ntu: "nturgb+d_rgb/<name>_rgb.avi and nturgb+d_skeletons/<name>.skeleton"
       for ntu in ("ntu60_xsub", "ntu60_xview", "ntu120_xsub", "ntu120_xset")},
    "finegym99": "gym99_train_element_v1.1.txt and gym99_val_element.txt (in the root or annotations/), "
                 "subactions/<element id>.mp4 and poses/<element id>.npz",
}


def expected_layout(name: str, fmt: str | None) -> str:
    """'Kinetics-400 expects ...': what the named dataset needs under its root, in the format that will be read."""
    info = DATASETS[name]
    who = info.mimics if name not in SYNTHETIC_SETS else f"{name} (written in {info.mimics}'s layout)"
    return f"{who} expects {LAYOUTS.get(fmt, f'the {fmt} annotation files')}"


class MissingAnnotationError(FileNotFoundError, ValueError):
    """An annotation file (or the dataset's root) is absent: the message names it and what the dataset expects
    under its root. Also a ValueError, so that the command lines print it in one line, as other bad data."""


class EmptySplitError(ValueError):
    """A split every run needs (validation and test read "val") has no samples: the message names the split, its
    annotation file and what was unusable in it. (The runner refuses an empty training split itself: only it
    knows whether a run trains.)"""


@contextmanager
def naming_missing_files(name: str, fmt: str | None) -> Iterator[None]:
    """Turns a FileNotFoundError of the annotation readers into a ``MissingAnnotationError`` that adds what the
    named dataset expects under its root."""
    try:
        yield
    except FileNotFoundError as err:
        what = f"{err.filename} not found" if err.filename else str(err)
        raise MissingAnnotationError(f"{what}; {expected_layout(name, fmt)}") from None


def annotation_format_of(name: str, root: Path, fmt: str | None) -> str:
    """``fmt``, else the format detected from the files under ``root``; a ``MissingAnnotationError`` with what the
    named dataset expects if ``root`` is not a folder or holds no annotation files."""
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "does not exist"
        raise MissingAnnotationError(f"{root} {what}; {expected_layout(name, fmt)}")
    if fmt is not None:
        return fmt
    try:
        return detect_format(root)
    except FileNotFoundError:
        raise MissingAnnotationError(f"{root}: no annotation files found; {expected_layout(name, fmt)}") from None


def synthetic_num_classes(name: str, synthetic_params: Mapping[str, Any] | None = None) -> int:
    """Classes of the synthetic set ``name`` as generated with ``synthetic_params`` (its first ``num_classes``)."""
    return (synthetic_params or {}).get("num_classes") or SYNTHETIC_SETS[name].num_classes


def dataset_num_classes(name: str, fmt: str, root: Path,
                        synthetic_params: Mapping[str, Any] | None = None) -> int | dict[str, int] | None:
    """The class count of dataset ``name`` read in format ``fmt`` from ``root``: what its annotations define,
    else the count of its synthetic set (``synthetic_params["num_classes"]`` first), else ``DATASETS``'."""
    synthetic = name in SYNTHETIC_SETS
    own = synthetic_num_classes(name, synthetic_params) if synthetic else None
    if synthetic and fmt == "pennaction":  # its labels index the set's own actions, not PennAction's 15
        return own
    counts = class_counts(fmt, root)
    if counts:
        return counts
    return own if synthetic else DATASETS[name].num_classes


class VideoDataModule(L.LightningDataModule):
    """Train/val/test loaders over one dataset; batches are dicts {"video", "label", "index"} (+ "pose").

    Train: one random clip per video, video (B, C, T, H, W); val: one centred clip and crop per video; test:
    ``test_clips`` x ``test_crops`` views per validation video, (B, V, C, T, H, W). Unreadable videos are dropped from
    batches and counted in ``data_report()``. ``label`` is (B,), or (B, 2) = (verb, noun).

    Args:
        dataset: one of ``DATASETS``; root: its directory (None for a synthetic set, generated into ``cache_dir``).
        synthetic_params: ``generate_synthetic`` parameters (num_train, num_val, seed, ...); synthetic sets only.
        num_frames, frame_stride: frames per clip; dense-sampling stride.
        sampling: "dense" | "segments" | None (the dataset's convention).
        dense_convention, segment_view_offsets, segment_span, segment_convention: ``data.clip_sampling``'s dense
            ``convention``, ``view_offsets``, ``span`` and segment ``convention`` (data/README.md#clip-sampling).
        crop_size, train_scale, test_short_side: network input side; (min, max) random short side before the training
            crop; short side before the test crops (None = crop_size).
        test_centre_rounding: ``TestTransform``'s ``centre_rounding`` for the test views: "ceil" (PySlowFast's) or
            "floor" (VideoMAE's and CAST's); the per-epoch validation crop keeps "ceil". ``test_crop_axis``: where
            the 3 test crops move, "long_side" or "width" (TokShift's).
        hflip: training flips; None = the dataset's convention (forced off, with a warning, where direction matters).
        mean, std: per-channel normalisation, on the [0, 1] scale.
        batch_size, num_workers, test_clips, test_crops: clips per batch, workers, temporal and spatial test views.
        val_curve_videos: per-epoch validation reads the first this many videos of the val split (None: all); the
            test reads every one.
        failures_dir: where unreadable videos are recorded (``failures.jsonl``); None = a fresh temporary directory.
        annotation_format: one of ``data.annotations.ANNOTATION_FORMATS``; None = the dataset's, else detected.
        with_pose: add each clip's joints (``pose``) to the batches; pose datasets only.
        channel_order: "RGB" or "BGR", the channel order the model reads (train, validation and test transforms).
        segment_placement: ``VideoClipDataset``'s: "timestamps", or "epic_slowfast" (Motionformer's EPIC loader).
        augment: training augmentation, ``data.transforms.AugmentOptions``' fields by name (``self.augment``),
            passed on to ``TrainTransform``.
    """

    def __init__(
        self,
        dataset: str,
        root: str | Path | None = None,
        cache_dir: str | Path = ".cache/synthetic",
        synthetic_params: Mapping[str, Any] | None = None,
        num_frames: int = 8,
        frame_stride: int = 2,
        sampling: Literal["dense", "segments"] | None = None,
        crop_size: int = 32,
        train_scale: tuple[int, int] = (32, 40),
        test_short_side: int | None = None,
        hflip: bool | None = None,
        mean: tuple[float, ...] = (0.5, 0.5, 0.5),
        std: tuple[float, ...] = (0.5, 0.5, 0.5),
        batch_size: int = 16,
        num_workers: int = 2,
        test_clips: int = 2,
        test_crops: int = 1,
        val_curve_videos: int | None = None,
        segment_view_offsets: Sequence[float] | None = None,
        dense_convention: DenseConvention = "frame_stride",
        segment_span: float = 1.0,
        segment_convention: SegmentConvention = "uniform",
        failures_dir: str | Path | None = None,
        annotation_format: str | None = None,
        with_pose: bool = False,
        test_centre_rounding: CentreRounding = "ceil",
        test_crop_axis: CropAxis = "long_side",
        channel_order: str = "RGB",
        segment_placement: SegmentPlacement = "timestamps",
        **augment: Any,
    ) -> None:
        super().__init__()
        self._check_dataset(dataset, root, synthetic_params, with_pose)
        self.dataset = dataset
        self.root = Path(root) if root is not None else None
        self.cache_dir = Path(cache_dir)
        self.synthetic_params = dict(synthetic_params or {})
        if self.synthetic:
            resolve_synthetic_params(**self.synthetic_params)  # unknown names fail here, not in a worker
        self.num_frames, self.frame_stride = num_frames, frame_stride
        self.sampling = sampling or self.info.sampling
        self.crop_size, self.train_scale = crop_size, tuple(train_scale)
        self.test_short_side = test_short_side
        # a bad name fails here
        uniform_crop_offsets(crop_size, crop_size, crop_size, 1, test_centre_rounding, test_crop_axis)
        self.test_centre_rounding, self.test_crop_axis = test_centre_rounding, test_crop_axis
        self.channel_order = check_channel_order(channel_order)
        self.hflip = self._resolve_hflip(hflip)
        self.mean, self.std = tuple(mean), tuple(std)
        self.batch_size, self.num_workers = batch_size, num_workers
        self.test_clips, self.test_crops = test_clips, test_crops
        if val_curve_videos is not None and val_curve_videos < 1:
            raise ValueError(f"{dataset}: val_curve_videos must be at least 1 (or None: the whole split), got "
                             f"{val_curve_videos}")
        self.val_curve_videos = val_curve_videos
        self._check_sampling(segment_view_offsets, dense_convention, segment_span, segment_placement,
                             segment_convention)
        self.failures_dir = Path(failures_dir) if failures_dir is not None else None
        self.annotation_format = annotation_format or self.info.annotation_format
        self.with_pose = with_pose
        self.augment = AugmentOptions(**augment)  # an unknown name fails here
        self._splits: dict[str, tuple[list[Sample], list[BadAnnotation]]] = {}
        self._datasets: dict[str, VideoClipDataset] = {}
        self._num_classes: int | dict[str, int] | None = None

    def _check_dataset(self, dataset: str, root: str | Path | None, synthetic_params: Mapping[str, Any] | None,
                       with_pose: bool) -> None:
        """The dataset is known (``self.info``, ``self.synthetic``) and the root, generator settings and pose fit
        it."""
        if dataset not in DATASETS:
            raise ValueError(f"unknown dataset {dataset!r}; known: {sorted(DATASETS)}")
        self.info = DATASETS[dataset]
        self.synthetic = dataset in SYNTHETIC_SETS
        if root is None and not self.synthetic:
            raise ValueError(f"{dataset}: a root directory is required for real datasets")
        if synthetic_params and not self.synthetic:
            raise ValueError(f"{dataset}: synthetic_params only apply to synthetic sets")
        if with_pose and not self.info.pose:
            raise ValueError(f"{dataset}: with_pose needs a pose dataset; pose datasets: "
                             f"{sorted(n for n, i in DATASETS.items() if i.pose)}")

    def _check_sampling(self, segment_view_offsets: Sequence[float] | None, dense_convention: DenseConvention,
                        segment_span: float, segment_placement: SegmentPlacement,
                        segment_convention: SegmentConvention) -> None:
        """The clip-sampling options, each checked against ``self.sampling`` (``data.clip_sampling``'s checks)."""
        name = self.dataset
        self.segment_view_offsets = check_view_offsets(segment_view_offsets, self.test_clips, self.sampling, name)
        self.dense_convention = check_dense_convention(dense_convention, self.sampling, name)
        self.segment_span = check_segment_span(segment_span, self.sampling, name)
        self.segment_placement = check_segment_placement(segment_placement, self.sampling, self.dense_convention,
                                                         name)
        self.segment_convention = check_segment_convention(segment_convention, self.sampling, name)

    def _resolve_hflip(self, hflip: bool | None) -> bool:
        if hflip and not self.info.hflip:
            log.warning("%s: labels depend on direction, so horizontal flips stay off", self.dataset)
            return False
        return self.info.hflip if hflip is None else hflip

    # --- LightningDataModule hooks --------------------------------------------------------------------------------

    def prepare_data(self) -> None:
        """Generate the synthetic set on first use (once per node; no state is kept)."""
        if self.synthetic and self.root is None:
            ensure_synthetic(self.dataset, self.cache_dir, **self.synthetic_params)

    def setup(self, stage: str | None = None) -> None:
        """Read the annotations and build the datasets the stage needs.

        Raises:
            MissingAnnotationError: an annotation file is absent (named, with what the dataset expects).
            EmptySplitError: the val split has no samples (unless the training split has none either: the caller,
                which knows whether it trains, names that first).
            ValueError: a class table (SSv2 labels.json, EPIC class lists, Kinetics train.csv) is inconsistent.
        """
        root = self.data_root
        fmt = annotation_format_of(self.dataset, root, self.annotation_format)
        self.annotation_format = fmt
        fit = stage in ("fit", None)
        with naming_missing_files(self.dataset, fmt):
            self._num_classes = dataset_num_classes(self.dataset, fmt, root, self.synthetic_params)
            for split in ("train", "val") if fit else ("val",):
                if split not in self._splits:
                    samples, bad = read_annotations(fmt, root, split, num_classes=self._num_classes)
                    self._splits[split] = (self._synthetic_pose_labels(samples) if fmt == "pennaction" else samples,
                                           bad)
        # An empty val split fails now, before any training, not when the run tests at its end; an empty training
        # split is the caller's to refuse (only it knows whether it trains), and it is named first.
        if not (fit and not self._splits["train"][0]):
            self._require_val_samples()
        if self.failures_dir is None:
            self.failures_dir = Path(tempfile.mkdtemp(prefix="vidrepro-data-failures-"))
        failures = self.failures_dir / "failures.jsonl"
        common = dict(sampling=self.sampling, num_frames=self.num_frames, stride=self.frame_stride,
                      dense_convention=self.dense_convention, segment_span=self.segment_span,
                      segment_convention=self.segment_convention,
                      failures_path=failures, dataset_name=self.dataset, with_pose=self.with_pose,
                      keep_decoded=self.synthetic)  # generated sets are small: decode each video once
        if self.segment_placement != "timestamps":  # Motionformer's EPIC-KITCHENS placement, opt-in
            common["segment_placement"] = self.segment_placement
        if "train" in self._splits and "train" not in self._datasets:
            samples, bad = self._splits["train"]
            transform = TrainTransform(self.crop_size, self.train_scale, self.hflip, self.mean, self.std,
                                       channel_order=self.channel_order, **asdict(self.augment))
            self._datasets["train"] = VideoClipDataset(samples, "train", transform, split="train",
                                                       bad_annotations=bad, **common)
        samples, bad = self._splits["val"]
        if "val" not in self._datasets:  # per-epoch validation: one centred clip, one centre crop
            transform = TestTransform(self.crop_size, 1, self.test_short_side, self.mean, self.std,
                                      channel_order=self.channel_order)
            self._datasets["val"] = VideoClipDataset(samples[:self.val_curve_videos], "test", transform, num_clips=1,
                                                     split="val", bad_annotations=bad, **common)
        if "test" not in self._datasets:
            self._datasets["test"] = self.test_dataset(samples, bad, **common)
        if self.synthetic:  # decoded before the loaders fork: their workers inherit the frames
            if self.root is None:  # a set generated here: decoded once per machine, mapped from a file beside it
                for split_samples, _ in self._splits.values():
                    keep_decoded_set(root, split_samples)
            for dataset in self._datasets.values():
                dataset.decode_all()

    def test_dataset(self, samples: Sequence[Sample], bad: Sequence[BadAnnotation] = (), **common: Any
                     ) -> VideoClipDataset:
        """``samples`` through the test's views: ``test_clips`` temporal views of each video, placed as this data
        module places them, each through the test transform's ``test_crops`` spatial views. ``common``: the
        dataset's other options as ``setup`` gives them (without: this module's sampling, and the videos decoded
        as they are read): what ``test_dataloader`` reads, and what ``predict`` runs on a user's videos."""
        if not common:
            common = dict(sampling=self.sampling, num_frames=self.num_frames, stride=self.frame_stride,
                          dense_convention=self.dense_convention, segment_span=self.segment_span,
                          segment_convention=self.segment_convention, dataset_name=self.dataset,
                          with_pose=self.with_pose)
            if self.segment_placement != "timestamps":
                common["segment_placement"] = self.segment_placement
        transform = TestTransform(self.crop_size, self.test_crops, self.test_short_side, self.mean, self.std,
                                  centre_rounding=self.test_centre_rounding, channel_order=self.channel_order,
                                  crop_axis=self.test_crop_axis)
        return VideoClipDataset(samples, "test", transform, num_clips=self.test_clips,
                                segment_view_offsets=self.segment_view_offsets, split="val", bad_annotations=bad,
                                **common)

    def train_dataloader(self) -> DataLoader:
        # Resumable mid-epoch: order and augmentations seeded by (seed, epoch, index), see data.resumable; split over
        # the ranks of a distributed run by the sampler itself (Lightning keeps a DistributedSampler as it is).
        seed = int(os.environ.get("PL_GLOBAL_SEED", 0))  # Lightning's seed_everything sets it
        world, rank = (self.trainer.world_size, self.trainer.global_rank) if self.trainer else (1, 0)
        dataset = SeededItems(self._datasets["train"], seed)
        return self._loader(dataset, shuffle=False, drop_last=True, persistent=True, loader=ResumableDataLoader,
                            sampler=EpochSampler(dataset, seed, num_replicas=world, rank=rank))

    def val_dataloader(self) -> DataLoader:
        self._require_val_samples()
        return self._loader(_SingleView(self._datasets["val"]), shuffle=False, drop_last=False, persistent=True)

    def test_dataloader(self) -> DataLoader:
        self._require_val_samples()
        return self._loader(self._datasets["test"], shuffle=False, drop_last=False, persistent=False)

    # --- information --------------------------------------------------------------------------------------------

    @property
    def data_root(self) -> Path:
        """The dataset directory (for a synthetic set: its cache directory, generated if needed)."""
        if self.root is not None:
            return self.root
        return ensure_synthetic(self.dataset, self.cache_dir, **self.synthetic_params)

    @property
    def num_classes(self) -> int | dict[str, int]:
        """The class count, or {"verb": V, "noun": N} for verb/noun datasets."""
        if self._num_classes is not None:
            return self._num_classes
        if (self.annotation_format or self.info.annotation_format) == "epic_kitchens100":
            with naming_missing_files(self.dataset, "epic_kitchens100"):  # the class lists are small: read them now
                return class_counts("epic_kitchens100", self.data_root)
        if self.synthetic:
            return synthetic_num_classes(self.dataset, self.synthetic_params)
        if self.info.num_classes is not None:
            return self.info.num_classes
        raise RuntimeError(f"{self.dataset}: the class count is read from the annotations; call setup() first")

    def data_report(self) -> dict[str, dict[str, Any]]:
        """Per split: expected/found videos, missing and corrupt files, bad annotation lines, skips."""
        report = {}
        for split, (samples, bad) in self._splits.items():
            datasets = [d for d in self._datasets.values() if d.split == split]
            failures = [datasets[0].failures()] if datasets else []  # one file holds every dataset's records
            report[split] = build_report(self.dataset, split, samples, bad, failures)
        return report

    def describe(self) -> dict[str, Any]:
        """What the runs were trained and tested on, for the run record."""
        out = {
            "dataset": self.dataset,
            "root": str(self.root if self.root is not None else self.data_root),
            "mimics": self.info.mimics,
            "synthetic": self.synthetic,
            "annotation_format": self.annotation_format,
            "num_classes": self.num_classes,
            "num_train_videos": len(self._splits["train"][0]) if "train" in self._splits else None,
            "num_val_videos": len(self._splits["val"][0]) if "val" in self._splits else None,
            "sampling": self.sampling,
            "num_frames": self.num_frames,
            "frame_stride": self.frame_stride if self.sampling == "dense" else None,
            **({"segment_span": self.segment_span} if self.segment_span != 1.0 else {}),
            **({"segment_placement": self.segment_placement} if self.segment_placement != "timestamps" else {}),
            **({"channel_order": self.channel_order} if self.channel_order != "RGB" else {}),
            **({"segment_convention": self.segment_convention} if self.segment_convention != "uniform" else {}),
            "hflip": self.hflip,
            "with_pose": self.with_pose,
        }
        layout = annotation_layout(self.annotation_format, self.root) if self.root is not None else None
        if layout is not None and not self.synthetic:  # generated sets are always written in the first layout
            out["annotation_layout"] = layout
        if self.synthetic:
            out["synthetic_params"] = resolve_synthetic_params(**self.synthetic_params)
            out["description"] = SYNTHETIC_SETS[self.dataset].description
        return out

    # --- helpers --------------------------------------------------------------------------------------------------

    def _synthetic_pose_labels(self, samples: list[Sample]) -> list[Sample]:
        """A synthetic PennAction-format set uses a few of the 15 actions: index labels by its own class list."""
        if not self.synthetic:
            return samples
        names = SYNTHETIC_SETS[self.dataset].class_names
        out = []
        for sample in samples:
            action = PENNACTION_ACTIONS[sample.label]
            if action not in names:
                raise ValueError(f"{sample.pose}: action {action!r} is not one of {self.dataset}'s {names}")
            out.append(sample._replace(label=names.index(action)))
        return out

    def _require_val_samples(self) -> None:
        """An ``EmptySplitError`` if the val split has no samples: which file, and what in it was unusable."""
        samples, bad = self._splits["val"]
        if samples:
            return
        root = self.data_root
        source = annotation_source(self.annotation_format, root, "val")
        found = (f"{len(bad)} unusable annotation line(s), first {bad[0].file}:{bad[0].line_number}: {bad[0].reason}"
                 if bad else f"{source} holds no annotation")
        raise EmptySplitError(
            f"{self.dataset} from {root}: its val split, which validation and testing read, has no samples "
            f"({found}); `python -m data check {self.dataset} --root {root} --split val` lists what is wrong")

    def _loader(self, dataset: Dataset, shuffle: bool, drop_last: bool, persistent: bool,
                loader: type[DataLoader] | None = None, sampler: Any = None) -> DataLoader:
        workers = self.num_workers
        return (loader or SkipNoneDataLoader)(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            sampler=sampler,
            # its own generator: making an iterator draws worker seeds from it, not from the global generator
            # whose state a resumed run restores (lightning_modules.resume)
            generator=torch.Generator().manual_seed(int(os.environ.get("PL_GLOBAL_SEED", 0))),
            drop_last=drop_last,
            num_workers=workers,
            collate_fn=collate_skip_none,
            persistent_workers=persistent and workers > 0,
            pin_memory=torch.cuda.is_available(),
        )


class SkipNoneDataLoader(StopSafeDataLoader):
    """A DataLoader that never yields the None that ``collate_skip_none`` makes of an all-unreadable batch.

    A subclass rather than a wrapper, so Lightning can still re-create it with a distributed sampler. ``len()``
    counts such batches, so an epoch may end a few batches early. Its workers ignore the signals that stop a run
    (``data.worker_signals``).
    """

    def __iter__(self):
        return (batch for batch in self.raw_batches() if batch is not None)

    def raw_batches(self):
        """Every batch, None for one whose items were all unreadable."""
        starts_workers = self.num_workers > 0 and (self._iterator is None or not self.persistent_workers)
        if starts_workers:
            # fork()ed workers inherit the parent's garbage; a PyAV decoder among it (an unclosed Video in a
            # reference cycle) deadlocks the worker that frees it. Free garbage here, and freeze the rest so the
            # workers' collector never touches inherited objects.
            gc.collect()
            gc.freeze()
            try:
                iterator = super().__iter__()
            finally:
                gc.unfreeze()
        else:
            iterator = super().__iter__()
        return iterator


class ResumableDataLoader(ResumableLoaderMixin, SkipNoneDataLoader):
    """The training loader: resumes mid-epoch from the state Lightning keeps in the checkpoint (data.resumable)."""


class _SingleView(Dataset):
    """A one-view test dataset whose items drop the view axis, as training items have none: video
    (V=1, C, T, H, W) -> (C, T, H, W) and, where present, pose (V=1, T, ...) -> (T, ...)."""

    def __init__(self, dataset: VideoClipDataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Any] | None:
        item = self.dataset[index]
        if item is not None:
            item = {**item, **{key: item[key][0] for key in ("video", "pose") if key in item}}
        return item
