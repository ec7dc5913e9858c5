"""Golden files of Motionformer's data pipeline, made by driving the authors' own dataset classes and functions.

    python -m tools.pipeline_golden.mformer --official-code OFFICIAL/Motionformer

``--official-code`` is a checkout of facebookresearch/Motionformer (commit bf43d50 was used); none of its code is in
this repository. Its data code imports cv2, ffmpeg-python, joblib, simplejson, psutil and scikit-learn (install them
to run this maker; the tests need none of them). No shim or patch: the authors' functions are only wrapped at run
time, to read out what they did (``Capture``, in ``mformer_common.py`` with the other helpers the
makers share), never changed.

It writes ``tests/golden/pipelines/mformer/``:

- ``videos/``: small generated videos (PyAV, libx264, 12-frame GOPs) and frame folders (JPEG), both sides'
  inputs; ``kinetics.json``, ``ssv2.json``, ``epic.json``: per video and configuration, every test view as the
  authors' ``Kinetics`` / ``Ssv2`` / ``Epickitchens`` dataset (``__getitem__`` in test mode) made it: the absolute
  frame indices, the resized size, the crop box, SHA-256 checksums (16 hex digits) of the sampled uint8 frames and
  of the final float32 input, its float64 sum; ``*_tensors.pt``: a strided float32 sample of the final input of two
  views per case (every SSv2 view), to measure a difference where the checksums differ.
- ``epic_placement.json``: every test view's frames of longer EPIC segments (minutes into hour-long videos, half
  frame starts) as ``frame_loader.pack_frames_to_video_clip`` places them for both EK clip shapes (16x4, 32x3), its
  image loader replaced by a recorder of the file names (no frame read).
- ``meter.json``: random probabilities of a few videos' views in shuffled order and what the authors' ``TestMeter``
  and ``EPICTestMeter`` make of them (summed scores, top-1/top-5 decisions, verb/noun/action accuracies).
- ``train.json``: 10,000 draws of each training choice from the authors' functions (``get_start_end_idx`` with
  PyAV selective decoding's first frame, ``random_short_side_scale_jitter``, ``random_crop``, ``horizontal_flip``,
  ``frames_augmentation``'s colour-jitter coin, ``get_seq_frames``), stored as counts.
- ``train_clips.json``: training clips of the Kinetics videos as the authors' ``Kinetics(cfg, 'train')`` decodes
  them (random start, then PyAV selective decoding), each after ``random.seed(seed)``: the frame indices per seed.
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch

from data.atomic_write import atomic_write_text, replacing, save_image, save_torch
from data.command_line import OneLineParser, path
from tools.pipeline_golden.mformer_common import (
    EVERY_RUN,
    GOLDEN,
    REPO,
    Capture,
    all_pts,
    capture_decoding,
    capture_images,
    capture_spatial,
    git_commit,
    official,
    official_cfg,
    probe,
    view_record,
    write,
)

# name: (fps, frames, width, height): odd counts, 25 / 29.97 / 60 fps, shorter than one clip, portrait, square
KINETICS_VIDEOS = {
    "k25_75f_48x36": (Fraction(25), 75, 48, 36),
    "k2997_97f_64x36": (Fraction(30000, 1001), 97, 64, 36),
    "k60_121f_36x48": (Fraction(60), 121, 36, 48),
    "k30_20f_48x36": (Fraction(30), 20, 48, 36),
    "k30_111f_40x40": (Fraction(30), 111, 40, 40),
}
# The released Kinetics configurations (their catalogue names) and the test crop each case uses instead of 224/336 on
# these tiny frames (TEST_CROP_SIZE is the short side the frames are resized to as well): 32 resizes, 36 keeps the
# 36-pixel sides, 48 enlarges.
KINETICS_CONFIGS = {
    "k400_motionformer_224_16x4": ("configs/K400/motionformer_224_16x4.yaml", 32),
    "k400_motionformer_224_32x3": ("configs/K400/motionformer_224_32x3.yaml", 36),
    "k400_motionformer_336_16x8": ("configs/K400/motionformer_336_16x8.yaml", 48),
}
SSV2_VIDEOS = {"s_41f_32x24": (41, 32, 24), "s_16f_24x32": (16, 24, 32), "s_33f_32x24": (33, 32, 24),
               "s_9f_32x24": (9, 32, 24)}
SSV2_CONFIG, SSV2_CROP = "configs/SSV2/motionformer_224_16x4.yaml", 20
# EPIC: two untrimmed videos (frame folders) of 100 frames, named P01_101 (an EPIC-100 name: the authors' code takes
# 50 fps) and P02_01 (an EPIC-55 name: 60 fps); segments (start, stop) as EPIC's "HH:MM:SS.ff" timestamps
EPIC_VIDEOS = {"P01_101": (100, 32, 24), "P02_01": (100, 24, 32)}
EPIC_SEGMENTS = [  # narration_id, video, start, stop, verb, noun
    ("P01_101_0", "P01_101", "00:00:00.10", "00:00:01.37", 3, 7),  # 63 frames at 50 fps, 16x4 spans 107
    ("P01_101_1", "P01_101", "00:00:00.50", "00:00:01.99", 1, 2),  # to the video's end (100 frames = 2 s)
    ("P01_101_2", "P01_101", "00:00:01.71", "00:00:01.95", 0, 5),  # 12 frames, near the end
    ("P02_01_0", "P02_01", "00:00:00.00", "00:00:01.65", 4, 1),  # 99 frames at 60 fps
    ("P02_01_1", "P02_01", "00:00:01.33", "00:00:01.66", 2, 3),  # the last 20 frames
]
EPIC_CONFIG, EPIC_CROP = "configs/EK/motionformer_224_16x4.yaml", 20
TRAIN_DRAWS = 10_000


def frame_pixels(t: int, width: int, height: int, seed: int) -> np.ndarray:
    """A smooth frame that changes with t (gradients and a moving square): small files, every frame distinct."""
    y, x = np.mgrid[0:height, 0:width]
    frame = np.stack([(x * 5 + t * 7 + seed * 13) % 256, (y * 6 + t * 3) % 256, ((x + y) * 3 + t * 11) % 256], -1)
    left, top = (t * 2 + seed) % max(width - 8, 1), (t + 3 * seed) % max(height - 8, 1)
    frame[top:top + 8, left:left + 8] = (255 - 40 * (t % 4), 60 * (t % 3), 250)
    return frame.astype(np.uint8)


def write_mp4(path: Path, fps: Fraction, frames: int, width: int, height: int, seed: int) -> None:
    with replacing(path) as tmp, av.open(str(tmp), "w", options={"fflags": "+bitexact"}) as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "28", "g": "12", "bf": "2", "preset": "medium"}
        stream.codec_context.thread_count = 1
        for t in range(frames):
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame_pixels(t, width, height, seed),
                                                                   format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def write_frames(folder: Path, frames: int, width: int, height: int, seed: int) -> None:
    """EPIC's rgb_frames naming, frame_0000000001.jpg on."""

    folder.mkdir(parents=True, exist_ok=True)
    for t in range(frames):
        save_image(folder / f"frame_{t + 1:010d}.jpg", frame_pixels(t, width, height, seed), quality=50)


