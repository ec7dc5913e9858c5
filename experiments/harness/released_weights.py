"""The authors' released checkpoints, as data: ``experiments/<paper>/released_weights.yaml``.

Each file lists one paper's released checkpoints (a sixth paper adds its own file): per checkpoint its name
(``<paper>:<name>``, e.g. ``mformer:k400_motionformer_224_16x4``), the file name and the authors' link, the layout its
reader takes (``models.released.LAYOUTS``), the table cells it fills (table, row, the columns of one run; the paper's
numbers are read from the inventory there, never typed here; a cell the paper leaves blank, or a row of this
repository's own, keeps the authors' own number in ``authors_number``, saying where it is printed), what the file
must hold (``expects``: its variant and classes; frames and crop are the protocol's), the model options our row
needs besides its own to compute the authors' function (``model``), and the test protocol, as the authors' code
runs it (``protocol``: one of the file's named ``protocols``, with changes).

A protocol holds the views (temporal x spatial), the frames and how they are sampled and placed (``sampling``;
``stride`` and ``dense_convention`` for dense clips, ``segment_view_offsets`` and ``segment_convention`` for
segments), the crop and the short side it is cut from (``centre_rounding``: the centre crop's offset rounded "ceil",
PySlowFast's and the default, or "floor", VideoMAE's and TokShift's; ``crop_axis``: three crops along the long side,
the default, or along the width whatever the shape, TokShift's), the normalisation, the channel order the model
reads, how the views are combined (the authors' words, and ``view_average``, ours: "probabilities" or "logits"), how
a verb-noun action is scored, and the code it was read from. Every field is checked when a file is read: a wrong
type, a missing field or a name that is not in the specs is one line naming the file and the entry.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from data.root_files import read_yaml

from ..paper_tables import paper_table, paper_tables
from .spec import registered_specs, table_spec

CATALOGUE_FILE = "released_weights.yaml"
LAYOUT_NAMES = ("mformer", "xvit", "tokshift", "cast")  # models.released.LAYOUTS (not imported here: no torch)
VIEW_AVERAGES = ("probabilities", "logits")  # lightning_modules.video_classifier.VIEW_AVERAGES
SAMPLINGS = ("dense", "segments")
# data.clip_sampling's DENSE_CONVENTIONS and SEGMENT_CONVENTIONS
CONVENTIONS = ("frame_stride", "videomae", "pyslowfast", "pyslowfast_frames", "pyslowfast_pyav", "tokshift")
SEGMENT_CONVENTIONS = ("uniform", "pyslowfast")
CENTRE_ROUNDINGS = ("ceil", "floor")  # data.transforms.CentreRounding
CROP_AXES = ("long_side", "width")  # data.transforms.CropAxis
CHANNEL_ORDERS = ("RGB", "BGR")  # data.transforms.CHANNEL_ORDERS: the order the model reads
SEGMENT_PLACEMENTS = ("timestamps", "epic_slowfast")  # data.clip_sampling.SEGMENT_PLACEMENTS
VARIANTS = {"mformer": ("joint", "divided", "trajectory"), "xvit": ("xvit",), "tokshift": ("vit", "tokshift"),
            "cast": ("bidir", "compo_bidir")}


class CatalogueError(ValueError):
    """A catalogue file that cannot be read as one: the message is one line naming the file and the entry."""


# Protocol field -> the VideoDataModule option it sets, where the entry gives it
_DATA_OPTIONS = (("dense_convention", "dense_convention"), ("segment_view_offsets", "segment_view_offsets"),
                 ("segment_convention", "segment_convention"), ("centre_rounding", "test_centre_rounding"),
                 ("crop_axis", "test_crop_axis"), ("segment_placement", "segment_placement"))


@dataclass(frozen=True)
class Protocol:
    """How the authors' code tests a checkpoint (module doc)."""

    name: str
    temporal_views: int
    spatial_views: int
    frames: int
    sampling: str
    crop: int
    short_side: int
    view_average: str
    aggregation: str  # the authors' words: "sum of softmax", "mean of logits", ...
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    channels: str
    source: str
    stride: int | None = None
    dense_convention: str | None = None
    segment_view_offsets: tuple[float, ...] | None = None
    scoring: str | None = None  # how a verb-noun action is scored, where it is
    centre_rounding: str | None = None  # the centre crop's offset: "ceil" (None: the default) or "floor"
    crop_axis: str | None = None  # where 3 crops move: "long_side" (None: the default) or "width" (TokShift's)
    segment_convention: str | None = None  # how segments are cut: "uniform" (None: the default) or "pyslowfast"
    segment_placement: str | None = None  # how an annotated segment becomes frames (None: "timestamps")
    changes: tuple[tuple[str, Any], ...] = ()  # what the entry changes of the named protocol (field, value)

    def label(self) -> str:
        """The protocol's name and what the entry changes: "kinetics (crop 336, stride 8)"."""
        changed = ", ".join(f"{k} {v}" for k, v in self.changes)
        return f"{self.name} ({changed})" if changed else self.name

    def placement(self) -> str:
        """Where the views' frames come from, in words."""
        if self.sampling == "dense":
            return (f"dense, {self.frames} frames at stride {self.stride}, view placement "
                    f"{self.dense_convention or 'frame_stride'}"
                    + (f", segments placed {self.segment_placement}" if self.segment_placement else ""))
        offsets = "" if self.segment_view_offsets is None else \
            f", each view at {', '.join(f'{o:g}' for o in self.segment_view_offsets)} of every segment"
        cut = "" if self.segment_convention is None else f" ({self.segment_convention})"
        return f"segments{cut}, {self.frames} of them{offsets}"

    def summary(self) -> str:
        """One line: views, crop, placement, aggregation."""
        return (f"{self.temporal_views}x{self.spatial_views} views, crop {self.crop} of short side "
                f"{self.short_side}, {self.placement()}; {self.aggregation}")

    def data_fields(self) -> dict[str, Any]:
        """The ``DataConfig`` fields this protocol sets (``experiments.harness.spec.DataConfig``)."""
        fields = {"num_frames": self.frames, "sampling": self.sampling, "crop_size": self.crop,
                  "test_clips": self.temporal_views, "test_crops": self.spatial_views,
                  "test_view_average": self.view_average}
        return fields | ({"frame_stride": self.stride} if self.stride is not None else {})

    def data_options(self) -> dict[str, Any]:
        """The ``VideoDataModule`` options this protocol sets (``DataConfig.options``)."""
        options: dict[str, Any] = {"mean": self.mean, "std": self.std, "test_short_side": self.short_side}
        for name, option in _DATA_OPTIONS:  # the fields an entry may leave out: the datamodule's defaults then
            if (value := getattr(self, name)) is not None:
                options[option] = value
        return {**options, "channel_order": self.channels}


