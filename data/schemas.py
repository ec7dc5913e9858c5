"""The declared schema of each kind of row the data floor reads from a dataset's text files, checked by pydantic when
the file is read (a split's setup, ``python -m data check``), never per clip.

A row that breaks its schema (a wrong type, a missing field, a non-finite or out-of-range number, text no file name
can hold) becomes one line naming the field (``validate_row``), which the readers report with the file and the row.
The bounds keep every later computation finite: a time past ``MAX_SECONDS`` would turn frame arithmetic into an
OverflowError far from the file that caused it. What a schema cannot know (a label past the dataset's class count,
a video of another participant) the readers check after it.

One model per kind: the Kinetics "path label" list line (``KineticsListLine``) and official CSV row
(``KineticsRow``), the Something-Something V2 entry (``SSv2Entry``) and class table (``SSV2_LABELS``), the
EPIC-KITCHENS-100 narration row (``EpicRow``) and class row (``EpicClassRow``), the Gym99 element line
(``Gym99Line``), the DAVIS sequence list line (``DavisSequenceName``) and the Pathfinder metadata line
(``PathfinderLine``).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    model_validator,
)

MAX_SECONDS = 7 * 24 * 3600.0  # a week: no annotated video is longer
MAX_CLASS_INDEX = 2**31 - 1  # labels become int64 tensors; no dataset has 2^31 classes
MAX_NAME_CHARS = 255  # a file name's bytes on the common filesystems
MAX_PATH_CHARS = 4096  # PATH_MAX on Linux


def _no_nul(text: str) -> str:
    if "\0" in text:
        raise ValueError("holds a NUL byte")
    return text


def _whole_number(value: Any) -> Any:
    """Digits only (a JSON integer too): '3', ' 3 '; not '3.5', '1_0', '+3', a bool or another script's digits."""
    if isinstance(value, str):
        text = value.strip()
        if not (text.isascii() and text.isdigit()) or len(text) > 100:  # int() of 4,300 digits is refused anyway
            raise ValueError(f"{value[:40]!r} is not a whole number")
        return int(text)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{str(value)[:40]!r} is not a whole number")
    return value


def _id_text(value: Any) -> Any:
    """An id given as a JSON integer is its digits (SSv2's ids are strings, some copies write numbers)."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_PATH_CHARS),
                 AfterValidator(_no_nul)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_NAME_CHARS),
                 AfterValidator(_no_nul)]
ClassIndex = Annotated[int, BeforeValidator(_whole_number), Field(ge=0, le=MAX_CLASS_INDEX)]
Seconds = Annotated[float, Field(ge=0, le=MAX_SECONDS, allow_inf_nan=False)]

_TIMESTAMP = re.compile(r"^(\d{1,3}):([0-5]\d):([0-5]\d(?:\.\d{1,9})?)$")
_NUMBER_LIST = re.compile(r"^\[\s*(?:\d{1,10}\s*(?:,\s*\d{1,10}\s*)*)?\]$")


def epic_timestamp(text: str) -> float:
    """'HH:MM:SS.ff' (e.g. '00:01:02.350') -> seconds, at most ``MAX_SECONDS``."""
    match = _TIMESTAMP.match(text.strip()) if isinstance(text, str) else None
    if not match:
        raise ValueError(f"timestamp {str(text)[:40]!r} is not HH:MM:SS.ff")
    hours, minutes, seconds = match.groups()
    value = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    if value > MAX_SECONDS:
        raise ValueError(f"timestamp {text.strip()!r} is past {MAX_SECONDS / 3600:g} hours")
    return value


def _number_list(text: str) -> str:
    if text.strip() and not _NUMBER_LIST.match(text.strip()):
        raise ValueError(f"{text[:40]!r} is not a list of class indices like [3, 12]")
    return text


class _Row(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)  # columns the readers do not use are not checked


class KineticsListLine(_Row):
    """'<relative path> <label index>' of a "path label" list (the readers split the line)."""

    path: Text
    label: ClassIndex


class KineticsRow(_Row):
    """label,youtube_id,time_start,time_end,split of the official Kinetics CSVs (seconds, ``'%06d'`` in names)."""

    label: Annotated[str, StringConstraints(strip_whitespace=True, max_length=MAX_NAME_CHARS)]
    youtube_id: Name
    time_start: Seconds
    time_end: Seconds


class SSv2Entry(_Row):
    """One entry of SSv2's train.json / validation.json; the class is the ``template`` without brackets."""

    id: Annotated[Name, BeforeValidator(_id_text)]
    template: Text
    label: str | None = None
    placeholders: list[str] | None = None


