"""DAVIS 2017 semi-supervised video object segmentation: reader of the official layout and a fixture writer.

The layout is that of ``DAVIS-2017-trainval-480p.zip`` (https://davischallenge.org/davis2017/code.html)::

    <root>/JPEGImages/480p/<sequence>/00000.jpg, 00001.jpg, ...
    <root>/Annotations/480p/<sequence>/00000.png, 00001.png, ...   palette PNGs: pixel value = object id
    <root>/ImageSets/2017/train.txt, val.txt                         one sequence name per line

In an annotation, 0 is background, 1..K the objects; 255 (void) is mapped to background, as the official
evaluation does (``davis2017-evaluation``, ``davis2017/davis.py::_get_all_elements``). The number of objects of a
sequence is the largest id in its first annotation (same file, ``get_all_masks``).

Nothing is skipped silently: a missing folder raises ``DataNotFoundError`` naming the path, and a sequence whose
frames or masks cannot be decoded raises ``DavisReadError`` listing every unreadable file (``bad_files``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from data.atomic_write import atomic_write_text, save_image
from data.root_files import DataRoot, NotRegularFileError, OutsideRootError, open_regular, regular_file
from data.schemas import DavisSequenceName, validate_row

VOID_LABEL = 255
SPLITS = ("train", "val")


class DataNotFoundError(FileNotFoundError):
    """A dataset file or folder that should exist does not; ``path`` names it."""

    def __init__(self, path: str | Path, hint: str = "") -> None:
        self.path = str(path)
        self.hint = hint
        super().__init__(f"{self.path} not found" + (f": {hint}" if hint else ""))

    def __reduce__(self):
        return (type(self), (self.path, self.hint))


class DavisReadError(ValueError):
    """Files of one sequence that exist but cannot be used; ``bad_files`` is a list of (path, reason)."""

    def __init__(self, sequence: str, bad_files: list[tuple[str, str]]) -> None:
        self.sequence = sequence
        self.bad_files = list(bad_files)
        listed = "; ".join(f"{p}: {r}" for p, r in self.bad_files[:10])
        more = f" (and {len(self.bad_files) - 10} more)" if len(self.bad_files) > 10 else ""
        super().__init__(f"sequence {sequence!r}: {len(self.bad_files)} unreadable file(s): {listed}{more}")

    def __reduce__(self):
        return (type(self), (self.sequence, self.bad_files))


_DOWNLOAD_HINT = ("download DAVIS-2017-trainval-480p.zip from https://davischallenge.org/davis2017/code.html and "
                  "pass the folder that contains JPEGImages/, Annotations/ and ImageSets/")


def _split_file(root: Path, split: str) -> Path:
    return root / "ImageSets" / "2017" / f"{split}.txt"


def _missing_paths(root: str | Path, split: str, resolution: str) -> list[Path]:
    root = Path(root)
    needed = [root, root / "JPEGImages" / resolution, root / "Annotations" / resolution, _split_file(root, split)]
    return [p for p in needed if not p.exists()]


def davis_available(root: str | Path | None, split: str = "val", resolution: str = "480p") -> bool:
    """True if ``root`` has the DAVIS 2017 folders and the ``split`` list (sequences are checked on reading)."""
    return root is not None and not _missing_paths(root, split, resolution)


def list_sequences(root: str | Path, split: str = "val", resolution: str = "480p") -> list[str]:
    """Sequence names of ``split`` in file order; raises ``DataNotFoundError`` for the first missing path."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    missing = _missing_paths(root, split, resolution)
    if missing:
        raise DataNotFoundError(missing[0], _DOWNLOAD_HINT)
    file = _split_file(Path(root), split)
    names = []
    for number, line in enumerate(DataRoot(root).read_text(file, errors="replace").splitlines(), start=1):
        if line.strip():
            try:
                names.append(validate_row(DavisSequenceName, {"name": line}).name)
            except ValueError as err:
                raise ValueError(f"{file}:{number}: {err}") from None
    if not names:
        raise ValueError(f"{file} lists no sequence")
    return names


@dataclass(frozen=True)
class DavisSequence:
    """One sequence: its sorted frame and annotation files (``mask_paths[i]`` belongs to ``frame_paths[i]``)."""

    name: str
    frame_paths: tuple[Path, ...]
    mask_paths: tuple[Path, ...]

    def __len__(self) -> int:
        return len(self.frame_paths)


