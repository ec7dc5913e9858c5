"""DAVIS label propagation (Motionformer Table 9): defaults, first-frame labels, object set and position tables, checked
against literal values of the sources the protocol follows and plain formulas written here, never the code under test.

* ``evaluate_davis`` with no options runs DINO's protocol (``eval_video_segmentation.py`` argparse defaults
  ``--n_last_frames 7 --size_mask_neighborhood 12 --topk 5``, temperature 0.1 hard-coded, ``read_frame``'s 480 short
  side with the long side floored to a multiple of 64) and scores with ``davis2017-evaluation``'s ``bound_th=0.008``;
* ``propagate_labels`` called without options equals the slow reference of
``tests/lightning_modules/test_label_propagation.py`` run with those
  literal values, on a grid wide enough for the radius of 12 patches and a sequence long enough for the queue of 7;
* ``first_frame_labels``: the first annotation reaches the feature grid as DINO's ``read_seg`` (PIL nearest, one-hot);
* ``sequence_scores`` scores the objects of the first annotation only (``davis2017/davis.py::get_all_masks``), not an
  id that appears in a later frame;
* ``pos_embed_for`` resamples the separate spatial table with rows and columns and adds each
  tubelet's temporal entry; a joint (space-time) table is read in its (t h w) order, as
  ``VideoViT.forward_features`` reads it, and at another size each tubelet's table is resampled on its own
  (timm's ``resample_abs_pos_embed`` takes one table: given one per tubelet, it read them as one grid).
"""

from __future__ import annotations

import numpy as np
import torch

import data  # noqa: F401  (repairs torchvision before anything imports it)
from data.davis import write_davis_fixture
from lightning_modules.davis_metrics import sequence_scores
from lightning_modules.label_propagation import (
    evaluate_davis,
    first_frame_labels,
    pos_embed_for,
    propagate_labels,
    video_vit_patch_features,
)
from models import create_model

# DINO's label_propagation, one target patch at a time
from tests.lightning_modules.test_label_propagation import (
    one_thread,  # noqa: F401  (autouse: one thread for tiny tensors)
    reference_propagation,
)
from tests.lightning_modules.test_label_propagation_reference import spy_on_propagation_and_scores

# --- defaults: DINO's protocol and the official boundary tolerance -----------------------------------------------


def test_evaluate_davis_defaults_are_dinos_protocol(tmp_path, monkeypatch):
    """No options: the propagation gets DINO's values, F gets bound_th 0.008, the model sees 480 x floor64(720)."""
    write_davis_fixture(tmp_path, num_sequences=1, num_frames=3, height=64, width=96, num_objects_per_sequence=1)
    propagation_calls, score_calls = spy_on_propagation_and_scores(monkeypatch)
    frame_shapes = []
    generator = torch.Generator().manual_seed(0)

    def coarse_features(frames: torch.Tensor) -> torch.Tensor:
        # Any grid will do: the labels are upsampled to the frame. A coarse one keeps the 480p propagation cheap.
        frame_shapes.append(tuple(frames.shape))
        return torch.randn(frames.shape[0], 4, 6, 8, generator=generator)

    evaluate_davis(coarse_features, tmp_path)
    assert propagation_calls == [dict(n_last_frames=7, size_mask_neighborhood=12, topk=5, temperature=0.1)]
    assert score_calls == [dict(bound_th=0.008)]
    # read_frame on 96x64: short side 480, long side 480 * 96 / 64 = 720 floored to a multiple of 64 = 704.
    assert frame_shapes == [(3, 3, 480, 704)]


def test_propagate_labels_defaults_are_dinos():
    """Ten frames (frame 9's queue has dropped frame 1) of a 2x26 grid (patches 13+ columns apart are out of the
    radius): the defaults must act as n_last_frames=7, radius 12, top-5, temperature 0.1."""
    rng = np.random.default_rng(7)
    feats = rng.normal(size=(10, 2, 26, 6))
    first = rng.dirichlet(np.ones(3), size=(2, 26)).transpose(2, 0, 1)
    ours = propagate_labels(torch.from_numpy(feats), torch.from_numpy(first)).numpy()
    ref = reference_propagation(feats, first, n_last=7, radius=12, topk=5, temperature=0.1)
    assert np.abs(ours - ref).max() < 1e-10


# --- first-frame labels ----------------------------------------------------------------------------------------------


def test_first_frame_labels_sample_the_annotation_like_pil_nearest():
    """DINO's ``read_seg`` shrinks the annotation to the feature grid with PIL nearest and one-hot encodes it: on a
    10x15 annotation of random ids, cell (i, j) of the 2x3 grid takes pixel (floor(5 (i + 1/2)), floor(5 (j + 1/2))),
    i.e. (5 i + 2, 5 j + 2), never a blend of ids."""
    annotation = np.random.default_rng(8).integers(0, 3, size=(10, 15)).astype(np.uint8)
    labels = first_frame_labels(annotation, (2, 3), num_classes=3)
    expected = np.zeros((3, 2, 3))
    for row in range(2):
        for col in range(3):
            expected[annotation[int(5 * (row + 0.5)), int(5 * (col + 0.5))], row, col] = 1.0
    assert labels.shape == (3, 2, 3) and (labels.numpy() == expected).all()


