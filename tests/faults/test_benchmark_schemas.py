"""The benchmark records under ``reports/benchmarks/`` and the static columns, each read through its reader against its
declared schema (``reports.benchmark_schemas``, ``reports.benchmarks.ShiftRecord``,
``experiments.harness.static.StaticRecord``): every committed file meets it; a field of the wrong type, a missing
one, a non-finite number and a document nested too deep are each one line naming the file and the field; and
generated damage (hypothesis, bounded and derandomized) is refused in one line or read by the tables without a
traceback. The last test weakens a schema and shows that the property then fails."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given

from experiments.harness.records import DamagedRecordError
from experiments.harness.spec import Computed
from experiments.harness.static import keep_measured, read_static, tracked_static_fix
from reports import benchmark_schemas, released
from reports.benchmarks import BENCHMARKS_DIR
from reports.benchmarks import read_records as shift_records
from reports.build import REPORTS_DIR, static_text
from reports.loader_rates import host_workers_table, rule_rates
from reports.readme import STEP_RECORDS, smoke_block, smoke_summary, trajectory_step_block
from reports.smoke_records import read_records
from tests.faults.test_fuzz_records import FIND, FUZZ, damaged, damaged_documents
from tools.memory_breakdown import format_paper_setting, read_memory_records

STEP_NAME = "trajectory-step"  # the block whose file the damage goes into


def read_smoke(path: Path) -> None:
    records = read_records(path)
    smoke_block(path.parent)  # what the README renders of the files in its folder
    smoke_summary(records)


def read_loader(path: Path) -> None:
    records = read_records(path, "loader-rate")
    rule_rates(records)
    try:
        host_workers_table(path)
    except ValueError as err:  # an accepted file with no rate the rule reads says so in one line
        assert "no rate read by one process alone" in str(err) and "\n" not in str(err), err


def read_step(path: Path) -> None:
    trajectory_step_block(STEP_NAME, path.parent)


def read_conversion(path: Path) -> None:
    released._conversion_text({"mformer", "xvit", "tokshift", "cast"}, path)


def read_memory(path: Path) -> None:
    format_paper_setting(read_memory_records(path), 4)


def read_static_cells(path: Path) -> None:
    try:
        record = read_static(path)
    except DamagedRecordError as err:
        raise ValueError(str(err)) from None
    keep_measured(record, {"cells": record["cells"], "configurations": {}})  # what `reports track` does with it
    for columns in record["cells"].values():
        for cell in columns.values():
            static_text(Computed(cell["value"], cell["text"], cell["source"]), "t")


# kind -> (the committed files, the name a damaged copy takes, the reader and the tables that use it)
KINDS: dict[str, tuple[str, str, Callable[[Path], None]]] = {
    "smoke": ("smoke_*.json", "smoke_cpu.json", read_smoke),
    "loader-rate": ("loader_*.json", "loader_cpu.json", read_loader),
    "trajectory step": ("trajectory_step_*.json", STEP_RECORDS[STEP_NAME], read_step),
    "conversion": ("released_conversion.json", "released_conversion.json", read_conversion),
    "memory breakdown": ("mformer_memory_cpu.json", "mformer_memory_cpu.json", read_memory),
}
FIRST = {kind: ("records", 0) for kind in KINDS} | {"memory breakdown": (0,)}  # where a file's first record lies
STATIC = json.loads((REPORTS_DIR / "results" / "mformer_table4" / "static.json").read_text())


def committed(kind: str) -> dict[str, Any]:
    """The first committed file of ``kind``, cut to its first three records (the damage goes anywhere in them)."""
    pattern, _, _ = KINDS[kind]
    document = json.loads(sorted(BENCHMARKS_DIR.glob(pattern))[0].read_text())
    return document[:3] if isinstance(document, list) else {**document, "records": document["records"][:3]}


def test_every_committed_benchmark_and_static_record_meets_its_schema():
    readers = {"smoke": read_records, "loader-rate": lambda path: read_records(path, "loader-rate"),
               "trajectory step": lambda path: benchmark_schemas.read_benchmark(
                   path, benchmark_schemas.StepFile, "a step record", "fix"),
               "conversion": released.read_conversion_record,
               "memory breakdown": read_memory_records}
    for kind, (pattern, _, _) in KINDS.items():
        files = sorted(BENCHMARKS_DIR.glob(pattern))
        assert files, pattern
        for path in files:
            readers[kind](path)
    assert len([shift_records(path) for path in sorted(BENCHMARKS_DIR.glob("shift_*.json"))]) >= 2
    statics = sorted((REPORTS_DIR / "results").glob("*/static.json"))
    assert len([read_static(path, tracked_static_fix(path)) for path in statics]) >= 20


# kind -> (a field of its first record, what it is set to, what the error line says of it): a wrong type, a
# non-finite number
DAMAGES = {
    "smoke": [(("records", 0, "batch"), "4", "records.0.batch: Input should be a valid integer (got '4')"),
              (("records", 0, "step_s"), float("inf"), "records.0.step_s: Input should be a finite number")],
    "loader-rate": [(("records", 0, "processes"), 1.0, "records.0.processes: Input should be a valid integer"),
                    (("records", 0, "clips_s"), float("nan"), "records.0.clips_s: Input should be a finite number")],
    "trajectory step": [(("records", 0, "compiled"), "no", "records.0.compiled: Input should be a valid boolean"),
                        (("records", 0, "step_ms"), float("-inf"),
                         "records.0.step_ms: Input should be a finite number")],
    "conversion": [(("records", 0, "layout"), 7, "records.0.layout: Input should be a valid string (got '7')"),
                   (("records", 0, "max_relative_difference"), float("inf"),
                    "records.0.max_relative_difference: Input should be a finite number")],
    "memory breakdown": [((0, "depth"), "12", "0.depth: Input should be a valid integer (got '12')"),
                         ((0, "peak_mib"), float("nan"), "0.peak_mib: Input should be a finite number")],
}
MISSING = {"smoke": "status", "loader-rate": "path", "trajectory step": "variant", "conversion": "layout",
           "memory breakdown": "config"}


def refused(kind: str, document: Any, tmp_path: Path) -> str:
    _, name, reader = KINDS[kind]
    path = tmp_path / name
    path.write_text(json.dumps(document))
    with pytest.raises(ValueError) as caught:
        reader(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and "\n" not in message, message
    return message


@pytest.mark.parametrize("kind", KINDS)
def test_a_damaged_benchmark_record_is_one_line_naming_the_file_and_field(kind, tmp_path):
    good = committed(kind)
    for place, value, said in DAMAGES[kind]:
        assert f"({said}" in refused(kind, damaged(good, place, "replace", value), tmp_path), (kind, place)
    place = (*FIRST[kind], MISSING[kind])
    field = ".".join(map(str, place))
    assert f"(missing key '{field}')" in refused(kind, damaged(good, place, "remove", None), tmp_path)
    nested = damaged(good, place, "nest", None)
    assert "not a record (nested more than 64 deep)" in refused(kind, nested, tmp_path)


def refused_in_one_line_or_read(path: Path, reader: Callable[[Path], Any], document: Any) -> None:
    """``document`` written to ``path`` is read by ``reader``, or refused in one line that starts with the path."""
    path.write_text(json.dumps(document))
    try:
        reader(path)
    except ValueError as err:
        message = str(err)
        assert "\n" not in message and message.startswith(f"{path}: "), message


def a_benchmark_file_is_refused_in_one_line_or_read(kind: str, tmp_path: Path, document: Any) -> None:
    _, name, reader = KINDS[kind]
    refused_in_one_line_or_read(tmp_path / name, reader, document)


@pytest.mark.parametrize("kind", KINDS)
def test_generated_damage_to_a_benchmark_record_is_refused_in_one_line_or_read(kind, tmp_path):
    FUZZ(given(document=damaged_documents(committed(kind)))(
        lambda document: a_benchmark_file_is_refused_in_one_line_or_read(kind, tmp_path, document)))()


def a_static_record_is_refused_in_one_line_or_read(tmp_path: Path, document: Any) -> None:
    refused_in_one_line_or_read(tmp_path / "static.json", read_static_cells, document)


@FUZZ
@given(document=damaged_documents(STATIC))
def test_generated_damage_to_a_static_record_is_refused_in_one_line_or_read(tmp_path, document):
    a_static_record_is_refused_in_one_line_or_read(tmp_path, document)


def test_a_weakened_static_schema_is_found_by_the_property(tmp_path, monkeypatch):
    from experiments.harness import static

    monkeypatch.setattr(static.StaticRecord, "model_validate", classmethod(lambda cls, data: data))
    with pytest.raises(Exception) as caught:
        FIND(given(document=damaged_documents(STATIC))(
            lambda document: a_static_record_is_refused_in_one_line_or_read(tmp_path, document)))()
    assert not isinstance(caught.value, ValueError), caught.value


def test_a_weakened_benchmark_schema_is_found_by_the_property(tmp_path, monkeypatch):
    monkeypatch.setattr(benchmark_schemas.SmokeFile, "model_validate", classmethod(lambda cls, data: data))
    with pytest.raises(Exception) as caught:
        FIND(given(document=damaged_documents(committed("smoke")))(
            lambda document: a_benchmark_file_is_refused_in_one_line_or_read("smoke", tmp_path, document)))()
    assert not isinstance(caught.value, ValueError), caught.value  # a traceback of another type


def test_a_new_record_its_readers_would_refuse_is_not_written(tmp_path):
    from reports.smoke_records import write_records

    path = tmp_path / "smoke_cpu.json"
    content = json.dumps(committed("smoke"))
    path.write_text(content)
    bad = {**committed("smoke")["records"][0], "row": "another", "step_s": float("nan")}
    with pytest.raises(ValueError) as caught:
        write_records(path, [bad])
    assert str(caught.value).startswith(f"{path}: not written: a new record is not one of `smoke` (records.3.step_s: "
                                        "Input should be a finite number (got 'nan')); the file is left as it was")
    assert path.read_text() == content
