"""reports package."""

import models.torchvision_compat  # noqa: F401  (before anything imports torchvision)
