"""What the CAST golden-file makers (``tools/pipeline_golden/cast.py`` and ``cast_train.py``) share: the authors'
code (github.com/KHU-VLL/CAST, checked out outside this repository) on the path with the run-time shims, their
scripts' arguments as ``run_bidirection.py``'s parser reads them, and the generated frames.

Shims, all at run time (none in the checkout): a ``numpy.lib.function_base`` module with ``disp`` (NumPy 2 has
none; ``dataset/kinetics.py`` imports it and never calls it); ``np.float`` (removed in NumPy 1.24) set to
``float`` for ``merge``; empty ``tensorboardX`` and ``torch._six`` modules for ``util_tools/utils.py``, which the
engines import; ``run_bidirection.get_args`` is run from its source (the module imports the model and DeepSpeed),
without ``--enable_deepspeed``.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import math
import shlex
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = {"K400": "scripts/kinetics/k400.sh", "SSV2": "scripts/ssv2/ssv2.sh", "EPIC": "scripts/ek100/ek100.sh"}
DATA_SET = {"K400": "Kinetics-400", "SSV2": "SSV2", "EPIC": "EPIC"}


# ---- the authors' code on the path, with the run-time shims -------------------------------------------------


def load_official(folder: Path) -> dict[str, Any]:
    sys.path.insert(0, str(REPO))
    sys.path.insert(0, str(folder.resolve()))
    sys.modules.setdefault("tensorboardX", types.SimpleNamespace(SummaryWriter=None))
    six = types.ModuleType("torch._six")
    six.inf = math.inf
    sys.modules.setdefault("torch._six", six)
    function_base = types.ModuleType("numpy.lib.function_base")  # NumPy 2 moved it; kinetics.py imports disp
    function_base.disp = print
    sys.modules.setdefault("numpy.lib.function_base", function_base)
    np.float = float  # the engines' merge reads logits with np.fromstring(..., dtype=np.float)
    modules = {name: importlib.import_module(name) for name in
               ("dataset.datasets", "dataset.kinetics", "dataset.ssv2", "dataset.epic", "util_tools.video_transforms",
                "util_tools.mixup", "engine_for_onemodel", "engine_for_compomodel")}
    return modules


def official_args(folder: Path, key: str, **overrides: Any) -> argparse.Namespace:
    """``run_bidirection.py``'s ``get_args`` (run from its source) on the flags of the dataset's script."""
    script = "run_bidirection_compo.py" if key == "EPIC" else "run_bidirection.py"
    source = (folder / script).read_text()
    tree = ast.parse(source)
    func = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "get_args")
    namespace: dict[str, Any] = {"argparse": argparse}
    exec(compile(ast.Module([func], []), script, "exec"), namespace)
    flags = script_flags(folder, key)
    saved = sys.argv
    sys.argv = [script] + flags
    try:
        args, _ = namespace["get_args"]()
    finally:
        sys.argv = saved
    for name, value in overrides.items():
        setattr(args, name, value)
    return args


def script_flags(folder: Path, key: str) -> list[str]:
    """The script's flags for the training program, less --enable_deepspeed and the paths."""
    text = (folder / SCRIPTS[key]).read_text().replace("\\\n", " ")
    command = next(line for line in text.splitlines() if "run_bidirection" in line)
    tokens = shlex.split(command.split(".py", 1)[1])
    flags, skip = [], {"--enable_deepspeed", "--data_path", "--anno_path", "--clip_finetune", "--vmae_finetune",
                       "--log_dir", "--output_dir"}
    i = 0
    while i < len(tokens):
        if tokens[i] in skip:
            i += 1 if tokens[i] == "--enable_deepspeed" else 2
            continue
        flags.append(tokens[i])
        i += 1
    return flags


def module_of(key: str) -> str:
    return {"K400": "dataset.kinetics", "SSV2": "dataset.ssv2", "EPIC": "dataset.epic"}[key]


# ---- videos --------------------------------------------------------------------------------------------------


def frame_pixels(t: int, height: int, width: int) -> np.ndarray:
    """A smooth frame with a moving square: every frame different, a few hundred bytes each once encoded."""
    y, x = np.mgrid[0:height, 0:width]
    frame = np.stack([(x * 255 // max(width - 1, 1) + 7 * t) % 256, (y * 255 // max(height - 1, 1)) % 256,
                      np.full_like(x, (40 + 13 * t) % 256)], axis=-1).astype(np.uint8)
    side = max(4, min(height, width) // 3)
    top, left = (3 * t) % (height - side), (5 * t) % (width - side)
    frame[top:top + side, left:left + side] = (255 - 9 * t % 256, 200, 30)
    return frame