@dataclass(frozen=True)
class Cell:
    """Table cells one evaluation fills: the columns of one run of a row."""

    table: str
    row: str
    columns: tuple[str, ...]

    def paper_numbers(self) -> dict[str, Any]:
        """{column: the paper's number as printed (None: blank)}; all None for a row of this repository's own."""
        if self.table not in paper_tables() or not paper_table(self.table).rows:
            return dict.fromkeys(self.columns)
        printed = paper_table(self.table).rows[table_spec(self.table).row(self.row).paper_row].cells
        return {column: printed.get(column) for column in self.columns}

    @property
    def run(self) -> str:
        """The run name (its directory and record key) of these columns."""
        spec = table_spec(self.table)
        return next(c.run_name for c in spec.metric_columns if c.column == self.columns[0])

    def __str__(self) -> str:
        return f"{self.table}/{self.row}/{'+'.join(self.columns)}"


@dataclass(frozen=True)
class ReleasedCheckpoint:
    """One released file (module doc)."""

    paper: str
    name: str
    file: str
    link: str
    layout: str
    cells: tuple[Cell, ...]
    expects: Mapping[str, Any]
    protocol: Protocol
    model: Mapping[str, Any] = field(default_factory=dict)
    config: str | None = None  # the authors' configuration file it was trained with
    authors_number: Mapping[str, Any] | None = None  # {"value", "metric", "views", "source"}
    note: str | None = None
    source_file: str = ""

    @property
    def full_name(self) -> str:
        return f"{self.paper}:{self.name}"

    def known(self) -> dict[str, Any]:
        """The facts the file must hold (``models.released`` ``known``): variant, classes, frames, crop."""
        return {**self.expects, "frames": self.protocol.frames, "crop": self.protocol.crop}

    def cell(self, table: str, row: str) -> Cell | None:
        return next((c for c in self.cells if (c.table, c.row) == (table, row)), None)


