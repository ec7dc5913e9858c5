"""The papers' tables as experiment specs: ``python -m experiments list | show | run``.

Each paper is one folder (``mformer/``, ``cast/``, ...: its specs, ``paper.yaml``, ``claims.yaml`` and README) and its
tables' entries in the inventory (``paper_tables.yaml``); ``harness/`` turns a spec into runs (spec types, tasks,
planning, execution, records, the CLI), ``presets.py`` holds the scale presets every paper shares and
``tiny_pretraining/`` the tiny scale's stand-ins for the papers' pretrained checkpoints.

Importing the package registers every table. Torch, Lightning and timm are imported where a model is built or a run
trains (``tasks.build_model``, ``execute.execute``; ``data.torchvision_compat``, imported here, repairs torchvision as
they import it), not here, so that ``list``, ``show`` and ``--help`` can answer at once
(``tests/experiments/harness/test_cli_startup.py``).
"""

import importlib
import pkgutil

import data.torchvision_compat  # noqa: F401  (repairs torchvision when a run imports it; loads no torch itself)

from .harness.spec import (
    TableSpec,
    implemented_tables,
    register_experiment,
    register_table,
    registered_specs,
    table_spec,
    table_status,
)
from .harness.tasks import Task, build_model, get_task, register_task
from .paper_tables import PaperTable, UnknownTableError, paper_table, paper_tables

# The sub-packages that are not experiments: the machinery and the stand-in pretraining every paper's tiny scale shares.
NOT_SPECS = ("harness", "tiny_pretraining")
# Every other sub-package is one paper's folder or one of the repository's own experiments: importing it registers
# its tables (and tasks), so a new paper's folder is found without editing this file.
SPEC_PACKAGES = tuple(m.name for m in pkgutil.iter_modules(__path__) if m.ispkg and m.name not in NOT_SPECS)
for _name in SPEC_PACKAGES:
    importlib.import_module(f"{__name__}.{_name}")

__all__ = ["PaperTable", "TableSpec", "Task", "UnknownTableError", "build_model", "get_task", "implemented_tables",
           "paper_table", "paper_tables", "register_experiment", "register_table", "register_task",
           "registered_specs", "table_spec", "table_status"]
