"""The repository's own experiment: is every synthetic set learnable by the tiny model in minutes on CPU?
(``specs``: the registered experiment; ``summary``: its runs and summary; ``python -m
experiments.synthetic_learnability``: train them and print the summary.)"""

from . import specs  # noqa: F401  (registers the experiment)
