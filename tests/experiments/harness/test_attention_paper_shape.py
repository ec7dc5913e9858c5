"""``python -m experiments attention`` at the papers' shape: the figures drawn from weights saved by the test in the
authors' checkpoint layout (``--released NAME --weights-dir DIR``, read and checked as ``evaluate`` reads them) for
Motionformer (trajectory attention, ``mformer:k400_motionformer_224_16x4``: 16 frames, tubelet 2, 224 px, patch 16,
so 8 steps of 14x14 patches; and ``mformer:k400_divided_224_16x4``, the official divided block) and CAST
(``cast:cast_b16_ek100``: 16 frames, each expert on 8 steps of 14x14 patches), on a short random video file (the test
transform resizes it to the 224-px crop). The weights are random (N(0, 0.02^2)) so the maps are not flat; the numbers
mean nothing, the test is that the real command runs at the real shapes and that what it draws is the paper's grid:
the map helpers and figure functions are wrapped to keep what the command passed them.

3D-Deformable (``d3da_figureA1`` row ``pennaction``, column '12 frames') has no authors' layout to use: its authors
released neither code nor weights, so the catalogue has no entry for it. Its paper-shape model is drawn from a random
state file in our own layout (``--weights FILE --scale paper``), a PennAction model of its 15 actions as a user would
save it, on a PennAction root of the published shape (``--data-root``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from data.pose import PENNACTION_ACTIONS
from data.video_io import write_video
from experiments.cast import figures as cast
from experiments.harness.attention import row_config
from experiments.harness.attention_clip import centre_clip
from experiments.harness.evaluate import resolve_evaluation
from experiments.harness.tasks import build_model
from experiments.mformer import figures as mformer
from tests.faults.doors import run_command

from .released_files import write_released
from .test_attention_command import _tensorboard_images

SECONDS = 300  # the command's deadline: about 10-15 s each on one busy core
FRAMES, SIZE = 64, 224  # the video file: 64 frames of 224x224 (the 16-frame clips are taken from its centre)
MFORMER = ("mformer_table6b", "mformer", "mformer:k400_motionformer_224_16x4")
MFORMER_DIVIDED = ("mformer_table4", "divided", "mformer:k400_divided_224_16x4")  # the official divided block
CAST = ("cast_table2", "cast", "cast:cast_b16_ek100")
D3DA = ("d3da_figureA1", "pennaction", "12 frames")
QUERY = (3, 200, 17)  # clip frame 3, pixel (200, 17) of the 224-px input: step 1, patch row 12, column 1
STEPS, GRID = 8, 14  # 16 frames / 2 per step; 224 px / 16 px a patch


def _video(tmp_path: Path) -> Path:
    """Random 8x8-pixel blocks: at 224 px the test view neither resizes nor crops, so the video's pixels are the
    input's."""
    path = tmp_path / "clip.mp4"
    blocks = np.random.default_rng(0).integers(0, 255, (FRAMES, SIZE // 8, SIZE // 8, 3), dtype=np.uint8)
    write_video(path, blocks.repeat(8, axis=1).repeat(8, axis=2), 15)
    return path


def _video_query(table: str, row: str) -> str:
    """``QUERY`` as the video's frame and pixel: the video frame that the row's clip takes as its frame 3."""
    cfg = row_config(table, row, "paper", None)
    frame = centre_clip(FRAMES, cfg.data.num_frames, cfg.data.frame_stride or 1)[QUERY[0]]
    return f"{frame},{QUERY[1]},{QUERY[2]}"


def _spy(monkeypatch, module: Any, name: str) -> list[tuple[tuple, Any]]:
    """Wraps ``module.name`` so that each call's (arguments, result) is kept; the call itself is unchanged."""
    calls: list[tuple[tuple, Any]] = []
    real = getattr(module, name)

    def kept(*args):
        result = real(*args)
        calls.append((args, result))
        return result

    monkeypatch.setattr(module, name, kept)
    return calls


def _draw(tmp_path: Path, table: str, row: str, *options: str) -> tuple[Path, list[str]]:
    """Runs the command with the test's video and query; (out folder, its file names)."""
    out = tmp_path / "out"
    query = _video_query(table, row)
    code, stdout, stderr = run_command("experiments", ["attention", table, "--rows", row, *options, "--video",
                                                       str(_video(tmp_path)), "--query", query, "--out", str(out)],
                                       seconds=SECONDS)
    assert code == 0, stderr
    names = sorted(p.name for p in out.iterdir())
    assert stdout.split() == [str(out / n) for n in names if n.endswith(".png")]
    assert any(n.startswith("events.out.tfevents") for n in names)
    return out, names


def _draw_released(tmp_path: Path, table: str, row: str, name: str) -> tuple[Path, list[str]]:
    """The entry's file written in the authors' layout (random values) and drawn by name from its folder."""
    folder = tmp_path / "weights"
    evaluation = resolve_evaluation(table, row, name, folder)
    written = write_released(evaluation, folder, tiny=False)
    assert written == folder / evaluation.entry.file and written.is_file()
    return _draw(tmp_path, table, row, "--released", name, "--weights-dir", str(folder))


def _png(path: Path, rows: int) -> np.ndarray:
    """The figure as an RGB array: a PNG of ``rows`` rows of panels (six a row at most), not blank."""
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = np.asarray(Image.open(path).convert("RGB"))
    height, width = image.shape[:2]
    assert 150 * rows < height < 400 * rows and width >= 6 * 150
    assert image.std() > 10  # frames and maps drawn, not an empty canvas
    return image


def _step_sums(weights: np.ndarray) -> np.ndarray:
    return weights.reshape(weights.shape[0], -1).sum(1)


@pytest.mark.slow
def test_motionformer_trajectory_figure_from_the_authors_layout_at_paper_shape(tmp_path, monkeypatch):
    maps = _spy(monkeypatch, mformer, "motionformer_maps")
    panels = _spy(monkeypatch, mformer, "frame_maps")
    out, names = _draw_released(tmp_path, *MFORMER)

    png = "mformer_fig1_fig4_trajectory.png"
    assert [n for n in names if n.endswith(".png")] == [png]
    assert _tensorboard_images(out) == ["attention/mformer_fig1_fig4_trajectory"]
    _png(out / png, rows=2)  # 8 steps
    # The last block's trajectory attention over 8 steps of 14x14 patches, queried at step 1, patch (12, 1).
    assert len(maps) == 1
    (record, token), drawn = maps[0]
    assert record.kind == "trajectory" and record.name == "blocks.11.attn"
    assert tuple(record.layout["thw"]) == (STEPS, GRID, GRID)
    assert token == (QUERY[0] // 2, QUERY[1] // 16, QUERY[2] // 16) == (1, 12, 1)
    assert drawn.shape == (STEPS, GRID, GRID)
    assert np.allclose(_step_sums(drawn), 1, atol=1e-3)  # stage one (Eq. 4): a softmax over each step's patches
    assert drawn.std() > 0
    # One panel per step: every other frame of the 224-px clip, each under its own map.
    (frames, drawn_maps, step, xy, _, labels, thing, construction), _ = panels[0]
    assert len(frames) == len(labels) == STEPS and drawn_maps is drawn and step == 1
    assert thing is None and construction is None  # a video file knows no moving thing; trajectory maps are learned
    assert all(frame.shape == (224, 224, 3) for frame in frames) and xy == (17.5, 200.5)
    assert labels[-1] == f"t=7 (frame {centre_clip(FRAMES, 16, 4)[14]})"  # the video frame of clip frame 14


@pytest.mark.slow
def test_motionformer_divided_figure_from_the_authors_layout_at_paper_shape(tmp_path, monkeypatch):
    """The released divided checkpoints run the official block (``divided_official``), whose temporal stage is a
    module of the block before the attention: its record holds both stages."""
    maps = _spy(monkeypatch, mformer, "motionformer_maps")
    out, names = _draw_released(tmp_path, *MFORMER_DIVIDED)

    assert [n for n in names if n.endswith(".png")] == ["mformer_fig1_fig4_divided.png"]
    _png(out / "mformer_fig1_fig4_divided.png", rows=2)
    (record, token), drawn = maps[0]
    assert (record.kind, record.name, record.layout["temporal_keys"]) == ("divided", "blocks.11.attn", "cls+steps")
    assert tuple(record.layout["thw"]) == (STEPS, GRID, GRID) and token == (1, 12, 1)
    assert drawn.shape == (STEPS, GRID, GRID) and drawn.std() > 0
    # In the query's step its frame's patches (the class token's share left out), elsewhere its own location only.
    assert 0.5 < drawn[1].sum() < 1 and np.count_nonzero(np.delete(drawn, 1, axis=0)) == STEPS - 1


@pytest.mark.slow
def test_cast_figure_3c_from_the_authors_layout_at_paper_shape(tmp_path, monkeypatch):
    maps = _spy(monkeypatch, cast, "cast_maps")
    panels = _spy(monkeypatch, cast, "cast_windows")
    out, names = _draw_released(tmp_path, *CAST)

    assert [n for n in names if n.endswith(".png")] == ["cast_fig3c.png"]
    assert _tensorboard_images(out) == ["attention/cast_fig3c"]
    _png(out / "cast_fig3c.png", rows=4)  # 8 steps of T2S, then S2T
    # T2S of the exchange before the last (block 10: the last one's T2S output reaches no head) along the 8 steps at
    # the query's patch; S2T of the last exchange (block 11) over its step's 14x14.
    assert len(maps) == 1
    (t2s, s2t, step, patch), (along_time, along_space) = maps[0]
    assert (t2s.name, s2t.name) == ("exchange.10.t2s", "exchange.11.s2t")
    assert (t2s.layout["window"], s2t.layout["window"]) == ("time", "space")
    assert step == QUERY[0] // 2 == 1 and patch == 12 * GRID + 1
    assert along_time.shape == (STEPS,) and along_space.shape == (GRID * GRID,)
    assert along_time.sum() == pytest.approx(1, abs=1e-3) and along_space.sum() == pytest.approx(1, abs=1e-3)
    assert along_space.std() > 0
    (frames, drawn_t2s, drawn_s2t, query_step, cell, grid, xy, _), _ = panels[0]
    assert len(frames) == STEPS and all(frame.shape == (224, 224, 3) for frame in frames)
    assert drawn_t2s is along_time and drawn_s2t.shape == (GRID, GRID) and grid == (GRID, GRID)
    assert (query_step, cell, xy) == (1, (12, 1), (17.5, 200.5))


def _d3da_state_file(tmp_path: Path) -> Path:
    """A random state dict of the row's paper-scale model, built as the command builds it, for PennAction's 15
    actions (the row names no class count; a user's model of the real data has 15)."""
    cfg = row_config(D3DA[0], D3DA[1], "paper", D3DA[2])
    assert (cfg.data.num_frames, cfg.data.crop_size) == (12, 224)
    torch.manual_seed(0)
    model = build_model(cfg, len(PENNACTION_ACTIONS))
    path = tmp_path / "d3da_paper.pt"
    torch.save(model.state_dict(), path)
    return path


@pytest.mark.slow
def test_d3da_figures_from_a_state_file_in_our_layout_at_paper_shape(tmp_path):
    """No authors' layout exists for 3D-Deformable (neither code nor weights were released): a state file of ours.
    Its clip carries joints, so it comes from a PennAction root of the published shape (``--data-root``: 640x480
    JPEG frames and .mat labels, written by ``data.synthetic.paper_shape``, frames shrunk 1/14), through the row's
    test pipeline; the class count is the root's (15)."""
    from data.synthetic.paper_shape import ensure_paper_shape

    weights = _d3da_state_file(tmp_path)
    data_root = tmp_path / "data"
    data_root.mkdir()
    (data_root / "pennaction").symlink_to(ensure_paper_shape("pennaction", tmp_path / "cache", num_train=1,
                                                             num_val=1, shrink=14))
    out = tmp_path / "out"
    code, stdout, stderr = run_command("experiments", [
        "attention", D3DA[0], "--rows", D3DA[1], "--column", D3DA[2], "--scale", "paper", "--weights", str(weights),
        "--data-root", str(data_root), "--out", str(out)], seconds=SECONDS)
    assert code == 0, stderr
    names = sorted(p.name for p in out.iterdir() if p.suffix == ".png")
    assert names == ["d3da_a2_joint_stride.png", "d3da_a3_a5_sampling_points.png"]
    assert sorted(stdout.split()) == [str(out / n) for n in names]
    for name in names:
        image = np.asarray(Image.open(out / name).convert("RGB"))
        assert image.shape[1] > 12 * 100 and image.std() > 10  # one panel per frame of the 12


def test_a_paper_scale_row_on_real_data_without_a_root_says_what_to_give(tmp_path):
    code, _, stderr = run_command("experiments", [
        "attention", D3DA[0], "--rows", D3DA[1], "--column", D3DA[2], "--scale", "paper", "--weights",
        str(tmp_path / "none.pt"), "--data-root", str(tmp_path / "no_such_root")])
    assert code == 2 and stderr.count("\n") == 1 and "give --data-root DIR holding pennaction/" in stderr, stderr
