"""Golden files of CAST's data pipeline (github.com/KHU-VLL/CAST, checked out outside this repository), made by
running the authors' dataset classes, transforms and test merge:

    python -m tools.pipeline_golden.cast --official-code DIR

writes ``tests/golden/pipelines/cast/`` (read by tests/parity/test_cast_pipeline.py):

- ``videos/*.mp4``: small videos written here with PyAV (odd frame counts; 25, 29.97, 30 and 60 fps; a video shorter
  than one K400 clip, an SSv2 video and an EK100 segment with fewer frames than segments; landscape 4:3, 16:9 and 5:3
  and portrait 2:3 frames);
- ``test_views.json``: the authors' test views (``dataset/datasets.py`` ``build_dataset(is_train=False,
  test_mode=True)``, then ``__getitem__`` of every view) with the arguments of ``scripts/{kinetics/k400,ssv2/ssv2,
  ek100/ek100}.sh``: the frame indices of every temporal view and the box of every spatial view, for frame counts
  1 to 1000 at the paper's 224 (decoding replaced by a reader that returns each frame's index and coordinates as
  pixel values: the authors' slicing and normalisation run unchanged and the result is decoded back, exactly), the
  resized size and the three boxes for 14 frame shapes at short side 224 (``data_resize`` replaced by one that
  keeps the authors' size and numbers the pixels), and, for the committed videos (decoded with decord, the authors'
  reader) at a small short side, the indices, the boxes, the frame count and the normalisation;
- ``pixels.npz``: for each committed video, decord's decoded frames (the first, middle and last of the test
  buffer) and the output of the authors' ``data_resize`` (cv2 bilinear on uint8) for the whole buffer; every view
  the authors' ``__getitem__`` returned was checked here to equal the normalised slice of this buffer at the
  recorded view;
- ``merge.json``: random logits of duplicated and shuffled views written in the format of ``final_test`` over two
  "ranks", and what ``merge`` / ``compute_video`` (``engine_for_onemodel.py``; ``engine_for_compomodel.py`` for
  verb / noun / action) made of them;
- ``train.json`` and ``train_draws.npz``: the training side (``tools/pipeline_golden/cast_train.py``
  ``training``): the scripts' training arguments, RandAugment's configuration, the flip flags, 10,000 resized-crop
  boxes and mixup lambdas, one resized crop's pixels and ``mixup_target``'s soft targets;
- ``rand_augment.json`` and ``rand_augment.npz``: their RandAugment on one 3-frame uint8 clip, for the scripts'
  config and Table 4's m9 (``cast_train.py`` ``rand_augment_cases``; ``--only rand_augment`` writes these two files
  alone).

Shims, all at run time (none in the checkout): ``multiprocessing.Pool`` replaced by an in-process map for
``merge``; those of loading the authors' code (``numpy.lib.function_base``, ``np.float``, ``tensorboardX``,
``torch._six``, ``get_args`` run from its source) are described in ``cast_common.py``, RandAugment's posterize in
``cast_train.py``. The maker needs ``decord``, ``cv2`` and ``pandas`` (the authors' code does); the test needs none
of them.
"""

from __future__ import annotations

import json
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch

from data.atomic_write import atomic_write_bytes, atomic_write_text, copy_file, replacing, save_arrays
from data.command_line import OneLineParser, path
from tools.pipeline_golden.cast_common import DATA_SET, REPO, frame_pixels, load_official, module_of, official_args
from tools.pipeline_golden.cast_train import rand_augment_cases, training

OUT = REPO / "tests" / "golden" / "pipelines" / "cast"
REPOSITORY = "https://github.com/KHU-VLL/CAST"
SMALL_SIDE = 12  # short side and crop of the committed videos' pixel views (the paper's 224 elsewhere)

