"""Paper tables as experiment specs: ``python -m experiments list | show | run``."""

import data.torchvision_compat  # noqa: F401  (before anything imports torchvision)

from . import motionformer, motionformer_lra  # noqa: F401  (register the Motionformer table specs)
from .paper_tables import PaperTable, UnknownTableError, paper_table, paper_tables
from .spec import TableSpec, implemented_tables, register_table, table_spec, table_status

__all__ = ["PaperTable", "TableSpec", "UnknownTableError", "implemented_tables", "paper_table", "paper_tables",
           "register_table", "table_spec", "table_status"]
