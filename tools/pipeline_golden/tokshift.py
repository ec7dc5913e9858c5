"""Golden files of TokShift-Transformer's data pipeline (the code MSCA's authors ran), made with the official code
(github.com/VideoNetworks/TokShift-Transformer, checked out outside this repository):

    python -m tools.pipeline_golden.tokshift --official-code DIR

writes ``tests/golden/pipelines/tokshift/`` (read by tests/parity/test_tokshift_pipeline.py):

- ``frames/<video>/``: four small generated videos as the official loader reads them (JPEG frames): odd and even
  margins, 4:3 and 16:9, two portrait, one shorter than a clip (frames wrap round), views piling up at the end. Only
  the frames some test view reads are stored (3-4 KB each); every other frame of a video is its ``filler.jpg``
  (``test_views.json`` maps each frame number to its file); the maker and the test build the folder
  ``img_00001.jpg`` ... from them.
- ``test_views.json``: for each video, the official ``DataRepo`` (``data/dataset.py``: ``fetch_rgb_clip``,
  ``read_clip``) and ``Test_ClipAug`` (``data/augmentation.py``) as ``main_ddp_shift_v3.py`` builds them from
  ``config/custom/kinetics400/k400_tokshift_div4_8x32_base_224.yml``, with ``VAL_SAMPLE_TIMES`` 10 (``--evaluate``):
  the frames each temporal view reads, the resized frame size and the crop box of each spatial view (in their
  order: centre, left, right); and ``test_pixels.npz``: its input tensor at every 8th pixel of the first and the
  last frame of each distinct temporal view, as uint8 (the tensor is ``(uint8 / 255 - 0.5) / 0.5`` exactly).
- ``indices.json``: ``read_clip``'s frames for many frame counts (10 views and 1, the per-epoch validation) and
  ``read_random_clip``'s start histogram over 10,000 draws for a few (``np.random.seed(0)``).
- ``train_draws.npz``: 10,000 draws of ``Train_ClipAug`` (flip, short side, crop offsets, the four colour changes and
  their factors) on a 588 x 331 frame (a 16:9 Kinetics frame stored at short side 331), ``np.random.seed(0)``.
- ``view_average.pt``: ``main_ddp_shift_v3.validate`` run on random logits: 12 videos of 30 views (10 temporal x 3
  spatial), 20 classes; the per-video scores it passes to ``accuracy`` and its top-1 and top-5.

The official code runs unchanged. Its modules are loaded from their files under private names (its ``data``
package would clash with ours); spies wrap ``PIL.Image.open`` in ``data/dataset.py``, ``image_crop`` and
``short_side_resize`` in ``data/augmentation.py`` and torchvision's ``hflip``/``adjust_*`` to record what was read and
drawn, calling through. ``validate`` needs a GPU (``args.gpu`` set): ``torch.Tensor.cuda`` is the identity while it
runs on CPU, and its ``model.video_net`` and ``tensorboardX`` imports are stubs (neither is used by ``validate``).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
import types
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch

from data.atomic_write import atomic_write_text, copy_file, save_arrays, save_image, save_torch
from data.command_line import OneLineParser, path

REPO = Path(__file__).resolve().parents[2]
GOLDEN = REPO / "tests" / "golden" / "pipelines" / "tokshift"
REPOSITORY = "VideoNetworks/TokShift-Transformer"
CONFIG = "config/custom/kinetics400/k400_tokshift_div4_8x32_base_224.yml"
FRAME_FORMAT = "img_{:05d}.jpg"
# name: (frames, width, height); every stored frame is a few KB
VIDEOS = {
    "odd_4x3": (263, 333, 251),  # resized 297 x 224: odd margin; views 1-9 clipped to start 8
    "wide_16x9": (301, 427, 240),  # resized 398 x 224: even margin; views 2-9 clipped to start 46
    "portrait_short": (45, 240, 320),  # shorter than one clip (256 frames): indices wrap modulo 45
    "portrait_odd": (257, 251, 347),  # resized 224 x 309: odd margin, on the long (vertical) side
}
INDEX_FRAME_COUNTS = (1, 2, 8, 31, 32, 45, 100, 224, 225, 255, 256, 257, 258, 259, 263, 300, 301, 333, 450, 600,
                      1001, 2400)
TRAIN_FRAME_COUNTS = (45, 257, 258, 300, 600)
DRAWS = 10_000
COLOUR_OPS = ("brightness", "saturation", "gamma", "hue")  # Train_ClipAug's order
PIXEL_STEP = 8  # test_pixels.npz keeps every 8th pixel of each axis
PIXEL_FRAMES = [0, 7]  # of the first and the last frame of each clip
TRAIN_FRAME = (588, 331)  # width, height
JPEG_QUALITY = 35


def command_line() -> str:
    return "python -m tools.pipeline_golden.tokshift " + " ".join(sys.argv[1:])


def git_commit(folder: Path) -> str:
    return subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()


def load(name: str, path: Path) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def official_modules(official: Path) -> dict[str, types.ModuleType]:
    """The official ``data/dataset.py``, ``data/augmentation.py``, ``config/config_utils.py`` and
    ``main_ddp_shift_v3.py`` (the last with its own ``data``, ``utils``, ``config`` packages in place of ours while
    it imports, its model and tensorboardX stubbed)."""
    sys.path.insert(0, str(REPO))

    mods = {"dataset": load("tokshift_official_dataset", official / "data" / "dataset.py"),
            "augmentation": load("tokshift_official_augmentation", official / "data" / "augmentation.py"),
            "config": load("tokshift_official_config_utils", official / "config" / "config_utils.py"),
            "utils": load("tokshift_official_utils", official / "utils" / "utils.py")}
    package = lambda name, **attrs: types.SimpleNamespace(__name__=name, __path__=[], **attrs)  # noqa: E731
    stubs = {"data": package("data", dataset=mods["dataset"], augmentation=mods["augmentation"]),
             "data.dataset": mods["dataset"], "data.augmentation": mods["augmentation"],
             "config": package("config"), "config.config_utils": mods["config"],
             "utils": package("utils"), "utils.utils": mods["utils"],
             "model": package("model"), "model.video_net": types.SimpleNamespace(VideoNet=None),
             "tensorboardX": types.SimpleNamespace(SummaryWriter=None)}
    saved = {k: sys.modules.get(k) for k in stubs}
    sys.modules.update(stubs)
    try:
        mods["main"] = load("tokshift_official_main", official / "main_ddp_shift_v3.py")
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    return mods


# ---- generated frames ------------------------------------------------------------------------------------------

def make_frame(width: int, height: int, k: int, seed: int):
    """Smooth ramps that move with the frame number and three solid boxes (edges that show a one-pixel shift)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    img = np.stack([x * 200 / width + k % 40, y * 200 / height + (k * 3) % 50,
                    (x + y) * 150 / (width + height) + (k * 7) % 60], -1)
    for _ in range(3):
        x0, y0 = rng.integers(0, width - 30), rng.integers(0, height - 30)
        img[y0:y0 + rng.integers(8, 30), x0:x0 + rng.integers(8, 30)] = rng.integers(0, 256, 3)
    return Image.fromarray(img.clip(0, 255).astype(np.uint8))


