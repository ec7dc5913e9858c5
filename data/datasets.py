"""``VideoClipDataset``: annotated videos -> clip samples, skipping (and recording) unreadable videos.

An unreadable video makes ``__getitem__`` return None, which ``collate_skip_none`` drops; it is never replaced by
another video. Failures are appended to a JSON-lines file shared by DataLoader workers and read back by
``data_report()``; ``check_files`` is the thorough check behind ``python -m data check``. Design:
data/README.md#checking-a-dataset.
"""

from __future__ import annotations

import json
import logging
import os
import stat
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate

from data.clip_sampling import (
    ClipInfo,
    DenseConvention,
    SegmentConvention,
    SegmentPlacement,
    check_dense_convention,
    check_segment_convention,
    check_segment_placement,
    check_segment_span,
    check_view_offsets,
    epic_slowfast_clip,
    sample_clip,
    segment_range,
    shift_clip,
    temporal_views,
)
from data.pose import PoseFormatError, ntu_main_body_joints, read_gym_pose, read_ntu_skeleton, read_pennaction_labels
from data.root_files import file_kind
from data.samples import BadAnnotation, Sample
from data.video_io import DECODED_VIDEOS, DecodedVideo, FrameFolderVideo, Video, VideoDecodeError, open_video

log = logging.getLogger(__name__)

Transform = Callable[[dict[str, Any]], dict[str, Any]]


class SegmentOutsideVideo(ValueError):
    """An annotated segment that starts after its video ends: the annotation, not the file, is at fault."""


