"""Long Range Arena (Tay et al., ICLR 2021): a local ListOps generator and readers for the five tasks' public files.

ListOps is generated with the official generator's grammar and draws and written as the released
``basic_{train,val,test}.tsv``; every task is read from its released layout under one ``root`` (``read_lra``).
Token 0 is padding everywhere. A missing file raises ``DataNotFoundError``, an unreadable one ``LRAFormatError``.
Grammar, layouts and tokens: data/README.md#long-range-arena-and-davis.
"""

from __future__ import annotations

import csv
import hashlib
import json
import pickle
import random
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from data.atomic_write import atomic_write_text, open_replacing
from data.cache import build_once
from data.root_files import DataRoot, NotRegularFileError, OutsideRootError, regular_file
from data.samples import BadAnnotation
from data.schemas import PathfinderLine, validate_row

# --- ListOps grammar (official generator) -------------------------------------------------------------------------

MIN, MAX, MED, SUM_MOD, END = "[MIN", "[MAX", "[MED", "[SM", "]"
OPERATORS = (MIN, MAX, MED, SUM_MOD)  # the order of the official generator: random.choice picks from it
VALUES = tuple(range(10))
VALUE_P = 0.25  # a node below max_depth is an operator with this probability
LISTOPS_VOCAB = ("<pad>", *(str(v) for v in VALUES), *OPERATORS, END)
LISTOPS_TOKEN_ID = {tok: i for i, tok in enumerate(LISTOPS_VOCAB)}

Tree = int | str | tuple
Tokens = np.ndarray  # 1-D int array of token ids, no padding
Item = tuple[Tokens | tuple[Tokens, Tokens], int]  # (tokens or a pair of token arrays, label)

LRA_TASKS = ("listops", "text", "retrieval", "image", "pathfinder")
SPLITS = ("train", "val", "test")


class DataNotFoundError(FileNotFoundError):
    """A public LRA file or directory is not where its released layout puts it."""

    def __init__(self, task: str, path: Path | str, hint: str = "") -> None:
        self.task, self.path = task, Path(path)
        super().__init__(f"LRA {task}: missing {self.path}" + (f" ({hint})" if hint else ""))


class LRAFormatError(ValueError):
    """A public LRA file that is there but cannot be read in its release's format."""

    def __init__(self, task: str, path: Path | str, reason: str) -> None:
        self.task, self.path, self.reason = task, Path(path), reason
        super().__init__(f"LRA {task}: {self.path}: {reason}")


# The declared bounds of a generated ListOps set, checked when a run's options are resolved: ten times the
# benchmark's sizes (96,000 sequences, 2,000 tokens, depth 10); past them a set fills memory, not a table.
LISTOPS_BOUNDS = {"num_train": 1_000_000, "num_val": 100_000, "num_test": 100_000, "min_length": 20_000,
                  "max_length": 20_000, "max_depth": 100, "max_args": 100, "seed": 2**32 - 1}