def build_folder(golden_video: Path, manifest: list[str], out: Path) -> None:
    """The official frame folder ``img_00001.jpg`` ... from the stored frames (``manifest[i]`` is frame i + 1's
    file)."""
    out.mkdir(parents=True)
    for i, name in enumerate(manifest):
        copy_file(golden_video / name, out / FRAME_FORMAT.format(i + 1))


class Spy:
    """Records calls of a function and calls through."""

    def __init__(self, fn, record):
        self.fn, self.record = fn, record

    def __call__(self, *args, **kwargs):
        out = self.fn(*args, **kwargs)
        self.record(args, kwargs, out)
        return out


@contextlib.contextmanager
def patched(obj: Any, name: str, value: Any):
    saved = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, saved)


def official_config(mods: dict[str, types.ModuleType], official: Path) -> dict[str, Any]:
    return mods["config"].load_config(str(official / CONFIG))


def test_views(mods: dict[str, types.ModuleType], cfg: dict[str, Any], work: Path) -> tuple[dict, dict]:
    """The official test pipeline on the generated videos (their ``--evaluate`` path); returns the JSON record and
    the sampled pixels."""
    ds, aug = mods["dataset"], mods["augmentation"]
    frames_dir = GOLDEN / "frames"
    if frames_dir.exists():
        shutil.rmtree(frames_dir)
    # which frames do the 10 views read? (read_clip's indices, from a first pass with every frame a filler)
    record: dict[str, Any] = {}
    pixels: dict[str, np.ndarray] = {}
    cfg = dict(cfg, VAL_SAMPLE_TIMES=10, FRAME_REPO=str(work / "repo"), VAL_LIST_TXT=str(work / "val.txt"))
    for v, (name, (count, width, height)) in enumerate(VIDEOS.items()):
        wanted = sorted({i for views in read_clip_indices(ds, count, cfg, 10) for i in views})
        golden_video = frames_dir / name
        golden_video.mkdir(parents=True)
        save_image(golden_video / "filler.jpg", make_frame(width, height, 999, seed=1000 + v), quality=JPEG_QUALITY)
        for i in wanted:
            save_image(golden_video / FRAME_FORMAT.format(i), make_frame(width, height, i, seed=v * 10_000 + i),
                       quality=JPEG_QUALITY)
        manifest = [FRAME_FORMAT.format(i) if i in wanted else "filler.jpg" for i in range(1, count + 1)]
        build_folder(golden_video, manifest, work / "repo" / name)
        atomic_write_text(work / "val.txt", f"{name} {count} {v}\n")

        opened, crops, resized, (vid, clip, label) = official_test_item(ds, aug, cfg)
        t = cfg["T_SIZE"]
        views = [[int(n[4:9]) for n in opened[i * t:(i + 1) * t]] for i in range(10)]
        boxes = [crops[i] for i in range(0, len(crops), t)]  # one box per spatial view of each temporal view
        assert all(crops[i] == crops[i - i % t] for i in range(len(crops)))  # a clip's frames share their box
        assert len(boxes) == 30 and all(boxes[j] == boxes[j % 3] for j in range(30))
        assert len(set(map(tuple, resized))) == 1
        # the input tensor: (views = temporal x spatial (centre, left, right), T, C, H, W), exactly uint8 / 127.5 - 1
        assert tuple(clip.shape) == (30, t, 3, 224, 224), clip.shape
        as_uint8 = torch.round((clip.double() * 0.5 + 0.5) * 255)
        assert float((as_uint8 / 255 * 2 - 1 - clip.double()).abs().max()) < 1e-6
        starts = [views[i][0] for i in range(10)]
        distinct = sorted(set(starts), key=starts.index)
        keep = [starts.index(s) for s in distinct]
        sampled = as_uint8.view(10, 3, t, 3, 224, 224)[keep][:, :, PIXEL_FRAMES, :, ::PIXEL_STEP, ::PIXEL_STEP]
        pixels[name] = sampled.to(torch.uint8).numpy()
        record[name] = {"frames": count, "size": [width, height], "manifest_stored": wanted,
                        "views": views, "resized": resized[0], "boxes_centre_left_right": boxes[:3],
                        "distinct_views": keep, "label": int(label), "name": vid}
    return record, pixels


