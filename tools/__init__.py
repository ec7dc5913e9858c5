"""Measurement tools, ``python -m tools <command>``: the paper-scale smoke, loader rates, the cost of a table's rows,
and the benchmarks of the models and the decoder. They sit above every floor (``data -> models -> lightning_modules
-> experiments -> reports``), like an entry point: they may use all of them, and none of them imports ``tools``.
Each writes what it measures as a record (``reports/benchmarks/``), which ``reports`` renders."""

import data.torchvision_compat  # noqa: F401  (before the tools' libraries import torchvision)
