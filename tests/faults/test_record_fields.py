"""Records the declared schemas did not cover (``experiments.harness.record_schemas``): a field a report reads that
the schema let through as null or of another type, or a record without the dataset every report prints, ended
`python -m reports build` in a TypeError, AttributeError or KeyError. Each is one line naming the file and the
field (a record without a dataset too: the reports' readers require it, ``reports.records.REPORT_KEYS``, though the
runner's and a checkpoint's run state do not); a null that every reader takes for "not recorded" is read."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from reports.records import RESULTS_DIR
from tests.faults.doors import one_line, run_command
from tests.reports.test_released_reports import K400

TRAINED = json.loads((RESULTS_DIR / "mformer_table4" / "joint" / "seed0" / "tiny-k_400.json").read_text())
TRAINED_AT = "mformer_table4/joint/seed0/tiny-k_400/metrics.json"
RELEASED_AT = "mformer_table6b/mformer/released/paper-k_400/metrics.json"


def _with(record: dict[str, Any], place: tuple[str, ...], value: Any) -> dict[str, Any]:
    """A copy of ``record`` with ``value`` at ``place`` (a key path); ``...`` removes the key."""
    out = copy.deepcopy(record)
    parent = out
    for key in place[:-1]:
        parent = parent[key]
    if value is ...:
        del parent[place[-1]]
    else:
        parent[place[-1]] = value
    return out


def build(tmp_path: Path, where: str, record: dict[str, Any]) -> tuple[int, str, str, Path]:
    path = tmp_path / "runs" / where
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(record))
    table = where.split("/")[0]
    code, out, err = run_command("reports", ["build", table, "--out-dir", str(tmp_path / "out"), "--runs-dir",
                                             str(tmp_path / "runs")])
    return code, out, err, path


@pytest.mark.parametrize("where, record, field", [
    (TRAINED_AT, _with(TRAINED, ("provenance", "cpu_kernels"), {"capability": None}),
     "provenance.cpu_kernels.capability"),  # was: TypeError (None + str)
    (TRAINED_AT, _with(TRAINED, ("provenance", "accelerator"), 5), "provenance.accelerator"),  # TypeError (in int)
    (TRAINED_AT, _with(TRAINED, ("data",), None), "data"),  # was: AttributeError (None.get)
    (TRAINED_AT, _with(TRAINED, ("dataset",), ...), "no dataset"),  # was: KeyError
    (RELEASED_AT, _with(K400, ("released", "protocol"), [1]), "released.protocol"),  # was: AttributeError
    (RELEASED_AT, _with(K400, ("released", "name"), {"a": 1}), "released.name"),
    (RELEASED_AT, _with(K400, ("dataset",), ...), "no dataset"),  # was: KeyError
], ids=["capability null", "accelerator a number", "data null", "trained without dataset", "protocol a list",
        "name an object", "released without dataset"])
def test_a_field_the_reports_cannot_read_is_one_line_naming_the_file_and_the_field(tmp_path, where, record, field):
    code, _, err, path = build(tmp_path, where, record)
    one_line(code, err, str(path), field)
    assert code == 2


@pytest.mark.parametrize("where, record", [
    (TRAINED_AT, _with(TRAINED, ("provenance", "cpu_kernels"), {"switches": None})),  # no capability: "?"
    (TRAINED_AT, _with(TRAINED, ("provenance", "cpu_kernels"), None)),
    (TRAINED_AT, _with(TRAINED, ("provenance", "accelerator"), None)),
    (TRAINED_AT, _with(TRAINED, ("data_report",), None)),
    (RELEASED_AT, _with(K400, ("released", "protocol"), None)),
    (RELEASED_AT, _with(K400, ("released", "name"), ...)),
], ids=["switches null", "kernels null", "accelerator null", "data report null", "protocol null", "no name"])
def test_a_null_the_reports_take_for_not_recorded_is_read(tmp_path, where, record):
    code, out, err, _ = build(tmp_path, where, record)
    assert code == 0 and err == "", err
