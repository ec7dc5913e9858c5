"""Paper tables as experiment specs: ``python -m experiments list | show | run``.

Importing the package registers every table. Torch, Lightning and timm are imported where a model is built or a run
trains (``tasks.build_model``, ``execute.execute``; the floors they import repair torchvision first), not here, so
that ``list``, ``show`` and ``--help`` can answer at once (``tests/experiments/test_cli_startup.py``).
"""

import importlib
import pkgutil

from .paper_tables import PaperTable, UnknownTableError, paper_table, paper_tables
from .spec import (TableSpec, implemented_tables, register_experiment, register_table, registered_specs, table_spec,
                   table_status)
from .tasks import Task, build_model, get_task, register_task

# Every sub-package is one paper's folder (``mformer/``, ``cast/``, ...) or one of the repository's own experiments:
# importing it registers its tables (and tasks), so a new paper's folder is found without editing this file.
SPEC_PACKAGES = tuple(m.name for m in pkgutil.iter_modules(__path__) if m.ispkg)
for _name in SPEC_PACKAGES:
    importlib.import_module(f"{__name__}.{_name}")

__all__ = ["PaperTable", "TableSpec", "Task", "UnknownTableError", "build_model", "get_task", "implemented_tables",
           "paper_table", "paper_tables", "register_experiment", "register_table", "register_task",
           "registered_specs", "table_spec", "table_status"]