def kinetics(code: Path, commit: str, tmp: Path) -> None:
    from slowfast.datasets.kinetics import Kinetics

    videos = GOLDEN / "videos"
    videos.mkdir(parents=True, exist_ok=True)
    for seed, (name, (fps, frames, width, height)) in enumerate(KINETICS_VIDEOS.items()):
        write_mp4(videos / f"{name}.mp4", fps, frames, width, height, seed)
    cases, tensors = [], {}
    for config_name, (config, crop) in KINETICS_CONFIGS.items():
        for name in KINETICS_VIDEOS:
            path = videos / f"{name}.mp4"
            atomic_write_text(tmp / "test.csv", f"{path} 0\n")
            overrides = {"DATA.PATH_TO_DATA_DIR": str(tmp), "DATA.TEST_CROP_SIZE": crop}
            cfg = official_cfg(code, config, overrides)
            dataset = Kinetics(cfg, "test")
            pts_index = {p: i for i, p in enumerate(all_pts(path))}
            capture = Capture()

            capture_decoding(capture, pts_index)
            capture_spatial(capture)
            views = []
            try:
                for k in range(len(dataset._path_to_videos)):
                    frames = dataset[k][0][0]
                    views.append(view_record(frames, capture.records["sampled"], capture.records["indices"],
                                             capture, k, cfg.TEST.NUM_SPATIAL_CROPS))
                    if k in (0, 29):
                        tensors[f"{config_name}/{name}/{k}"] = probe(frames)
            finally:
                capture.restore()
            fps, count, width, height = KINETICS_VIDEOS[name]
            with av.open(str(path)) as container:
                stream_info = container.streams.video[0]
                stream_frames, average_rate = stream_info.frames, float(stream_info.average_rate)
            cases.append({"checkpoint": config_name, "config": config, "video": f"videos/{name}.mp4",
                          "fps": str(fps), "frames": count, "stream_frames": stream_frames,
                          "average_rate": average_rate, "width": width, "height": height,
                          "num_frames": cfg.DATA.NUM_FRAMES, "sampling_rate": cfg.DATA.SAMPLING_RATE,
                          "target_fps": cfg.DATA.TARGET_FPS, "test_crop_size": crop,
                          "temporal_views": cfg.TEST.NUM_ENSEMBLE_VIEWS, "spatial_views": cfg.TEST.NUM_SPATIAL_CROPS,
                          "mean": list(cfg.DATA.MEAN), "std": list(cfg.DATA.STD),
                          "decoding_backend": cfg.DATA.DECODING_BACKEND, "overrides": {**EVERY_RUN, **overrides},
                          "views": views})
            print(f"kinetics {config_name} {name}: {len(views)} views")
    write(GOLDEN / "kinetics.json", {
        **official(commit, "slowfast/datasets/kinetics.py: Kinetics(cfg, 'test').__getitem__ (decoder.decode with "
                   "PyAV, utils.tensor_normalize, utils.spatial_sampling)"),
        "read_out": "frame indices: decoder.temporal_sampling's output matched in the pyav_decode_stream buffer, "
                    "buffer pts -> index in presentation order; resized: random_short_side_scale_jitter's output "
                    "size; crop_boxes: every (top, left) where uniform_crop's output lies in its input",
        "cases": cases})
    save_torch(GOLDEN / "kinetics_tensors.pt", tensors)


