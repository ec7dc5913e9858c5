"""A paper more is its tables' entries in the inventory and one folder (experiments/README.md#adding-a-paper).

A throwaway sixth paper is added so to a copy of the code (the floors' folders; the tracked records, generated
reports and benchmark records left out), and the copy's own ``python -m experiments`` lists it, shows it and plans
its runs: nothing outside its folder and its inventory entry names it, and nothing in the repository is written.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from experiments.paper_tables import papers

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
SPEC = '''"""ToyFormer: its one table as a spec."""

from ..harness.spec import MetricColumn, RowSpec, TableSpec, register_table
from ..presets import TINY


@register_table
def toy_table1() -> TableSpec:
    return TableSpec(
        table_id="toy_table1",
        rows=(RowSpec("joint", 0, "Joint", {"attn_layer": "joint"}),
              RowSpec("divided", 1, "Divided", {"attn_layer": "divided"})),
        metric_columns=(MetricColumn("K-400"),),
        scales={"tiny": TINY},
        tiny_seeds=2,
    )
'''


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
