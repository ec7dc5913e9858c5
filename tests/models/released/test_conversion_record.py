"""The paper-width record of each layout (``reports/benchmarks/released_conversion.json``: the authors' model and
ours on one 16x224x224 clip with random ViT-B/16 weights, float32) says what made it and stays within 1e-5."""

import json
from pathlib import Path

RECORD = Path(__file__).resolve().parents[3] / "reports" / "benchmarks" / "released_conversion.json"


def test_each_layout_agrees_with_the_authors_code_at_paper_width():
    records = json.loads(RECORD.read_text())
    assert {"mformer", "xvit"} <= set(records)
    for layout, record in records.items():
        assert record["max_relative_difference"] <= 1e-5, layout
        assert record["dtype"] == "float32" and record["logits"][0] == 1, layout
        assert record["command"].startswith(f"python -m tools.released_golden.{layout}"), layout
        assert len(record["official_commit"]) == 40 and not record["our_commit"].endswith("-dirty"), layout
        assert record["our_overrides"]["embed_dim"] == 768 and record["our_overrides"]["num_frames"] == 16, layout
