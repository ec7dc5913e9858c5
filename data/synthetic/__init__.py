"""Small synthetic benchmark sets, written as real video files in real datasets' annotation formats: they stand in
for the papers' datasets where those are absent, and they separate the two biases the papers discuss (Motionformer,
Sec. 4): Kinetics is solvable from appearance, Something-Something V2 needs motion. One module per set declares
its spec and writer; this package registers them and caches generated sets by their parameters.

Generation is deterministic: each video is drawn from its own generator seeded by (seed, split, index), and the
encoders run single-threaded with bit-exact muxing, so the same parameters give the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, wait
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from data.atomic_write import atomic_write_text
from data.cache import build_once
from data.schemas import describe
from data.synthetic import appearance, motion, motion_pairs, objects, pose, verbnoun
from data.synthetic.pose import POSE_JOINTS, POSE_LIMBS
from data.synthetic.render import upsample_bilinear
from data.synthetic.spec import GenerationParams, Progress, SyntheticSpec
from data.synthetic.verbnoun import EPIC_CLASSES_HEADER, EPIC_CSV_HEADER

__all__ = [
    "EPIC_CLASSES_HEADER", "EPIC_CSV_HEADER", "GENERATOR_VERSION", "POSE_JOINTS", "POSE_LIMBS", "SET_VERSIONS",
    "SYNTHETIC_SETS", "GenerationParams", "SyntheticSpec", "ensure_synthetic", "ensure_synthetic_sets",
    "generate_synthetic", "synthetic_dir", "synthetic_params", "upsample_bilinear",
]

GENERATOR_VERSION = 3  # bump when the rendering changes: cached sets are keyed by it
SET_VERSIONS = {"synth_pose": 2}  # per-set bumps that leave the other sets' caches (and runs) valid

SYNTHETIC_SETS: dict[str, SyntheticSpec] = {
    spec.name: spec for spec in (appearance.SPEC, motion.SPEC, verbnoun.SPEC, pose.SPEC, objects.SPEC,
                                 motion_pairs.SPEC)
}


def generate_synthetic(
    name: str,
    root: Path,
    num_train: int,
    num_val: int,
    seed: int = 0,
    num_video_frames: int = 32,
    size: int = 40,
    fps: int = 15,
    num_classes: int | None = None,
    progress: Progress | None = None,
) -> Path:
    """Write a synthetic set (videos + annotations in its real dataset's format) into ``root``.

    Args:
        name: a key of ``SYNTHETIC_SETS``.
        root: output directory (created).
        num_train: training videos (synth_verbnoun: training action segments, in videos of 3-5; the
            last of a split holds what is left).
        num_val: validation videos (synth_verbnoun: validation action segments).
        seed: everything is a function of it.
        num_video_frames: frames per video (synth_verbnoun: per action segment; idle gaps come on top).
        size: frame height and width in pixels (even).
        fps: frame rate written to the files (synth_pose writes JPEG frames, which have none).
        num_classes: use the first k classes of the set; None = all (synth_verbnoun: must be None).
        progress: called with the samples just written (videos; synth_verbnoun: action segments).
    """
    if name not in SYNTHETIC_SETS:
        raise ValueError(f"unknown synthetic set {name!r}; known: {sorted(SYNTHETIC_SETS)}")
    spec = SYNTHETIC_SETS[name]
    if spec.verb_names and num_classes is not None:
        raise ValueError(f"{name}: the verb and noun classes are fixed; num_classes must be None")
    num_classes = num_classes or spec.num_classes
    if not 2 <= num_classes <= spec.num_classes:
        raise ValueError(f"{name}: num_classes must be in [2, {spec.num_classes}], got {num_classes}")
    if size % 2:
        raise ValueError(f"size must be even (yuv420p), got {size}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    params = GenerationParams(num_train=num_train, num_val=num_val, seed=seed, num_classes=num_classes, size=size,
                              num_video_frames=num_video_frames, fps=fps)
    spec.write(root, params, progress or (lambda done: None))
    # Provenance, beside (not part of) the imitated format.
    meta = {"name": name, "generator_version": GENERATOR_VERSION, "set_version": SET_VERSIONS.get(name, 1),
            **asdict(params), "class_names": list(spec.class_names[:num_classes]), "mimics": spec.mimics}
    if spec.verb_names:
        meta.update(verb_names=list(spec.verb_names), noun_names=list(spec.noun_names))
    atomic_write_text(root / "synthetic.json", json.dumps(meta, indent=1), sync=False)
    return root


_PARAM_DEFAULTS = dict(num_train=400, num_val=200, seed=0, num_video_frames=32, size=40, fps=15, num_classes=None)
MAX_SAMPLES = 100_000  # per split: 100x the largest set a table generates; more is no stand-in but a disk filler
MAX_BYTES = 256 * 2**30  # the decoded pixels of a whole set (samples x frames x size^2 x 3): its disk and time scale


class SyntheticSize(BaseModel):
    """The declared bounds of a generated set's parameters, checked when a run's options are resolved (as the seed
    count is): a size past them would fill the disk or the memory long after the command started."""

    model_config = ConfigDict(extra="forbid", strict=True)

    num_train: Annotated[int, Field(ge=1, le=MAX_SAMPLES)]
    num_val: Annotated[int, Field(ge=1, le=MAX_SAMPLES)]
    seed: Annotated[int, Field(ge=0, le=2**32 - 1)]
    num_video_frames: Annotated[int, Field(ge=1, le=1024)]
    size: Annotated[int, Field(ge=8, le=1024)]
    fps: Annotated[int, Field(ge=1, le=1000)]
    num_classes: Annotated[int, Field(ge=1, le=10_000)] | None


def synthetic_params(**params) -> dict:
    """``params`` completed with the defaults of ``ensure_synthetic``; unknown names raise TypeError, and values
    outside ``SyntheticSize``'s bounds or past ``MAX_BYTES`` in all a ValueError naming the field."""
    unknown = set(params) - set(_PARAM_DEFAULTS)
    if unknown:
        raise TypeError(f"unknown synthetic parameters {sorted(unknown)}; known: {sorted(_PARAM_DEFAULTS)}")
    full = {**_PARAM_DEFAULTS, **params}
    try:
        SyntheticSize.model_validate(full)
    except ValidationError as err:
        raise ValueError(f"synthetic_params: {describe(err)}") from None
    pixels = (full["num_train"] + full["num_val"]) * full["num_video_frames"] * full["size"] ** 2 * 3
    if pixels > MAX_BYTES:
        samples = full["num_train"] + full["num_val"]
        raise ValueError(f"synthetic_params: {samples} samples of {full['num_video_frames']} frames of "
                         f"{full['size']}x{full['size']} are {pixels / 2**30:.0f} GiB of pixels, past the bound of "
                         f"{MAX_BYTES // 2**30} GiB")
    return full


def synthetic_dir(name: str, cache_dir: Path = Path(".cache/synthetic"), **params) -> Path:
    """Where ``ensure_synthetic`` keeps a set: ``cache_dir/<name>-<hash of the parameters and generator>``."""
    version = {"generator_version": GENERATOR_VERSION}
    if name in SET_VERSIONS:  # absent for a set at version 1, so its key (and cache) is unchanged
        version["set_version"] = SET_VERSIONS[name]
    key = json.dumps({**version, **synthetic_params(**params)}, sort_keys=True)
    return Path(cache_dir) / f"{name}-{hashlib.sha1(key.encode()).hexdigest()[:10]}"


def ensure_synthetic(name: str, cache_dir: Path = Path(".cache/synthetic"), progress: Progress | None = None,
                     **params) -> Path:
    """The root of a synthetic set, generated on first use and reused afterwards.

    Generation writes into a temporary sibling directory and renames it into place, so a directory at the final
    path is always complete; when several processes race, the first rename wins and the others discard theirs.

    Args:
        name: a key of ``SYNTHETIC_SETS``.
        cache_dir: parent directory of cached sets.
        progress: called with the samples just written, while the set is generated.
        **params: ``generate_synthetic`` parameters (defaults: 400 train, 200 val videos, seed 0, 32 frames,
            40x40 px, 15 fps, all classes).
    """
    target = synthetic_dir(name, cache_dir, **params)
    return build_once(target, lambda tmp: generate_synthetic(name, tmp, progress=progress,
                                                             **synthetic_params(**params)))


def ensure_synthetic_sets(sets: Sequence[tuple[str, dict[str, Any]]], jobs: int = 1,
                          echo: Callable[[str], None] = print, cache_dir: Path = Path(".cache/synthetic"),
                          every_s: float = 10.0) -> list[Path]:
    """Every (name, params) set generated that is not cached yet, ``jobs`` sets at a time in worker processes,
    saying what is generated and, every ``every_s`` seconds, how far each set is; the roots, in order."""
    wanted = list(dict.fromkeys((name, json.dumps(params, sort_keys=True)) for name, params in sets))
    missing = [(name, json.loads(params)) for name, params in wanted
               if not synthetic_dir(name, cache_dir, **json.loads(params)).is_dir()]
    if missing:
        total = {name: _samples(params) for name, params in missing}
        echo(f"generating {len(missing)} data set(s) into {cache_dir}/ (once; later runs read the cache): "
             + ", ".join(f"{name} ({total[name]} samples)" for name, _ in missing))
        start = time.perf_counter()
        if jobs > 1 and len(missing) > 1:
            _generate_in_processes(missing, min(jobs, len(missing)), cache_dir, echo, every_s, start)
        else:
            for name, params in missing:
                report = _progress_line(name, total[name], echo, every_s, start)
                ensure_synthetic(name, cache_dir, progress=report, **params)
                echo(f"    {name}: done ({time.perf_counter() - start:.0f}s)")
    return [synthetic_dir(name, cache_dir, **json.loads(params)) for name, params in wanted]


def _samples(params: dict[str, Any]) -> int:
    full = synthetic_params(**params)
    return full["num_train"] + full["num_val"]


def _progress_line(name: str, total: int, echo: Callable[[str], None], every_s: float, start: float) -> Progress:
    """A progress callback that echoes "name: k/total samples" at most every ``every_s`` seconds."""
    state = {"done": 0, "said": time.perf_counter()}

    def report(done: int) -> None:
        state["done"] += done
        now = time.perf_counter()
        if now - state["said"] >= every_s and state["done"] < total:
            state["said"] = now
            echo(f"    {name}: {state['done']}/{total} samples ({now - start:.0f}s)")
    return report


def _generate_in_processes(missing: list[tuple[str, dict[str, Any]]], jobs: int, cache_dir: Path,
                           echo: Callable[[str], None], every_s: float, start: float) -> None:
    """The sets in ``jobs`` spawned processes; their progress comes back through a queue and is echoed here."""
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager, ProcessPoolExecutor(jobs, mp_context=context) as pool:
        queue = manager.Queue()
        pending = {pool.submit(_generate_one, name, params, cache_dir, queue): name for name, params in missing}
        done_so_far = dict.fromkeys(pending.values(), 0)
        total = {name: _samples(params) for name, params in missing}
        said = time.perf_counter()
        while pending:
            finished, _ = wait(pending, timeout=0.5)
            while not queue.empty():
                name, count = queue.get()
                done_so_far[name] += count
            for future in finished:
                future.result()  # a failed set stops here with its error
                echo(f"    {pending.pop(future)}: done ({time.perf_counter() - start:.0f}s)")
            if pending and time.perf_counter() - said >= every_s:
                said = time.perf_counter()
                echo("    " + ", ".join(f"{name}: {done_so_far[name]}/{total[name]}" for name in pending.values())
                     + f" samples ({said - start:.0f}s)")


def _generate_one(name: str, params: dict[str, Any], cache_dir: Path, queue: Any) -> None:
    pending = [0]

    def report(done: int) -> None:  # a queue message per 20 samples: cheap next to encoding them
        pending[0] += done
        if pending[0] >= 20:
            queue.put((name, pending[0]))
            pending[0] = 0
    ensure_synthetic(name, cache_dir, progress=report, **params)
