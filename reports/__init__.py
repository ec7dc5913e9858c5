"""reports package."""

import data.torchvision_compat  # noqa: F401  (before anything imports torchvision)
