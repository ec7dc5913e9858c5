"""Readers of the pose datasets' annotations (``data.annotations`` dispatches to them): PennAction's label files
and NTU RGB+D 60/120, whose file names are the annotations (see ``data.annotations`` for both layouts)."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import NamedTuple

from data.pose import PoseFormatError, read_pennaction_labels
from data.samples import BadAnnotation, Result, Sample, check_split


@functools.lru_cache(maxsize=8192)
def _pennaction_cached(path: str, mtime_ns: int, size: int):
    """Parsed label file, or the PoseFormatError raised; keyed by mtime and size so edits are seen."""
    try:
        return read_pennaction_labels(path)
    except PoseFormatError as err:
        return err


def read_pennaction(root: str | Path, split: str) -> Result:
    """``<root>/labels/*.mat`` of the split -> ``<root>/frames/<video_id>`` frame folders."""
    check_split(split)
    root = Path(root)
    labels_dir = root / "labels"
    if not labels_dir.is_dir():
        raise FileNotFoundError(f"{root}: no labels/ directory (PennAction)")
    samples, bad = [], []
    for file in sorted(labels_dir.glob("*.mat")):
        stat = file.stat()
        parsed = _pennaction_cached(str(file), stat.st_mtime_ns, stat.st_size)
        if isinstance(parsed, PoseFormatError):
            bad.append(BadAnnotation(str(file), 0, "", parsed.reason))
            continue
        if parsed.train != (split == "train"):
            continue
        samples.append(Sample(root / "frames" / file.stem, parsed.label, file.stem, 0, pose=file))
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
        except ValueError as err:
            bad.append(BadAnnotation(str(files[stem]), 0, files[stem].name, str(err)))
            continue
        if ntu_is_train(name, version, protocol) != (split == "train"):
            continue
        samples.append(Sample(rgb_dir / f"{stem}_rgb.avi", name.action - 1, stem, None,
                              pose=skeleton_dir / f"{stem}.skeleton"))
    return samples, bad