SSV2_LABELS = TypeAdapter(dict[Text, ClassIndex])  # labels.json: {"Moving something up": "93", ...}


class EpicRow(_Row):
    """A narration of EPIC_100_{train,validation}.csv: its segment, its video and its (verb, noun) classes."""

    narration_id: Name
    participant_id: Name
    video_id: Name
    start_timestamp: Annotated[float, BeforeValidator(epic_timestamp)]
    stop_timestamp: Annotated[float, BeforeValidator(epic_timestamp)]
    verb_class: ClassIndex
    noun_class: ClassIndex
    all_noun_classes: Annotated[str, AfterValidator(_number_list)] = ""

    @model_validator(mode="after")
    def _segment_of_the_participants_video(self) -> EpicRow:
        if not self.video_id.startswith(self.participant_id):
            raise ValueError(f"video_id {self.video_id!r} does not belong to participant {self.participant_id!r}")
        if self.stop_timestamp <= self.start_timestamp:
            raise ValueError(f"stop_timestamp {self.stop_timestamp:g}s is not after start_timestamp "
                             f"{self.start_timestamp:g}s")
        return self


class EpicClassRow(_Row):
    """id,key,instances,category of EPIC_100_{verb,noun}_classes.csv."""

    id: ClassIndex
    key: Text


GYM99_CLASSES = 99
# <YouTube id>_E_<event start>_<event end>_A_<element start>_<element end>: the release's element ids. The id's
# fixed alphabet also keeps a line from naming a file outside subactions/.
GYM_ELEMENT_ID = re.compile(r"^[A-Za-z0-9_-]{11}_E_\d{6}_\d{6}_A_\d{4}_\d{4}$")


def _gym_element(text: str) -> str:
    if not GYM_ELEMENT_ID.match(text):
        raise ValueError(f"element id {text[:80]!r} does not follow <YouTube id>_E_dddddd_dddddd_A_dddd_dddd")
    return text


def _gym99_class(label: int) -> int:
    if label >= GYM99_CLASSES:
        raise ValueError(f"label {label} outside Gym99's {GYM99_CLASSES} classes (0..{GYM99_CLASSES - 1})")
    return label


class Gym99Line(_Row):
    """'<element id> <label>' of the Gym99 element lists."""

    element: Annotated[str, AfterValidator(_gym_element)]
    label: Annotated[ClassIndex, AfterValidator(_gym99_class)]


class DavisSequenceName(_Row):
    """A line of DAVIS' ImageSets/2017/<split>.txt: a sequence, the name of its frame and mask folders."""

    name: Annotated[Name, StringConstraints(pattern=r"^[^/\\]+$")]


class PathfinderLine(_Row):
    """'<image folder> <file> <n> <label 0/1> ...' of a Pathfinder metadata file."""

    folder: Name
    file: Name
    label: Annotated[ClassIndex, Field(le=1)]


Model = TypeVar("Model", bound=BaseModel)


def csv_fields(row: dict[str | None, Any]) -> dict[str, str]:
    """A ``csv.DictReader`` row as a schema reads it: the header's fields that the line has (a short line leaves
    the others None: they are missing), without the list of fields past the header (key None)."""
    return {key: value for key, value in row.items() if key is not None and value is not None}


def validate_row(model: type[Model], row: Any) -> Model:
    """``row`` (a dict of the file's fields) as ``model``, or a ValueError in one line naming each bad field:
    "fps: Input should be less than or equal to 1000 (got '1e308')"."""
    try:
        return model.model_validate(row)
    except ValidationError as err:
        raise ValueError(describe(err)) from None


def describe(err: ValidationError, most: int = 3) -> str:
    """A ValidationError in one line: each failing field (its path in the row or document) with pydantic's reason
    and, where the reason does not quote it, the value it got. The one wording of every floor's schemas (the run
    records' too, ``experiments.harness.record_schemas``)."""
    parts = []
    for error in err.errors(include_url=False)[:most]:
        field = ".".join(str(part) for part in error["loc"])  # a key of a JSON object may be any text
        field = field if field.isprintable() else repr(field)
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "missing":
            parts.append(f"missing key {field!r}")
            continue
        got = error.get("input")
        value = repr(str(got)[:40])
        said = isinstance(got, (dict, list)) or not field or value in message  # a reason that quotes the value
        parts.append(f"{field}: {message}{'' if said else f' (got {value})'}" if field else message)
    more = len(err.errors()) - most
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")
