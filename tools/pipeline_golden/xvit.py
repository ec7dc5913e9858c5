"""Golden files of X-ViT's data pipeline and view combination, made by the authors' own code.

    python -m tools.pipeline_golden.xvit --official-code OFFICIAL/video-transformers

``--official-code`` is a checkout of 1adrianb/video-transformers (commit 82ca176 was used); none of its code is in
this repository: it is imported from there (``tools/released_golden/common.put_official_code_on_path``). The maker
needs h5py (the authors' loaders read per-video HDF5 files of JPEG bytes); the tests that read its output do not.
No shim or patch: their ``slowfast.datasets`` import as they are; two of their functions are wrapped (not changed)
to record what they were called with and returned (``_Recorder``).

What it writes to ``tests/golden/pipelines/xvit/`` (every JSON names the authors' repository, commit, the files and
functions called, their arguments and this command):

- ``test_views.json``: their ``Kinetics`` (K600 yaml) and ``Ssv2`` (SSv2 yaml) datasets in ``test`` mode, item by
  item, on generated per-video h5 files (awkward lengths, 25 / 29.97 / 60 fps through their fps annotation file and
  none, a video shorter than one clip, landscape, portrait and square frames; 1, 2 and 5 temporal views): each
  view's frame indices, the resize (in and out shapes) and the crop box (top, left, size).
- ``pixel_views.json`` + ``pixel_views.pt`` + ``frames/<case>/000001.jpg ...``: three small videos whose JPEG bytes
  are both in the h5 file they read and in the frame folder we read; the input tensor of every view (sum, sum of
  squares, and every 6th pixel).
- ``view_combination.pt``: random logits fed in shuffled clip order to their ``TestMeter`` (sum ensemble) and its
  per-video scores and top-1 / top-5 counts.
- ``train.json`` + ``train_draws.pt``: training-time draws: K600 clip starts (``image_decoder.decode``, python
  ``random``), SSv2 segment frames (``Ssv2.get_seq_frames``), K600's multi-scale crop windows
  (``transform.random_scale_and_resize``) and one resized crop, SSv2's random-erasing boxes (``RandomErasing``),
  the AutoAugment "v0" policy; and 10,000 draws each of SSv2's short-side jitter, its random crop offsets, K600's
  flip and the mixup weight (``MixUper.mixup_data``) for two-sample tests.
"""

from __future__ import annotations

import io
import json
import random
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from data.atomic_write import atomic_write_bytes, atomic_write_text, encode_image, save_torch
from data.command_line import OneLineParser, path

REPO = Path(__file__).resolve().parents[2]
GOLDEN = REPO / "tests" / "golden" / "pipelines" / "xvit"
REPOSITORY = "1adrianb/video-transformers"
K600_CONFIG = "configs/Kinetics/xvit_B16_16x16_k600.yaml"
SSV2_CONFIG = "configs/SSv2/xvit_B16_16x16.yaml"
COMMAND = "python -m tools.pipeline_golden.xvit --official-code OFFICIAL/video-transformers"
DRAWS = 10_000

# ---- inputs ------------------------------------------------------------------------------------------------------


def jpeg(array: np.ndarray, quality: int = 90) -> bytes:
    return encode_image(array, "JPEG", quality=quality)


def constant_frames(count: int, height: int, width: int) -> list[bytes]:
    """``count`` copies of one grey JPEG (index and box cases: the pixels do not matter)."""
    return [jpeg(np.full((height, width, 3), 128, np.uint8))] * count


