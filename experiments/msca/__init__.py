"""MSCA ("Temporal Cross-attention for Action Recognition"): its tables as specs (``tables``), and three experiments
of ours. What is reproduced and the choices made: README.md beside them."""

from . import tables  # noqa: F401  (registers the tables)
