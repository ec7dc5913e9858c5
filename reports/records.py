"""Where a report's numbers come from: the tracked records committed under ``reports/results/`` and the local runs
under ``runs/`` (git-ignored).

A record is the one a run writes in its folder (``RunDir.record_file``). The committed reports are rebuilt from the
tracked ones, so a fresh clone regenerates them byte for byte (``tests/reports/test_tracked_results.py``); ``python -m
reports track ID`` copies a table's local records into the tracked folder. A report's cell of row R and column C is
filled by

- a record written for R and C of this table (local: whatever options that run was given), or
- any record, whichever table's command trained it, whose configuration is the one R and C resolve to today
  (all but the table/row/column names, the seed and the data folder): reuse by configuration.

For one cell and seed a tracked record wins over a local one unless ``prefer="local"``: a new local run never
silently replaces a committed number; the report header counts the local records that were passed over.

A damaged record (not UTF-8, not JSON, not a record's shape) belongs to the table whose folder holds it: that table's
report refuses to build, naming the file and what to do (restore a tracked one from git, delete or rerun a local
one); every other table's report passes over it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from data.root_files import OutsideRootError, inside_root, shown
from experiments.harness.provenance import with_paper_batch
from experiments.harness.records import (
    RECORD_KEYS,
    DamagedRecordError,
    check_record_shape,
    experiment_key,
    local_record_fix,
    read_json,
    tracked_record_fix,
)
from experiments.harness.run_dir import RunDir, RunsTree
from experiments.harness.spec import SCALES, TableSpec

RESULTS_DIR = Path(__file__).resolve().parent / "results"
Prefer = Literal["tracked", "local"]


def results_root_for(out_dir: str | Path | None, results_dir: str | None) -> Path | None:
    """The tracked records belong to the committed reports: used when building into this repository's reports/
    (or when ``--results-dir`` names a folder); a report written elsewhere shows the local runs only."""
    if results_dir is not None:
        return Path(results_dir) if results_dir else None
    inside = out_dir is None or Path(out_dir).resolve() == RESULTS_DIR.parent
    return RESULTS_DIR if inside else None


# What a report reads of every record: its place, its numbers and the dataset every report prints beside them (the
# runner and a checkpoint's run state need no dataset: ``RECORD_KEYS``)
REPORT_KEYS = (*RECORD_KEYS, "dataset")


def read_record(path: Path, fix: str | None = None) -> dict[str, Any]:
    """One record; a file that is not UTF-8 JSON, or not a JSON object with a run's table, row, column, seed, scale,
    metrics and dataset of their types (``report_record``), raises ``DamagedRecordError`` naming it and ``fix``
    (default: a local run's)."""
    fix = fix or local_record_fix(path.parent)
    return report_record(read_json(path, fix), path, fix)


def report_record(value: Any, path: Path, fix: str) -> dict[str, Any]:
    """``value`` read from ``path`` if it is a record a report can show (``check_record_shape``, then every key of
    ``REPORT_KEYS``), else ``DamagedRecordError`` naming the file, the field and ``fix``."""
    record = check_record_shape(value, path, fix=fix)
    missing = [key for key in REPORT_KEYS if key not in record]
    if missing:
        raise DamagedRecordError(f"{path}: not a run record (no {', '.join(missing)}); {fix}")
    return record


def check_place_fields(record: dict[str, Any], where: str | Path, fix: str, keys: tuple[str, ...]) -> None:
    """``DamagedRecordError`` naming the record file (``where``) and the field when one of ``keys`` that names a
    tracked file's place is no plain name (empty, ``.``, ``..``, a separator, a NUL byte, an unprintable
    character), the scale one the specs do not know, or the seed no whole number: a record is data and never picks
    where a write goes."""
    for key in (k for k in keys if k != "seed"):
        value = record[key]
        if (not isinstance(value, str) or value in ("", ".", "..") or any(c in value for c in "/\\\0")
                or not value.isprintable()):
            raise DamagedRecordError(f"{where}: its {key} {value!r} is not a plain name, so it cannot name a "
                                     f"tracked file; {fix}")
    if "scale" in keys and record["scale"] not in SCALES:
        raise DamagedRecordError(f"{where}: its scale {record['scale']!r} is none of {', '.join(SCALES)}; {fix}")
    seed = record.get("seed")
    if "seed" in keys and (not isinstance(seed, int) or isinstance(seed, bool) or seed < 0):
        raise DamagedRecordError(f"{where}: its seed {seed!r} is not a whole number; {fix}")


def own_folder(results_root: str | Path, parts: Sequence[str]) -> Path:
    """``results_root/<parts>``, each folder of it its own (plain names, checked by ``check_place_fields``): a
    table, row or seed folder that is a link, to another table's folder or out of the results folder, raises
    ``DamagedRecordError`` naming it and where it leads, before anything is written through it."""
    folder, real = Path(results_root), os.path.realpath(results_root)
    for part in parts:
        folder, real = folder / part, os.path.join(real, part)
        if os.path.realpath(folder) != real:
            raise DamagedRecordError(f"{shown(folder)}: a link (to {shown(os.path.realpath(folder))}), so a tracked "
                                     f"record written there would land elsewhere; make it a folder of its own")
    return folder


def tracked_path(results_root: str | Path, record: dict[str, Any], named_in: str | Path | None = None) -> Path:
    """reports/results/<table>/<row>/seed<k>/<scale>-<column>.json, named by the run that trained it. Every field the
    path is built from is checked as a part of its own (``check_place_fields``), and every folder on the way to be
    no link (``own_folder``): each raises ``DamagedRecordError`` naming the record file (``named_in``) and the field,
    or the folder."""
    check_place_fields(record, named_in or "a record", "delete that run folder, or run it again with --force",
                       ("table", "row", "scale", "seed"))
    *folders, name = RunsTree.place(record["table"], record["row"], record["seed"], record["scale"],
                                    str(record["column"]))
    return own_folder(results_root, folders) / f"{name}.json"


_cache: dict[Path, tuple[int, dict[str, Any], str | None]] = {}


def record_fix(root: str | Path, path: Path, source: str) -> str:
    """What to do with the damaged record ``path`` under ``root``: restore a tracked one (``source`` "tracked",
    reports/results/) from git, delete or rerun a local one (runs/)."""
    return tracked_record_fix(path, path.relative_to(root).parts[0]) if source == "tracked" else \
        local_record_fix(path.parent)


def read_inside(root: str | Path, path: Path, source: str) -> tuple[dict[str, Any], str | None]:
    """The record ``path`` found under ``root`` (``source``: "tracked" or "local"), read once it is known to lie
    inside it (``inside_records``; a damaged one raises ``DamagedRecordError`` naming it and ``record_fix``), and
    its ``experiment_key`` (None: no configuration recorded), computed once per file and modification: a build of
    every report reads and keys each record once, not once a table."""
    fix = record_fix(root, path, source)
    inside_records(root, path, fix)
    stamp = path.stat().st_mtime_ns
    hit = _cache.get(path)
    if hit is None or hit[0] != stamp:
        record = read_record(path, fix)
        key = experiment_key(record["config"]) if "config" in record else None
        hit = _cache[path] = (stamp, record, key)
    return hit[1], hit[2]


@dataclass
class Scanned:
    """Every readable original record under the roots, and the damaged ones by the table folder that holds them."""

    records: list[dict[str, Any]] = field(default_factory=list)
    damaged: dict[str, list[str]] = field(default_factory=dict)  # table folder -> each damaged file's message


def _scan(root: str | Path | None, source: str, out: Scanned) -> None:
    if root is None or not Path(root).is_dir():
        return
    for path in RunsTree(root).records(tracked=source == "tracked"):
        try:
            record, key = read_inside(root, path, source)
        except DamagedRecordError as err:
            out.damaged.setdefault(path.relative_to(root).parts[0], []).append(str(err))
            continue
        if record.get("reused_from"):
            continue  # a copy of another table's run: that run is found by its configuration
        out.records.append({**record, "_source": source, "_path": path.as_posix(), "_key": key})


def inside_records(root: str | Path, path: Path, fix: str) -> None:
    """``DamagedRecordError`` naming a record file that leads out of its ``root`` (the runs folder, the tracked
    one) once links are resolved, and ``fix``: a report never reads, and ``track`` never copies into
    reports/results/, a file from elsewhere (a run's record: ``RunDir.record_inside``)."""
    if path.name == RunDir.RECORD:
        RunDir(path.parent).record_inside(root)
        return
    try:
        inside_root(root, path)
    except OutsideRootError as err:
        raise DamagedRecordError(f"{shown(path)}: leads outside {shown(root)} (to {shown(err.real or '?')}), so it "
                                 f"is not read; {fix}") from None


_scans: dict[tuple[str, str], Scanned] | None = None  # set inside ``one_scan``


@contextmanager
def one_scan() -> Iterator[None]:
    """Inside the block, ``all_records`` scans each pair of folders once and hands every later caller the same
    result: one command (a build of every report, the README's pages) reads the folders as they were when it began,
    not once per table and page (each scan resolves every record's path against its root)."""
    global _scans
    outermost = _scans is None
    if outermost:
        _scans = {}
    try:
        yield
    finally:
        if outermost:
            _scans = None


def forget_scans() -> None:
    """Inside ``one_scan``, drop what was scanned: a writer into a records folder (``track``) calls it after
    writing, so that a later read in the same block sees what was written."""
    if _scans is not None:
        _scans.clear()


def all_records(runs_root: str | Path | None, results_root: str | Path | None) -> Scanned:
    """Every original record: tracked (``_source`` "tracked") and local ("local"), and the damaged ones. Callers
    read the result and never change it (inside ``one_scan`` it is shared)."""
    key = tuple(os.path.abspath(root) if root is not None else "" for root in (runs_root, results_root))
    if _scans is not None and key in _scans:
        return _scans[key]
    out = Scanned()
    _scan(results_root, "tracked", out)
    _scan(runs_root, "local", out)
    if _scans is not None:
        _scans[key] = out
    return out


@dataclass
class TableRecords:
    """The records a table's report uses, relabelled with its own row and column, and what was passed over."""

    records: list[dict[str, Any]] = field(default_factory=list)
    passed_over: list[dict[str, Any]] = field(default_factory=list)  # same cell and seed as a preferred record
    differing: list[dict[str, Any]] = field(default_factory=list)  # filling their own cell, configured otherwise
    # tiny seeds from ``tiny_seeds`` on, of a table at the power rule's design, which reads seeds 0 to n - 1 only
    beyond_seeds: list[dict[str, Any]] = field(default_factory=list)


def table_records(spec: TableSpec, runs_root: str | Path | None, results_root: str | Path | None = None,
                  prefer: Prefer = "tracked") -> TableRecords:
    """The records that fill ``spec``'s cells. A damaged record filed under this table raises
    ``DamagedRecordError`` (its cell would silently lack a seed); one filed under another table is passed over."""
    if prefer not in ("tracked", "local"):
        raise ValueError(f"prefer must be 'tracked' or 'local', got {prefer!r}")
    scanned = all_records(runs_root, results_root)
    if spec.table_id in scanned.damaged:
        raise DamagedRecordError(scanned.damaged[spec.table_id][0])
    cells = {(row.key, column.run_name) for row, column in spec.runs()}
    wanted: dict[str, list[tuple[str, str, str]]] = {}  # experiment key -> (scale, row, column) it fills
    today: dict[tuple[str, str, str], str] = {}
    for scale in SCALES:
        if scale not in spec.scales:
            continue
        for row, column in spec.runs():
            try:
                cfg = with_paper_batch(spec.resolve(row, column, scale, seed=0))  # as the runner resolves it
            except KeyError:
                continue  # no data for this column at this scale
            key = experiment_key(cfg.to_dict())
            wanted.setdefault(key, []).append((scale, row.key, column.run_name))
            today[(scale, row.key, column.run_name)] = key

    candidates: dict[tuple[str, str, str, int], list[tuple[tuple[int, int], dict[str, Any]]]] = {}
    out = TableRecords()
    source_rank = {"tracked": 0, "local": 1} if prefer == "tracked" else {"tracked": 1, "local": 0}
    for record in scanned.records:
        key = record["_key"]
        if spec.power_rule and record.get("scale") == "tiny" and record.get("seed", 0) >= spec.tiny_seeds:
            if record.get("table") == spec.table_id:
                out.beyond_seeds.append(record)
            continue
        own = record.get("table") == spec.table_id and (record.get("row"), record.get("column")) in cells
        targets = set(wanted.get(key, [])) if key is not None else set()
        if own:
            cell = (record["scale"], record["row"], record["column"])
            targets.add(cell)
        for scale, row, column in sorted(targets):
            if scale != record.get("scale"):
                continue
            relabelled = {**record, "row": row, "column": column}
            if not own or (row, column) != (record["row"], record["column"]):
                relabelled["reused_from"] = "/".join(RunsTree.place(record["table"], record["row"], record["seed"],
                                                                    record["scale"], record["column"]))
            candidates.setdefault((scale, row, column, record["seed"]), []).append(
                (source_rank[record["_source"]], relabelled))
    for (scale, row, column, _), options in candidates.items():
        # preferred source first; within it the newest run (a configuration retrained at a later commit fills
        # every report that shows it with the same numbers), then its own table's run
        options.sort(key=lambda item: (item[0], _newest_first(item[1]), "reused_from" in item[1],
                                       item[1]["_path"]))
        chosen = options[0][1]
        out.records.append(chosen)
        if (chosen["_key"] is not None and "reused_from" not in chosen
                and today.get((scale, row, column)) not in (None, chosen["_key"])):
            out.differing.append(chosen)  # only a run that fills its cell is said to (not one passed over)
        out.passed_over += [r for _, r in options[1:]
                            if r["_source"] != chosen["_source"] and _run_id(r) != _run_id(chosen)]
    out.records.sort(key=lambda r: (r["scale"], r["row"], r["column"], r["seed"]))
    # a run configured as several cells (MSCA Table 4's tiny rows) was passed over once per cell: it is one run
    out.passed_over = list({r["_path"]: r for r in out.passed_over}.values())
    return out


def _newest_first(record: dict[str, Any]) -> str:
    """Sorts ISO times descending (a missing time sorts last)."""
    stamp = record.get("finished_at")
    return "".join(chr(0x10FFFF - ord(c)) for c in stamp) if stamp else chr(0x10FFFF)


def _run_id(record: dict[str, Any]) -> tuple:
    """One training run, wherever its record lies: a tracked copy of a local run is the same run."""
    return (record.get("table"), record.get("row"), record.get("column"), record.get("seed"),
            record.get("scale"), record.get("finished_at"), record.get("git_commit"))


def track(spec: TableSpec, runs_root: str | Path, results_root: str | Path = RESULTS_DIR) -> list[Path]:
    """Copy the local records a table's report uses into the tracked folder (replacing tracked records of the same
    run); returns the files written. The static columns (``runs/<table>/static.json``) are copied too, unless the
    tracked ones were computed later, keeping each tracked measurement that the local record could only mark
    ``needs GPU``."""
    from data.atomic_write import atomic_write_text, check_target
    from experiments.harness.static import keep_measured, read_static, static_record_path, tracked_static_fix

    # everything is read and checked (each record's fields and their ranges, each path, the static columns) before
    # the first write: a refusal leaves the tracked folder as it was
    used = table_records(spec, runs_root, results_root=None).records
    originals = [read_record(Path(record["_path"])) for record in used]
    writes = {tracked_path(results_root, original, record["_path"]): json.dumps(original, indent=2, default=str)
              + "\n" for original, record in zip(originals, used)}
    target = own_folder(results_root, (spec.table_id,)) / "static.json"
    static = static_record_path(runs_root, spec.table_id)
    tracked_fix = tracked_static_fix(target)
    if static.exists() and _computed_at(static) >= _computed_at(target, tracked_fix):  # an older runs/ keeps out
        record = read_static(static)
        record.update(keep_measured(read_static(target, tracked_fix), record))
        writes[target] = json.dumps(record, indent=2, ensure_ascii=False)
    for path in writes:
        check_target(path)
    for path, text in writes.items():
        atomic_write_text(path, text)
    forget_scans()
    return list(writes)


def _computed_at(static: Path, fix: str | None = None) -> str:
    """When a static record was computed (ISO 8601, UTC, so strings order as times); "" for none."""
    from experiments.harness.static import read_static

    return (read_static(static, fix) or {}).get("computed_at", "")


def commits(records: Iterable[dict[str, Any]]) -> set[str]:
    return {r.get("git_commit", "unknown") for r in records}