def frame_number(name: str) -> int:
    """0-based frame index of ``frame_0000000001.jpg`` (file 1 is frame 0)."""
    return int(name.split("_")[1].split(".")[0]) - 1


def ssv2(code: Path, commit: str, tmp: Path) -> None:
    from slowfast.datasets.ssv2 import Ssv2

    frames_root = GOLDEN / "videos" / "ssv2"
    names = list(SSV2_VIDEOS)
    lines = ["original_vido_id video_id frame_id path labels"]
    for seed, (name, (count, width, height)) in enumerate(SSV2_VIDEOS.items()):
        write_frames(frames_root / name, count, width, height, 20 + seed)
        lines += [f"{name} {seed} {t} {name}/frame_{t + 1:010d}.jpg \"\"" for t in range(count)]
    atomic_write_text(tmp / "val.csv", "\n".join(lines) + "\n")
    atomic_write_text(tmp / "something-something-v2-labels.json", json.dumps({"Doing something": "0"}))
    atomic_write_text(tmp / "something-something-v2-validation.json", json.dumps(
        [{"id": name, "template": "Doing [something]"} for name in names]))
    overrides = {"DATA.PATH_TO_DATA_DIR": str(tmp), "DATA.PATH_PREFIX": str(frames_root),
                 "DATA.TEST_CROP_SIZE": SSV2_CROP}
    cfg = official_cfg(code, SSV2_CONFIG, overrides)
    dataset = Ssv2(cfg, "test")
    capture = Capture()
    capture_images(capture)
    capture_spatial(capture)
    per_video = cfg.TEST.NUM_ENSEMBLE_VIEWS * cfg.TEST.NUM_SPATIAL_CROPS
    cases, tensors = [], {}
    try:
        for v, name in enumerate(names):
            views = []
            for k in range(per_video):
                frames = dataset[v * per_video + k][0][0]
                indices = [frame_number(p) for p in capture.records["paths"]]
                views.append(view_record(frames, capture.records["sampled"], indices, capture, k,
                                         cfg.TEST.NUM_SPATIAL_CROPS))
                tensors[f"{name}/{k}"] = probe(frames)
            count, width, height = SSV2_VIDEOS[name]
            cases.append({"video": f"videos/ssv2/{name}", "frames": count, "width": width, "height": height,
                          "num_frames": cfg.DATA.NUM_FRAMES, "test_crop_size": SSV2_CROP,
                          "temporal_views": cfg.TEST.NUM_ENSEMBLE_VIEWS, "spatial_views": cfg.TEST.NUM_SPATIAL_CROPS,
                          "mean": list(cfg.DATA.MEAN), "std": list(cfg.DATA.STD),
                          "reverse_input_channel": cfg.DATA.REVERSE_INPUT_CHANNEL, "views": views})
            print(f"ssv2 {name}: {len(views)} views")
    finally:
        capture.restore()
    write(GOLDEN / "ssv2.json", {
        **official(commit, "slowfast/datasets/ssv2.py: Ssv2(cfg, 'test').__getitem__ (get_seq_frames, "
                   "utils.retry_load_images with cv2, tensor_normalize, spatial_sampling, pack_pathway_output)"),
        "config": SSV2_CONFIG, "overrides": {**EVERY_RUN, **overrides},
        "read_out": "frame indices: the file names retry_load_images was given; frames_sha: its decoded uint8 "
                    "frames (BGR, as cv2 gives them); resized, crop_boxes: as kinetics.json",
        "cases": cases})
    save_torch(GOLDEN / "ssv2_tensors.pt", tensors)