class VideoClipDataset(Dataset):
    """Clips of annotated videos.

    ``mode="train"``: one random clip per video, ``video`` (C, T, H, W). ``mode="test"``: all ``num_clips`` temporal
    views through the test transform (which makes ``num_crops`` spatial views), decoded in one pass and stacked
    clip-major, ``video`` (num_clips * num_crops, C, T, H, W). A sample with a ``segment`` (EPIC-KITCHENS) is sampled
    inside it; a (verb, noun) label becomes a LongTensor (2,). With ``with_pose`` items also carry ``pose``, the joints
    at the sampled frames ((T, J, k); in test mode one per view), moved with the pixels by the transform
    (data/README.md#real-datasets); an unreadable pose file, or a PennAction one whose frame count is not its
    folder's, skips the sample like an unreadable video.

    Args:
        samples: the annotated videos (``data.annotations``); mode: "train" or "test".
        transform: dict -> dict; in test mode it must return ``video`` (num_crops, C, T, H, W) (``TestTransform``).
            None = only convert to float in [0, 1].
        sampling, num_frames, stride: "dense" or "segments", frames per clip, dense stride.
        num_clips: temporal views in test mode.
        segment_view_offsets, dense_convention, segment_span, segment_convention: ``data.clip_sampling``'s
            ``view_offsets``, dense ``convention``, ``span`` and segment ``convention`` (a video file's timestamps,
            ``Video.timing``, go to "pyslowfast_pyav" clips; a segment of an untrimmed video is sampled without).
        failures_path: JSON-lines file where unreadable videos are recorded (shared by DataLoader workers).
        dataset_name, split, bad_annotations: for the data report (the latter: malformed annotation lines).
        with_pose: also return the joints of ``Sample.pose`` files at the sampled frames.
        keep_decoded: keep every video's decoded frames in this process (``data.video_io.DECODED_VIDEOS``), for small
            generated sets; items are identical with and without it.
        segment_placement: how a segment becomes frames: "timestamps" (``segment_range``), or "epic_slowfast"
            (``data.clip_sampling.epic_slowfast_clip``, Motionformer's EPIC-KITCHENS loader; PySlowFast dense clips).
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
        segment_view_offsets: Sequence[float] | None = None,
        dense_convention: DenseConvention = "frame_stride",
        segment_span: float = 1.0,
        segment_convention: SegmentConvention = "uniform",
        failures_path: str | Path | None = None,
        dataset_name: str = "",
        split: str = "",
        bad_annotations: Sequence[BadAnnotation] = (),
        with_pose: bool = False,
        keep_decoded: bool = False,
        segment_placement: SegmentPlacement = "timestamps",
    ) -> None:
        if mode not in ("train", "test"):
            raise ValueError(f"mode must be 'train' or 'test', got {mode!r}")
        if sampling not in ("dense", "segments"):
            raise ValueError(f"sampling must be 'dense' or 'segments', got {sampling!r}")
        self.samples = list(samples)
        self.mode, self.transform, self.sampling = mode, transform, sampling
        self.num_frames, self.stride, self.num_clips = num_frames, stride, num_clips
        self.segment_view_offsets = check_view_offsets(segment_view_offsets, num_clips, sampling, dataset_name)
        self.dense_convention = check_dense_convention(dense_convention, sampling, dataset_name)
        self.segment_span = check_segment_span(segment_span, sampling, dataset_name)
        self.segment_convention = check_segment_convention(segment_convention, sampling, dataset_name)
        self.failures_path = Path(failures_path) if failures_path is not None else None
        self.dataset_name, self.split = dataset_name, split
        self.bad_annotations = list(bad_annotations)
        self.with_pose = with_pose
        if with_pose and any(sample.pose is None for sample in self.samples):
            raise ValueError(f"{dataset_name or 'dataset'}: with_pose needs a pose file for every sample")
        self._failures: list[dict[str, Any]] = []  # this process's own records
        self.keep_decoded = keep_decoded
        self.segment_placement = check_segment_placement(segment_placement, sampling, dense_convention, dataset_name)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, Any] | None:
        sample = self.samples[index]
        try:
            with self._open(sample) as video:
                clips = self._clips(video, sample)
                frames = video.get_clip(
                    min(c.clip_start_sec for c in clips), max(c.clip_end_sec for c in clips),
                    frame_indices=[i for c in clips for i in c.frame_indices])
                num_video_frames = video.num_frames
        except VideoDecodeError as err:
            self._record_failure(index, sample, err.reason)
            return None
        except SegmentOutsideVideo as err:
            self._record_failure(index, sample, str(err), kind="bad_segment")
            return None
        pose = None
        if self.with_pose:
            try:
                joints = load_pose(sample.pose)
            except (PoseFormatError, FileNotFoundError) as err:
                reason = "missing file" if isinstance(err, FileNotFoundError) else err.reason
                self._record_failure(index, sample, reason, path=sample.pose)
                return None
            mismatch = pose_frame_mismatch(sample.pose, len(joints), sample.path, num_video_frames)
            if mismatch is not None:
                self._record_failure(index, sample, mismatch, path=sample.pose)
                return None
            # NTU skeletons and FineGYM keypoints may have a few frames fewer: clamp to the last pose frame.
            pose = [torch.from_numpy(joints[np.minimum(c.frame_indices, len(joints) - 1)]) for c in clips]
        label = torch.tensor(sample.label) if isinstance(sample.label, tuple) else sample.label
        views = frames.split(self.num_frames, dim=1)  # one (C, T, H, W) per temporal clip
        items = []
        for k, view in enumerate(views):
            item = {"video": view, "label": label, "index": index}
            if pose is not None:  # the transform moves the joints with the pixels
                item |= {"pose": pose[k], "pose_space": pose_space(sample.pose)}
            items.append(self._apply(item))
        out = {"video": items[0]["video"] if self.mode == "train" else torch.cat([i["video"] for i in items]),
               "label": label, "index": index}
        if pose is not None:  # train: (T, J, k); test: one per spatial view of each clip, in the video's order
            out["pose"] = items[0]["pose"] if self.mode == "train" else torch.cat([i["pose"] for i in items])
        return out

    def views(self, index: int) -> list[ClipInfo]:
        """The clips item ``index`` is made of (each view's frames), from its video's header: no frame decoded."""
        sample = self.samples[index]
        with self._open(sample) as video:
            return self._clips(video, sample)

    def _open(self, sample: Sample) -> Video | FrameFolderVideo | DecodedVideo:
        if self.keep_decoded:
            return DECODED_VIDEOS.open(sample.path, sample.fps, sample.root)
        return open_video(sample.path, sample.fps, sample.root)

    def decode_all(self) -> None:
        """With ``keep_decoded``: decode every video now, in this process, so that the DataLoader workers it forks
        inherit the frames instead of each decoding its share again. Unreadable videos are left for
        ``__getitem__`` to record."""
        if not self.keep_decoded:
            raise ValueError(f"{self.dataset_name or 'dataset'}: decode_all needs keep_decoded=True")
        for sample in self.samples:
            try:
                DECODED_VIDEOS.open(sample.path, sample.fps, sample.root)
            except VideoDecodeError:
                continue

    def _clips(self, video: Video | FrameFolderVideo | DecodedVideo, sample: Sample) -> list[ClipInfo]:
        if sample.segment is not None and self.segment_placement == "epic_slowfast":
            return self._epic_slowfast_clips(video, sample)
        first, count = 0, video.num_frames
        timing = getattr(video, "timing", None)
        if sample.segment is not None:
            timing = None  # the timestamps are the whole file's
            try:
                first, count = segment_range(*sample.segment, video.fps, video.num_frames)
            except ValueError as err:
                raise SegmentOutsideVideo(f"line {sample.line}: {err}") from err
        if self.mode == "train":
            clips = [sample_clip(count, video.fps, self.num_frames, self.stride, self.sampling,
                                 dense_convention=self.dense_convention, segment_span=self.segment_span,
                                 segment_convention=self.segment_convention, timing=timing)]
        else:
            clips = temporal_views(count, video.fps, self.num_frames, self.stride, self.num_clips, self.sampling,
                                   self.segment_view_offsets, self.dense_convention, self.segment_span,
                                   self.segment_convention, timing)
        return [shift_clip(c, first, video.fps) for c in clips] if first else clips

    def _epic_slowfast_clips(self, video: Video | FrameFolderVideo | DecodedVideo, sample: Sample) -> list[ClipInfo]:
        """``segment_placement="epic_slowfast"``: the clips inside the segment as EPIC-KITCHENS' SlowFast loader
        places them, at the rate of its frames: the video's, which for an ``rgb_frames`` folder is the rate its
        ``Sample.fps`` carries (the reader's 50 / 60 fps by the video's name), for a video file its own."""
        try:
            if self.mode == "train":
                return [epic_slowfast_clip(*sample.segment, video.fps, video.num_frames, self.num_frames, self.stride,
                                           "random")]
            return [epic_slowfast_clip(*sample.segment, video.fps, video.num_frames, self.num_frames, self.stride, i,
                                       self.num_clips) for i in range(self.num_clips)]
        except ValueError as err:
            raise SegmentOutsideVideo(f"line {sample.line}: {err}") from err

    def _apply(self, item: dict[str, Any]) -> dict[str, Any]:
        if self.transform is not None:
            return self.transform(item)
        video = item["video"].float() / 255.0
        if self.mode == "train":
            return {**item, "video": video}
        return {**item, "video": video[None], **({"pose": item["pose"][None]} if "pose" in item else {})}

    # --- failure accounting -------------------------------------------------------------------------------------

    def _record_failure(self, index: int, sample: Sample, reason: str, path: Path | None = None,
                        kind: str | None = None) -> None:
        """kind: "missing" / "corrupt" (a file), or "bad_segment" (an annotation its video cannot satisfy)."""
        kind = kind or ("missing" if reason == "missing file" else "corrupt")
        path = sample.path if path is None else path
        record = {"dataset": self.dataset_name, "split": self.split, "mode": self.mode, "index": index,
                  "path": str(path), "kind": kind, "reason": reason, "line": sample.line}
        self._failures.append(record)
        if self.failures_path is not None:
            from data.atomic_write import open_log

            with open_log(self.failures_path) as handle:
                handle.write(json.dumps(record) + "\n")  # one write: atomic append across workers
        if self.mode == "train":
            log.warning("skipping unreadable training sample %s (%s: %s)", sample.video_id, path, reason)
        else:
            log.info("skipping unreadable %s sample %s (%s: %s)", self.split or "test", sample.video_id, path, reason)

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


def pose_space(path: Path) -> str:
    """What ``load_pose`` coordinates mean: "pixel" (PennAction .mat, FineGYM .npz) or "camera" (NTU .skeleton)."""
    return "camera" if Path(path).suffix == ".skeleton" else "pixel"


def one_pose_row_per_frame(path: Path) -> bool:
    """Whether a pose file must hold exactly one row per video frame (PennAction's .mat), rather than being
    clamped to its last row (NTU's .skeleton, FineGYM's .npz)."""
    return Path(path).suffix == ".mat"


def pose_frame_mismatch(path: Path, num_pose_frames: int, video: Path, num_video_frames: int) -> str | None:
    """Why a pose file does not fit its video's frames, or None. PennAction ships one pose row per frame of the
    folder, so any difference means a corrupt pose file (joints clamped to its last row would be wrong for every
    later frame); NTU's skeleton files, and FineGYM keypoints estimated on frames cut apart from the videos, may
    differ from their videos by a few frames, and are clamped."""
    if one_pose_row_per_frame(path) and num_pose_frames != num_video_frames:
        return (f"{num_pose_frames} pose frames for the {num_video_frames} frames of {video} (PennAction has one "
                f"per frame)")
    return None


def load_pose(path: Path) -> np.ndarray:
    """Joints per frame of a pose file: PennAction ``.mat`` -> (T, 13, 2) pixel (x, y) as stored (1-based);
    NTU ``.skeleton`` -> (T, 25, 3) camera-space (x, y, z) of the main actor (``data.pose.ntu_main_body_joints``);
    FineGYM ``.npz`` -> (T, 17, 2) pixel (x, y), 1-based, of the gymnast (``data.pose.read_gym_pose``).

    Raises:
        FileNotFoundError: no such file.
        PoseFormatError: a malformed file, one without frames, or an NTU file without a body in any frame.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(path)
    if path.suffix == ".mat":
        joints = read_pennaction_labels(path).joints()
    elif path.suffix == ".skeleton":
        frames = read_ntu_skeleton(path)
        if frames and not any(frames):  # NTU ships such files: its "samples with missing skeletons" lists
            raise PoseFormatError(path, "no body in any frame (a missing skeleton)")
        joints = ntu_main_body_joints(frames)
    elif path.suffix == ".npz":
        joints = read_gym_pose(path)
    else:
        raise PoseFormatError(path, "unknown pose format (expected .mat, .skeleton or .npz)")
    if not len(joints):
        raise PoseFormatError(path, "no frames")
    return joints


def _stat(path: Path) -> str | None:
    """None if the file looks usable from a stat alone, else "missing file" or a corruption reason (a FIFO or a
    device is one: never opened)."""
    try:
        info = os.stat(path)
        if stat.S_ISDIR(info.st_mode):
            with os.scandir(path) as entries:
                return None if any(True for _ in entries) else "no frames (empty frame folder)"
    except (FileNotFoundError, NotADirectoryError):
        return "missing file"
    except (OSError, ValueError) as err:  # unreadable, a name too long
        return f"cannot read: {getattr(err, 'strerror', None) or err}"
    if not stat.S_ISREG(info.st_mode):
        return f"not a regular file (a {file_kind(info.st_mode)})"
    return "zero-byte file" if info.st_size == 0 else None


def _unique(paths) -> list[Path]:
    return list(dict.fromkeys(paths))


def _scan(samples: Sequence[Sample]) -> tuple[list[str], list[dict[str, str]]]:
    """Missing and zero-byte (or empty-folder) files among the videos and pose files, by a stat of each path."""
    missing, corrupt = [], []
    for path in _unique([s.path for s in samples] + [s.pose for s in samples if s.pose is not None]):
        reason = _stat(path)
        if reason == "missing file":
            missing.append(str(path))
        elif reason is not None:
            corrupt.append({"path": str(path), "reason": reason})
    return missing, corrupt


def build_report(
    dataset: str,
    split: str,
    samples: Sequence[Sample],
    bad_annotations: Sequence[BadAnnotation],
    failure_lists: Sequence[Sequence[dict[str, Any]]],
    scanned: tuple[list[str], list[dict[str, str]]] | None = None,
) -> dict[str, Any]:
    """The data report of one split; ``failure_lists`` may come from several datasets over the same samples.

    ``scanned`` replaces the stat scan by the result of a deeper check (``check_files``)."""
    missing, corrupt = scanned if scanned is not None else _scan(samples)
    missing, corrupt = list(missing), list(corrupt)
    known_missing, corrupt_paths = set(missing), {c["path"] for c in corrupt}
    skipped = {"train": set(), "test": set()}
    bad_segments: dict[tuple[str, Any], dict[str, Any]] = {}
    for failures in failure_lists:
        for record in failures:
            if record["mode"] in skipped:  # not "check" records (python -m data check)
                skipped[record["mode"]].add((record["path"], record.get("index")))  # a video holds many samples
            if record["kind"] == "bad_segment":
                bad_segments[(record["path"], record.get("line"))] = {
                    "path": record["path"], "line": record.get("line"), "reason": record["reason"]}
            elif record["kind"] == "missing" and record["path"] not in known_missing:
                missing.append(record["path"])  # vanished after the scan
                known_missing.add(record["path"])
            elif record["kind"] == "corrupt" and record["path"] not in corrupt_paths:
                corrupt.append({"path": record["path"], "reason": record["reason"]})
                corrupt_paths.add(record["path"])
    videos = {str(p) for p in _unique(s.path for s in samples)}
    poses = {str(p) for p in _unique(s.pose for s in samples if s.pose is not None)}
    unusable = known_missing | corrupt_paths
    report = {
        "dataset": dataset,
        "split": split,
        "expected": len(videos),
        "found": len(videos - known_missing),
        "missing": sorted(known_missing),
        "corrupt": sorted(corrupt, key=lambda c: c["path"]),
        "bad_annotation_lines": [{"file": b.file, "line": b.line_number, "reason": b.reason} for b in bad_annotations],
        "samples": len(samples),
        "unusable_samples": sum(str(s.path) in unusable or (s.pose is not None and str(s.pose) in unusable)
                                for s in samples),
        "skipped_at_train": len(skipped["train"]),
        "skipped_at_test": len(skipped["test"]),
    }
    if bad_segments:  # segments found at decoding time to lie outside their (readable) video
        report["bad_segments"] = sorted(bad_segments.values(), key=lambda b: (b["path"], b["line"] or 0))
    if poses:
        report["pose_expected"], report["pose_found"] = len(poses), len(poses - known_missing)
    return report


# A frame folder up to this size has every JPEG decoded by the check (PennAction's short clips); EPIC-KITCHENS'
# rgb_frames folders hold tens of thousands each: their first and last frames, as a video file's.
FULLY_CHECKED_FRAMES = 1000


def _check_video(path: Path, fps: float | None = None, root: Path | None = None) -> str | None:
    """None if the video opens and its first and last frames decode, else the reason."""
    try:
        with open_video(path, fps, root) as video:
            video.get_clip(0, 0, frame_indices=[0])
            last = video.num_frames - 1
            if isinstance(video, FrameFolderVideo) and video.num_frames <= FULLY_CHECKED_FRAMES:
                video.get_clip(0, 0, frame_indices=list(range(video.num_frames)))  # JPEGs are cheap: all of them
            else:
                video.get_clip(last / video.fps, (last + 1) / video.fps, frame_indices=[last])
    except VideoDecodeError as err:
        return err.reason
    return None


def _check_pose(path: Path, video: Path, root: Path | None = None) -> str | None:
    """None if the pose file parses and fits its video's frame count (``pose_frame_mismatch``), else the reason;
    an unreadable video is its own entry, so the frame counts are then not compared."""
    try:
        joints = load_pose(path)
    except FileNotFoundError:
        return "missing file"
    except PoseFormatError as err:
        return err.reason if err.line is None else f"line {err.line}: {err.reason}"
    if not one_pose_row_per_frame(path):  # the others are clamped: no need to open the video
        return None
    try:
        with open_video(video, root=root) as opened:
            return pose_frame_mismatch(path, len(joints), video, opened.num_frames)
    except VideoDecodeError:
        return None


def check_files(samples: Sequence[Sample], decode: bool = True, workers: int = 1) -> dict[str, str | None]:
    """{path: None if usable, else "missing file" or why it is corrupt} for every video and pose file.

    Args:
        samples: the annotated samples.
        decode: decode each video's first and last frames and parse each pose file; False = a stat only.
        workers: threads (PyAV and PIL release the GIL while decoding).
    """
    from concurrent.futures import ThreadPoolExecutor

    videos = _unique(s.path for s in samples)
    video_set = set(videos)
    fps_of = {s.path: s.fps for s in samples}
    root_of = {p: s.root for s in samples for p in (s.path, s.pose) if p is not None}
    video_of = {s.pose: s.path for s in samples if s.pose is not None}
    poses = [p for p in video_of if p not in video_set]

    def one(item: tuple[Path, bool]) -> str | None:
        path, is_video = item
        reason = _stat(path)
        if reason is not None or not decode:
            return reason
        if is_video:
            return _check_video(path, fps_of[path], root_of[path])
        return _check_pose(path, video_of[path], root_of[path])

    items = [(p, True) for p in videos] + [(p, False) for p in poses]
    with ThreadPoolExecutor(max(1, workers)) as pool:
        return {str(path): reason for (path, _), reason in zip(items, pool.map(one, items), strict=True)}


def check_segments(samples: Sequence[Sample], status: dict[str, str | None]) -> list[dict[str, Any]]:
    """Annotated segments that start after the end of their (readable) video, as {path, line, reason}."""
    out = []
    by_video: dict[Path, list[Sample]] = {}
    for sample in samples:
        if sample.segment is not None and status.get(str(sample.path), "unchecked") is None:
            by_video.setdefault(sample.path, []).append(sample)
    for path, group in by_video.items():
        with open_video(path, group[0].fps, group[0].root) as video:  # metadata only: it passed check_files
            for sample in group:
                try:
                    segment_range(*sample.segment, video.fps, video.num_frames)
                except ValueError as err:
                    out.append({"path": str(path), "line": sample.line, "reason": f"line {sample.line}: {err}"})
    return out


def split_check(status: dict[str, str | None]) -> tuple[list[str], list[dict[str, str]]]:
    """``check_files`` output -> (missing paths, corrupt [{path, reason}]), the form ``build_report`` takes."""
    missing = [p for p, r in status.items() if r == "missing file"]
    corrupt = [{"path": p, "reason": r} for p, r in status.items() if r not in (None, "missing file")]
    return missing, corrupt


def collate_skip_none(batch: list[dict[str, Any] | None]) -> dict[str, Any] | None:
    """``default_collate`` over the readable items; None when a whole batch was unreadable.

    A LightningModule step receiving None should return None (Lightning then skips the batch).
    """
    items = [item for item in batch if item is not None]
    return default_collate(items) if items else None
