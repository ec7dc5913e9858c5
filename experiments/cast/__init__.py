"""CAST ("Cross-Attention in Space and Time for Video Action Recognition"): its tables as specs. ``presets``: the
scales (the paper's two recipes and the tiny one); ``experts``: the experts each scale loads; ``columns``: the
static columns; ``ablations``: Tables 1a-1h and 5-8; ``sota``: Tables 2 and 9-11; ``shapes_and_recipe``: Tables 3
and 4; ``shipped`` and ``probe``: the ``pretrain-experts`` and ``probe-experts`` commands; ``figures``: Figure 3(c)
and its measure. What is reproduced and the choices made: README.md beside them."""

from . import ablations, figures, probe, shapes_and_recipe, sota  # noqa: F401  (register the tables and commands)
from .presets import ablation_preset, paper_preset  # noqa: F401  (named by Table 4's notes)