@dataclass(frozen=True)
class ListOpsSpec:
    """Parameters of a generated ListOps set (defaults: the LRA benchmark's)."""

    num_train: int = 96_000
    num_val: int = 2_000
    num_test: int = 2_000
    min_length: int = 500  # exclusive, as in the official generator
    max_length: int = 2_000  # exclusive
    max_depth: int = 10
    max_args: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("num_train", "num_val", "num_test", "min_length", "max_length", "max_depth", "max_args", "seed"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= LISTOPS_BOUNDS[name]:
                raise ValueError(f"ListOps: {name} must be a whole number from 0 to {LISTOPS_BOUNDS[name]}, got "
                                 f"{value!r}")
        if self.min_length + 1 >= self.max_length:
            raise ValueError(f"ListOps: need min_length + 1 < max_length, got {self.min_length}, {self.max_length}")
        if self.max_args < 2 or self.max_depth < 2:
            raise ValueError("ListOps: max_args and max_depth must be at least 2")


def generate_tree(rng: random.Random, depth: int, max_depth: int, max_args: int) -> tuple[Tree, int]:
    """One random expression tree and its length; the official generator's draws, in its order.

    The tree is nested pairs: an operator node with arguments a1..an is ``((..((op, a1), a2)..., an), "]")``.
    """
    r = rng.random() if depth < max_depth else 1.0
    if r > VALUE_P:
        return rng.choice(VALUES), 1
    length = 2  # the operator and its closing bracket
    args = []
    for _ in range(rng.randint(2, max_args)):
        sub, sub_length = generate_tree(rng, depth + 1, max_depth, max_args)
        args.append(sub)
        length += sub_length
    tree: Tree = (rng.choice(OPERATORS), args[0])
    for arg in args[1:]:
        tree = (tree, arg)
    return (tree, END), length


def tree_to_string(tree: Tree) -> str:
    """The released text form: every pair in parentheses, e.g. ``( ( ( [MAX 1 ) 7 ) ] )``."""
    if isinstance(tree, tuple):
        return f"( {tree_to_string(tree[0])} {tree_to_string(tree[1])} )"
    return str(tree)


def _apply(op: str, args: Sequence[int]) -> int:
    if op == MIN:
        return min(args)
    if op == MAX:
        return max(args)
    if op == MED:  # numpy's median (mean of the two middle values) truncated to int, as the official labels
        s = sorted(args)
        mid = len(s) // 2
        return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) // 2
    if op == SUM_MOD:
        return sum(args) % 10
    raise ValueError(f"unknown ListOps operator {op!r}")


def evaluate_listops(source: str) -> int:
    """The label of a ListOps expression in the released text form (parentheses are ignored).

    Raises ValueError on a malformed expression (unknown token, unbalanced ``]``, operator without arguments).
    """
    stack: list[tuple[str, list[int]]] = []
    result: list[int] = []
    for tok in source.split():
        if tok in ("(", ")"):
            continue
        if tok in OPERATORS:
            stack.append((tok, []))
        elif tok == END:
            if not stack:
                raise ValueError(f"ListOps: ']' without an open operator in {source[:80]!r}")
            op, args = stack.pop()
            if not args:
                raise ValueError(f"ListOps: {op} without arguments in {source[:80]!r}")
            (stack[-1][1] if stack else result).append(_apply(op, args))
        elif tok.isdigit() and len(tok) == 1:
            (stack[-1][1] if stack else result).append(int(tok))
        else:
            raise ValueError(f"ListOps: unknown token {tok!r} in {source[:80]!r}")
    if stack or len(result) != 1:
        raise ValueError(f"ListOps: not a single complete expression: {source[:80]!r}")
    return result[0]


def generate_listops(**params: Any) -> dict[str, list[tuple[str, int]]]:
    """Deterministic ListOps splits {"train", "val", "test"}: lists of (source, label), all sources distinct,
    cut in draw order from the distinct trees that fall in the length window."""
    spec = ListOpsSpec(**params)
    rng = random.Random(spec.seed)
    wanted = spec.num_train + spec.num_val + spec.num_test
    found: dict[str, int] = {}
    while len(found) < wanted:
        tree, length = generate_tree(rng, 1, spec.max_depth, spec.max_args)
        if spec.min_length < length < spec.max_length:
            source = tree_to_string(tree)
            if source not in found:
                found[source] = evaluate_listops(source)
    items = list(found.items())
    a, b = spec.num_train, spec.num_train + spec.num_val
    return {"train": items[:a], "val": items[a:b], "test": items[b:]}


