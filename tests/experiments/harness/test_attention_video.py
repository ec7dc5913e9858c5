"""``python -m experiments attention`` on a user's video: the query is the video's own frame and pixel, mapped through
the test view's resize and crop; a short video's repeated frames are named so; a weights file picks the row's column
by its head (or is one line); only the clip's frames are decoded, after the header's frame size passed its bound;
3D-Deformable's sampling points at an offset stride of 2."""

from __future__ import annotations

import dataclasses

import av
import numpy as np
import pytest
import torch

from data.video_io import Video, write_video
from experiments.__main__ import main as experiments_main
from experiments.d3da import figures as d3da
from experiments.harness.attention_clip import (
    Query,
    captioned,
    centre_clip,
    generated_frames,
    make_clip,
    place_query,
    video_file_frames,
)
from experiments.harness.row_model import data_classes, row_config
from experiments.harness.tasks import build_model
from experiments.mformer import figures as mformer

MFORMER = ("mformer_table4", "traj_attT_normS")  # tiny: 8 frames at stride 2, crop 32; columns K-400 and SSv2
ROW = ("mformer_table4", "--rows", "traj_attT_normS")


def _attention(capsys, *argv: str) -> tuple[int, str]:
    try:
        status = experiments_main(["attention", *argv])
    except SystemExit as stop:  # an option argparse refuses
        status = stop.code
    return status, capsys.readouterr().err


def _dot_video(path, frames: int, height: int, width: int, frame: int, y: int, x: int):
    """A dark video with a bright 3x3 dot at (y, x) in ``frame`` only."""
    pixels = np.full((frames, height, width, 3), 20, np.uint8)
    pixels[frame, y - 1:y + 2, x - 1:x + 2] = 255
    return write_video(path, pixels, 15)


def test_the_query_is_the_videos_frame_and_pixel_where_the_model_sees_it(tmp_path):
    cfg = row_config(*MFORMER, "tiny", "SSv2")
    path = _dot_video(tmp_path / "dot.mp4", 40, 48, 96, frame=14, y=30, x=60)
    clip = make_clip(cfg, video_file_frames(path, cfg))
    assert clip.frame_indices == tuple(centre_clip(40, 8, 2)) == (12, 14, 16, 18, 20, 22, 24, 26)
    query, caption = place_query(clip, Query(14, 30, 60), cfg.data.crop_size)
    assert query.frame == 1  # video frame 14 is the clip's second frame
    shown = clip.frames[query.frame].astype(int).sum(-1)  # the model's input as the figures show it
    bright = np.unravel_index(shown.argmax(), shown.shape)
    assert abs(bright[0] - query.y) <= 1 and abs(bright[1] - query.x) <= 1, (bright, query)
    assert "video frame 14" in caption and "centre crop" in caption and f"({query.y}, {query.x})" in caption
    # a frame between two of the clip's is placed on the nearer, and the caption says so
    between, words = place_query(clip, Query(15, 30, 60), cfg.data.crop_size)
    assert between.frame in (1, 2) and "nearest in the clip" in words


@pytest.mark.parametrize("query, named", [
    ("60,30,60", "frame 60 is outside the clip's video frames 12-26"),
    ("14,50,60", "pixel (50, 60) is outside the video's 48x96 frame"),
    ("14,30,2", "pixel (30, 2) of the video is outside the model's centre crop (rows 0-47, columns 24-71"),
    # Arabic-Indic digits: the ASCII rule of every number; the option and the value it refused are named
    ("14,30,\u0661\u0662", "argument --query: expected T,Y,X: 3 frame and pixel indices from 0 to 1,000,000, "
                             "got '14,30,\u0661\u0662'"),
])
def test_a_query_outside_the_clip_the_frame_or_the_crop_is_one_line(tmp_path, capsys, query, named):
    path = _dot_video(tmp_path / "dot.mp4", 40, 48, 96, frame=14, y=30, x=60)
    status, err = _attention(capsys, *ROW, "--column", "SSv2", "--video", str(path), "--query", query,
                             "--out", str(tmp_path / "out"))
    assert status == 2 and err.count("\n") == 1 and named in err, err
    assert not (tmp_path / "out").exists()


def test_a_short_videos_repeated_frames_are_named_in_the_panels_and_the_caption(tmp_path, monkeypatch):
    cfg = row_config(*MFORMER, "tiny", "SSv2")
    path = write_video(tmp_path / "four.mp4", np.random.default_rng(0).integers(0, 255, (4, 32, 32, 3), np.uint8), 15)
    clip = make_clip(cfg, video_file_frames(path, cfg))
    assert clip.frame_indices == (0, 2, 3, 3, 3, 3, 3, 3)
    assert [clip.frame_label(i) for i in (1, 2, 3)] == ["frame 2", "frame 3", "frame 3 repeated"]
    query, caption = place_query(clip, None, cfg.data.crop_size)
    clip = captioned(clip, caption)
    assert "clip frames 3-7 repeat its frame 3" in clip.source
    drawn = {}
    monkeypatch.setattr(mformer, "frame_maps",  # (frames, maps, step, point, title, labels, ...)
                        lambda *args, **kwargs: drawn.update(title=args[4], labels=args[5]))
    torch.manual_seed(0)
    mformer.mformer_figures(build_model(cfg, data_classes(cfg)).eval(), clip, query)
    assert drawn["labels"] == ["t=0 (frame 0)", "t=1 (frame 3)", "t=2 (frame 3 repeated)", "t=3 (frame 3 repeated)"]
    assert "repeat its frame 3" in drawn["title"]


