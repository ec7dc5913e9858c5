"""Readers of the pose datasets' annotations (``data.annotations`` dispatches to them): PennAction's label files,
NTU RGB+D 60/120, whose file names are the annotations, and FineGYM's Gym99 element lists (see
``data.annotations`` for the layouts)."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import NamedTuple

from data.pose import PoseFormatError, read_pennaction_labels
from data.root_files import DataRoot
from data.samples import BadAnnotation, Result, Rows, Sample, check_split, one_per_video, train_rows
from data.schemas import Gym99Line, validate_row


@functools.lru_cache(maxsize=8192)
def _pennaction_cached(path: str, mtime_ns: int, size: int):
    """Parsed label file, or the PoseFormatError raised; keyed by mtime and size so edits are seen."""
    try:
        return read_pennaction_labels(path)
    except PoseFormatError as err:
        return err


def read_pennaction(root: str | Path, split: str) -> Result:
    """``<root>/labels/*.mat`` of the split -> ``<root>/frames/<video_id>`` frame folders. A label file, or a
    frame folder, that leads outside the root is a bad annotation of both splits (its split is unknown)."""
    check_split(split)
    root = Path(root)
    labels_dir = root / "labels"
    if not labels_dir.is_dir():
        raise FileNotFoundError(f"{root}: no labels/ directory (PennAction)")
    data_root = DataRoot(root)
    samples, bad = [], []
    for file in sorted(labels_dir.glob("*.mat")):
        try:
            frames = data_root.inside(root / "frames" / file.stem)
            stat = data_root.inside(file).stat()
        except (ValueError, OSError) as err:  # outside the root; a link to nothing
            bad.append(BadAnnotation(str(file), 0, "", str(err)))
            continue
        parsed = _pennaction_cached(str(file), stat.st_mtime_ns, stat.st_size)
        if isinstance(parsed, PoseFormatError):
            bad.append(BadAnnotation(str(file), 0, "", parsed.reason))
            continue
        if parsed.train != (split == "train"):
            continue
        samples.append(Sample(frames, parsed.label, file.stem, 0, pose=file, root=root))
    return samples, bad


NTU_NAME = re.compile(r"^S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})$")
NTU60_XSUB_TRAIN = frozenset((1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38))
NTU120_XSUB_TRAIN = NTU60_XSUB_TRAIN | frozenset((
    45, 46, 47, 49, 50, 52, 53, 54, 55, 56, 57, 58, 59, 70, 74, 78, 80, 81, 82, 83, 84, 85, 86, 89, 91, 92, 93, 94,
    95, 97, 98, 100, 103))
NTU60_XVIEW_TRAIN_CAMERAS = frozenset((2, 3))
NTU_LIMITS = {60: (17, 60, 40), 120: (32, 120, 106)}  # (setups, actions, performers)
_NTU_CAMERAS, _NTU_REPLICATIONS = 3, 2


class NTUName(NamedTuple):
    setup: int
    camera: int
    performer: int
    replication: int
    action: int  # 1-based, as in the file name


def parse_ntu_name(stem: str) -> NTUName:
    """'S001C002P003R002A013' (or with the RGB files' '_rgb' suffix) -> NTUName."""
    match = NTU_NAME.match(stem.removesuffix("_rgb"))
    if not match:
        raise ValueError(f"name {stem!r} does not follow SsssCcccPpppRrrrAaaa")
    return NTUName(*map(int, match.groups()))


def ntu_is_train(name: NTUName, version: int, protocol: str) -> bool:
    """The split of one sample under an official protocol."""
    if protocol == "xsub":
        return name.performer in (NTU60_XSUB_TRAIN if version == 60 else NTU120_XSUB_TRAIN)
    if protocol == "xview" and version == 60:
        return name.camera in NTU60_XVIEW_TRAIN_CAMERAS
    if protocol == "xset" and version == 120:
        return name.setup % 2 == 0
    raise ValueError(f"NTU{version} has no protocol {protocol!r} (NTU60: xsub, xview; NTU120: xsub, xset)")


def read_ntu(root: str | Path, split: str, version: int, protocol: str) -> Result:
    """NTU RGB+D samples of one protocol split, from the names under nturgb+d_rgb/ and nturgb+d_skeletons/."""
    check_split(split)
    if version not in NTU_LIMITS:
        raise ValueError(f"NTU version must be 60 or 120, got {version}")
    ntu_is_train(NTUName(1, 1, 1, 1, 1), version, protocol)  # unknown protocols fail before any listing
    root = Path(root)
    rgb_dir, skeleton_dir = root / "nturgb+d_rgb", root / "nturgb+d_skeletons"
    if not rgb_dir.is_dir() and not skeleton_dir.is_dir():
        raise FileNotFoundError(f"{root}: neither nturgb+d_rgb/ nor nturgb+d_skeletons/ (NTU RGB+D)")
    files: dict[str, Path] = {}  # sample name -> the first file that carries it, for error messages
    samples, bad = [], []
    if rgb_dir.is_dir():
        for file in sorted(rgb_dir.glob("*.avi")):
            if not file.stem.endswith("_rgb"):
                reason = "RGB video name must be SsssCcccPpppRrrrAaaa_rgb.avi"
                bad.append(BadAnnotation(str(file), 0, file.name, reason))
                continue
            files.setdefault(file.stem.removesuffix("_rgb"), file)
    if skeleton_dir.is_dir():
        for file in sorted(skeleton_dir.glob("*.skeleton")):
            files.setdefault(file.stem, file)
    max_setup, max_action, max_performer = NTU_LIMITS[version]
    data_root = DataRoot(root)
    for stem in sorted(files):
        try:
            name = parse_ntu_name(stem)
            if max_setup < name.setup <= NTU_LIMITS[120][0]:
                continue  # NTU120's additional setups are not part of NTU60
            # a name outside the dataset would otherwise land silently in a split (a camera 4 in cross-view's val)
            outside = [f"{field} {letter}{value:03d}" for field, letter, value, most in (
                ("setup", "S", name.setup, max_setup), ("camera", "C", name.camera, _NTU_CAMERAS),
                ("performer", "P", name.performer, max_performer),
                ("replication", "R", name.replication, _NTU_REPLICATIONS), ("action", "A", name.action, max_action))
                if not 1 <= value <= most]
            if outside:
                raise ValueError(f"{', '.join(outside)} outside NTU{version}")
            video, skeleton = (data_root.inside(p) for p in (rgb_dir / f"{stem}_rgb.avi",
                                                             skeleton_dir / f"{stem}.skeleton"))
        except ValueError as err:
            bad.append(BadAnnotation(str(files[stem]), 0, files[stem].name, str(err)))
            continue
        if ntu_is_train(name, version, protocol) != (split == "train"):
            continue
        samples.append(Sample(video, name.action - 1, stem, None, pose=skeleton, root=root))
    return samples, bad


# --- FineGYM (Gym99) ------------------------------------------------------------------------------------------

GYM99_SPLIT_FILES = {"train": "gym99_train_element_v1.1.txt", "val": "gym99_val_element.txt"}


def gym99_split_file(root: str | Path, split: str) -> Path:
    """The release's element list of ``split``, in ``root`` or ``root/annotations`` (the first that exists, else
    the one in ``root``, for the message)."""
    check_split(split)
    name = GYM99_SPLIT_FILES[split]
    for folder in (Path(root), Path(root) / "annotations"):
        if (folder / name).exists():
            return folder / name
    return Path(root) / name


def read_finegym(root: str | Path, split: str) -> Result:
    """Gym99 elements of one split: '<element id> <label>' lines of the release's lists, videos
    ``subactions/<element id>.mp4`` (as mmaction2's ``trim_subaction.py`` cuts them), keypoints
    ``poses/<element id>.npz`` (``data.pose.read_gym_pose``)."""
    check_split(split)
    file, rows, bad = _finegym_rows(Path(root), split)
    train = train_rows(split, lambda: _finegym_rows(Path(root), "train"))
    return one_per_video(file, rows, bad, lambda s: s.video_id, split, train, what="element")


def _finegym_rows(root: Path, split: str) -> Rows:
    file = gym99_split_file(root, split)
    data_root = DataRoot(root)
    rows, bad = [], []
    for number, raw in enumerate(data_root.read_text(file, errors="replace").splitlines(), start=1):
        text = raw.strip()
        if not text:
            continue
        parts = text.split()
        try:
            if len(parts) != 2:
                raise ValueError("expected '<element id> <label index>'")
            line = validate_row(Gym99Line, {"element": parts[0], "label": parts[1]})
            video = data_root.inside(root / "subactions" / f"{line.element}.mp4")
            pose = data_root.inside(root / "poses" / f"{line.element}.npz")
        except ValueError as err:
            bad.append(BadAnnotation(str(file), number, text, str(err)))
            continue
        rows.append((Sample(video, line.label, line.element, number, pose=pose, root=root), text))
    return file, rows, bad
