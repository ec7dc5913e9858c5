"""The tensors of a TorchScript archive, read without running its code.

``torch.jit.load`` compiles an archive's code and runs the ``__setstate__`` of its objects: a weights file in that
format can execute whatever its author wrote. Its tensors, though, are a pickle (``<name>/data.pkl``) of module
objects whose attributes are tensors stored beside it (``<name>/data/<key>``): this module reads that pickle with
an unpickler that imports nothing but torch's tensor rebuild, gives each TorchScript class an inert placeholder
(a name and a state; no method of the archive is ever called), and names each tensor by its attribute path, as a
state dict does (``visual.conv1.weight``).
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

_STORAGE_DTYPES = {"FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
                   "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
                   "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8,
                   "BoolStorage": torch.bool}


# What TorchScript's pickler wraps typed containers in (``Dict[str, Tensor]``, ``List[int]``...): torch's own
# functions only attach the type, so stand-ins that return the value lose nothing a weights file needs.
_TYPE_TAGS = {"restore_type_tag": lambda value, type_str: value, "build_intlist": lambda value: value,
              "build_tensorlist": lambda value: value, "build_doublelist": lambda value: value,
              "build_boollist": lambda value: value}


class TorchScriptReadError(ValueError):
    """An archive whose tensors cannot be read without its code."""


def is_torchscript_archive(path: str | Path) -> bool:
    """A zip holding ``constants.pkl``: what ``torch.jit.save`` writes, and what ``torch.load`` hands to
    ``torch.jit.load`` (the same test as torch's, so nothing torch would run as TorchScript passes for a checkpoint)."""
    path = Path(path)
    if not path.is_file() or not zipfile.is_zipfile(path):
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError):  # a damaged zip: torch cannot read it either
        return False
    return any(n == "constants.pkl" or n.endswith("/constants.pkl") for n in names)


class _ScriptObject:
    """A TorchScript object in the pickle: its class's qualified name and the state the pickle gives it."""

    qualname = "?"
    state: Any = None

    def __setstate__(self, state: Any) -> None:  # pickle's BUILD: keep the state, run nothing
        self.state = state


class _StorageType:
    def __init__(self, dtype: torch.dtype):
        self.dtype = dtype


class _Unpickler(pickle.Unpickler):
    def __init__(self, data: bytes, archive: zipfile.ZipFile, prefix: str, path: Path):
        import io

        super().__init__(io.BytesIO(data))
        self.archive, self.prefix, self.path = archive, prefix, path
        self.classes: dict[str, type] = {}

    def find_class(self, module: str, name: str) -> Any:
        if module == "__torch__" or module.startswith("__torch__."):
            qualname = f"{module}.{name}"
            return self.classes.setdefault(qualname, type(name, (_ScriptObject,), {"qualname": qualname}))
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return torch._utils._rebuild_tensor_v2
        if module == "torch.jit._pickle" and name in _TYPE_TAGS:  # a typed container: the value, its type dropped
            return _TYPE_TAGS[name]
        if (module, name) == ("collections", "OrderedDict"):
            import collections

            return collections.OrderedDict
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        raise TorchScriptReadError(f"{self.path}: its pickle names {module}.{name}, which a weights file has no use "
                                   f"for; not read")

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType)):
            raise TorchScriptReadError(f"{self.path}: an unknown storage reference {pid!r:.80}")
        _, kind, key, _, numel = pid
        raw = self.archive.read(f"{self.prefix}/data/{key}")
        flat = torch.frombuffer(bytearray(raw), dtype=kind.dtype) if raw else torch.empty(0, dtype=kind.dtype)
        if flat.numel() != numel:
            raise TorchScriptReadError(f"{self.path}: storage {key} holds {flat.numel()} values, the pickle says "
                                       f"{numel}")
        return torch.storage.TypedStorage(wrap_storage=flat.untyped_storage(), dtype=kind.dtype, _internal=True)


def read_torchscript_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    """Every tensor attribute of the archive's module tree, by dotted path; nothing of the archive is executed."""
    path = Path(path)
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        data = next((n for n in names if n.endswith("/data.pkl") and n.count("/") == 1), None)
        if data is None:
            raise TorchScriptReadError(f"{path}: no data.pkl: not a TorchScript archive")
        prefix = data.split("/")[0]
        order = archive.read(f"{prefix}/byteorder").decode().strip() if f"{prefix}/byteorder" in names else "little"
        if order != "little":
            raise TorchScriptReadError(f"{path}: written {order}-endian; only little-endian archives are read")
        try:
            root = _Unpickler(archive.read(data), archive, prefix, path).load()
        except TorchScriptReadError:
            raise
        except Exception as err:  # a damaged pickle
            raise TorchScriptReadError(f"{path}: its data.pkl cannot be read ({type(err).__name__}: {err})") from None
    tensors: dict[str, torch.Tensor] = {}
    _collect(root, "", tensors, path)
    return tensors


def _collect(obj: Any, prefix: str, out: dict[str, torch.Tensor], path: Path) -> None:
    if isinstance(obj, torch.Tensor):
        out[prefix] = obj
        return
    if not isinstance(obj, _ScriptObject):
        return
    if not isinstance(obj.state, dict):
        raise TorchScriptReadError(f"{path}: {obj.qualname} keeps its state through its own __setstate__ code, "
                                   f"which is not run: its tensors have no names to read")
    for name, value in obj.state.items():
        _collect(value, f"{prefix}.{name}" if prefix else name, out, path)