def epic(code: Path, commit: str, tmp: Path) -> None:
    import pandas as pd
    from slowfast.datasets.epickitchens import Epickitchens

    root = GOLDEN / "videos" / "epic"
    for seed, (video, (count, width, height)) in enumerate(EPIC_VIDEOS.items()):
        write_frames(root / video.split("_")[0] / "rgb_frames" / video, count, width, height, 40 + seed)
    rows = [{"participant_id": video.split("_")[0], "video_id": video, "start_timestamp": start,
             "stop_timestamp": stop, "verb_class": verb, "noun_class": noun}
            for _, video, start, stop, verb, noun in EPIC_SEGMENTS]
    table = pd.DataFrame(rows, index=[s[0] for s in EPIC_SEGMENTS])
    table.to_pickle(tmp / "EPIC_100_validation.pkl")
    overrides = {"EPICKITCHENS.VISUAL_DATA_DIR": str(root), "EPICKITCHENS.ANNOTATIONS_DIR": str(tmp),
                 "DATA.TEST_CROP_SIZE": EPIC_CROP}
    cfg = official_cfg(code, EPIC_CONFIG, overrides)
    dataset = Epickitchens(cfg, "test")
    capture = Capture()
    capture_images(capture)
    capture_spatial(capture)
    per_segment = cfg.TEST.NUM_ENSEMBLE_VIEWS * cfg.TEST.NUM_SPATIAL_CROPS
    cases, tensors = [], {}
    try:
        for s, (narration, video, start, stop, verb, noun) in enumerate(EPIC_SEGMENTS):
            record = dataset._video_records[s * per_segment]
            views = []
            for k in range(per_segment):
                item = dataset[s * per_segment + k]
                frames = item[0][0]
                indices = [frame_number(p) for p in capture.records["paths"]]
                views.append(view_record(frames, capture.records["sampled"], indices, capture, k,
                                         cfg.TEST.NUM_SPATIAL_CROPS))
                if k in (0, 29):
                    tensors[f"{narration}/{k}"] = probe(frames)
            count, width, height = EPIC_VIDEOS[video]
            cases.append({"narration_id": narration, "video": f"videos/epic/{video.split('_')[0]}/rgb_frames/{video}",
                          "video_frames": count, "width": width, "height": height, "start_timestamp": start,
                          "stop_timestamp": stop, "label": {"verb": verb, "noun": noun},
                          "official_fps": record.fps, "official_start_frame": record.start_frame,
                          "official_end_frame": record.end_frame, "num_frames": cfg.DATA.NUM_FRAMES,
                          "sampling_rate": cfg.DATA.SAMPLING_RATE, "target_fps": cfg.DATA.TARGET_FPS,
                          "test_crop_size": EPIC_CROP, "temporal_views": cfg.TEST.NUM_ENSEMBLE_VIEWS,
                          "spatial_views": cfg.TEST.NUM_SPATIAL_CROPS, "mean": list(cfg.DATA.MEAN),
                          "std": list(cfg.DATA.STD), "reverse_input_channel": cfg.DATA.REVERSE_INPUT_CHANNEL,
                          "views": views})
            print(f"epic {narration}: {len(views)} views")
    finally:
        capture.restore()
    write(GOLDEN / "epic.json", {
        **official(commit, "slowfast/datasets/epickitchens.py: Epickitchens(cfg, 'test').__getitem__ "
                   "(frame_loader.pack_frames_to_video_clip, utils.retry_load_images with cv2, tensor_normalize, "
                   "spatial_sampling)"),
        "config": EPIC_CONFIG, "overrides": {**EVERY_RUN, **overrides},
        "read_out": "as ssv2.json; the input's channels are cv2's BGR (configs/EK set no REVERSE_INPUT_CHANNEL)",
        "cases": cases})
    save_torch(GOLDEN / "epic_tensors.pt", tensors)


