"""data package: decoding (video_io), clip sampling, transforms, annotation formats, datasets, synthetic sets and
the LightningDataModule. ``VideoDataModule`` lives in ``data.datamodule`` (not re-exported here, so that importing
``data`` does not import lightning)."""

import models.torchvision_compat  # noqa: F401  (before anything imports torchvision)

from data.annotations import BadAnnotation, Sample, read_annotations
from data.clip_sampling import ClipInfo, dense_clip, temporal_views, uniform_segments
from data.datasets import VideoClipDataset, collate_skip_none
from data.synthetic import SYNTHETIC_SETS, SyntheticSpec, ensure_synthetic, generate_synthetic
from data.transforms import TestTransform, TrainTransform
from data.video_io import Video, VideoDecodeError, write_video

__all__ = [
    "BadAnnotation", "ClipInfo", "SYNTHETIC_SETS", "Sample", "SyntheticSpec", "TestTransform", "TrainTransform",
    "Video", "VideoClipDataset", "VideoDecodeError", "collate_skip_none", "dense_clip", "ensure_synthetic",
    "generate_synthetic", "read_annotations", "temporal_views", "uniform_segments", "write_video",
]
