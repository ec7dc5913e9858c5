"""Chance levels of the reports' accuracy cells: what guessing scores on a top-k metric over the classes a run
recorded, the phrase a report header reads its cells against, and which top-k cells are not read because guessing
scores too much on them."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from typing import Any

# A top-k cell is read only where guessing scores at most what it scores in the papers' own top-5 columns, the
# largest being Something-Something V2's (5 of 174 classes, 2.9%; Kinetics 1.3% and 0.8%). The tiny stand-ins
# have 8-40 classes, where the top five cover an eighth of the classes or more (on synth_objects every tracked
# row reached 97-100%): such a cell does not order rows as the papers' do, so reports leave it out and the records
# keep it.
TOP_K_CHANCE_BOUND = 5 / 174
_TOP_K = re.compile(r"(?:(verb|noun|action)_)?top(\d+)")


def chance(metric: str, num_classes: int | dict[str, int] | None) -> float | None:
    """What guessing scores (a fraction) on a top-k accuracy (``top1``, ``top5``, ``verb_top1``, ``action_top5``)
    over the classes a run recorded (``data.num_classes``: a count, or verbs and nouns); None for any other metric or
    unknown classes."""
    match = _TOP_K.fullmatch(metric)
    if match is None or num_classes is None:
        return None
    part = match[1]
    if isinstance(num_classes, int):
        classes = num_classes if part is None else None
    else:
        classes = num_classes["verb"] * num_classes["noun"] if part == "action" else num_classes.get(part or "")
    return None if not classes else min(int(match[2]), classes) / classes


def top_k_chance(metric: str, num_classes: int | dict[str, int] | None) -> float | None:
    """``chance`` of a top-k metric with k > 1 (``top5``, ``verb_top5``); None for top-1 and any other metric."""
    match = _TOP_K.fullmatch(metric)
    return None if match is None or int(match[2]) == 1 else chance(metric, num_classes)


def unread_top_k(records: list[dict[str, Any]], scale: str) -> dict[tuple[str, str], dict[str, str]]:
    """(row, column) -> {metric: why its cell is not read} for the top-k metrics whose chance on the recorded
    classes exceeds ``TOP_K_CHANCE_BOUND`` (``aggregate`` leaves them out)."""
    out: dict[tuple[str, str], dict[str, str]] = defaultdict(dict)
    for r in records:
        if r["scale"] != scale:
            continue
        classes = (r.get("data") or {}).get("num_classes")
        for metric in r["metrics"]:
            level = top_k_chance(metric, classes)
            if level is not None and level > TOP_K_CHANCE_BOUND:
                counted = classes if isinstance(classes, int) else " × ".join(map(str, classes.values()))
                out[(r["row"], r["column"])][metric] = f"not read: {100 * level:.1f}% by chance ({counted} classes)"
    return out


def chance_level(records: list[dict[str, Any]]) -> str:
    """What guessing scores on the classes these runs recorded (``data.num_classes``): the level a top-1 or top-5
    cell is read against (top-5 of 6 classes is 83.3% by chance). Empty when no run recorded its classes."""
    def pct(k: int, n: int) -> str:
        return f"{100 * min(k, n) / n:.1f}%"

    phrases = []
    for counts in sorted({json.dumps(r["data"]["num_classes"], sort_keys=True) for r in records
                          if "num_classes" in r.get("data", {})}, key=lambda c: (len(c), c)):  # 6 before 10
        classes = json.loads(counts)
        if isinstance(classes, int):
            phrases.append(f"{classes} classes: top-1 {pct(1, classes)}, top-5 {pct(5, classes)}")
        else:
            verbs, nouns = classes["verb"], classes["noun"]
            phrases.append(f"{verbs} verbs, {nouns} nouns: top-1 verb {pct(1, verbs)}, noun {pct(1, nouns)}, action "
                           f"{pct(1, verbs * nouns)}; top-5 verb {pct(5, verbs)}, action {pct(5, verbs * nouns)}")
    return f" Chance with {'; with '.join(phrases)}." if phrases else ""
