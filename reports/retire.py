"""Retiring a table's tracked records when its spec changes the runs it configures (a move to another tiny scale).

``python -m reports retire ID`` runs before ``track`` of the retrained runs. A tracked record of the table whose
configuration no other table uses either is removed: the retrained runs replace it, and git keeps it. One that
another table still configures as one of its cells (a table left at the earlier scale, a repository experiment)
moves under that table, so that report keeps its number; ``moved_from`` names where it was first tracked. A record
the table's spec still configures, or one without a configuration to compare, is kept.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from experiments.harness.plan import resolve_runs
from experiments.harness.records import experiment_key
from experiments.harness.spec import RunConfig, registered_specs, table_spec

from .records import RESULTS_DIR, read_record, tracked_path


@dataclass(frozen=True)
class Retired:
    """One tracked record that its table no longer configures: moved to ``moved_to``, or removed (None)."""

    record: Path
    moved_to: Path | None


@cache
def _runs(table_id: str, scale: str, seed: int) -> dict[str, RunConfig]:
    """experiment key -> the run a table configures today at one scale and seed (none where it has no such scale)."""
    if scale not in table_spec(table_id).scales:
        return {}
    configs = resolve_runs(table_id, scale, None, seed + 1, None, None)
    return {experiment_key(cfg.to_dict()): cfg for cfg in configs if cfg.seed == seed}


def _user(key: str, scale: str, seed: int, retiring: str) -> RunConfig | None:
    """The first table (in registry order) other than ``retiring`` that configures this run today."""
    for table_id in registered_specs():
        if table_id != retiring and key in _runs(table_id, scale, seed):
            return _runs(table_id, scale, seed)[key]
    return None


def retire(table_id: str, results_root: str | Path = RESULTS_DIR, dry_run: bool = False) -> list[Retired]:
    """Move or remove each tracked record under ``results_root/table_id`` that the table's spec no longer
    configures (the module docstring); with ``dry_run``, only say what would happen."""
    from data.atomic_write import atomic_write_text

    _runs.cache_clear()  # the specs may have changed since the last call
    folder = Path(results_root) / table_id
    retired = []
    for path in sorted(folder.glob("*/seed*/*.json")):
        record = read_record(path)
        if "config" not in record:
            continue
        key, scale, seed = experiment_key(record["config"]), record["scale"], record["seed"]
        if key in _runs(table_id, scale, seed):
            continue
        user = _user(key, scale, seed, table_id)
        target = None
        if user is not None:
            here = f"{record['table']}/{record['row']}/seed{seed}/{path.stem}"
            moved = {**record, "table": user.table, "row": user.row, "column": user.column,
                     "moved_from": record.get("moved_from", here)}
            target = tracked_path(results_root, moved, path)
            if not dry_run and not target.exists():  # one there already is a record of this very run: it stays
                atomic_write_text(target, json.dumps(moved, indent=2, default=str) + "\n")
        if not dry_run:
            path.unlink()
        retired.append(Retired(path, target))
    if not dry_run:
        for directory in sorted(folder.glob("**/"), reverse=True):  # deepest first
            if directory.is_dir() and not any(directory.iterdir()):
                directory.rmdir()
    return retired
