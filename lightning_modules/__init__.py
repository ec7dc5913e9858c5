"""LightningModules: the training systems around the models, and the callbacks they run with."""

import data.torchvision_compat  # noqa: F401  (before lightning imports torchvision)

from .data_wait import DataWaitMonitor
from .expert_pretraining import FramePretraining, MaskedVideoPretraining
from .rgb_pose_classifier import RGBPoseClassifier
from .video_classifier import VideoClassifier, num_outputs

__all__ = ["DataWaitMonitor", "FramePretraining", "MaskedVideoPretraining", "RGBPoseClassifier", "VideoClassifier",
           "num_outputs"]