# name: (dataset, frames, height, width, fps); every file is a few KB. decord 0.6.0 fails on some tiny widths
# (48 x 28 and 24 x 40 frames: "DECORDArrayCopyFromTo: The size must exactly match"), hence these sizes.
VIDEOS = {
    "k400_odd_25fps": ("K400", 137, 24, 32, Fraction(25)),
    "k400_ntsc_2997fps": ("K400", 91, 36, 64, Fraction(30000, 1001)),
    "k400_short_60fps": ("K400", 45, 24, 32, Fraction(60)),
    "k400_portrait_30fps": ("K400", 101, 48, 32, Fraction(30)),
    "ssv2_odd_12fps": ("SSV2", 47, 24, 40, Fraction(12)),
    "ssv2_short_12fps": ("SSV2", 11, 24, 32, Fraction(12)),
    "ek_segment_60fps": ("EPIC", 121, 36, 64, Fraction(60)),
    "ek_short_50fps": ("EPIC", 9, 36, 64, Fraction(50)),
}
FRAME_COUNTS = [1, 2, 3, 4, 7, 11, 15, 16, 17, 31, 32, 33, 47, 48, 49, 60, 61, 63, 64, 65, 66, 67, 68, 69, 75, 79,
                80, 81, 100, 127, 128, 129, 137, 250, 251, 299, 300, 301, 333, 500, 997, 1000]
SHAPES = [(240, 320), (256, 340), (360, 640), (480, 640), (720, 1280), (1080, 1920), (256, 454), (480, 360),
          (640, 360), (224, 398), (224, 224), (300, 301), (101, 181), (226, 401)]


# ---- videos --------------------------------------------------------------------------------------------------


def write_video(path: Path, frames: int, height: int, width: int, fps: Fraction) -> None:
    import av

    with replacing(path) as tmp, av.open(str(tmp), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "28", "preset": "veryslow"}
        for t in range(frames):
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame_pixels(t, height, width), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


# ---- readers that number the pixels ----------------------------------------------------------------------------


class _Batch:
    def __init__(self, array: np.ndarray) -> None:
        self.array = array

    def asnumpy(self) -> np.ndarray:
        return self.array


class NumberingReader:
    """decord's ``VideoReader`` as the loaders use it (len, seek, get_batch), for a video of ``SIZES[fname]`` =
    (frames, height, width): pixel (y, x) of frame i is (i, y, x), int32."""

    SIZES: dict[str, tuple[int, int, int]] = {}
    CALLS: list[list[int]] = []

    def __init__(self, fname: str, *args: Any, **kwargs: Any) -> None:
        self.frames, self.height, self.width = self.SIZES[fname]

    def __len__(self) -> int:
        return self.frames

    def seek(self, _: int) -> None:
        pass

    def get_batch(self, indices: list[int]) -> _Batch:
        indices = [int(i) for i in indices]
        self.CALLS.append(indices)
        ids = np.array(indices)
        if self.height * self.width > 4096:  # only the index is read (renumbering_resize): a view, not 400 MB
            return _Batch(np.broadcast_to(ids[:, None, None, None], (len(ids), self.height, self.width, 3)))
        return _Batch(numbered(ids, self.height, self.width))


def numbered(frame_ids: np.ndarray, height: int, width: int) -> np.ndarray:
    out = np.empty((len(frame_ids), height, width, 3), dtype=np.int32)
    out[..., 0] = frame_ids[:, None, None]
    out[..., 1] = np.arange(height)[None, :, None]
    out[..., 2] = np.arange(width)[None, None, :]
    return out


def renumbering_resize(real_resize: Any) -> Any:
    """``data_resize`` keeping the authors' output size (their resize run on one blank frame) and numbering the
    resized pixels: (frame index, y, x) in the resized frame."""
    def resize(buffer: np.ndarray) -> np.ndarray:
        height, width = buffer.shape[1:3]
        size = real_resize([np.zeros((height, width, 3), dtype=np.uint8)])[0].shape[:2]
        return numbered(np.asarray(buffer)[:, 0, 0, 0], *size)
    return resize


def unnormalise(video: torch.Tensor) -> np.ndarray:
    """The authors' input (C, T, H, W), normalised with ImageNet's statistics, back to the numbers it was made from
    (exact: the values are integers below 2 ** 15)."""
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1, 1)
    values = (video.double() * std.double() + mean.double()) * 255
    rounded = values.round()
    assert (values - rounded).abs().max() < 0.05, "normalisation is not ImageNet's"
    return rounded.long().numpy()