def textured_frames(count: int, height: int, width: int, seed: int) -> list[bytes]:
    """Smooth coloured frames that change from frame to frame (pixel cases): a crop or frame off by one differs."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    frames = []
    for t in range(count):
        phase = rng.uniform(0, 6.3, size=3)
        image = np.stack([127 + 120 * np.sin(x / (3 + c) + y / (5 + 2 * c) + phase[c] + 0.4 * t) for c in range(3)],
                         axis=-1)
        frames.append(jpeg(image.clip(0, 255).astype(np.uint8)))
    return frames


def write_h5(path: Path, key: str, frames: list[bytes]) -> None:
    """Their layout (README "Datasets"; kinetics.py l.308-313, ssv2.py l.257-268): one dataset named by the video,
    one entry of JPEG bytes per frame."""
    import h5py

    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        data = f.create_dataset(key, (len(frames),), dtype=h5py.vlen_dtype(np.uint8))
        for i, frame in enumerate(frames):
            data[i] = np.frombuffer(frame, np.uint8)


# ---- the authors' code -------------------------------------------------------------------------------------------


def official_cfg(code: Path, config: str, overrides: dict[str, Any]):
    from slowfast.config.defaults import get_cfg

    cfg = get_cfg()
    cfg.merge_from_file(str(code / config))
    cfg.merge_from_list([item for key, value in overrides.items() for item in (key, value)])
    return cfg


class _Recorder:
    """Wraps their ``transform.random_short_side_scale_jitter`` and ``transform.uniform_crop`` (which
    ``utils.spatial_sampling`` calls through the module) to record the resize and the crop box of each call; the
    box is read by running their own ``uniform_crop`` on a map of pixel numbers."""

    def __init__(self) -> None:
        import slowfast.datasets.transform as transform

        self.transform, self.calls = transform, []
        self.scale, self.crop = transform.random_short_side_scale_jitter, transform.uniform_crop

    def __enter__(self) -> _Recorder:
        def scale(images, min_size, max_size, *args, **kwargs):
            out, boxes = self.scale(images, min_size, max_size, *args, **kwargs)
            self.calls.append({"resize": [list(images.shape[-2:]), list(out.shape[-2:])]})
            return out, boxes

        def crop(images, size, spatial_idx, boxes=None):
            height, width = images.shape[-2:]
            numbers = torch.arange(height * width, dtype=torch.float64).view(1, 1, height, width)
            first = int(self.crop(numbers, size, spatial_idx)[0][0, 0, 0, 0])
            self.calls.append({"crop": [first // width, first % width, size]})
            return self.crop(images, size, spatial_idx, boxes)

        self.transform.random_short_side_scale_jitter, self.transform.uniform_crop = scale, crop
        return self

    def __exit__(self, *exc) -> None:
        self.transform.random_short_side_scale_jitter, self.transform.uniform_crop = self.scale, self.crop

    def take(self) -> dict[str, Any]:
        (resize,), (crop,) = ([c[k] for c in self.calls if k in c] for k in ("resize", "crop"))
        self.calls = []
        return {"resize": resize, "crop": crop}


def _tensor_of(frames) -> torch.Tensor:
    """Kinetics' item holds ``spatial_sampling``'s (frames, was_flipped) pair where Ssv2's holds the frames (their
    kinetics.py l.450 keeps the pair, which the model's forward unwraps, video_model_builder.py l.153-154)."""
    return frames[0] if isinstance(frames, (tuple, list)) else frames


def kinetics_views(code: Path, root: Path, videos: list[dict[str, Any]], views: int, with_fps: bool,
                   overrides: dict[str, Any]) -> list[list[dict[str, Any]]]:
    """Their ``Kinetics(cfg, "test")`` over ``videos`` (name, frames, fps, h5 written already): per video, per
    item (temporal-major, 3 crops each), the frame indices, resize and crop box (and the tensor)."""
    from slowfast.datasets.kinetics import Kinetics

    (root / "annotations").mkdir(parents=True, exist_ok=True)
    atomic_write_text(root / "annotations" / "val.txt", "".join(f"{v['name']},{v['frames']},0\n" for v in videos))
    if with_fps:  # their fps file is read from annotation/ (not annotations/), kinetics.py l.178-179
        (root / "annotation").mkdir(exist_ok=True)
        atomic_write_text(root / "annotation" / "val_fps.txt", "".join(f"{v['name']},{v['fps']}\n" for v in videos))
    cfg = official_cfg(code, K600_CONFIG, {"DATA.PATH_TO_DATA_DIR": str(root), "TEST.NUM_ENSEMBLE_VIEWS": views,
                                           **overrides})
    dataset = Kinetics(cfg, "test")
    return _items(dataset, len(videos), views * 3)


