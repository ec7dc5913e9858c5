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
    error, = capsys.readouterr().err.strip().splitlines()
    assert error.startswith(f"error: {run / 'metrics.json'}: not valid JSON")
    assert f"delete the run folder {run}" in error and "--force" in error
    assert not (tmp_path / "mformer_table4.md").exists()


def test_a_plotted_report_builds_into_an_out_dir_that_does_not_exist_yet(tmp_path):
    """The markdown and its figure both land in a new folder (the figure was once written without creating it)."""
    out = tmp_path / "new" / "reports"
    code = main(["build", "d3da_tableA1", "--runs-dir", str(tmp_path / "runs"), "--out-dir", str(out),
                 "--results-dir", ""])
    assert code == 0
    assert (out / "d3da_tableA1.md").exists() and (out / "d3da_tableA1.png").read_bytes().startswith(b"\x89PNG")
