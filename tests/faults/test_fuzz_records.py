"""Property-based tests (hypothesis) of the readers of the project's own files: generated damage to a run's record
(any field replaced by any JSON value, removed, nested deep, or the bytes cut or replaced), to a ``claims.yaml``, and
generated record fields that name the tracked file ``reports track`` writes.

Every reader accepts or refuses in one line: a record is a ``DamagedRecordError`` naming its file, a claims file a
``ClaimsFileError`` naming it; a record that is accepted is one that every report reads without a traceback (its
sections are what their readers take); a tracked path is refused, or lies in its own table's folder of the tracked
records. The last tests weaken a check on purpose (the record's sections, the claims schema, the tracked path's
parts) and show that the same properties then fail. Bounded and derandomized: the same few examples every time.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from experiments.harness import claims as claims_module
from experiments.harness.claims import ClaimsFileError, paper_claims
from experiments.harness.provenance import data_left_out
from experiments.harness.records import DamagedRecordError, experiment_key
from reports import records as report_records
from reports.build import hardware_line, setup_differences
from reports.chance import chance_level
from reports.records import RESULTS_DIR, read_record, tracked_path

FUZZ = settings(max_examples=40, deadline=5_000, derandomize=True, database=None, report_multiple_bugs=False,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
# A weakened check only has to be found: no shrinking of the example that finds it.
FIND = settings(FUZZ, max_examples=200, phases=[Phase.explicit, Phase.generate])

# A tracked record as the runner writes it: every section the reports read is there to be damaged.
GOOD = json.loads((RESULTS_DIR / "mformer_table4" / "joint" / "seed0" / "tiny-k_400.json").read_text())
CLAIMS = yaml.safe_load(claims_module.claims_path("mformer").read_text())

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8)


def places(value: Any, at: tuple = ()) -> list[tuple]:
    """Every path to a value inside ``value`` (keys and indices), the root excepted."""
    found = []
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in children:
        found.append((*at, key))
        found += places(child, (*at, key))
    return found


def damaged(document: Any, place: tuple, action: str, value: Any) -> Any:
    """A copy of ``document`` whose value at ``place`` is replaced by ``value``, removed, or nested 100 deep."""
    copy = json.loads(json.dumps(document))
    parent = copy
    for key in place[:-1]:
        parent = parent[key]
    if action == "remove":
        del parent[place[-1]]
    elif action == "nest":
        for _ in range(100):
            value = [value]
        parent[place[-1]] = value
    else:
        parent[place[-1]] = value
    return copy


def damaged_documents(document: Any):
    return st.tuples(st.sampled_from(places(document)), st.sampled_from(["replace", "replace", "remove", "nest"]),
                     JSON).map(lambda args: damaged(document, *args))


RECORD_BYTES = (damaged_documents(GOOD).map(lambda record: json.dumps(record).encode())
                | st.binary(max_size=64)
                | st.integers(1, 2000).map(lambda cut: json.dumps(GOOD).encode()[:cut]))


# --- the properties -----------------------------------------------------------------------------------------------


def one_line_naming(err: BaseException, path: Path) -> None:
    message = str(err)
    assert "\n" not in message and str(path) in message, message


def a_record_is_refused_in_one_line_or_read_by_every_report(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "runs" / "mformer_table4" / "joint" / "seed0" / "tiny-k_400" / "metrics.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    try:
        record = read_record(path)
    except DamagedRecordError as err:
        one_line_naming(err, path)
        return
    # what the reports and the runner take from an accepted record: none of it may fail
    data_left_out(record.get("data_report") or {})
    hardware_line([record, GOOD])
    setup_differences([record, GOOD])
    chance_level([record])
    if "config" in record:
        experiment_key(record["config"])


def a_claims_file_is_refused_in_one_line_or_read(tmp_path: Path, monkeypatch, data: Any) -> None:
    path = tmp_path / "mformer" / "claims.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data))
    monkeypatch.setattr(claims_module, "claims_path", lambda paper: tmp_path / paper / "claims.yaml")
    try:
        claims = paper_claims("mformer")
    except ClaimsFileError as err:
        one_line_naming(err, path)
        return
    for claim in claims:
        for test in claim.tests:
            test.describe(), test.comparisons()


NAMES = st.sampled_from(["mformer_table4", "joint", "tiny", "paper", "K-400", "..", ".", "", "/", "a/../..",
                         "../../mformer_table6b", "tiny/../../../../mformer_table6b/mformer_l/seed0/tiny", "x\0y",
                         "/abs"]) | st.text(max_size=12)
FIELDS = st.fixed_dictionaries({"table": NAMES, "row": NAMES, "scale": NAMES, "column": NAMES,
                                "seed": st.integers(-3, 3) | st.text(max_size=4)})


def a_tracked_path_lies_in_its_tables_folder_or_is_refused(tmp_path: Path, record: dict[str, Any]) -> None:
    results = tmp_path / "results"
    results.mkdir(exist_ok=True)
    try:
        path = tracked_path(results, record, "metrics.json")
    except DamagedRecordError as err:
        one_line_naming(err, Path("metrics.json"))
        return
    table = (results / record["table"]).resolve()
    assert table.parent == results.resolve(), f"{record}: the table folder {table} is outside {results}"
    assert path.resolve().is_relative_to(table), f"{record}: tracked at {path.resolve()}, outside {table}"
    assert len(path.resolve().relative_to(table).parts) == 3, f"{record}: {path} is not <row>/seed<k>/<file>"


# --- the tests ----------------------------------------------------------------------------------------------------


@FUZZ
@given(content=RECORD_BYTES)
def test_a_damaged_record_is_refused_in_one_line_or_read_by_every_report(tmp_path, content):
    a_record_is_refused_in_one_line_or_read_by_every_report(tmp_path, content)


@FUZZ
@given(data=damaged_documents(CLAIMS))
def test_a_damaged_claims_file_is_refused_in_one_line_or_read(tmp_path, monkeypatch, data):
    a_claims_file_is_refused_in_one_line_or_read(tmp_path, monkeypatch, data)


@FUZZ
@given(record=FIELDS)
def test_a_record_never_names_a_tracked_file_outside_its_tables_folder(tmp_path, record):
    a_tracked_path_lies_in_its_tables_folder_or_is_refused(tmp_path, record)


# --- the same properties fail when a check is weakened -----------------------------------------------------------


def test_a_weakened_record_schema_is_found_by_the_record_property(tmp_path, monkeypatch):
    monkeypatch.setattr("experiments.harness.records.check_record_sections", lambda record: None)
    with pytest.raises(Exception) as caught:
        FIND(given(content=RECORD_BYTES)(
            lambda content: a_record_is_refused_in_one_line_or_read_by_every_report(tmp_path, content)))()
    assert not isinstance(caught.value, DamagedRecordError)  # a traceback of another type, as before the schemas


def test_a_weakened_claims_schema_is_found_by_the_claims_property(tmp_path, monkeypatch):
    monkeypatch.setattr(claims_module.ClaimsFile, "model_validate", classmethod(lambda cls, data: data))
    with pytest.raises(Exception) as caught:
        FIND(given(data=damaged_documents(CLAIMS))(
            lambda data: a_claims_file_is_refused_in_one_line_or_read(tmp_path, monkeypatch, data)))()
    assert not isinstance(caught.value, ClaimsFileError)


def test_a_weakened_tracked_path_check_is_found_by_the_path_property(tmp_path, monkeypatch):
    def checks_table_and_row_only(results_root, record, named_in=None):  # the check as it was: scale unchecked
        from experiments.harness.spec import column_slug

        named = (record["table"], record["row"])
        if any(part in ("", ".", "..") or "/" in part for part in named):
            raise DamagedRecordError(f"{named_in}: not a plain name")
        return (Path(results_root) / named[0] / named[1] / f"seed{record['seed']}"
                / f"{record['scale']}-{column_slug(record['column'])}.json")

    monkeypatch.setattr(report_records, "tracked_path", checks_table_and_row_only)
    monkeypatch.setitem(globals(), "tracked_path", checks_table_and_row_only)
    with pytest.raises(Exception) as caught:
        FIND(given(record=FIELDS)(lambda record: a_tracked_path_lies_in_its_tables_folder_or_is_refused(
            tmp_path, record)))()
    # a path outside its table's folder, or a traceback of another type (a NUL byte the system calls refuse)
    assert not isinstance(caught.value, DamagedRecordError), caught.value
