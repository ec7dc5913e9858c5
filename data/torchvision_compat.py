"""Make the PyPI torchvision/pytorchvideo pair importable next to a CPU-only torch.

Two known breakages are repaired, each only when it actually occurs, so nothing changes where torchvision loads
normally:

1. The PyPI torchvision wheel is built against CUDA. With the CPU torch wheel its C++ extension fails to load
   (torchvision lets it), so the ``torchvision::nms``/``qnms`` operator schemas are never defined and ``import
   torchvision`` dies in ``_meta_registrations`` with ``operator torchvision::nms does not exist``. Just before that
   module is imported, once the extension has loaded or failed to, the schemas still missing are defined (no kernels:
   calling ``torchvision.ops.nms`` still raises, which is honest).
2. pytorchvideo 0.1.5 imports ``torchvision.transforms.functional_tensor``, renamed to ``_functional_tensor`` in
   torchvision 0.17. Just before pytorchvideo is imported, the old name is aliased to the new one if, and only if, it
   is missing.

Importing this module repairs nothing yet and loads no torch: it puts a finder first on ``sys.meta_path``
(``_RepairFinder``) that makes each repair when the import it is for begins, whoever imports torchvision, and
whenever. Each package whose modules import torchvision (directly, or through lightning, timm, torchmetrics,
pytorchvideo) imports this module once, in its ``__init__`` (``data``, ``models``, ``lightning_modules``,
``experiments``, ``tools``; the tests' ``conftest.py``), and a command that builds no model still loads no torch.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
from typing import Any

# Schemas as torchvision's C++ extension registers them (csrc/ops/nms.cpp and the quantized variant).
_MISSING_SCHEMAS = {
    "nms": "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms": "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
}
_NEEDS_SCHEMAS = "torchvision._meta_registrations"  # the first module that needs the extension's schemas
_FUNCTIONAL_TENSOR = ("torchvision.transforms.functional_tensor", "torchvision.transforms._functional_tensor")
_library: Any = None  # a torch.library.Library, kept alive: a collected Library drops its definitions
repaired: list[str] = []  # what this module had to repair, for diagnostics and tests


def _schema_exists(name: str) -> bool:
    import torch

    try:
        torch._C._dispatch_find_schema_or_throw(f"torchvision::{name}", "")
    except RuntimeError:
        return False
    return True


def _define_missing_schemas() -> None:
    global _library
    missing = [name for name in _MISSING_SCHEMAS if not _schema_exists(name)]
    if not missing:  # the extension loaded
        return
    import torch

    _library = torch.library.Library("torchvision", "FRAGMENT")
    for name in missing:
        _library.define(_MISSING_SCHEMAS[name])
    repaired.append(f"torchvision operator schemas ({', '.join(missing)})")


def _alias_functional_tensor() -> None:
    old, new = _FUNCTIONAL_TENSOR
    if old in sys.modules or importlib.util.find_spec(old) is not None:
        return
    sys.modules[old] = importlib.import_module(new)
    repaired.append(f"alias {old} -> {new}")


class _RepairFinder(importlib.abc.MetaPathFinder):
    """Finds no module: makes the repair an import needs as the import begins, then lets the other finders find it."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name == _NEEDS_SCHEMAS:
            _define_missing_schemas()
        elif name == "pytorchvideo":
            _alias_functional_tensor()
        return None


if not any(type(finder).__name__ == _RepairFinder.__name__ for finder in sys.meta_path):
    sys.meta_path.insert(0, _RepairFinder())
