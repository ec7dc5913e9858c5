"""LightningModules: the training systems around the models."""

import models.torchvision_compat  # noqa: F401  (before anything imports torchvision)

from .video_classifier import VideoClassifier

__all__ = ["VideoClassifier"]
