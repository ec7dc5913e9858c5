"""The cross-modal RGB+pose transformer with 3D deformable attention (Kim, Ahn, Ko, ICCV 2023; supplementary
Algorithms A1-A3): tokens, 3D deformable attention, joint and temporal stride attention, the model and its
registered entrypoints (``d3da_tiny``, ``d3da_base``), and complexity counting for Tables A1/A2."""

from .deformable import DeformableAttention3D, TokenSearch3D
from .model import CrossModalBlock, CrossModalDeformableTransformer, d3da_base, d3da_tiny
from .stride_attention import (
    COVERS,
    JointStrideAttention,
    StrideAttention,
    TemporalStrideAttention,
    printed_window_starts,
    window_pairs,
)
from .tokens import ConvStem, PoseEmbed

__all__ = [
    "COVERS",
    "ConvStem",
    "CrossModalBlock",
    "CrossModalDeformableTransformer",
    "DeformableAttention3D",
    "JointStrideAttention",
    "PoseEmbed",
    "StrideAttention",
    "TemporalStrideAttention",
    "TokenSearch3D",
    "d3da_base",
    "d3da_tiny",
    "printed_window_starts",
    "window_pairs",
]
