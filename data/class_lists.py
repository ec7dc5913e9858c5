"""Class names in the order of a model's head: the label indices this repository's annotation readers give a
dataset's classes, which the authors' released checkpoints share.

They are read from the user's own copy of the dataset's annotation files where there is one (``annotation_names``:
Kinetics' official annotations, SSv2's ``labels.json``, EPIC-KITCHENS-100's verb and noun class lists), else from a
list committed under ``data/class_lists/`` with its source named in its header (``committed_names``). A class list is
a fact about its dataset, so a list is committed only where it could be copied from a named source (Kinetics-400,
Kinetics-600, Something-Something V2, EPIC-KITCHENS-100's verbs and nouns); for any other dataset the names come from
the user's annotation files alone, and without them ``dataset_names`` is None: no name is guessed. A generated
stand-in names its own classes (``data.synthetic``).
"""

from __future__ import annotations

from pathlib import Path

CLASS_LISTS = Path(__file__).resolve().parent / "class_lists"
# dataset -> its committed list, or {head: list} for a dataset of several heads (each file's header names where it
# was copied from)
COMMITTED: dict[str, str | dict[str, str]] = {
    "kinetics400": "kinetics400.txt", "kinetics600": "kinetics600.txt", "ssv2": "ssv2.txt",
    "epic_kitchens100": {"verb": "epic_kitchens100_verb.txt", "noun": "epic_kitchens100_noun.txt"}}
# what a dataset's annotation files are, for the line that asks for them
ANNOTATION_FILES = {"kinetics400": "annotations/train.csv (the official annotations)",
                    "kinetics600": "annotations/train.csv (the official annotations)",
                    "ssv2": "labels.json",
                    "epic_kitchens100": "EPIC_100_verb_classes.csv and EPIC_100_noun_classes.csv"}

Names = list[str] | dict[str, list[str]]  # one head's names, or {"verb": [...], "noun": [...]}


def _names_in(file: str) -> list[str]:
    lines = (CLASS_LISTS / file).read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line and not line.startswith("#")]


def _source_of(file: str) -> str | None:
    header = " ".join(line.lstrip("# ") for line in (CLASS_LISTS / file).read_text(encoding="utf-8").splitlines()
                      if line.startswith("#"))
    return header.split("Source: ", 1)[1].split(". ", 1)[0] if "Source: " in header else None


def committed_names(dataset: str) -> Names | None:
    """The committed class list of ``dataset`` in head order ({head: list} for EPIC-KITCHENS' verbs and nouns), None
    where none is committed."""
    files = COMMITTED.get(dataset)
    if files is None:
        return None
    return _names_in(files) if isinstance(files, str) else {head: _names_in(file) for head, file in files.items()}


def committed_source(dataset: str) -> str | None:
    """Where the committed list of ``dataset`` was copied from: its header's ``Source:`` line (the heads' files of one
    dataset name one source)."""
    files = COMMITTED.get(dataset)
    if files is None:
        return None
    sources = {_source_of(file) for file in ([files] if isinstance(files, str) else files.values())}
    return " and ".join(sorted(s for s in sources if s)) or None


def committed_files(dataset: str) -> str:
    """The committed list's file(s) of ``dataset`` as a reader is told them."""
    files = COMMITTED[dataset]
    return f"data/class_lists/{files}" if isinstance(files, str) else " and ".join(
        f"data/class_lists/{file}" for file in files.values())


def annotation_names(dataset: str, root: str | Path) -> Names | None:
    """The class names ``root``'s annotation files give ``dataset`` in label order (EPIC-KITCHENS: verbs and
    nouns), None where its format records none (a "path label" list)."""
    from data.annotations import class_names
    from data.datamodule import DATASETS, annotation_format_of, naming_missing_files
    from data.epic_annotations import epic_class_names

    fmt = annotation_format_of(dataset, Path(root), DATASETS[dataset].annotation_format if dataset in DATASETS
                               else None)
    with naming_missing_files(dataset, fmt):
        if fmt == "epic_kitchens100":
            return epic_class_names(root)
        return class_names(fmt, root)


def dataset_names(dataset: str, root: str | Path | None = None) -> tuple[Names, str] | None:
    """(the class names of ``dataset`` in head order, where they come from): the annotation files under ``root``
    where given, else the committed list; None where neither has them."""
    if root is not None:
        names = annotation_names(dataset, root)
        if names is not None:
            return names, f"the annotations under {root}"
    names = committed_names(dataset)
    if names is not None:
        return names, f"{committed_files(dataset)} ({committed_source(dataset)})"
    return None


__all__ = ["ANNOTATION_FILES", "COMMITTED", "annotation_names", "committed_files", "committed_names",
           "committed_source", "dataset_names"]
