"""Make the PyPI torchvision/pytorchvideo pair importable next to a CPU-only torch.

Import this module before anything that imports torchvision (lightning, timm, torchmetrics, pytorchvideo);
every package of this repository does so in its ``__init__``. Two known breakages are repaired, each only
when it actually occurs, so nothing changes where torchvision loads normally:

1. The PyPI torchvision wheel is built against CUDA. With the CPU torch wheel its C++ extension fails to
   load, so the ``torchvision::nms``/``qnms`` operator schemas are never defined and ``import torchvision``
   dies in ``_meta_registrations`` with ``operator torchvision::nms does not exist``. We define just those
   schemas (no kernels: calling ``torchvision.ops.nms`` still raises, which is honest) and import again.
2. pytorchvideo 0.1.5 imports ``torchvision.transforms.functional_tensor``, renamed to
   ``_functional_tensor`` in torchvision 0.17. We alias the old name if, and only if, it is missing.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

import torch

# Schemas as torchvision's C++ extension registers them (csrc/ops/nms.cpp and the quantized variant).
_MISSING_SCHEMAS = {
    "nms": "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms": "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
}
_library: torch.library.Library | None = None  # kept alive: a collected Library drops its definitions
repaired: list[str] = []  # what this module had to repair, for diagnostics and tests


def _schema_exists(name: str) -> bool:
    try:
        torch._C._dispatch_find_schema_or_throw(f"torchvision::{name}", "")
    except RuntimeError:
        return False
    return True


def _define_missing_schemas() -> None:
    global _library
    _library = torch.library.Library("torchvision", "FRAGMENT")
    for name, schema in _MISSING_SCHEMAS.items():
        if _schema_exists(name):
            continue
        _library.define(schema)
    repaired.append("torchvision operator schemas (nms, qnms)")


def _import_torchvision() -> None:
    if "torchvision" in sys.modules and hasattr(sys.modules["torchvision"], "__version__"):
        return
    try:
        importlib.import_module("torchvision")
    except RuntimeError as err:
        if "torchvision::" not in str(err) or "does not exist" not in str(err):
            raise
        # Drop the half-initialised modules so the second import starts clean.
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]
        _define_missing_schemas()
        importlib.import_module("torchvision")


def _alias_functional_tensor() -> None:
    old, new = "torchvision.transforms.functional_tensor", "torchvision.transforms._functional_tensor"
    if old in sys.modules or importlib.util.find_spec(old) is not None:
        return
    sys.modules[old] = importlib.import_module(new)
    repaired.append(f"alias {old} -> {new}")


_import_torchvision()
_alias_functional_tensor()