def write_listops(out_dir: str | Path, **params: Any) -> Path:
    """Write ``basic_{train,val,test}.tsv`` (the released layout) and ``spec.json`` into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    spec = ListOpsSpec(**params)
    for split, rows in generate_listops(**asdict(spec)).items():
        with open_replacing(out_dir / f"basic_{split}.tsv", "w", sync=False, newline="") as f:
            writer = csv.writer(f, delimiter="\t")
            writer.writerow(["Source", "Target"])
            writer.writerows(rows)
    atomic_write_text(out_dir / "spec.json", json.dumps(asdict(spec), indent=2), sync=False)
    return out_dir


def listops_dir(cache_dir: str | Path, **params: Any) -> Path:
    """Where the set with ``params`` is cached: a name that changes with every parameter."""
    spec = asdict(ListOpsSpec(**params))
    digest = hashlib.sha1(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:10]
    return Path(cache_dir) / f"listops_{spec['min_length']}-{spec['max_length']}_seed{spec['seed']}_{digest}"


def ensure_listops(cache_dir: str | Path = ".cache/lra", **params: Any) -> Path:
    """The directory of a generated ListOps set, generated on first use (atomically: a final directory is complete)."""
    target = listops_dir(cache_dir, **params)
    return build_once(target, lambda tmp: write_listops(tmp, **params))


def tokenize_listops(source: str, scheme: Literal["lra", "alnum"] = "lra") -> list[int]:
    """Token ids of a ListOps source: ``"lra"`` keeps ``]`` as a token (the current official pipeline),
    ``"alnum"`` drops it (the first release's tokenizer). Unknown tokens raise KeyError."""
    ids = [LISTOPS_TOKEN_ID[t] for t in source.split() if t not in ("(", ")")]
    if scheme == "alnum":
        ids = [i for i in ids if i != LISTOPS_TOKEN_ID[END]]
    elif scheme != "lra":
        raise ValueError(f"unknown ListOps tokenizer {scheme!r}; use 'lra' or 'alnum'")
    return ids


# --- readers of the public files -----------------------------------------------------------------------------------

TASK_DIRS = {"listops": "listops-1000", "text": "aclImdb", "retrieval": "tsv_data", "image": "cifar-10-batches-py",
             "pathfinder": "pathfinder32/curv_baseline"}
NUM_CLASSES = {"listops": 10, "text": 2, "retrieval": 2, "image": 10, "pathfinder": 2}
BYTE_VOCAB = 257  # 0 = padding, byte/pixel b -> b + 1


def task_dir(task: str, root: str | Path) -> Path:
    """The task's directory under ``root`` (``root`` may also be that directory itself)."""
    if task not in TASK_DIRS:
        raise ValueError(f"unknown LRA task {task!r}; tasks: {LRA_TASKS}")
    root = Path(root)
    marker = {"listops": "basic_train.tsv", "text": "train", "retrieval": "new_aan_pairs.train.tsv",
              "image": "data_batch_1", "pathfinder": "metadata"}[task]
    if not (root / TASK_DIRS[task]).exists() and (root / marker).exists():
        return root
    return root / TASK_DIRS[task]


def required_paths(task: str, root: str | Path) -> list[Path]:
    """The files and directories the reader of ``task`` needs."""
    d = task_dir(task, root)
    if task == "listops":
        return [d / f"basic_{s}.tsv" for s in SPLITS]
    if task == "text":
        return [d / s / c for s in ("train", "test") for c in ("pos", "neg")]
    if task == "retrieval":
        return [d / f"new_aan_pairs.{s}.tsv" for s in ("train", "eval", "test")]
    if task == "image":
        return [d / f"data_batch_{i}" for i in range(1, 6)] + [d / "test_batch"]
    return [d / "imgs", d / "metadata"]


def lra_available(task: str, root: str | Path | None) -> bool:
    """Whether every public file ``task`` needs is under ``root``."""
    return root is not None and all(p.exists() for p in required_paths(task, root))


def _require(task: str, paths: Sequence[Path]) -> None:
    for p in paths:
        if not p.exists():
            raise DataNotFoundError(task, p, "see data/lra.py for the released layout")


def _checked(task: str, data_root: DataRoot, path: Path) -> Path:
    """``path`` if it lies inside the root and is a regular file; an ``LRAFormatError`` naming it otherwise (a link
    out of the root, a FIFO that would block the reader)."""
    try:
        data_root.inside(path)
        regular_file(path)
    except (OutsideRootError, NotRegularFileError) as err:
        raise LRAFormatError(task, path, str(err)) from None
    return path


class LRASplit(ABC):
    """One split of one task: ``split[i] -> (tokens, label)``; ``bad_lines`` lists input rows that were skipped."""

    task: str
    split: str

    def __init__(self) -> None:
        self.bad_lines: list[BadAnnotation] = []
        self.labels: list[int] = []

    def __len__(self) -> int:
        return len(self.labels)

    @abstractmethod
    def __getitem__(self, index: int) -> Item: ...

    def __iter__(self) -> Iterator[Item]:
        return (self[i] for i in range(len(self)))


class ListOpsSplit(LRASplit):
    """``basic_<split>.tsv``: tokenized at read time (uint8 ids)."""

    task = "listops"

    def __init__(self, root: str | Path, split: str, tokenizer: Literal["lra", "alnum"] = "lra") -> None:
        super().__init__()
        self.split = split
        path = task_dir("listops", root) / f"basic_{split}.tsv"
        _require("listops", [path])
        self.path = _checked("listops", DataRoot(root), path)
        self.tokens: list[np.ndarray] = []
        with open(path, newline="") as f:
            for line_number, line in enumerate(f, 1):
                line = line.rstrip("\r\n")
                if line_number == 1 and line.split("\t")[:2] == ["Source", "Target"]:
                    continue
                reason, ids, label = self._parse(line, tokenizer)
                if reason:
                    self.bad_lines.append(BadAnnotation(str(path), line_number, line[:200], reason))
                    continue
                self.tokens.append(np.asarray(ids, dtype=np.uint8))
                self.labels.append(label)

    @staticmethod
    def _parse(line: str, tokenizer: str) -> tuple[str, list[int], int]:
        parts = line.split("\t")
        if len(parts) != 2:
            return f"expected 2 tab-separated fields (Source, Target), got {len(parts)}", [], -1
        source, target = parts
        if not target.strip().isdigit() or not 0 <= int(target) <= 9:
            return f"Target {target!r} is not a digit 0-9", [], -1
        try:
            ids = tokenize_listops(source, tokenizer)
        except KeyError as e:
            return f"unknown token {e.args[0]!r}", [], -1
        if not ids:
            return "empty Source", [], -1
        return "", ids, int(target)

    def __getitem__(self, index: int) -> Item:
        return self.tokens[index], self.labels[index]


class TextSplit(LRASplit):
    """IMDB reviews as UTF-8 bytes; files are read when an item is requested."""

    task = "text"

    def __init__(self, root: str | Path, split: str) -> None:
        super().__init__()
        self.split = split
        d = task_dir("text", root) / ("train" if split == "train" else "test")  # LRA validates on the test set
        _require("text", [d / "pos", d / "neg"])
        data_root = DataRoot(root)
        self.files: list[Path] = []
        for label, cls in ((0, "neg"), (1, "pos")):
            for p in sorted((d / cls).glob("*.txt")):
                try:
                    size = regular_file(data_root.inside(p)).st_size
                except (OutsideRootError, NotRegularFileError, OSError) as err:  # OSError: a link to nothing
                    self.bad_lines.append(BadAnnotation(str(p), 0, "", str(err)))
                    continue
                if size == 0:  # a review cut to nothing would train as all padding, silently
                    self.bad_lines.append(BadAnnotation(str(p), 0, "", "empty review (zero-byte file)"))
                    continue
                self.files.append(p)
                self.labels.append(label)

    def __getitem__(self, index: int) -> Item:
        data = self.files[index].read_bytes()
        return np.frombuffer(data, dtype=np.uint8).astype(np.int64) + 1, self.labels[index]


class RetrievalSplit(LRASplit):
    """AAN document pairs (label, id1, id2, text1, text2); lines are re-read from their offsets on demand."""

    task = "retrieval"
    MAX_CHARS = 10_000  # the LRA pipeline encodes at most this many bytes of each text

    def __init__(self, root: str | Path, split: str) -> None:
        super().__init__()
        self.split = split
        name = {"train": "train", "val": "eval", "test": "test"}[split]
        self.path = task_dir("retrieval", root) / f"new_aan_pairs.{name}.tsv"
        _require("retrieval", [self.path])
        _checked("retrieval", DataRoot(root), self.path)
        self.offsets: list[int] = []
        with open(self.path, "rb") as f:
            offset = 0
            for line_number, raw in enumerate(f, 1):
                parts = raw.rstrip(b"\r\n").split(b"\t")
                reason = ""
                if len(parts) != 5:
                    reason = f"expected 5 tab-separated fields (label, id1, id2, text1, text2), got {len(parts)}"
                else:
                    try:
                        label = float(parts[0])
                    except ValueError:
                        label = -1.0
                    if label not in (0.0, 1.0):
                        reason = f"label {parts[0][:20]!r} is not 0 or 1"
                    elif not parts[3] or not parts[4]:  # an all-padding document: NaN logits off the fused path
                        reason = f"text{1 if not parts[3] else 2} is empty"
                if reason:
                    text = raw[:200].decode("utf-8", "replace")
                    self.bad_lines.append(BadAnnotation(str(self.path), line_number, text, reason))
                else:
                    self.offsets.append(offset)
                    self.labels.append(int(label))
                offset += len(raw)

    def __getitem__(self, index: int) -> Item:
        with open(self.path, "rb") as f:
            f.seek(self.offsets[index])
            parts = f.readline().rstrip(b"\r\n").split(b"\t")
        pair = tuple(np.frombuffer(t[: self.MAX_CHARS], dtype=np.uint8).astype(np.int64) + 1 for t in parts[3:5])
        return pair, self.labels[index]


def rgb_to_gray(images: np.ndarray) -> np.ndarray:
    """uint8 (..., 3) -> uint8 (...): ``tf.image.rgb_to_grayscale`` (ITU-R 601 weights, float, back to uint8)."""
    gray = (images.astype(np.float32) / 255.0) @ np.array([0.2989, 0.5870, 0.1140], dtype=np.float32)
    return np.clip(gray * 255.5, 0, 255).astype(np.uint8)  # tf's convert_image_dtype: scale by 255.5, truncate


# What the CIFAR-10 python batches hold: a dict of a uint8 array, lists and bytes, written by numpy's pickling of
# arrays (numpy 2 renamed numpy.core to numpy._core; protocol 5 writes arrays with _frombuffer, Python 3 bytes in
# protocols 0-2 with _codecs.encode). Nothing else is let in: unpickling can call any global it names.
_CIFAR_GLOBALS = frozenset({("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
                            ("numpy.core.multiarray", "scalar"), ("numpy.core.numeric", "_frombuffer"),
                            ("_codecs", "encode")})


class _CifarUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module.replace("numpy._core.", "numpy.core.", 1), name) not in _CIFAR_GLOBALS:
            raise pickle.UnpicklingError(f"refusing {module}.{name}: a CIFAR-10 batch holds only numpy arrays, "
                                         f"lists, bytes and a dict")
        return super().find_class(module, name)


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, list[int]]:
    """(uint8 (N, 3072) pixels, N labels) of one CIFAR-10 python batch; ``LRAFormatError`` naming the file if it
    is not one (truncated, another pickle, wrong shapes)."""
    try:
        with open(path, "rb") as f:
            batch = _CifarUnpickler(f, encoding="bytes").load()
        pixels = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = [int(v) for v in batch[b"labels"]]
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError, AttributeError) as err:
        reason = f"no {err} entry" if isinstance(err, KeyError) else f"{type(err).__name__}: {err}"
        raise LRAFormatError("image", path, f"not a CIFAR-10 python batch ({reason})") from None
    if pixels.ndim != 2 or pixels.shape[1] != 3072 or len(labels) != len(pixels):
        raise LRAFormatError("image", path, f"expected (N, 3072) pixels and N labels, got {pixels.shape} pixels "
                                            f"and {len(labels)} labels")
    return pixels, labels