def official_test_item(ds: types.ModuleType, aug: types.ModuleType, cfg: dict[str, Any]) -> tuple:
    """Item 0 of the official test ``DataRepo`` with its ``Test_ClipAug`` as ``main_worker`` builds it: the frame
    files opened, the crop boxes (x, y, w, h, one per frame of each view), the resized sizes, and the item."""
    from PIL import Image

    opened, crops, resized = [], [], []
    real_open = Image.open
    fake_image = types.SimpleNamespace(open=lambda p: (opened.append(Path(p).name), real_open(p))[1])
    test_aug = aug.Test_ClipAug(cfg["VAL_PATCH_SIZE"], cfg["VAL_SHORT_SIDE"], pixel_mean=cfg["PIXEL_MEAN"],
                                pixel_std=cfg["PIXEL_STD"], mode=cfg["VAL_TEST_AUG"])
    repo = ds.DataRepo(cfg, is_train="val", aug=test_aug)
    record_crop = Spy(aug.image_crop, lambda a, k, o: crops.append([a[1], a[2], a[3], a[3]]))
    record_size = Spy(aug.short_side_resize, lambda a, k, o: resized.append(list(o.size)))
    with patched(ds, "Image", fake_image), patched(aug, "image_crop", record_crop), \
            patched(aug, "short_side_resize", record_size):
        item = repo[0]
    return opened, crops, resized, item


def read_clip_indices(ds: types.ModuleType, count: int, cfg: dict[str, Any], times: int) -> list[list[int]]:
    """``read_clip``'s frame numbers (1-based file numbers) per view, its images not read."""
    opened: list[str] = []
    fake = types.SimpleNamespace(open=lambda p: (opened.append(Path(p).name),
                                                 types.SimpleNamespace(convert=lambda mode: None))[1])
    with patched(ds, "Image", fake):
        ds.read_clip(Path("v"), count, cfg["FRAME_FORMAT"], cfg["T_SIZE"], cfg["T_STEP"], times)
    t = cfg["T_SIZE"]
    return [[int(n[4:9]) for n in opened[i * t:(i + 1) * t]] for i in range(times)]


