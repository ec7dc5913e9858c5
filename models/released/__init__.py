"""The authors' released checkpoints: one ``ReleasedLayout`` per official repository, by name in ``LAYOUTS``, and
``load_released`` (``models.released.base``), which reads a file without running anything it holds, recognises
or checks its layout, checks that the model computes the official function with it, and loads it strictly.

Layouts: ``tokshift`` (TokShift-Transformer: its video ViT and TokShift, MSCA's base; ``models.released.tokshift``),
``cast`` (KHU-VLL/CAST, ``.pth`` or DeepSpeed tag folders; ``models.released.cast``).
"""

from .base import (
    LAYOUTS, ModelMismatch, ReleasedLayout, ReleasedWeightsError, find_layout, load_released, read_released,
    strict_differences,
)
from .cast import CAST_LAYOUT
from .tokshift import TOKSHIFT_LAYOUT

__all__ = ["CAST_LAYOUT", "LAYOUTS", "TOKSHIFT_LAYOUT", "ModelMismatch", "ReleasedLayout", "ReleasedWeightsError",
           "find_layout", "load_released", "read_released", "strict_differences"]