TRAIN_CLIP_SEEDS = 20


def train_clips(code: Path, commit: str, tmp: Path) -> None:
    """``Kinetics(cfg, 'train')[0]`` on each Kinetics video and configuration after ``random.seed(seed)``: its
    ``decoder.decode`` draws the start with ``random.uniform`` (the only draw of Python's generator before it), then
    decodes selectively; the frame indices are read as in ``kinetics``. A small training crop keeps it quick (the
    frames do not depend on it)."""
    from slowfast.datasets.kinetics import Kinetics

    overrides = {"DATA.PATH_TO_DATA_DIR": str(tmp), "DATA.TRAIN_JITTER_SCALES": [36, 44],
                 "DATA.TRAIN_CROP_SIZE": 32}
    cases = []
    for config_name, (config, _) in KINETICS_CONFIGS.items():
        for name in KINETICS_VIDEOS:
            path = GOLDEN / "videos" / f"{name}.mp4"
            atomic_write_text(tmp / "train.csv", f"{path} 0\n")
            cfg = official_cfg(code, config, overrides)
            dataset = Kinetics(cfg, "train")
            capture = Capture()
            capture_decoding(capture, {p: i for i, p in enumerate(all_pts(path))})
            indices = []
            try:
                for seed in range(TRAIN_CLIP_SEEDS):
                    random.seed(seed)
                    dataset[0]
                    indices.append(capture.records["indices"])
            finally:
                capture.restore()
            cases.append({"checkpoint": config_name, "config": config, "video": f"videos/{name}.mp4",
                          "num_frames": cfg.DATA.NUM_FRAMES, "sampling_rate": cfg.DATA.SAMPLING_RATE,
                          "seeds": list(range(TRAIN_CLIP_SEEDS)), "frame_indices": indices})
            print(f"train_clips {config_name} {name}: {len(indices)} clips")
    write(GOLDEN / "train_clips.json", {
        **official(commit, "slowfast/datasets/kinetics.py: Kinetics(cfg, 'train')[0] after random.seed(seed) "
                   "(decoder.decode with PyAV, clip_idx -1: get_start_end_idx's random.uniform, pyav_decode)"),
        "overrides": {**EVERY_RUN, **overrides},
        "read_out": "as kinetics.json: decoder.temporal_sampling's output matched in the pyav_decode_stream buffer",
        "cases": cases})


# Where their EPIC loader places each test view of a segment, frames unread (``EPIC_PLACEMENT_SEGMENTS``): EPIC-100
# and EPIC-55 names (50 / 60 fps), segments shorter and longer than a clip, minutes into a video, starts on half a
# frame (x.x1 s at 50 fps: Python's round halves to even), one-hundredth segments (no frame, or one)
EPIC_PLACEMENT_SEGMENTS = [  # narration_id, video, start, stop
    ("P01_101_10", "P01_101", "00:00:00.01", "00:00:09.37"),
    ("P01_101_11", "P01_101", "00:00:01.73", "00:00:04.11"),
    ("P01_101_12", "P01_101", "00:00:02.03", "00:00:02.04"),
    ("P01_101_13", "P01_101", "00:12:34.57", "00:12:41.09"),
    ("P03_123_14", "P03_123", "01:02:03.45", "01:02:05.15"),
    ("P02_01_15", "P02_01", "00:00:00.00", "00:00:12.35"),
    ("P02_01_16", "P02_01", "00:00:03.33", "00:00:05.01"),
    ("P02_01_17", "P02_01", "00:21:07.49", "00:21:07.50"),
    ("P02_01_18", "P02_01", "00:47:59.99", "00:48:07.77"),
    ("P30_05_19", "P30_05", "00:05:00.05", "00:05:02.65"),
]
EPIC_PLACEMENT_CONFIGS = ("configs/EK/motionformer_224_16x4.yaml", "configs/EK/motionformer_224_32x3.yaml")