def indices(mods: dict[str, types.ModuleType], cfg: dict[str, Any]) -> dict[str, Any]:
    ds = mods["dataset"]
    out: dict[str, Any] = {"test_10": {}, "val_1": {}, "train_start_histogram": {}}
    for count in INDEX_FRAME_COUNTS:
        out["test_10"][str(count)] = read_clip_indices(ds, count, cfg, 10)
        out["val_1"][str(count)] = read_clip_indices(ds, count, cfg, 1)
    t, step = cfg["T_SIZE"], cfg["T_STEP"]
    np.random.seed(0)
    for count in TRAIN_FRAME_COUNTS:
        opened: list[str] = []
        fake = types.SimpleNamespace(open=lambda p, o=opened: (o.append(Path(p).name),
                                                               types.SimpleNamespace(convert=lambda mode: None))[1])
        starts = Counter()
        with patched(ds, "Image", fake):
            for _ in range(DRAWS):
                opened.clear()
                ds.read_random_clip(Path("v"), count, cfg["FRAME_FORMAT"], t, step)
                frames = [int(n[4:9]) for n in opened]
                start = frames[0] - 1
                assert frames == [(start + k * step) % count + 1 for k in range(t)]
                starts[start] += 1
        out["train_start_histogram"][str(count)] = {str(k): starts[k] for k in sorted(starts)}
    return out


def train_draws(mods: dict[str, types.ModuleType], cfg: dict[str, Any]) -> dict[str, np.ndarray]:
    """``Train_ClipAug`` as main_worker builds it, on one frame, ``DRAWS`` times: per draw the flip, the short side,
    the resized size, the crop's (x, y), whether each colour change applied and, for those that did, its factor."""
    import torchvision.transforms.functional as F

    aug = mods["augmentation"]
    frame = make_frame(*TRAIN_FRAME, 0, seed=7)
    train = aug.Train_ClipAug(cfg["TRN_PATCH_SIZE"], cfg["TRN_SHORT_SIDE_RANGE"], pixel_mean=cfg["PIXEL_MEAN"],
                              pixel_std=cfg["PIXEL_STD"])
    geometry = np.zeros((DRAWS, 6), dtype=np.uint16)  # flip, short side, width, height, x, y
    factors = np.full((DRAWS, 4), np.nan, dtype=np.float32)  # brightness, saturation, gamma, hue
    row = [0]

    def setter(column):
        return lambda a, k, o: factors.__setitem__((row[0], column), a[1])

    np.random.seed(0)
    with patched(F, "hflip", Spy(F.hflip, lambda a, k, o: geometry.__setitem__((row[0], 0), 1))), \
            patched(aug, "short_side_resize", Spy(aug.short_side_resize, lambda a, k, o: geometry.__setitem__(
                (row[0], slice(1, 4)), (a[1], *o.size)))), \
            patched(aug, "image_crop", Spy(aug.image_crop, lambda a, k, o: geometry.__setitem__(
                (row[0], slice(4, 6)), (a[1], a[2])))), \
            patched(F, "adjust_brightness", Spy(F.adjust_brightness, setter(0))), \
            patched(F, "adjust_saturation", Spy(F.adjust_saturation, setter(1))), \
            patched(F, "adjust_gamma", Spy(F.adjust_gamma, setter(2))), \
            patched(F, "adjust_hue", Spy(F.adjust_hue, setter(3))):
        for i in range(DRAWS):
            row[0] = i
            train([frame], 0)
    applied = ~np.isnan(factors)
    return {"flip": geometry[:, 0].astype(np.uint8), "short_side": geometry[:, 1], "width": geometry[:, 2],
            "height": geometry[:, 3], "x": geometry[:, 4], "y": geometry[:, 5], "applied": applied,
            **{f"factor_{name}": factors[applied[:, j], j] for j, name in enumerate(COLOUR_OPS)}}


