"""The declared schemas of the nested sections of a run's record (its run folder's, a tracked copy, a checkpoint's run
state) that the runner and the reports read, checked by pydantic when the record is read, and the bound on how deep
any JSON or YAML document the CLI reads may nest.

``records.check_record_shape`` checks a record's top-level keys against ``records.RECORD_SCHEMA`` through the model
``top_level_model`` makes of it; ``check_record_sections`` checks what lies under them: the metrics (finite numbers in
their metric's range, ``metric_range``: a run refuses to write any other), the seed, time and counts in theirs, the
data description (its class counts), each split's data report (counts, or lists of the files left out), the
provenance (batch, devices, accelerator, CPU kernels, threads) and, for a cell
evaluated from released weights, what was evaluated (``released``: its name and protocol). Every section keeps the
keys it does not declare (records carry more than any reader takes), and each declared key must be of its type,
strictly: ``"5"`` is no count and ``true`` no number; null only where every reader takes it for "not recorded". A
failure is one line naming the field ("data_report.train: Input should be an object (got 5)"), which the readers
report with the file.

A document nested deeper than ``MAX_DEPTH`` (no record, claims file or catalogue nests past 12) is refused before
any reader walks it: Python's own recursion limit would otherwise end the command in a ``RecursionError``.
"""

from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    create_model,
    model_validator,
)

from data.schemas import describe

MAX_COUNT = 2**53  # a count JSON keeps exactly; no split holds more files

Count = Annotated[StrictInt, Field(ge=0, le=MAX_COUNT)]
Positive = Annotated[StrictInt, Field(ge=1, le=MAX_COUNT)]
Finite = Annotated[float, Field(strict=True, allow_inf_nan=False)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)  # keys no reader takes are not checked


class VerbNounClasses(_Section):
    verb: Positive
    noun: Positive


class DataDescription(_Section):
    """The record's ``data``: what the run's data module says of its data (``reports.chance`` reads the classes)."""

    num_classes: Positive | VerbNounClasses | None = None


class SplitReport(_Section):
    """One split of ``data_report``: videos expected and found, and what was left out (a list of the files, or a
    count: ``provenance.data_left_out`` takes either)."""

    expected: Count | None = None
    found: Count | None = None
    missing: list[Any] | Count = []
    corrupt: list[Any] | Count = []
    bad_annotation_lines: list[Any] | Count = []
    skipped_at_train: list[Any] | Count = 0
    skipped_at_test: list[Any] | Count = 0


class Batch(_Section):
    per_device_batch: Positive | None = None
    world_size: Positive | None = None
    global_batch: Positive | None = None
    paper_global_batch: Positive | None = None


class CpuKernels(_Section):
    capability: StrictStr = "?"  # the reports print it: absent reads "?", a null would be no text at all
    switches: dict[str, StrictStr] | None = None


class Provenance(_Section):
    """The record's ``provenance`` (``provenance.provenance``): what ``reports.build`` compares between runs."""

    precision: StrictStr | None = None
    accelerator: StrictStr | None = None  # a device's label looks for "CPU" in it
    world_size: Positive | None = None
    devices: list[StrictStr] | None = None
    cpu_kernels: CpuKernels | None = None
    batch: Batch | None = None
    torch_threads: Positive | None = None
    deterministic: StrictBool | StrictStr | None = None  # Lightning takes "warn" too
    decoder: dict[str, StrictStr | None] | None = None
    libraries: dict[str, StrictStr | None] | None = None

    @model_validator(mode="after")
    def _devices_with_their_count(self) -> Provenance:
        if self.devices and self.world_size is None:  # the reports show "<world_size> × <device>"
            raise ValueError("devices without world_size")
        return self


class ReleasedFrom(_Section):
    """A record evaluated from released weights (``reports.released``): the checkpoint's name and the protocol it
    was tested at (its views)."""

    name: StrictStr | None = None
    protocol: dict[str, Any] | None = None


# The range of each metric a run records, by the end of its name: top-k accuracies are percentages (as the runs
# record and the reports print them), a loss is not negative; any metric is at most MAX_METRIC in size, so that the
# sums and squares of a mean and a variance over seeds stay finite (1e308 overflowed them).
PERCENT_SUFFIXES = ("top1", "top5", "accuracy")
MAX_METRIC = 1e12


def metric_range(name: str) -> tuple[float, float, str]:
    """(low, high, what) a metric named ``name`` lies in."""
    if name.endswith(PERCENT_SUFFIXES):
        return 0.0, 100.0, "a percentage"
    if name.endswith("loss"):
        return 0.0, MAX_METRIC, "a loss"
    return -MAX_METRIC, MAX_METRIC, "a metric"


def _in_range(metrics: dict[str, float]) -> dict[str, float]:
    for name, value in metrics.items():
        low, high, what = metric_range(name)
        if not low <= value <= high:
            raise ValueError(f"{name} {value:g} is outside {low:g} to {high:g} ({what})")
    return metrics


class RecordSections(BaseModel):
    """What a record's readers take from under its top-level keys, and the range of the top-level numbers."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    metrics: Annotated[dict[str, Finite], AfterValidator(_in_range)] = {}
    seed: Annotated[StrictInt, Field(ge=0, le=2**32 - 1)] | None = None  # numpy's seeds are 32-bit
    wall_time_s: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None
    num_params: Count | None = None
    test_videos: Count | None = None
    data: DataDescription = DataDescription()  # the reports look into it where present: null is no description
    data_report: dict[str, SplitReport] | None = None
    provenance: Provenance | None = None
    released: ReleasedFrom | None = None


_STRICT = {str: StrictStr, int: StrictInt, float: StrictFloat, dict: dict[str, Any], type(None): None}


def top_level_model(schema: dict[str, tuple[type, ...]]) -> type[BaseModel]:
    """The pydantic model of a record's top level, declared as data (``records.RECORD_SCHEMA``: each key and the
    JSON types it may hold): strict, so ``"5"`` is no integer and ``true`` no number; keys it does not name pass."""
    fields: dict[str, Any] = {key: (Union[tuple(_STRICT[kind] for kind in kinds)], None)  # noqa: UP007
                              for key, kinds in schema.items()}
    return create_model("RecordTopLevel", __config__=ConfigDict(extra="allow", frozen=True), **fields)


def wrong_top_level_keys(model: type[BaseModel], record: dict[str, Any]) -> list[str]:
    """The top-level keys of ``record`` whose values ``model`` refuses, in the model's order."""
    try:
        model.model_validate(record)
    except ValidationError as err:
        return list(dict.fromkeys(str(error["loc"][0]) for error in err.errors() if error["loc"]))
    return []


def check_record_sections(record: dict[str, Any]) -> str | None:
    """None if the sections of ``record`` hold what their readers take, else one line naming each bad field."""
    try:
        RecordSections.model_validate(record)
    except ValidationError as err:
        return describe(err)
    return None