def epic_placement(code: Path, commit: str, tmp: Path) -> None:
    """Every test view of ``EPIC_PLACEMENT_SEGMENTS`` as ``frame_loader.pack_frames_to_video_clip`` places it, for
    each EK configuration's frames and stride: the frame files it asks ``utils.retry_load_images`` for, which is
    replaced by a recorder of the names (no image is read: the videos would be an hour long)."""
    import pandas as pd
    from slowfast.datasets import frame_loader, utils
    from slowfast.datasets.epickitchens_record import EpicKitchensVideoRecord

    rows = [{"participant_id": video.split("_")[0], "video_id": video, "start_timestamp": start,
             "stop_timestamp": stop, "verb_class": 0, "noun_class": 0}
            for _, video, start, stop in EPIC_PLACEMENT_SEGMENTS]
    table = pd.DataFrame(rows, index=[s[0] for s in EPIC_PLACEMENT_SEGMENTS])
    records = [EpicKitchensVideoRecord(tup) for tup in table.iterrows()]
    asked: list[list[str]] = []
    original = utils.retry_load_images
    utils.retry_load_images = lambda paths, *args, **kwargs: asked.append([Path(p).name for p in paths])
    cases = []
    try:
        for config in EPIC_PLACEMENT_CONFIGS:
            cfg = official_cfg(code, config, {"EPICKITCHENS.VISUAL_DATA_DIR": str(tmp)})
            for (narration, video, start, stop), record in zip(EPIC_PLACEMENT_SEGMENTS, records, strict=True):
                views = []
                for k in range(cfg.TEST.NUM_ENSEMBLE_VIEWS):
                    frame_loader.pack_frames_to_video_clip(cfg, record, k, target_fps=cfg.DATA.TARGET_FPS)
                    views.append([frame_number(name) for name in asked.pop()])
                cases.append({"config": config, "narration_id": narration, "video_id": video,
                              "start_timestamp": start, "stop_timestamp": stop, "official_fps": record.fps,
                              "official_start_frame": record.start_frame, "official_end_frame": record.end_frame,
                              "num_frames": cfg.DATA.NUM_FRAMES, "sampling_rate": cfg.DATA.SAMPLING_RATE,
                              "target_fps": cfg.DATA.TARGET_FPS, "temporal_views": cfg.TEST.NUM_ENSEMBLE_VIEWS,
                              "views": views})
                print(f"epic_placement {Path(config).stem} {narration}: frames {views[0][0]}..{views[-1][-1]}")
    finally:
        utils.retry_load_images = original
    meta = official(commit, "slowfast/datasets/frame_loader.py: pack_frames_to_video_clip(cfg, "
                    "EpicKitchensVideoRecord(row), view, target_fps=cfg.DATA.TARGET_FPS) for view in "
                    "range(TEST.NUM_ENSEMBLE_VIEWS) (epickitchens_record.py: timestamp_to_sec, start_frame, fps)")
    meta["official"]["shim"] = ("slowfast.datasets.utils.retry_load_images replaced at run time by a recorder of "
                                "the file names it is given (no image read); the placement code runs unchanged")
    write(GOLDEN / "epic_placement.json", {
        **meta,
        "read_out": "frame indices: the file names it passes to utils.retry_load_images (replaced by a recorder "
                    "of the names: no image read), frame_0000000001.jpg = frame 0",
        "cases": cases})