# ---- reading ---------------------------------------------------------------------------------------------------


def catalogue_path(paper: str) -> Path:
    return Path(__file__).resolve().parents[1] / paper / CATALOGUE_FILE


@functools.cache
def catalogue_papers() -> tuple[str, ...]:
    """The papers with a catalogue, in the inventory's order."""
    order = list(dict.fromkeys(t.split("_", 1)[0] for t in paper_tables()))
    return tuple(p for p in order if catalogue_path(p).exists())


@functools.cache
def paper_catalogue(paper: str) -> tuple[ReleasedCheckpoint, ...]:
    """The paper's released checkpoints, every field checked; () for a paper without a catalogue."""
    path = catalogue_path(paper)
    if not path.exists():
        return ()
    try:
        data = read_yaml(path)
    except ValueError as err:  # a special or damaged file, broken or too deep YAML: one line naming it
        raise CatalogueError(str(err)) from None
    if not isinstance(data, dict) or not isinstance(data.get("checkpoints"), list):
        raise CatalogueError(f"{path}: expected a mapping with a list under `checkpoints`")
    protocols = data.get("protocols") or {}
    if not isinstance(protocols, dict):
        raise CatalogueError(f"{path}: `protocols` must map names to protocols")
    layout = data.get("layout")  # the file's entries take it unless they name their own
    entries = tuple(_entry(paper, entry, protocols, layout, path, i) for i, entry in enumerate(data["checkpoints"]))
    names = [e.name for e in entries]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise CatalogueError(f"{path}: checkpoint names repeat: {repeated}")
    return entries


def catalogue() -> tuple[ReleasedCheckpoint, ...]:
    """Every released checkpoint of every paper."""
    return tuple(entry for paper in catalogue_papers() for entry in paper_catalogue(paper))


