"""TensorBoard in the reports' unit: accuracies (``top1``, ``verb_top5``, ...) logged in percent.

The metrics stay fractions inside the run (what ``trainer.test`` returns and the record is computed from, so records
keep their bits); only what is written to TensorBoard's scalars and HParams columns is scaled.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from lightning.pytorch.loggers import TensorBoardLogger

_ACCURACY = re.compile(r"(^|[/_])top\d+$")


def in_percent(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """``metrics`` with each accuracy (a name ending in ``top<k>``) times 100."""
    return {name: 100 * value if _ACCURACY.search(name) else value for name, value in metrics.items()}


class PercentTensorBoardLogger(TensorBoardLogger):
    """Lightning's TensorBoard logger, writing accuracies in percent."""

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        super().log_metrics(in_percent(metrics), step)
