"""CAST ("Cross-Attention in Space and Time for Video Action Recognition"): its tables as specs (``tables``). What
is reproduced and the choices made: README.md beside them."""

from . import tables  # noqa: F401  (registers the tables)
from .tables import ablation_preset, paper_preset  # noqa: F401  (named by Table 4's notes)