def view_average(mods: dict[str, types.ModuleType]) -> dict[str, Any]:
    """``validate`` on random logits: a stand-in model returns row ``id`` of a logit table for a clip whose pixels
    hold ``id``; the per-video scores are what ``validate`` passes to ``accuracy``."""
    main = mods["main"]
    videos, views, classes, batch = 12, 30, 20, 4
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(videos * views, classes, generator=generator, dtype=torch.float64) * 2
    labels = torch.randint(0, classes, (videos,), generator=generator)

    class TableModel(torch.nn.Module):
        def forward(self, clip):  # (B * M, T, C, H, W) holding the row id
            return logits[clip[:, 0, 0, 0, 0].long()]

    ids = torch.arange(videos * views, dtype=torch.float64).view(videos, views, 1, 1, 1, 1)
    loader = [([f"v{i}" for i in range(b, b + batch)], ids[b:b + batch], labels[b:b + batch].tolist())
              for b in range(0, videos, batch)]
    scores = []
    args = types.SimpleNamespace(gpu=0, distributed=False, rank=0, print_freq=1)
    real_accuracy = main.accuracy
    recorded = Spy(real_accuracy, lambda a, k, o: scores.append(a[0].clone()))
    with patched(main, "accuracy", recorded), patched(torch.Tensor, "cuda", lambda self, *a, **k: self), \
            contextlib.redirect_stdout(sys.stderr):
        top1 = main.validate(loader, TableModel(), torch.nn.CrossEntropyLoss(), None, 0, args, {"epoch_lr": 0.1},
                             None)
    per_video = torch.cat(scores)
    top5 = float(np.mean([float(real_accuracy(per_video[i:i + batch], labels[i:i + batch], topk=(1, 5))[1])
                          for i in range(0, videos, batch)]))
    return {"logits": logits, "labels": labels, "views": views, "per_video": per_video, "top1": float(top1),
            "top5": top5}


def main() -> None:
    parser = OneLineParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official-code", required=True, type=path("a folder"))
    args = parser.parse_args()
    official = args.official_code.resolve()
    mods = official_modules(official)
    cfg = official_config(mods, official)
    GOLDEN.mkdir(parents=True, exist_ok=True)
    made = {"repository": REPOSITORY, "official_commit": git_commit(official), "config": CONFIG,
            "command": command_line(),
            "runtime_patches": "none to the official code; spies that call through (PIL.Image.open in "
                               "data/dataset.py, image_crop and short_side_resize in data/augmentation.py, "
                               "torchvision.transforms.functional.hflip/adjust_*); for validate(): "
                               "torch.Tensor.cuda = identity, stub modules for model.video_net and tensorboardX",
            "libraries": {"torch": str(torch.__version__), "numpy": np.__version__,
                          "pillow": __import__("PIL").__version__}}
    with tempfile.TemporaryDirectory() as tmp:
        record, pixels = test_views(mods, cfg, Path(tmp))
    save_arrays(GOLDEN / "test_pixels.npz", compressed=True, **pixels)
    atomic_write_text(GOLDEN / "test_views.json", json.dumps({
        "official": {**made, "called": "data/dataset.py DataRepo(cfg, is_train='val', aug=Test_ClipAug(VAL_PATCH_SIZE, "
                                       "VAL_SHORT_SIDE, pixel_mean=PIXEL_MEAN, pixel_std=PIXEL_STD, mode=VAL_TEST_AUG)"
                                       ")[0], cfg with VAL_SAMPLE_TIMES 10 (main_ddp_shift_v3.py --evaluate)"},
        "frame_format": FRAME_FORMAT, "pixel_step": PIXEL_STEP, "pixel_frames": PIXEL_FRAMES, "videos": record},
        indent=1) + "\n")
    atomic_write_text(GOLDEN / "indices.json", json.dumps({
        "official": {**made, "called": "data/dataset.py read_clip(folder, frames, FRAME_FORMAT, T_SIZE 8, T_STEP 32, "
                                       "10 or 1); read_random_clip(folder, frames, FRAME_FORMAT, 8, 32) x 10000 after "
                                       "np.random.seed(0)"},
        **indices(mods, cfg)}) + "\n")
    save_arrays(GOLDEN / "train_draws.npz", compressed=True, **train_draws(mods, cfg), official=json.dumps({
        **made, "called": "data/augmentation.py Train_ClipAug(TRN_PATCH_SIZE 224, TRN_SHORT_SIDE_RANGE [224, 330], "
                          "PIXEL_MEAN, PIXEL_STD)([frame], 0) x 10000 after np.random.seed(0), one frame 588 x 331"}))
    save_torch(GOLDEN / "view_average.pt", {
        "official": {**made, "called": "main_ddp_shift_v3.py validate(loader, model, CrossEntropyLoss(), None, 0, "
                                       "args(gpu=0), cfg) on a table of random logits"},
        **view_average(mods)})
    total = sum(f.stat().st_size for f in GOLDEN.rglob("*") if f.is_file())
    print(f"wrote {GOLDEN} ({total / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
