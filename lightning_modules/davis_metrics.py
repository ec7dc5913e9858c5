"""DAVIS region similarity J and boundary F-measure, following the official ``davis2017-evaluation`` code.

Definitions (``davisvideochallenge/davis2017-evaluation``, ``davis2017/metrics.py`` and ``evaluation.py``):

* J: per object and frame, the IoU of the binary masks; 1 when both are empty (``db_eval_iou``).
* F: per object and frame, the F-measure of boundary precision and recall (``f_measure``). Boundaries are one
  pixel wide (``_seg2bmap``); a boundary pixel matches when the other mask's boundary lies within a disk of radius
  ``ceil(bound_th * image diagonal)`` pixels, ``bound_th = 0.008`` (8 px at 854x480). The original dilates with
  OpenCV and ``skimage.morphology.disk``; ``scipy.ndimage.binary_dilation`` with the same disk and a zero border
  is the same operation.
* Semi-supervised protocol: the first frame (given) and the last frame are excluded (``all_gt_masks[:, 1:-1]``);
  per object, the mean over the remaining frames (``db_statistics`` M); J_m and F_m are the means over all objects
  of all sequences; J&F_m is their average.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import ndimage

BOUND_TH = 0.008


def jaccard(gt: np.ndarray, pred: np.ndarray, void: np.ndarray | None = None) -> float:
    """IoU of two binary (H, W) masks, ignoring ``void`` pixels; 1.0 when the union is empty."""
    gt, pred = np.asarray(gt, dtype=bool), np.asarray(pred, dtype=bool)
    if gt.shape != pred.shape:
        raise ValueError(f"annotation {gt.shape} and segmentation {pred.shape} differ in shape")
    keep = np.ones_like(gt) if void is None else ~np.asarray(void, dtype=bool)
    inter = np.count_nonzero(gt & pred & keep)
    union = np.count_nonzero((gt | pred) & keep)
    return 1.0 if union == 0 else inter / union


def seg2bmap(seg: np.ndarray) -> np.ndarray:
    """One-pixel boundary of a binary (H, W) mask, offset half a pixel towards the origin (``_seg2bmap``)."""
    seg = np.asarray(seg, dtype=bool)
    e, s, se = np.zeros_like(seg), np.zeros_like(seg), np.zeros_like(seg)
    e[:, :-1] = seg[:, 1:]  # east neighbour
    s[:-1, :] = seg[1:, :]  # south neighbour
    se[:-1, :-1] = seg[1:, 1:]  # south-east neighbour
    b = (seg ^ e) | (seg ^ s) | (seg ^ se)
    b[-1, :] = seg[-1, :] ^ e[-1, :]
    b[:, -1] = seg[:, -1] ^ s[:, -1]
    b[-1, -1] = False
    return b


def disk(radius: int) -> np.ndarray:
    """Boolean disk of the given radius, (2r+1, 2r+1): ``skimage.morphology.disk``."""
    y, x = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    return x**2 + y**2 <= radius**2


def boundary_tolerance(shape: tuple[int, int], bound_th: float = BOUND_TH) -> int:
    """Match radius in pixels: ``bound_th`` itself if >= 1, else ``ceil(bound_th * diagonal)``."""
    return int(bound_th) if bound_th >= 1 else int(math.ceil(bound_th * math.hypot(*shape)))


def f_measure(gt: np.ndarray, pred: np.ndarray, void: np.ndarray | None = None,
              bound_th: float = BOUND_TH) -> float:
    """Boundary F-measure of two binary (H, W) masks (``davis2017/metrics.py::f_measure``)."""
    gt, pred = np.asarray(gt, dtype=bool), np.asarray(pred, dtype=bool)
    if gt.shape != pred.shape:
        raise ValueError(f"annotation {gt.shape} and segmentation {pred.shape} differ in shape")
    keep = np.ones_like(gt) if void is None else ~np.asarray(void, dtype=bool)
    fg_boundary, gt_boundary = seg2bmap(pred & keep), seg2bmap(gt & keep)
    selem = disk(boundary_tolerance(gt.shape, bound_th))
    fg_dil = ndimage.binary_dilation(fg_boundary, structure=selem)
    gt_dil = ndimage.binary_dilation(gt_boundary, structure=selem)
    n_fg, n_gt = np.count_nonzero(fg_boundary), np.count_nonzero(gt_boundary)
    if n_fg == 0 and n_gt == 0:
        precision, recall = 1.0, 1.0
    elif n_fg == 0:
        precision, recall = 1.0, 0.0
    elif n_gt == 0:
        precision, recall = 0.0, 1.0
    else:
        precision = np.count_nonzero(fg_boundary & gt_dil) / n_fg
        recall = np.count_nonzero(gt_boundary & fg_dil) / n_gt
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def sequence_scores(gt_masks: np.ndarray, pred_masks: np.ndarray, bound_th: float = BOUND_TH,
                    exclude_first_last: bool = True) -> dict[str, np.ndarray]:
    """Per-object mean J and F of one sequence.

    Args:
        gt_masks: (T, H, W) object ids (0 background); the objects are 1..max id of the first frame.
        pred_masks: (T, H, W) predicted ids.
        bound_th: boundary tolerance (fraction of the diagonal, or pixels if >= 1).
        exclude_first_last: drop frames 0 and T-1 as the semi-supervised evaluation does.

    Returns:
        ``{"J": (K,), "F": (K,), "J_frames": (K, T'), "F_frames": (K, T')}`` for the K objects.
    """
    gt_masks, pred_masks = np.asarray(gt_masks), np.asarray(pred_masks)
    if gt_masks.shape != pred_masks.shape:
        raise ValueError(f"annotations {gt_masks.shape} and predictions {pred_masks.shape} differ in shape")
    num_obj = int(gt_masks[0].max())
    if int(pred_masks.max(initial=0)) > num_obj:
        raise ValueError(f"prediction has id {int(pred_masks.max())} but the first annotation has {num_obj} objects")
    frames = range(1, len(gt_masks) - 1) if exclude_first_last else range(len(gt_masks))
    if len(frames) == 0:
        raise ValueError(f"{len(gt_masks)} frames leave none to evaluate once the first and last are excluded")
    j = np.array([[jaccard(gt_masks[t] == k, pred_masks[t] == k) for t in frames] for k in range(1, num_obj + 1)])
    f = np.array([[f_measure(gt_masks[t] == k, pred_masks[t] == k, bound_th=bound_th) for t in frames]
                  for k in range(1, num_obj + 1)])
    j, f = j.reshape(num_obj, len(frames)), f.reshape(num_obj, len(frames))
    return {"J": j.mean(axis=1), "F": f.mean(axis=1), "J_frames": j, "F_frames": f}


def summarize(per_object_j: Sequence[float], per_object_f: Sequence[float]) -> dict[str, float]:
    """J_m, F_m (means over all objects of all sequences) and J&F_m, as ``evaluation_method.py`` prints them."""
    if len(per_object_j) == 0 or len(per_object_j) != len(per_object_f):
        raise ValueError(f"need equally many per-object J and F values, got {len(per_object_j)} and "
                         f"{len(per_object_f)}")
    j_mean, f_mean = float(np.mean(per_object_j)), float(np.mean(per_object_f))
    return {"J&F": (j_mean + f_mean) / 2, "J": j_mean, "F": f_mean}
