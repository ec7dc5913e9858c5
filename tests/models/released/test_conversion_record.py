"""The paper-width record (``reports/benchmarks/released_conversion.json``: the authors' model and ours on one clip at
the released width, random weights, float32) covers every layout and variant the golden cases cover, says what made
it, and stays within 1e-5."""

import json
from pathlib import Path

from models.released import LAYOUTS

RECORD = Path(__file__).resolve().parents[3] / "reports" / "benchmarks" / "released_conversion.json"
VARIANTS = {("mformer", "trajectory"), ("xvit", "xvit"), ("tokshift", "vit"), ("tokshift", "tokshift"),
            ("cast", "bidir"), ("cast", "compo_bidir")}


def test_each_layout_agrees_with_the_authors_code_at_paper_width():
    records = json.loads(RECORD.read_text())["records"]
    assert {(r["layout"], r["variant"]) for r in records} == VARIANTS
    assert {r["layout"] for r in records} == set(LAYOUTS)
    for record in records:
        where = f"{record['layout']} {record['variant']}"
        assert record["max_relative_difference"] <= record["limit"] == 1e-5 and record["within_limit"], where
        assert record["dtype"] == "float32" and record["clip"][0] == 1, where
        assert record["clip"][3:] == [224, 224] and record["clip"][2] in (8, 16), where  # the released size
        assert record["command"].startswith("python -m "), where
        assert len(record["official"]["official_commit"]) == 40, where
        assert len(record["our_commit"]) == 40, where  # not "-dirty": made from committed code
        assert record["overrides"].get("embed_dim", 768) == 768, where  # ViT-B, the released width