def ssv2_views(code: Path, root: Path, videos: list[dict[str, Any]], overrides: dict[str, Any]
               ) -> list[list[dict[str, Any]]]:
    from slowfast.datasets.ssv2 import Ssv2

    atomic_write_text(root / "val_videofolder.txt", "".join(f"{v['name']} {v['frames']} 0\n" for v in videos))
    cfg = official_cfg(code, SSV2_CONFIG, {"DATA.PATH_TO_DATA_DIR": str(root), **overrides})
    dataset = Ssv2(cfg, "test")
    return _items(dataset, len(videos), cfg.TEST.NUM_ENSEMBLE_VIEWS * cfg.TEST.NUM_SPATIAL_CROPS)


def _items(dataset, num_videos: int, per_video: int) -> list[list[dict[str, Any]]]:
    out = []
    with _Recorder() as recorder:
        for v in range(num_videos):
            items = []
            for k in range(per_video):
                (frames, index), _, _, _ = dataset[v * per_video + k]
                items.append({"frame_indices": [int(i) for i in index], **recorder.take(),
                              "tensor": _tensor_of(frames)})
            out.append(items)
    return out


# ---- test views --------------------------------------------------------------------------------------------------

# (name, frames, fps; None: no fps file, their default), frame height x width: Kinetics is resized to short side 256
# by their README; the crop is the config's 224.
K600_VIDEOS = [("k600_300f", 300, None, 256, 340), ("k600_short_100f", 100, None, 256, 340),
               ("k600_5f", 5, None, 256, 340), ("k600_portrait_301f", 301, None, 340, 256),
               ("k600_square_257f", 257, None, 256, 256)]
K600_FPS_VIDEOS = [("k600_25fps_301f", 301, 25.0, 256, 340), ("k600_2997fps_299f", 299, 29.97, 256, 454),
                   ("k600_60fps_600f", 600, 60.0, 256, 340), ("k600_60fps_short_200f", 200, 60.0, 256, 340)]
SSV2_VIDEOS = [("ssv2_48f", 48, 240, 427), ("ssv2_45f", 45, 240, 320), ("ssv2_odd_73f", 73, 240, 352),
               ("ssv2_16f", 16, 240, 427), ("ssv2_short_10f", 10, 240, 427), ("ssv2_portrait_37f", 37, 427, 240),
               ("ssv2_121f", 121, 256, 256)]
# Pixel cases: small frames, a crop of 24 (and SAMPLING_RATE 1 for K600, so that 16 frames span 16 of 24 or 20).
PIXEL_CASES = [
    {"name": "px_k600_4x3", "dataset": "kinetics", "frames": 24, "size": [30, 40], "views": 2,
     "overrides": {"DATA.TEST_CROP_SIZE": 24, "DATA.SAMPLING_RATE": 1}},
    {"name": "px_k600_16x9", "dataset": "kinetics", "frames": 20, "size": [36, 64], "views": 2,
     "overrides": {"DATA.TEST_CROP_SIZE": 24, "DATA.SAMPLING_RATE": 1}},
    {"name": "px_ssv2_portrait", "dataset": "ssv2", "frames": 21, "size": [40, 30], "views": 2,
     "overrides": {"DATA.TEST_CROP_SIZE": 24}},
]
SUBSAMPLE = 6  # the pixel golden keeps every 6th row and column of each view


def _strip(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in item.items() if k != "tensor"} for item in items]