def decode_view(video: torch.Tensor) -> dict[str, Any]:
    """Frame indices and box of one view of numbered pixels."""
    c = unnormalise(video)  # (3, T, h, w): frame, y, x
    frames = c[0, :, 0, 0].tolist()
    assert (c[0] == np.array(frames)[:, None, None]).all()
    top, left = int(c[1, 0, 0, 0]), int(c[2, 0, 0, 0])
    height, width = c.shape[2:]
    assert (c[1, :, :, 0] == top + np.arange(height)[None, :]).all()
    assert (c[2, :, 0, :] == left + np.arange(width)[None, :]).all()
    return {"frames": frames, "box": [top, left, int(height), int(width)]}


def numbered_dataset(mods: dict[str, Any], folder: Path, key: str, work: Path, sizes: dict[str, tuple[int, int, int]],
                     side: int, resize: bool) -> Any:
    """The authors' test dataset of ``key`` over numbered videos named in ``sizes``, short side and crop ``side``."""
    names = list(sizes)
    anno = work / key / "anno"
    root = work / key / "data"
    (root / "val").mkdir(parents=True, exist_ok=True)
    anno.mkdir(parents=True, exist_ok=True)
    delimiter = "," if key == "EPIC" else " "
    rows = [f"{n}{delimiter}1{delimiter}2" if key == "EPIC" else f"{n}.mp4 1" for n in names]
    atomic_write_text(anno / "val.csv", "\n".join(rows) + "\n")
    NumberingReader.SIZES.clear()
    for n in names:
        path = (root / "val" / f"{n}.mp4") if key == "K400" else root / f"{n}.mp4"
        atomic_write_bytes(path, b"\0" * 2048)  # the loaders skip files under 1 KB
        NumberingReader.SIZES[str(path)] = sizes[n]
    for module in ("dataset.kinetics", "dataset.ssv2", "dataset.epic"):
        mods[module].VideoReader = NumberingReader
    args = official_args(folder, key, data_path=str(root), anno_path=str(anno), input_size=side,
                         short_side_size=side)
    dataset, _ = mods["dataset.datasets"].build_dataset(is_train=False, test_mode=True, args=args)
    if resize:
        dataset.data_resize = renumbering_resize(dataset.data_resize)
    else:
        dataset.data_resize = lambda buffer: buffer
    return dataset


def views_of(dataset: Any, names: list[str], key: str) -> dict[str, dict[str, Any]]:
    """Every test view of every video: {name: {"views": {(chunk, split): view}}}."""
    out: dict[str, dict[str, Any]] = {n: {} for n in names}
    for index in range(len(dataset)):
        item = dataset[index]
        video, chunk, split = item[0], item[3], item[4]
        name = dataset.test_dataset[index]
        name = name if key == "EPIC" else name.rsplit(".", 1)[0]
        out[name][f"{chunk},{split}"] = decode_view(video)
    return out


# ---- test views --------------------------------------------------------------------------------------------


def test_views(mods: dict[str, Any], folder: Path, work: Path) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key in DATA_SET:
        # frame indices: square frames of the crop's side (no resize), every frame count
        sizes = {f"n{n}": (n, 2, 2) for n in FRAME_COUNTS}
        dataset = numbered_dataset(mods, folder, key, work / "counts", sizes, side=2, resize=False)
        views = views_of(dataset, list(sizes), key)
        result.setdefault("frame_indices", {})[key] = {
            str(n): [views[f"n{n}"][f"{c},0"]["frames"] for c in range(dataset.test_num_segment)]
            for n in FRAME_COUNTS}
    # boxes at the paper's short side: 4 frames (K400 pads them to one clip), the authors' resize size
    sizes = {f"s{h}x{w}": (4, h, w) for h, w in SHAPES}
    dataset = numbered_dataset(mods, folder, "K400", work / "shapes", sizes, side=224, resize=True)
    views = views_of(dataset, list(sizes), "K400")
    result["boxes_224"] = {}
    for (h, w), name in zip(SHAPES, sizes):
        resized = mods["util_tools.video_transforms"].Resize(224, interpolation="bilinear")(
            [np.zeros((h, w, 3), dtype=np.uint8)])[0].shape[:2]
        result["boxes_224"][f"{h}x{w}"] = {"resized": list(resized),
                                           "boxes": [views[name][f"0,{s}"]["box"] for s in range(3)]}
    return result