class ImageSplit(LRASplit):
    """CIFAR-10 (python pickles) as 1024 grayscale pixels; train/val = first 90% / last 10% of the 50k."""

    task = "image"

    def __init__(self, root: str | Path, split: str) -> None:
        super().__init__()
        self.split = split
        d = task_dir("image", root)
        names = ["test_batch"] if split == "test" else [f"data_batch_{i}" for i in range(1, 6)]
        _require("image", [d / n for n in names])
        data_root = DataRoot(root)
        for n in names:
            _checked("image", data_root, d / n)
        data, labels = [], []
        for n in names:
            batch_data, batch_labels = _read_cifar_batch(d / n)
            data.append(batch_data)
            labels.extend(batch_labels)
        pixels = np.concatenate(data).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)  # (N, H, W, RGB)
        gray = rgb_to_gray(pixels).reshape(len(pixels), -1)
        if split != "test":
            cut = int(round(0.9 * len(gray)))
            sel = slice(0, cut) if split == "train" else slice(cut, None)
            gray, labels = gray[sel], labels[sel]
        self.pixels = gray
        self.labels = labels

    def __getitem__(self, index: int) -> Item:
        return self.pixels[index].astype(np.int64) + 1, self.labels[index]


class PathfinderSplit(LRASplit):
    """Pathfinder-32 (curv_baseline): metadata lines ``<img dir> <file> <?> <label> ...``; PNGs decoded on demand."""

    task = "pathfinder"

    def __init__(self, root: str | Path, split: str, seed: int = 0) -> None:
        super().__init__()
        self.split = split
        d = task_dir("pathfinder", root)
        _require("pathfinder", [d / "imgs", d / "metadata"])
        data_root = DataRoot(root)
        records: list[tuple[Path, int]] = []
        meta_files = sorted((d / "metadata").glob("*.npy"), key=lambda p: (len(p.stem), p.stem))
        for meta in meta_files:
            for line_number, line in enumerate(data_root.read_text(_checked("pathfinder", data_root, meta),
                                                                   errors="replace").splitlines(), 1):
                parts = line.split()
                if not parts:
                    continue
                try:
                    if len(parts) < 4:
                        raise ValueError("expected '<dir> <file> <n> <label 0/1> ...'")
                    row = validate_row(PathfinderLine, {"folder": parts[0], "file": parts[1], "label": parts[3]})
                    records.append((data_root.inside(d / row.folder / row.file), row.label))
                except ValueError as err:
                    self.bad_lines.append(BadAnnotation(str(meta), line_number, line[:200], str(err)))
        random.Random(seed).shuffle(records)  # the Nystromformer split: shuffle, then 80/10/10
        a, b = int(len(records) * 0.8), int(len(records) * 0.9)
        records = {"train": records[:a], "val": records[a:b], "test": records[b:]}[split]
        self.files = [p for p, _ in records]
        self.labels = [label for _, label in records]

    def __getitem__(self, index: int) -> Item:
        from PIL import Image

        path = self.files[index]
        try:  # one stat, as an existence check would take: a FIFO is refused here rather than waited on
            regular_file(path)
        except FileNotFoundError:
            raise DataNotFoundError("pathfinder", path) from None
        except NotRegularFileError as err:
            raise LRAFormatError("pathfinder", path, str(err)) from None
        # Not checked up front (that would open each of the ~200k PNGs before training): a broken one stops here.
        try:
            with Image.open(path) as img:
                pixels = np.asarray(img.convert("L"), dtype=np.int64).reshape(-1)
        except (OSError, SyntaxError, ValueError) as err:  # PIL: UnidentifiedImageError, truncated data
            raise LRAFormatError("pathfinder", path, f"unreadable image ({err})") from None
        return pixels + 1, self.labels[index]


def read_lra(task: str, root: str | Path, split: str, **options: Any) -> LRASplit:
    """One split ("train", "val", "test") of ``task`` from its public files under ``root``.

    Options: ``tokenizer`` ("lra" | "alnum") for ListOps, ``seed`` (split shuffle) for Pathfinder.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; splits: {SPLITS}")
    readers = {"listops": ListOpsSplit, "text": TextSplit, "retrieval": RetrievalSplit, "image": ImageSplit,
               "pathfinder": PathfinderSplit}
    if task not in readers:
        raise ValueError(f"unknown LRA task {task!r}; tasks: {LRA_TASKS}")
    return readers[task](root, split, **options)


__all__ = [
    "BYTE_VOCAB", "DataNotFoundError", "LISTOPS_VOCAB", "LRAFormatError", "LRASplit", "LRA_TASKS", "ListOpsSpec",
    "NUM_CLASSES", "SPLITS", "ensure_listops", "evaluate_listops", "generate_listops", "generate_tree",
    "lra_available", "read_lra", "required_paths", "rgb_to_gray", "tokenize_listops", "tree_to_string",
    "write_listops",
]
