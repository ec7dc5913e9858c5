"""Readers and writers of the pose formats: PennAction ``.mat`` label files, NTU RGB+D ``.skeleton`` text files,
and FineGYM's 2-D keypoints as ``.npz`` arrays.

The writers produce byte-level layouts that the readers (and the datasets' own tools) accept; tests and the
synthetic generator use them to write fixtures in the exact published format. Every reader raises ``PoseFormatError``
naming the file (and, for ``.skeleton``, the line) on malformed input.

PennAction (``labels/<video_id>.mat``, read/written with ``scipy.io``): fields ``action`` (one of
``PENNACTION_ACTIONS``), ``pose`` (camera view string), ``x``, ``y``, ``visibility`` (each nframes x 13, in the
joint order ``PENNACTION_JOINTS``), ``bbox`` (nframes x 4: x1 y1 x2 y2), ``dimensions`` ([H, W, nframes]),
``nframes`` and ``train`` (1 = train split, -1 = test split).

NTU RGB+D (``nturgb+d_skeletons/SsssCcccPpppRrrrAaaa.skeleton``): line 1 the frame count; per frame the body
count; per body a line of 10 values (``NTU_BODY_FIELDS``), the joint count (25) and one line of 12 values per
joint (``NTU_JOINT_FIELDS``).

FineGYM ships no joints. Its keypoints come from a 2-D pose estimator; the file of one element
(``poses/<element_id>.npz``, read with ``allow_pickle=False``) holds the two arrays PYSKL's ``gym_2d.pkl`` keeps per
sample: ``keypoint`` (M persons, T frames, 17, 2) float, 0-based pixel (x, y) in ``COCO_JOINTS`` order, and
``keypoint_score`` (M, T, 17). An ``.npz`` is data: unlike the pickle it cannot run code when read.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from data.atomic_write import atomic_write_text, save_arrays
from data.root_files import NotRegularFileError, open_regular

PENNACTION_ACTIONS = (
    "baseball_pitch", "baseball_swing", "bench_press", "bowl", "clean_and_jerk", "golf_swing", "jump_rope",
    "jumping_jacks", "pullup", "pushup", "situp", "squat", "strum_guitar", "tennis_forehand", "tennis_serve",
)
PENNACTION_JOINTS = (
    "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)

NTU_BODY_FIELDS = (
    "bodyID", "clippedEdges", "handLeftConfidence", "handLeftState", "handRightConfidence", "handRightState",
    "isRestricted", "leanX", "leanY", "trackingState",
)
NTU_JOINT_FIELDS = (
    "x", "y", "z", "depthX", "depthY", "colorX", "colorY", "orientationW", "orientationX", "orientationY",
    "orientationZ", "trackingState",
)
NTU_NUM_JOINTS = 25

# Joint pairs (i, j) that trade places under a horizontal flip: the mirrored figure's left limbs are the original's
# right ones. PennAction's order above; NTU's Kinect v2 order (4-7 left arm, 8-11 right arm, 12-15 left leg, 16-19
# right leg, 21-22 left hand tip and thumb, 23-24 right).
PENNACTION_FLIP_PAIRS = ((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12))
NTU_FLIP_PAIRS = ((4, 8), (5, 9), (6, 10), (7, 11), (12, 16), (13, 17), (14, 18), (15, 19), (21, 23), (22, 24))
# COCO's 17 keypoints (FineGYM's skeletons at paper scale): each left joint directly before its right one.
COCO_JOINTS = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder", "left_elbow",
    "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
    "right_ankle",
)
COCO_FLIP_PAIRS = tuple((i, i + 1) for i in range(1, len(COCO_JOINTS), 2))
FLIP_PAIRS = {len(PENNACTION_JOINTS): PENNACTION_FLIP_PAIRS, NTU_NUM_JOINTS: NTU_FLIP_PAIRS,
              len(COCO_JOINTS): COCO_FLIP_PAIRS}


class PoseFormatError(ValueError):
    """A pose file that does not follow its published format."""

    def __init__(self, path: str | Path, reason: str, line: int | None = None) -> None:
        self.path, self.reason, self.line = str(path), reason, line
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {reason}")

    def __reduce__(self):  # picklable across DataLoader workers
        return (type(self), (self.path, self.reason, self.line))


def _open_pose_file(path: Path, mode: str = "rb"):
    """``path`` opened for reading; a ``PoseFormatError`` naming it if it is no regular file (a FIFO would block the
    reader forever). A missing file raises FileNotFoundError, for the callers that count missing files."""
    try:
        return open_regular(path, mode)
    except NotRegularFileError as err:
        raise PoseFormatError(path, f"not a regular file (a {err.kind})") from None


# --- PennAction -----------------------------------------------------------------------------------------------


class PennActionLabels(NamedTuple):
    """One PennAction label file."""

    action: str
    view: str  # the file's ``pose`` field: the camera view ("front", "side", "back")
    x: np.ndarray  # (nframes, 13) float64, pixels
    y: np.ndarray  # (nframes, 13) float64, pixels
    visibility: np.ndarray  # (nframes, 13) int, 1 = visible
    bbox: np.ndarray  # (nframes, 4) float64: x1 y1 x2 y2
    height: int
    width: int
    nframes: int
    train: bool  # the file's ``train`` field is 1 (train split) or -1 (test split)

    @property
    def label(self) -> int:
        return PENNACTION_ACTIONS.index(self.action)

    def joints(self) -> np.ndarray:
        """(nframes, 13, 2) float32 (x, y) pixel coordinates."""
        return np.stack([self.x, self.y], axis=-1).astype(np.float32)


def write_pennaction_labels(
    path: str | Path,
    action: str,
    x: np.ndarray,
    y: np.ndarray,
    image_size: tuple[int, int],
    train: bool,
    visibility: np.ndarray | None = None,
    bbox: np.ndarray | None = None,
    view: str = "front",
) -> Path:
    """Write a PennAction label file (``labels/<video_id>.mat``).

    Args:
        path: output ``.mat`` file (parent directories are created).
        action: one of ``PENNACTION_ACTIONS``.
        x: (nframes, 13) joint x coordinates in pixels, joints in ``PENNACTION_JOINTS`` order.
        y: (nframes, 13) joint y coordinates in pixels.
        image_size: (H, W) of the frames.
        train: True for the train split (``train = 1``), False for the test split (``train = -1``).
        visibility: (nframes, 13) 0/1; None = all visible.
        bbox: (nframes, 4) x1 y1 x2 y2; None = the box around each frame's visible joints.
        view: the ``pose`` field ("front", "side", "back").
    """
    from scipy.io import savemat

    if action not in PENNACTION_ACTIONS:
        raise ValueError(f"action must be one of {PENNACTION_ACTIONS}, got {action!r}")
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != len(PENNACTION_JOINTS) or x.shape != y.shape or not len(x):
        raise ValueError(f"x and y must both be (nframes >= 1, 13), got {x.shape} and {y.shape}")
    nframes = len(x)
    visibility = np.ones_like(x) if visibility is None else np.asarray(visibility, dtype=np.float64)
    if visibility.shape != x.shape:
        raise ValueError(f"visibility must be {x.shape}, got {visibility.shape}")
    if bbox is None:
        seen = np.where(visibility > 0, 1.0, np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # "All-NaN slice": a frame without visible joints
            bbox = np.stack([np.nanmin(x * seen, 1), np.nanmin(y * seen, 1), np.nanmax(x * seen, 1),
                             np.nanmax(y * seen, 1)], axis=1)
        bbox = np.nan_to_num(bbox)  # a frame without a visible joint gets a zero box
    bbox = np.asarray(bbox, dtype=np.float64)
    if bbox.shape != (nframes, 4):
        raise ValueError(f"bbox must be ({nframes}, 4), got {bbox.shape}")
    height, width = image_size
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    savemat(str(path), {
        "action": action, "pose": view, "x": x, "y": y, "visibility": visibility, "bbox": bbox,
        "dimensions": np.array([[height, width, nframes]], dtype=np.float64),
        "nframes": np.array([[nframes]], dtype=np.float64), "train": np.array([[1 if train else -1]], dtype=np.float64),
    })
    return path


def _mat_string(mat: dict, key: str, path: Path) -> str:
    value = np.asarray(mat[key]).ravel()
    if value.size != 1 or not isinstance(value[0], str):
        raise PoseFormatError(path, f"field {key!r} is not a string")
    return str(value[0]).strip()


def _mat_scalar(mat: dict, key: str, path: Path) -> float:
    value = np.asarray(mat[key], dtype=np.float64).ravel()
    if value.size != 1:
        raise PoseFormatError(path, f"field {key!r} must be a scalar, has {value.size} values")
    if not np.isfinite(value[0]):
        raise PoseFormatError(path, f"field {key!r} is {value[0]}, not a finite number")
    return float(value[0])


def read_pennaction_labels(path: str | Path) -> PennActionLabels:
    """Read and validate one PennAction ``.mat`` label file.

    Raises:
        PoseFormatError: unreadable file, a missing field, an unknown action, or inconsistent sizes.
    """
    from scipy.io import loadmat

    path = Path(path)
    with _open_pose_file(path) as handle:
        try:
            mat = loadmat(handle)
        except Exception as err:  # scipy's parser raises MatReadError, IndexError, ... on arbitrary bytes
            raise PoseFormatError(path, f"not a readable MATLAB file: {err}") from err
    missing = [k for k in ("action", "pose", "x", "y", "visibility", "bbox", "dimensions", "nframes", "train")
               if k not in mat]
    if missing:
        raise PoseFormatError(path, f"missing fields {missing}")
    try:
        action = _mat_string(mat, "action", path)
        if action not in PENNACTION_ACTIONS:
            raise PoseFormatError(path, f"unknown action {action!r}")
        view = _mat_string(mat, "pose", path)
        nframes = int(_mat_scalar(mat, "nframes", path))
        train = _mat_scalar(mat, "train", path)
        if train not in (1, -1):
            raise PoseFormatError(path, f"field 'train' must be 1 or -1, got {train:g}")
        dims = np.asarray(mat["dimensions"], dtype=np.float64).ravel()
        if dims.size != 3 or not np.isfinite(dims).all() or (dims < 0).any():
            raise PoseFormatError(path, f"field 'dimensions' must be [H, W, nframes], got {dims.tolist()}")
        arrays = {k: np.asarray(mat[k], dtype=np.float64) for k in ("x", "y", "visibility", "bbox")}
    except (ValueError, TypeError) as err:
        if isinstance(err, PoseFormatError):
            raise
        raise PoseFormatError(path, f"malformed field: {err}") from err
    if nframes < 1 or int(dims[2]) != nframes:
        raise PoseFormatError(path, f"nframes={nframes} disagrees with dimensions={dims.tolist()}")
    for key, width in (("x", 13), ("y", 13), ("visibility", 13), ("bbox", 4)):
        if arrays[key].shape != (nframes, width):
            raise PoseFormatError(path, f"field {key!r} must be ({nframes}, {width}), got {arrays[key].shape}")
    if not (np.isfinite(arrays["x"]).all() and np.isfinite(arrays["y"]).all()):
        raise PoseFormatError(path, "non-finite joint coordinates")
    return PennActionLabels(action, view, arrays["x"], arrays["y"], arrays["visibility"].astype(np.int64),
                            arrays["bbox"], int(dims[0]), int(dims[1]), nframes, train == 1)


# --- NTU RGB+D ------------------------------------------------------------------------------------------------


class NTUBody(NamedTuple):
    """One tracked body in one frame of a ``.skeleton`` file."""

    body_id: str  # a 64-bit Kinect tracking id, kept as text
    info: np.ndarray  # (9,) float64: NTU_BODY_FIELDS[1:]
    joints: np.ndarray  # (25, 12) float64: NTU_JOINT_FIELDS per joint


def ntu_body(joints_xyz: np.ndarray, body_id: str = "72057594037931101", color_xy: np.ndarray | None = None,
             depth_xy: np.ndarray | None = None) -> NTUBody:
    """A tracked body from 3-D joints (25, 3) in metres; colour/depth pixel positions default to a pinhole
    projection of the 3-D joints into the 1920x1080 colour and 512x424 depth images."""
    xyz = np.asarray(joints_xyz, dtype=np.float64)
    if xyz.shape != (NTU_NUM_JOINTS, 3):
        raise ValueError(f"joints_xyz must be (25, 3), got {xyz.shape}")
    z = np.maximum(xyz[:, 2], 1e-3)
    if color_xy is None:
        color_xy = np.stack([960 + 1050 * xyz[:, 0] / z, 540 - 1050 * xyz[:, 1] / z], axis=1)
    if depth_xy is None:
        depth_xy = np.stack([256 + 365 * xyz[:, 0] / z, 212 - 365 * xyz[:, 1] / z], axis=1)
    joints = np.zeros((NTU_NUM_JOINTS, len(NTU_JOINT_FIELDS)))
    joints[:, 0:3], joints[:, 3:5], joints[:, 5:7] = xyz, depth_xy, color_xy
    joints[:, 7] = 1.0  # identity orientation quaternion (w, x, y, z)
    joints[:, 11] = 2  # tracked
    info = np.array([0, 1, 1, 1, 1, 0, 0.0, 0.0, 2], dtype=np.float64)
    return NTUBody(str(body_id), info, joints)


def _format_value(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.7g}"


def write_ntu_skeleton(path: str | Path, frames: Sequence[Sequence[NTUBody]]) -> Path:
    """Write a ``.skeleton`` file: ``frames[t]`` lists the bodies tracked in frame t (possibly none)."""
    lines = [str(len(frames))]
    for bodies in frames:
        lines.append(str(len(bodies)))
        for body in bodies:
            info = np.asarray(body.info, dtype=np.float64)
            joints = np.asarray(body.joints, dtype=np.float64)
            if info.shape != (9,) or joints.shape != (NTU_NUM_JOINTS, 12):
                raise ValueError(f"body info must be (9,) and joints (25, 12), got {info.shape}, {joints.shape}")
            lines.append(" ".join([body.body_id, *map(_format_value, info)]))
            lines.append(str(NTU_NUM_JOINTS))
            lines.extend(" ".join(map(_format_value, row)) for row in joints)
    return atomic_write_text(path, "\r\n".join(lines) + "\r\n", sync=False)  # the release uses Windows line endings


def read_ntu_skeleton(path: str | Path) -> list[list[NTUBody]]:
    """Parse a ``.skeleton`` file into per-frame lists of bodies.

    Raises:
        PoseFormatError: naming the line where the file stops following the format (or ends early).
    """
    path = Path(path)
    try:
        with _open_pose_file(path) as handle:
            text_lines = handle.read().decode("ascii").splitlines()  # CRLF (the release) or LF
    except (FileNotFoundError, PoseFormatError):
        raise
    except (OSError, UnicodeDecodeError) as err:
        raise PoseFormatError(path, f"unreadable: {err}") from err
    rows = [line.split() for line in text_lines]
    cursor = 0

    def next_row(what: str, width: int) -> list[str]:
        nonlocal cursor
        while cursor < len(rows) and not rows[cursor]:  # tolerate blank lines
            cursor += 1
        if cursor >= len(rows):
            raise PoseFormatError(path, f"file ends where {what} was expected", cursor + 1)
        row = rows[cursor]
        cursor += 1
        if len(row) != width:
            raise PoseFormatError(path, f"{what}: expected {width} values, got {len(row)}", cursor)
        return row

    def count(what: str) -> int:
        (value,) = next_row(what, 1)
        if not (value.isascii() and value.isdigit()):
            raise PoseFormatError(path, f"{what}: expected a count, got {value!r}", cursor)
        return int(value)

    def floats(row: list[str], what: str) -> np.ndarray:
        try:
            values = np.array([float(v) for v in row])
        except ValueError as err:
            raise PoseFormatError(path, f"{what}: {err}", cursor) from err
        if not np.isfinite(values).all():
            raise PoseFormatError(path, f"{what}: a value that is not a finite number", cursor)
        return values

    num_frames = count("frame count")
    frames: list[list[NTUBody]] = []
    for t in range(num_frames):
        bodies = []
        for _ in range(count(f"body count of frame {t + 1}")):
            info_row = next_row("body line", len(NTU_BODY_FIELDS))
            info = floats(info_row[1:], "body line")
            if count("joint count") != NTU_NUM_JOINTS:
                raise PoseFormatError(path, f"joint count must be {NTU_NUM_JOINTS}", cursor)
            joints = np.stack([floats(next_row("joint line", len(NTU_JOINT_FIELDS)), "joint line")
                               for _ in range(NTU_NUM_JOINTS)])
            bodies.append(NTUBody(info_row[0], info, joints))
        frames.append(bodies)
    return frames


def ntu_main_body_joints(frames: Sequence[Sequence[NTUBody]], fields: slice = slice(0, 3)) -> np.ndarray:
    """(T, 25, k) float32 joints of the main actor; frames where it is absent are zeros. ``fields`` selects columns
    of ``NTU_JOINT_FIELDS`` (default x, y, z).

    The main actor is the body id with the largest energy, the 2s-AGCN / CTR-GCN data scripts' rule
    (``ntu_gendata.py``'s ``get_nonzero_std``): the standard deviations of its x, y and z over every joint of every
    frame it is in, summed; ties go to the body seen first. In two-person actions both bodies are usually tracked in
    every frame, so counting frames would keep whichever the file lists first, however little it moves."""
    tracks: dict[str, list[np.ndarray]] = {}  # dicts keep first-seen order: ties go to the first
    for bodies in frames:
        for body in bodies:
            xyz = tracks.setdefault(body.body_id, [])
            if body.joints[:, :3].any():  # an all-zero frame is no pose (get_nonzero_std leaves it out)
                xyz.append(body.joints[:, :3])
    width = len(range(*fields.indices(len(NTU_JOINT_FIELDS))))
    out = np.zeros((len(frames), NTU_NUM_JOINTS, width), dtype=np.float32)
    if not tracks:
        return out
    energy = {body_id: float(np.stack(xyz).reshape(-1, 3).std(axis=0).sum()) if xyz else 0.0
              for body_id, xyz in tracks.items()}
    main = max(energy, key=lambda body_id: energy[body_id])
    for t, bodies in enumerate(frames):
        for body in bodies:
            if body.body_id == main:
                out[t] = body.joints[:, fields]
                break
    return out


# --- FineGYM keypoints (.npz) ---------------------------------------------------------------------------------


def write_gym_pose(path: str | Path, keypoint: np.ndarray, keypoint_score: np.ndarray) -> Path:
    """Write one FineGYM element's keypoints: ``keypoint`` (M, T, 17, 2) 0-based pixels, ``keypoint_score``
    (M, T, 17)."""
    keypoint, score = np.asarray(keypoint, dtype=np.float32), np.asarray(keypoint_score, dtype=np.float32)
    if keypoint.ndim != 4 or keypoint.shape[2:] != (len(COCO_JOINTS), 2) or score.shape != keypoint.shape[:3]:
        raise ValueError(f"keypoint must be (M, T, 17, 2) and keypoint_score (M, T, 17), got {keypoint.shape} and "
                         f"{score.shape}")
    return save_arrays(path, sync=False, keypoint=keypoint, keypoint_score=score)


def read_gym_pose(path: str | Path) -> np.ndarray:
    """(T, 17, 2) float32 joints of one FineGYM element, 1-based pixels as PennAction's (the file's are 0-based),
    of the person whose keypoint scores sum highest: the gymnast, where the estimator also found judges or the
    audience.

    Raises:
        PoseFormatError: not an ``.npz`` of the two arrays, arrays of other shapes, object arrays (refused, not
            unpickled) or non-finite coordinates.
    """
    path = Path(path)
    try:
        with _open_pose_file(path) as handle:
            archive = np.load(handle, allow_pickle=False)
            if not isinstance(archive, np.lib.npyio.NpzFile):  # a lone .npy array
                raise PoseFormatError(path, "one .npy array, not an .npz of keypoint and keypoint_score")
            with archive:
                missing = [k for k in ("keypoint", "keypoint_score") if k not in archive.files]
                if missing:
                    raise PoseFormatError(path, f"missing arrays {missing} (has {sorted(archive.files)})")
                keypoint, score = archive["keypoint"], archive["keypoint_score"]
    except (PoseFormatError, FileNotFoundError):
        raise
    except (OSError, ValueError, EOFError) as err:  # not a zip, a truncated member, a pickled object array
        raise PoseFormatError(path, f"not a readable .npz of numeric arrays: {err}") from err
    if keypoint.ndim != 4 or keypoint.shape[2:] != (len(COCO_JOINTS), 2) or score.shape != keypoint.shape[:3]:
        raise PoseFormatError(path, f"keypoint must be (M, T, 17, 2) and keypoint_score (M, T, 17), got "
                                    f"{keypoint.shape} and {score.shape}")
    if not keypoint.shape[0] or not keypoint.shape[1]:
        raise PoseFormatError(path, f"no {'person' if not keypoint.shape[0] else 'frame'} (keypoint "
                                    f"{keypoint.shape})")
    if not (np.issubdtype(keypoint.dtype, np.number) and np.issubdtype(score.dtype, np.number)):
        raise PoseFormatError(path, f"arrays must be numeric, got {keypoint.dtype} and {score.dtype}")
    if not np.isfinite(keypoint).all():
        raise PoseFormatError(path, "non-finite keypoint coordinates")
    person = int(np.argmax(np.nan_to_num(score.astype(np.float64)).sum(axis=(1, 2))))
    return keypoint[person].astype(np.float32) + 1
