"""Motionformer (Patrick et al., "Keeping Your Eye on the Ball: Trajectory Attention in Video Transformers"): its
tables as specs (``tables``: Tables 1-4 and 6-9, Figure 3; ``lra``: Table 5, Long Range Arena) and its attention
figures with their tracking score (``figures``: Figures 1 and 4). What is reproduced and the choices made: README.md
beside them."""

from . import figures, lra, tables  # noqa: F401  (registers the tables and the figures)
