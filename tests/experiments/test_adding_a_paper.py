"""A paper more is its tables' entries in the inventory and one folder (experiments/README.md#adding-a-paper).

A throwaway sixth paper is added so to a copy of the code (the floors' folders; the tracked records, generated
reports and benchmark records left out), and the copy's own ``python -m experiments`` lists it, shows it and plans
its runs; nothing in the repository is written. The paper also has an attention figure (its folder's
``figures.py``) and releases its checkpoints in a layout of its own (a reader in ``models/released/``, its
catalogue in its folder), drawn from a released file: the files of the repository it changed are counted, at most
three (the inventory, and the two lists of released layouts).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from experiments.paper_tables import papers
from models import create_model

REPO = Path(__file__).resolve().parents[2]
CODE = ("data", "models", "lightning_modules", "experiments", "reports")
LEFT_OUT = ("__pycache__", "results", "generated", "benchmarks", "reproducibility", "weights")
WEIGHTS = Path("experiments") / "tiny_pretraining" / "weights"  # the shipped stand-ins: linked, not copied

# One inventory entry, in the inventory's own format.
INVENTORY_ENTRY = """
- id: toy_table1
  paper: 'A Toy Paper: Adding a Paper in One Folder'
  source_file: toy.txt
  label: Table 1
  caption: Attention ablation on a toy benchmark
  kind: ablation
  datasets: [Kinetics-400]
  metrics: [top-1 accuracy (%)]
  columns: [Attention, K-400]
  rows:
  - cells: {Attention: Joint, K-400: 70.1}
    bold: []
  - cells: {Attention: Divided, K-400: 71.30}
    bold: [K-400]
  notes: A throwaway entry of tests/experiments/test_adding_a_paper.py.
  setup: None.
  source_lines: 1-3
"""
# The folder: what the inventory does not say about the paper, and its spec over the shared presets.
PAPER_FILE = """short_name: ToyFormer
area: toy attention ablations
gpu:
  name: A100 40 GB
  memory_gib: 40
  source: '"trained on 8 A100 GPUs" (Sec. 4)'
"""
SPEC = '''"""ToyFormer: its one table as a spec, and its figure."""

from . import figures  # noqa: F401  (registers the figure)
from ..harness.spec import MetricColumn, RowSpec, TableSpec, register_table
from ..presets import TINY


@register_table
def toy_table1() -> TableSpec:
    return TableSpec(
        table_id="toy_table1",
        rows=(RowSpec("joint", 0, "Joint", {"attn_layer": "joint"}),
              RowSpec("divided", 1, "Divided", {"attn_layer": "divided"})),
        metric_columns=(MetricColumn("K-400"),),
        scales={"tiny": TINY, "paper": TINY},  # its released checkpoints are tested at paper scale
        tiny_seeds=2,
    )
'''


# Its figure: the class token's attention in the last block, over every step, drawn with the shared helpers.
FIGURES = '''"""ToyFormer's Figure 1: the class token's attention over every step's patches, last block."""

from ..harness import attention_figures as draw
from ..harness.attention import capture_forward, register_figures