def make_test_views(code: Path, meta: dict[str, Any]) -> None:
    cases = []
    with tempfile.TemporaryDirectory() as tmp:
        for group, videos, with_fps in (("nofps", K600_VIDEOS, False), ("fps", K600_FPS_VIDEOS, True)):
            root = Path(tmp) / f"k600_{group}"
            listed = [{"name": n, "frames": f, "fps": fps} for n, f, fps, _, _ in videos]
            for name, frames, _, height, width in videos:
                write_h5(root / "val" / f"{name}.h5", name, constant_frames(frames, height, width))
            for views in (1, 2, 5):
                for video, (name, frames, fps, height, width) in zip(
                        kinetics_views(code, root, listed, views, with_fps, {}), videos):
                    cases.append({"name": name, "dataset": "kinetics", "config": K600_CONFIG, "frames": frames,
                                  "fps": fps, "fps_file": with_fps, "size": [height, width], "temporal_views": views,
                                  "spatial_views": 3, "overrides": {"TEST.NUM_ENSEMBLE_VIEWS": views},
                                  "items": _strip(video)})
        root = Path(tmp) / "ssv2"
        for name, frames, height, width in SSV2_VIDEOS:
            write_h5(root / "seq_h5" / f"{name}.h5", name, constant_frames(frames, height, width))
        listed = [{"name": n, "frames": f} for n, f, _, _ in SSV2_VIDEOS]
        for video, (name, frames, height, width) in zip(ssv2_views(code, root, listed, {}), SSV2_VIDEOS):
            cases.append({"name": name, "dataset": "ssv2", "config": SSV2_CONFIG, "frames": frames, "fps": None,
                          "size": [height, width], "temporal_views": 2, "spatial_views": 3, "overrides": {},
                          "items": _strip(video)})
    _write_json("test_views.json", {
        **meta, "called": "slowfast/datasets/kinetics.py Kinetics(cfg, 'test')[i] and slowfast/datasets/ssv2.py "
                          "Ssv2(cfg, 'test')[i] for every item, on per-video h5 files of grey JPEG frames; resize and "
                          "box recorded around transform.random_short_side_scale_jitter and transform.uniform_crop",
        "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "crop": 224, "cases": cases})


def make_pixel_views(code: Path, meta: dict[str, Any]) -> None:
    tensors, cases = {}, []
    frames_dir = GOLDEN / "frames"
    shutil.rmtree(frames_dir, ignore_errors=True)
    with tempfile.TemporaryDirectory() as tmp:
        for seed, case in enumerate(PIXEL_CASES):
            name, (height, width) = case["name"], case["size"]
            frames = textured_frames(case["frames"], height, width, seed)
            folder = frames_dir / name
            folder.mkdir(parents=True)
            for i, frame in enumerate(frames):  # the same bytes as in the h5 file: what a user's export gives
                atomic_write_bytes(folder / f"{i + 1:06d}.jpg", frame)
            root = Path(tmp) / name
            if case["dataset"] == "kinetics":
                write_h5(root / "val" / f"{name}.h5", name, frames)
                (items,) = kinetics_views(code, root, [{"name": name, "frames": len(frames), "fps": None}],
                                          case["views"], False, case["overrides"])
            else:
                write_h5(root / "seq_h5" / f"{name}.h5", name, frames)
                (items,) = ssv2_views(code, root, [{"name": name, "frames": len(frames)}], case["overrides"])
            views = torch.stack([item["tensor"].double() for item in items])  # (views, C, T, h, w)
            tensors[name] = {"sum": views.sum((1, 2, 3, 4)), "sum_sq": (views ** 2).sum((1, 2, 3, 4)),
                             "every_6th": views[..., ::SUBSAMPLE, ::SUBSAMPLE].float()}
            cases.append({**case, "config": K600_CONFIG if case["dataset"] == "kinetics" else SSV2_CONFIG,
                          "items": _strip(items)})
    save_torch(GOLDEN / "pixel_views.pt", tensors)
    _write_json("pixel_views.json", {
        **meta, "called": "as test_views.json, on textured JPEG frames; pixel_views.pt holds each view's input "
                          "tensor (C, T, h, w) as their item returns it: sum, sum_sq and every_6th = [..., ::6, ::6]",
        "frames": "frames/<case>/<n>.jpg, numbered from 1: the JPEG bytes stored in the h5 file", "cases": cases})


# ---- view combination --------------------------------------------------------------------------------------------


def make_view_combination(code: Path, meta: dict[str, Any]) -> None:
    from slowfast.utils.meters import TestMeter

    generator = torch.Generator().manual_seed(0)
    videos, views, classes = 9, 6, 12
    logits = torch.randn(videos, views, classes, generator=generator, dtype=torch.float64) * 3
    labels = torch.randint(0, classes, (videos,), generator=generator)
    clip_ids = torch.arange(videos * views)  # their dataset index: video * views + view
    order = torch.randperm(videos * views, generator=generator)  # shuffled, as a distributed sampler delivers
    meter = TestMeter(videos, views, classes, overall_iters=4, multi_label=False, ensemble_method="sum")
    meter.video_preds = meter.video_preds.double()
    for batch in order.split(8):
        meter.update_stats(logits.view(-1, classes)[batch], labels[clip_ids[batch] // views], clip_ids[batch])
    from slowfast.utils.metrics import topks_correct

    correct = [int(c) for c in topks_correct(meter.video_preds, meter.video_labels, (1, 5))]
    save_torch(GOLDEN / "view_combination.pt", {
                "logits": logits, "labels": labels, "order": order, "video_preds": meter.video_preds.clone(),
                "top1_correct": correct[0], "top5_correct": correct[1], "clip_count": meter.clip_count.clone(),
                "official": {**meta, "called": "slowfast/utils/meters.py TestMeter(9, 6, 12, 4, False, 'sum')"
                                              ".update_stats in batches of 8 clips in shuffled order, then "
                                              "slowfast/utils/metrics.py topks_correct(video_preds, labels, (1, 5))",
                             "note": "logits (video, view, class) float64; clip id = video * 6 + view"}})


# ---- training ----------------------------------------------------------------------------------------------------

class _FakeH5(dict):
    """``image_decoder.decode``'s h5 argument: ``video[key][indices]`` gives each frame's JPEG bytes."""


def _k600_clip_starts() -> dict[str, Any]:
    """K600 clip starts: decode(..., clip_idx=-1) draws random.uniform(0, delta); 16 frames at rate 16 (yaml)."""
    import slowfast.datasets.image_decoder as image_decoder

    tiny = jpeg(np.zeros((2, 2, 3), np.uint8))
    starts = []
    for frames, fps in ((300, None), (301, 25.0), (600, 60.0), (299, 29.97), (100, None)):
        video_meta = {"num_frames": frames, **({"fps": fps} if fps else {})}
        draws = []
        for seed in range(20):
            random.seed(seed)
            _, index = image_decoder.decode(_FakeH5(v=[tiny] * frames), "v", 16, 16, -1, 1, video_meta=video_meta,
                                            target_fps=30, mode="train")
            draws.append([int(i) for i in index])
        starts.append({"frames": frames, "fps": fps, "seeds": list(range(20)), "frame_indices": draws})
    return {"called": "slowfast/datasets/image_decoder.py decode(video, key, sampling_rate=16, "
                      "num_frames=16, clip_idx=-1, num_clips=1, video_meta={'num_frames': n[, "
                      "'fps': fps]}, target_fps=30) after random.seed(seed)", "cases": starts}


def _ssv2_train_frames(code: Path) -> dict[str, Any]:
    """SSv2 training frames: Ssv2.get_seq_frames in train mode, random.randint per segment."""
    from slowfast.datasets.ssv2 import Ssv2

    cfg = official_cfg(code, SSV2_CONFIG, {})
    ssv2 = Ssv2.__new__(Ssv2)
    ssv2.cfg, ssv2.mode = cfg, "train"
    segments = []
    for frames in (48, 45, 73, 10):
        random.seed(frames)
        draws = [ssv2.get_seq_frames([None] * frames, None) for _ in range(DRAWS)]
        counts = np.zeros((16, frames), np.int64)
        for seq in draws:
            counts[np.arange(16), seq] += 1
        segments.append({"frames": frames, "counts": counts.tolist()})
    return {"called": "slowfast/datasets/ssv2.py Ssv2.get_seq_frames(frames, None) with mode "
                      f"'train', {DRAWS} draws after random.seed(frames); counts[segment][frame]",
            "cases": segments}


def _k600_multi_scale_crop() -> dict[str, Any]:
    """K600 multi-scale crop: random_scale_and_resize(frames, (224, 224)) draws random.choice twice."""
    import slowfast.datasets.transform as transform

    windows, sampled = [], transform._sample_crop_size
    for height, width in ((256, 340), (340, 256), (256, 256), (256, 454), (30, 40)):
        size = 224 if height >= 224 else 24
        seen = []

        def record(*args, seen=seen, **kwargs):
            seen.append(sampled(*args, **kwargs))
            return seen[-1]

        transform._sample_crop_size = record
        try:
            picks = []
            for seed in range(40):
                random.seed(seed)
                transform.random_scale_and_resize(torch.zeros(1, height, width, 3, dtype=torch.uint8), (size, size))
                crop_w, crop_h, left, top = seen[-1]
                picks.append([top, left, crop_h, crop_w])
        finally:
            transform._sample_crop_size = sampled
        windows.append({"size": [height, width], "crop": size, "seeds": list(range(40)),
                        "windows_top_left_h_w": picks})
    return {"called": "slowfast/datasets/transform.py random_scale_and_resize(frames "
                      "(1, H, W, 3) uint8, (crop, crop)) after random.seed(seed); the window "
                      "from its _sample_crop_size", "cases": windows}


def _k600_multi_scale_pixels() -> tuple[dict[str, Any], torch.Tensor, torch.Tensor]:
    """One resized crop of textured frames: the record, the input and the output (both for train_draws.pt)."""
    import slowfast.datasets.transform as transform
    from PIL import Image

    frames = torch.stack([torch.from_numpy(np.array(Image.open(io.BytesIO(f)).convert("RGB")))
                          for f in textured_frames(3, 30, 40, 7)])
    random.seed(3)
    resized = transform.random_scale_and_resize(frames, (24, 24))
    record = {"called": "random_scale_and_resize(textured_frames(3, 30, 40, seed 7) decoded "
                        "by PIL, (24, 24)) after random.seed(3); input (T, H, W, 3) and "
                        "output in train_draws.pt"}
    return record, frames, resized


def _ssv2_random_erasing() -> dict[str, Any]:
    """SSv2 random erasing: RandomErasing(probability=0.5, syncronized=True) on a (C, T, H, W) clip."""
    from slowfast.datasets.rand_erasing import RandomErasing

    eraser, boxes = RandomErasing(probability=0.5, syncronized=True), []
    for seed in range(60):
        random.seed(seed)
        erased = eraser(torch.ones(3, 4, 16, 20)) == 0
        if not erased.any():
            boxes.append(None)
            continue
        assert (erased == erased[:1, :1]).all(), "one box for every channel and frame"
        rows, cols = erased[0, 0].any(1).nonzero()[:, 0], erased[0, 0].any(0).nonzero()[:, 0]
        boxes.append([int(rows[0]), int(cols[0]), len(rows), len(cols)])
    return {"called": "slowfast/datasets/rand_erasing.py RandomErasing(probability=0.5, "
                      "syncronized=True)(ones(3, 4, 16, 20)) after random.seed(seed); box "
                      "(top, left, h, w) or null", "seeds": list(range(60)), "boxes": boxes}


def _auto_augment_v0() -> dict[str, Any]:
    """AutoAugment "v0" as both datasets build it."""
    from slowfast.datasets.data_augment import auto_augment_transform

    policy = auto_augment_transform("v0", dict(translate_const=int(224 * 0.45))).policy
    return {
        "called": "slowfast/datasets/data_augment.py auto_augment_transform('v0', {'translate_const': 100}).policy",
        "policy": [[[op.aug_fn.__name__, op.prob, op.magnitude] for op in sub] for sub in policy],
        "hparams": {k: (list(v) if isinstance(v, tuple) else v) for k, v in policy[0][0].hparams.items()},
        "fillcolor": list(policy[0][0].kwargs["fillcolor"]), "synchronized": policy[0][0].synchronized}


def _two_sample_draws() -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """10,000 draws each: SSv2's short-side jitter and random crop, K600's flip, mixup's weight (the record, and the
    tensors for train_draws.pt)."""
    import slowfast.datasets.transform as transform
    from slowfast.models.optimizer import MixUper

    np.random.seed(0)
    jitter = [transform.random_short_side_scale_jitter(torch.zeros(1, 1, 1, 1), 256, 320)[0].shape[-1]
              for _ in range(DRAWS)]
    np.random.seed(1)
    height, width = 256, 341
    numbers = torch.arange(height * width, dtype=torch.float64).view(1, 1, height, width)
    firsts = [int(transform.random_crop(numbers, 224)[0][0, 0, 0, 0]) for _ in range(DRAWS)]
    np.random.seed(2)
    flips = sum(transform.horizontal_flip(0.5, torch.zeros(1, 1, 1, 2))[2] for _ in range(DRAWS))
    np.random.seed(3)
    torch.manual_seed(3)
    mixuper = MixUper(mixup_alpha=0.4, criterion=None, use_cuda=False)
    lams = [mixuper.mixup_data(torch.zeros(4, 1), torch.zeros(4))[3] for _ in range(DRAWS)]
    record = {
        "ssv2_short_side": "transform.random_short_side_scale_jitter(images, 256, 320): the new short side, after "
                           "np.random.seed(0) (ssv2 yaml TRAIN_JITTER_SCALES)",
        "ssv2_crop_offsets": "transform.random_crop(256 x 341 frames, 224): (top, left), after np.random.seed(1)",
        "k600_flips": f"transform.horizontal_flip(0.5, ...) flipped {int(flips)} of {DRAWS}, after "
                      "np.random.seed(2)", "k600_flip_count": int(flips),
        "mixup_lambda": "slowfast/models/optimizer.py MixUper(mixup_alpha=0.4).mixup_data(x, y)'s lam, after "
                        "np.random.seed(3) (k600 yaml TRAIN.MIXUP_ALPHA)"}
    tensors = {"ssv2_short_side": torch.tensor(jitter, dtype=torch.int16),
               "ssv2_crop_offsets": torch.tensor([[f // width, f % width] for f in firsts], dtype=torch.int16),
               "mixup_lambda": torch.tensor(lams, dtype=torch.float32)}
    return record, tensors


def make_train(code: Path, meta: dict[str, Any]) -> None:
    """train.json and train_draws.pt: each training property in turn, in this order (each seeds its own draws)."""
    out: dict[str, Any] = {**meta}
    out["k600_clip_starts"] = _k600_clip_starts()
    out["ssv2_train_frames"] = _ssv2_train_frames(code)
    out["k600_multi_scale_crop"] = _k600_multi_scale_crop()
    out["k600_multi_scale_pixels"], frames, resized = _k600_multi_scale_pixels()
    out["ssv2_random_erasing"] = _ssv2_random_erasing()
    out["auto_augment_v0"] = _auto_augment_v0()
    out["draws"], tensors = _two_sample_draws()
    save_torch(GOLDEN / "train_draws.pt", {**tensors, "k600_multi_scale_input": frames.clone(),
                                           "k600_multi_scale_pixels": resized.clone()})
    _write_json("train.json", out)


# ---- main --------------------------------------------------------------------------------------------------------


def _write_json(name: str, content: dict[str, Any]) -> None:
    atomic_write_text(GOLDEN / name, json.dumps(content, indent=1) + "\n")
    print(f"wrote {GOLDEN / name}")


def main(argv: list[str] | None = None) -> None:
    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--official-code", type=path("a folder"), required=True,
                        help="a checkout of 1adrianb/video-transformers")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    from tools.released_golden.common import checkout, put_official_code_on_path

    put_official_code_on_path(args.official_code)
    import h5py

    GOLDEN.mkdir(parents=True, exist_ok=True)
    meta = {**checkout(REPOSITORY, args.official_code), "command": COMMAND, "h5py": h5py.__version__,
            "torch": str(torch.__version__), "numpy": np.__version__,
            "patches": "none (two transform functions wrapped to record their calls, not changed)"}
    code = args.official_code.resolve()
    make_test_views(code, meta)
    make_pixel_views(code, meta)
    make_view_combination(code, meta)
    make_train(code, meta)


if __name__ == "__main__":
    main()
