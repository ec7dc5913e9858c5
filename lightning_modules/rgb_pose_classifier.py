"""RGB + pose action recognition as a LightningModule: ``VideoClassifier`` fed the batch's clip and joints.

The model (``models.d3da``) takes ``{"video": (B, C, T, H, W), "pose": (B, T, J, k)}`` (or (B, T, people, J, k)).
Test batches carry V views of every video, ``video`` (B, V, C, T, H, W) with ``pose`` (B, V, T, ...) in the same view
order (``data.datasets.VideoClipDataset``: each temporal clip's spatial crops, the joints moved with each crop);
both are folded into the batch together and the views' softmax scores averaged per video, as for RGB alone.
"""

from __future__ import annotations

from typing import Any

import torch
from einops import rearrange

from .video_classifier import VideoClassifier

INPUT_KEYS = ("video", "pose")


class RGBPoseClassifier(VideoClassifier):
    """``VideoClassifier`` (cross-entropy, schedules, multi-view test) over ``{"video", "pose"}`` inputs.

    Args: those of ``VideoClassifier``; mixup and cutmix must stay off (mixing pixels would leave the joints of
    the other clip unmixed).
    """

    def __init__(self, model: torch.nn.Module, num_classes: int, **kwargs: Any) -> None:
        if kwargs.get("mixup_alpha", 0) > 0 or kwargs.get("cutmix_alpha", 0) > 0:
            raise ValueError("RGBPoseClassifier: mixup/cutmix mix pixels but not joints; set mixup_alpha and "
                             "cutmix_alpha to 0")
        super().__init__(model, num_classes, **kwargs)

    def model_input(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        missing = [key for key in INPUT_KEYS if key not in batch]
        if missing:
            raise KeyError(f"RGB+pose batches need {INPUT_KEYS}; this one lacks {missing} (a pose dataset with "
                           f"with_pose=True gives both)")
        return {key: batch[key] for key in INPUT_KEYS}

    def fold_views(self, x: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], int | None]:
        video, pose = x["video"], x["pose"]
        if video.ndim == 5:  # one view (training, validation): nothing to fold
            return x, None
        if video.ndim != 6 or pose.shape[:2] != video.shape[:2]:
            raise ValueError(f"multi-view test: video (B, V, C, T, H, W) and pose (B, V, T, ...) must share (B, V); "
                             f"got {tuple(video.shape)} and {tuple(pose.shape)}")
        return {"video": rearrange(video, "b v c t h w -> (b v) c t h w"), "pose": pose.flatten(0, 1)}, video.shape[1]
