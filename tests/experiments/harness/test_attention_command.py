"""``python -m experiments attention``: the papers' attention figures from a row's model (random weights written by
the test; nothing trains), as PNGs and TensorBoard images, and one line for each bad input."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np
import pytest
import torch
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from data.synthetic import generate_synthetic, motion_pairs
from data.synthetic.seeding import video_rng
from data.video_io import Video, write_video
from experiments.__main__ import main as experiments_main
from experiments.harness.attention import centre_clip, data_classes, generated_frames, make_clip, row_config
from experiments.harness.attention_clip import box_patches
from experiments.harness.tasks import build_model
from experiments.mformer.figures import motionformer_maps, query_cells, sample_tracking, tracking_score

MFORMER = ("mformer_table4", "traj_attT_normS")


def _random_weights(tmp_path, table: str, row: str, seed: int = 0):
    cfg = row_config(table, row, "tiny", None)
    torch.manual_seed(seed)
    model = build_model(cfg, data_classes(cfg))
    path = tmp_path / f"{row}.pt"
    torch.save(model.state_dict(), path)
    return path, model


def _draw(tmp_path, table: str, row: str, *options: str, out: str = "out") -> list[str]:
    assert experiments_main(["attention", table, "--rows", row, "--out", str(tmp_path / out), *options]) == 0
    return sorted(p.name for p in (tmp_path / out).iterdir())


def _tensorboard_images(folder) -> list[str]:
    events = EventAccumulator(str(folder))
    events.Reload()
    return events.Tags()["images"]


def test_motionformer_figure_from_a_weights_file_and_from_a_run(tmp_path):
    weights, model = _random_weights(tmp_path, *MFORMER)
    names = _draw(tmp_path, *MFORMER, "--weights", str(weights), "--sample", "3", "--query", "10,5,9")
    png = "mformer_fig1_fig4_trajectory.png"
    assert png in names and any(n.startswith("events.out.tfevents") for n in names)
    image = np.asarray(Image.open(tmp_path / "out" / png))
    assert image.shape[1] > 2 * image.shape[0]  # the frames in a row
    assert _tensorboard_images(tmp_path / "out") == ["attention/mformer_fig1_fig4_trajectory"]
    # The same weights from a trained run's Lightning checkpoint (its "model." prefix) draw the same figure, and
    # other weights another one: the figure is the loaded model's.
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    torch.save({"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()}},
               run / "checkpoints" / "last.ckpt")
    _draw(tmp_path, *MFORMER, "--run", str(run), "--sample", "3", "--query", "10,5,9", out="from_run")
    assert (tmp_path / "from_run" / png).read_bytes() == (tmp_path / "out" / png).read_bytes()
    other, _ = _random_weights(tmp_path / "run", *MFORMER, seed=1)
    _draw(tmp_path, *MFORMER, "--weights", str(other), "--sample", "3", "--query", "10,5,9", out="other")
    assert (tmp_path / "other" / png).read_bytes() != (tmp_path / "out" / png).read_bytes()


@pytest.mark.parametrize("attention", ["divided", "divided_official"])
def test_a_divided_map_is_the_spatial_stage_in_the_querys_step_and_the_temporal_stage_elsewhere(attention):
    """Ours and the official block (whose temporal stage also attends to the class token, left out of the map)."""
    from models.attention.capture import capture_attention
    from models.video_vit import vit_tiny_video

    torch.manual_seed(0)
    model = vit_tiny_video(attn_layer=attention, num_classes=3).eval()
    with torch.no_grad(), capture_attention(model, ["blocks.3.attn"]) as records:
        model(torch.randn(1, 3, 8, 32, 32))
    (record,) = records
    t, h, w = record.layout["thw"]
    maps = motionformer_maps(record, (1, 2, 3))
    spatial = record.weights["spatial"][0].mean(0)[1, 2 * w + 3, 1:]
    temporal = record.weights["temporal"][0].mean(0)[2 * w + 3, 1]
    temporal = temporal[1:] if attention == "divided_official" else temporal
    assert maps.shape == (t, h, w) and np.array_equal(maps[1].ravel(), spatial.double().numpy())
    others = np.delete(maps, 1, axis=0)
    assert np.array_equal(others[:, 2, 3], np.delete(temporal.double().numpy(), 1))
    others[:, 2, 3] = 0
    assert not others.any()


def test_cast_figure_from_a_video_file_and_d3da_figures_from_a_generated_pose_sample(tmp_path):
    weights, _ = _random_weights(tmp_path, "cast_table1e", "cast")
    video = tmp_path / "clip.mp4"
    write_video(video, np.random.default_rng(0).integers(0, 255, (20, 48, 64, 3), dtype=np.uint8), 15)
    names = _draw(tmp_path, "cast_table1e", "cast", "--weights", str(weights), "--video", str(video),
                  "--query", "5,3,30", out="cast")
    assert "cast_fig3c.png" in names
    weights, _ = _random_weights(tmp_path, "d3da_figureA1", "pennaction")
    names = _draw(tmp_path, "d3da_figureA1", "pennaction", "--weights", str(weights), "--sample", "1", out="d3da")
    assert {"d3da_a2_joint_stride.png", "d3da_a3_a5_sampling_points.png"} <= set(names)
    assert sorted(_tensorboard_images(tmp_path / "d3da")) == ["attention/d3da_a2_joint_stride",
                                                              "attention/d3da_a3_a5_sampling_points"]


@pytest.mark.parametrize("options, named", [
    (["mformer_table4", "--rows", "no_such_row"], "no_such_row"),
    (["mformer_table4", "--rows", "joint", "--query", "40,0,0"], "--query 40,0,0: frame 40"),
    (["mformer_table4", "--rows", "joint", "--query", "8,40,4"], "--query 8,40,4: pixel (40, 4)"),
    (["mformer_table4", "--rows", "joint", "--query", "0,a,4"], "argument --query: expected T,Y,X"),
    (["mformer_table4", "--rows", "joint", "--video", "{tmp}/notes.txt"], "notes.txt: not a readable video"),
    (["mformer_table4", "--rows", "joint", "--weights", "{tmp}/missing.pt"], "missing.pt: no such weights file"),
    (["d3da_figureA1", "--rows", "pennaction", "--video", "{tmp}/notes.txt"], "reads joints too"),
])
def test_bad_input_is_one_line_naming_it(tmp_path, capsys, options, named):
    (tmp_path / "notes.txt").write_text("not a video\n")
    argv = ["attention", *(o.replace("{tmp}", str(tmp_path)) for o in options), "--out", str(tmp_path / "out")]
    try:
        status = experiments_main(argv)
    except SystemExit as stop:  # an option argparse refuses
        status = stop.code
    assert status == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and named in err, err
    assert not (tmp_path / "out").exists()


def test_the_clip_is_the_rows_frames_at_its_stride_from_the_centre():
    assert centre_clip(32, 8, 2) == [8, 10, 12, 14, 16, 18, 20, 22]  # 15 frames spanned, 8 + 9 left over
    assert centre_clip(5, 4, 2) == [0, 2, 4, 4]  # a short video repeats its last frame


# ---- the tracking score's boxes and measure (docs/attention_tracking.md) ------------------------------------------

# sha256 of motion_pairs._render's frames for labels 0-11 (val samples 0-11, 40 px, 8 frames), taken before the
# boxes were added to the generator: recording them must not change a pixel.
PAIRS_PIXELS = "567c4f7d817272747a74ce3cb558287837789cfccb484c809fd181eba9b1ac7b"


def test_motion_pairs_boxes_leave_every_pixel_unchanged_and_hold_each_thing(tmp_path):
    digest = hashlib.sha256()
    for label in range(12):
        frames, words, boxes = motion_pairs.scene(video_rng(0, "val", label), label, 40, 8)
        assert np.array_equal(frames, motion_pairs._render(video_rng(0, "val", label), label, 40, 8)[0])
        digest.update(frames.tobytes())
        assert set(boxes) == {"A", "B", "C", "box"} and all(b.shape == (8, 4) for b in boxes.values())
    assert digest.hexdigest() == PAIRS_PIXELS
    generate_synthetic("synth_motion_pairs", tmp_path, num_train=1, num_val=2, num_video_frames=8, seed=4)
    written = json.loads((tmp_path / motion_pairs.BOXES_FILE).read_text())
    labels = {entry["id"]: entry["template"] for entry in json.loads((tmp_path / "validation.json").read_text())}
    label = [template for template, _, _ in motion_pairs.CLASSES].index(labels["3"])
    _, _, boxes = motion_pairs.scene(video_rng(4, "val", 1), label, 40, 8)  # video 3: the second val video
    assert written["3"]["moving_thing"] == motion_pairs.MOVING_THING[motion_pairs.CLASSES[label][1]]
    assert np.allclose(written["3"]["boxes"]["B"], boxes["B"], atol=1e-3)


def test_a_things_box_holds_its_mask_across_the_torus_border():
    mask = np.zeros((1, 10, 10))
    mask[0, 4:6, [0, 1, 9]] = 0.5  # a thing across the left/right border, centred on x = 0.5
    box = motion_pairs.thing_box(mask, np.array([[10.5, 5.0]]), 10)
    assert np.allclose(box, [[0.5, 5.0, 1.5, 1.0]])  # pixels 9, 0, 1 (centres 1, 0, 1 off, + half a pixel)


def test_box_patches_on_the_torus_and_union_over_a_steps_frames():
    boxes = np.array([[1.0, 16.0, 4.0, 3.0], [16.0, 4.0, 1.0, 1.0]])  # frame 0 wraps across x = 0
    inside = box_patches(boxes, [0, 1], 2, (4, 4), 8.0, 32.0)
    want = np.zeros((1, 4, 4), dtype=bool)
    want[0, 1:3, [[0], [3]]] = True  # x centres 4 and 28 (3 and 5 px off across the border), y centres 12, 20
    want[0, 0, 1:3] = True  # frame 1's box (x 15-17, y 3-5) overlaps the patches x 8-16 and 16-24 of row 0
    assert np.array_equal(inside, want)


def test_tracking_score_on_hand_built_maps_whose_answer_is_known():
    inside = np.zeros((3, 4, 4), dtype=bool)
    inside[0, 0, 0] = True
    inside[1, 1, 1:3] = True  # 2 of 16 patches
    inside[2, 3, 0] = True  # 1 of 16
    on_box = np.zeros((1, 3, 4, 4))
    on_box[0, 1, 1, 1], on_box[0, 2, 3, 0] = 0.3, 7.0  # any step total: each step is renormalised
    uniform = np.full((1, 3, 4, 4), 0.2)
    half = np.zeros((1, 3, 4, 4))
    half[0, 1, 1, 2], half[0, 1, 0, 0], half[0, 2, 3, 0], half[0, 2, 2, 2] = 1, 1, 1, 1
    chance = (2 / 16 + 1 / 16) / 2
    assert tracking_score(on_box, 0, inside) == pytest.approx({"share": 1.0, "chance": chance,
                                                               "excess": 1.0 - chance, "queries": 1})
    assert tracking_score(uniform, 0, inside)["excess"] == pytest.approx(0.0, abs=1e-15)  # blind map: chance
    assert tracking_score(np.concatenate([on_box, half]), 0, inside)["share"] == pytest.approx(0.75)
    assert query_cells(inside, 1) == [(1, 1, 1), (1, 1, 2)]
    assert tracking_score(np.zeros((0, 3, 4, 4)), 0, inside)["queries"] == 0


def test_a_generated_sample_is_the_sets_own_and_its_default_query_is_on_the_moving_thing(tmp_path):
    cfg = row_config(*MFORMER, "tiny", "SSv2")
    params = {"num_train": 1, "num_val": 3, "seed": 2}
    small = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, synthetic_params=params))
    generate_synthetic("synth_motion_pairs", tmp_path, **params)
    sample = generated_frames(small, 2)
    written = Video(tmp_path / "videos" / "4.webm")  # ids from 1, the training video first
    decoded = written.get_clip(0.0, written.num_frames / written.fps).permute(1, 2, 3, 0).numpy()
    assert np.abs(decoded.astype(float) - sample.frames).mean() < 12  # the codec's loss (another sample: 35)
    template = json.loads((tmp_path / "validation.json").read_text())[2]["template"]
    assert template.replace("[", "").replace("]", "") in sample.source
    clip = make_clip(small, sample)
    cx, cy = sample.thing_boxes[centre_clip(32, 8, 2)[0], :2] * 32 / 40  # 40-px frames resized to the 32-px input
    assert clip.query is not None and clip.query.frame == 0
    assert abs(clip.query.x - cx) <= 1 and abs(clip.query.y - cy) <= 1


@pytest.mark.parametrize("row", ["joint", "traj_attT_normS"])
def test_a_model_blind_to_the_thing_scores_chance_on_a_generated_sample(row):
    """Zero query/key projections make every map uniform over each step: its share is the chance share exactly,
    whatever the boxes and queries, end to end from the sample to the score."""
    cfg = row_config("mformer_table4", row, "tiny", "SSv2")
    torch.manual_seed(0)
    model = build_model(cfg, data_classes(cfg)).eval()
    for block in model.blocks:
        torch.nn.init.zeros_(block.attn.qkv.weight)
        torch.nn.init.zeros_(block.attn.qkv.bias)
    scores = [sample_tracking(model, cfg, index) for index in range(3)]
    assert sum(s["queries"] for s in scores) > 0
    for score in scores:
        if score["queries"]:
            assert 0 < score["chance"] < 1 and score["excess"] == pytest.approx(0.0, abs=1e-6)


def test_the_things_outline_is_the_border_of_its_patches():
    """Motionformer's figure outlines the patches the tracking score counts as the thing: each edge between a patch
    in the region and one out of it (or the frame's edge), once."""
    from experiments.harness.attention_figures import outline

    class Axes:
        def __init__(self):
            self.segments = []

        def plot(self, xs, ys, **style):
            self.segments.append((tuple(xs), tuple(ys)))

    ax = Axes()
    cells = np.zeros((3, 4), dtype=bool)
    cells[0, 0] = cells[0, 1] = cells[1, 1] = True  # an L at the frame's top-left corner, patches 10 px high, 5 wide
    outline(ax, cells, 10.0, 5.0)
    assert sorted(ax.segments) == sorted([
        ((0.0, 5.0), (0.0, 0.0)), ((5.0, 10.0), (0.0, 0.0)),  # the top edge, along the frame's border
        ((0.0, 0.0), (0.0, 10.0)), ((0.0, 5.0), (10.0, 10.0)),  # the first patch's left and bottom
        ((10.0, 10.0), (0.0, 10.0)), ((10.0, 10.0), (10.0, 20.0)),  # the right side of the L
        ((5.0, 5.0), (10.0, 20.0)), ((5.0, 10.0), (20.0, 20.0))])  # the lower patch's left and bottom