# --- objects of a sequence ------------------------------------------------------------------------------------------


def test_sequence_scores_objects_are_those_of_the_first_annotation():
    """davis2017 takes the objects 1..max id of frame 0; an object 3 entering in frame 1 is not scored (it would be
    a third object with J = F = 0 here)."""
    gt = np.zeros((4, 12, 12), dtype=np.uint8)
    gt[:, 1:4, 1:4] = 1
    gt[:, 6:10, 6:10] = 2
    gt[1:, 8:11, 0:3] = 3
    pred = np.where(gt == 3, 0, gt).astype(np.uint8)  # perfect on objects 1 and 2
    scores = sequence_scores(gt, pred)
    assert scores["J"].tolist() == [1.0, 1.0] and scores["F"].tolist() == [1.0, 1.0]
    assert scores["J_frames"].shape == (2, 2)  # 2 objects x frames 1 and 2 (first and last excluded)


# --- position tables ---------------------------------------------------------------------------------------------


def _assert_row_and_time_coded(patch_pos: torch.Tensor, t: int, h: int, w: int) -> None:
    """The resampled table of a table worth ``row + 10 * tubelet`` in every channel: constant along each row, rising
    down the rows, and tubelet t exactly 10 t above tubelet 0 (resampling weights sum to 1)."""
    grid = patch_pos.detach().reshape(t, h, w, -1).double()
    assert torch.allclose(grid, grid[:, :, :1].expand_as(grid), atol=1e-5)  # no change along a row
    column = grid[0, :, 0, 0]
    assert (column[1:] - column[:-1] > 0.05).all()  # rises from row to row
    for tubelet in range(t):
        assert torch.allclose(grid[tubelet] - grid[0], torch.full_like(grid[0], 10.0 * tubelet), atol=1e-4)


def test_separate_position_table_is_resampled_rows_as_rows():
    """A 4x4 spatial table worth its row, a temporal table worth 10 t, resampled to a 5x8 grid (a 40x64 frame)."""
    model = create_model("vit_tiny_video", num_classes=0, pos_embed="separate")  # 4 tubelets, 4x4 grid, 64-d
    with torch.no_grad():
        rows = torch.arange(4.0).repeat_interleave(4)  # row of each of the 16 spatial entries, order (h w)
        model.pos_embed[0, 1:] = rows[:, None].expand(-1, 64)
        model.time_embed[0] = (10.0 * torch.arange(4.0))[:, None].expand(-1, 64)
        _, patch_pos = pos_embed_for(model, (4, 5, 8))  # a 40x64 frame: 5 rows, 8 columns of patches
    assert patch_pos.shape == (1, 4 * 5 * 8, 64)
    _assert_row_and_time_coded(patch_pos, 4, 5, 8)


def test_joint_position_table_at_the_training_size_is_the_models():
    """With one space-time table ordered (t h w), the features at the training size are ``forward_features``' patch
    tokens; a table coded by tubelet (far from its near-zero initialisation) shows a misread token order."""
    torch.manual_seed(2)
    model = create_model("vit_tiny_video", num_classes=0, attn_layer="joint", pos_embed="joint").eval()
    with torch.no_grad():
        model.pos_embed[0, 1:] = torch.arange(4.0).repeat_interleave(16)[:, None] + 0.3 * torch.randn(64, 64)
        video = torch.randn(1, 3, 8, 32, 32)
        expected = model.forward_features(video)[:, 1:].reshape(1, 4, 4, 4, 64)
        assert torch.allclose(video_vit_patch_features(model, video), expected, atol=1e-4)


def test_joint_position_table_is_resampled_one_tubelet_at_a_time():
    """A joint table worth ``row + 10 * tubelet`` on the 4x4 grid, resampled to a 5x8 grid (a 40x64 frame)."""
    model = create_model("vit_tiny_video", num_classes=0, attn_layer="joint", pos_embed="joint")
    with torch.no_grad():
        rows = torch.arange(4.0).repeat_interleave(4).repeat(4)  # order (t h w)
        tubelets = torch.arange(4.0).repeat_interleave(16)
        model.pos_embed[0, 1:] = (rows + 10.0 * tubelets)[:, None].expand(-1, 64)
        _, patch_pos = pos_embed_for(model, (4, 5, 8))
    assert patch_pos.shape == (1, 4 * 5 * 8, 64)
    _assert_row_and_time_coded(patch_pos, 4, 5, 8)