def video_views(mods: dict[str, Any], folder: Path, work: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The committed videos: decord's frame count, the authors' views (numbered run at the video's size), their
    decoded and resized buffers, and a check that their real outputs are those buffers' slices."""
    import decord

    records, arrays = {}, {}
    for key in DATA_SET:
        names = [n for n, v in VIDEOS.items() if v[0] == key]
        lengths = {n: len(decord.VideoReader(str(OUT / "videos" / f"{n}.mp4"), num_threads=1)) for n in names}
        sizes = {n: (lengths[n], VIDEOS[n][2], VIDEOS[n][3]) for n in names}
        dataset = numbered_dataset(mods, folder, key, work / "numbered", sizes, side=SMALL_SIDE, resize=True)
        views = views_of(dataset, names, key)
        # the real run: decord on the committed files, the real resize, recorded
        real = real_dataset(mods, folder, key, work / "real", names)
        for name in names:
            calls, resized = [], []
            real.data_resize = recording(real.data_resize, resized)
            mods[module_of(key)].VideoReader = recording_reader(calls)
            outputs = {}
            for index in range(len(real)):
                if name_of(real.test_dataset[index], key) == name:
                    item = real[index]
                    outputs[f"{item[3]},{item[4]}"] = item[0]
            decoded = calls[0][1]
            buffer = resized[0]
            assert all(np.array_equal(r, buffer) for r in resized)
            for view, out in outputs.items():  # the real output is the numbered run's slice of the buffer
                v = views[name][view]
                top, left, h, w = v["box"]
                expected = buffer[buffer_positions(calls[0][0], v["frames"], key, view)][:, top:top + h,
                                                                                        left:left + w]
                made = torch.from_numpy(expected.transpose(3, 0, 1, 2).astype(np.float64)).float() / 255
                mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1, 1)
                std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1, 1)
                assert torch.equal((made - mean) / std, out), (name, view)
            for view, v in views[name].items():
                v["positions"] = buffer_positions(calls[0][0], v["frames"], key, view)
            records[name] = {"dataset": key, "decord_frames": lengths[name], "fps": str(VIDEOS[name][4]),
                             "size": list(VIDEOS[name][2:4]), "buffer_indices": calls[0][0],
                             "resized": list(buffer.shape[1:3]), "views": views[name]}
            arrays[f"{name}/decoded"] = decoded[[0, len(decoded) // 2, -1]]
            arrays[f"{name}/resized"] = buffer
    return records, arrays


def buffer_positions(buffer_indices: list[int], frames: list[int], key: str, view: str) -> list[int]:
    """Positions in the test buffer of a view's frames, as the authors slice it (K400: consecutive entries from
    temporal_start; SSv2 / EK100: every other entry from the chunk)."""
    chunk = int(view.split(",")[0])
    if key == "K400":
        start = next(p for p in range(len(buffer_indices)) if buffer_indices[p:p + len(frames)] == frames)
        return list(range(start, start + len(frames)))
    return list(range(chunk, len(buffer_indices), 2))


def name_of(sample: str, key: str) -> str:
    return sample if key == "EPIC" else sample.rsplit(".", 1)[0]


def real_dataset(mods: dict[str, Any], folder: Path, key: str, work: Path, names: list[str]) -> Any:

    anno, root = work / key / "anno", work / key / "data"
    (root / "val").mkdir(parents=True, exist_ok=True)
    anno.mkdir(parents=True, exist_ok=True)
    rows = [f"{n},1,2" if key == "EPIC" else f"{n}.mp4 1" for n in names]
    atomic_write_text(anno / "val.csv", "\n".join(rows) + "\n")
    for n in names:
        copy_file(OUT / "videos" / f"{n}.mp4", (root / "val" if key == "K400" else root) / f"{n}.mp4")
    args = official_args(folder, key, data_path=str(root), anno_path=str(anno), input_size=SMALL_SIDE,
                         short_side_size=SMALL_SIDE)
    return mods["dataset.datasets"].build_dataset(is_train=False, test_mode=True, args=args)[0]


def recording(resize: Any, out: list) -> Any:
    inner = getattr(resize, "inner", resize)

    def record(buffer: Any) -> Any:
        result = inner(buffer)
        out.append(np.stack(result, 0) if isinstance(result, list) else result)
        return result
    record.inner = inner
    return record


def recording_reader(calls: list) -> Any:
    import decord

    class Reader(decord.VideoReader):
        def get_batch(self, indices: Any) -> Any:
            batch = super().get_batch(indices)
            calls.append(([int(i) for i in indices], batch.asnumpy()))
            return batch
    return Reader


# ---- view combination -----------------------------------------------------------------------------------------


def merge_case(mods: dict[str, Any], work: Path, composition: bool) -> dict[str, Any]:
    """Random logits of 5 videos x (5 x 3 or 2 x 3) views over two ranks' files, one video's views repeated (a
    DistributedSampler's padding) and every file shuffled, through the authors' merge."""
    import multiprocessing

    rng = np.random.default_rng(7 if composition else 3)
    videos, chunks, classes = 5, (2 if composition else 5), {"verb": 7, "noun": 9} if composition else 12
    logits, labels = {}, {}
    rows = []
    for v in range(videos):
        labels[v] = [int(rng.integers(7)), int(rng.integers(9))] if composition else int(rng.integers(12))
        for c in range(chunks):
            for s in range(3):
                if composition:
                    logits[(v, c, s)] = [rng.normal(size=7).round(4).tolist(), rng.normal(size=9).round(4).tolist()]
                else:
                    logits[(v, c, s)] = rng.normal(size=12).round(4).tolist()
                rows.append((v, c, s))
    rows += rows[:7]  # padding repeats
    order = rng.permutation(len(rows))
    rows = [rows[i] for i in order]
    eval_dir = work / ("compo" if composition else "one")
    eval_dir.mkdir(parents=True, exist_ok=True)
    for rank, part in enumerate((rows[: len(rows) // 2], rows[len(rows) // 2:])):
        lines = ["tensor(0.), tensor(0.)\n"]
        for v, c, s in part:
            if composition:
                verb, noun = labels[v]
                noun_logits, verb_logits = logits[(v, c, s)][1], logits[(v, c, s)][0]
                lines.append(f"video{v} {noun_logits} {verb_logits} {verb * 1000 + noun} {noun} {verb} {c} {s}\n")
            else:
                lines.append(f"video{v} {logits[(v, c, s)]} {labels[v]} {c} {s}\n")
        atomic_write_text(eval_dir / f"{rank}.txt", "".join(lines))
    engine = mods["engine_for_compomodel" if composition else "engine_for_onemodel"]
    seen: list[Any] = []
    original = engine.compute_video

    def compute_video(lst: list) -> list:
        out = original(lst)
        seen.append((lst, out))
        return out

    class SerialPool:
        def __init__(self, *_: Any) -> None:
            pass

        def map(self, fn: Any, items: list) -> list:
            return [fn(i) for i in items]

    saved_pool, engine.compute_video = multiprocessing.Pool, compute_video
    multiprocessing.Pool = SerialPool
    try:
        totals = engine.merge(str(eval_dir), 2)
    finally:
        multiprocessing.Pool, engine.compute_video = saved_pool, original
    per_video = {}
    for lst, out in seen:
        name = lst[1].strip()
        if composition:
            per_video[name] = {"views": len(lst[2]), "noun": np.mean(lst[2], axis=0).tolist(),
                               "verb": np.mean(lst[3], axis=0).tolist(), "pred_noun": int(out[0]),
                               "pred_verb": int(out[1]), "top1_action": out[2], "top5_action": out[3],
                               "top1_noun": out[4], "top1_verb": out[5], "top5_noun": out[6], "top5_verb": out[7]}
        else:
            per_video[name] = {"views": len(lst[2]), "probs": np.mean(lst[2], axis=0).tolist(), "pred": int(out[0]),
                               "top1": out[1], "top5": out[2]}
    names = ("top1_action", "top5_action", "top1_noun", "top5_noun", "top1_verb", "top5_verb") if composition \
        else ("top1", "top5")
    return {"classes": classes, "views_per_video": chunks * 3,
            "rows": [[int(v), int(c), int(s)] for v, c, s in rows],
            "logits": {f"{v},{c},{s}": x for (v, c, s), x in logits.items()},
            "labels": {str(v): y for v, y in labels.items()}, "per_video": per_video,
            "totals": dict(zip(names, [float(t) for t in totals]))}


# ---- main -----------------------------------------------------------------------------------------------------


def main() -> None:
    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--official-code", required=True, type=path("a folder"), help="a checkout of KHU-VLL/CAST")
    parser.add_argument("--work", type=path("a folder"), default=Path("/tmp/cast_pipeline_golden"))
    parser.add_argument("--only", choices=["rand_augment"], help="write only these golden files")
    cli = parser.parse_args()
    import shutil
    import subprocess

    shutil.rmtree(cli.work, ignore_errors=True)
    mods = load_official(cli.official_code)
    commit = subprocess.run(["git", "-C", str(cli.official_code), "rev-parse", "HEAD"], capture_output=True,
                            text=True, check=True).stdout.strip()
    command = "python -m tools.pipeline_golden.cast " + " ".join(sys.argv[1:])
    official = {"repository": REPOSITORY, "commit": commit, "command": command,
                "shims": ["np.float = float (merge)", "a numpy.lib.function_base module holding disp (kinetics.py)",
                          "multiprocessing.Pool -> in-process map (merge)",
                          "empty tensorboardX and torch._six modules (util_tools/utils.py)",
                          "run_bidirection.get_args run from its source, flags of the scripts less "
                          "--enable_deepspeed and the paths"],
                "decord": __import__("decord").__version__, "cv2": __import__("cv2").__version__}
    ra_record, ra_arrays = rand_augment_cases(mods, cli.official_code)
    ra_record["official"] = {**official, "pillow": __import__("PIL").__version__, "called": (
        "dataset/{kinetics,ssv2,epic}.py:_aug_frame (spatial_sampling spied: its input, un-normalised), i.e. "
        "util_tools/video_transforms.py:create_random_augment -> util_tools/rand_augment.py:rand_augment_transform "
        "on the list of PIL frames; rand_augment.AugmentOp.__call__ spied (op, applied, level)")}
    atomic_write_text(OUT / "rand_augment.json", json.dumps(ra_record, indent=1) + "\n")
    save_arrays(OUT / "rand_augment.npz", compressed=True, **ra_arrays)
    if cli.only == "rand_augment":
        return
    (OUT / "videos").mkdir(parents=True, exist_ok=True)
    for name, (_, frames, height, width, fps) in VIDEOS.items():
        write_video(OUT / "videos" / f"{name}.mp4", frames, height, width, fps)
    views = test_views(mods, cli.official_code, cli.work)
    records, arrays = video_views(mods, cli.official_code, cli.work)
    views["videos"] = records
    views["official"] = {**official, "called": "dataset/datasets.py:build_dataset(is_train=False, test_mode=True, "
                         "args) with run_bidirection(_compo).py's get_args on the scripts' flags; __getitem__ of "
                         "every index; decoding by dataset.{kinetics,ssv2,epic}.VideoReader (decord for the "
                         "committed videos, a numbering reader elsewhere)",
                         "small_side": SMALL_SIDE, "normalise": {"mean": [0.485, 0.456, 0.406],
                                                                 "std": [0.229, 0.224, 0.225]}}
    atomic_write_text(OUT / "test_views.json", json.dumps(views, separators=(",", ":")) + "\n")
    save_arrays(OUT / "pixels.npz", compressed=True, **arrays)
    merge = {"one": merge_case(mods, cli.work / "merge", False), "compo": merge_case(mods, cli.work / "merge", True),
             "official": {**official, "called": "engine_for_onemodel.py:merge / engine_for_compomodel.py:merge "
                          "(compute_video spied) on files written as final_test writes them"}}
    atomic_write_text(OUT / "merge.json", json.dumps(merge, separators=(",", ":")) + "\n")
    train, draws = training(mods, cli.official_code)
    train["official"] = {**official, "called": "run_bidirection(_compo).py:get_args; dataset/*.py:_aug_frame "
                         "(spatial_sampling spied); util_tools/video_transforms.py:create_random_augment, "
                         "_get_param_spatial_crop, random_resized_crop; util_tools/mixup.py:Mixup._params_per_batch, "
                         "mixup_target"}
    atomic_write_text(OUT / "train.json", json.dumps(train, indent=1, default=str) + "\n")
    save_arrays(OUT / "train_draws.npz", compressed=True, **draws)
    total = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"wrote {OUT}: {total / 1024:.0f} KB")


if __name__ == "__main__":
    main()
