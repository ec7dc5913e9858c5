"""``run:TABLE/ROW/COLUMN`` pretrained sources, and the rule that every path they lead to stays in the runs folder.

A source names another run of a registered table: its parts are checked when the runs are resolved
(``check_run_sources``, from ``experiments.harness.plan.resolve_runs``), so ``--dry-run`` refuses a malformed or unknown
source with one line exactly where a real run would. The checkpoint it leads to, directly or through the record's
``reused_from``, must resolve (symlinks followed) inside the runs folder (``inside_runs_root``). Imports no torch.
"""

from __future__ import annotations

import functools
from pathlib import Path

from ..paper_tables import UnknownTableError
from .spec import RunConfig, table_spec

RUN_PREFIX = "run:"


def run_sources(cfg: RunConfig) -> list[str]:
    """The run's ``run:`` pretrained sources (one for the whole model, or one per part)."""
    sources = cfg.model.pretrained
    sources = [sources] if isinstance(sources, str) or sources is None else list(sources.values())
    return [s for s in sources if isinstance(s, str) and s.startswith(RUN_PREFIX)]


def check_run_sources(cfg: RunConfig) -> None:
    """Refuse, with one line naming it, a ``run:`` source of ``cfg`` that ``parse_run_source`` refuses."""
    for source in run_sources(cfg):
        parse_run_source(source)


@functools.lru_cache(maxsize=256)  # a table's seeds repeat it, and table specs are built on each call
def parse_run_source(source: str) -> tuple[str, str, str]:
    """(table, row, run name) of ``run:TABLE/ROW/COLUMN``: three names joined by ``/``, naming a registered table,
    one of its rows and one of its columns (its name or its run's); anything else raises a ValueError naming the
    source. No part may be empty, ``.`` or ``..``, or hold a path separator: the parts become directories."""
    parts = source.removeprefix(RUN_PREFIX).split("/")
    if not source.startswith(RUN_PREFIX) or len(parts) != 3 or not all(parts):
        raise ValueError(f"pretrained source {source!r}: expected run:TABLE/ROW/COLUMN, three names joined by '/' "
                         f"(no absolute path, no '/' inside a name)")
    for what, part in zip(("table", "row", "column"), parts):
        if part in (".", "..") or "\\" in part:
            raise ValueError(f"pretrained source {source!r}: {part!r} is not a {what} name (a name is not '.' or "
                             f"'..' and holds no path separator)")
    table, row, column = parts
    try:
        spec = table_spec(table)
    except UnknownTableError as err:
        raise ValueError(f"pretrained source {source!r}: {err}") from None
    if spec is None:
        raise ValueError(f"pretrained source {source!r}: table {table} is not implemented, so it has no runs")
    if row not in {r.key for r in spec.rows}:
        raise ValueError(f"pretrained source {source!r}: {table} has no row {row!r}; its rows: "
                         f"{', '.join(r.key for r in spec.rows)}")
    named = [c.run_name for c in spec.metric_columns if column in (c.run_name, c.column)]
    if not named:
        shown = sorted({c.run_name for c in spec.metric_columns})
        raise ValueError(f"pretrained source {source!r}: {table} has no column {column!r}; its columns: "
                         f"{', '.join(shown)}")
    return table, row, named[0]


def inside_runs_root(runs_root: str | Path, path: Path, named_by: str, fix: str) -> Path:
    """``path`` if it lies inside ``runs_root`` once both are resolved (symlinks followed: a link out of the folder
    is outside it), else a ValueError that begins with ``named_by`` (what named the path: a source, a record's
    field) and ends with ``fix``; a path no file can have (a NUL byte) is refused the same way."""
    if "\0" in str(path):  # the system calls below would fail naming no file
        raise ValueError(f"{named_by}: {str(path)!r} holds a NUL byte, which no file name can; {fix}")
    root, real = Path(runs_root).resolve(), path.resolve()
    if not real.is_relative_to(root):
        shown = f"{path} (resolves to {real})" if real != path else str(path)
        raise ValueError(f"{named_by}: {shown} is outside the runs folder {runs_root}; {fix}")
    return path
