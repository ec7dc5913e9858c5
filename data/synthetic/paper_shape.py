"""Generated data at the real datasets' shape, in their published layouts, for the paper-scale smoke
(``python -m tools smoke``): the real readers, decoders and transforms run on files of the size, frame rate,
length, container and class count they will meet, so a shape, dtype or loader problem shows before a cluster job.

Content is not learnable (labels cycle through the classes): a smooth random texture panning under a moving disk,
which an encoder compresses like camera footage (motion, detail, long GOPs) rather than like a flat colour, so
decoding costs what it will on real videos of the same size, up to the real videos' own bitrates (``describe``
reports ours). ``PAPER_SHAPES`` says what is written per dataset and why; ``VideoShape.shrunk`` divides the frame
size for the quick subset CI runs. ``ensure_paper_shape`` writes one dataset root once and caches it.

Layouts (``data.annotations``, ``data.lra``, ``data.davis``): Kinetics as ``path label`` lists (``train.csv``,
``val.csv``; 400 or 600 classes from the dataset), SSv2's ``labels.json`` (174 templates) with ``videos/<id>.webm``,
EPIC-KITCHENS-100's CSVs (97 verbs, 300 nouns) with untrimmed ``<participant>/videos/<video>.MP4``, PennAction's
``frames/<id>/<n>.jpg`` with ``labels/<id>.mat``, NTU RGB+D's ``nturgb+d_rgb/*_rgb.avi`` with
``nturgb+d_skeletons/*.skeleton``, FineGYM's Gym99 element lists with ``subactions/<element>.mp4`` and
``poses/<element>.npz``, DAVIS 2017's 480p JPEG frames and palette masks, and the LRA releases' files.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import pickle
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from data.atomic_write import atomic_write_bytes, atomic_write_text, open_replacing, save_image
from data.cache import build_once
from data.davis import write_davis_fixture
from data.lra import write_listops
from data.pose import (
    COCO_JOINTS,
    PENNACTION_ACTIONS,
    ntu_body,
    write_gym_pose,
    write_ntu_skeleton,
    write_pennaction_labels,
)
from data.pose_annotations import GYM99_SPLIT_FILES
from data.schemas import GYM99_CLASSES
from data.synthetic.verbnoun import EPIC_CLASSES_HEADER, EPIC_CSV_HEADER
from data.video_io import write_frame_folder, write_video

WRITER_VERSION = 1  # bump when the files change: cached roots are keyed by it

# Encoder settings of camera-like files: x264's default GOP (a keyframe every 250 frames, so a clip's seek decodes
# from an earlier keyframe, as in downloaded videos), quality in the range published copies use.
_CODEC_OPTIONS = {".mp4": ("libx264", {"crf": "23", "preset": "veryfast"}),
                  ".MP4": ("libx264", {"crf": "23", "preset": "veryfast"}),
                  ".webm": ("libvpx-vp9", {"crf": "32", "b": "0", "deadline": "realtime", "cpu-used": "8"}),
                  ".avi": ("mpeg4", {"qscale": "5"})}


@dataclass(frozen=True)
class VideoShape:
    """Frames of one dataset's published files: size, rate and length (one video, or one EPIC action segment)."""

    width: int
    height: int
    fps: int
    seconds: float
    what: str  # the published form this stands for, as the smoke table states it

    @property
    def frames(self) -> int:
        return max(1, round(self.fps * self.seconds))

    def shrunk(self, factor: int) -> VideoShape:
        """The same rate and length at 1/``factor`` of the frame size (even sides, at least 16 px)."""
        if factor == 1:
            return self
        side = lambda n: max(16, n // factor // 2 * 2)  # noqa: E731
        return replace(self, width=side(self.width), height=side(self.height),
                       what=f"{self.what}, shrunk 1/{factor}")


_KINETICS = VideoShape(340, 256, 30, 10.0, "10 s clips at 30 fps, 340x256 (a short-side-256 copy; the YouTube "
                                           "originals vary), H.264")
_NTU = VideoShape(1920, 1080, 30, 3.0, "1920x1080 .avi at 30 fps (Kinect v2 colour), 3 s")
PAPER_SHAPES: dict[str, VideoShape] = {
    "kinetics400": _KINETICS,
    "kinetics600": _KINETICS,
    "ssv2": VideoShape(427, 240, 12, 4.0, "240 px tall at 12 fps, 4 s, .webm (VP9)"),
    # CAST's README prepares EPIC-KITCHENS-100 by resizing each video's short edge to 256 px (the published videos
    # are 1920x1080), as Kinetics is prepared above: a loader decodes and augments the frames the recipe reads.
    "epic_kitchens100": VideoShape(456, 256, 50, 3.0, "untrimmed .MP4 at 50 fps, 456x256 (the short-side-256 copy "
                                                      "CAST's README prepares from the 1920x1080 originals), 3 s "
                                                      "actions"),
    "pennaction": VideoShape(640, 480, 30, 2.0, "640x480 JPEG frames, 60 a video"),
    "ntu60": _NTU,
    "ntu120": _NTU,
    "finegym": VideoShape(1280, 720, 30, 2.0, "Gym99 elements cut from the YouTube videos, 1280x720 H.264 at 30 fps, "
                                              "2 s (size and length our choice: the sources vary)"),
    "davis2017": VideoShape(854, 480, 24, 2.0, "480p JPEG frames (854x480) and palette masks, 48 a sequence"),
}
# Long Range Arena: token sequences at the benchmark's lengths (no frames): ListOps 500-2000 tokens, texts longer
# than the 4000 bytes a model reads, 32x32 images.
LRA_DATASETS = ("lra_listops", "lra_text", "lra_retrieval", "lra_image", "lra_pathfinder")
_LRA_TEXT_BYTES = 5000
SSV2_CLASSES, EPIC_VERBS, EPIC_NOUNS = 174, 97, 300
KINETICS_CLASSES = {"kinetics400": 400, "kinetics600": 600}


def writable(dataset: str) -> bool:
    """Whether ``ensure_paper_shape`` can write ``dataset``."""
    return dataset in PAPER_SHAPES or dataset in LRA_DATASETS


# EPIC-KITCHENS-100 is published both as videos and as extracted frames (``rgb_frames``, which Motionformer's code
# reads); the smoke writes videos unless told otherwise (``smoke --epic-frames``).
EPIC_LAYOUTS = ("videos", "rgb_frames")


def ensure_paper_shape(dataset: str, cache_dir: str | Path, num_train: int, num_val: int, shrink: int = 1,
                       seed: int = 0, layout: str = "videos") -> Path:
    """The root of ``dataset`` written at its paper shape (frame size divided by ``shrink``) with ``num_train``
    training and ``num_val`` validation samples (videos; EPIC: action segments; LRA: sequences, ``num_val`` also
    for its test split), written on first use into ``cache_dir`` and reused afterwards. ``layout``: EPIC's
    ``rgb_frames`` in place of its videos (``EPIC_LAYOUTS``)."""
    if not writable(dataset):
        raise ValueError(f"no paper-shape writer for {dataset!r}; writable: {sorted([*PAPER_SHAPES, *LRA_DATASETS])}")
    _check_layout(dataset, layout)
    params = {"dataset": dataset, "num_train": num_train, "num_val": num_val, "shrink": shrink, "seed": seed,
              "version": WRITER_VERSION}
    if dataset in PAPER_SHAPES:  # a root written at an earlier shape is not this one
        params["shape"] = asdict(PAPER_SHAPES[dataset])
    if layout != "videos":
        params["layout"] = layout
    key = hashlib.sha1(json.dumps(params, sort_keys=True).encode()).hexdigest()[:10]
    target = Path(cache_dir) / f"{dataset}-{key}"
    return build_once(target, lambda tmp: write_paper_shape(dataset, tmp, num_train, num_val, shrink, seed, layout))


def _check_layout(dataset: str, layout: str) -> None:
    if layout != "videos" and (dataset != "epic_kitchens100" or layout not in EPIC_LAYOUTS):
        raise ValueError(f"{dataset} is written as videos; only epic_kitchens100 has another layout "
                         f"({', '.join(EPIC_LAYOUTS)}), got {layout!r}")


def write_paper_shape(dataset: str, root: Path, num_train: int, num_val: int, shrink: int = 1, seed: int = 0,
                      layout: str = "videos") -> Path:
    """Write ``dataset`` into ``root`` (see ``ensure_paper_shape``), with ``paper_shape.json`` describing it."""
    _check_layout(dataset, layout)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    if dataset in LRA_DATASETS:
        _LRA_WRITERS[dataset](root, rng, num_train, num_val)
        meta: dict[str, Any] = {"what": "LRA release layout at the benchmark's lengths"}
    else:
        shape = PAPER_SHAPES[dataset].shrunk(shrink)
        if layout == "videos":
            _VIDEO_WRITERS[dataset](root, rng, shape, num_train, num_val, dataset)
            meta = {"shape": asdict(shape), "frames": shape.frames}
        else:
            _epic(root, rng, shape, num_train, num_val, dataset, frames=True)
            meta = {"shape": asdict(shape), "frames": shape.frames, "layout": layout}
    meta.update(dataset=dataset, num_train=num_train, num_val=num_val, shrink=shrink, seed=seed,
                version=WRITER_VERSION)
    atomic_write_text(root / "paper_shape.json", json.dumps(meta, indent=1), sync=False)
    return root


def describe(root: str | Path) -> dict[str, Any]:
    """What a written root holds (``paper_shape.json``), with its size on disk and, for video files, the mean
    bitrate in kbit/s (decoding cost follows the frame size and, less, the bitrate)."""
    root = Path(root)
    meta = json.loads((root / "paper_shape.json").read_text())
    files = [p for p in root.rglob("*") if p.is_file()]
    meta["bytes"] = sum(p.stat().st_size for p in files)
    videos = [p for p in files if p.suffix in _CODEC_OPTIONS]
    if videos and "shape" in meta:
        seconds = meta["shape"]["seconds"] * (meta["num_train"] + meta["num_val"])
        meta["kbit_s"] = round(8 * sum(p.stat().st_size for p in videos) / seconds / 1000, 1)
    return meta


# ---- frames -----------------------------------------------------------------------------------------------------


_GRAIN = 3  # pixels per random texture value: detail that keeps the bitrates near those of camera footage


def footage(rng: np.random.Generator, shape: VideoShape, frames: int | None = None) -> Iterator[np.ndarray]:
    """``frames`` (default: the shape's) uint8 RGB frames (H, W, 3): a smooth random texture panning two pixels a
    frame under a bright disk crossing the frame; one frame at a time, so a 1080p video never sits in memory."""
    count = shape.frames if frames is None else frames
    height, width = shape.height, shape.width
    pan = 2 * count
    small = rng.integers(0, 256, (height // _GRAIN + 2, (width + pan) // _GRAIN + 2, 3), dtype=np.uint8)
    canvas = np.asarray(Image.fromarray(small).resize((small.shape[1] * _GRAIN, small.shape[0] * _GRAIN),
                                                      Image.BILINEAR))[:height]
    radius = max(2, min(height, width) // 8)
    for t in range(count):
        frame = np.ascontiguousarray(canvas[:, 2 * t:2 * t + width])
        cx, cy = width * (0.2 + 0.6 * t / max(count - 1, 1)), height / 2
        # the disk's bounding box only: a 1080p frame's full pixel grid took as long as encoding it
        x0, x1 = max(0, math.floor(cx - radius)), min(width, math.ceil(cx + radius) + 1)
        y0, y1 = max(0, math.floor(cy - radius)), min(height, math.ceil(cy + radius) + 1)
        yy, xx = np.ogrid[y0:y1, x0:x1]
        frame[y0:y1, x0:x1][(xx - cx) ** 2 + (yy - cy) ** 2 <= radius ** 2] = (240, 220, 60)
        yield frame


def _video(path: Path, rng: np.random.Generator, shape: VideoShape, frames: int | None = None) -> None:
    codec, options = _CODEC_OPTIONS[path.suffix]
    path.parent.mkdir(parents=True, exist_ok=True)
    write_video(path, footage(rng, shape, frames), shape.fps, codec=codec, codec_options=options)


# ---- video datasets ---------------------------------------------------------------------------------------------


def _kinetics(root: Path, rng: np.random.Generator, shape: VideoShape, num_train: int, num_val: int,
              dataset: str) -> None:
    classes = KINETICS_CLASSES[dataset]
    for split, count in (("train", num_train), ("val", num_val)):
        lines = []
        for i in range(count):
            rel = f"{split}/{split}_{i:05d}.mp4"
            _video(root / rel, rng, shape)
            lines.append(f"{rel} {i % classes}\n")
        atomic_write_text(root / f"{split}.csv", "".join(lines), sync=False)


def _ssv2(root: Path, rng: np.random.Generator, shape: VideoShape, num_train: int, num_val: int,
          dataset: str) -> None:
    templates = [f"Doing action {k:03d} with [something]" for k in range(SSV2_CLASSES)]
    atomic_write_text(root / "labels.json", json.dumps({t.replace("[", "").replace("]", ""): str(k)
                                                  for k, t in enumerate(templates)}), sync=False)
    first = 1
    for _split, count, name in (("train", num_train, "train.json"), ("val", num_val, "validation.json")):
        entries = []
        for i in range(count):
            video_id = str(first + i)
            _video(root / "videos" / f"{video_id}.webm", rng, shape)
            template = templates[i % SSV2_CLASSES]
            entries.append({"id": video_id, "label": template.replace("[", "").replace("]", ""),
                            "template": template, "placeholders": ["something"]})
        atomic_write_text(root / name, json.dumps(entries), sync=False)
        first += count


def _timestamp(seconds: float) -> str:
    ms = round(seconds * 1000)
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


def _epic(root: Path, rng: np.random.Generator, shape: VideoShape, num_train: int, num_val: int,
          dataset: str, frames: bool = False) -> None:
    """Videos of two actions each (``shape.seconds`` long, one second apart and from the ends); with ``frames``,
    each video as its extracted JPEG frames (``P01_<3 digits>``: EPIC-100 names, whose frames are read at 50 fps,
    the shape's rate)."""
    for kind, count in (("verb", EPIC_VERBS), ("noun", EPIC_NOUNS)):
        with open_replacing(root / f"EPIC_100_{kind}_classes.csv", "w", sync=False, newline="") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(EPIC_CLASSES_HEADER)
            writer.writerows([k, f"{kind}{k}", f"['{kind}{k}']", "generated"] for k in range(count))
    video_number, per_video = 0, 2
    for _split, count, name in (("train", num_train, "EPIC_100_train.csv"),
                                ("val", num_val, "EPIC_100_validation.csv")):
        rows = []
        for first in range(0, count, per_video):
            video_number += 1
            video_id = f"P01_{video_number:03d}"
            actions = min(per_video, count - first)
            length = round(shape.fps * (actions * (shape.seconds + 1) + 1))
            if frames:
                _epic_frames(root / "P01" / "rgb_frames" / video_id, rng, shape, length)
            else:
                _video(root / "P01" / "videos" / f"{video_id}.MP4", rng, shape, length)
            for k in range(actions):
                index = first + k
                start = 1 + k * (shape.seconds + 1)
                verb, noun = index % EPIC_VERBS, index % EPIC_NOUNS
                rows.append([f"{video_id}_{k}", "P01", video_id, _timestamp(start), _timestamp(start),
                             _timestamp(start + shape.seconds), round(start * shape.fps) + 1,
                             round((start + shape.seconds) * shape.fps), f"verb{verb} noun{noun}", f"verb{verb}",
                             verb, f"noun{noun}", noun, f"['noun{noun}']", f"[{noun}]"])
        with open_replacing(root / name, "w", sync=False, newline="") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(EPIC_CSV_HEADER)
            writer.writerows(rows)


def _epic_frames(folder: Path, rng: np.random.Generator, shape: VideoShape, count: int) -> None:
    """A video as EPIC-KITCHENS publishes its frames: ``frame_0000000001.jpg``, ... (JPEG quality 90)."""
    folder.mkdir(parents=True)
    for number, frame in enumerate(footage(rng, shape, count), start=1):
        save_image(folder / f"frame_{number:010d}.jpg", frame, sync=False, quality=90)


def _pennaction(root: Path, rng: np.random.Generator, shape: VideoShape, num_train: int, num_val: int,
                dataset: str) -> None:
    number = 0
    for train, count in ((True, num_train), (False, num_val)):
        for i in range(count):
            number += 1
            video_id = f"{number:04d}"
            write_frame_folder(root / "frames" / video_id, np.stack(list(footage(rng, shape))))
            n = shape.frames
            x = rng.uniform(0.3, 0.7, (n, 13)) * shape.width + 1
            y = rng.uniform(0.2, 0.8, (n, 13)) * shape.height + 1
            write_pennaction_labels(root / "labels" / f"{video_id}.mat", PENNACTION_ACTIONS[i % 15], x, y,
                                    (shape.height, shape.width), train)


def _ntu(root: Path, rng: np.random.Generator, shape: VideoShape, num_train: int, num_val: int,
         dataset: str) -> None:
    """Cross-subject splits: performer 1 trains, performer 3 tests (NTU's protocol)."""
    actions = 60 if dataset == "ntu60" else 120
    for performer, count in ((1, num_train), (3, num_val)):
        for i in range(count):
            name = f"S001C001P{performer:03d}R{i // actions % 2 + 1:03d}A{i % actions + 1:03d}"
            if i >= 2 * actions:
                name = f"S{i // (2 * actions) + 1:03d}" + name[4:]
            _video(root / "nturgb+d_rgb" / f"{name}_rgb.avi", rng, shape)
            base = rng.normal(0, 0.3, (25, 3)) + (0, 0, 3.0)
            frames = [[ntu_body(base + rng.normal(0, 0.01, (25, 3)))] for _ in range(shape.frames)]
            write_ntu_skeleton(root / "nturgb+d_skeletons" / f"{name}.skeleton", frames)


def _davis(root: Path, rng: np.random.Generator, shape: VideoShape, num_train: int, num_val: int,
           dataset: str) -> None:
    write_davis_fixture(root, num_sequences=max(1, num_val), num_frames=shape.frames, height=shape.height,
                        width=shape.width, seed=int(rng.integers(2**31)))


def _finegym(root: Path, rng: np.random.Generator, shape: VideoShape, num_train: int, num_val: int,
             dataset: str) -> None:
    """Elements of distinct events, each with two people's keypoints: the gymnast and a judge the estimator saw
    with lower scores (the reader keeps the first)."""
    alphabet = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"))
    number = 0
    for split, count in (("train", num_train), ("val", num_val)):
        lines = []
        for i in range(count):
            number += 1
            element = (f"{''.join(rng.choice(alphabet, 11))}_E_{10 * number:06d}_{10 * number + 8:06d}"
                       f"_A_{2:04d}_{2 + round(shape.seconds):04d}")
            _video(root / "subactions" / f"{element}.mp4", rng, shape)
            keypoint = rng.uniform(0.2, 0.8, (2, shape.frames, len(COCO_JOINTS), 2)) * (shape.width, shape.height)
            score = np.stack([rng.uniform(0.6, 1.0, keypoint.shape[1:3]), rng.uniform(0.1, 0.4, keypoint.shape[1:3])])
            write_gym_pose(root / "poses" / f"{element}.npz", keypoint, score)
            lines.append(f"{element} {i % GYM99_CLASSES}\n")
        atomic_write_text(root / GYM99_SPLIT_FILES[split], "".join(lines), sync=False)


_VIDEO_WRITERS = {"kinetics400": _kinetics, "kinetics600": _kinetics, "ssv2": _ssv2, "epic_kitchens100": _epic,
                  "pennaction": _pennaction, "ntu60": _ntu, "ntu120": _ntu, "finegym": _finegym,
                  "davis2017": _davis}


# ---- Long Range Arena -------------------------------------------------------------------------------------------


def _text(rng: np.random.Generator, length: int = _LRA_TEXT_BYTES) -> str:
    return "".join(map(chr, rng.integers(97, 123, length)))


def _listops(root: Path, rng: np.random.Generator, num_train: int, num_val: int) -> None:
    write_listops(root / "listops-1000", num_train=num_train, num_val=num_val, num_test=num_val,
                  seed=int(rng.integers(2**31)))


def _imdb(root: Path, rng: np.random.Generator, num_train: int, num_val: int) -> None:
    for split, count in (("train", num_train), ("test", num_val)):
        for i in range(count):
            folder = root / "aclImdb" / split / ("pos" if i % 2 else "neg")
            folder.mkdir(parents=True, exist_ok=True)
            atomic_write_text(folder / f"{i}_7.txt", _text(rng), sync=False)
    for split in ("train", "test"):  # the reader expects both classes' folders
        for cls in ("pos", "neg"):
            (root / "aclImdb" / split / cls).mkdir(parents=True, exist_ok=True)


def _aan(root: Path, rng: np.random.Generator, num_train: int, num_val: int) -> None:
    folder = root / "tsv_data"
    folder.mkdir(parents=True, exist_ok=True)
    for name, count in (("train", num_train), ("eval", num_val), ("test", num_val)):
        lines = [f"{i % 2}\tP{i}a\tP{i}b\t{_text(rng)}\t{_text(rng)}\n" for i in range(count)]
        atomic_write_text(folder / f"new_aan_pairs.{name}.tsv", "".join(lines), sync=False)


def _cifar(root: Path, rng: np.random.Generator, num_train: int, num_val: int) -> None:
    """Five training batches whose last tenth (LRA's validation) holds at least ``num_val`` images."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    total = max(num_train + num_val, 10 * num_val)
    per_batch = -(-total // 5)
    for name, count in [(f"data_batch_{i}", per_batch) for i in range(1, 6)] + [("test_batch", num_val)]:
        batch = {b"data": rng.integers(0, 256, (count, 3072), dtype=np.uint8),
                 b"labels": [k % 10 for k in range(count)]}
        atomic_write_bytes(folder / name, pickle.dumps(batch, protocol=2), sync=False)


def _pathfinder(root: Path, rng: np.random.Generator, num_train: int, num_val: int) -> None:
    """Images for the 80/10/10 split: at least ``num_train`` for training and ``num_val`` for validation."""
    folder = root / "pathfinder32" / "curv_baseline"
    (folder / "imgs" / "0").mkdir(parents=True, exist_ok=True)
    (folder / "metadata").mkdir(parents=True, exist_ok=True)
    total = max(-(-num_train * 10 // 8), 10 * num_val) + 2
    lines = []
    for i in range(total):
        image = rng.integers(0, 256, (32, 32), dtype=np.uint8)
        save_image(folder / "imgs" / "0" / f"sample_{i}.png", image, sync=False)
        lines.append(f"imgs/0 sample_{i}.png 0 {i % 2} 0 0")
    atomic_write_text(folder / "metadata" / "0.npy", "\n".join(lines) + "\n", sync=False)


_LRA_WRITERS = {"lra_listops": _listops, "lra_text": _imdb, "lra_retrieval": _aan, "lra_image": _cifar,
                "lra_pathfinder": _pathfinder}