@register_figures("models.video_vit.VideoViT", "ToyFormer Fig. 1")
def toy_figures(model, clip, query):
    _, (record,) = capture_forward(model, clip.video, [f"blocks.{len(model.blocks) - 1}.attn"])
    steps, rows, columns = record.layout["thw"]
    ratios = record.weights["all"][0].mean(0)[0, 1:].reshape(steps, rows, columns).double().numpy() * rows * columns
    norm = draw.ratio_scale(float(ratios.max()))
    fig, axes, (panels,) = draw.panels(steps, f"the class token's attention: {clip.source}")
    for ax, frame, heat in zip(panels, clip.frames[:: len(clip.frames) // steps], ratios):
        draw.overlay(ax, frame, heat, norm)
    draw.mark(panels[0], query.x + 0.5, query.y + 0.5)
    draw.colour_bar(fig, axes, norm, "weight ÷ uniform's")
    return {"toy_fig1": draw.rendered(fig)}
'''
# Its authors' layout: our weights under "encoder", what they compute under "meta"; the reader beside the others.
LAYOUT = '''"""ToyFormer's released checkpoints: {"encoder": weights, "meta": {"attention": ..., "classes": ...}}."""

from .base import DESCRIPTION_KEYS, ReleasedLayout, RequiredModel, differing


class ToyLayout(ReleasedLayout):
    name, title = "toy", "toy/ToyFormer"

    def recognise(self, checkpoint):
        return set(checkpoint) == {"encoder", "meta"}

    def describe(self, checkpoint):
        meta = checkpoint["meta"]
        return dict.fromkeys(DESCRIPTION_KEYS) | {"variant": meta["attention"], "classes": meta["classes"],
                                                  "num_classes": meta["classes"]}

    def required_model(self, description):
        return RequiredModel("vit_tiny_video", {"attn_layer": description["variant"]})

    def mismatches(self, description, model):
        return differing(description, {"classes": model.num_classes})

    def convert(self, checkpoint, model):
        return dict(checkpoint["encoder"])


TOY_LAYOUT = ToyLayout()
'''
CATALOGUE = """layout: toy
protocols:
  toy:
    views: {temporal: 1, spatial: 1}
    frames: 8
    sampling: dense
    stride: 2
    crop: 32
    short_side: 32
    mean: [0.5, 0.5, 0.5]
    std: [0.5, 0.5, 0.5]
    channels: RGB
    view_average: probabilities
    aggregation: the views' softmax averaged
    source: toy.txt l.2
checkpoints:
  - name: toy_joint
    file: toy_joint.pth
    link: https://example.org/toy_joint.pth
    fills:
      - {table: toy_table1, row: joint, columns: [K-400]}
    expects: {variant: joint, classes: 40}
    protocol: toy
"""
# The repository's lists of released layouts, each given the new one: (file, the text it holds, what replaces it).
LAYOUT_LISTS = (("models/released/__init__.py", "from .xvit import XVIT_LAYOUT\n",
                 "from .toy import TOY_LAYOUT\nfrom .xvit import XVIT_LAYOUT\n"),
                ("models/released/__init__.py", "CAST_LAYOUT)}", "CAST_LAYOUT, TOY_LAYOUT)}"),
                ("experiments/harness/released_weights.py", 'LAYOUT_NAMES = ("mformer", "xvit", "tokshift", "cast")',
                 'LAYOUT_NAMES = ("mformer", "xvit", "tokshift", "cast", "toy")'),
                ("experiments/harness/released_weights.py", '"cast": ("bidir", "compo_bidir")}',
                 '"cast": ("bidir", "compo_bidir"), "toy": ("joint",)}'))
MOST_SHARED_FILES = 3


def files_changed(root: Path) -> tuple[list[str], list[str]]:
    """(the repository's files that the copy at ``root`` holds otherwise, the copy's files the repository has not),
    compiled files and the linked stand-in weights left out."""
    changed, added = [], []
    for folder in CODE:
        for path in sorted((root / folder).rglob("*")):
            name = path.relative_to(root).as_posix()
            if not path.is_file() or "__pycache__" in path.parts or name.startswith(WEIGHTS.as_posix()):
                continue
            original = REPO / name
            if not original.is_file():
                added.append(name)
            elif original.read_bytes() != path.read_bytes():
                changed.append(name)
    return sorted(changed), sorted(added)


@pytest.fixture(scope="module")
def copy_with_a_sixth_paper(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("repository")
    for folder in CODE:
        shutil.copytree(REPO / folder, root / folder, ignore=shutil.ignore_patterns(*LEFT_OUT))
    os.symlink(REPO / WEIGHTS, root / WEIGHTS, target_is_directory=True)
    with open(root / "experiments" / "paper_tables.yaml", "a", encoding="utf-8") as inventory:
        inventory.write(INVENTORY_ENTRY)
    folder = root / "experiments" / "toy"
    folder.mkdir()
    (folder / "paper.yaml").write_text(PAPER_FILE)
    (folder / "__init__.py").write_text(SPEC)
    (folder / "figures.py").write_text(FIGURES)
    (folder / "released_weights.yaml").write_text(CATALOGUE)
    (root / "models" / "released" / "toy.py").write_text(LAYOUT)
    for name, text, replaced in LAYOUT_LISTS:
        source = (root / name).read_text()
        assert source.count(text) == 1, f"{name} no longer holds {text!r}: say where a layout is listed now"
        (root / name).write_text(source.replace(text, replaced))
    return root


def experiments_cli(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root)}
    out = subprocess.run([sys.executable, "-m", "experiments", *args], cwd=root, env=env, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    return out


def test_the_sixth_paper_is_listed_with_its_registry_entry(copy_with_a_sixth_paper):
    lines = experiments_cli(copy_with_a_sixth_paper, "list").stdout.splitlines()
    (toy,) = [line for line in lines if line.startswith("toy_table1 ")]
    assert toy.split() == ["toy_table1", "ToyFormer", "Table", "1", "ablation", "implemented"]
    tables = [line.split()[0] for line in lines if line.strip() and not line.startswith("This repository")]
    assert len(tables) == sum(len(paper.tables) for paper in papers().values()) + 1  # the repository's, and one more


def test_the_sixth_paper_is_shown_with_the_papers_numbers(copy_with_a_sixth_paper):
    out = experiments_cli(copy_with_a_sixth_paper, "show", "toy_table1", "--runs-dir",
                          str(copy_with_a_sixth_paper / "runs")).stdout
    assert out.startswith("toy_table1: ToyFormer Table 1 [implemented]\nAttention ablation on a toy benchmark")
    assert "- Divided (--rows divided)" in out and "paper: 71.30" in out  # the inventory's cell, as printed
    assert "`run` trains 2 seed(s) per row at tiny scale" in out  # the spec states its seeds


def test_the_sixth_paper_is_planned_and_nothing_trains(copy_with_a_sixth_paper):
    runs = copy_with_a_sixth_paper / "runs"
    out = experiments_cli(copy_with_a_sixth_paper, "run", "toy_table1", "--dry-run", "--runs-dir", str(runs)).stdout
    planned = [line for line in out.splitlines() if line.startswith("[")]
    assert len(planned) == 4 and all(line.endswith(": train") for line in planned), out  # 2 rows x 2 seeds
    assert "[1/4] joint / K-400 (synth_objects) seed 0 -> " in out
    assert "# 4 run(s): 4 would train" in out and not runs.exists()


def test_the_sixth_papers_figure_is_drawn_from_its_released_layout(copy_with_a_sixth_paper, tmp_path):
    """The paper's own figure draws its row (Motionformer's read the same video ViT: the row's paper's win), from a
    file in the authors' layout named by its catalogue; the repository's files it changed are at most three."""
    model = create_model("vit_tiny_video", attn_layer="joint", num_classes=40)
    released = {"encoder": model.state_dict(), "meta": {"attention": "joint", "classes": 40}}
    torch.save(released, tmp_path / "toy_joint.pth")
    out = tmp_path / "figures"
    drawn = experiments_cli(copy_with_a_sixth_paper, "attention", "toy_table1", "--rows", "joint", "--released",
                            "toy:toy_joint", "--weights-dir", str(tmp_path), "--out", str(out)).stdout
    assert drawn.split() == [str(out / "toy_fig1.png")]
    assert "toy:toy_joint" in experiments_cli(copy_with_a_sixth_paper, "weights", "--paper", "toy").stdout
    changed, added = files_changed(copy_with_a_sixth_paper)
    assert changed == ["experiments/harness/released_weights.py", "experiments/paper_tables.yaml",
                       "models/released/__init__.py"] and len(changed) <= MOST_SHARED_FILES, changed
    assert [name for name in added if not name.startswith("experiments/toy/")] == ["models/released/toy.py"], added