def find_sequence(root: str | Path, name: str, resolution: str = "480p") -> DavisSequence:
    """Locate the files of sequence ``name``; every frame must have its annotation (train/val have all). A file
    or folder that leads outside ``root`` or is no regular file is refused unread (``DavisReadError``)."""
    root = Path(root)
    data_root = DataRoot(root)
    frame_dir = root / "JPEGImages" / resolution / name
    mask_dir = root / "Annotations" / resolution / name
    for folder in (frame_dir, mask_dir):
        if not folder.is_dir():
            raise DataNotFoundError(folder, f"sequence {name!r} is listed but has no folder")
    frames = tuple(sorted(frame_dir.glob("*.jpg")))
    if not frames:
        raise DataNotFoundError(frame_dir / "00000.jpg", f"sequence {name!r} has no .jpg frame")
    masks = tuple(mask_dir / f"{p.stem}.png" for p in frames)
    missing = [str(p) for p in masks if not p.exists()]
    if missing:
        raise DataNotFoundError(missing[0], f"{len(missing)} of {len(frames)} annotations of {name!r} are missing")
    refused = []
    for path in (frame_dir, mask_dir, *frames, *masks):
        try:
            data_root.inside(path)
            if path.suffix:  # a file, not one of the two folders
                regular_file(path)
        except (OutsideRootError, NotRegularFileError) as err:
            refused.append((str(path), str(err)))
        except OSError as err:  # a link to nothing
            refused.append((str(path), f"cannot read: {err.strerror}"))
    if refused:
        raise DavisReadError(name, refused)
    return DavisSequence(name, frames, masks)


def _read_frame(path: Path) -> np.ndarray:
    with open_regular(path, "rb") as handle, Image.open(handle) as img:
        return np.asarray(img.convert("RGB"))


def _read_mask(path: Path) -> np.ndarray:
    with open_regular(path, "rb") as handle, Image.open(handle) as img:
        if img.mode not in ("P", "L"):
            raise ValueError(f"mode {img.mode!r}: expected a palette ('P') or greyscale ('L') PNG of object ids")
        mask = np.array(img, dtype=np.uint8)
    mask[mask == VOID_LABEL] = 0  # as the official evaluation: void counts as background
    return mask


def read_sequence(seq: DavisSequence) -> tuple[np.ndarray, np.ndarray]:
    """Decode a sequence: (T, H, W, 3) uint8 RGB frames and (T, H, W) uint8 object-id masks.

    Raises:
        DavisReadError: listing every frame or mask that could not be decoded or whose size differs from the
            first frame's; nothing is dropped.
    """
    frames, masks, bad = [], [], []
    size = None
    for frame_path, mask_path in zip(seq.frame_paths, seq.mask_paths):
        for path, reader, out in ((frame_path, _read_frame, frames), (mask_path, _read_mask, masks)):
            try:
                array = reader(path)
            except Exception as err:  # PIL raises several types for truncated / non-image files
                bad.append((str(path), f"{type(err).__name__}: {err}"))
                continue
            size = size or array.shape[:2]
            if array.shape[:2] != size:
                bad.append((str(path), f"size {array.shape[:2]} differs from the sequence's {size}"))
                continue
            out.append(array)
    if bad:
        raise DavisReadError(seq.name, bad)
    return np.stack(frames), np.stack(masks)


def num_objects(masks: np.ndarray) -> int:
    """Objects to segment: the largest id in the first annotation (``davis2017/davis.py::get_all_masks``)."""
    return int(masks[0].max())


class DavisDataset:
    """The sequences of one DAVIS 2017 split; ``dataset[i]`` is ``(name, frames, masks)`` (see ``read_sequence``).

    Args:
        root: folder with ``JPEGImages/``, ``Annotations/`` and ``ImageSets/``.
        split: "train" or "val".
        resolution: "480p" (the resolution the label-propagation literature evaluates at) or "Full-Resolution".
        sequences: optional subset of the split's sequence names.
    """

    def __init__(self, root: str | Path, split: str = "val", resolution: str = "480p",
                 sequences: list[str] | None = None) -> None:
        self.root = Path(root)
        names = list_sequences(self.root, split, resolution)
        if sequences is not None:
            unknown = sorted(set(sequences) - set(names))
            if unknown:
                raise ValueError(f"sequences {unknown} are not in {_split_file(self.root, split)}")
            names = [n for n in names if n in set(sequences)]
        self.split, self.resolution = split, resolution
        self.sequences = [find_sequence(self.root, n, resolution) for n in names]

    def __len__(self) -> int:
        return len(self.sequences)

    def __getitem__(self, index: int) -> tuple[str, np.ndarray, np.ndarray]:
        seq = self.sequences[index]
        frames, masks = read_sequence(seq)
        return seq.name, frames, masks