def meter(code: Path, commit: str, tmp: Path) -> None:
    """Random logits of a few videos' 30 views, fed in shuffled order, as their softmax (the model's eval output),
    to ``TestMeter`` (K400: 10 classes) and ``EPICTestMeter`` (6 verbs, 8 nouns)."""
    import slowfast.utils.meters as meters

    generator = torch.Generator().manual_seed(0)
    videos, views = 6, 30
    stats: list[dict[str, Any]] = []
    original_log = meters.logging.log_json_stats
    meters.logging.log_json_stats = lambda s: stats.append(dict(s))
    try:
        logits = (torch.randn(videos * views, 10, generator=generator) * 2).mul(1e3).round().div(1e3)
        labels = torch.randint(0, 10, (videos,), generator=generator)
        order = torch.randperm(videos * views, generator=generator)  # clip id = video * views + view
        test_meter = meters.TestMeter(videos, views, 10, 1, ensemble_method="sum")
        for batch in order.split(7):
            test_meter.update_stats(logits[batch].softmax(-1), labels[batch // views], batch)
        test_meter.finalize_metrics(ks=(1, 5))
        single = {"logits": [[round(x, 3) for x in row] for row in logits.tolist()], "labels": labels.tolist(),
                  "order": order.tolist(),
                  "video_preds": test_meter.video_preds.double().tolist(), "stats": stats[-1]}
        verb_logits = (torch.randn(videos * views, 6, generator=generator) * 2).mul(1e3).round().div(1e3)
        noun_logits = (torch.randn(videos * views, 8, generator=generator) * 2).mul(1e3).round().div(1e3)
        verbs = torch.randint(0, 6, (videos,), generator=generator)
        nouns = torch.randint(0, 8, (videos,), generator=generator)
        # make a few videos right, so that the accuracies are not all zero
        summed_verb = verb_logits.softmax(-1).view(videos, views, 6).sum(1)
        summed_noun = noun_logits.softmax(-1).view(videos, views, 8).sum(1)
        verbs[:3], nouns[1:4] = summed_verb[:3].argmax(-1), summed_noun[1:4].argmax(-1)
        epic_meter = meters.EPICTestMeter(videos, views, (6, 8), 1)
        for batch in order.split(7):
            epic_meter.update_stats((verb_logits[batch].softmax(-1), noun_logits[batch].softmax(-1)),
                                    (verbs[batch // views], nouns[batch // views]),
                                    {"narration_id": [str(int(i) // views) for i in batch]}, batch)
        (verb_preds, noun_preds), _, _ = epic_meter.finalize_metrics(ks=(1, 5))
        epic = {"verb_logits": [[round(x, 3) for x in row] for row in verb_logits.tolist()],
                "noun_logits": [[round(x, 3) for x in row] for row in noun_logits.tolist()], "verbs": verbs.tolist(),
                "nouns": nouns.tolist(), "order": order.tolist(), "verb_preds": verb_preds.tolist(),
                "noun_preds": noun_preds.tolist(), "stats": stats[-1]}
    finally:
        meters.logging.log_json_stats = original_log
    write(GOLDEN / "meter.json", {
        **official(commit, "slowfast/utils/meters.py: TestMeter(6, 30, 10, 1, ensemble_method='sum').update_stats("
                   "softmax(logits), labels, clip_ids) in batches of 7, finalize_metrics(ks=(1, 5)); "
                   "EPICTestMeter(6, 30, (6, 8), 1) likewise; stats read from logging.log_json_stats"),
        "views_per_video": views, "single_head": single, "epic": epic})


def counts(values: Any, low: int, high: int) -> list[int]:
    """How often each integer in [low, high] occurs."""
    return np.bincount(np.asarray(values, dtype=np.int64) - low, minlength=high - low + 1).tolist()


def train(code: Path, commit: str, tmp: Path) -> None:
    """10,000 draws of each training choice from the authors' functions, seeded (np.random, random, torch: 0)."""
    import types

    import slowfast.datasets.decoder as decoder
    import slowfast.datasets.transform as transform
    import slowfast.datasets.utils as utils
    from slowfast.datasets.ssv2 import Ssv2

    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    draws: dict[str, Any] = {}
    # Clip start: a 300-frame 30 fps video, 16 x 4 frames at 30 fps (clip size 64, delta 236). The authors' draw,
    # and the first frame PyAV selective decoding then gives (pyav_decode: start_pts = int(start * pts per frame),
    # pyav_decode_stream keeps frames with pts >= start_pts; pts per frame 512 as in our mp4 files at 30 fps).
    starts = [decoder.get_start_end_idx(300, 16 * 4 / 30 * 30, -1, 10)[0] for _ in range(TRAIN_DRAWS)]
    first_decoded = [-(-int(start * 512) // 512) for start in starts]
    draws["start"] = {"video_frames": 300, "fps": 30, "num_frames": 16, "sampling_rate": 4, "delta": 236,
                      "floor_of_draw": counts(np.floor(starts), 0, 236), "first_decoded": counts(first_decoded, 0, 236)}
    image = torch.zeros(1, 1, 36, 48)
    for key, inverse in (("scale", False), ("scale_inverse_uniform", True)):
        sides = [transform.random_short_side_scale_jitter(image, 256, 320, inverse_uniform_sampling=inverse)[0]
                 .shape[2] for _ in range(TRAIN_DRAWS)]
        draws[key] = {"min": 256, "max": 320, "frame": [36, 48], "counts": counts(sides, 256, 320)}
    height, width, size = 256, 341, 224
    coded = (torch.arange(height)[:, None] * 1000 + torch.arange(width)[None, :]).float()[None, None]
    tops, lefts = [], []
    for _ in range(TRAIN_DRAWS):
        value = int(transform.random_crop(coded, size)[0][0, 0, 0, 0])
        tops.append(value // 1000)
        lefts.append(value % 1000)
    draws["crop"] = {"height": height, "width": width, "size": size, "top": counts(tops, 0, height - size),
                     "left": counts(lefts, 0, width - size)}
    flips = sum(int(transform.horizontal_flip(0.5, coded)[0][0, 0, 0, 0]) != 0 for _ in range(TRAIN_DRAWS))
    draws["flip"] = {"prob": 0.5, "flipped": flips, "draws": TRAIN_DRAWS}
    jittered = [0]
    original = transform.color_jitter

    def counting(images, *args):
        jittered[0] += 1
        return images

    transform.color_jitter = counting
    try:
        for _ in range(TRAIN_DRAWS):
            utils.frames_augmentation(torch.zeros(1, 3, 2, 2), colorjitter=True, use_grayscale=False)
    finally:
        transform.color_jitter = original
    draws["color_jitter_applied"] = {"applied": jittered[0], "draws": TRAIN_DRAWS, "strength": [0.4, 0.4, 0.4]}
    fake = types.SimpleNamespace(cfg=types.SimpleNamespace(DATA=types.SimpleNamespace(NUM_FRAMES=16)),
                                 _path_to_videos=[list(range(41))], mode="train")
    seqs = np.array([Ssv2.get_seq_frames(fake, 0) for _ in range(TRAIN_DRAWS)])
    draws["ssv2_segments"] = {"video_frames": 41, "num_frames": 16,
                              "counts": [counts(seqs[:, i], 0, 40) for i in range(16)]}
    write(GOLDEN / "train.json", {
        **official(commit, "slowfast/datasets: decoder.get_start_end_idx(300, 64, -1, 10), "
                   "transform.random_short_side_scale_jitter(image, 256, 320[, inverse_uniform_sampling=True]), "
                   "transform.random_crop(coded 256x341 image, 224), transform.horizontal_flip(0.5, ...), "
                   "utils.frames_augmentation(colorjitter=True) with transform.color_jitter counted, "
                   "ssv2.Ssv2.get_seq_frames in train mode on a 41-frame list"),
        "draws_each": TRAIN_DRAWS, "seeds": "random, np.random, torch: 0", **draws})


def main() -> None:
    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--official-code", required=True, type=path("a folder"))
    parser.add_argument("--parts", nargs="+", default=["kinetics", "ssv2", "epic", "epic_placement", "meter",
                                                       "train", "train_clips"])
    args = parser.parse_args()
    code = args.official_code.resolve()
    sys.path.insert(0, str(REPO))
    sys.path.insert(0, str(code))
    commit = git_commit(code)
    torch.set_num_threads(1)
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    GOLDEN.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for part in args.parts:
            globals()[part](code, commit, Path(tmp))


if __name__ == "__main__":
    main()
