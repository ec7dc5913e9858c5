"""A path a command echoes to the terminal may hold a newline or an ESC (a folder named by a script, a name read
from a dataset's list): printed raw, it breaks the command's one line in two, or sends the terminal an escape
sequence (colours, a moved cursor, a retitled window). Every path these commands echo is written with its control
characters escaped (``data.root_files.shown``, ``data.command_line.printable``): each message stays on its line and
no ESC reaches the terminal."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.doors import one_line, run_command

NAME = "odd\nname\x1b[31m"  # a line break and the start of a colour sequence


def no_control_characters(text: str, lines: int) -> None:
    assert "\x1b" not in text and text.count("\n") == lines, text
    assert "\\n" in text and "\\x1b" in text, text  # the path is there, escaped


def test_synth_echoes_its_folder_escaped(tmp_path):
    code, out, err = run_command("data", ["synth", "synth_motion", "--out", str(tmp_path / NAME), "--videos", "2"])
    assert code == 0, err
    no_control_characters(out, lines=1)
    assert (tmp_path / NAME).is_dir()


def test_synth_refuses_a_folder_in_one_escaped_line(tmp_path):
    (tmp_path / NAME).mkdir()
    (tmp_path / NAME / "taken").write_text("")
    code, _, err = run_command("data", ["synth", "synth_motion", "--out", str(tmp_path / NAME), "--videos", "2"])
    one_line(code, err, "exists and is not an empty folder")
    no_control_characters(err, lines=1)


def test_check_names_a_missing_root_in_one_escaped_line(tmp_path):
    code, _, err = run_command("data", ["check", "kinetics400", "--root", str(tmp_path / NAME)])
    one_line(code, err)
    no_control_characters(err, lines=1)


def test_the_dry_run_echoes_each_run_folder_escaped(tmp_path):
    code, out, err = run_command("experiments", ["run", "mformer_table4", "--rows", "joint", "--seeds", "1",
                                                 "--dry-run", "--runs-dir", str(tmp_path / NAME)])
    assert code == 0, err
    no_control_characters(out, lines=4)  # two runs, the summary, the closing note
    assert not (tmp_path / NAME).exists()


def test_an_unwritable_runs_folder_is_one_escaped_line(tmp_path):
    (tmp_path / NAME).write_text("a file, not a folder")
    code, _, err = run_command("experiments", ["run", "mformer_table4", "--rows", "joint", "--seeds", "1",
                                               "--dry-run", "--runs-dir", str(tmp_path / NAME / "runs")])
    one_line(code, err, "is not a folder")
    no_control_characters(err, lines=1)


def test_build_echoes_the_reports_it_wrote_escaped(tmp_path):
    code, out, err = run_command("reports", ["build", "mformer_table4", "--out-dir", str(tmp_path / NAME),
                                             "--runs-dir", str(tmp_path / "runs")])
    assert code == 0, err
    no_control_characters(out, lines=2)  # the report, the index


@pytest.mark.parametrize("argv", [["loader-workers", "FILE"], ["compare", "mformer_table4", "--records", "FILE"]])
def test_reports_name_a_missing_file_in_one_escaped_line(tmp_path, argv):
    argv = [str(tmp_path / NAME) if arg == "FILE" else arg for arg in argv]
    code, out, err = run_command("reports", argv)
    text = err if code == 2 else out
    assert code in (1, 2) and Path(argv[-1]).name.split("\n")[0] in text, (code, out, err)
    no_control_characters(text, lines=1)
