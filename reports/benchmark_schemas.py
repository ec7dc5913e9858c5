"""The declared schemas of the benchmark records under ``reports/benchmarks/`` that the reports read, checked by
pydantic when a file is read (``read_benchmark``): the paper-scale smoke's runs (``smoke_*.json``, ``python -m tools
smoke --record``), the loader rates (``loader_*.json``, ``python -m tools loader-rate --record``), the trajectory
attention steps (``trajectory_step_*.json``, ``python -m tools.trajectory_step``), the released checkpoints'
paper-width conversion (``released_conversion.json``, ``tools/released_golden/``) and Motionformer's memory
breakdown (``mformer_memory_cpu.json``, ``python -m tools memory-breakdown --record``). The shift family's have theirs
beside their tables (``reports.benchmarks.ShiftRecord``).

Each schema declares the fields its readers take, of their types, strictly (``"5"`` is no count and ``true`` no
number), with the numbers finite and in their range (a rate the loader rule divides by is above 0); a record keeps
every key it does not declare. A file is read as every record is (``experiments.harness.records.read_json``: a
regular file, UTF-8 JSON, nested no deeper than ``MAX_DEPTH``), and what fails is one line naming the file and the
field ("records.3.clips_s: Input should be greater than 0").
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, ValidationError, model_validator

Count = Annotated[int, Field(ge=1)]
Amount = Annotated[float, Field(ge=0, allow_inf_nan=False)]  # seconds, GiB, ms, a relative difference
Rate = Annotated[float, Field(gt=0, allow_inf_nan=False)]  # clips/s: the loader rule divides by it


class _Part(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, strict=True)  # keys no reader takes are not checked


class Stamp(_Part):
    """Where and from which code a record came: every table names the command that measures its rows again."""

    device_name: str
    torch: str
    commit: str
    measured_at: str
    command: str


class Shape(_Part):
    width: Count
    height: Count
    fps: Rate


class DataFiles(_Part):
    """The generated files a run read (``data.synthetic.paper_shape.describe``): their frame size and rate."""

    shape: Shape | None = None
    layout: str | None = None


class _Run(Stamp):
    table: str
    row: str
    column: str
    dataset: str
    shrink: Count  # the frame-size divisor: 1 is the paper's shape
    status: Literal["pass", "fail"]
    error: str | None
    data: DataFiles | None = None


class SmokeRecord(_Run):
    """One run of ``tools smoke``: what was reduced from the paper's run, pass or its first error, the step's and
    the loader's rates, and the peak memory at the paper's batch with whether it fits the paper's GPU."""

    clip: str
    batch: Count
    paper_batch: Count
    reduced: list[str]
    same_as: str | None = None
    step_s: Amount | None = None
    test_s: Amount | None = None
    step_clips_s: Rate | None = None
    loader_clips_s: Amount | None = None  # a loader that delivers nothing is measured, not divided by
    paper_batch_peak_gib: Amount | None = None
    paper_gpu: str | None = None
    fits: bool | None = None


class LoaderRecord(_Run):
    """One training data path of ``tools loader-rate``: how many processes and threads read it, and the clips per
    second the slowest of them delivered (the rule's input: present when the path passed)."""

    path: str
    threads: Count
    processes: Count
    runs: list[str] = []
    clips_s: Rate | None = None
    median_clips_s: Rate | None = None
    max_clips_s: Rate | None = None

    @model_validator(mode="after")
    def _a_pass_has_its_rate(self) -> LoaderRecord:
        if self.status == "pass" and self.clips_s is None:
            raise ValueError("a path that passed without its clips_s")
        return self


class SmokeFile(_Part):
    records: list[SmokeRecord]


class LoaderFile(_Part):
    records: list[LoaderRecord]


class StepProfile(_Part):
    kernels_per_step: Amount | None = None
    per_step_ms: Amount | None = None


class StepRecord(_Part):
    """One variant of ``tools.trajectory_step``: its median step, its ratio to joint attention's and its peak
    memory (absent where it failed, e.g. out of memory), and the profile where ``--profile`` took one."""

    variant: str
    compiled: bool
    step_ms: Amount | None = None
    over_joint_eager: Amount | None = None
    peak_gib: Amount | None = None
    profile: StepProfile | None = None


class StepFile(Stamp):
    precision: str
    records: list[StepRecord]


class PaperStepSide(_Part):
    """One side of a ``tools.paper_step`` pair: its median step and peak memory."""

    step_ms: Amount
    peak_gib: Amount | None = None


class PaperStepRecord(_Part):
    """One pair of ``tools.paper_step``: the authors' side (None where they released no code or none was given),
    ours, the ratios, and the logit checks; or the error that stopped it."""

    pair: str
    paper: str | None = None
    precision: str | None = None
    batch: Count | None = None
    authors: PaperStepSide | None = None
    ours: PaperStepSide | None = None
    time_ratio: Amount | None = None
    memory_ratio: Amount | None = None
    logits: dict[str, Amount] | None = None
    error: str | None = None


class PaperStepFile(Stamp):
    records: list[PaperStepRecord]


class ConversionRecord(_Part):
    """One layout and variant of the paper-width conversion: the largest relative difference of the logits of the
    authors' model and ours."""

    layout: str
    variant: str
    max_relative_difference: Amount


class ConversionFile(_Part):
    records: list[ConversionRecord]


class MemoryRecord(_Part):
    """One configuration of ``tools memory-breakdown``: the peak and what of it the gradients held, the parameters,
    and the setting a new measurement replaces it by (code, configuration, device, batch, depth, stage-two form)."""

    config: str
    code: str = "ours"
    device: str
    batch: Count
    depth: Count
    memory_lean: bool | None = True
    extrapolated_from: list[Count] = []
    params: Count | None = None
    peak_mib: Amount
    gradients_at_peak_mib: Amount | None = None


class MemoryFile(RootModel[list[MemoryRecord]]):
    """``mformer_memory_cpu.json``: a list of records (the GPU comparison, ``mformer_memory_cuda.json``, is another
    document, read by its test alone)."""

    model_config = ConfigDict(frozen=True, strict=True)


def read_benchmark(path: str | Path, schema: type[BaseModel], what: str, fix: str) -> Any:
    """The document ``path`` holds, checked against ``schema``; a file that cannot be read, is not JSON, nests too
    deep or does not meet the schema raises ``ValueError``, one line naming the file, what it should be (``what``),
    the field and ``fix``."""
    from data.root_files import unreadable_value
    from experiments.harness.records import DamagedRecordError, read_json

    try:
        document = read_json(path, fix)
    except DamagedRecordError as err:
        raise ValueError(str(err)) from None
    except ValueError as err:  # a number of more digits than Python converts, which read_json lets through
        raise ValueError(f"{path}: not valid JSON ({unreadable_value(err)}); {fix}") from None
    return check_benchmark(document, path, schema, f"not {what}", fix)


def check_benchmark(document: Any, path: str | Path, schema: type[BaseModel], said: str, fix: str) -> Any:
    """``document`` if it meets ``schema``, else ``ValueError``: "<path>: <said> (<the field>); <fix>"."""
    from data.schemas import describe

    try:
        schema.model_validate(document)
    except ValidationError as err:
        raise ValueError(f"{path}: {said} ({describe(err, most=1)}); {fix}") from None
    return document