def test_a_weights_file_draws_the_column_its_head_fits_or_is_one_line(tmp_path, capsys):
    """The row's columns have heads of 40 (K-400's stand-in) and 12 classes (SSv2's): weights of the second column
    are drawn without --column, and refused in one line naming the head's shape with --column K-400."""
    cfg = row_config(*MFORMER, "tiny", "SSv2")
    torch.manual_seed(0)
    torch.save(build_model(cfg, data_classes(cfg)).state_dict(), tmp_path / "ssv2.pt")
    assert experiments_main(["attention", *ROW, "--weights", str(tmp_path / "ssv2.pt"), "--out",
                             str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "mformer_fig1_fig4_trajectory.png").is_file()
    status, err = _attention(capsys, *ROW, "--column", "K-400", "--weights", str(tmp_path / "ssv2.pt"),
                             "--out", str(tmp_path / "k400"))
    assert status == 2 and err.count("\n") == 1 and "head" in err and "[12, " in err and "[40, " in err, err
    other = row_config("mformer_table4", "joint", "tiny", "SSv2")  # another row's model: no column fits
    torch.save(build_model(other, data_classes(other)).state_dict(), tmp_path / "joint.pt")
    status, err = _attention(capsys, *ROW, "--weights", str(tmp_path / "joint.pt"), "--out", str(tmp_path / "j"))
    assert status == 2 and err.count("\n") == 1 and "not weights of any column" in err, err


def test_sampling_points_at_an_offset_stride_of_two(monkeypatch):
    """At an offset stride of 2 the sampled grid has 2x2 cells of 2x2 tokens a step: the query (frame 5, pixel
    (20, 9)) reads the cell of its token pair; every point is drawn once, on the frame it samples (the frame nearest
    its time coordinate), the query's own point among them."""
    cfg = row_config("d3da_figureA1", "pennaction", "tiny", None)
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(
        cfg.model, overrides={**cfg.model.overrides, "offset_stride": 2}))
    torch.manual_seed(0)
    model = build_model(cfg, data_classes(cfg)).eval()
    clip = make_clip(cfg, generated_frames(cfg, 1))
    drawn, captured = {}, {}
    real = d3da.sampled_pixels
    monkeypatch.setattr(d3da, "sampled_pixels", lambda *args: captured.setdefault("pixels", real(*args)))
    monkeypatch.setattr(d3da, "sampling_points",  # (frames, points, its frame, point, ...)
                        lambda *args, **kwargs: drawn.update(points=args[1], frame=args[2], point=args[3]))
    monkeypatch.setattr(d3da, "pose_attention", lambda *args, **kwargs: None)
    query = Query(5, 20, 9)
    d3da.d3da_figures(model, clip, query)
    pixels, grid = captured["pixels"], cfg.data.crop_size // 8 // 2
    assert pixels.shape[1:3] == (grid, grid)
    assert len(drawn["points"]) == cfg.data.num_frames
    assert sum(len(p) for p in drawn["points"]) == pixels[..., 0].size  # every point once
    steps = pixels.shape[0]
    assert np.allclose(drawn["point"], pixels[5 * steps // cfg.data.num_frames, 20 // 16, 9 // 16])
    assert drawn["frame"] == min(max(round(drawn["point"][2]), 0), cfg.data.num_frames - 1)
    assert any(np.allclose(drawn["point"], p) for p in drawn["points"][drawn["frame"]])
    for frame, points in enumerate(drawn["points"]):  # each on the frame nearest its time coordinate
        assert np.all(np.clip(np.rint(points[:, 2]), 0, cfg.data.num_frames - 1) == frame)


# ---- decoding only what is drawn ---------------------------------------------------------------------------------


def _mjpeg(path, frames: int, height: int, width: int):
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mjpeg", rate=15)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuvj420p"
        frame = av.VideoFrame.from_ndarray(np.zeros((height, width, 3), np.uint8), format="rgb24")
        for _ in range(frames):
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def test_a_video_of_huge_frames_is_refused_from_its_header_before_a_frame_is_decoded(tmp_path, capsys, monkeypatch):
    path = _mjpeg(tmp_path / "huge.avi", 3, 8192, 8192)
    assert path.stat().st_size < 4_000_000  # about 3 MB

    def no_decoding(*args, **kwargs):
        raise AssertionError("a frame was decoded")

    monkeypatch.setattr(Video, "_decode_from", no_decoding)
    status, err = _attention(capsys, *ROW, "--column", "SSv2", "--video", str(path), "--out", str(tmp_path / "o"))
    assert status == 2 and err.count("\n") == 1 and "8192x8192" in err and "--allow-large" in err, err


def test_drawing_eight_frames_of_a_long_video_reads_only_their_span(tmp_path, monkeypatch):
    path = _mjpeg(tmp_path / "long.avi", 2000, 360, 640)
    demuxed = [0]
    opened = av.open

    class Counting:  # the container, counting the packets read from it
        def __init__(self, container):
            self._container = container

        def __getattr__(self, name):
            return getattr(self._container, name)

        def demux(self, *args, **kwargs):
            for packet in self._container.demux(*args, **kwargs):
                demuxed[0] += 1
                yield packet

    monkeypatch.setattr("data.video_io.av.open", lambda *args, **kwargs: Counting(opened(*args, **kwargs)))
    cfg = row_config(*MFORMER, "tiny", "SSv2")
    frames = video_file_frames(path, cfg)
    assert frames.held == tuple(range(992, 1007, 2)) and frames.frames.shape == (8, 360, 640, 3)
    assert demuxed[0] < 100, demuxed  # the clip spans 15 frames; not the video's 2,000