def find_checkpoint(name: str) -> ReleasedCheckpoint:
    """The entry ``<paper>:<name>``; an unknown one raises ``KeyError`` naming the close ones."""
    paper, _, short = name.partition(":")
    entries = {e.name: e for e in paper_catalogue(paper)} if paper in catalogue_papers() else {}
    if short in entries:
        return entries[short]
    import difflib

    everything = [e.full_name for e in catalogue()]
    close = difflib.get_close_matches(name, everything, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise KeyError(f"no released checkpoint {name!r} in the catalogue{hint} (`python -m experiments weights` "
                   f"lists them)")


def checkpoints_for(table: str, row: str) -> list[ReleasedCheckpoint]:
    """The released checkpoints that fill a cell of ``table``'s ``row``."""
    return [e for e in catalogue() if e.cell(table, row) is not None]


# ---- checking one entry ----------------------------------------------------------------------------------------

_ENTRY_FIELDS = {"name": str, "file": str, "link": str, "fills": list, "expects": dict, "protocol": (str, dict),
                 "model": dict, "config": str, "authors_number": dict, "note": str, "layout": str}
_REQUIRED = ("name", "file", "link", "fills", "expects", "protocol")
_PROTOCOL_FIELDS = {"views": dict, "frames": int, "sampling": str, "crop": int, "short_side": int,
                    "view_average": str, "aggregation": str, "mean": list, "std": list, "channels": str,
                    "source": str, "stride": int, "dense_convention": str, "segment_view_offsets": list,
                    "segment_convention": str,
                    "scoring": str, "centre_rounding": str, "crop_axis": str,
                    "segment_placement": str}
_PROTOCOL_REQUIRED = ("views", "frames", "sampling", "crop", "short_side", "view_average", "aggregation", "mean",
                      "std", "channels", "source")


def _entry(paper: str, entry: Any, protocols: dict[str, Any], layout: Any, path: Path,
           index: int) -> ReleasedCheckpoint:
    where = f"{path}: checkpoint {index + 1}"
    if not isinstance(entry, dict):
        raise CatalogueError(f"{where}: not a mapping")
    if isinstance(entry.get("name"), str):
        where = f"{path}: checkpoint {entry['name']}"
    _check_fields(entry, _ENTRY_FIELDS, _REQUIRED, where)
    layout = entry.get("layout", layout)
    if layout not in LAYOUT_NAMES:
        raise CatalogueError(f"{where}: layout {layout!r} is none of {', '.join(LAYOUT_NAMES)}")
    expects = dict(entry["expects"])
    _check_expects(expects, layout, where)
    protocol = _protocol(entry["protocol"], protocols, where)
    cells = tuple(_cell(fill, f"{where}, fills {i + 1}") for i, fill in enumerate(entry["fills"]))
    if not cells:
        raise CatalogueError(f"{where}: `fills` names no table cell")
    number = entry.get("authors_number")
    if number is not None and not (isinstance(number.get("value"), (int, float)) and
                                   isinstance(number.get("source"), str)):
        raise CatalogueError(f"{where}: authors_number needs a numeric `value` and a `source` (where it is printed)")
    return ReleasedCheckpoint(paper, entry["name"], entry["file"], entry["link"], layout, cells, expects, protocol,
                              dict(entry.get("model") or {}), entry.get("config"), number,
                              " ".join(entry["note"].split()) if entry.get("note") else None, str(path))


def _check_fields(mapping: dict[str, Any], kinds: dict[str, Any], required: tuple[str, ...], where: str) -> None:
    missing = [k for k in required if k not in mapping]
    if missing:
        raise CatalogueError(f"{where}: missing {', '.join(missing)}")
    unknown = sorted(set(mapping) - set(kinds))
    if unknown:
        raise CatalogueError(f"{where}: unknown field(s) {unknown}; fields are {', '.join(kinds)}")
    wrong = [f"{k} is {type(v).__name__}, expected {_kind_names(kinds[k])}" for k, v in mapping.items()
             if not isinstance(v, kinds[k]) or isinstance(v, bool) and kinds[k] is int]
    if wrong:
        raise CatalogueError(f"{where}: {'; '.join(wrong)}")


def _kind_names(kind: Any) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {str: "text", int: "an integer", list: "a list", dict: "a mapping", float: "a number"}
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _check_expects(expects: dict[str, Any], layout: str, where: str) -> None:
    unknown = sorted(set(expects) - {"variant", "classes"})
    if unknown or "classes" not in expects or "variant" not in expects:
        raise CatalogueError(f"{where}: expects holds variant and classes (frames and crop are the protocol's); "
                             f"got {sorted(expects)}")
    if expects["variant"] not in VARIANTS[layout]:
        raise CatalogueError(f"{where}: variant {expects['variant']!r} is none of the {layout} layout's "
                             f"{', '.join(VARIANTS[layout])}")
    classes = expects["classes"]
    verb_noun = isinstance(classes, dict) and set(classes) == {"verb", "noun"} and all(
        isinstance(v, int) and not isinstance(v, bool) and v > 1 for v in classes.values())
    if not (isinstance(classes, int) and not isinstance(classes, bool) and classes > 1 or verb_noun):
        raise CatalogueError(f"{where}: classes must be a count or {{verb: V, noun: N}}, got {classes!r}")
    if verb_noun:  # in the order the verb/noun task and the models take them
        expects["classes"] = {"verb": classes["verb"], "noun": classes["noun"]}


def _protocol(value: str | dict[str, Any], protocols: dict[str, Any], where: str) -> Protocol:
    """A named protocol of the file, or a mapping with ``use: NAME`` and the fields it changes."""
    if isinstance(value, str):
        value = {"use": value}
    name = value.get("use")
    if not isinstance(name, str) or not isinstance(protocols.get(name), dict):
        raise CatalogueError(f"{where}: protocol {name!r} is none of the file's protocols "
                             f"({', '.join(protocols) or 'none'})")
    changes = {k: v for k, v in value.items() if k != "use"}
    fields = {**protocols[name], **changes}
    where = f"{where}, protocol {name}"
    _check_fields(fields, _PROTOCOL_FIELDS, _PROTOCOL_REQUIRED, where)
    views = fields["views"]
    if set(views) != {"temporal", "spatial"} or not all(isinstance(v, int) and v > 0 for v in views.values()):
        raise CatalogueError(f"{where}: views must be {{temporal: T, spatial: S}}, counts, got {views}")
    if views["spatial"] not in (1, 3):
        raise CatalogueError(f"{where}: spatial views are 1 (centre) or 3 (along the long side), got "
                             f"{views['spatial']}")
    _check_choice(fields, "sampling", SAMPLINGS, where)
    _check_choice(fields, "view_average", VIEW_AVERAGES, where)
    if "dense_convention" in fields:
        _check_choice(fields, "dense_convention", CONVENTIONS, where)
    _check_choice(fields, "channels", CHANNEL_ORDERS, where)
    if "segment_placement" in fields:
        _check_choice(fields, "segment_placement", SEGMENT_PLACEMENTS, where)
        if fields["segment_placement"] == "epic_slowfast" and fields.get("dense_convention") != "pyslowfast":
            raise CatalogueError(f"{where}: segment_placement epic_slowfast places dense clips of dense_convention "
                                 f"pyslowfast")
    if "centre_rounding" in fields:
        _check_choice(fields, "centre_rounding", CENTRE_ROUNDINGS, where)
    if "crop_axis" in fields:
        _check_choice(fields, "crop_axis", CROP_AXES, where)
    if "segment_convention" in fields:
        _check_choice(fields, "segment_convention", SEGMENT_CONVENTIONS, where)
    dense = fields["sampling"] == "dense"
    if dense != ("stride" in fields) or (not dense and "dense_convention" in fields) or (
            dense and ("segment_view_offsets" in fields or "segment_convention" in fields)):
        raise CatalogueError(f"{where}: dense sampling takes stride and dense_convention, segments take "
                             f"segment_view_offsets and segment_convention")
    for key in ("mean", "std"):
        if len(fields[key]) != 3 or not all(isinstance(v, (int, float)) for v in fields[key]):
            raise CatalogueError(f"{where}: {key} must be three numbers (per channel, on the [0, 1] scale)")
    offsets = fields.get("segment_view_offsets")
    if offsets is not None and (len(offsets) != views["temporal"] or not all(
            isinstance(o, (int, float)) and 0 <= o < 1 for o in offsets)):
        raise CatalogueError(f"{where}: segment_view_offsets must be one offset in [0, 1) per temporal view")
    if fields["short_side"] < fields["crop"]:
        raise CatalogueError(f"{where}: short_side {fields['short_side']} is below the crop {fields['crop']}")
    return Protocol(
        name=name, temporal_views=views["temporal"], spatial_views=views["spatial"], frames=fields["frames"],
        sampling=fields["sampling"], crop=fields["crop"], short_side=fields["short_side"],
        view_average=fields["view_average"], aggregation=fields["aggregation"],
        mean=tuple(float(v) for v in fields["mean"]), std=tuple(float(v) for v in fields["std"]),
        channels=fields["channels"], source=" ".join(fields["source"].split()), stride=fields.get("stride"),
        dense_convention=fields.get("dense_convention"),
        segment_view_offsets=None if offsets is None else tuple(float(o) for o in offsets),
        scoring=fields.get("scoring"), centre_rounding=fields.get("centre_rounding"),
        crop_axis=fields.get("crop_axis"),
        changes=tuple((k, v) for k, v in changes.items() if k not in ("source", "scoring")),
        segment_convention=fields.get("segment_convention"), segment_placement=fields.get("segment_placement"))


def _check_choice(fields: dict[str, Any], key: str, choices: tuple[str, ...], where: str) -> None:
    if fields[key] not in choices:
        raise CatalogueError(f"{where}: {key} {fields[key]!r} is none of {', '.join(choices)}")


def _cell(fill: Any, where: str) -> Cell:
    if not isinstance(fill, dict) or set(fill) != {"table", "row", "columns"} or not isinstance(
            fill.get("columns"), list) or not fill["columns"]:
        raise CatalogueError(f"{where}: a cell is {{table: ID, row: KEY, columns: [COLUMN, ...]}}, got {fill!r}")
    table, row, columns = fill["table"], fill["row"], tuple(fill["columns"])
    if table not in registered_specs():
        raise CatalogueError(f"{where}: no implemented table or experiment {table!r}")
    spec = table_spec(table)
    try:
        spec.row(row)
    except KeyError as err:
        raise CatalogueError(f"{where}: {err.args[0]}") from None
    runs = {c.column: c.run_name for c in spec.metric_columns}
    unknown = [c for c in columns if c not in runs]
    if unknown:
        raise CatalogueError(f"{where}: {table} has no column(s) {unknown}; its columns: {', '.join(runs)}")
    if len({runs[c] for c in columns}) != 1:
        raise CatalogueError(f"{where}: columns {list(columns)} are filled by different runs of {table}")
    return Cell(table, row, columns)


__all__ = ["CATALOGUE_FILE", "CatalogueError", "Cell", "Protocol", "ReleasedCheckpoint", "catalogue",
           "catalogue_papers", "checkpoints_for", "find_checkpoint", "paper_catalogue"]
