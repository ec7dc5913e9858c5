"""An annotation file is data: a line that names a file outside the data root (``..``, an absolute path, a link out
of the root) is refused as a bad line, by file and line, and its file is never opened or counted as found."""

from __future__ import annotations

import csv
import json
import os

import pytest

from data.annotations import read_annotations
from data.synthetic import generate_synthetic


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("sets")
    return {name: generate_synthetic(name, root / name, num_train=4, num_val=2, seed=0)
            for name in ("synth_appearance", "synth_motion", "synth_verbnoun")}


def _outside(tmp_path):
    secret = tmp_path / "secret.mp4"
    secret.write_bytes(b"not yours")
    return secret


def test_a_kinetics_list_line_leaving_the_root_is_a_bad_line(sets, tmp_path):
    root = sets["synth_appearance"]
    secret = _outside(tmp_path)
    os.symlink(secret, root / "train" / "link.mp4")  # a link inside the root that points out of it
    lines = (root / "train.csv").read_text()
    escapes = [f"../../../../../../../..{secret} 0", f"{secret} 1", "train/link.mp4 2"]
    (root / "train.csv").write_text(lines + "".join(line + "\n" for line in escapes))
    first = len(lines.splitlines()) + 1
    samples, bad = read_annotations("kinetics_list", root, "train", num_classes=8)
    assert len(samples) == 4 and all(str(s.path).startswith(str(root)) for s in samples)
    assert [(b.line_number, b.reason.split(":")[0]) for b in bad] == [
        (first + i, f"path leaves the data root {root}") for i in range(3)]
    assert bad[2].reason.endswith(f"(resolves to {secret})") and bad[0].file == str(root / "train.csv")
    os.unlink(root / "train" / "link.mp4")
    (root / "train.csv").write_text(lines)


def test_an_ssv2_id_leaving_the_root_is_a_bad_entry(sets):
    root = sets["synth_motion"]
    entries = json.loads((root / "train.json").read_text())
    evil = {**entries[0], "id": "../../../../../../etc/passwd"}
    (root / "train.json").write_text(json.dumps([*entries, evil]))
    samples, bad = read_annotations("ssv2", root, "train")
    assert len(samples) == len(entries) and len(bad) == 1
    assert bad[0].line_number == len(entries) + 1 and "path leaves the data root" in bad[0].reason
    (root / "train.json").write_text(json.dumps(entries))


def test_an_epic_participant_leaving_the_root_is_a_bad_line(sets):
    root = sets["synth_verbnoun"]
    path = root / "EPIC_100_train.csv"
    text = path.read_text()
    rows = list(csv.reader(text.splitlines()))
    header, first = rows[0], rows[1]
    evil = dict(zip(header, first))
    evil.update(narration_id="../../x_0", participant_id="../..", video_id="../../x")
    with open(path, "a", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerow([evil[c] for c in header])
    samples, bad = read_annotations("epic_kitchens100", root, "train")
    assert len(bad) == 1 and bad[0].line_number == len(rows) + 1 and "path leaves the data root" in bad[0].reason
    assert all(str(s.path).startswith(str(root)) for s in samples)
    path.write_text(text)


def test_the_root_itself_may_be_a_link(sets, tmp_path):
    link = tmp_path / "kinetics_link"
    os.symlink(sets["synth_appearance"], link)
    samples, bad = read_annotations("kinetics_list", link, "train", num_classes=8)
    assert len(samples) == 4 and bad == []