# --- fixture writer --------------------------------------------------------------------------------------------


def davis_palette() -> np.ndarray:
    """(256, 3) uint8: the PASCAL VOC colour map that DAVIS annotations use (id 1 = dark red, 2 = green, ...)."""
    palette = np.zeros((256, 3), dtype=np.uint8)
    for index in range(256):
        c, r, g, b = index, 0, 0, 0
        for bit in range(8):
            r |= ((c >> 0) & 1) << (7 - bit)
            g |= ((c >> 1) & 1) << (7 - bit)
            b |= ((c >> 2) & 1) << (7 - bit)
            c >>= 3
        palette[index] = (r, g, b)
    return palette


def write_mask_png(path: str | Path, mask: np.ndarray) -> None:
    """Write a (H, W) uint8 id map as a palette PNG, the format of DAVIS annotations."""
    img = Image.fromarray(np.asarray(mask, dtype=np.uint8), mode="P")
    img.putpalette(davis_palette().ravel().tolist())
    save_image(path, img, sync=False)


# Object colours of the fixture: saturated, far from the background's greys and from each other.
_FIXTURE_COLOURS = ((230, 40, 40), (40, 200, 60), (50, 80, 230), (230, 200, 40))


def write_davis_fixture(root: str | Path, num_sequences: int = 2, num_frames: int = 8, height: int = 64,
                        width: int = 96, num_objects_per_sequence: int = 2, split: str = "val",
                        seed: int = 0) -> list[str]:
    """Write a tiny DAVIS-layout set: coloured squares and disks moving in straight lines over a noisy grey
    background, JPEG frames and palette-PNG masks (later objects occlude earlier ones, as ids do in DAVIS).

    Args:
        root: output folder (created); ``JPEGImages/480p``, ``Annotations/480p`` and ``ImageSets/2017`` go in it.
        num_sequences: sequences written and listed in ``ImageSets/2017/<split>.txt``.
        num_frames: frames per sequence.
        height, width: frame size.
        num_objects_per_sequence: objects per sequence (at most 4), ids 1..n.
        split: the list file to write.
        seed: the only source of randomness (positions, velocities, shapes, noise).

    Returns:
        The sequence names.
    """
    if not 1 <= num_objects_per_sequence <= len(_FIXTURE_COLOURS):
        raise ValueError(f"num_objects_per_sequence must be in 1..{len(_FIXTURE_COLOURS)}")
    root = Path(root)
    rng = np.random.default_rng(seed)
    names = [f"synth-{i:02d}" for i in range(num_sequences)]
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64) + 0.5
    for name in names:
        frame_dir = root / "JPEGImages" / "480p" / name
        mask_dir = root / "Annotations" / "480p" / name
        frame_dir.mkdir(parents=True, exist_ok=True)
        mask_dir.mkdir(parents=True, exist_ok=True)
        size = min(height, width) / 4.0
        objects = []
        for obj in range(num_objects_per_sequence):
            start = rng.uniform([size, size], [width - size, height - size])
            angle = rng.uniform(0, 2 * math.pi)
            speed = rng.uniform(0.5, 1.0) * size / max(num_frames - 1, 1)  # travels about one object size
            objects.append((start, speed * np.array([math.cos(angle), math.sin(angle)]),
                            "square" if obj % 2 == 0 else "disk", _FIXTURE_COLOURS[obj]))
        background = 110 + rng.integers(-12, 13, size=(height, width, 1))
        for t in range(num_frames):
            frame = np.repeat(background, 3, axis=2).astype(np.float64)
            mask = np.zeros((height, width), dtype=np.uint8)
            for obj_id, (start, velocity, shape, colour) in enumerate(objects, start=1):
                cx, cy = start + velocity * t
                if shape == "square":
                    inside = (np.abs(xx - cx) <= size / 2) & (np.abs(yy - cy) <= size / 2)
                else:
                    inside = (xx - cx) ** 2 + (yy - cy) ** 2 <= (size / 2) ** 2
                frame[inside] = colour
                mask[inside] = obj_id
            frame += rng.normal(0.0, 4.0, size=frame.shape)
            save_image(frame_dir / f"{t:05d}.jpg", np.clip(frame, 0, 255).astype(np.uint8), sync=False, quality=95)
            write_mask_png(mask_dir / f"{t:05d}.png", mask)
    split_file = _split_file(root, split)
    atomic_write_text(split_file, "".join(f"{n}\n" for n in names), sync=False)
    return names
