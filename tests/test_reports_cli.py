"""``python -m reports build`` says what is wrong with a record and what to do, in one line and an exit status."""

import json

from reports.__main__ import main


def test_a_truncated_record_is_one_line_and_exit_2_not_a_traceback(tmp_path, capsys):
    run = tmp_path / "runs" / "mformer_table4" / "joint" / "seed0" / "tiny-k_400"
    run.mkdir(parents=True)
    text = json.dumps({"table": "mformer_table4", "row": "joint", "metrics": {"top1": 50.0}})
    (run / "metrics.json").write_text(text[: len(text) // 2])  # cut short, as by a full disk or a kill
    code = main(["build", "mformer_table4", "--runs-dir", str(tmp_path / "runs"), "--out-dir", str(tmp_path)])
    assert code == 2
    error, fix = capsys.readouterr().err.strip().splitlines()
    assert error.startswith(f"error: {run / 'metrics.json'}: not valid JSON")
    assert "Delete that file" in fix and "--force" in fix
    assert not (tmp_path / "mformer_table4.md").exists()
